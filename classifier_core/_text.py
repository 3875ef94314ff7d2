"""Small text helpers shared by the training data readers: message rendering and value checks."""

from __future__ import annotations

import unicodedata

from classifier_core.config import MAX_CLASS_NAME_CHARS

_SHOWN_CHARS = 80


def _show(text: str) -> str:
    """Quotes a value for a message, escaping control characters and cutting long values."""
    shown = "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[:_SHOWN_CHARS] + "..."
    return f"'{shown}'"


def _check_class_name(name: str) -> str | None:
    if len(name) > MAX_CLASS_NAME_CHARS:
        limit = MAX_CLASS_NAME_CHARS
        return f"expected a class name of at most {limit} characters; found {len(name)}"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return f"expected a class name without control characters; found {_show(name)}"
    return None


def _check_text(text: str) -> str | None:
    if text == "":
        return "expected a text; found an empty text"
    if not text.strip():
        return "expected a text; found only whitespace"
    return None

"""Naming rules for classifiers, versions and tags (SPEC §4), checked at every boundary."""

from __future__ import annotations

from collections.abc import Mapping

from classifier_core.config import MAX_NAME_CHARS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, NAME_PATTERN
from classifier_core.errors import InvalidNameError


def validate_name(value: str, what: str = "classifier name") -> str:
    """Returns ``value`` if it is a valid classifier or version name.

    Raises:
        InvalidNameError: naming what was expected and what was found.
    """
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS or not NAME_PATTERN.fullmatch(value):
        raise InvalidNameError(
            f"expected a {what} of 1-{MAX_NAME_CHARS} letters, digits and inner hyphens "
            f"(^[a-zA-Z0-9](-*[a-zA-Z0-9])*$); found {value!r}"
        )
    return value


def validate_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Returns the tags if every key is 1-128 and every value 0-256 characters.

    Keys starting with ``docclass.`` are reserved for docclass's own bookkeeping.

    Raises:
        InvalidNameError: for the first tag breaking a rule.
    """
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS:
            raise InvalidNameError(f"expected a tag key of 1-{MAX_TAG_KEY_CHARS} characters; found {len(key)} in {key[:40]!r}")
        if key.startswith("docclass."):
            raise InvalidNameError(f"expected a tag key not starting with 'docclass.' (reserved); found {key!r}")
        if len(value) > MAX_TAG_VALUE_CHARS:
            raise InvalidNameError(f"expected a tag value of at most {MAX_TAG_VALUE_CHARS} characters; found {len(value)} for {key!r}")
    return dict(tags)

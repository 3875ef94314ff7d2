"""Record splitting and row checks behind the Comprehend CSV reader in :mod:`classifier_core.training_data`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from classifier_core._text import _check_class_name, _check_text, _show
from classifier_core.config import Mode, TrainingConfig

HEADER_LABELS = frozenset(
    "label labels class classes category categories tag tags target intent topic".split()
)
HEADER_TEXTS = frozenset(
    "text texts document documents doc sentence content body message review utterance".split()
)
# Real training documents run to 160k characters; csv rejects fields over 131072 by default.
_FIELD_SIZE_LIMIT = 2**31 - 1


# Files that are not text at all: one message for the file instead of one per "row".
_SIGNATURES = (
    (b"\xff\xfe", "UTF-16 text (byte order mark 0xff 0xfe): save it as UTF-8 (Excel: CSV UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (byte order mark 0xfe 0xff): save it as UTF-8 (Excel: CSV UTF-8)"),
    (b"\x1f\x8b", "a gzip archive: decompress it first"),
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one): export the sheet as CSV UTF-8"),
)
_SNIFF_BYTES = 8192
_SNIFF_MIN_CHARS = 16


def _binary_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is, if it is plainly not UTF-8 text; else None.

    A stray invalid byte or control character is left to the row checks, which name its line;
    a file starting with an archive or UTF-16 signature, or whose start is mostly control
    characters and invalid bytes (with NULs), is reported once, as a whole.
    """
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    text = head.decode("utf-8", "surrogateescape")
    if len(text) < _SNIFF_MIN_CHARS:
        return None
    odd = sum(1 for c in text if "\udc80" <= c <= "\udcff" or c == "\x7f" or (c < " " and c not in "\t\n\r\f\v"))
    share = odd / len(text)
    if share > 0.3 or ("\x00" in text and share > 0.1):
        return f"binary data ({odd} of its first {len(text)} characters are control characters or invalid UTF-8)"
    return None


def _peek(fp: BinaryIO, size: int = _SNIFF_BYTES) -> bytes | None:
    """The next ``size`` bytes of a seekable stream, leaving its position unchanged; None if it cannot seek."""
    try:
        if not fp.seekable():
            return None
        start = fp.tell()
        head = fp.read(size)
        fp.seek(start)
    except (OSError, ValueError):
        return None
    return head


def _invalid_byte(cells: Iterable[str]) -> str | None:
    """The first undecodable byte (as surrogateescape keeps it), e.g. ``"0xff"``."""
    for cell in cells:
        try:
            cell.encode("utf-8")  # fails exactly on the surrogates standing for invalid bytes
        except UnicodeEncodeError as error:
            return f"0x{ord(cell[error.start]) - 0xDC00:02x}"
    return None


def _parse_labels(cell: str, config: TrainingConfig) -> tuple[tuple[str, ...], str | None]:
    """Turns a label cell into a label tuple, or returns the reason it is not valid."""
    if cell == "":
        return (), "expected a label; found an empty label"
    if not cell.strip():
        return (), "expected a label; found only whitespace"
    delimiter = config.label_delimiter
    if config.mode == Mode.MULTI_CLASS:
        if delimiter in cell.strip():
            return (), (
                f"expected one class per row in MULTI_CLASS mode; found {_show(cell.strip())}, which "
                f"contains the label delimiter {_show(delimiter)} (use MULTI_LABEL mode or another "
                "--label-delimiter)"
            )
        parts = [cell.strip()]
    else:
        # Whitespace around the whole cell is not a separator, even with a space/TAB delimiter.
        source = cell.strip() if delimiter.isspace() else cell
        parts = [part.strip() for part in source.split(delimiter)]
        if "" in parts:
            shown = _show(source.strip())
            return (), f"expected labels separated by {_show(delimiter)}; found an empty label in {shown}"
    for part in parts:
        problem = _check_class_name(part)
        if problem:
            return (), problem
    return tuple(sorted(set(parts))), None


def _is_header(cells: list[str]) -> bool:
    return cells[0].strip().lower() in HEADER_LABELS and cells[1].strip().lower() in HEADER_TEXTS


def _check_row(cells: list[str], first: bool, config: TrainingConfig) -> tuple[tuple[str, ...], list[str]]:
    """Validates one CSV record; returns its labels and the problems found (none: valid)."""
    bad_byte = _invalid_byte(cells)
    if bad_byte:
        return (), [f"expected UTF-8 text; found invalid byte {bad_byte}"]
    if len(cells) != 2:
        return (), [f"expected 2 columns (label,text); found {len(cells)}"]
    if first and _is_header(cells):
        shown = _show(",".join(cells))
        return (), [f"expected a data row (Comprehend CSV has no header); found a header {shown}"]
    labels, label_problem = _parse_labels(cells[0], config)
    problems = [p for p in (label_problem, _check_text(cells[1])) if p]
    return labels, problems


class _LineSource:
    """Feeds csv lines while counting them, so each record's first physical line is known."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self.count = 0
        self.n_bytes = 0
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        self.count += 1
        self.n_bytes += len(line.encode("utf-8", "surrogateescape"))
        return line


def _csv_records(fp: BinaryIO) -> Iterator[tuple[int, list[str], bool, int]]:
    """Yields (start line, cells, unclosed quote, bytes read so far) for each CSV record."""
    if csv.field_size_limit() < _FIELD_SIZE_LIMIT:
        csv.field_size_limit(_FIELD_SIZE_LIMIT)
    # newline="" keeps quoted newlines intact; surrogateescape keeps going past invalid bytes.
    text = io.TextIOWrapper(fp, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        source = _LineSource(text)
        start = 1
        for cells in csv.reader(source):
            # In non-strict mode csv only asks for another line at EOF inside a quoted field.
            yield start, cells, source.exhausted, source.n_bytes
            start = source.count + 1
    finally:
        text.detach()  # the caller owns fp: do not let the wrapper close it


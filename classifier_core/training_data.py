"""Reads and validates training data (SPEC §2) and splits off a holdout test set (SPEC §3).

Readers take binary file objects and never raise for bad data: they return the valid rows
plus one :class:`Issue` per problem, so that validation reports every problem at once.
:func:`load_training_data` adds the checks on the whole set and raises if anything is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from classifier_core.config import (
    ALLOWED_LABEL_DELIMITERS,
    HOLDOUT_CAP,
    HOLDOUT_FRACTION,
    HOLDOUT_SEED,
    MAX_AUGMENTED_MANIFEST_ATTRIBUTES,
    MAX_CLASS_NAME_CHARS,
    MAX_CLASSES,
    MAX_ISSUES_REPORTED,
    MAX_LABELS,
    MAX_TRAINING_BYTES,
    MAX_TRAINING_DOCUMENTS,
    MIN_DOCS_PER_CLASS,
    MIN_MULTI_LABEL_DOCUMENTS,
    RECOMMENDED_DOCS_PER_CLASS,
    DataFormat,
    Mode,
    TrainingConfig,
)
from classifier_core.errors import Issue, TrainingDataError

HEADER_LABELS = frozenset(
    "label labels class classes category categories tag tags target intent topic".split()
)
HEADER_TEXTS = frozenset(
    "text texts document documents doc sentence content body message review utterance".split()
)
# Real training documents run to 160k characters; csv rejects fields over 131072 by default.
_FIELD_SIZE_LIMIT = 2**31 - 1
_SHOWN_CHARS = 80


@dataclass
class TrainingSet:
    """Documents and their labels: 1-tuples in MULTI_CLASS mode, sorted tuples in MULTI_LABEL."""

    texts: list[str] = field(default_factory=list)
    labels: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def label_set(self) -> list[str]:
        """The sorted distinct labels."""
        return sorted({label for labels in self.labels for label in labels})

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> TrainingSet:
        """The rows at ``indices``, in that order."""
        indices = [int(i) for i in indices]
        return TrainingSet([self.texts[i] for i in indices], [self.labels[i] for i in indices])

    def extend(self, other: TrainingSet) -> None:
        """Appends the rows of ``other``."""
        self.texts.extend(other.texts)
        self.labels.extend(other.labels)

    def to_parquet(self, path: str | os.PathLike) -> None:
        """Writes columns ``text`` (string) and ``labels`` (list<string>) to ``path``."""
        table = pa.table(
            {"text": pa.array(self.texts, pa.string()),
             "labels": pa.array([list(labels) for labels in self.labels], pa.list_(pa.string()))}
        )
        pq.write_table(table, path)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike) -> TrainingSet:
        """Reads a file written by :meth:`to_parquet`."""
        columns = pq.read_table(path, columns=["text", "labels"]).to_pydict()
        return cls(columns["text"], [tuple(labels) for labels in columns["labels"]])


@dataclass
class _FileResult:
    training_set: TrainingSet
    issues: list[Issue]
    n_bytes: int = 0


def _show(text: str) -> str:
    """Quotes a value for a message, escaping control characters and cutting long values."""
    shown = "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[:_SHOWN_CHARS] + "..."
    return f"'{shown}'"


def _noun(config: TrainingConfig) -> str:
    return "label" if config.mode == Mode.MULTI_LABEL else "class"


def _invalid_byte(cells: Iterable[str]) -> str | None:
    """The first undecodable byte (as surrogateescape keeps it), e.g. ``"0xff"``."""
    for cell in cells:
        try:
            cell.encode("utf-8")  # fails exactly on the surrogates standing for invalid bytes
        except UnicodeEncodeError as error:
            return f"0x{ord(cell[error.start]) - 0xDC00:02x}"
    return None


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


def _read_csv(fp: BinaryIO, file_name: str, config: TrainingConfig) -> _FileResult:
    result = _FileResult(TrainingSet(), [])
    first = True
    for line, cells, unclosed, n_bytes in _csv_records(fp):
        result.n_bytes = n_bytes
        if unclosed:
            message = "expected a closing quote for the field starting on this line; found end of file"
            result.issues.append(Issue(file_name, line, message))
            continue
        if not cells:
            continue
        labels, problems = _check_row(cells, first, config)
        first = False
        result.issues.extend(Issue(file_name, line, problem) for problem in problems)
        if not problems:
            result.training_set.texts.append(cells[1])
            result.training_set.labels.append(labels)
    return result


def read_comprehend_csv(
    fp: BinaryIO, file_name: str, config: TrainingConfig
) -> tuple[TrainingSet, list[Issue]]:
    """Parses one Comprehend CSV file (label(s),text; no header).

    Args:
        fp: The file, opened in binary mode; it is not closed.
        file_name: The name used in messages.
        config: The mode and label delimiter.

    Returns:
        The valid rows, and one error issue per invalid row.
    """
    result = _read_csv(fp, file_name, config)
    return result.training_set, result.issues


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _attribute_labels(record: dict, attribute: str) -> tuple[list[str], str | None]:
    """The class names one Ground Truth attribute gives a record, or the reason it cannot."""
    metadata_key = f"{attribute}-metadata"
    if attribute not in record:
        return [], f"expected the attribute '{attribute}'; found no such field"
    metadata = record.get(metadata_key)
    if not isinstance(metadata, dict):
        found = _json_type(metadata) if metadata_key in record else "no such field"
        return [], f"expected '{metadata_key}' to be an object; found {found}"
    value = record[attribute]
    if not isinstance(value, list):  # multi-class job output: the class id and its class-name
        name = metadata.get("class-name")
        if not isinstance(name, str):
            found = _json_type(name)
            return [], f"expected '{metadata_key}' to have a 'class-name' string; found {found}"
        return [name], None
    class_map = metadata.get("class-map")
    if not isinstance(class_map, dict):
        found = _json_type(class_map)
        return [], f"expected '{metadata_key}' to have a 'class-map' object; found {found}"
    names = [class_map.get(str(class_id)) for class_id in value]
    for class_id, name in zip(value, names):
        if not isinstance(name, str):
            found = _json_type(name)
            return [], f"expected the 'class-map' of '{metadata_key}' to name class {class_id}; found {found}"
    return names, None


def _manifest_labels(names: list[str], config: TrainingConfig) -> tuple[tuple[str, ...], str | None]:
    distinct = sorted(set(names))
    if not distinct:
        return (), "expected a label; found none"
    if config.mode == Mode.MULTI_CLASS and len(distinct) > 1:
        shown = ", ".join(_show(name) for name in distinct)
        return (), f"expected one class per document in MULTI_CLASS mode; found {len(distinct)} ({shown})"
    for name in distinct:
        problem = _check_class_name(name)
        if problem:
            return (), problem
    return tuple(distinct), None


def _check_manifest_record(
    line: str, attribute_names: Sequence[str], config: TrainingConfig
) -> tuple[str, tuple[str, ...], str | None]:
    """Validates one manifest line; returns its text, its labels and the problem found (if any)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        found = f"invalid JSON ({error.msg} at column {error.colno})"
        return "", (), f"expected a JSON object; found {found}"
    if not isinstance(record, dict):
        return "", (), f"expected a JSON object; found {_json_type(record)}"
    text = record.get("source")
    if not isinstance(text, str):
        found = "no such field" if "source" not in record else _json_type(text)
        return "", (), f"expected a 'source' string; found {found}"
    names: list[str] = []
    for attribute in attribute_names:
        attribute_labels, problem = _attribute_labels(record, attribute)
        if problem:
            return "", (), problem
        names.extend(attribute_labels)
    labels, problem = _manifest_labels(names, config)
    return text, labels, problem or _check_text(text)


def _check_attribute_names(attribute_names: Sequence[str]) -> None:
    if not 1 <= len(attribute_names) <= MAX_AUGMENTED_MANIFEST_ATTRIBUTES:
        limit = MAX_AUGMENTED_MANIFEST_ATTRIBUTES
        message = f"expected 1 to {limit} attribute names; found {len(attribute_names)}"
        raise TrainingDataError([Issue("", None, message)])


def _read_manifest(
    fp: BinaryIO, file_name: str, attribute_names: Sequence[str], config: TrainingConfig
) -> _FileResult:
    _check_attribute_names(attribute_names)
    result = _FileResult(TrainingSet(), [])
    for number, raw in enumerate(fp, start=1):
        result.n_bytes += len(raw)
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            message = f"expected UTF-8 text; found invalid byte 0x{error.object[error.start]:02x}"
            result.issues.append(Issue(file_name, number, message))
            continue
        if not line.strip():
            continue
        text, labels, problem = _check_manifest_record(line, attribute_names, config)
        if problem:
            result.issues.append(Issue(file_name, number, problem))
        else:
            result.training_set.texts.append(text)
            result.training_set.labels.append(labels)
    return result


def read_augmented_manifest(
    fp: BinaryIO, file_name: str, attribute_names: Sequence[str], config: TrainingConfig
) -> tuple[TrainingSet, list[Issue]]:
    """Parses one SageMaker Ground Truth augmented manifest (JSON lines).

    Args:
        fp: The file, opened in binary mode; it is not closed.
        file_name: The name used in messages.
        attribute_names: 1 to 5 label attributes; their labels are united per document.
        config: The mode.

    Returns:
        The valid documents, and one error issue per invalid line.

    Raises:
        TrainingDataError: If the number of attribute names is outside 1-5.
    """
    result = _read_manifest(fp, file_name, attribute_names, config)
    return result.training_set, result.issues


def _check_delimiter(config: TrainingConfig) -> None:
    if config.label_delimiter not in ALLOWED_LABEL_DELIMITERS:
        allowed = ", ".join(_show(d) for d in sorted(ALLOWED_LABEL_DELIMITERS))
        found = _show(config.label_delimiter)
        message = f"expected --label-delimiter to be one of {allowed}; found {found}"
        raise TrainingDataError([Issue("", None, message)])


def _limit_errors(data: TrainingSet, n_bytes: int, config: TrainingConfig) -> list[Issue]:
    labels, errors = data.label_set, []
    multi_label = config.mode == Mode.MULTI_LABEL
    plural, limit = ("labels", MAX_LABELS) if multi_label else ("classes", MAX_CLASSES)
    if len(labels) < 2:
        shown = f" ({_show(labels[0])})" if labels else ""
        errors.append(f"expected at least 2 distinct {plural}; found {len(labels)}{shown}")
    if len(labels) > limit:
        errors.append(f"expected at most {limit} {plural}; found {len(labels)}")
    if len(data) > MAX_TRAINING_DOCUMENTS:
        errors.append(f"expected at most {MAX_TRAINING_DOCUMENTS} training documents; found {len(data)}")
    if n_bytes > MAX_TRAINING_BYTES:
        errors.append(f"expected at most {MAX_TRAINING_BYTES} bytes of training data; found {n_bytes}")
    return [Issue("", None, message) for message in errors]


def _size_issues(data: TrainingSet, config: TrainingConfig) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) about classes, and multi-label sets, with too few documents."""
    errors, warnings = [], []
    counts = Counter(label for labels in data.labels for label in labels)
    for label, count in sorted(counts.items(), key=lambda item: (item[1], item[0])):
        if count < RECOMMENDED_DOCS_PER_CLASS:
            message = (
                f"expected at least {RECOMMENDED_DOCS_PER_CLASS} training documents per {_noun(config)} "
                f"(Comprehend requires {MIN_DOCS_PER_CLASS}, recommends {RECOMMENDED_DOCS_PER_CLASS}); "
                f"found {count} for {_show(label)}"
            )
            is_error = config.strict and count < MIN_DOCS_PER_CLASS
            (errors if is_error else warnings).append(Issue("", None, message))
    if config.mode == Mode.MULTI_LABEL and len(data) < MIN_MULTI_LABEL_DOCUMENTS:
        limit = MIN_MULTI_LABEL_DOCUMENTS
        message = f"expected at least {limit} documents in MULTI_LABEL mode; found {len(data)}"
        (errors if config.strict else warnings).append(Issue("", None, message))
    return errors, warnings


def _delimiter_warning(data: TrainingSet, config: TrainingConfig) -> list[Issue]:
    """Warns when a multi-label set looks joined with another delimiter than the configured one."""
    if config.mode != Mode.MULTI_LABEL or any(len(labels) > 1 for labels in data.labels):
        return []
    candidates = ALLOWED_LABEL_DELIMITERS - {" ", config.label_delimiter}
    labels = data.label_set
    # The character found in the most distinct labels is the likeliest delimiter.
    used = Counter(char for label in labels for char in set(label) if char in candidates)
    if not used:
        return []
    char = min(used, key=lambda c: (-used[c], c))
    example = next(label for label in labels if char in label)
    message = (
        f"expected labels joined by {_show(config.label_delimiter)}; found no row with more than one "
        f"label, while labels such as {_show(example)} contain {_show(char)} "
        f"(is --label-delimiter {_show(char)}?)"
    )
    return [Issue("", None, message)]


def load_training_data(
    sources: Iterable[tuple[str, BinaryIO]],
    config: TrainingConfig,
    data_format: DataFormat = DataFormat.COMPREHEND_CSV,
    attribute_names: Sequence[str] = (),
    test_set: bool = False,
) -> tuple[TrainingSet, list[Issue]]:
    """Reads every source in order into one training set and checks the set as a whole.

    Args:
        sources: (file name, binary file object) pairs, e.g. every object under a prefix.
        config: The mode, label delimiter and strictness.
        data_format: COMPREHEND_CSV or AUGMENTED_MANIFEST.
        attribute_names: The label attributes of an augmented manifest.
        test_set: Check the rows only: the minimums and limits of training data do not apply
            to a test set (``check_test_set`` compares it with the training set instead).

    Returns:
        The training set and the warnings about it.

    Raises:
        TrainingDataError: With the first MAX_ISSUES_REPORTED errors, if there is any.
    """
    _check_delimiter(config)
    if data_format == DataFormat.AUGMENTED_MANIFEST:
        _check_attribute_names(attribute_names)
    data, errors, n_bytes = TrainingSet(), [], 0
    for file_name, fp in sources:
        if data_format == DataFormat.AUGMENTED_MANIFEST:
            result = _read_manifest(fp, file_name, attribute_names, config)
        else:
            result = _read_csv(fp, file_name, config)
        data.extend(result.training_set)
        errors.extend(result.issues)
        n_bytes += result.n_bytes
    warnings: list[Issue] = []
    if not test_set:
        size_errors, warnings = _size_issues(data, config)
        errors += _limit_errors(data, n_bytes, config) + size_errors
        warnings += _delimiter_warning(data, config)
    if errors:
        raise TrainingDataError(errors[:MAX_ISSUES_REPORTED], truncated=len(errors) > MAX_ISSUES_REPORTED)
    return data, warnings


def check_test_set(
    train: TrainingSet, test: TrainingSet, test_name: str, config: TrainingConfig
) -> list[Issue]:
    """Compares the label sets of a training and a test set.

    Args:
        train: The training set.
        test: The test set.
        test_name: The test file or prefix, used in messages.
        config: The mode and strictness.

    Returns:
        One warning per training label missing from the test set and per test label
        never seen in training.

    Raises:
        TrainingDataError: If there is any such issue and ``config.strict`` is set.
    """
    noun = _noun(config)
    train_labels, test_labels = set(train.label_set), set(test.label_set)
    missing = [
        f"expected every training {noun} in the test set; found no test document for {_show(label)}"
        for label in sorted(train_labels - test_labels)
    ]
    unseen = [
        f"expected only {noun} names seen in training; found {_show(label)}, which no training document has"
        for label in sorted(test_labels - train_labels)
    ]
    issues = [Issue(test_name, None, message) for message in missing + unseen]
    if issues and config.strict:
        raise TrainingDataError(issues[:MAX_ISSUES_REPORTED], truncated=len(issues) > MAX_ISSUES_REPORTED)
    return issues


def _strata(labels: Sequence[tuple[str, ...]]) -> dict[str, list[int]]:
    """Row indices per stratum: the row's rarest label (ties by name; "" for no label)."""
    frequency = Counter(label for row in labels for label in row)
    strata: dict[str, list[int]] = {}
    for i, row in enumerate(labels):
        key = min(row, key=lambda label: (frequency[label], label)) if row else ""
        strata.setdefault(key, []).append(i)
    return strata


def _holdout_sizes(sizes: list[int], fraction: float, cap: int) -> list[int]:
    # Half-up rounding, at least one test document, and never the stratum's last document.
    wanted = [min(max(1, int(np.floor(n * fraction + 0.5))), n - 1) if n >= 2 else 0 for n in sizes]
    total = sum(wanted)
    if total > cap:
        wanted = [k * cap // total for k in wanted]
    return wanted


def holdout_split(
    labels: Sequence[tuple[str, ...]],
    fraction: float = HOLDOUT_FRACTION,
    cap: int = HOLDOUT_CAP,
    seed: int = HOLDOUT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits rows into training and test, stratified by label and seeded (SPEC §3).

    Args:
        labels: Each row's labels; multi-label rows are stratified by their rarest label.
        fraction: Share of each stratum to hold out.
        cap: The most documents held out in all.
        seed: The seed of numpy's default_rng.

    Returns:
        (train indices, test indices), each sorted ascending, disjoint and covering all rows.

    Raises:
        ValueError: If fraction is not strictly between 0 and 1 or cap is negative.
    """
    if not 0 < fraction < 1 or cap < 0:
        raise ValueError(f"expected 0 < fraction < 1 and cap >= 0; found fraction={fraction} cap={cap}")
    strata = sorted(_strata(labels).items())
    sizes = _holdout_sizes([len(rows) for _, rows in strata], fraction, cap)
    rng = np.random.default_rng(seed)
    test = [rng.choice(rows, size=k, replace=False) for (_, rows), k in zip(strata, sizes) if k]
    test_indices = np.sort(np.concatenate(test)).astype(np.int64) if test else np.zeros(0, np.int64)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_indices] = True
    return np.flatnonzero(~is_test).astype(np.int64), test_indices

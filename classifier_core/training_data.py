"""Reads and validates Comprehend CSV training data and checks the set as a whole (SPEC §2).

Readers take binary file objects and never raise for bad data: they return the valid rows
plus one :class:`Issue` per problem, so that validation reports every problem at once.
:func:`load_training_data` adds the checks on the whole set and raises if anything is wrong.
Augmented manifests are read by :mod:`classifier_core.manifests`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from classifier_core._csv_rows import _binary_kind, _check_row, _csv_records, _peek
from classifier_core._text import _show
from classifier_core.config import (
    ALLOWED_LABEL_DELIMITERS,
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


def _noun(config: TrainingConfig) -> str:
    return "label" if config.mode == Mode.MULTI_LABEL else "class"


def _read_csv(fp: BinaryIO, file_name: str, config: TrainingConfig) -> _FileResult:
    result = _FileResult(TrainingSet(), [])
    head = _peek(fp)
    kind = _binary_kind(head) if head else None
    if kind:
        result.issues.append(Issue(file_name, None, f"expected a UTF-8 CSV of label,text rows; found {kind}"))
        return result
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
    # Imported here: manifests builds TrainingSets, so it imports this module.
    from classifier_core.manifests import _check_attribute_names, _read_manifest

    _check_delimiter(config)
    if data_format == DataFormat.AUGMENTED_MANIFEST:
        _check_attribute_names(attribute_names)
    data, errors, n_bytes, names = TrainingSet(), [], 0, []
    for file_name, fp in sources:
        names.append(file_name)
        if data_format == DataFormat.AUGMENTED_MANIFEST:
            result = _read_manifest(fp, file_name, attribute_names, config)
        else:
            result = _read_csv(fp, file_name, config)
        data.extend(result.training_set)
        errors.extend(result.issues)
        n_bytes += result.n_bytes
    warnings: list[Issue] = []
    files = ", ".join(names[:3]) + (f" and {len(names) - 3} more files" if len(names) > 3 else "")
    if test_set and not data and not errors:  # nothing to evaluate on: say so before evaluation fails
        errors.append(Issue("", None, f"expected at least one test document; found none in {files}"))
    elif not data and not errors:  # empty files (or only blank lines): a class count would not say which
        errors.append(Issue("", None, f"expected at least one training document; found none in {files}"))
    elif not test_set:
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

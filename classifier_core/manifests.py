"""Reads SageMaker Ground Truth augmented manifests (JSON lines) as training data (SPEC §2).

Like the CSV reader, it never raises for bad data: it returns the valid documents plus one
:class:`Issue` per problem.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import BinaryIO

from classifier_core._text import _check_class_name, _check_text, _show
from classifier_core.config import MAX_AUGMENTED_MANIFEST_ATTRIBUTES, Mode, TrainingConfig
from classifier_core.errors import Issue, TrainingDataError
from classifier_core.training_data import TrainingSet, _FileResult


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

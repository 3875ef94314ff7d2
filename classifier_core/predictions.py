"""Prediction records, predictions.jsonl and the output.tar.gz of a job (SPEC §5)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from classifier_core.config import LABEL_THRESHOLD, MIN_LABELS_LISTED, TOP_CLASSES
from classifier_core.documents import Document

SCORE_DECIMALS = 6
# gzip's own default: tarfile's 9 is 3x slower on predictions.jsonl for a 4% smaller archive.
GZIP_LEVEL = 6


def multi_class_record(labels: Sequence[str], scores: np.ndarray) -> dict[str, Any]:
    """Builds the ``Classes`` part of a multi-class record.

    Args:
        labels: Class names, in the column order of ``scores``.
        scores: One document's probabilities, shape (len(labels),).

    Returns:
        ``{"Classes": [{"Name": ..., "Score": ...}, ...]}`` with the top ``TOP_CLASSES``
        classes by score, descending, ties by name.

    Raises:
        ValueError: ``scores`` does not hold one score per label.
    """
    entries = _ranked(labels, scores)
    return {"Classes": entries[:TOP_CLASSES]}


def multi_label_record(labels: Sequence[str], scores: np.ndarray) -> dict[str, Any]:
    """Builds the ``Labels`` part of a multi-label record.

    A label is assigned iff its (rounded) Score is at least ``LABEL_THRESHOLD``; the
    rounded score decides so that a reader applying the threshold to the record agrees.

    Args:
        labels: Label names, in the column order of ``scores``.
        scores: One document's independent per-label scores, shape (len(labels),).

    Returns:
        ``{"Labels": [...]}``: every assigned label, plus the next highest until
        ``MIN_LABELS_LISTED`` are listed; by score, descending, ties by name.

    Raises:
        ValueError: ``scores`` does not hold one score per label.
    """
    entries = _ranked(labels, scores)
    assigned = sum(entry["Score"] >= LABEL_THRESHOLD for entry in entries)
    return {"Labels": entries[: max(assigned, MIN_LABELS_LISTED)]}


def prediction_records(
    documents: Sequence[Document],
    labels: Sequence[str],
    scores: np.ndarray | None,
    multi_label: bool,
) -> list[dict[str, Any]]:
    """Builds one predictions.jsonl record per document, in order.

    Args:
        documents: A batch of documents, including those with an error.
        labels: Class or label names, in the column order of ``scores``.
        scores: One row per document without an error, in order; None when every
            document has an error.
        multi_label: Whether to build ``Labels`` (multi-label) or ``Classes`` records.

    Returns:
        One record per document: prediction or error.

    Raises:
        ValueError: ``scores`` has not one row per document without an error.
    """
    expected = sum(document.error is None for document in documents)
    found = 0 if scores is None else len(scores)
    if found != expected:
        raise ValueError(
            f"expected {expected} score rows (one per document without an error); found {found}"
        )
    build = multi_label_record if multi_label else multi_class_record
    rows = iter(() if scores is None else scores)
    records = []
    for document in documents:
        record = _where(document)
        if document.error is None:
            record.update(build(labels, next(rows)))
        else:
            record["ErrorCode"] = document.error.value
            record["ErrorMessage"] = document.error_message
        records.append(record)
    return records


def write_jsonl(records: Iterable[dict[str, Any]], fp: BinaryIO) -> int:
    """Writes one JSON object per line, UTF-8 encoded, keys in record order.

    Takes a binary file object, like the readers, so that the encoding and the LF line
    end are fixed here and not by how the caller opened the file.

    Args:
        records: Records from ``prediction_records``.
        fp: Binary file object to write to.

    Returns:
        The number of records written.

    Raises:
        ValueError: A record holds a NaN or infinite score, which JSON cannot express.
    """
    count = 0
    for record in records:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        fp.write(line.encode("utf-8") + b"\n")
        count += 1
    return count


def encode_predictions(
    documents: Sequence[Document], labels: Sequence[str], scores: np.ndarray | None, multi_label: bool,
) -> tuple[bytes, int, np.ndarray]:
    """The bytes ``write_jsonl(prediction_records(...))`` writes, with the number of error records
    and how many documents each label tops (multi-class) or is assigned to (multi-label).

    The job's hot path: ranking, rounding and counting are done on whole arrays, and each line is
    formatted directly instead of building and serialising dicts. The bytes are the same (a test
    compares them), including Python's correctly rounded ``round(score, 6)`` and the name order
    of equal rounded scores.
    """
    expected = sum(document.error is None for document in documents)
    values = np.zeros((0, len(labels))) if scores is None else np.asarray(scores, dtype=float)
    if len(values) != expected or (values.size and not np.isfinite(values).all()):
        buffer = io.BytesIO()  # let the general path raise its error
        write_jsonl(prediction_records(documents, labels, scores, multi_label), buffer)
        raise AssertionError("unreachable: the general path accepted what the fast path refused")
    n_labels = len(labels)
    units = _score_units(values)  # round(score, 6) * 10**6, as integers
    name_rank = np.empty(n_labels, dtype=np.int64)
    name_rank[np.argsort(np.array(labels, dtype=object), kind="stable")] = np.arange(n_labels)
    key = units * n_labels + (n_labels - 1 - name_rank)  # larger: higher score, then earlier name
    listed = min(TOP_CLASSES if not multi_label else MIN_LABELS_LISTED, n_labels)
    assigned = units >= round(LABEL_THRESHOLD * 10**SCORE_DECIMALS)
    if multi_label:
        order = np.argsort(-key, axis=1, kind="stable")
        counts_listed = np.maximum(assigned.sum(axis=1), listed)
        counts = assigned.sum(axis=0)
    else:
        if n_labels > listed:
            top = np.argpartition(-key, listed - 1, axis=1)[:, :listed]
        else:
            top = np.tile(np.arange(n_labels), (len(values), 1))
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(key, top, axis=1), axis=1), axis=1)
        counts_listed = np.full(len(values), listed)
        counts = np.bincount(order[:, 0], minlength=n_labels) if len(values) else np.zeros(n_labels, dtype=np.int64)
    field = "Labels" if multi_label else "Classes"
    names = [json.dumps(label, ensure_ascii=False) for label in labels]
    text_units = units.tolist()
    files: dict[str, str] = {}
    lines = []
    row = 0
    order_rows = order.tolist()
    for document in documents:
        file = files.get(document.file)
        if file is None:
            file = files[document.file] = json.dumps(document.file, ensure_ascii=False)
        where = f'{{"File": {file}' if document.line is None else f'{{"File": {file}, "Line": "{document.line}"'
        if document.error is not None:
            record = _where(document) | {"ErrorCode": document.error.value, "ErrorMessage": document.error_message}
            lines.append(json.dumps(record, ensure_ascii=False))
            continue
        scores_row, entries = text_units[row], []
        for i in order_rows[row][: counts_listed[row]]:
            entries.append(f'{{"Name": {names[i]}, "Score": {_score_repr(scores_row[i])}}}')
        lines.append(f'{where}, "{field}": [{", ".join(entries)}]}}')
        row += 1
    jsonl = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    return jsonl, len(documents) - expected, counts


def _score_units(values: np.ndarray) -> np.ndarray:
    """``round(v, 6) * 10**6`` for every score, exactly as Python rounds: numpy's rint of
    v * 10**6 agrees except when that product lies next to a half (the multiplication rounds),
    and those few are rounded by Python."""
    scaled = values * 10**SCORE_DECIMALS
    units = np.rint(scaled)
    near_half = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6
    for index in zip(*np.nonzero(near_half)):
        units[index] = round(round(float(values[index]), SCORE_DECIMALS) * 10**SCORE_DECIMALS)
    return units.astype(np.int64)


def _score_repr(units: int) -> str:
    return repr(units / 10**SCORE_DECIMALS)


def package_tar_gz(members: Sequence[tuple[str, str | Path]], archive_path: str | Path) -> None:
    """Writes a .tar.gz holding the given regular files under flat names.

    The archive is written next to ``archive_path`` and moved into place at the end, so
    a failure never leaves a partial archive there (nor replaces an older one).

    Args:
        members: (name in the archive, local file path) pairs, in archive order.
        archive_path: Where the archive goes.

    Raises:
        ValueError: A name is empty, absolute, repeated, not flat or contains '..', or a
            path is not a regular file.
        OSError: A file cannot be read or the archive cannot be written.
    """
    _check_arcnames([arcname for arcname, _ in members])
    partial = f"{os.fspath(archive_path)}.partial"
    try:
        with tarfile.open(partial, "w:gz", compresslevel=GZIP_LEVEL) as tar:
            for arcname, path in members:
                tar.add(path, arcname=arcname, recursive=False, filter=_normalized)
        os.replace(partial, archive_path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def package_stream_tar_gz(arcname: str, size: int, fileobj: BinaryIO, archive_path: str | Path) -> None:
    """Writes a .tar.gz holding one regular file of ``size`` bytes read from ``fileobj``.

    The member is streamed, never held whole; like ``package_tar_gz`` the archive appears at
    ``archive_path`` only once complete.

    Raises:
        ValueError: The name is not flat.
        OSError: ``fileobj`` ends before ``size`` bytes, or the archive cannot be written.
    """
    _check_arcnames([arcname])
    info = _normalized(tarfile.TarInfo(arcname))
    info.size = size
    info.mtime = int(time.time())
    partial = f"{os.fspath(archive_path)}.partial"
    try:
        with tarfile.open(partial, "w:gz", compresslevel=GZIP_LEVEL) as tar:
            tar.addfile(info, fileobj)
        os.replace(partial, archive_path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _ranked(labels: Sequence[str], scores: np.ndarray) -> list[dict[str, Any]]:
    values = np.asarray(scores, dtype=float).ravel()
    if len(values) != len(labels):
        raise ValueError(f"expected {len(labels)} scores (one per label); found {len(values)}")
    # Rank on the rounded score so that equal-looking scores are ordered by name.
    rounded = [round(float(value), SCORE_DECIMALS) for value in values]
    order = sorted(range(len(labels)), key=lambda i: (-rounded[i], labels[i]))
    return [{"Name": labels[i], "Score": rounded[i]} for i in order]


def _where(document: Document) -> dict[str, Any]:
    if document.line is None:
        return {"File": document.file}
    return {"File": document.file, "Line": str(document.line)}


def _check_arcnames(arcnames: Sequence[str]) -> None:
    seen: set[str] = set()
    for arcname in arcnames:
        unsafe = (
            arcname in ("", ".")
            or ".." in arcname
            or "/" in arcname
            or "\\" in arcname
            or os.path.isabs(arcname)
        )
        if unsafe:
            raise ValueError(f"archive member name must be a flat file name; found {arcname!r}")
        if arcname in seen:
            raise ValueError(f"archive member name must be unique; found {arcname!r} twice")
        seen.add(arcname)


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Ownership and permissions of the worker that packaged the job mean nothing to the reader.
    if not info.isreg():
        raise ValueError(f"archive member must be a regular file; found {info.name!r}")
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info

"""Prediction records, predictions.jsonl and the output.tar.gz of a job (SPEC §5)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from classifier_core.config import LABEL_THRESHOLD, MIN_LABELS_LISTED, TOP_CLASSES
from classifier_core.documents import Document, LineBatch

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
    documents: Sequence[Document] | LineBatch, labels: Sequence[str], scores: np.ndarray | None, multi_label: bool,
) -> tuple[bytes, int, np.ndarray]:
    """The bytes ``write_jsonl(prediction_records(...))`` writes, with the number of error records
    and how many documents each label tops (multi-class) or is assigned to (multi-label).
    ``documents`` may be a LineBatch, whose lines without errors are never made Documents.

    The job's hot path: ranking, rounding and counting are done on whole arrays, and each line is
    formatted directly instead of building and serialising dicts. The bytes are the same (a test
    compares them), including Python's correctly rounded ``round(score, 6)`` and the name order
    of equal rounded scores.
    """
    if isinstance(documents, LineBatch) and documents.errors:
        documents = documents.documents()  # (error records are rare: the general layout)
    expected = len(documents) if isinstance(documents, LineBatch) else sum(d.error is None for d in documents)
    values = np.zeros((0, len(labels))) if scores is None else np.asarray(scores, dtype=float)
    if len(values) != expected or (values.size and not np.isfinite(values).all()):
        buffer = io.BytesIO()  # let the general path raise its error
        general = documents.documents() if isinstance(documents, LineBatch) else documents
        write_jsonl(prediction_records(general, labels, scores, multi_label), buffer)
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
    if isinstance(documents, LineBatch):  # lines, none of them an error
        where = pc.binary_join_element_wise(f'{{"File": {json.dumps(documents.file, ensure_ascii=False)}, "Line": "',
                                            _numbers(documents.first_line, len(documents)), '"', "")
        return _prediction_lines(where, labels, field, units, order, counts_listed), 0, counts
    valid = [document for document in documents if document.error is None]
    lines = _prediction_lines(_where_column(valid), labels, field, units, order, counts_listed)
    if len(valid) == len(documents):
        return lines, 0, counts
    text = iter(lines.decode("utf-8").splitlines())  # no JSON string holds a raw line end
    records = [json.dumps(_where(d) | {"ErrorCode": d.error.value, "ErrorMessage": d.error_message},
                          ensure_ascii=False) if d.error is not None else next(text) for d in documents]
    return ("\n".join(records) + "\n").encode("utf-8"), len(documents) - expected, counts


def _prediction_lines(where, labels: Sequence[str], field: str, units: np.ndarray, order: np.ndarray,
                      listed: np.ndarray) -> bytes:
    """Prediction lines built column-wise by Arrow: each line is ``where[row]`` (``{"File": f``,
    with ``, "Line": "n"`` for lines) then ``, field: [{"Name": name, "Score": score}, ...]}``,
    listing ``order[row][:listed[row]]``."""
    if len(where) == 0:
        return b""
    rows = np.repeat(np.arange(len(where)), listed)
    columns = order[rows, np.arange(len(rows)) - np.repeat(_starts(listed), listed)]
    names = pa.array([json.dumps(label, ensure_ascii=False) for label in labels]).take(pa.array(columns))
    entries = pc.binary_join_element_wise('{"Name": ', names, ', "Score": ', _score_texts(units[rows, columns]), "}", "")
    per_row = pa.ListArray.from_arrays(pa.array(np.append(_starts(listed), len(rows)).astype(np.int32)), entries)
    lines = pc.binary_join_element_wise(where, f', "{field}": [', pc.binary_join(per_row, ", "), "]}\n", "")
    return _concatenated(lines)


def _where_column(documents: Sequence[Document]):
    """``{"File": f`` and, for a line, ``, "Line": "n"`` of each document, as an Arrow array."""
    files = {name: i for i, name in enumerate(dict.fromkeys(d.file for d in documents))}
    file_json = pa.array([json.dumps(name, ensure_ascii=False) for name in files], pa.string()).take(
        pa.array(np.fromiter((files[d.file] for d in documents), np.int64, len(documents))))
    lines_of = [d.line for d in documents]
    if None in lines_of:  # ONE_DOC_PER_FILE, or a mix in a test
        return pc.binary_join_element_wise(
            '{"File": ', file_json, pa.array(["" if n is None else f', "Line": "{n}"' for n in lines_of], pa.string()), "")
    return pc.binary_join_element_wise('{"File": ', file_json, ', "Line": "',
                                       pc.cast(pa.array(lines_of, pa.int64()), pa.string()), '"', "")


def _numbers(first: int, count: int):
    """The decimal text of first, first + 1, ... as an Arrow string array."""
    return pc.cast(pa.array(np.arange(first, first + count, dtype=np.int64)), pa.string())


def _starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


# repr(units / 10**6) for the units whose repr is not "0." + digits: 0..99 (1e-06...) and 10**6.
_SPECIAL_SCORES = [repr(units / 10**SCORE_DECIMALS) for units in range(100)] + ["1.0"]


def _score_texts(units: np.ndarray):
    """``repr(units / 10**6)`` of each score, as an Arrow string array (a test checks every value)."""
    digits = pc.cast(pa.array(units, pa.int64()), pa.string())
    texts = pc.binary_join_element_wise("0.", pc.utf8_rtrim(pc.utf8_lpad(digits, SCORE_DECIMALS, "0"), "0"), "")
    special = (units < 100) | (units >= 10**SCORE_DECIMALS)
    if special.any():
        index = np.where(units >= 10**SCORE_DECIMALS, 100, np.minimum(units, 99))
        texts = pc.if_else(pa.array(special), pa.array(_SPECIAL_SCORES).take(pa.array(index)), texts)
    return texts


def _concatenated(strings) -> bytes:
    """The characters of an Arrow string array, end to end: its data buffer between its offsets."""
    strings = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32 if strings.type == pa.string() else np.int64)
    start, end = offsets[strings.offset], offsets[strings.offset + len(strings)]
    return memoryview(strings.buffers()[2])[start:end].tobytes()


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


def gzip_writer(fp: BinaryIO) -> gzip.GzipFile:
    """A gzip stream over ``fp`` as predictions are compressed: GZIP_LEVEL, no name, no time, so
    the same predictions give the same bytes."""
    return gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=fp, mtime=0)


def package_gzip_members(arcname: str, size: int, members: BinaryIO, archive_path: str | Path) -> None:
    """Writes a .tar.gz holding one regular file of ``size`` bytes, given already compressed.

    ``members`` reads as gzip members (each a complete gzip stream, as ``gzip_writer`` writes)
    whose contents, end to end, are the file's ``size`` bytes. The archive is a gzip member
    holding the tar header, those members copied as they are, and a member holding the tar
    padding and end-of-archive blocks: a multi-member gzip file (RFC 1952), which gzip, tar
    and Python's tarfile read as one stream, identical to the tar tarfile writes. Nothing is
    compressed twice, so the shards of a job compress in parallel and packaging only copies.
    Like ``package_tar_gz`` the archive appears at ``archive_path`` only once complete.

    Raises:
        ValueError: The name is not flat.
        OSError: The archive cannot be written.
    """
    _check_arcnames([arcname])
    info = _normalized(tarfile.TarInfo(arcname))
    info.size = size
    info.mtime = int(time.time())
    header = info.tobuf(tarfile.DEFAULT_FORMAT, tarfile.ENCODING, "surrogateescape")
    padding = -size % tarfile.BLOCKSIZE
    end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
    end += tarfile.NUL * (-(len(header) + size + padding + len(end)) % tarfile.RECORDSIZE)  # as TarFile.close pads
    partial = f"{os.fspath(archive_path)}.partial"
    try:
        with open(partial, "wb") as out:
            out.write(gzip.compress(header, GZIP_LEVEL, mtime=0))
            shutil.copyfileobj(members, out, 1 << 22)
            out.write(gzip.compress(tarfile.NUL * padding + end, GZIP_LEVEL, mtime=0))
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

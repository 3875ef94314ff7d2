"""Shards of a classification job: plan them, read their documents, classify one.

A job's inputs are cut into shards that can be classified independently, in any order, on
any process or machine, and concatenated in shard order into exactly the predictions.jsonl a
serial run writes:

- ONE_DOC_PER_FILE: runs of consecutive files.
- ONE_DOC_PER_LINE: whole files, or byte ranges of a large file. A range starts at a line
  start and ends at the next range's start, so no line is cut; the planner counts the line
  ends before each cut, so every shard knows the exact number of its first line.

Line ends are LF, CR and CRLF (SPEC §5). Positions are in bytes, so UTF-8 text is never cut
inside a character (no multi-byte sequence contains a CR or LF byte).

Storage stays outside: callers pass functions that open a URI as a binary stream.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from classifier_core.config import LABEL_THRESHOLD, MAX_DOCUMENT_BYTES_PER_FILE, InputFormat, Mode
from classifier_core.documents import Document, LineBatch, batched, read_file_document, read_line_batches
from classifier_core.predictions import encode_predictions, write_jsonl

if TYPE_CHECKING:  # the model (scikit-learn) is imported only where shards are explained
    from classifier_core.model import TextClassifier
    from classifier_core.scorer import Scorer

SCAN_CHUNK = 8 << 20
# Documents per classification batch: larger batches share more of the per-distinct-word work.
BATCH_DOCUMENTS = 10_000
BATCH_CHARS = 8_000_000  # ...unless they are long: a batch's texts stay within tens of MB
MAX_FILES_PER_SHARD = 1_000

Opener = Callable[[str], BinaryIO]


@dataclass(frozen=True)
class Piece:
    """Part of one input object: bytes [start, end) (end None: to the end of the object).

    ``first_line`` is the zero-based number of the line that starts at ``start``.
    """

    uri: str
    name: str
    start: int = 0
    end: int | None = None
    first_line: int = 0

    def as_dict(self) -> dict:
        return {"uri": self.uri, "name": self.name, "start": self.start, "end": self.end, "first_line": self.first_line}


@dataclass(frozen=True)
class Shard:
    """Consecutive pieces of the input, classified as one unit of work and checkpointed whole."""

    index: int
    pieces: tuple[Piece, ...]

    def as_dict(self) -> dict:
        return {"index": self.index, "pieces": [p.as_dict() for p in self.pieces]}

    @classmethod
    def from_dict(cls, data: dict) -> Shard:
        return cls(data["index"], tuple(Piece(**p) for p in data["pieces"]))


@dataclass
class ShardResult:
    """What classifying a shard produced: its record count, error records and class counts,
    the bytes of its predictions and, once stored compressed, of their gzip member."""

    index: int
    documents: int = 0
    errors: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    compressed_bytes: int = 0

    def as_dict(self) -> dict:
        return {"index": self.index, "documents": self.documents, "errors": self.errors,
                "class_counts": self.class_counts, "bytes": self.bytes, "compressed_bytes": self.compressed_bytes}


def shard_bytes_for(total_bytes: int, workers: int, minimum: int = 4 << 20, maximum: int = 64 << 20) -> int:
    """A shard size giving every worker about four shards (so an early finisher takes more),
    between ``minimum`` (below it, starting worker processes costs more than it saves: a job
    under 4 MB runs in one process) and ``maximum`` (a lost shard costs at most that much work
    to redo)."""
    return max(minimum, min(maximum, -(-total_bytes // max(4 * workers, 1))))


def plan_shards(
    objects: Sequence[tuple[str, str, int]], input_format: InputFormat | str, shard_bytes: int, open_input: Opener,
) -> list[Shard]:
    """Cuts the inputs into shards of about ``shard_bytes``, in input order.

    Args:
        objects: (URI, base name, size in bytes) of every input object, in input order.
        input_format: ONE_DOC_PER_LINE or ONE_DOC_PER_FILE.
        shard_bytes: target bytes per shard (at least 1).
        open_input: opens a URI for binary reading; used to find line starts in large files.
    """
    if shard_bytes < 1:
        raise ValueError(f"shard size must be at least 1 byte; found {shard_bytes}")
    per_line = InputFormat(input_format) is InputFormat.ONE_DOC_PER_LINE
    shards: list[Shard] = []
    pending: list[Piece] = []
    pending_bytes = 0

    def close() -> None:
        nonlocal pending, pending_bytes
        if pending:
            shards.append(Shard(len(shards), tuple(pending)))
            pending, pending_bytes = [], 0

    for uri, name, size in objects:
        if per_line and size > shard_bytes:
            close()
            with open_input(uri) as fp:
                cuts = line_starts_after(fp, [k * shard_bytes for k in range(1, -(-size // shard_bytes))])
            starts = [(0, 0), *cuts]
            for (start, line), (end, _) in zip(starts, [*cuts, (None, None)]):
                shards.append(Shard(len(shards), (Piece(uri, name, start, end, line),)))
            continue
        if pending and (pending_bytes + size > shard_bytes or len(pending) >= MAX_FILES_PER_SHARD):
            close()
        pending.append(Piece(uri, name))
        pending_bytes += size
    close()
    return shards


_LINE_END = re.compile(rb"\r\n|\r|\n")


def line_starts_after(fp: BinaryIO, positions: Sequence[int], chunk_size: int = SCAN_CHUNK) -> list[tuple[int, int]]:
    """For each position (ascending), the first line start at or after it, with the number of
    lines before it: [(offset, line number), ...], without repeats and without the end of the
    stream (where no line starts).

    A line starts at 0 and after every line end (LF, CR or CRLF). Reads the stream once.
    """
    found: list[tuple[int, int]] = []
    targets = [p for p in positions if p > 0]
    base = 0  # stream offset of block[0]
    lines = 0  # line ends before ``base``
    after_line_end = True  # the byte before ``base`` ended a line (or base is 0)
    held = b""  # a trailing CR, kept until the next byte shows whether it is a CRLF
    t = 0
    while t < len(targets):
        chunk = fp.read(chunk_size)
        block = held + chunk
        if not block:
            break
        held = b""
        if chunk and block.endswith(b"\r"):
            block, held = block[:-1], b"\r"
            if not block:
                continue
        while t < len(targets) and targets[t] < base + len(block):
            offset = targets[t] - base
            if offset <= 0 and after_line_end:
                start = 0
            else:
                match = _LINE_END.search(block, max(offset - 1, 0))
                if match is None:
                    break  # the line goes on into the next block
                start = match.end()
            _add(found, base + start, lines + _count_line_ends(block[:start]))
            while t < len(targets) and targets[t] <= base + start:
                t += 1
        lines += _count_line_ends(block)
        after_line_end = block.endswith((b"\n", b"\r"))
        base += len(block)
        if not chunk:
            break
    if found and found[-1][0] >= base and not (held or fp.read(1)):
        found.pop()  # the end of the stream starts no line
    return found


def _add(found: list[tuple[int, int]], offset: int, line: int) -> None:
    if not found or found[-1][0] != offset:
        found.append((offset, line))


def _count_line_ends(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


class _Range(io.RawIOBase):
    """A read-only view of ``length`` bytes of a stream from its current position."""

    def __init__(self, fp: BinaryIO, length: int | None):
        self.fp, self.left = fp, length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left is None:
            return self.fp.read(size)
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.fp.read(size)
        self.left -= len(data)
        return data


def shard_batches(shard: Shard, input_format: InputFormat | str, open_input: Opener, max_bytes: int | None = None,
                  batch_size: int = BATCH_DOCUMENTS, batch_chars: int | None = BATCH_CHARS,
                  ) -> Iterator[LineBatch | list[Document]]:
    """The shard's documents in order, in batches of at most ``batch_size`` documents (ending
    early at ``batch_chars`` characters): LineBatches of one piece's lines (ONE_DOC_PER_LINE),
    numbered as a serial read of the whole input numbers them, or lists of file documents."""
    if InputFormat(input_format) is InputFormat.ONE_DOC_PER_FILE:
        limit = MAX_DOCUMENT_BYTES_PER_FILE if max_bytes is None else max_bytes
        yield from batched((_file_document(piece, open_input, limit) for piece in shard.pieces), batch_size, batch_chars)
        return
    for piece in shard.pieces:
        with open_input(piece.uri) as fp:
            if piece.start:
                fp.seek(piece.start)
            length = None if piece.end is None else piece.end - piece.start
            # Only the object's first bytes can be a BOM; later a U+FEFF is part of a line.
            yield from read_line_batches(_Range(fp, length), piece.name, max_bytes, first_line=piece.first_line,
                                         strip_bom=piece.start == 0, batch_lines=batch_size, batch_chars=batch_chars)


def shard_documents(shard: Shard, input_format: InputFormat | str, open_input: Opener,
                    max_bytes: int | None = None) -> Iterator[Document]:
    """Every document of the shard, in order, numbered as a serial read of the whole input numbers them."""
    for batch in shard_batches(shard, input_format, open_input, max_bytes):
        yield from batch.documents() if isinstance(batch, LineBatch) else batch


def _file_document(piece: Piece, open_input: Opener, limit: int) -> Document:
    with open_input(piece.uri) as fp:
        return read_file_document(fp, piece.name, limit)


def classify_shard(model: TextClassifier | Scorer, batches: Iterable[LineBatch | list[Document]], out: BinaryIO,
                   index: int = 0, explain: bool = False,
                   between_batches: Callable[[int], None] | None = None) -> ShardResult:
    """Classifies the batches of ``shard_batches``, writing predictions.jsonl lines to ``out``.

    Every document yields exactly one line, a prediction or an error record. Counts error
    records and top classes (multi-class) or assigned labels (multi-label).
    ``between_batches(documents so far)`` runs after each batch (progress, stop requests).
    """
    result = ShardResult(index, class_counts=dict.fromkeys(model.labels_, 0))
    multi_label = model.mode is Mode.MULTI_LABEL
    for batch in batches:
        if explain:
            jsonl, errors, counts = _explained_batch(model, batch.documents() if isinstance(batch, LineBatch) else batch)
        else:
            if isinstance(batch, LineBatch):
                texts = [text for text in batch.texts if text is not None] if batch.errors else batch.texts
            else:
                texts = [d.text for d in batch if d.error is None]
            scores = model.predict_scores(texts)
            jsonl, errors, counts = encode_predictions(batch, model.labels_, scores, multi_label)
        out.write(jsonl)
        result.bytes += len(jsonl)
        result.documents += len(batch)
        result.errors += errors
        for name, count in zip(model.labels_, counts):
            result.class_counts[name] += int(count)
        if between_batches is not None:
            between_batches(result.documents)
    return result


def _explained_batch(model: TextClassifier, batch: list[Document]) -> tuple[bytes, int, list[int]]:
    """The general path, with Explanations: one record dict per document."""
    from classifier_core.inference import classify_documents

    records = classify_documents(model, batch, explain=True)
    buffer = io.BytesIO()
    write_jsonl(records, buffer)
    position = {name: i for i, name in enumerate(model.labels_)}
    counts = [0] * len(model.labels_)
    for record in records:
        if "Classes" in record:
            counts[position[record["Classes"][0]["Name"]]] += 1
        for label in record.get("Labels", []):
            if label["Score"] >= LABEL_THRESHOLD:
                counts[position[label["Name"]]] += 1
    return buffer.getvalue(), sum("ErrorCode" in r for r in records), counts

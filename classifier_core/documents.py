"""Classification job input readers: one document per line or per file (SPEC §5).

Inputs may be gigabytes, so ONE_DOC_PER_LINE files are read in chunks and never held
whole; a ONE_DOC_PER_FILE document is read only up to its size limit. A document that
cannot be classified is not an exception: it becomes a ``Document`` carrying an error code,
so that every input document yields exactly one output record.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from classifier_core.config import MAX_DOCUMENT_BYTES_PER_FILE, InputFormat

CHUNK_SIZE = 1 << 20
EMPTY_MESSAGE = "document is empty"
UTF8_BOM = b"\xef\xbb\xbf"


class DocumentError(str, enum.Enum):
    """Why a document cannot be classified (the ErrorCode values of SPEC §5)."""

    INVALID_ENCODING = "INVALID_ENCODING"
    EMPTY_DOCUMENT = "EMPTY_DOCUMENT"
    DOCUMENT_SIZE_EXCEEDED = "DOCUMENT_SIZE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class Document:
    """One input document, or the reason it cannot be classified.

    Attributes:
        file: Base name of the file the document came from.
        line: Zero-based line number; None for ONE_DOC_PER_FILE.
        text: The decoded text; None when ``error`` is set.
        error: Why the document cannot be classified, if it cannot.
        error_message: Human-readable detail of ``error``.
    """

    file: str
    line: int | None
    text: str | None
    error: DocumentError | None = None
    error_message: str | None = None


def split_lines(fp: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yields the raw bytes of each line of a binary stream, without its line end.

    A line ends at LF, CR or CRLF (one line end, also when split across two chunks);
    U+2028 is not a line end. A final line without a line end is a line; a trailing line
    end does not start another one. A leading BOM is not stripped here.

    Args:
        fp: Binary file object, read from its current position.
        chunk_size: Bytes read per call to ``fp.read``.

    Yields:
        Each line's bytes.
    """
    for line, _ in _lines(_chunks(fp, chunk_size)):
        yield line  # max_bytes is None, so every line is kept


def read_lines(
    fp: BinaryIO,
    file_name: str,
    max_bytes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    first_line: int = 0,
    strip_bom: bool = True,
) -> Iterator[Document]:
    """Reads a ONE_DOC_PER_LINE input: one document per line, line numbers from 0.

    A leading UTF-8 BOM is stripped. A bad line spoils only itself. An oversized line
    is counted, not kept, so one huge line cannot exhaust memory.

    Args:
        fp: Binary file object.
        file_name: Base name of the file, copied into each document.
        max_bytes: Largest document in UTF-8 bytes; None for no limit.
        chunk_size: Bytes read per call to ``fp.read``.
        first_line: Number of the stream's first line (a shard starting mid-file).
        strip_bom: Strip a leading BOM (False for a stream starting mid-file).

    Yields:
        One ``Document`` per line, in order.
    """
    for batch in read_line_batches(fp, file_name, max_bytes, chunk_size, first_line, strip_bom):
        yield from batch.documents()


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Consecutive lines of one ONE_DOC_PER_LINE input, read in bulk: line ``first_line + i``
    is the text ``texts[i]`` or, where that is None, the error document ``errors[i]``."""

    file: str
    first_line: int
    texts: list[str | None]
    errors: dict[int, Document]

    def __len__(self) -> int:
        return len(self.texts)

    def documents(self) -> list[Document]:
        """The batch as one Document per line."""
        return [self.errors[i] if text is None else Document(self.file, self.first_line + i, text)
                for i, text in enumerate(self.texts)]


def read_line_batches(
    fp: BinaryIO,
    file_name: str,
    max_bytes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    first_line: int = 0,
    strip_bom: bool = True,
    batch_lines: int = 10_000,
    batch_chars: int | None = None,
) -> Iterator[LineBatch]:
    """``read_lines`` in batches of at most ``batch_lines`` lines (ending early once their texts
    reach ``batch_chars`` characters): the lines a chunk ends are decoded in one call, and no
    Document is made for a line that can be classified."""
    if batch_lines < 1:
        raise ValueError(f"batch size must be at least 1; found {batch_lines}")
    chunks = _chunks(fp, chunk_size)
    if strip_bom:
        chunks = _strip_bom(chunks)
    texts: list[str | None] = []
    errors: dict[int, Document] = {}
    start = number = first_line  # the first line of the batch, of the chunk's lines
    chars = 0
    for group in _line_groups(chunks, max_bytes):
        decoded, group_errors = _decode_lines(group, file_name, number, max_bytes)
        position = 0
        while position < len(decoded):
            take = decoded[position:position + batch_lines - len(texts)]
            first, end = number + position, number + position + len(take)
            if len(group_errors) <= len(take):
                errors.update((line - start, doc) for line, doc in group_errors.items() if first <= line < end)
            else:  # (a chunk of mostly bad lines: look up this slice's lines, not every error per slice)
                errors.update((line - start, group_errors[line]) for line in range(first, end) if line in group_errors)
            texts += take
            chars += sum(len(text) for text in take if text is not None)
            position += len(take)
            if len(texts) >= batch_lines or (batch_chars is not None and chars >= batch_chars):
                yield LineBatch(file_name, start, texts, errors)
                start += len(texts)
                texts, errors, chars = [], {}, 0
        number += len(decoded)
    if texts:
        yield LineBatch(file_name, start, texts, errors)


def read_file_document(
    fp: BinaryIO, file_name: str, max_bytes: int = MAX_DOCUMENT_BYTES_PER_FILE
) -> Document:
    """Reads a ONE_DOC_PER_FILE input: the whole file is one document.

    Reads at most ``max_bytes`` + 1 bytes past a BOM, so a huge file is never read whole.

    Args:
        fp: Binary file object.
        file_name: Base name of the file.
        max_bytes: Largest document in UTF-8 bytes (BOM not counted).

    Returns:
        The document, or the reason it cannot be classified.
    """
    start = fp.tell() if fp.seekable() else None
    data = _read_at_most(fp, max_bytes + 1 + len(UTF8_BOM))
    bom = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    if len(data) - bom > max_bytes:
        size = _stream_size(fp, start)
        found = f"more than {max_bytes}" if size is None else f"{size - bom}"
        return _size_exceeded(file_name, None, found, max_bytes)
    return _decode(data[bom:], file_name, None, "file")


def read_documents(
    fp: BinaryIO,
    file_name: str,
    input_format: InputFormat | str,
    max_bytes: int | None = None,
) -> Iterator[Document]:
    """Reads the documents of one input file in the given format.

    Args:
        fp: Binary file object.
        file_name: Base name of the file.
        input_format: ONE_DOC_PER_LINE or ONE_DOC_PER_FILE.
        max_bytes: Largest document in UTF-8 bytes; None means no limit per line and
            ``MAX_DOCUMENT_BYTES_PER_FILE`` per file.

    Returns:
        An iterator over the file's documents, in order.

    Raises:
        ValueError: ``input_format`` is not an ``InputFormat``.
    """
    if InputFormat(input_format) is InputFormat.ONE_DOC_PER_LINE:
        return read_lines(fp, file_name, max_bytes)
    limit = MAX_DOCUMENT_BYTES_PER_FILE if max_bytes is None else max_bytes
    return iter([read_file_document(fp, file_name, limit)])


def batched(documents: Iterable[Document], size: int, max_chars: int | None = None) -> Iterator[list[Document]]:
    """Groups documents into lists of at most ``size``, keeping memory bounded.

    Args:
        documents: Any iterable of documents; consumed lazily.
        size: Largest batch.
        max_chars: A batch also ends once its texts reach this many characters (None: no limit),
            so a batch of long documents stays small.

    Yields:
        Non-empty lists of documents, in order.

    Raises:
        ValueError: ``size`` is less than 1.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1; found {size}")
    iterator = iter(documents)
    if max_chars is None:
        while batch := list(itertools.islice(iterator, size)):
            yield batch
        return
    batch, chars = [], 0
    for document in iterator:
        batch.append(document)
        chars += len(document.text or "")
        if len(batch) >= size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _chunks(fp: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1; found {chunk_size}")
    while chunk := fp.read(chunk_size):
        yield chunk


def _strip_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # Tiny chunks may split the BOM itself, so gather enough bytes to see it whole.
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(UTF8_BOM):
            break
    head = head.removeprefix(UTF8_BOM)
    if head:
        yield head
    yield from chunks


def _lines(
    chunks: Iterable[bytes], max_bytes: int | None = None
) -> Iterator[tuple[bytes | None, int]]:
    """Yields (line bytes, size) per line; the bytes are None for lines over max_bytes."""
    for group in _line_groups(chunks, max_bytes):
        yield from group


def _line_groups(
    chunks: Iterable[bytes], max_bytes: int | None = None
) -> Iterator[list[tuple[bytes | None, int]]]:
    """Per chunk, the (line bytes, size) of the lines it ends; the bytes are None for lines
    over max_bytes. A line longer than a chunk is carried over, counted but not kept once
    it is too big."""
    parts: list[bytes] = []  # the unfinished line, carried across chunks
    size = 0
    after_cr = False
    for chunk in chunks:
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks ends no new line
        group: list[tuple[bytes | None, int]] = []
        pieces = chunk.splitlines(keepends=True)  # bytes split only at \r, \n, \r\n
        for piece in pieces:
            content = _without_line_end(piece)
            if content is piece:
                parts.append(piece)
                size += len(piece)
                if max_bytes is not None and size > max_bytes:
                    parts = [b""]  # too big already: keep counting, stop keeping
                continue
            if not parts:  # the common case: the whole line lies in this chunk
                group.append(_keep(content, len(content), max_bytes))
                continue
            group.append(_keep(b"".join(parts) + content, size + len(content), max_bytes))
            parts, size = [], 0
        after_cr = bool(pieces) and pieces[-1].endswith(b"\r")
        if group:
            yield group
    if parts:
        yield [_keep(b"".join(parts), size, max_bytes)]


def _decode_lines(group: list[tuple[bytes | None, int]], file_name: str, first_line: int,
                  max_bytes: int | None) -> tuple[list[str | None], dict[int, Document]]:
    """The texts of consecutive lines (None for a line that cannot be classified) and the error
    documents of those, by line number."""
    raws = [raw for raw, _ in group]
    texts: list[str | None] | None = None
    if None not in raws:
        try:  # all at once, unless a line is bad (no line holds a line end)
            texts = b"\n".join(raws).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            pass
    errors: dict[int, Document] = {}
    if texts is None:
        texts = []
        for line, (raw, size) in enumerate(group, start=first_line):
            document = (_size_exceeded(file_name, line, f"{size}", max_bytes) if raw is None
                        else _decode(raw, file_name, line, "line"))
            if document.error is not None:
                errors[line] = document
            texts.append(document.text)
    for i, text in enumerate(texts):
        if text is not None and (not text or text.isspace()):  # as _decode's ``not text.strip()``
            errors[first_line + i] = Document(file_name, first_line + i, None, DocumentError.EMPTY_DOCUMENT,
                                              EMPTY_MESSAGE)
            texts[i] = None
    return texts, errors


def _without_line_end(piece: bytes) -> bytes:
    """Returns piece without its line end, or piece itself (same object) if it has none."""
    if piece.endswith(b"\r\n"):
        return piece[:-2]
    if piece.endswith((b"\n", b"\r")):
        return piece[:-1]
    return piece


def _keep(line: bytes, size: int, max_bytes: int | None) -> tuple[bytes | None, int]:
    if max_bytes is not None and size > max_bytes:
        return None, size
    return line, size


def _decode(raw: bytes, file_name: str, line: int | None, what: str) -> Document:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = (
            f"{what} is not valid UTF-8: invalid byte 0x{raw[exc.start]:02x} "
            f"at offset {exc.start}"
        )
        return Document(file_name, line, None, DocumentError.INVALID_ENCODING, message)
    if not text.strip():
        return Document(
            file_name, line, None, DocumentError.EMPTY_DOCUMENT, EMPTY_MESSAGE
        )
    return Document(file_name, line, text)


def _size_exceeded(
    file_name: str, line: int | None, found: str, max_bytes: int | None
) -> Document:
    message = f"document is {found} bytes; the limit is {max_bytes} bytes"
    return Document(file_name, line, None, DocumentError.DOCUMENT_SIZE_EXCEEDED, message)


def _read_at_most(fp: BinaryIO, limit: int) -> bytes:
    # Raw and network file objects may return short reads before the end.
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0 and (part := fp.read(remaining)):
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _stream_size(fp: BinaryIO, start: int | None) -> int | None:
    """Returns the bytes from start to the end, or None if the stream cannot seek."""
    if start is None:
        return None
    return fp.seek(0, 2) - start

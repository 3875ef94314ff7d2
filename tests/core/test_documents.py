"""Tests of the job input readers (SPEC §5): line splitting, decoding, limits."""

from __future__ import annotations

import io
import random

import pytest

from classifier_core.config import MAX_DOCUMENT_BYTES_PER_FILE, InputFormat
from classifier_core.documents import (
    Document,
    DocumentError,
    batched,
    read_documents,
    read_file_document,
    read_lines,
    split_lines,
)

BOM = b"\xef\xbb\xbf"
EMPTY = DocumentError.EMPTY_DOCUMENT
INVALID = DocumentError.INVALID_ENCODING
TOO_BIG = DocumentError.DOCUMENT_SIZE_EXCEEDED


def lines(data: bytes, chunk_size: int = 1 << 20) -> list[bytes]:
    return list(split_lines(io.BytesIO(data), chunk_size))


def docs(data: bytes, **kwargs) -> list[Document]:
    return list(read_lines(io.BytesIO(data), "f.txt", **kwargs))


def empty(line: int | None) -> Document:
    return Document("f.txt", line, None, EMPTY, "document is empty")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\nb\n", [b"a", b"b"]),
        (b"a\rb\r", [b"a", b"b"]),
        (b"a\r\nb\r\n", [b"a", b"b"]),
        (b"a\nb\rc\r\nd", [b"a", b"b", b"c", b"d"]),
        (b"a\n\rb", [b"a", b"", b"b"]),  # LF then CR: two line ends
        (b"a\r\r\nb", [b"a", b"", b"b"]),
        (b"a\xe2\x80\xa8b\n", [b"a\xe2\x80\xa8b"]),  # U+2028 is not a line end
        (b"a\x0bb\x0cc\x1cd\x85e", [b"a\x0bb\x0cc\x1cd\x85e"]),  # nor are VT, FF, FS, NEL
        (b"last", [b"last"]),
        (b"a\nlast", [b"a", b"last"]),
        (b"a\n", [b"a"]),  # no phantom line after a trailing line end
        (b"", []),
        (b"\n\n", [b"", b""]),
        (b"\r\n", [b""]),
        (b"\n", [b""]),
    ],
)
def test_split_lines(data, expected):
    assert lines(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"ab\r\ncd\r\nef",
        b"\r\n\r\n\r\n",
        b"a\rb\r\nc\n\rd\r\r\n\n",
        b"x\xe2\x80\xa8y\r\nz\r",
        b"long line without end",
        b"\r",
        b"\rx",
    ],
)
def test_split_lines_same_for_every_chunk_size(data):
    expected = lines(data)
    for chunk_size in range(1, len(data) + 2):
        assert lines(data, chunk_size) == expected, chunk_size


def test_crlf_split_across_chunks_is_one_line_end():
    # chunk 1 ends with CR, chunk 2 starts with LF
    assert lines(b"ab\r\ncd", chunk_size=3) == [b"ab", b"cd"]
    assert lines(b"a\r\nb", chunk_size=2) == [b"a", b"b"]
    assert lines(b"a\r\n\r\nb", chunk_size=1) == [b"a", b"", b"b"]


def test_cr_at_chunk_end_followed_by_other_byte():
    assert lines(b"ab\rcd", chunk_size=3) == [b"ab", b"cd"]
    assert lines(b"ab\r\rcd", chunk_size=3) == [b"ab", b"", b"cd"]


def test_random_inputs_count_of_lines():
    rng = random.Random(0)
    alphabet = [b"a", b"\r", b"\n", b"\xe2\x80\xa8", b"\xff", b" "]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        ends = data.count(b"\r\n") + data.replace(b"\r\n", b"").count(b"\r")
        ends += data.replace(b"\r\n", b"").count(b"\n")
        unterminated = bool(data) and not data.endswith((b"\r", b"\n"))
        expected_count = ends + int(unterminated)
        for chunk_size in (1, 2, 3, 7, 1 << 20):
            found = lines(data, chunk_size)
            assert len(found) == expected_count, (data, chunk_size)
            assert found == lines(data), (data, chunk_size)
            assert len(docs(data, chunk_size=chunk_size)) == expected_count


def test_read_lines_documents_in_order():
    assert docs(b"hello\nw\xc3\xb6rld\r\n") == [
        Document("f.txt", 0, "hello"),
        Document("f.txt", 1, "wörld"),
    ]


def test_read_lines_keeps_u2028_and_surrounding_spaces():
    assert docs(b" a\xe2\x80\xa8b ") == [Document("f.txt", 0, " a\u2028b ")]


def test_only_line_ends_give_empty_documents():
    assert docs(b"\n\n") == [empty(0), empty(1)]


def test_blank_and_whitespace_lines_are_empty_documents():
    assert docs(b"a\n\n \t\nb\r\n\xe3\x80\x80\n") == [
        Document("f.txt", 0, "a"),
        empty(1),
        empty(2),
        Document("f.txt", 3, "b"),
        empty(4),  # U+3000 ideographic space
    ]


def test_invalid_utf8_spoils_only_its_line():
    assert docs(b"one\nabc\xff\nthree\n\xe2\x80\n") == [
        Document("f.txt", 0, "one"),
        Document(
            "f.txt", 1, None, INVALID, "line is not valid UTF-8: invalid byte 0xff at offset 3"
        ),
        Document("f.txt", 2, "three"),
        Document(
            "f.txt", 3, None, INVALID, "line is not valid UTF-8: invalid byte 0xe2 at offset 0"
        ),
    ]


def test_bom_stripped_from_first_line_only():
    assert docs(BOM + b"a\n" + BOM + b"b\n") == [
        Document("f.txt", 0, "a"),
        Document("f.txt", 1, "\ufeffb"),
    ]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 100])
def test_bom_stripped_for_any_chunk_size(chunk_size):
    assert docs(BOM + b"a\nb", chunk_size=chunk_size) == [
        Document("f.txt", 0, "a"),
        Document("f.txt", 1, "b"),
    ]
    assert docs(BOM, chunk_size=chunk_size) == []
    assert docs(BOM + b"\n", chunk_size=chunk_size) == [empty(0)]


def test_line_size_limit():
    data = b"12345\n123456\n" + b"x" * 12345 + b"\nok"
    assert docs(data, max_bytes=5) == [
        Document("f.txt", 0, "12345"),
        Document("f.txt", 1, None, TOO_BIG, "document is 6 bytes; the limit is 5 bytes"),
        Document("f.txt", 2, None, TOO_BIG, "document is 12345 bytes; the limit is 5 bytes"),
        Document("f.txt", 3, "ok"),
    ]


def test_line_size_limit_counts_utf8_bytes_not_chars():
    assert docs("ééé".encode(), max_bytes=5) == [
        Document("f.txt", 0, None, TOO_BIG, "document is 6 bytes; the limit is 5 bytes")
    ]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 1000])
def test_line_size_limit_same_for_every_chunk_size(chunk_size):
    data = b"abcdef\r\nabc\r\nabcdefgh"
    found = docs(data, max_bytes=4, chunk_size=chunk_size)
    assert [(d.line, d.text, d.error_message) for d in found] == [
        (0, None, "document is 6 bytes; the limit is 4 bytes"),
        (1, "abc", None),
        (2, None, "document is 8 bytes; the limit is 4 bytes"),
    ]


def test_file_document():
    assert read_file_document(io.BytesIO(b"a\nb\r\nc"), "d.txt") == Document(
        "d.txt", None, "a\nb\r\nc"
    )


def test_file_document_keeps_nul_and_strips_bom():
    found = read_file_document(io.BytesIO(BOM + b"a\x00b"), "d.txt")
    assert found == Document("d.txt", None, "a\x00b")


def test_file_document_errors():
    assert read_file_document(io.BytesIO(b" \n\t"), "d.txt") == Document(
        "d.txt", None, None, EMPTY, "document is empty"
    )
    assert read_file_document(io.BytesIO(b""), "d.txt").error is EMPTY
    assert read_file_document(io.BytesIO(b"ab\xc3("), "d.txt") == Document(
        "d.txt", None, None, INVALID, "file is not valid UTF-8: invalid byte 0xc3 at offset 2"
    )


def test_file_document_size_limit():
    assert read_file_document(io.BytesIO(b"x" * 10), "d.txt", max_bytes=10).text == "x" * 10
    assert read_file_document(io.BytesIO(BOM + b"x" * 10), "d.txt", max_bytes=10).text == (
        "x" * 10
    )
    assert read_file_document(io.BytesIO(b"x" * 12345), "d.txt", max_bytes=10) == Document(
        "d.txt", None, None, TOO_BIG, "document is 12345 bytes; the limit is 10 bytes"
    )
    found = read_file_document(io.BytesIO(BOM + b"x" * 11), "d.txt", max_bytes=10)
    assert found.error_message == "document is 11 bytes; the limit is 10 bytes"


class Unseekable(io.RawIOBase):
    """A stream that records how much was read and cannot seek, like a network body."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.data.readinto(memoryview(buffer)[:3])  # short reads on purpose
        self.read_bytes += count
        return count


def test_file_document_reads_no_more_than_needed():
    stream = Unseekable(b"x" * 1000)
    found = read_file_document(stream, "d.txt", max_bytes=10)
    assert found == Document(
        "d.txt", None, None, TOO_BIG, "document is more than 10 bytes; the limit is 10 bytes"
    )
    assert stream.read_bytes <= 10 + 1 + len(BOM)
    assert read_file_document(Unseekable(b"0123456789"), "d.txt", 10).text == "0123456789"


def test_read_documents_dispatches_on_format():
    data = b"a\nb"
    per_line = list(read_documents(io.BytesIO(data), "f.txt", InputFormat.ONE_DOC_PER_LINE))
    assert per_line == [Document("f.txt", 0, "a"), Document("f.txt", 1, "b")]
    per_file = list(read_documents(io.BytesIO(data), "f.txt", "ONE_DOC_PER_FILE"))
    assert per_file == [Document("f.txt", None, "a\nb")]


def test_read_documents_default_file_limit():
    data = b"x" * (MAX_DOCUMENT_BYTES_PER_FILE + 1)
    (found,) = read_documents(io.BytesIO(data), "f.txt", InputFormat.ONE_DOC_PER_FILE)
    assert found.error is TOO_BIG
    (found,) = read_documents(io.BytesIO(data), "f.txt", InputFormat.ONE_DOC_PER_LINE)
    assert found.text == data.decode()


def test_read_documents_rejects_unknown_format():
    with pytest.raises(ValueError, match="'CSV' is not a valid InputFormat"):
        read_documents(io.BytesIO(b""), "f.txt", "CSV")


def test_batched():
    documents = [Document("f.txt", i, str(i)) for i in range(5)]
    assert list(batched(documents, 2)) == [documents[0:2], documents[2:4], documents[4:]]
    assert list(batched(documents, 5)) == [documents]
    assert list(batched([], 3)) == []


def test_batched_by_characters_too():
    documents = [Document("f.txt", i, "x" * n) for i, n in enumerate([3, 3, 5, 1, 1, 1])]
    documents.insert(3, Document("f.txt", 9, None, DocumentError.EMPTY_DOCUMENT))  # an error counts 0
    assert list(batched(documents, 10, max_chars=6)) == [documents[0:2], documents[2:5], documents[5:]]
    assert list(batched(documents, 2, max_chars=100)) == [documents[0:2], documents[2:4], documents[4:6], documents[6:]]


def test_batched_is_lazy():
    def endless():
        line = 0
        while True:
            yield Document("f.txt", line, "x")
            line += 1

    first = next(batched(endless(), 3))
    assert [d.line for d in first] == [0, 1, 2]


def test_batched_rejects_bad_size():
    with pytest.raises(ValueError, match="batch size must be at least 1; found 0"):
        list(batched([], 0))

"""Property tests: the training CSV parser and the job line splitter on arbitrary bytes.

(1) No input makes the training data reader raise anything but TrainingDataError (the error
    users get, with file and line), and the low-level reader never raises at all.
(2) The job line splitter never crashes, and every input line becomes exactly one Document,
    in order, numbered 0..n-1; the expected lines are computed here independently of the
    code under test (SPEC §5: LF, CR and CRLF end a line; U+2028 does not; a last line without
    a line end counts; a trailing line end adds none), for any chunk size, so a CRLF split
    across two reads is covered.
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier_core.config import Mode, TrainingConfig
from classifier_core.documents import DocumentError, read_line_batches, read_lines, split_lines
from classifier_core.errors import TrainingDataError
from classifier_core.training_data import load_training_data, read_comprehend_csv

# Modest and deterministic: the suite stays fast and a failure reproduces. No example
# database: the checkout is shared, and nothing should appear in it.
PROPERTY = settings(max_examples=150, deadline=2000, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

BOM = b"\xef\xbb\xbf"

# Pieces that matter to the CSV reader: delimiters, quotes, line ends, a BOM, invalid
# UTF-8, NUL, header words, and characters that str.splitlines (but not SPEC §5) breaks at.
CSV_PIECES = [b",", b'"', b'""', b"\n", b"\r", b"\r\n", b"a", b"spam", b"ham", b"|", b" ", b"\t", b"label",
              b"text", b"\xff", b"\xe9", b"\x00", BOM, "é".encode(), b"\xe2\x80\xa8", b"\x1f\x8b", b"\xff\xfe"]
LINE_PIECES = [b"\n", b"\r", b"\r\n", b"a", b"b c", b" ", b"\t", b"\xe2\x80\xa8", b"\xc2\x85", b"\x0b", b"\x0c",
               b"\x1c", b"\xff", b"\x00", BOM, "é".encode(), b"\xe2\x80"]


def pieces(alphabet: list[bytes], max_size: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.lists(st.sampled_from(alphabet), max_size=max_size).map(b"".join),
        st.binary(max_size=max_size * 2),
    )


CONFIGS = st.sampled_from([
    TrainingConfig(),
    TrainingConfig(mode=Mode.MULTI_LABEL),
    TrainingConfig(mode=Mode.MULTI_LABEL, label_delimiter=" "),
    TrainingConfig(strict=True),
])


# --- (1) the training CSV parser ------------------------------------------------------------


@PROPERTY
@given(data=pieces(CSV_PIECES, 60), config=CONFIGS, test_set=st.booleans())
def test_training_csv_raises_only_training_data_error(data, config, test_set):
    try:
        training_set, warnings = load_training_data([("t.csv", io.BytesIO(data))], config, test_set=test_set)
    except TrainingDataError as error:
        assert error.issues and all(str(issue) for issue in error.issues)
        return
    assert len(training_set.texts) == len(training_set.labels) >= (1 if test_set else 2)
    assert all(text.strip() for text in training_set.texts)
    assert all(labels for labels in training_set.labels)


@PROPERTY
@given(data=pieces(CSV_PIECES, 60), config=CONFIGS)
def test_training_csv_reader_never_raises_and_keeps_only_valid_rows(data, config):
    training_set, issues = read_comprehend_csv(io.BytesIO(data), "t.csv", config)
    assert all(str(issue).startswith("t.csv") for issue in issues)
    for text, labels in zip(training_set.texts, training_set.labels, strict=True):
        text.encode("utf-8")  # no undecodable byte ever reaches a kept row
        assert text.strip() and labels and all(label.strip() for label in labels)


# --- (2) the job line splitter ---------------------------------------------------------------


def expected_lines(data: bytes) -> list[bytes]:
    """SPEC §5 line splitting, byte by byte, written independently of classifier_core."""
    lines: list[bytes] = []
    current = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte in (0x0A, 0x0D):
            lines.append(bytes(current))
            current = bytearray()
            if byte == 0x0D and i + 1 < len(data) and data[i + 1] == 0x0A:
                i += 1  # CRLF is one line end
        else:
            current.append(byte)
        i += 1
    if current:  # a last line without a line end is a line; a trailing line end adds none
        lines.append(bytes(current))
    return lines


def classify_expected(line: bytes, max_bytes: int | None) -> DocumentError | None:
    if max_bytes is not None and len(line) > max_bytes:
        return DocumentError.DOCUMENT_SIZE_EXCEEDED
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return DocumentError.INVALID_ENCODING
    return None if text.strip() else DocumentError.EMPTY_DOCUMENT


@PROPERTY
@given(data=pieces(LINE_PIECES, 80), chunk_size=st.one_of(st.integers(1, 8), st.just(1 << 20)))
def test_split_lines_matches_the_spec_for_any_chunk_size(data, chunk_size):
    assert list(split_lines(io.BytesIO(data), chunk_size)) == expected_lines(data)


@PROPERTY
@given(
    data=pieces(LINE_PIECES, 80),
    chunk_size=st.one_of(st.integers(1, 8), st.just(1 << 20)),
    max_bytes=st.one_of(st.none(), st.integers(0, 12)),
    batch_lines=st.integers(1, 5),
)
def test_every_line_is_exactly_one_document_in_order(data, chunk_size, max_bytes, batch_lines):
    lines = expected_lines(data.removeprefix(BOM))  # read_lines strips one leading BOM
    documents = list(read_lines(io.BytesIO(data), "in.txt", max_bytes=max_bytes, chunk_size=chunk_size))
    batches = list(read_line_batches(io.BytesIO(data), "in.txt", max_bytes=max_bytes, chunk_size=chunk_size,
                                     first_line=0, batch_lines=batch_lines))
    assert all(0 < len(batch) <= batch_lines for batch in batches)
    assert [d for batch in batches for d in batch.documents()] == documents
    assert [d.line for d in documents] == list(range(len(lines)))
    assert all(d.file == "in.txt" for d in documents)
    for document, line in zip(documents, lines, strict=True):
        error = classify_expected(line, max_bytes)
        assert document.error == error
        if error is None:
            assert document.text == line.decode("utf-8") and document.error_message is None
        else:
            assert document.text is None and document.error_message

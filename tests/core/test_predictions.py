"""Tests of prediction records, predictions.jsonl and output.tar.gz (SPEC §5)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import numpy as np
import pytest

from classifier_core.documents import Document, DocumentError, LineBatch
from classifier_core.predictions import (
    encode_predictions,
    gzip_writer,
    multi_class_record,
    multi_label_record,
    package_gzip_members,
    package_tar_gz,
    prediction_records,
    write_jsonl,
)


def entries(*pairs):
    return [{"Name": name, "Score": score} for name, score in pairs]


def test_multi_class_top_three_sorted():
    labels = ["a", "b", "c", "d", "e"]
    scores = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    assert multi_class_record(labels, scores) == {
        "Classes": entries(("b", 0.4), ("d", 0.3), ("e", 0.15))
    }


def test_multi_class_fewer_than_three_classes():
    assert multi_class_record(["spam", "ham"], np.array([0.0006, 0.9994])) == {
        "Classes": entries(("ham", 0.9994), ("spam", 0.0006))
    }


def test_multi_class_ties_by_name():
    labels = ["z", "y", "b", "a"]
    assert multi_class_record(labels, np.array([0.25, 0.25, 0.25, 0.25])) == {
        "Classes": entries(("a", 0.25), ("b", 0.25), ("y", 0.25))
    }


def test_scores_rounded_to_six_places_and_plain_floats():
    record = multi_class_record(["a", "b"], np.array([2 / 3, 1 / 3], dtype=np.float32))
    assert record == {"Classes": entries(("a", 0.666667), ("b", 0.333333))}
    assert all(type(entry["Score"]) is float for entry in record["Classes"])


def test_scores_equal_after_rounding_ordered_by_name():
    record = multi_class_record(["b", "a"], np.array([0.5000001, 0.4999999]))
    assert record == {"Classes": entries(("a", 0.5), ("b", 0.5))}


def test_scores_must_match_labels():
    with pytest.raises(ValueError, match=r"expected 2 scores \(one per label\); found 3"):
        multi_class_record(["a", "b"], np.array([0.1, 0.2, 0.7]))


def test_multi_label_fills_to_three():
    labels = ["a", "b", "c", "d", "e"]
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.05])
    assert multi_label_record(labels, scores) == {
        "Labels": entries(("b", 0.9), ("d", 0.3), ("c", 0.2))
    }


def test_multi_label_lists_every_assigned_label():
    labels = ["a", "b", "c", "d", "e"]
    scores = np.array([0.5, 0.9, 0.7, 0.6, 0.49])
    assert multi_label_record(labels, scores) == {
        "Labels": entries(("b", 0.9), ("c", 0.7), ("d", 0.6), ("a", 0.5))
    }


def test_multi_label_none_assigned_and_ties():
    labels = ["c", "b", "a", "d"]
    assert multi_label_record(labels, np.array([0.1, 0.1, 0.1, 0.1])) == {
        "Labels": entries(("a", 0.1), ("b", 0.1), ("c", 0.1))
    }


def test_multi_label_fewer_than_three_labels():
    assert multi_label_record(["x", "y"], np.array([0.2, 0.8])) == {
        "Labels": entries(("y", 0.8), ("x", 0.2))
    }


def test_prediction_records_per_line_with_errors():
    documents = [
        Document("f.txt", 0, "hello"),
        Document("f.txt", 1, None, DocumentError.EMPTY_DOCUMENT, "document is empty"),
        Document("f.txt", 2, "bye"),
    ]
    scores = np.array([[0.9994, 0.0006], [0.2, 0.8]])
    records = prediction_records(documents, ["ham", "spam"], scores, multi_label=False)
    assert records == [
        {"File": "f.txt", "Line": "0", "Classes": entries(("ham", 0.9994), ("spam", 0.0006))},
        {
            "File": "f.txt",
            "Line": "1",
            "ErrorCode": "EMPTY_DOCUMENT",
            "ErrorMessage": "document is empty",
        },
        {"File": "f.txt", "Line": "2", "Classes": entries(("spam", 0.8), ("ham", 0.2))},
    ]
    assert [list(record) for record in records] == [
        ["File", "Line", "Classes"],
        ["File", "Line", "ErrorCode", "ErrorMessage"],
        ["File", "Line", "Classes"],
    ]


def test_prediction_records_per_file_multi_label():
    documents = [
        Document("a.txt", None, "x"),
        Document("b.txt", None, None, DocumentError.DOCUMENT_SIZE_EXCEEDED, "too big"),
    ]
    records = prediction_records(documents, ["p", "q"], np.array([[0.7, 0.6]]), True)
    assert records == [
        {"File": "a.txt", "Labels": entries(("p", 0.7), ("q", 0.6))},
        {"File": "b.txt", "ErrorCode": "DOCUMENT_SIZE_EXCEEDED", "ErrorMessage": "too big"},
    ]


def test_prediction_records_all_errors_without_scores():
    documents = [Document("f.txt", 0, None, DocumentError.INVALID_ENCODING, "bad")]
    assert prediction_records(documents, ["a"], None, multi_label=False) == [
        {"File": "f.txt", "Line": "0", "ErrorCode": "INVALID_ENCODING", "ErrorMessage": "bad"}
    ]


def test_prediction_records_rejects_wrong_row_count():
    documents = [Document("f.txt", 0, "a"), Document("f.txt", 1, "b")]
    message = r"expected 2 score rows \(one per document without an error\); found 1"
    with pytest.raises(ValueError, match=message):
        prediction_records(documents, ["a", "b"], np.array([[0.5, 0.5]]), False)
    with pytest.raises(ValueError, match="found 0"):
        prediction_records(documents, ["a", "b"], None, False)


def test_write_jsonl():
    records = [
        {"File": "f.txt", "Line": "0", "Classes": entries(("héllo", 0.75), ("b", 0.25))},
        {"File": "f.txt", "Line": "1", "ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "e"},
    ]
    out = io.BytesIO()
    assert write_jsonl(iter(records), out) == 2
    assert out.getvalue().decode("utf-8") == (
        '{"File": "f.txt", "Line": "0", "Classes": [{"Name": "héllo", "Score": 0.75}, '
        '{"Name": "b", "Score": 0.25}]}\n'
        '{"File": "f.txt", "Line": "1", "ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "e"}\n'
    )
    assert [json.loads(line) for line in out.getvalue().splitlines()] == records


def test_write_jsonl_empty_and_nan():
    assert write_jsonl([], io.BytesIO()) == 0
    with pytest.raises(ValueError, match="Out of range float values"):
        write_jsonl([{"Score": float("nan")}], io.BytesIO())


def test_package_tar_gz(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_bytes(b'{"File": "a"}\n')
    matrix = tmp_path / "cm.json"
    matrix.write_bytes(b"{}")
    matrix.chmod(0o600)
    archive = tmp_path / "output.tar.gz"
    sources = [("predictions.jsonl", predictions), ("confusion_matrix.json", str(matrix))]
    package_tar_gz(sources, archive)
    assert not (tmp_path / "output.tar.gz.partial").exists()
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["predictions.jsonl", "confusion_matrix.json"]
        assert [(m.uid, m.gid, m.uname, m.gname, m.mode) for m in members] == [
            (0, 0, "", "", 0o644)
        ] * 2
        assert all(m.isreg() for m in members)
        assert tar.extractfile("predictions.jsonl").read() == b'{"File": "a"}\n'
        assert tar.extractfile("confusion_matrix.json").read() == b"{}"


@pytest.mark.parametrize(
    "arcname", ["/etc/passwd", "../x", "a/b", "..", "a..b", "", ".", "a\\b"]
)
def test_package_tar_gz_rejects_unsafe_names(tmp_path, arcname):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    archive = tmp_path / "out.tar.gz"
    with pytest.raises(ValueError, match="archive member name must be a flat file name"):
        package_tar_gz([(arcname, source)], archive)
    assert list(tmp_path.iterdir()) == [source]


def test_package_tar_gz_rejects_duplicate_names(tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="found 'a' twice"):
        package_tar_gz([("a", source), ("a", source)], tmp_path / "out.tar.gz")


def test_package_tar_gz_rejects_directory(tmp_path):
    archive = tmp_path / "out.tar.gz"
    with pytest.raises(ValueError, match="archive member must be a regular file"):
        package_tar_gz([("d", tmp_path)], archive)
    assert not archive.exists()
    assert not (tmp_path / "out.tar.gz.partial").exists()


def test_package_tar_gz_failure_midway_leaves_no_archive(tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100_000)
    archive = tmp_path / "out.tar.gz"
    with pytest.raises(FileNotFoundError):
        package_tar_gz([("a", source), ("b", tmp_path / "missing")], archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_package_tar_gz_failure_keeps_previous_archive(tmp_path):
    archive = tmp_path / "out.tar.gz"
    archive.write_bytes(b"previous")
    with pytest.raises(FileNotFoundError):
        package_tar_gz([("a", tmp_path / "missing")], archive)
    assert archive.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar.gz"]


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("n_labels", [1, 2, 3, 5, 40])
def test_encode_predictions_writes_the_bytes_of_the_records(multi_label, n_labels):
    """The job's fast encoder against the general path: ties after rounding (ordered by name),
    scores next to a rounding half, scores around 0.5, unicode names and files, error records."""
    rng = np.random.default_rng(n_labels)
    labels = sorted([f"l\u00e9bel-{i}" for i in range(n_labels - 1)] + ['quo"te'])
    documents, rows = [], []
    for i in range(400):
        if i % 37 == 5:
            documents.append(Document("f\u00fc.txt", i, None, DocumentError.EMPTY_DOCUMENT, "document is empty"))
            continue
        documents.append(Document("f\u00fc.txt" if i < 200 else "b.txt", i if i % 3 else None, "text"))
        kind = i % 4
        if kind == 0:
            row = rng.random(n_labels)
        elif kind == 1:  # equal after rounding, different before
            row = np.full(n_labels, 0.25) + rng.random(n_labels) * 4e-7
        elif kind == 2:  # exactly on and next to rounding halves, and around the 0.5 threshold
            row = rng.choice([0.0000005, 0.1234565, 0.4999995, 0.49999949, 0.5, 0.5000004, 1.0, 0.0], n_labels)
        else:
            row = rng.dirichlet(np.ones(n_labels))
        rows.append(row)
    scores = np.array(rows)
    expected = io.BytesIO()
    records = prediction_records(documents, labels, scores, multi_label)
    write_jsonl(records, expected)
    jsonl, errors, counts = encode_predictions(documents, labels, scores, multi_label)
    assert jsonl == expected.getvalue()
    assert errors == sum("ErrorCode" in r for r in records) > 0
    field = "Labels" if multi_label else "Classes"
    tally = dict.fromkeys(labels, 0)
    for record in records:
        for entry in record.get(field, [])[: None if multi_label else 1]:
            if not multi_label or entry["Score"] >= 0.5:
                tally[entry["Name"]] += 1
    assert dict(zip(labels, counts.tolist())) == tally


def test_encode_predictions_refuses_what_the_records_refuse():
    documents = [Document("a.txt", 0, "x"), Document("a.txt", 1, "y")]
    with pytest.raises(ValueError, match="expected 2 score rows"):
        encode_predictions(documents, ["a", "b"], np.zeros((1, 2)), False)
    with pytest.raises(ValueError):
        encode_predictions(documents, ["a", "b"], np.array([[0.5, np.nan], [0.5, 0.5]]), False)
    assert encode_predictions([], ["a"], None, False)[:2] == (b"", 0)


def test_every_score_is_written_as_python_writes_it():
    from classifier_core.predictions import _score_texts

    units = np.arange(10**6 + 1)
    assert _score_texts(units).to_pylist() == [repr(u / 10**6) for u in units.tolist()]


@pytest.mark.parametrize("parts", [[], [b""], [b"one line\n"], [b"a" * 511, b"b" * 2, b"c" * 70_000, b"", b"d\n" * 9]])
def test_gzip_members_make_the_tar_gz_tarfile_writes(tmp_path, parts):
    """Members compressed apart, then copied: gzip, tar and tarfile read the archive as one
    stream, and it decompresses to exactly the tar tarfile writes for the same file."""
    members = io.BytesIO()
    for part in parts:
        with gzip_writer(members) as out:  # (GzipFile leaves the stream it writes to open)
            out.write(part)
    data = b"".join(parts)
    archive = tmp_path / "output.tar.gz"
    package_gzip_members("predictions.jsonl", len(data), io.BytesIO(members.getvalue()), archive)
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["predictions.jsonl"]
        info = tar.getmember("predictions.jsonl")
        assert tar.extractfile(info).read() == data
    reference = io.BytesIO()
    with tarfile.open(fileobj=reference, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))  # the same header fields, tarfile's own layout
    assert gzip.decompress(archive.read_bytes()) == reference.getvalue()
    listed = subprocess.run(["tar", "-tzvf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "predictions.jsonl" in listed and str(len(data)) in listed
    subprocess.run(["gzip", "-t", str(archive)], check=True)


@pytest.mark.parametrize("multi_label", [False, True])
def test_a_line_batch_encodes_as_its_documents(multi_label):
    """Lines read in bulk (no Document per line) give the bytes their Documents give."""
    labels = ["b", "a", "c\u00e9", "d"]
    rng = np.random.default_rng(3)
    texts = [f"text {i}" for i in range(50)]
    clean = LineBatch("f\u00fc \"x\".txt", 1_000, texts, {})
    scores = rng.dirichlet(np.ones(4), size=50)
    fast, general = encode_predictions(clean, labels, scores, multi_label), encode_predictions(
        clean.documents(), labels, scores, multi_label)
    assert fast[:2] == general[:2] and fast[2].tolist() == general[2].tolist()
    errors = {3: Document(clean.file, 1_003, None, DocumentError.EMPTY_DOCUMENT, "document is empty")}
    dirty = LineBatch(clean.file, 1_000, texts[:3] + [None] + texts[4:], errors)
    jsonl, n_errors, counts = encode_predictions(dirty, labels, np.delete(scores, 3, axis=0), multi_label)
    assert (jsonl, n_errors) == encode_predictions(dirty.documents(), labels, np.delete(scores, 3, axis=0), multi_label)[:2]
    assert n_errors == 1 and json.loads(jsonl.splitlines()[3]) == {
        "File": clean.file, "Line": "1003", "ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}

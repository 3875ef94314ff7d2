"""Shards: cut anywhere, read in pieces, the documents and the classified bytes of one serial read."""

from __future__ import annotations

import io
import json
import random

import pytest

from classifier_core import shards as shards_module
from classifier_core.config import InputFormat
from classifier_core.documents import read_file_document, read_lines
from classifier_core.model import TextClassifier
from classifier_core.shards import (
    Shard,
    classify_shard,
    line_starts_after,
    plan_shards,
    shard_batches,
    shard_bytes_for,
    shard_documents,
)
from flows.demo_data import multi_class_rows

LINE = InputFormat.ONE_DOC_PER_LINE
FILE = InputFormat.ONE_DOC_PER_FILE


def _opener(path):
    return open(path, "rb")


def _random_text(rng: random.Random, lines: int) -> bytes:
    parts = [b"\xef\xbb\xbf"] if rng.random() < 0.3 else []
    for _ in range(lines):
        word = rng.choice([b"", b" ", b"caf\xc3\xa9 au lait", b"x" * rng.randint(1, 40), b"\xef\xbb\xbfmid-file bom",
                           b"bad \xff byte", b"line\xe2\x80\xa8sep"])
        parts.append(word + rng.choice([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r\n"]))
    if rng.random() < 0.5:
        parts.append(b"no line end at the end")
    return b"".join(parts)


def _expected_starts(data: bytes) -> list[tuple[int, int]]:
    """Every line start but 0, with its line number, by the definition: after LF, CR not before LF."""
    starts, line = [], 0
    for i, byte in enumerate(data):
        if byte == 10 or (byte == 13 and (i + 1 == len(data) or data[i + 1] != 10)):
            line += 1
            if i + 1 < len(data):
                starts.append((i + 1, line))
    return starts


@pytest.mark.parametrize("seed", range(40))
def test_line_starts_after_finds_the_first_line_start_at_or_after_each_position(seed):
    rng = random.Random(seed)
    data = _random_text(rng, rng.randint(0, 60))
    positions = sorted({rng.randint(1, len(data) + 3) for _ in range(rng.randint(0, 8))})
    all_starts = _expected_starts(data)
    expected = []
    for position in positions:
        first = next((s for s in all_starts if s[0] >= position), None)
        if first and first not in expected:
            expected.append(first)
    for chunk_size in (1, 2, 3, 7, 1 << 20):
        assert line_starts_after(io.BytesIO(data), positions, chunk_size) == expected, chunk_size


@pytest.mark.parametrize("seed", range(25))
def test_documents_of_the_shards_are_the_documents_of_one_read(tmp_path, seed):
    rng = random.Random(seed)
    objects = []
    for i in range(rng.randint(1, 4)):
        path = tmp_path / f"in{i}.txt"
        path.write_bytes(_random_text(rng, rng.randint(0, 80)))
        objects.append((str(path), path.name, path.stat().st_size))
    serial = []
    for uri, name, _ in objects:
        with open(uri, "rb") as fp:
            serial += list(read_lines(fp, name, max_bytes=30))
    for shard_size in (1, 5, 17, 64, 1000, 1 << 20):
        shards = plan_shards(objects, LINE, shard_size, _opener)
        assert [s.index for s in shards] == list(range(len(shards)))
        pieced = [d for s in shards for d in shard_documents(Shard.from_dict(s.as_dict()), LINE, _opener, max_bytes=30)]
        assert pieced == serial, shard_size


def test_small_files_share_a_shard_and_large_ones_are_cut(tmp_path):
    objects = []
    for name, lines in (("a.txt", 10), ("b.txt", 10), ("big.txt", 1000), ("c.txt", 10)):
        path = tmp_path / name
        path.write_bytes(b"".join(b"document %d\n" % i for i in range(lines)))
        objects.append((str(path), name, path.stat().st_size))
    shards = plan_shards(objects, LINE, 2000, _opener)
    assert [p.name for p in shards[0].pieces] == ["a.txt", "b.txt"]
    big = [s.pieces[0] for s in shards if s.pieces[0].name == "big.txt"]
    assert len(big) == 7 and big[0].start == 0 and big[-1].end is None
    assert all(a.end == b.start for a, b in zip(big, big[1:]))
    assert [p.name for p in shards[-1].pieces] == ["c.txt"]
    # ONE_DOC_PER_FILE never cuts a file
    assert [len(s.pieces) for s in plan_shards(objects, FILE, 2000, _opener)] == [2, 1, 1]


def test_one_doc_per_file_shards_read_each_file_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(shards_module, "MAX_FILES_PER_SHARD", 2)
    objects = []
    for i in range(5):
        path = tmp_path / f"{i}.txt"
        path.write_bytes(b"one document\nover two lines %d" % i)
        objects.append((str(path), path.name, path.stat().st_size))
    shards = plan_shards(objects, FILE, 1 << 20, _opener)
    assert [len(s.pieces) for s in shards] == [2, 2, 1]
    documents = [d for s in shards for d in shard_documents(s, FILE, _opener)]
    assert documents == [read_file_document(open(uri, "rb"), name) for uri, name, _ in objects]


def test_shard_size_gives_each_worker_about_four_shards_within_bounds():
    assert shard_bytes_for(800 << 20, 2) == 64 << 20
    assert shard_bytes_for(240 << 20, 2) == 30 << 20
    assert shard_bytes_for(10_000, 8) == 4 << 20


def test_classified_shards_concatenate_to_the_serial_bytes(tmp_path):
    rows = multi_class_rows(300)
    model = TextClassifier(search=False).fit([t for _, t in rows], [(label,) for label, _ in rows])
    path = tmp_path / "in.txt"
    texts = [t for _, t in multi_class_rows(700, seed=5)]
    texts[17] = "   "
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    objects = [(str(path), "in.txt", path.stat().st_size)]

    def run(shard_size: int, batch_size: int):
        out, results = io.BytesIO(), []
        for shard in plan_shards(objects, LINE, shard_size, _opener):
            results.append(classify_shard(model, shard_batches(shard, LINE, _opener, batch_size=batch_size), out, shard.index))
        return out.getvalue(), results

    serial, (one,) = run(1 << 30, 2_000)
    pieced, results = run(5_000, 64)
    assert len(results) > 5 and pieced == serial
    records = [json.loads(line) for line in serial.splitlines()]
    assert [r["Line"] for r in records] == [str(i) for i in range(700)]
    assert sum(r.documents for r in results) == one.documents == 700
    assert sum(r.errors for r in results) == one.errors == 1 and records[17]["ErrorCode"] == "EMPTY_DOCUMENT"
    assert sum(r.bytes for r in results) == len(serial)
    for name in model.labels_:
        assert sum(r.class_counts[name] for r in results) == one.class_counts[name]
    assert sum(one.class_counts.values()) == 699


def test_explanations_take_the_general_path_with_the_same_counts(tmp_path):
    rows = multi_class_rows(300)
    model = TextClassifier(search=False).fit([t for _, t in rows], [(label,) for label, _ in rows])
    path = tmp_path / "in.txt"
    path.write_text("\n".join(t for _, t in multi_class_rows(300, seed=8)) + "\n\n", encoding="utf-8")
    shard = plan_shards([(str(path), "in.txt", path.stat().st_size)], LINE, 1 << 20, _opener)[0]
    plain, explained = io.BytesIO(), io.BytesIO()
    a = classify_shard(model, shard_batches(shard, LINE, _opener, batch_size=64), plain)
    b = classify_shard(model, shard_batches(shard, LINE, _opener, batch_size=64), explained, explain=True)
    assert (a.documents, a.errors, a.class_counts) == (b.documents, b.errors, b.class_counts) == (301, 1, a.class_counts)
    for x, y in zip(plain.getvalue().splitlines(), explained.getvalue().splitlines()):
        x, y = json.loads(x), json.loads(y)
        assert "Explanations" in y or "ErrorCode" in y
        y.pop("Explanations", None)
        assert x == y

"""Parallel classification: the same bytes and counts as one process, in order, nothing lost."""

from __future__ import annotations

import json

import pytest

from classifier_core.documents import Document, DocumentError, batched
from classifier_core.model import TextClassifier
from classifier_core.parallel import classify_batches
from flows.demo_data import multi_class_rows


@pytest.fixture(scope="module")
def model_and_dir(tmp_path_factory):
    rows = multi_class_rows(300)
    model = TextClassifier(search=False).fit([t for _, t in rows], [(label,) for label, _ in rows])
    return model, str(model.save(tmp_path_factory.mktemp("model") / "m"))


def _documents(count: int) -> list[Document]:
    texts = [text for _, text in multi_class_rows(count, seed=9)]
    documents = [Document(file="in.txt", line=i, text=text) for i, text in enumerate(texts)]
    documents[17] = Document(file="in.txt", line=17, text=None, error=DocumentError.EMPTY_DOCUMENT, error_message="document is empty")
    return documents


def test_workers_give_the_bytes_and_counts_of_one_process(model_and_dir):
    model, model_dir = model_and_dir
    documents = _documents(640)

    def run(workers: int):
        results = list(classify_batches(model, model_dir, batched(iter(documents), 50), workers))
        return b"".join(r.jsonl for r in results), sum(r.errors for r in results), [r.documents for r in results]

    serial, parallel = run(1), run(2)
    assert parallel == serial
    lines = [json.loads(line) for line in serial[0].splitlines()]
    assert [r["Line"] for r in lines] == [str(i) for i in range(640)]  # every document once, in order
    assert serial[1] == 1 and lines[17]["ErrorCode"] == "EMPTY_DOCUMENT"
    assert serial[2] == [50] * 12 + [40]


def test_a_single_batch_never_starts_a_pool(model_and_dir, monkeypatch):
    model, model_dir = model_and_dir
    import classifier_core.parallel as parallel

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", None)  # would raise if used
    results = list(classify_batches(model, model_dir, batched(iter(_documents(30)), 50), workers=2))
    assert [r.documents for r in results] == [30]
    assert list(classify_batches(model, model_dir, iter([]), workers=2)) == []

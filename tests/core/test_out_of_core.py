"""The out-of-core fit (classifier_core.out_of_core), run on small generated data by a tiny threshold."""

import json
import logging
import multiprocessing
import os

import numpy as np
import pytest

from classifier_core import out_of_core
from classifier_core.config import Mode
from classifier_core.metrics import indicator_matrix
from classifier_core.model import TextClassifier, load_model
from classifier_core.out_of_core import OutOfCoreConfig
from classifier_core.selection import Candidate
from flows.demo_data import multi_class_rows, multi_label_rows

CHUNK = 20_000  # characters: ~170 generated tickets per chunk


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(out_of_core, "CHUNK_CHARACTERS", CHUNK)
    monkeypatch.setattr(out_of_core, "VOCABULARY_SAMPLE_CHARACTERS", 60_000)


@pytest.fixture(scope="module")
def tickets():
    rows = multi_class_rows(1500)
    return [text for _, text in rows], [(label,) for label, _ in rows]


@pytest.fixture(scope="module")
def tagged():
    rows = multi_label_rows(1500)
    return [text for _, text in rows], [tuple(label.split("|")) for label, _ in rows]


def _streamed(mode=Mode.MULTI_CLASS, **params) -> TextClassifier:
    return TextClassifier(mode, out_of_core_threshold=1_000, n_jobs=1, **params)


def _accuracy(model: TextClassifier, texts, labels) -> float:
    predicted = model.predict_scores(texts).argmax(axis=1)
    return float(np.mean([model.labels_[i] == truth[0] for i, truth in zip(predicted, labels)]))


def test_multi_class_predicts_and_is_an_ordinary_fitted_model(tickets):
    texts, labels = tickets
    model = _streamed().fit(texts[:1200], labels[:1200])
    assert isinstance(model.config_, OutOfCoreConfig) and model.config_.out_of_core
    assert model.labels_ == ["account", "billing", "refund", "shipping", "technical"]
    assert model.weights_.dtype == np.float32 and model.weights_.flags.c_contiguous
    assert model.weights_.shape == (model.transform(texts[:1]).shape[1], 5)
    assert model.intercept_.shape == (5,) and model.temperature_ > 0 and model.fit_seconds_ > 0
    scores = model.predict_scores(texts[1200:])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    assert _accuracy(model, texts[1200:], labels[1200:]) > 0.75  # as in memory; chance is 0.2
    assert model.explain(texts[1200:1201], [[model.labels_[scores[0].argmax()]]])[0]


def test_chunks_bound_what_is_vectorised_at_once(tickets, monkeypatch):
    texts, labels = tickets
    sizes = []
    transform = TextClassifier.transform

    def spy(self, batch):
        sizes.append(sum(map(len, batch)))
        return transform(self, batch)

    monkeypatch.setattr(TextClassifier, "transform", spy)
    model = _streamed(search=False).fit(texts, labels)
    summary = model.search_[0]
    expected = sum(map(len, texts)) * (1 - 0.15) / CHUNK
    assert summary["out_of_core"] is True and summary["workers"] == 1
    assert summary["chunks_per_epoch"] == model.config_.chunks and abs(model.config_.chunks - expected) <= 2
    assert len(sizes) >= summary["epochs_run"] * summary["chunks_per_epoch"]
    assert max(sizes) <= CHUNK + max(map(len, texts))
    assert summary["vocabulary_sample"] < summary["training_documents"] <= len(texts) - summary["validation_documents"]


def test_the_search_and_epochs_are_recorded(tickets):
    texts, labels = tickets
    model = _streamed().fit(texts, labels)
    rows = model.search_[1:]
    assert {row["candidate"] for row in rows if row["epoch"] == 1} == {
        f"out-of-core SGD hinge, C={c:g}" for c in out_of_core.C_GRID}
    assert all(0 <= row["validation_score"] <= 1 for row in rows)
    assert 1 <= model.config_.epochs <= model.search_[0]["epochs_run"] <= out_of_core.MAX_EPOCHS
    assert model.config_.C in out_of_core.C_GRID
    assert model.config_.as_params()["out_of_core"] is True
    assert "out-of-core" in model.config_.describe()


def test_save_load_round_trip(tmp_path, tickets):
    texts, labels = tickets
    model = _streamed(search=False).fit(texts, labels)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), model.predict_scores(texts[:20]))
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["config"]["out_of_core"] is True and metadata["search"][0]["out_of_core"] is True


def test_multi_label_scores_are_independent_and_tuned(tagged):
    texts, labels = tagged
    model = _streamed(Mode.MULTI_LABEL).fit(texts[:1200], labels[:1200])
    assert isinstance(model.config_, OutOfCoreConfig)
    assert model.thresholds_.shape == (5,) and model.label_scale_ > 0
    scores = model.predict_scores(texts[1200:])
    decided = model.decide(scores)
    np.testing.assert_array_equal(decided, scores >= 0.5)
    truth = indicator_matrix(labels[1200:], model.labels_)
    tp = (decided & truth).sum()
    micro_f1 = 2 * tp / (decided.sum() + truth.sum())
    assert micro_f1 > 0.8


def test_binary_multi_class_keeps_a_column_per_class(tickets):
    texts, labels = tickets
    two = [(i, label) for i, label in enumerate(labels) if label[0] in ("billing", "shipping")]
    model = _streamed(search=False).fit([texts[i] for i, _ in two], [label for _, label in two])
    assert model.weights_.shape[1] == 2
    np.testing.assert_allclose(model.weights_[:, 0], -model.weights_[:, 1])
    assert _accuracy(model, [texts[i] for i, _ in two[-100:]], [label for _, label in two[-100:]]) > 0.9


def test_below_the_threshold_fit_stays_in_memory(tickets):
    texts, labels = tickets
    model = TextClassifier(search=False, out_of_core_threshold=sum(map(len, texts[:300])))
    assert type(model.fit(texts[:300], labels[:300]).config_) is Candidate


def test_worker_processes_give_the_same_model(tickets):
    texts, labels = tickets
    alone = _streamed(search=False).fit(texts[:600], labels[:600])
    pooled = TextClassifier(search=False, out_of_core_threshold=1_000, n_jobs=2).fit(texts[:600], labels[:600])
    assert pooled.search_[0]["workers"] == 2
    np.testing.assert_array_equal(pooled.weights_, alone.weights_)
    assert pooled.temperature_ == alone.temperature_


class _DiesInWorkers(TextClassifier):
    def transform(self, texts):
        if multiprocessing.parent_process() is not None:
            os._exit(3)
        return super().transform(texts)


def test_dead_workers_leave_the_rest_to_this_process(tickets, caplog):
    texts, labels = tickets
    with caplog.at_level(logging.WARNING, logger="classifier_core.out_of_core"):
        model = _DiesInWorkers(search=False, out_of_core_threshold=1_000, n_jobs=2).fit(texts[:600], labels[:600])
    assert "worker processes failed" in caplog.text and model.search_[0]["workers"] == 1
    alone = _streamed(search=False).fit(texts[:600], labels[:600])
    np.testing.assert_array_equal(model.weights_, alone.weights_)


def test_validation_holds_distinct_texts_and_no_copy_of_them_is_trained_on():
    texts = [f"document {i % 300}" for i in range(3000)]
    model = TextClassifier(validation_fraction=0.15)
    train, valid = out_of_core._validation_split(texts, model, np.random.default_rng(0))
    held_out = [texts[i] for i in valid]
    assert len(held_out) == len(set(held_out)) == 45  # 15% of the 300 distinct texts, once each
    assert not {texts[i] for i in train} & set(held_out)
    assert len(train) == 3000 - 10 * 45

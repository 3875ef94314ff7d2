"""classifier_core.fast_scores gives the scores of the TF-IDF matrix times the weights."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier_core import fast_scores
from classifier_core.config import Mode
from classifier_core.model import TextClassifier
from flows.demo_data import multi_class_rows, multi_label_rows
from tests.core.test_fast_tfidf import CHAR, CROSS, EDGE_CASES, WORD, varied_texts


def reference_scores(blocks, weights, intercept, texts):
    x = np.hstack([vec.transform(texts).toarray().astype(np.float64) for vec in blocks.values()])
    return x @ weights.astype(np.float64) + intercept


@pytest.mark.parametrize("settings", [
    {}, dict(sublinear_tf=False), dict(norm="l1"), dict(norm=None), dict(use_idf=False),
    dict(smooth_idf=False, dtype=np.float64), dict(lowercase=False),
], ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_scores_are_the_matrix_product(settings):
    texts = varied_texts(600, seed=1)
    blocks = {"word": TfidfVectorizer(**dict(WORD, **settings)).fit(texts),
              "char": TfidfVectorizer(**dict(CHAR, **settings)).fit(texts),
              "cross": TfidfVectorizer(**dict(CROSS, **settings)).fit(texts)}
    n_features = sum(len(v.vocabulary_) for v in blocks.values())
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(n_features, 5)).astype(np.float32)
    intercept = rng.normal(size=5).astype(np.float32)
    new = varied_texts(300, seed=2) + EDGE_CASES
    scores = fast_scores.decision_scores(blocks, weights, intercept, new)
    assert scores.shape == (len(new), 5) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, reference_scores(blocks, weights, intercept, new), rtol=1e-5, atol=1e-5)


def test_a_documents_scores_do_not_depend_on_its_batch():
    rows = multi_class_rows(400)
    model = TextClassifier(Mode.MULTI_CLASS, search=False).fit([t for _, t in rows], [[c] for c, _ in rows])
    texts = [t for _, t in multi_class_rows(60, seed=9)] + EDGE_CASES
    together = model.decision_function(texts)
    alone = np.vstack([model.decision_function([text]) for text in texts])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(model.decision_function(texts[::-1]), together[::-1])


@pytest.mark.parametrize("mode", [Mode.MULTI_CLASS, Mode.MULTI_LABEL])
def test_models_score_through_it(mode, monkeypatch):
    rows = (multi_class_rows if mode is Mode.MULTI_CLASS else multi_label_rows)(400)
    model = TextClassifier(mode, search=False).fit([t for _, t in rows], [label.split("|") for label, _ in rows])
    texts = [t for _, t in multi_class_rows(100, seed=4)]
    calls = []
    real = fast_scores.decision_scores
    monkeypatch.setattr(fast_scores, "decision_scores", lambda *a: calls.append(1) or real(*a))
    fused = model.decision_function(texts)
    assert calls
    monkeypatch.setattr(fast_scores, "decision_scores", lambda *a: None)  # the matrix path
    matrix = model.decision_function(texts)
    np.testing.assert_allclose(fused, matrix, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(fused.argmax(axis=1), matrix.argmax(axis=1))


def test_vectorizers_it_does_not_reproduce_give_none():
    texts = varied_texts(200)
    blocks = {"word": TfidfVectorizer(token_pattern=r"\S+").fit(texts)}
    weights = np.ones((len(blocks["word"].vocabulary_), 2), dtype=np.float32)
    assert fast_scores.decision_scores(blocks, weights, np.zeros(2, np.float32), texts) is None

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from classifier_core.config import Mode
from classifier_core.errors import ModelError
from classifier_core.inference import classify_texts
from classifier_core.metrics import indicator_matrix, score_metrics
from classifier_core.model import TextClassifier, load_model
from classifier_core.selection import MULTI_CLASS_CANDIDATES, tune_thresholds
from flows.demo_data import multi_class_rows, multi_label_rows


@pytest.fixture(scope="module")
def tickets():
    rows = multi_class_rows(400)
    return [text for _, text in rows], [(label,) for label, _ in rows]


def test_init_stores_parameters_only():
    model = TextClassifier(mode=Mode.MULTI_LABEL, time_budget=3.0)
    assert model.get_params()["time_budget"] == 3.0
    assert not hasattr(model, "labels_")
    with pytest.raises(NotFittedError):
        model.predict_scores(["x"])


def test_multi_class_scores_are_probabilities(tickets):
    texts, labels = tickets
    model = TextClassifier(Mode.MULTI_CLASS).fit(texts[:300], labels[:300])
    assert model.labels_ == ["account", "billing", "refund", "shipping", "technical"]
    scores = model.predict_scores(texts[300:])
    assert scores.shape == (100, 5)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    predicted = [model.labels_[i] for i in scores.argmax(axis=1)]
    accuracy = np.mean([p == t[0] for p, t in zip(predicted, labels[300:])])
    assert accuracy > 0.75  # chance is 0.2; the generator mislabels 3% and adds cross-topic asides


def test_multi_label_scores_are_independent_and_decided_at_half():
    rows = multi_label_rows(400)
    texts, labels = [t for _, t in rows], [tuple(label.split("|")) for label, _ in rows]
    model = TextClassifier(Mode.MULTI_LABEL).fit(texts, labels)
    scores = model.predict_scores(texts[:50])
    assert scores.shape == (50, 5)
    assert not np.allclose(scores.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.decide(scores), scores >= 0.5)


def test_save_load_round_trip_predicts_the_same(tmp_path, tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), model.predict_scores(texts[:20]))
    assert loaded.mode is Mode.MULTI_CLASS


def test_load_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(ModelError, match="expected a docclass model directory; found no metadata.json"):
        load_model(tmp_path)


def test_classify_texts_shapes_and_blank_text(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    results = classify_texts(model, ["my parcel never arrived", "   "])
    assert [c["Name"] for c in results[0]["Classes"]][0] == "shipping"
    assert len(results[0]["Classes"]) == 3
    assert results[1] == {"ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}


def test_the_search_chooses_on_training_data_and_records_every_candidate(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    scored = [row for row in model.search_ if "validation_score" in row]
    assert len(scored) == len(MULTI_CLASS_CANDIDATES)
    best = max(scored, key=lambda row: row["validation_score"])
    assert model.config_.describe() == best["candidate"]
    fast = TextClassifier(search=False).fit(texts, labels)
    assert [row["candidate"] for row in fast.search_] == [MULTI_CLASS_CANDIDATES[0].describe()]


def test_an_exhausted_time_budget_skips_the_remaining_candidates(tickets):
    texts, labels = tickets
    model = TextClassifier(time_budget=0.0).fit(texts, labels)
    assert "validation_score" in model.search_[0]
    assert all(row.get("skipped") == "time budget" for row in model.search_[1:])


def test_temperature_scaling_makes_confidence_match_accuracy(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts[:300], labels[:300])
    y_true = indicator_matrix(labels[300:], model.labels_)
    calibrated = score_metrics(y_true, model.predict_scores(texts[300:]), Mode.MULTI_CLASS)
    model.temperature_ = 1.0  # the raw SVM margins through a softmax
    raw = score_metrics(y_true, model.predict_scores(texts[300:]), Mode.MULTI_CLASS)
    assert calibrated["ExpectedCalibrationError"] < raw["ExpectedCalibrationError"]
    assert calibrated["BrierScore"] < raw["BrierScore"]


def test_label_thresholds_are_folded_into_the_score():
    rows = multi_label_rows(400)
    texts, labels = [t for _, t in rows], [tuple(label.split("|")) for label, _ in rows]
    model = TextClassifier(Mode.MULTI_LABEL).fit(texts, labels)
    assert model.thresholds_.shape == (5,) and np.any(model.thresholds_ != 0)
    decisions, scores = model.decision_function(texts[:80]), model.predict_scores(texts[:80])
    np.testing.assert_array_equal(scores >= 0.5, decisions >= model.thresholds_)


def test_tune_thresholds_maximises_f1_and_shrinks_rare_labels():
    decisions = np.array([[0.9, 0.9], [0.6, -0.5], [0.2, -0.6], [-0.3, -0.7]])
    truth = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], dtype=bool)
    thresholds = tune_thresholds(decisions, truth)
    assert 0.2 < thresholds[0] < 0.6  # label 0's best cut, pulled a little toward the global one
    assert np.all((decisions >= thresholds) == truth)


def test_explanations_name_the_words_behind_the_class(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    result = classify_texts(model, ["I was charged twice and want a refund of the charge", " "], explain=True)
    assert result[1] == {"ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}
    top = result[0]["Classes"][0]["Name"]
    terms = result[0]["Explanations"][top]
    assert list(result[0]["Explanations"]) == [top] and 1 <= len(terms) <= 5
    assert all(weight > 0 for _, weight in terms) and [w for _, w in terms] == sorted((w for _, w in terms), reverse=True)
    assert any("charge" in term or "refund" in term for term, _ in terms)

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from classifier_core.config import Mode
from classifier_core.errors import ModelError
from classifier_core.inference import classify_texts
from classifier_core.model import TextClassifier, load_model
from flows.demo_data import multi_class_rows, multi_label_rows


@pytest.fixture(scope="module")
def tickets():
    rows = multi_class_rows(400)
    return [text for _, text in rows], [(label,) for label, _ in rows]


def test_init_stores_parameters_only():
    model = TextClassifier(mode=Mode.MULTI_LABEL, C=3.0)
    assert model.get_params()["C"] == 3.0
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
    model = TextClassifier(Mode.MULTI_LABEL, class_weight="balanced").fit(texts, labels)
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

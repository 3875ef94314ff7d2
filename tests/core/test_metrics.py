import numpy as np
import pytest

from classifier_core.config import Mode
from classifier_core.metrics import (
    METRIC_NAMES,
    confusion_matrix_json,
    evaluation_metrics,
    indicator_matrix,
    per_class_metrics,
)

LABELS = ["a", "b", "c"]


def one_hot(names):
    return indicator_matrix([[n] for n in names], LABELS)


def test_metric_names_are_comprehends():
    assert METRIC_NAMES == (
        "Accuracy", "Precision", "Recall", "F1Score",
        "MicroPrecision", "MicroRecall", "MicroF1Score", "HammingLoss",
    )


def test_multi_class_identities_on_random_predictions():
    rng = np.random.default_rng(3)
    for _ in range(20):
        true = rng.choice(LABELS, size=50)
        pred = rng.choice(LABELS, size=50)
        m = evaluation_metrics(one_hot(true), one_hot(pred), Mode.MULTI_CLASS)
        accuracy = float(np.mean(true == pred))
        assert m["Accuracy"] == pytest.approx(accuracy)
        assert m["MicroPrecision"] == pytest.approx(accuracy)
        assert m["MicroRecall"] == pytest.approx(accuracy)
        assert m["MicroF1Score"] == pytest.approx(accuracy)
        assert m["HammingLoss"] == pytest.approx(1 - accuracy)


def test_multi_class_macro_values_by_hand():
    true = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = evaluation_metrics(one_hot(true), one_hot(pred), Mode.MULTI_CLASS)
    # per class: a P=1 R=2/3 F=0.8; b P=1/2 R=1/2 F=1/2; c P=1/2 R=1 F=2/3
    assert m["Precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["Recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert m["F1Score"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # F1Score is the mean of per-class F1, not the harmonic mean of macro P and R
    harmonic = 2 * m["Precision"] * m["Recall"] / (m["Precision"] + m["Recall"])
    assert m["F1Score"] != pytest.approx(harmonic)


def test_multi_label_known_values():
    y_true = indicator_matrix([["a", "b"], ["b"], ["c"], ["a", "c"]], LABELS)
    y_pred = indicator_matrix([["a", "b"], ["b", "c"], [], ["a"]], LABELS)
    m = evaluation_metrics(y_true, y_pred, Mode.MULTI_LABEL)
    # tp: a=2 b=2 c=0; fp: c=1; fn: c=2
    assert m["Accuracy"] == pytest.approx(1 / 4)  # exact match: only the first document
    assert m["MicroPrecision"] == pytest.approx(4 / 5)
    assert m["MicroRecall"] == pytest.approx(4 / 6)
    assert m["MicroF1Score"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))
    assert m["HammingLoss"] == pytest.approx(3 / 12)
    assert m["Precision"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["Recall"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["F1Score"] == pytest.approx((1 + 1 + 0) / 3)


def test_macro_average_skips_labels_absent_from_test_and_predictions():
    m = evaluation_metrics(one_hot(["a", "b"]), one_hot(["a", "b"]), Mode.MULTI_CLASS)
    assert m["F1Score"] == 1.0  # "c" is neither in the test data nor predicted


def test_empty_or_mismatched_input_is_rejected():
    with pytest.raises(ValueError, match="expected two equal non-empty matrices"):
        evaluation_metrics(np.zeros((0, 3), bool), np.zeros((0, 3), bool), Mode.MULTI_CLASS)


def test_per_class_metrics_with_support():
    per = per_class_metrics(one_hot(["a", "a", "b"]), one_hot(["a", "b", "b"]), LABELS)
    assert per["a"] == {"Precision": 1.0, "Recall": 0.5, "F1Score": pytest.approx(2 / 3), "Support": 2}
    assert per["b"]["Precision"] == 0.5 and per["b"]["Support"] == 1
    assert per["c"] == {"Precision": 0.0, "Recall": 0.0, "F1Score": 0.0, "Support": 0}


def test_confusion_matrix_multi_class_rows_actual_columns_predicted():
    cm = confusion_matrix_json(one_hot(["a", "a", "b", "c"]), one_hot(["a", "b", "b", "a"]), LABELS, Mode.MULTI_CLASS)
    assert cm == {
        "type": "multi_class",
        "confusion_matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 0]],
        "labels": LABELS,
        "all_labels": LABELS,
    }


def test_confusion_matrix_multi_label_one_matrix_per_label():
    y_true = indicator_matrix([["a", "b"], ["b"], ["c"]], LABELS)
    y_pred = indicator_matrix([["a"], ["b", "c"], ["c"]], LABELS)
    cm = confusion_matrix_json(y_true, y_pred, LABELS, Mode.MULTI_LABEL)
    assert cm["type"] == "multi_label"
    assert cm["labels"] == cm["all_labels"] == LABELS
    # [[TN, FP], [FN, TP]]
    assert cm["confusion_matrix"] == [[[2, 0], [0, 1]], [[1, 0], [1, 1]], [[1, 1], [0, 1]]]

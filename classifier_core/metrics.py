"""Comprehend's evaluation metrics and confusion_matrix.json (SPEC §3).

Every function takes label-indicator matrices: ``y_true`` and ``y_pred`` of shape
(documents, labels), boolean, columns in the order of ``labels``. In MULTI_CLASS mode each
row holds exactly one True.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from classifier_core.config import Mode

METRIC_NAMES = (
    "Accuracy",
    "Precision",
    "Recall",
    "F1Score",
    "MicroPrecision",
    "MicroRecall",
    "MicroF1Score",
    "HammingLoss",
)


def indicator_matrix(labels_per_doc: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """Turns per-document label lists into a boolean (documents, labels) matrix.

    Labels outside ``labels`` are ignored (a test label never seen in training cannot be
    predicted; it still counts as missed through the row's other cells being False).
    """
    column = {label: j for j, label in enumerate(labels)}
    matrix = np.zeros((len(labels_per_doc), len(labels)), dtype=bool)
    for i, doc_labels in enumerate(labels_per_doc):
        for label in doc_labels:
            j = column.get(label)
            if j is not None:
                matrix[i, j] = True
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator/denominator with 0 where the denominator is 0."""
    out = np.zeros(np.shape(numerator), dtype=float)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) > 0)
    return out


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.sum(y_true & y_pred, axis=0)
    fp = np.sum(~y_true & y_pred, axis=0)
    fn = np.sum(y_true & ~y_pred, axis=0)
    return tp, fp, fn


def per_class_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every label, in ``labels`` order."""
    tp, fp, fn = _counts(y_true, y_pred)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        label: {
            "Precision": float(precision[j]),
            "Recall": float(recall[j]),
            "F1Score": float(f1[j]),
            "Support": int(tp[j] + fn[j]),
        }
        for j, label in enumerate(labels)
    }


def evaluation_metrics(y_true: np.ndarray, y_pred: np.ndarray, mode: Mode) -> dict[str, float]:
    """The eight Comprehend metrics.

    Macro averages run over the labels that occur in the test data or in the predictions
    (a training label absent from both says nothing about the model). F1Score is the mean
    of per-label F1, not the harmonic mean of macro precision and recall.
    In MULTI_CLASS mode HammingLoss is the fraction of misclassified documents, so that
    HammingLoss = 1 - Accuracy; in MULTI_LABEL mode it runs over all (document, label) cells
    and Accuracy is the exact-match (subset) accuracy.

    Raises:
        ValueError: if the matrices differ in shape or hold no documents.
    """
    if y_true.shape != y_pred.shape or y_true.shape[0] == 0:
        raise ValueError(f"expected two equal non-empty matrices; found {y_true.shape} and {y_pred.shape}")
    tp, fp, fn = _counts(y_true, y_pred)
    present = (tp + fp + fn) > 0
    precision = _ratio(tp, tp + fp)[present]
    recall = _ratio(tp, tp + fn)[present]
    f1 = _ratio(2 * precision * recall, precision + recall)
    micro_p = float(_ratio(tp.sum(), tp.sum() + fp.sum()))
    micro_r = float(_ratio(tp.sum(), tp.sum() + fn.sum()))
    micro_f1 = float(_ratio(2 * micro_p * micro_r, micro_p + micro_r))
    exact = np.all(y_true == y_pred, axis=1)
    accuracy = float(exact.mean())
    if mode is Mode.MULTI_CLASS:
        hamming = 1.0 - accuracy
    else:
        hamming = float(np.mean(y_true != y_pred))
    values = (
        accuracy,
        float(precision.mean()) if precision.size else 0.0,
        float(recall.mean()) if recall.size else 0.0,
        float(f1.mean()) if f1.size else 0.0,
        micro_p,
        micro_r,
        micro_f1,
        hamming,
    )
    return dict(zip(METRIC_NAMES, values, strict=True))


def confusion_matrix_json(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], mode: Mode
) -> dict:
    """The content of confusion_matrix.json.

    MULTI_CLASS: one matrix, rows = actual, columns = predicted. MULTI_LABEL: one
    ``[[TN, FP], [FN, TP]]`` matrix per label. ``labels`` and ``all_labels`` are both the
    sorted training label set (SPEC §3 decision).
    """
    if mode is Mode.MULTI_CLASS:
        # Rows with no true label (a test class unseen in training) have no row to go in.
        has_true = y_true.any(axis=1)
        actual = np.argmax(y_true[has_true], axis=1)
        predicted = np.argmax(y_pred[has_true], axis=1)
        matrix = np.zeros((len(labels), len(labels)), dtype=int)
        np.add.at(matrix, (actual, predicted), 1)
        body: dict = {"type": "multi_class", "confusion_matrix": matrix.tolist()}
    else:
        tp, fp, fn = _counts(y_true, y_pred)
        tn = y_true.shape[0] - tp - fp - fn
        matrices = [[[int(tn[j]), int(fp[j])], [int(fn[j]), int(tp[j])]] for j in range(len(labels))]
        body = {"type": "multi_label", "confusion_matrix": matrices}
    body["labels"] = list(labels)
    body["all_labels"] = list(labels)
    return body


SCORE_METRIC_NAMES = ("ExpectedCalibrationError", "BrierScore", "MacroROCAUC")
CALIBRATION_BINS = 15


def score_metrics(y_true: np.ndarray, scores: np.ndarray, mode: Mode) -> dict[str, float]:
    """How trustworthy the scores are, beside the 8 metrics (which only see decisions).

    ExpectedCalibrationError: |confidence - accuracy| averaged over 15 equal-width bins,
    weighted by the bin's share of predictions (the top class of each document in
    MULTI_CLASS; every (document, label) score in MULTI_LABEL). BrierScore: mean squared
    difference between scores and outcomes (summed over classes per document in
    MULTI_CLASS). MacroROCAUC: mean one-vs-rest ROC AUC over labels with both outcomes in
    the test data.
    """
    from sklearn.metrics import roc_auc_score

    truth = y_true.astype(float)
    if mode is Mode.MULTI_CLASS:
        confidence = scores.max(axis=1)
        correct = y_true[np.arange(len(scores)), scores.argmax(axis=1)].astype(float)
        brier = float(np.mean(np.sum((scores - truth) ** 2, axis=1)))
    else:
        confidence, correct = scores.ravel(), truth.ravel()
        brier = float(np.mean((scores - truth) ** 2))
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    ece = sum(
        abs(confidence[bins == b].mean() - correct[bins == b].mean()) * np.mean(bins == b)
        for b in range(CALIBRATION_BINS) if np.any(bins == b)
    )
    both = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
    auc = float(np.mean([roc_auc_score(y_true[:, j], scores[:, j]) for j in both])) if both else float("nan")
    return dict(zip(SCORE_METRIC_NAMES, (float(ece), brier, auc), strict=True))

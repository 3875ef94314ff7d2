"""Comparing versions of a classifier on one test set, and the promotion rule.

Every version is scored over the same label columns, the union of the compared versions'
training labels: a label a version was not trained on is one it never predicts, so it
counts against that version (its documents are missed) rather than disappearing from the
average. When all versions know the same labels the scores equal the training evaluation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classifier_core.config import PROMOTION_RULE
from classifier_core.errors import DocclassError
from classifier_core.metrics import METRIC_NAMES, evaluation_metrics, indicator_matrix, per_class_metrics
from classifier_core.model import TextClassifier
from classifier_core.training_data import TrainingSet

RULE = PROMOTION_RULE
# Scores of the same counts can differ in the last bits; closer than this is a tie.
_TIE_DECIMALS = 9


class ComparisonError(DocclassError):
    """The versions cannot be compared: too few, of different modes, or no test data."""


@dataclass(frozen=True)
class VersionScore:
    """One version's scores on the shared test set."""

    version: str
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]


def label_union(label_sets: Sequence[Sequence[str]]) -> list[str]:
    """The sorted union of the compared versions' training labels."""
    return sorted({label for labels in label_sets for label in labels})


def score_version(version: str, model: TextClassifier, test_set: TrainingSet, labels: Sequence[str]) -> VersionScore:
    """The 8 metrics and per-class metrics of ``model`` over the columns ``labels``.

    Args:
        version: The registry version the model is, carried into the result.
        model: A fitted classifier whose labels are all in ``labels``.
        test_set: The shared test documents and their true labels.
        labels: The label columns every compared version is scored on.
    """
    labels = list(labels)
    y_true = indicator_matrix(test_set.labels, labels)
    y_pred = np.zeros_like(y_true)
    y_pred[:, [labels.index(label) for label in model.labels_]] = model.decide(model.predict_scores(test_set.texts))
    return VersionScore(
        version=version,
        metrics=evaluation_metrics(y_true, y_pred, model.mode),
        per_class=per_class_metrics(y_true, y_pred, labels),
    )


def _rank(score: VersionScore) -> tuple[float, float]:
    return round(score.metrics["F1Score"], _TIE_DECIMALS), round(score.metrics["MicroF1Score"], _TIE_DECIMALS)


def pick_winner(scores: Sequence[VersionScore], champion: str | None) -> str:
    """The version the rule (:data:`RULE`) picks among ``scores``.

    Args:
        scores: Two or more versions scored on the same test set.
        champion: The version holding the champion alias now, if any.
    """
    best = max(_rank(score) for score in scores)
    tied = [score.version for score in scores if _rank(score) == best]
    return champion if champion in tied else max(tied, key=int)


def runner_up(scores: Sequence[VersionScore], winner: str) -> VersionScore:
    """The best-ranked version other than the winner."""
    return max((score for score in scores if score.version != winner), key=lambda s: (_rank(s), int(s.version)))


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two values with just enough decimals (4 or more) to tell them apart."""
    digits = next((d for d in range(4, _TIE_DECIMALS) if f"{a:.{d}f}" != f"{b:.{d}f}"), _TIE_DECIMALS)
    return f"{a:.{digits}f}", f"{b:.{digits}f}"


def explain(scores: Sequence[VersionScore], winner: str) -> str:
    """Why ``winner`` wins, against the runner-up, e.g. "F1Score 0.9312 > 0.9120 of version 1"."""
    by_version = {score.version: score for score in scores}
    won, other = by_version[winner], runner_up(scores, winner)
    for metric in ("F1Score", "MicroF1Score"):
        mine, theirs = won.metrics[metric], other.metrics[metric]
        if round(mine, _TIE_DECIMALS) != round(theirs, _TIE_DECIMALS):
            shown = _pair(mine, theirs)
            prefix = "" if metric == "F1Score" else f"F1Score tied at {won.metrics['F1Score']:.4f}; "
            return f"{prefix}{metric} {shown[0]} > {shown[1]} of version {other.version}"
    return (
        f"F1Score {won.metrics['F1Score']:.4f} and MicroF1Score {won.metrics['MicroF1Score']:.4f} "
        f"tied with version {other.version}"
    )


def baseline_and_candidate(scores: Sequence[VersionScore], champion: str | None) -> tuple[str, str]:
    """Which two versions per-class deltas compare: candidate minus baseline.

    The baseline is the champion when it is compared, else the oldest version; the candidate
    is the best-ranked of the others (with two versions, simply the other one).
    """
    versions = [score.version for score in scores]
    baseline = champion if champion in versions else min(versions, key=int)
    return baseline, runner_up(scores, baseline).version


def per_class_deltas(baseline: VersionScore, candidate: VersionScore, metric: str = "F1Score") -> dict[str, float]:
    """``candidate`` minus ``baseline`` for every label, in label order."""
    return {
        label: candidate.per_class[label][metric] - values[metric]
        for label, values in baseline.per_class.items()
    }


def comparison_rows(scores: Sequence[VersionScore], baseline: str, candidate: str) -> list[dict]:
    """The side-by-side table: metric rows, a ``v<N>`` column per version, then the delta.

    Rows are the 8 metrics, then each class's F1Score; the last column is the candidate
    minus the baseline (see :func:`baseline_and_candidate`). Values rounded to 6 places.
    """
    by_version = {score.version: score for score in scores}
    delta_column = f"v{candidate} - v{baseline}"

    def row(metric: str, value_of) -> dict:
        values = {f"v{score.version}": round(value_of(score), 6) for score in scores}
        delta = value_of(by_version[candidate]) - value_of(by_version[baseline])
        return {"Metric": metric, **values, delta_column: round(delta, 6)}

    rows = [row(metric, lambda score, m=metric: score.metrics[m]) for metric in METRIC_NAMES]
    labels = by_version[baseline].per_class
    rows += [row(f"F1Score {label}", lambda score, c=label: score.per_class[c]["F1Score"]) for label in labels]
    return rows

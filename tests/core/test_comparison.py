import pytest

from classifier_core.comparison import (
    VersionScore,
    baseline_and_candidate,
    comparison_rows,
    explain,
    label_union,
    pick_winner,
    score_version,
)
from classifier_core.config import Mode
from classifier_core.model import TextClassifier
from classifier_core.training_data import TrainingSet

TEXTS = {
    "billing": ["charged twice on my invoice", "invoice amount is wrong", "billed after cancelling"],
    "shipping": ["parcel never arrived", "package delivered to wrong address", "courier lost my parcel"],
    "refund": ["please refund my money", "refund has not arrived", "I want my money back refund"],
}


def fitted(mode: Mode, labels_per_doc: list[tuple[str, ...]], texts: list[str]) -> TextClassifier:
    return TextClassifier(mode=mode, min_df=1).fit(texts, labels_per_doc)


def score(version: str, f1: float, micro_f1: float) -> VersionScore:
    return VersionScore(version, {"F1Score": f1, "MicroF1Score": micro_f1}, {})


def test_a_label_a_version_does_not_know_counts_as_never_predicted():
    known = ["billing", "shipping"]
    texts = [t for label in known for t in TEXTS[label]]
    small = fitted(Mode.MULTI_LABEL, [(label,) for label in known for _ in range(3)], texts)
    everything = [t for ts in TEXTS.values() for t in ts]
    full = fitted(Mode.MULTI_LABEL, [(label,) for label in TEXTS for _ in range(3)], everything)
    test = TrainingSet(everything, [(label,) for label in TEXTS for _ in range(3)])
    labels = label_union([small.labels_, full.labels_])
    assert labels == ["billing", "refund", "shipping"]
    weak = score_version("1", small, test, labels)
    strong = score_version("2", full, test, labels)
    assert list(weak.per_class) == labels
    assert weak.per_class["refund"] == {"Precision": 0.0, "Recall": 0.0, "F1Score": 0.0, "Support": 3}
    assert weak.metrics["F1Score"] < strong.metrics["F1Score"]  # refund's 0 is in weak's average
    assert pick_winner([weak, strong], champion="1") == "2"


def test_scores_over_the_models_own_labels_equal_the_training_evaluation():
    everything = [t for ts in TEXTS.values() for t in ts]
    labels_per_doc = [(label,) for label in TEXTS for _ in range(3)]
    model = fitted(Mode.MULTI_CLASS, labels_per_doc, everything)
    result = score_version("1", model, TrainingSet(everything, labels_per_doc), model.labels_)
    assert result.metrics["Accuracy"] == pytest.approx(1.0)
    assert result.metrics["HammingLoss"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("scores", "champion", "winner"),
    [
        ([score("1", 0.90, 0.90), score("2", 0.91, 0.80)], "1", "2"),  # F1Score first
        ([score("1", 0.90, 0.92), score("2", 0.90, 0.91)], "2", "1"),  # then MicroF1Score
        ([score("1", 0.90, 0.91), score("2", 0.90, 0.91)], "1", "1"),  # then the champion stays
        ([score("1", 0.90, 0.91), score("2", 0.90, 0.91)], "2", "2"),
        ([score("1", 0.90, 0.91), score("2", 0.90, 0.91), score("3", 0.5, 0.5)], None, "2"),  # else the newest
        ([score("1", 0.9, 0.9), score("2", 0.9 + 1e-12, 0.9)], "1", "1"),  # float noise is a tie
    ],
)
def test_the_promotion_rule(scores, champion, winner):
    assert pick_winner(scores, champion) == winner


def test_explain_names_the_deciding_metric_and_the_runner_up():
    assert explain([score("1", 0.912, 0.93), score("2", 0.9312, 0.92)], "2") == "F1Score 0.9312 > 0.9120 of version 1"
    assert explain([score("1", 0.9, 0.93), score("2", 0.9, 0.92)], "1") == (
        "F1Score tied at 0.9000; MicroF1Score 0.9300 > 0.9200 of version 2"
    )
    assert explain([score("1", 0.93121, 0.9), score("2", 0.93124, 0.9)], "2") == "F1Score 0.93124 > 0.93121 of version 1"
    assert explain([score("1", 0.9, 0.9), score("2", 0.9, 0.9)], "1") == (
        "F1Score 0.9000 and MicroF1Score 0.9000 tied with version 2"
    )


def test_deltas_compare_the_best_challenger_with_the_champion():
    scores = [score("1", 0.7, 0.7), score("2", 0.9, 0.9), score("3", 0.8, 0.8)]
    assert baseline_and_candidate(scores, champion="3") == ("3", "2")
    assert baseline_and_candidate(scores, champion=None) == ("1", "2")


def test_comparison_rows_put_versions_side_by_side():
    names = ("Accuracy", "Precision", "Recall", "F1Score", "MicroPrecision", "MicroRecall", "MicroF1Score", "HammingLoss")
    one = VersionScore("1", dict.fromkeys(names, 0.5), {"a": {"F1Score": 0.25}})
    two = VersionScore("2", dict.fromkeys(names, 0.75), {"a": {"F1Score": 0.5}})
    rows = comparison_rows([one, two], baseline="1", candidate="2")
    assert rows[3] == {"Metric": "F1Score", "v1": 0.5, "v2": 0.75, "v2 - v1": 0.25}
    assert rows[-1] == {"Metric": "F1Score a", "v1": 0.25, "v2": 0.5, "v2 - v1": 0.25}
    assert len(rows) == 9

"""Training on real public datasets from ../shared/data (slow; skipped when it is absent)."""

import pytest

from tests.conftest import shared_dataset

pytestmark = pytest.mark.slow


def test_sms_spam_trains_with_comprehend_consistent_metrics(cli):
    data = shared_dataset("sms_spam")
    result = cli("train", "--name", "sms-spam", "--mode", "MULTI_CLASS",
                 "--training-data", str(data / "train.csv"), "--test-data", str(data / "test.csv"))
    assert result.code == 0, result.stderr
    describe = result.json()
    assert describe["Status"] == "TRAINED"
    metrics = describe["ClassifierMetadata"]["EvaluationMetrics"]
    assert metrics["Accuracy"] >= 0.98
    assert metrics["Accuracy"] == metrics["MicroF1Score"]
    assert metrics["HammingLoss"] == pytest.approx(1 - metrics["Accuracy"], abs=1e-6)
    assert describe["ClassifierMetadata"]["NumberOfTestDocuments"] == 1114


def test_reuters_multi_label_trains_with_warnings_for_rare_labels(cli):
    data = shared_dataset("reuters21578")
    result = cli("train", "--name", "reuters", "--mode", "MULTI_LABEL",
                 "--training-data", str(data / "train.csv"), "--test-data", str(data / "test.csv"))
    assert result.code == 0, result.stderr
    describe = result.json()
    assert describe["Status"] == "TRAINED_WITH_WARNING"
    assert "found 1 for 'castor-oil'" in describe["Message"]
    metrics = describe["ClassifierMetadata"]["EvaluationMetrics"]
    assert describe["ClassifierMetadata"]["NumberOfLabels"] == 90
    assert metrics["MicroF1Score"] > 0.8
    assert metrics["F1Score"] > 0.3
    assert 0 < metrics["HammingLoss"] < 0.01
    assert metrics["Accuracy"] < metrics["MicroF1Score"]  # exact match is the stricter measure

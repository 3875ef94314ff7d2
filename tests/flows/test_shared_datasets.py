"""Training and classification jobs on real public datasets from ../shared/data (slow;
skipped when it is absent)."""

import csv
import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import shared_dataset

pytestmark = pytest.mark.slow


def one_per_line(csv_path: Path, target: Path) -> list[str]:
    """Writes the text column one document per line (line ends inside a text become spaces)."""
    with open(csv_path, encoding="utf-8", newline="") as fp:
        rows = list(csv.reader(fp))
    texts = [" ".join(text.splitlines()) for _, text in rows]
    target.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    return [label for label, _ in rows]


def job_records(result) -> list[dict]:
    assert result.code == 0, result.stderr
    with tarfile.open(result.json()["OutputDataConfig"]["S3Uri"], "r:gz") as tar:
        return [json.loads(line) for line in tar.extractfile("predictions.jsonl").read().decode("utf-8").splitlines()]


def test_sms_spam_trains_with_comprehend_consistent_metrics_and_classifies(cli, tmp_path):
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

    # The test set as a job: accuracy recomputed from predictions.jsonl
    labels = one_per_line(data / "test.csv", tmp_path / "sms.txt")
    records = job_records(cli("classify", "--classifier", "sms-spam", "--input-uri", str(tmp_path / "sms.txt"),
                              "--output-uri", str(tmp_path / "out")))
    assert [r["Line"] for r in records] == [str(i) for i in range(len(labels))]
    accuracy = sum(r["Classes"][0]["Name"] == label for r, label in zip(records, labels)) / len(labels)
    assert accuracy >= 0.98
    assert accuracy == pytest.approx(metrics["Accuracy"], abs=1e-6)  # the job and evaluation agree

    # AG News texts one per line: exactly one record per input line, right Line numbers
    news = shared_dataset("ag_news")
    count = len(one_per_line(news / "test.csv", tmp_path / "news.txt"))
    records = job_records(cli("classify", "--classifier", "sms-spam", "--input-uri", str(tmp_path / "news.txt"),
                              "--output-uri", str(tmp_path / "out")))
    assert count == 7600
    assert [(r["File"], r["Line"]) for r in records] == [("news.txt", str(i)) for i in range(count)]


def test_reuters_multi_label_trains_with_warnings_for_rare_labels(cli):
    # --fast: the sms_spam test above runs the search on real data; --fast still tunes the
    # 90 labels' thresholds on a validation split (the macro-F1 check), in a quarter of the time.
    data = shared_dataset("reuters21578")
    result = cli("train", "--name", "reuters", "--mode", "MULTI_LABEL",
                 "--training-data", str(data / "train.csv"), "--test-data", str(data / "test.csv"), "--fast")
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

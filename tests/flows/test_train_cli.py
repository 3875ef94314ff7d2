"""`docclass train` end to end: the CLI, a real Prefect server, MLflow on sqlite, S3 via moto."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from classifier_core.selection import MULTI_CLASS_CANDIDATES
from flows.demo_data import multi_class_rows, multi_label_rows, write_csv

METRICS = {"Accuracy", "Precision", "Recall", "F1Score", "MicroPrecision", "MicroRecall", "MicroF1Score", "HammingLoss"}


@pytest.fixture
def tickets(tmp_path) -> dict[str, Path]:
    rows = multi_class_rows(500)
    ml_rows = multi_label_rows(500)
    return {
        "train": write_csv(rows[:400], tmp_path / "data" / "train.csv"),
        "test": write_csv(rows[400:], tmp_path / "data" / "test.csv"),
        "ml_train": write_csv(ml_rows, tmp_path / "data" / "ml_train.csv"),
    }


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


def mlflow_client(home: Path, monkeypatch):
    """A client on this test's store. Through the environment, not mlflow.set_tracking_uri,
    which would export MLFLOW_TRACKING_URI to every later test's child processes."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return MlflowClient()


def test_multi_class_train_registers_a_version_and_writes_training_output(cli, home, tickets, monkeypatch):
    result = cli("train", "--name", "tickets", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]),
                 "--test-data", str(tickets["test"]), "--version-name", "v1", "--tag", "team=support")
    assert result.code == 0, result.stderr
    describe = result.json()  # stdout is exactly one JSON object
    assert describe["Status"] == "TRAINED"
    assert describe["DocumentClassifierName"] == "tickets" and describe["VersionName"] == "v1"
    assert len(describe["TrainingJobId"]) == 32
    meta = describe["ClassifierMetadata"]
    assert (meta["NumberOfLabels"], meta["NumberOfTrainedDocuments"], meta["NumberOfTestDocuments"]) == (5, 400, 100)
    metrics = meta["EvaluationMetrics"]
    assert set(metrics) == METRICS
    assert metrics["Accuracy"] == metrics["MicroF1Score"] == metrics["MicroPrecision"]
    assert metrics["HammingLoss"] == pytest.approx(1 - metrics["Accuracy"], abs=1e-6)
    assert metrics["Accuracy"] > 0.75

    output = Path(describe["OutputDataConfig"]["S3Uri"])
    assert output == home / "output" / describe["TrainingJobId"] / "output" / "output.tar.gz"
    members = tar_members(output)
    assert list(members) == ["confusion_matrix.json"]
    cm = json.loads(members["confusion_matrix.json"])
    assert cm["type"] == "multi_class"
    assert cm["labels"] == cm["all_labels"] == ["account", "billing", "refund", "shipping", "technical"]
    assert sum(map(sum, cm["confusion_matrix"])) == 100

    client = mlflow_client(home, monkeypatch)
    version = client.get_model_version_by_alias("tickets", "champion")
    assert str(version.version) == "1"
    assert version.tags["team"] == "support" and version.tags["docclass.version_name"] == "v1"
    run = client.get_run(version.run_id)
    assert set(run.data.metrics) == METRICS | {"ExpectedCalibrationError", "BrierScore", "MacroROCAUC"}
    assert run.data.params["mode"] == "MULTI_CLASS"
    assert run.data.params["model_features"] in ("word", "word+char") and run.data.params["model_search"] == f"{len(MULTI_CLASS_CANDIDATES)} candidates"
    assert run.data.params["model_search_budget_s"] == "10.0"  # TextClassifier's default
    assert {a.path for a in client.list_artifacts(version.run_id)} >= {
        "confusion_matrix.json", "per_class_metrics.json", "classifier.json", "confusion_matrix.png", "model_search.json"}

    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model("models:/tickets@champion")
    predictions = model.predict(["my parcel was delivered to the wrong address", ""])
    assert predictions[0]["Classes"][0]["Name"] == "shipping"
    assert len(predictions[0]["Classes"]) == 3
    assert predictions[1]["ErrorCode"] == "EMPTY_DOCUMENT"

    described = cli("classifiers", "describe", "tickets:v1")
    assert described.code == 0, described.stderr
    assert described.json()["ClassifierMetadata"] == meta
    assert described.json()["Aliases"] == ["champion"]

    second = cli("train", "--name", "tickets", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]),
                 "--search-budget", "2.5")
    assert second.code == 0, second.stderr
    searched = client.get_run(client.get_model_version("tickets", "2").run_id).data.params
    assert searched["model_search_budget_s"] == "2.5"  # as given
    assert str(client.get_model_version_by_alias("tickets", "challenger").version) == "2"
    assert str(client.get_model_version_by_alias("tickets", "champion").version) == "1"
    listed = cli("classifiers", "list").json()
    assert [(d["DocumentClassifierName"], d["ModelVersion"]) for d in listed] == [("tickets", "2"), ("tickets", "1")]

    again = cli("train", "--name", "tickets", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]),
                "--version-name", "v1")
    assert again.code == 1
    assert "classifier 'tickets' already has a version named 'v1'; choose another --version-name" in again.stderr


def test_multi_label_train_with_holdout(cli, home, tickets, monkeypatch):
    result = cli("train", "--name", "tickets-ml", "--mode", "MULTI_LABEL", "--training-data", str(tickets["ml_train"]),
                 "--fast")
    assert result.code == 0, result.stderr
    describe = result.json()
    assert describe["Status"] == "TRAINED"
    assert describe["InputDataConfig"]["LabelDelimiter"] == "|"
    meta = describe["ClassifierMetadata"]
    assert meta["NumberOfTrainedDocuments"] + meta["NumberOfTestDocuments"] == 500
    assert meta["NumberOfTestDocuments"] == 50  # the stratified 10% holdout
    assert set(meta["EvaluationMetrics"]) == METRICS
    cm = json.loads(tar_members(Path(describe["OutputDataConfig"]["S3Uri"]))["confusion_matrix.json"])
    assert cm["type"] == "multi_label" and len(cm["confusion_matrix"]) == 5
    assert all(sum(map(sum, matrix)) == 50 for matrix in cm["confusion_matrix"])
    # HammingLoss runs over all (document, label) cells: the FP + FN of every label's matrix
    wrong_cells = sum(matrix[0][1] + matrix[1][0] for matrix in cm["confusion_matrix"])
    assert meta["EvaluationMetrics"]["HammingLoss"] == pytest.approx(wrong_cells / (50 * 5), abs=1e-6)
    assert meta["EvaluationMetrics"]["MicroF1Score"] > 0.9
    assert set(meta["ScoreMetrics"]) == {"ExpectedCalibrationError", "BrierScore", "MacroROCAUC"}
    client = mlflow_client(home, monkeypatch)
    run = client.get_run(client.get_model_version("tickets-ml", "1").run_id)
    assert run.data.params["model_search"] == "off"  # --fast: the first candidate, no search
    assert "model_search_budget_s" not in run.data.params


def test_train_reads_an_s3_prefix_and_writes_output_to_s3(cli, s3, tickets):
    fs = s3.filesystem()
    fs.mkdir("corpus")
    lines = tickets["train"].read_text(encoding="utf-8").splitlines(keepends=True)
    fs.pipe("corpus/train/part-1.csv", "".join(lines[:200]).encode())
    fs.pipe("corpus/train/part-2.csv", "".join(lines[200:]).encode())
    fs.pipe("corpus/trainer-notes.txt", b"not training data,because it is outside the prefix\n")
    fs.put(str(tickets["test"]), "corpus/test.csv")
    result = cli("train", "--name", "tickets-s3", "--mode", "MULTI_CLASS", "--training-data", "s3://corpus/train/part-",
                 "--test-data", "s3://corpus/test.csv", "--output", "s3://corpus/out")
    assert result.code == 0, result.stderr
    describe = result.json()
    assert describe["ClassifierMetadata"]["NumberOfTrainedDocuments"] == 400
    output = describe["OutputDataConfig"]["S3Uri"]
    assert output == f"s3://corpus/out/{describe['TrainingJobId']}/output/output.tar.gz"
    fs.invalidate_cache()
    archive = tickets["test"].parent / "downloaded.tar.gz"
    fs.get(output.removeprefix("s3://"), str(archive))
    assert list(tar_members(archive)) == ["confusion_matrix.json"]


def test_a_three_column_row_fails_naming_the_line(cli, tickets):
    broken = tickets["train"].parent / "broken.csv"
    lines = tickets["train"].read_text(encoding="utf-8").splitlines(keepends=True)
    lines[16] = "billing,two,commas\n"
    broken.write_text("".join(lines), encoding="utf-8")
    result = cli("train", "--name", "broken", "--mode", "MULTI_CLASS", "--training-data", str(broken))
    assert result.code == 1
    assert "broken.csv line 17: expected 2 columns (label,text); found 3" in result.stderr
    describe = result.json()
    assert describe["Status"] == "IN_ERROR"
    assert "broken.csv line 17: expected 2 columns (label,text); found 3" in describe["Message"]


def test_invalid_names_and_tags_are_rejected_before_any_work(cli, tickets):
    result = cli("train", "--name", "-bad name", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]))
    assert result.code != 0
    assert "expected a classifier name of 1-63 letters, digits and inner hyphens" in result.stderr
    assert "found '-bad name'" in result.stderr
    result = cli("train", "--name", "ok", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]), "--tag", "novalue")
    assert result.code != 0 and "--tag expects KEY=VALUE; found 'novalue'" in result.stderr


def test_describe_an_unknown_classifier_is_a_clear_error(cli):
    result = cli("classifiers", "describe", "nobody@champion")
    assert result.code == 1
    assert "classifier 'nobody' not found in the registry" in result.stderr


def test_default_store_keeps_artifacts_under_docclass_home(cli, home, tickets, tmp_path):
    result = cli("train", "--name", "where", "--mode", "MULTI_CLASS", "--training-data", str(tickets["train"]))
    assert result.code == 0, result.stderr
    assert (home / "mlflow.db").is_file()
    assert any((home / "mlartifacts").rglob("MLmodel"))
    assert not (Path.cwd() / "mlruns").exists()


def write_manifest(rows, path: Path, multi_label: bool) -> Path:
    """SageMaker Ground Truth augmented manifest lines for (label(s), text) rows."""
    names = sorted({label for labels, _ in rows for label in labels.split("|")})
    lines = []
    for labels, text in rows:
        if multi_label:
            ids = [names.index(label) for label in labels.split("|")]
            meta = {"class-map": {str(i): names[i] for i in ids}, "type": "groundtruth/text-classification-multilabel"}
            lines.append({"source": text, "topic": ids, "topic-metadata": meta})
        else:
            lines.append({"source": text, "topic": names.index(labels), "topic-metadata": {"class-name": labels}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["MULTI_CLASS", "MULTI_LABEL"])
def test_train_from_augmented_manifests(cli, tmp_path, mode):
    multi_label = mode == "MULTI_LABEL"
    rows = multi_label_rows(300) if multi_label else multi_class_rows(300)
    train = write_manifest(rows[:250], tmp_path / "train.manifest", multi_label)
    test = write_manifest(rows[250:], tmp_path / "test.manifest", multi_label)
    result = cli("train", "--name", "from-manifest", "--mode", mode, "--data-format", "AUGMENTED_MANIFEST",
                 "--attribute-names", "topic", "--training-data", str(train), "--test-data", str(test))
    assert result.code == 0, result.stderr
    describe = result.json()
    assert describe["InputDataConfig"]["DataFormat"] == "AUGMENTED_MANIFEST"
    assert describe["InputDataConfig"]["AugmentedManifests"][0]["AttributeNames"] == ["topic"]
    meta = describe["ClassifierMetadata"]
    assert (meta["NumberOfLabels"], meta["NumberOfTrainedDocuments"], meta["NumberOfTestDocuments"]) == (5, 250, 50)
    assert set(meta["EvaluationMetrics"]) == METRICS

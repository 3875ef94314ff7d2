"""`docclass compare` and `docclass train --auto-promote` end to end: the CLI, a real Prefect
server, MLflow on sqlite. Classifiers are trained once for the module, two homes in parallel."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flows.demo_data import multi_class_rows, write_csv
from tests.conftest import DOCCLASS, Result, run_docclass

METRICS = {"Accuracy", "Precision", "Recall", "F1Score", "MicroPrecision", "MicroRecall", "MicroF1Score", "HammingLoss"}
ROWS = multi_class_rows(1000)


def _env(home: Path, prefect_server: str) -> dict[str, str]:
    return {"DOCCLASS_HOME": str(home), "PREFECT_API_URL": prefect_server, "MLFLOW_TRACKING_URI": ""}


def _train_chain(env: dict[str, str], *trainings: list[str]) -> subprocess.Popen:
    """Trains versions one after another (version numbers follow the order) in the background."""
    script = " && ".join(
        " ".join(f"'{arg}'" for arg in [str(DOCCLASS), "train", "--mode", "MULTI_CLASS", *args]) + " >/dev/null"
        for args in trainings
    )
    return subprocess.Popen(["sh", "-c", script], env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def homes(prefect_server, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Two homes. ``tickets``: v1 on 60 documents, v2 on 400, both tested on the same
    test.csv. ``holdout``: two versions trained on holdouts, so no test data is recorded."""
    root = tmp_path_factory.mktemp("compare")
    data = {
        "weak": write_csv(ROWS[:60], root / "data" / "weak.csv"),
        "strong": write_csv(ROWS[:400], root / "data" / "strong.csv"),
        "test": write_csv(ROWS[400:600], root / "data" / "test.csv"),
        "other": write_csv(ROWS[600:660], root / "data" / "other.csv"),
        "big": write_csv(ROWS[600:1000], root / "data" / "big.csv"),
    }
    envs = {name: _env(root / name, prefect_server) for name in ("tickets", "holdout")}
    chains = [
        _train_chain(envs["tickets"], ["--name", "tickets", "--training-data", str(data["weak"]), "--test-data", str(data["test"])],
                     ["--name", "tickets", "--training-data", str(data["strong"]), "--test-data", str(data["test"])]),
        _train_chain(envs["holdout"], ["--name", "holdout", "--training-data", str(data["weak"])],
                     ["--name", "holdout", "--training-data", str(data["other"])]),
    ]
    for chain in chains:
        _, stderr = chain.communicate(timeout=300)
        assert chain.returncode == 0, stderr
    return {"data": {k: str(v) for k, v in data.items()}, **envs}


def cli(env: dict[str, str], *args: str) -> Result:
    return run_docclass(*args, env=env)


@pytest.fixture
def registry(monkeypatch):
    """An MlflowClient on a home's store (through the environment, see test_train_cli)."""
    from mlflow.tracking import MlflowClient

    def client(env: dict[str, str]) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{env['DOCCLASS_HOME']}/mlflow.db")
        return MlflowClient()

    return client


def champion_and_challenger(client, name: str) -> tuple[str, str]:
    aliases = {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}
    return aliases.get("champion"), aliases.get("challenger")


def test_compare_picks_the_better_version_and_promotes_only_when_asked(homes, registry):
    env, client = homes["tickets"], registry(homes["tickets"])
    result = cli(env, "compare", "--name", "tickets")
    assert result.code == 0, result.stderr
    compared = result.json()
    assert compared["DocumentClassifierName"] == "tickets" and compared["NumberOfTestDocuments"] == 200
    assert compared["TestS3Uri"] == homes["data"]["test"]  # recorded on the newest version
    assert [v["Version"] for v in compared["Versions"]] == ["1", "2"]
    assert [v["Aliases"] for v in compared["Versions"]] == [["champion"], ["challenger"]]
    v1, v2 = (v["EvaluationMetrics"] for v in compared["Versions"])
    assert set(v1) == set(v2) == METRICS and v2["F1Score"] > v1["F1Score"]
    assert compared["Winner"] == "2" and compared["Promoted"] is False and compared["Champion"] == "1"
    assert compared["Reason"].startswith(f"F1Score {v2['F1Score']:.4f} > {v1['F1Score']:.4f} of version 1 on ")
    assert compared["PerClassDeltas"]["Baseline"] == "1" and compared["PerClassDeltas"]["Candidate"] == "2"
    assert set(compared["PerClassDeltas"]["F1Score"]) == {"account", "billing", "refund", "shipping", "technical"}
    assert "higher F1Score wins" in compared["Rule"]
    assert "v2 - v1" in result.stderr and "F1Score billing" in result.stderr
    assert champion_and_challenger(client, "tickets") == ("1", "2")  # no --promote, nothing moved
    assert "docclass.promotion_reason" not in client.get_model_version("tickets", "2").tags

    # Scored the same way as training: same test set and labels give the training metrics.
    training_run = client.get_run(client.get_model_version("tickets", "2").run_id)
    assert v2["F1Score"] == pytest.approx(training_run.data.metrics["F1Score"], abs=1e-6)

    result = cli(env, "compare", "--name", "tickets", "--promote")
    assert result.code == 0, result.stderr
    promoted = result.json()
    assert promoted["Winner"] == "2" and promoted["Promoted"] is True and promoted["Champion"] == "2"
    assert champion_and_challenger(client, "tickets") == ("2", "1")
    tags = client.get_model_version("tickets", "2").tags
    run_id = promoted["ComparisonRunId"]
    assert tags["docclass.promotion_reason"] == promoted["Reason"]
    assert "F1Score" in tags["docclass.promotion_reason"] and run_id in tags["docclass.promotion_reason"]
    assert tags["docclass.promoted_at"].endswith("Z")

    run = client.get_run(run_id)
    assert run.info.run_name == "compare v1 vs v2" and run.data.tags["docclass.kind"] == "comparison"
    assert {"v1.F1Score", "v2.F1Score", "v2.HammingLoss", "delta.billing.F1Score"} <= set(run.data.metrics)
    assert set(run.data.params) == {"classifier_name", "versions", "test_data", "number_of_test_documents", "rule"}
    assert run.data.params["versions"] == "1,2"
    assert "comparison.json" in {a.path for a in client.list_artifacts(run_id)}
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(child.data.params["classifier_version"] for child in children) == ["1", "2"]
    for child in children:
        assert child.data.tags["docclass.kind"] == "evaluation"
        assert set(child.data.metrics) == METRICS  # the names training runs use

    result = cli(env, "compare", "--name", "tickets", "--versions", "2", "1", "--promote")
    assert result.code == 0, result.stderr
    stayed = result.json()
    assert stayed["Winner"] == "2" and stayed["Promoted"] is False and stayed["Champion"] == "2"
    assert stayed["Reason"].startswith("stayed champion: F1Score")
    assert client.get_model_version("tickets", "2").tags["docclass.promotion_reason"] == stayed["Reason"]


def test_comparing_a_version_that_does_not_exist_fails_clearly(homes):
    result = cli(homes["tickets"], "compare", "--name", "tickets", "--versions", "1", "9")
    assert result.code == 1
    assert "docclass: error: classifier 'tickets' has no version '9'" in result.stderr
    assert result.stdout == ""


def test_without_recorded_test_data_compare_asks_for_it(homes):
    result = cli(homes["holdout"], "compare", "--name", "holdout", "--versions", "1", "2")
    assert result.code == 1
    assert "docclass: error: expected test data to compare on; found none" in result.stderr
    assert "--test-data" in result.stderr


def test_train_auto_promote_makes_a_better_version_champion(homes, registry):
    env = homes["holdout"]
    result = cli(env, "train", "--name", "holdout", "--mode", "MULTI_CLASS", "--training-data", homes["data"]["big"],
                 "--auto-promote")
    assert result.code == 0, result.stderr
    describe = result.json()
    version = describe["ModelVersion"]
    promotion = describe["Promotion"]
    assert promotion["Winner"] == version and promotion["Promoted"] is True and promotion["Champion"] == version
    assert f"on the holdout of training job {describe['TrainingJobId']}" in promotion["Reason"]
    client = registry(env)
    assert champion_and_challenger(client, "holdout")[0] == version
    assert client.get_model_version("holdout", version).tags["docclass.promotion_reason"] == promotion["Reason"]

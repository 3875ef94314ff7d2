"""Deployments for real: `docclass server` starts a Prefect server on a free loopback port,
applies deployments/prefect.yaml and runs a worker; runs are created through the API as the UI
creates them, the worker executes them, and their artifacts are read back."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.exceptions import PrefectHTTPStatusError

from flows.demo_data import multi_class_rows, write_csv
from tests.conftest import DOCCLASS, free_port, run_docclass, stop_process_group, wait_for_http

CLASSIFY = "start_document_classification_job/classify"
INCOMING = "start_document_classification_job/classify-incoming"
TRAIN = "create_document_classifier/train"
COMPARE = "compare_document_classifiers/compare"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`docclass server` in its own process group, with this module's DOCCLASS_HOME and locations."""
    root = tmp_path_factory.mktemp("deployments")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "PREFECT_HOME")}
    env.update(DOCCLASS_HOME=str(root / "home"), DOCCLASS_SCHEDULED_CLASSIFIER="tickets",
               DOCCLASS_INCOMING_URI=str(root / "incoming") + "/", DOCCLASS_OUTPUT_URI=str(root / "output"))
    log = open(root / "server.log", "wb")
    process = subprocess.Popen([str(DOCCLASS), "server", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    env["PREFECT_API_URL"] = api
    try:
        wait_for_http(f"{api}/health", process, timeout=120)
        with SyncPrefectClient(api) as client:
            _wait(lambda: _deployment_ids(client) and _worker_online(client), process, "deployments and a worker")
        train = run_docclass("train", "--name", "tickets", "--mode", "MULTI_CLASS", "--training-data",
                             str(write_csv(multi_class_rows(300), root / "train.csv")), env=env)
        assert train.code == 0, train.stderr
        yield env, root, api
    finally:
        stop_process_group(process, timeout=30)
        log.close()


def _wait(condition, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"docclass server exited with {process.returncode} before {what}"
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout} s")


def _deployment_ids(client) -> dict[str, UUID]:
    found = {}
    for name in (TRAIN, CLASSIFY, INCOMING, COMPARE):
        try:
            found[name] = client.read_deployment_by_name(name).id
        except Exception:  # noqa: BLE001 - not applied yet
            return {}
    return found


def _worker_online(client) -> bool:
    return any(w.status.value == "ONLINE" for w in client.read_workers_for_work_pool("docclass"))


def _finished(api: str, flow_run_id: UUID, timeout: float = 120):
    with SyncPrefectClient(api) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return run
            time.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} did not finish within {timeout} s")


def _artifacts(api: str, flow_run_id: UUID) -> dict[str, object]:
    with SyncPrefectClient(api) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: json.loads(a.data) if isinstance(a.data, str) else a.data for a in found}


def _job_request(root: Path, input_uri: str, **extra) -> dict:
    return {"DocumentClassifier": "tickets", "InputDataConfig": {"S3Uri": input_uri},
            "OutputDataConfig": {"S3Uri": str(root / "output")}, **extra}


def _predictions(root: Path, flow_run_id: UUID) -> list[dict]:
    archive = root / "output" / flow_run_id.hex / "output" / "output.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        return [json.loads(line) for line in tar.extractfile("predictions.jsonl").read().decode().splitlines()]


def test_deployments_come_from_the_repo_file_with_forms_and_schedules(server):
    _, _, api = server
    with SyncPrefectClient(api) as client:
        train, incoming = client.read_deployment_by_name(TRAIN), client.read_deployment_by_name(INCOMING)
        classify = client.read_deployment_by_name(CLASSIFY)
    assert [s.schedule.cron for s in train.schedules] == ["0 2 * * *"]
    assert [s.schedule.cron for s in incoming.schedules] == ["0 * * * *"]
    assert not any(s.active for s in train.schedules + incoming.schedules)  # paused unless --schedules
    assert train.schedules[0].parameters["request"]["AutoPromote"] is True
    assert incoming.parameters["request"]["OnlyNewDocuments"] is True
    assert incoming.global_concurrency_limit.limit == 1  # one incoming run at a time
    # The UI renders the pydantic request model as a form: fields, descriptions, enums.
    schema = classify.parameter_openapi_schema
    assert schema["required"] == ["request"]
    definitions = schema["definitions"]
    job = definitions["StartDocumentClassificationJobRequest"]["properties"]
    assert "NAME@ALIAS" in job["DocumentClassifier"]["description"]
    assert definitions["InputFormat"]["enum"] == ["ONE_DOC_PER_LINE", "ONE_DOC_PER_FILE"]


def test_a_run_triggered_as_the_ui_does_executes_and_publishes_its_summary(server):
    env, root, api = server
    (root / "batch").mkdir()
    (root / "batch" / "a.txt").write_text("I was charged twice this month\nmy parcel never arrived\n", encoding="utf-8")
    with SyncPrefectClient(api) as client:
        deployment = client.read_deployment_by_name(CLASSIFY)
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"request": _job_request(root, str(root / "batch") + "/")})
    done = _finished(api, run.id)
    assert done.state.is_completed(), done.state.message
    summary = {row["Field"]: row["Value"] for row in _artifacts(api, run.id)["docclass-job-summary"]}
    assert summary["NumberOfDocuments"] == "2" and summary["OutputS3Uri"].endswith("output.tar.gz")
    assert sum(int(v) for k, v in summary.items() if k.startswith("Class ")) == 2  # the class distribution
    assert [r["Line"] for r in _predictions(root, run.id)] == ["0", "1"]  # Comprehend's Line is a string


def test_the_server_rejects_parameters_the_schema_does_not_allow(server):
    _, root, api = server
    with SyncPrefectClient(api) as client:
        deployment = client.read_deployment_by_name(CLASSIFY)
        bad = _job_request(root, str(root / "batch"))
        bad["InputDataConfig"]["InputFormat"] = "ONE_DOC_PER_PARAGRAPH"
        with pytest.raises(PrefectHTTPStatusError) as raised:
            client.create_flow_run_from_deployment(deployment.id, parameters={"request": bad})
        assert raised.value.response.status_code == 409
        assert "ONE_DOC_PER_PARAGRAPH" in raised.value.response.text
        missing = {"InputDataConfig": {"S3Uri": "x"}, "OutputDataConfig": {"S3Uri": "y"}}  # no DocumentClassifier
        with pytest.raises(PrefectHTTPStatusError):
            client.create_flow_run_from_deployment(deployment.id, parameters={"request": missing})


def test_classify_no_wait_returns_submitted_and_the_worker_completes_it(server):
    env, root, _ = server
    (root / "nowait.txt").write_text("the app crashes when I log in\n", encoding="utf-8")
    started = time.monotonic()
    submitted = run_docclass("classify", "--no-wait", "--classifier", "tickets", "--input-uri", str(root / "nowait.txt"),
                             "--output-uri", str(root / "output"), env=env)
    assert submitted.code == 0, submitted.stderr
    assert submitted.json()["JobStatus"] == "SUBMITTED" and time.monotonic() - started < 30
    job_id = submitted.json()["JobId"]
    deadline = time.monotonic() + 120
    while (described := run_docclass("jobs", "describe", job_id, env=env).json())["JobStatus"] in ("SUBMITTED", "IN_PROGRESS"):
        assert time.monotonic() < deadline, described
        time.sleep(1)
    assert described["JobStatus"] == "COMPLETED" and described["NumberOfDocuments"] == 1


def test_no_wait_without_a_server_says_how_to_start_one(tmp_path):
    env = {"PREFECT_API_URL": "", "DOCCLASS_HOME": str(tmp_path)}
    result = run_docclass("classify", "--no-wait", "--classifier", "tickets", "--input-uri", "x", env=env)
    assert result.code == 1
    assert "start `docclass server`" in result.stderr and "PREFECT_API_URL unset" in result.stderr


def test_the_incoming_deployment_classifies_each_object_exactly_once(server):
    env, root, api = server
    incoming = root / "incoming"
    incoming.mkdir()

    def hourly_run():  # what the schedule does: a run with the deployment's default parameters
        with SyncPrefectClient(api) as client:
            run = client.create_flow_run_from_deployment(client.read_deployment_by_name(INCOMING).id)
        done = _finished(api, run.id)
        assert done.state.is_completed(), done.state.message
        return [(r["File"], r["Line"]) for r in _predictions(root, run.id)]

    assert hourly_run() == []  # nothing has arrived yet: completes, empty
    (incoming / "1.txt").write_text("refund please\nwhere is my parcel\n", encoding="utf-8")
    (incoming / "2.txt").write_text("I cannot log in\n", encoding="utf-8")
    first = hourly_run()
    assert first == [("1.txt", "0"), ("1.txt", "1"), ("2.txt", "0")]
    (incoming / "3.txt").write_text("charged twice\n", encoding="utf-8")
    second = hourly_run()
    assert second == [("3.txt", "0")]
    assert hourly_run() == []


def test_a_training_run_publishes_metrics_and_confusion_matrix(server):
    env, root, api = server
    request = {"DocumentClassifierName": "tickets", "Mode": "MULTI_CLASS",
               "InputDataConfig": {"S3Uri": str(write_csv(multi_class_rows(200, seed=3), root / "t2.csv"))}}
    with SyncPrefectClient(api) as client:
        run = client.create_flow_run_from_deployment(client.read_deployment_by_name(TRAIN).id, parameters={"request": request})
    done = _finished(api, run.id, timeout=180)
    assert done.state.is_completed(), done.state.message
    artifacts = _artifacts(api, run.id)
    metrics = {row["Metric"]: row["Value"] for row in artifacts["docclass-metrics"]}
    assert {"Accuracy", "F1Score", "MicroF1Score", "HammingLoss"} <= set(metrics)
    assert "billing F1Score" in metrics and metrics["billing Support"] > 0
    confusion = artifacts["docclass-confusion-matrix"]
    assert sum(v for row in confusion for k, v in row.items() if k != "actual") == metrics["billing Support"] + sum(
        metrics[f"{label} Support"] for label in {row["actual"] for row in confusion} - {"billing"})

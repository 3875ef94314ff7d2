"""Security: credentials never leave the environment; archives hold only flat, expected names;
servers listen on loopback unless told otherwise."""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path

import pytest

from flows.cli import build_parser
from flows.demo_data import multi_class_rows, write_csv

SECRET = "docclassSECRETsentinel0123456789abcdef"
KEY_ID = "AKIADOCCLASSSENTINEL"


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def test_aws_credentials_appear_nowhere_docclass_writes(cli, s3, prefect_server, tmp_path, monkeypatch):
    """S3 keys in the environment, used by a training and a job on S3: afterwards no CLI output,
    Prefect parameter, log or artifact, MLflow param, tag or description, nor archive holds them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRET + "token")
    fs = s3.filesystem()
    fs.mkdir("secure")
    train = write_csv(multi_class_rows(200), tmp_path / "train.csv")
    fs.put(str(train), "secure/train.csv")
    fs.pipe("secure/in/docs.txt", ("\n".join(t for _, t in multi_class_rows(50, seed=2)) + "\n").encode())

    trained = cli("train", "--name", "secure", "--mode", "MULTI_CLASS", "--training-data", "s3://secure/train.csv",
                  "--output", "s3://secure/models")
    assert trained.code == 0, trained.stderr
    job = cli("classify", "--classifier", "secure", "--input-uri", "s3://secure/in/", "--output-uri", "s3://secure/out")
    assert job.code == 0, job.stderr
    bad = cli("classify", "--classifier", "secure", "--input-uri", f"s3://{KEY_ID}:{SECRET}@secure/in/",
              "--output-uri", "s3://secure/out")
    assert bad.code != 0 and "expected a URI without credentials" in bad.stderr

    seen = [trained.stdout, trained.stderr, job.stdout, job.stderr, bad.stdout, bad.stderr]
    seen += _prefect_records(prefect_server, trained.json()["TrainingJobId"], job.json()["JobId"])
    seen += _mlflow_records("secure", monkeypatch)
    fs.invalidate_cache()
    for uri in (trained.json()["OutputDataConfig"]["S3Uri"], job.json()["OutputDataConfig"]["S3Uri"]):
        archive = tmp_path / f"{uuid.uuid4().hex}.tar.gz"
        fs.get(uri.removeprefix("s3://"), str(archive))
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                seen.append(tar.extractfile(member).read().decode("utf-8", "replace"))
    text = "\n".join(seen)
    assert len(text) > 10_000  # logs, parameters, MLflow records really were read
    assert "s3://secure/in/" in text and "Accuracy" in text
    for secret in (SECRET, KEY_ID):
        assert secret not in text


def _prefect_records(api: str, *flow_run_ids: str) -> list[str]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    ids = [uuid.UUID(i) for i in flow_run_ids]
    with SyncPrefectClient(api) as client:
        runs = [client.read_flow_run(i) for i in ids]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
    assert logs and artifacts
    return ([json.dumps(run.parameters) for run in runs] + [run.state.message or "" for run in runs]
            + [log.message for log in logs] + [json.dumps(a.data) + (a.description or "") for a in artifacts])


def _mlflow_records(name: str, monkeypatch) -> list[str]:
    """Through the environment, not registry.configure: mlflow.set_tracking_uri would export
    MLFLOW_TRACKING_URI to every later test's child processes."""
    from mlflow.tracking import MlflowClient

    from tasks.registry import default_tracking_uri
    from tasks.settings import docclass_home

    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_tracking_uri(docclass_home()))
    client = MlflowClient()
    model = client.get_registered_model(name)
    records = [json.dumps(model.tags), model.description or ""]
    for version in client.search_model_versions(f"name='{name}'"):
        records += [json.dumps(version.tags), version.description or "", version.source or ""]
        run = client.get_run(version.run_id)
        records += [json.dumps(run.data.params), json.dumps(run.data.tags)]
    return records


def test_servers_listen_on_loopback_unless_told_otherwise():
    parser = build_parser()
    assert parser.parse_args(["serve", "--classifier", "x"]).host == "127.0.0.1"
    assert parser.parse_args(["server"]).host == "127.0.0.1"


@pytest.mark.parametrize("uri", ["s3://AKIA:secret@bucket/in/", "https://user:pw@example.com/x", "file://u@host/x"])
def test_uris_with_credentials_are_refused_without_echoing_them(uri):
    from pydantic import ValidationError

    from flows.request_models import StartDocumentClassificationJobRequest

    with pytest.raises(ValidationError) as info:
        StartDocumentClassificationJobRequest(DocumentClassifier="x", InputDataConfig={"S3Uri": uri},
                                              OutputDataConfig={"S3Uri": "out/"})
    message = info.value.errors()[0]["msg"]
    assert "expected a URI without credentials" in message and uri not in message


@pytest.mark.parametrize("reference", ["../models/x", "s3://bucket/model.joblib"])
def test_a_model_is_loaded_only_from_the_configured_registry(cli, reference):
    """Models are pickles: a path or URI in place of a registered name is refused before anything
    is read, for jobs, one-off classification and the server alike."""
    for args in (("classify-text", "--classifier", reference, "hello"),
                 ("serve", "--classifier", reference, "--port", "1"),
                 ("classify", "--classifier", reference, "--input-uri", "in.txt")):
        result = cli(*args)
        refused = result.code == 2 and "expected" in result.stderr  # not a name: refused as bad usage
        unknown = result.code == 1 and "not found in the registry" in result.stderr  # a name nobody registered
        assert refused or unknown, (args, result.code, result.stderr[-500:])

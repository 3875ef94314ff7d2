"""Classification jobs as Prefect flow runs: describe, list and stop them through Prefect's API.

Every job is a run of the flow ``start_document_classification_job``, however it was started
(the CLI, a deployment, the Prefect UI), so these read whatever API PREFECT_API_URL names.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry, Cancelled, Cancelling, State

from classifier_core.config import JobStatus
from classifier_core.errors import DocclassError
from tasks import storage
from tasks.classification import SUMMARY_ARTIFACT_KEY
from tasks.settings import docclass_home

JOB_FLOW_NAME = "start_document_classification_job"
PAGE_SIZE = 200  # the most the Prefect API returns at once
DEFAULT_MAX_RESULTS = 100

_STATUS = {
    StateType.SCHEDULED: JobStatus.SUBMITTED,
    StateType.PENDING: JobStatus.SUBMITTED,
    StateType.RUNNING: JobStatus.IN_PROGRESS,
    StateType.PAUSED: JobStatus.IN_PROGRESS,
    StateType.COMPLETED: JobStatus.COMPLETED,
    StateType.FAILED: JobStatus.FAILED,
    StateType.CRASHED: JobStatus.FAILED,
    StateType.CANCELLING: JobStatus.STOP_REQUESTED,
    StateType.CANCELLED: JobStatus.STOPPED,
}


class JobNotFoundError(DocclassError):
    """No classification job has that id."""


def job_status(flow_run: FlowRun) -> JobStatus:
    return _STATUS.get(flow_run.state_type, JobStatus.SUBMITTED) if flow_run.state_type else JobStatus.SUBMITTED


def parse_job_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise JobNotFoundError(f"expected a job id of 32 hexadecimal characters; found {job_id!r}") from None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def _summary(client, flow_run_id: uuid.UUID) -> dict:
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[SUMMARY_ARTIFACT_KEY])
        ),
        limit=1,
    )
    if not artifacts:
        return {}
    rows = artifacts[0].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    return {row["Field"]: row["Value"] for row in rows}


def describe_flow_run(client, flow_run: FlowRun) -> dict:
    """The DescribeDocumentClassificationJob shape (JobProperties) of one flow run."""
    request = flow_run.parameters.get("request", {})
    input_config = request.get("InputDataConfig", {})
    job_id = flow_run.id.hex
    status = job_status(flow_run)
    output_base = request.get("OutputDataConfig", {}).get("S3Uri", "")
    properties = {
        "JobId": job_id,
        "JobName": request.get("JobName"),
        "JobStatus": status.value,
        "SubmitTime": _iso(flow_run.created),
        "EndTime": _iso(flow_run.end_time) if flow_run.state_type and flow_run.state.is_final() else None,
        "DocumentClassifier": request.get("DocumentClassifier"),
        "InputDataConfig": {"S3Uri": storage.redact(input_config.get("S3Uri", "")), "InputFormat": input_config.get("InputFormat")},
        "OutputDataConfig": {"S3Uri": storage.redact(storage.join(output_base, job_id, "output", "output.tar.gz"))},
    }
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.STOP_REQUESTED) and flow_run.state:
        properties["Message"] = flow_run.state.message
    summary = _summary(client, flow_run.id) if status is JobStatus.COMPLETED else {}
    if summary:
        properties["DocumentClassifierName"] = summary["DocumentClassifierName"]
        properties["DocumentClassifierVersion"] = summary["DocumentClassifierVersion"]
        properties["NumberOfDocuments"] = int(summary["NumberOfDocuments"])
        properties["NumberOfDocumentErrors"] = int(summary["NumberOfDocumentErrors"])
        if "NumberOfInputObjects" in summary:
            properties["NumberOfInputObjects"] = int(summary["NumberOfInputObjects"])
    if request.get("OnlyNewDocuments"):
        properties["OnlyNewDocuments"] = True
    return {key: value for key, value in properties.items() if value is not None}


def _read_job(client, job_id: str) -> FlowRun:
    try:
        flow_run = client.read_flow_run(parse_job_id(job_id))
    except ObjectNotFound:
        raise JobNotFoundError(f"no classification job with id {job_id}") from None
    flow = client.read_flow(flow_run.flow_id)
    if flow.name != JOB_FLOW_NAME:
        raise JobNotFoundError(f"no classification job with id {job_id} (that flow run is a {flow.name} run)")
    return flow_run


def describe_job(job_id: str) -> dict:
    with get_client(sync_client=True) as client:
        return describe_flow_run(client, _read_job(client, job_id))


def _job_runs(client) -> list[FlowRun]:
    """Every run of the job flow, page by page."""
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[JOB_FLOW_NAME])),
            sort=FlowRunSort.ID_DESC,
            limit=PAGE_SIZE,
            offset=len(runs),
        )
        runs += page
        if len(page) < PAGE_SIZE:
            return runs


def list_jobs(
    job_name: str | None = None,
    status: JobStatus | None = None,
    submitted_before: datetime | None = None,
    submitted_after: datetime | None = None,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> list[dict]:
    """Jobs, newest first, filtered on at most one criterion (as Comprehend's ListDocumentClassificationJobs)."""
    if sum(x is not None for x in (job_name, status, submitted_before, submitted_after)) > 1:
        raise DocclassError("expected at most one filter (job name, status, submitted before, submitted after); found several")
    with get_client(sync_client=True) as client:
        selected = [
            run for run in _job_runs(client)
            if (job_name is None or run.parameters.get("request", {}).get("JobName") == job_name)
            and (status is None or job_status(run) is status)
            and (submitted_before is None or run.created < submitted_before)
            and (submitted_after is None or run.created > submitted_after)
        ]
        selected.sort(key=lambda run: run.created, reverse=True)
        return [describe_flow_run(client, run) for run in selected[:max_results]]


def stop_job(job_id: str) -> dict:
    """Asks a job to stop: a queued one is cancelled at once, a running one stops at its next batch."""
    with get_client(sync_client=True) as client:
        flow_run = _read_job(client, job_id)
        status = job_status(flow_run)
        if status is JobStatus.SUBMITTED:
            client.set_flow_run_state(flow_run.id, Cancelled(message="stopped on request before it started"), force=True)
        elif status is JobStatus.IN_PROGRESS:
            client.set_flow_run_state(flow_run.id, Cancelling(message="stop requested"), force=True)
        else:
            raise DocclassError(f"job {job_id} is {status.value}; only SUBMITTED or IN_PROGRESS jobs can be stopped")
        return describe_flow_run(client, client.read_flow_run(flow_run.id))


def _owner_file(job_id: str) -> Path:
    return docclass_home() / "work" / job_id / "owner.json"


def record_owner(job_id: str) -> None:
    """Notes which process runs the job, so ``resume`` can tell a live job from a killed one."""
    path = _owner_file(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"Host": socket.gethostname(), "Pid": os.getpid()}), encoding="utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_not_running(job_id: str, status: JobStatus) -> None:
    """A job the API calls IN_PROGRESS may be running, or its process may have died (killed,
    machine lost) before it could say so. Resuming a live job would do its work twice."""
    path = _owner_file(job_id)
    if not path.is_file():
        raise DocclassError(
            f"job {job_id} is {status.value} and was not started with this DOCCLASS_HOME on this machine, so docclass "
            "cannot tell whether it is still running; if its process is gone, resume it with --force"
        )
    owner = json.loads(path.read_text(encoding="utf-8"))
    if owner.get("Host") == socket.gethostname() and _alive(int(owner["Pid"])):
        raise DocclassError(
            f"job {job_id} is still running (process {owner['Pid']}); stop it with `docclass jobs stop {job_id}` "
            "or wait for it to end"
        )


def resume_job(job_id: str, force: bool = False) -> State:
    """Runs a FAILED, STOPPED or interrupted job's flow run again, in this process, under the same
    JobId: shards already in its staging area are kept, only the rest is classified, and the
    predictions are the same bytes an uninterrupted run writes."""
    from prefect.flow_engine import run_flow

    from flows.classification import start_document_classification_job
    from flows.request_models import StartDocumentClassificationJobRequest

    with get_client(sync_client=True) as client:
        flow_run = _read_job(client, job_id)
        status = job_status(flow_run)
        if status is JobStatus.COMPLETED:
            raise DocclassError(f"job {job_id} is COMPLETED: its output is published; there is nothing to resume")
        if status is JobStatus.SUBMITTED:
            raise DocclassError(f"job {job_id} is SUBMITTED: it has not started; a worker will run it")
        if status in (JobStatus.IN_PROGRESS, JobStatus.STOP_REQUESTED) and not force:
            _check_not_running(flow_run.id.hex, status)
        client.set_flow_run_state(flow_run.id, AwaitingRetry(message="resumed with docclass jobs resume"), force=True)
        flow_run = client.read_flow_run(flow_run.id)
    request = StartDocumentClassificationJobRequest.model_validate(flow_run.parameters["request"])
    return run_flow(start_document_classification_job, flow_run=flow_run, parameters={"request": request},
                    return_type="state")

"""The classification job flow: resolve model -> plan shards -> classify shards -> package output."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

from prefect import flow, unmapped
from prefect.client.orchestration import get_client
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Cancelled, Failed
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from classifier_core.config import InputFormat
from classifier_core.errors import DocclassError
from classifier_core.shards import Shard, ShardResult
from flows.jobs import record_owner
from flows.request_models import StartDocumentClassificationJobRequest
from tasks import storage
from tasks.classification import (
    JobStopped,
    ResolvedClassifier,
    ShardProgress,
    classify_job_shard,
    init_shard_worker,
    ledger_uri,
    list_inputs,
    package_job_output,
    plan_job_shards,
    publish_job_summary,
    read_job_plan,
    record_classified_inputs,
    remove_staging,
    resolve_classifier,
    skip_classified_inputs,
    staging_uri,
    total_counts,
)
from tasks.process import without_heartbeats
from tasks.settings import work_dir


def output_archive_uri(request: StartDocumentClassificationJobRequest, job_id: str) -> str:
    return storage.join(request.OutputDataConfig.S3Uri, job_id, "output", "output.tar.gz")


@flow(name="start_document_classification_job", log_prints=False)
def start_document_classification_job(request: StartDocumentClassificationJobRequest) -> dict:
    """Classifies every document under the input URI with a registered classifier.

    Writes ``<output>/<JobId>/output/output.tar.gz`` holding predictions.jsonl, one record per
    input document in input order, and publishes it only once complete. JobId is the flow
    run id. A job that cannot run ends Failed with the reason; a stopped job ends Cancelled.

    The inputs are cut into shards, classified on every core (or on a Dask cluster with
    ``DaskAddress``) and kept in ``<output>/<JobId>/staging/`` until the output is published.
    Running the same flow run again (``docclass jobs resume JOB_ID``, or Retry in the Prefect
    UI) classifies only the shards not done yet, and writes the same predictions.jsonl.

    With ``OnlyNewDocuments`` (scheduled jobs over an "incoming" prefix) the job skips objects
    that earlier such jobs with the same input and output locations classified, and an empty
    or fully classified prefix completes with no documents instead of failing.
    """
    job_id = uuid.UUID(str(flow_run.id)).hex if flow_run.id else uuid.uuid4().hex
    output_uri = output_archive_uri(request, job_id)
    staging = staging_uri(request.OutputDataConfig.S3Uri, job_id)
    input_format = request.InputDataConfig.InputFormat
    workers = request.Workers or os.cpu_count() or 1
    work = work_dir(job_id)
    record_owner(job_id)
    try:
        classifier = resolve_classifier(request.DocumentClassifier, work)
        plan = read_job_plan(staging)
        if plan is None:
            inputs = list_inputs(request.InputDataConfig.S3Uri, allow_empty=request.OnlyNewDocuments)
            if request.OnlyNewDocuments:
                inputs = skip_classified_inputs(inputs, ledger_uri(request.InputDataConfig.S3Uri, request.OutputDataConfig.S3Uri))
            plan = plan_job_shards(inputs, input_format, staging, workers, work)
        runner = shard_task_runner(request.DaskAddress, workers, len(plan.shards), plan.total_bytes)
        with without_heartbeats():  # (this flow run's own heartbeats go on)
            results = classify_shards.with_options(task_runner=runner)(
                plan.shards, classifier, input_format, staging, job_id, flow_run.id, request.Explain,
            ) if plan.shards else []
        counts = total_counts(results, classifier.labels)
        package_job_output(staging, results, output_uri, work)
        if request.OnlyNewDocuments:
            ledger = ledger_uri(request.InputDataConfig.S3Uri, request.OutputDataConfig.S3Uri)
            record_classified_inputs(plan.input_uris, ledger, job_id, work)
        remove_staging(staging)
        return publish_job_summary(classifier, counts, output_uri, len(plan.input_uris))
    except JobStopped as exc:
        return Cancelled(message=str(exc))
    except DocclassError as exc:
        return Failed(message=str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)


@flow(name="classify-shards", log_prints=False)
def classify_shards(
    shards: list[Shard], classifier: ResolvedClassifier, input_format: InputFormat, staging: str, job_id: str,
    job_flow_run_id: str | None, explain: bool,
) -> list[ShardResult]:
    """Classifies every shard on this flow's task runner; returns their results in shard order."""
    progress = ShardProgress(len(shards))
    with _api_url_for_child_processes():
        futures = classify_job_shard.map(shards, unmapped(classifier), unmapped(input_format), unmapped(staging),
                                         unmapped(job_id), unmapped(job_flow_run_id), unmapped(explain))
        for future in as_completed(futures):
            progress.add(future.result())
    return sorted((future.result() for future in futures), key=lambda result: result.index)


# Below this much input a pool's start (a few seconds: each process imports Prefect and
# scikit-learn and loads the model) costs more than the other cores save.
PARALLEL_MIN_BYTES = 32 << 20


def shard_task_runner(dask_address: str | None, workers: int, shards: int, total_bytes: int):
    """Where shards run: the Dask cluster at ``dask_address``; else a pool of ``workers``
    processes on this machine; a small job, a single shard or worker runs in this process."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    parallel_min_bytes = int(os.environ.get("DOCCLASS_PARALLEL_MIN_BYTES") or PARALLEL_MIN_BYTES)
    if min(workers, shards) > 1 and total_bytes >= parallel_min_bytes:
        return ProcessPoolTaskRunner(max_workers=min(workers, shards), initializer=init_shard_worker)
    return ThreadPoolTaskRunner(max_workers=1)


@contextlib.contextmanager
def _api_url_for_child_processes() -> Iterator[None]:
    """Shard processes report to this flow's Prefect API. With no PREFECT_API_URL, that is the
    temporary server Prefect started in this process; without its address each child would
    start a temporary server of its own (seconds each) on the same database."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    with get_client(sync_client=True) as client:
        url = str(client.api_url)
    os.environ["PREFECT_API_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)

"""Prefect tasks of the classification job: resolve the model, list inputs, classify, package.

Classification streams: documents are read, classified and written in bounded batches, so
memory does not grow with the input. Between batches the task checks whether the job was
asked to stop (``docclass jobs stop`` or Cancel in the Prefect UI set the run Cancelling).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client

from classifier_core.config import MAX_DOCUMENT_BYTES_PER_FILE, InputFormat
from classifier_core.documents import Document, batched, read_documents
from classifier_core.errors import DocclassError
from classifier_core.parallel import classify_batches
from classifier_core.model import load_model
from classifier_core.predictions import package_tar_gz
from tasks import registry, storage
from tasks.retry import IO_RETRIES
from tasks.settings import docclass_home

PREDICTIONS = "predictions.jsonl"
LEDGER_FOLDER = ".docclass-ledger"
SUMMARY_ARTIFACT_KEY = "docclass-job-summary"
BATCH_SIZE = 2_000
STOP_CHECK_SECONDS = 1.0
PROGRESS_SECONDS = 5.0


class JobStopped(DocclassError):
    """The job was asked to stop; nothing is published."""


@dataclass(frozen=True)
class ResolvedClassifier:
    name: str
    version: str
    mode: str
    model_dir: str


@dataclass(frozen=True)
class ClassificationCounts:
    predictions_path: str
    documents: int
    errors: int
    class_counts: dict[str, int] = field(default_factory=dict)


@task(name="resolve-classifier", **IO_RETRIES)
def resolve_classifier(reference: str, work_dir: Path) -> ResolvedClassifier:
    """Finds NAME[:VERSION|@ALIAS] (default alias champion) in the registry and downloads it."""
    registry.configure(docclass_home())
    version = registry.resolve(registry.ModelRef.parse(reference))
    model_dir = registry.download_model_dir(version, work_dir / "classifier")
    model = load_model(model_dir)
    get_run_logger().info("classifier %s version %s (%s, %d labels)", version.name, version.version, model.mode.value, len(model.labels_))
    return ResolvedClassifier(version.name, str(version.version), model.mode.value, str(model_dir))


@task(name="list-inputs", **IO_RETRIES)
def list_inputs(input_uri: str, allow_empty: bool = False) -> list[str]:
    """Every input object under the URI (a file or a prefix), in key order.

    Raises:
        StorageError: if nothing matches (unless ``allow_empty``), or the location cannot be listed.
    """
    uris = storage.list_objects(input_uri)
    if not uris and not allow_empty:
        raise storage.StorageError(f"{storage.redact(input_uri)}: no input found: expected at least one file at this URI or prefix")
    get_run_logger().info("%d input file(s) under %s", len(uris), storage.redact(input_uri))
    return uris


def ledger_uri(input_uri: str, output_uri: str) -> str:
    """Where jobs with OnlyNewDocuments record what they classified from this input prefix.

    One folder per (input prefix, output location) pair, one small JSON file per job, so jobs
    never rewrite each other's records.
    """
    digest = hashlib.sha256(storage.redact(input_uri).encode("utf-8")).hexdigest()[:16]
    return storage.join(output_uri, LEDGER_FOLDER, digest)


@task(name="skip-classified-inputs", **IO_RETRIES)
def skip_classified_inputs(input_uris: list[str], ledger: str) -> list[str]:
    """The input objects that no earlier job recorded in the ledger, in key order."""
    done: set[str] = set()
    for record_uri in storage.list_objects(storage.join(ledger, "") + "/"):
        with storage.open_input(record_uri) as fp:
            done.update(json.load(fp)["Objects"])
    new = [uri for uri in input_uris if storage.redact(uri) not in done]
    get_run_logger().info("%d new input object(s); %d already classified by earlier jobs", len(new), len(input_uris) - len(new))
    return new


@task(name="record-classified-inputs", **IO_RETRIES)
def record_classified_inputs(input_uris: list[str], ledger: str, job_id: str, work_dir: Path) -> None:
    """Adds this job's objects to the ledger; called only after its output is published.

    A crash between the two leaves the objects unrecorded, so the next job classifies them
    again: a document may come out twice across jobs, never zero times.
    """
    if not input_uris:
        return
    path = work_dir / "classified-inputs.json"
    path.write_text(json.dumps({"JobId": job_id, "Objects": [storage.redact(uri) for uri in input_uris]}), encoding="utf-8")
    storage.publish(path, storage.join(ledger, f"{job_id}.json"))


class _StopWatch:
    """Asks the Prefect API, at most once a second, whether this flow run is being cancelled."""

    def __init__(self, flow_run_id: str | None):
        self.flow_run_id = UUID(flow_run_id) if flow_run_id else None
        self.checked = 0.0

    def check(self) -> None:
        if self.flow_run_id is None or time.monotonic() - self.checked < STOP_CHECK_SECONDS:
            return
        self.checked = time.monotonic()
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(self.flow_run_id).state
        if state is not None and (state.is_cancelling() or state.is_cancelled()):
            raise JobStopped("the job was stopped on request; no output was published")


class _Progress:
    def __init__(self):
        self.started = self.reported = time.monotonic()
        self.documents = 0

    def add(self, count: int) -> None:
        self.documents += count
        now = time.monotonic()
        if now - self.reported >= PROGRESS_SECONDS:
            self.reported = now
            rate = self.documents / max(now - self.started, 1e-9)
            get_run_logger().info("classified %d documents (%.0f docs/s)", self.documents, rate)


@task(name="classify-documents")
def classify_inputs(
    model_dir: str, input_uris: list[str], input_format: InputFormat, work_dir: Path, flow_run_id: str | None = None,
    explain: bool = False, workers: int | None = None,
) -> ClassificationCounts:
    """Classifies every document of every input, in order, into predictions.jsonl.

    Every document yields exactly one record: a prediction, or an error record in its place.
    Batches are classified on ``workers`` processes (default every core); the output is the
    same as one process writes.
    """
    model = load_model(model_dir)
    stop, progress = _StopWatch(flow_run_id), _Progress()
    errors, class_counts = 0, dict.fromkeys(model.labels_, 0)
    path = work_dir / PREDICTIONS
    batches = batched(_documents(input_uris, input_format), BATCH_SIZE)
    with open(path, "wb") as out:
        for result in classify_batches(model, model_dir, batches, workers, explain):
            stop.check()
            out.write(result.jsonl)
            errors += result.errors
            for name, count in result.class_counts.items():
                class_counts[name] += count
            progress.add(result.documents)
    rate = progress.documents / max(time.monotonic() - progress.started, 1e-9)
    get_run_logger().info("classified %d documents, %d errors (%.0f docs/s)", progress.documents, errors, rate)
    return ClassificationCounts(str(path), progress.documents, errors, class_counts)


def _documents(input_uris: list[str], input_format: InputFormat) -> Iterator[Document]:
    """Every document of every input, in order, each file open only while it is read."""
    for uri in input_uris:
        with storage.open_input(uri) as fp:
            yield from read_documents(fp, storage.base_name(uri), input_format, MAX_DOCUMENT_BYTES_PER_FILE)


@task(name="package-job-output", **IO_RETRIES)
def package_job_output(predictions_path: str, output_uri: str, work_dir: Path) -> str:
    """Packs predictions.jsonl into output.tar.gz and publishes it whole to ``output_uri``."""
    archive = work_dir / "output.tar.gz"
    package_tar_gz([(PREDICTIONS, predictions_path)], archive)
    return storage.publish(archive, output_uri)


@task(name="publish-job-summary", **IO_RETRIES)
def publish_job_summary(
    classifier: ResolvedClassifier, counts: ClassificationCounts, output_uri: str, input_objects: int
) -> dict:
    """A table artifact on the flow run: what ``jobs describe`` reports, and what the UI shows:
    counts, output location and the class distribution (top class, or assigned labels)."""
    summary = {
        "DocumentClassifierName": classifier.name,
        "DocumentClassifierVersion": classifier.version,
        "NumberOfInputObjects": input_objects,
        "NumberOfDocuments": counts.documents,
        "NumberOfDocumentErrors": counts.errors,
        "OutputS3Uri": storage.redact(output_uri),
    }
    rows = [{"Field": key, "Value": str(value)} for key, value in summary.items()]
    rows += [{"Field": f"Class {name}", "Value": str(count)} for name, count in counts.class_counts.items()]
    create_table_artifact(table=rows, key=SUMMARY_ARTIFACT_KEY, description="Classification job summary")
    return summary

"""Prefect tasks of the classification job: resolve the model, list inputs, plan shards,
classify each shard, package.

Every shard is a task that reads its documents, classifies them in bounded batches and
publishes its predictions to the job's staging area (``<output>/<JobId>/staging/``), then a
small file with its counts that marks it done. The shards run on whatever task runner the
flow gives them (this process, a local process pool, a Dask cluster); a resumed run of the
job skips the shards marked done. Packaging streams the shards into output.tar.gz in order,
so memory never grows with the input. Between batches a shard checks whether the job was
asked to stop (``docclass jobs stop`` or Cancel in the Prefect UI set the run Cancelling).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client

from classifier_core.config import MAX_DOCUMENT_BYTES_PER_FILE, InputFormat
from classifier_core.errors import DocclassError
from classifier_core.model_metadata import read_metadata
from classifier_core.predictions import gzip_writer, package_gzip_members
from classifier_core.shards import Shard, ShardResult, classify_shard, plan_shards, shard_batches, shard_bytes_for
from tasks import storage
from tasks.process import exit_without_teardown
from tasks.retry import IO_RETRIES
from tasks.settings import docclass_home

if TYPE_CHECKING:
    from classifier_core.model import TextClassifier
    from classifier_core.scorer import Scorer

PREDICTIONS = "predictions.jsonl"
LEDGER_FOLDER = ".docclass-ledger"
STAGING_FOLDER = "staging"
PLAN = "plan.json"
SUMMARY_ARTIFACT_KEY = "docclass-job-summary"
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
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobPlan:
    """The inputs of a job and their shards, fixed when the job first runs (a resumed job reuses it)."""

    input_uris: list[str]
    shards: list[Shard]
    total_bytes: int = 0


@dataclass(frozen=True)
class ClassificationCounts:
    documents: int
    errors: int
    class_counts: dict[str, int]


def staging_uri(output_root: str, job_id: str) -> str:
    """Where a job keeps its plan and its finished shards until its output is published."""
    return storage.join(output_root, job_id, STAGING_FOLDER)


def shard_uri(staging: str, index: int, suffix: str) -> str:
    return storage.join(staging, f"shard-{index:06d}.{suffix}")


@task(name="resolve-classifier", **IO_RETRIES)
def resolve_classifier(reference: str, work_dir: Path) -> ResolvedClassifier:
    """Finds NAME[:VERSION|@ALIAS] (default alias champion) in the registry and downloads it."""
    from tasks import registry  # imported where needed: shard processes then skip MLflow (~120 MB, 2 s)

    registry.configure(docclass_home())
    registry.check_reachable()
    version = registry.resolve(registry.ModelRef.parse(reference))
    model_dir = registry.download_model_dir(version, work_dir / "classifier")
    metadata = read_metadata(model_dir)  # the shards load the model; this process needs no scikit-learn
    get_run_logger().info("classifier %s version %s (%s, %d labels)", version.name, version.version, metadata["mode"],
                          len(metadata["labels"]))
    return ResolvedClassifier(version.name, str(version.version), metadata["mode"], str(model_dir), tuple(metadata["labels"]))


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


class ShardProgress:
    """Logs shards and documents done, and the rate, as shards finish (at most every 5 s, and at the end)."""

    def __init__(self, shards: int):
        self.shards, self.done, self.documents = shards, 0, 0
        self.started = self.reported = time.monotonic()

    def add(self, result: ShardResult) -> None:
        self.done += 1
        self.documents += result.documents
        now = time.monotonic()
        if now - self.reported >= PROGRESS_SECONDS or self.done == self.shards:
            self.reported = now
            get_run_logger().info("%d/%d shards, %d documents (%.0f docs/s)", self.done, self.shards, self.documents,
                                  self.documents / max(now - self.started, 1e-9))


@task(name="read-job-plan", **IO_RETRIES)
def read_job_plan(staging: str) -> JobPlan | None:
    """The plan an earlier run of this job left in its staging area, if any."""
    uri = storage.join(staging, PLAN)
    if not storage.exists(uri):
        return None
    data = json.loads(storage.read_bytes(uri))
    plan = JobPlan(data["Inputs"], [Shard.from_dict(s) for s in data["Shards"]], data.get("TotalBytes", 0))
    get_run_logger().info("resuming: %d input object(s) in %d shard(s), planned by an earlier run", len(plan.input_uris), len(plan.shards))
    return plan


@task(name="plan-shards", **IO_RETRIES)
def plan_job_shards(input_uris: list[str], input_format: InputFormat, staging: str, workers: int, work_dir: Path) -> JobPlan:
    """Cuts the inputs into shards (files, or byte ranges of large files at line starts) and
    saves the plan, so a resumed job classifies exactly the same shards."""
    objects = [(uri, storage.base_name(uri), storage.size_of(uri)) for uri in input_uris]
    total = sum(size for _, _, size in objects)
    size = int(os.environ.get("DOCCLASS_SHARD_BYTES") or 0) or shard_bytes_for(total, workers)
    shards = plan_shards(objects, input_format, size, storage.open_input)
    plan = {"Inputs": input_uris, "InputFormat": InputFormat(input_format).value, "ShardBytes": size,
            "TotalBytes": total, "Shards": [shard.as_dict() for shard in shards]}
    storage.publish_bytes(json.dumps(plan).encode("utf-8"), storage.join(staging, PLAN), work_dir)
    get_run_logger().info("%d input object(s), %.1f MB, in %d shard(s) of about %.1f MB",
                          len(objects), total / 1e6, len(shards), size / 1e6)
    return JobPlan(input_uris, shards, total)


def init_shard_worker() -> None:
    """Initialises a process-pool worker: its exit skips the interpreter's teardown, which the
    job would wait for (over a second with a model loaded)."""
    exit_without_teardown()


_MODELS: dict[str, TextClassifier | Scorer] = {}


def _model(classifier: ResolvedClassifier) -> TextClassifier | Scorer:
    """The job's model, loaded once per process: its Scorer, which classifies and explains without
    importing scikit-learn. A worker on another machine (Dask) does not have the flow's copy, so it
    downloads the same version from the registry."""
    from classifier_core.scorer import load_scorer

    key = f"{classifier.name}:{classifier.version}"
    if key not in _MODELS:
        model_dir = Path(classifier.model_dir)
        if not model_dir.is_dir():
            from tasks import registry

            registry.configure(docclass_home())
            version = registry.resolve(registry.ModelRef.parse(key))
            model_dir = registry.download_model_dir(version, docclass_home() / "models" / classifier.name / classifier.version)
        _MODELS[key] = load_scorer(model_dir)
    return _MODELS[key]


@task(name="classify-shard", task_run_name="classify-shard-{shard.index}", **IO_RETRIES)
def classify_job_shard(
    shard: Shard, classifier: ResolvedClassifier, input_format: InputFormat, staging: str, job_id: str,
    flow_run_id: str | None = None, explain: bool = False,
) -> ShardResult:
    """Classifies one shard into ``shard-N.jsonl.gz`` (a gzip member: packaging copies it into
    output.tar.gz as it is) in the staging area, then writes ``shard-N.json`` (its counts), the
    mark that it is done. A shard already marked done is not classified again.

    Runs wherever the task runner puts it: this process, a local process pool, a Dask worker.
    """
    logger = get_run_logger()
    done_uri = shard_uri(staging, shard.index, "json")
    if storage.exists(done_uri):
        result = ShardResult(**json.loads(storage.read_bytes(done_uri)))
        logger.info("shard %d: already classified by an earlier run (%d documents)", shard.index, result.documents)
        return result
    model = _model(classifier)
    stop, started = _StopWatch(flow_run_id), time.monotonic()
    local = docclass_home() / "work" / job_id / f"shard-{shard.index:06d}.{os.getpid()}.jsonl.gz"
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        batches = shard_batches(shard, input_format, storage.open_input, MAX_DOCUMENT_BYTES_PER_FILE)
        with open(local, "wb") as raw, gzip_writer(raw) as out:
            result = classify_shard(model, batches, out, shard.index, explain=explain,
                                    between_batches=lambda _: stop.check())
        result.compressed_bytes = local.stat().st_size
        storage.publish(local, shard_uri(staging, shard.index, "jsonl.gz"))
    finally:
        local.unlink(missing_ok=True)
    storage.publish_bytes(json.dumps(result.as_dict()).encode("utf-8"), done_uri, local.parent)
    logger.info("shard %d: %d documents, %d errors, %.1f s, in process %d on %s", shard.index, result.documents,
                result.errors, time.monotonic() - started, os.getpid(), socket.gethostname())
    return result


class _Concatenated(io.RawIOBase):
    """The shards' compressed predictions, read one after another, each checked against its
    recorded size.

    ``read(n)`` returns n bytes until the end, as tarfile expects of a member's file object.
    """

    def __init__(self, staging: str, results: list[ShardResult]):
        self.staging, self.results = staging, iter(results)
        self.current, self.left, self.uri = None, 0, None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = size if size is not None and size >= 0 else 1 << 62
        parts, wanted = [], size
        while wanted > 0:
            if self.current is None:
                result = next(self.results, None)
                if result is None:
                    break
                self.uri = shard_uri(self.staging, result.index, "jsonl.gz")
                self.current, self.left = storage.open_input(self.uri), result.compressed_bytes
            data = self.current.read(min(wanted, 1 << 22))
            if not data:
                self.current.close()
                self.current = None
                if self.left != 0:
                    raise storage.StorageError(f"{storage.redact(self.uri)}: expected {self.left} more bytes of compressed predictions "
                                               "than the shard holds; the staging area was changed")
                continue
            self.left -= len(data)
            if self.left < 0:
                raise storage.StorageError(f"{storage.redact(self.uri)}: holds more bytes of compressed predictions than recorded; "
                                           "the staging area was changed")
            parts.append(data)
            wanted -= len(data)
        return b"".join(parts)

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()


@task(name="package-job-output", **IO_RETRIES)
def package_job_output(staging: str, results: list[ShardResult], output_uri: str, work_dir: Path) -> str:
    """Copies the shards' compressed predictions, in shard order, into output.tar.gz and publishes it whole."""
    archive = work_dir / "output.tar.gz"
    results = sorted(results, key=lambda r: r.index)
    with _Concatenated(staging, results) as predictions:
        package_gzip_members(PREDICTIONS, sum(r.bytes for r in results), predictions, archive)
    return storage.publish(archive, output_uri)


@task(name="remove-staging", **IO_RETRIES)
def remove_staging(staging: str) -> None:
    """Deletes the job's staging area once its output is published."""
    storage.remove_tree(staging)


def total_counts(results: list[ShardResult], labels: tuple[str, ...] = ()) -> ClassificationCounts:
    class_counts: dict[str, int] = dict.fromkeys(labels, 0)
    for result in results:
        for name, count in result.class_counts.items():
            class_counts[name] = class_counts.get(name, 0) + count
    return ClassificationCounts(sum(r.documents for r in results), sum(r.errors for r in results), class_counts)


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

"""Prefect tasks of the comparison flow. Thin: resolve versions, load one test set, score each
version on it, log the comparison to MLflow, promote, publish the table.

Registry tasks retry transient failures (tasks/retry.py); "no version 9" is an answer, not a
hiccup, so it is not retried. Loading and scoring are deterministic and never retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from classifier_core.comparison import ComparisonError, VersionScore, score_version
from classifier_core.config import DataFormat, Mode, TrainingConfig
from classifier_core.model import load_model
from classifier_core.training_data import TrainingSet
from tasks import registry, storage
from tasks.retry import IO_RETRIES
from tasks.settings import docclass_home
from tasks.training import DataSource, load_source

COMPARISON_ARTIFACT_KEY = "docclass-comparison"


@dataclass(frozen=True)
class ComparedVersion:
    """One version to compare: what it is, where its model is, and what it was tested on."""

    version: str
    version_name: str | None
    mode: str
    label_delimiter: str
    labels: list[str]
    model_dir: str
    test_source: DataSource | None  # the test data it was trained with, if any was given


@dataclass(frozen=True)
class PreparedTestSet:
    """A test set already parsed, as the training flow leaves it: a parquet file and its name."""

    path: str
    description: str


@dataclass(frozen=True)
class TestSet:
    """The shared test set: a parquet file, what to call it (credentials redacted), its size."""

    path: str
    description: str
    number_of_documents: int


@task(name="read-aliases", **IO_RETRIES)
def read_aliases(name: str) -> dict[str, str]:
    """The classifier's aliases, e.g. ``{"champion": "1", "challenger": "2"}``."""
    registry.configure(docclass_home())
    return registry.aliases(name)


@task(name="resolve-versions", **IO_RETRIES)
def resolve_versions(name: str, versions: list[str], work_dir: Path) -> list[ComparedVersion]:
    """Finds the versions (default: champion and challenger) and downloads their models.

    Returns:
        The distinct versions, oldest first.

    Raises:
        RegistryError: if a version does not exist.
        ComparisonError: if fewer than two distinct versions remain, or their modes differ.
    """
    registry.configure(docclass_home())
    references = [f"{name}:{v}" for v in versions] or [f"{name}@{registry.CHAMPION}", f"{name}@{registry.CHALLENGER}"]
    found = {}
    for reference in references:
        version = _resolve(reference, hint="" if versions else "; name the versions to compare with --versions (Versions)")
        found.setdefault(str(version.version), version)  # "2" and its VersionName are one version
    if len(found) < 2:
        raise ComparisonError(
            f"expected at least two distinct versions of {name!r} to compare; found only version "
            f"{next(iter(found))} ({', '.join(references)})"
        )
    compared = [_compared(found[v], work_dir) for v in sorted(found, key=int)]
    _check_one_mode(compared)
    get_run_logger().info("comparing %s versions %s", name, ", ".join(v.version for v in compared))
    return compared


def _resolve(reference: str, hint: str):
    try:
        return registry.resolve(registry.ModelRef.parse(reference))
    except registry.RegistryError as exc:
        raise registry.RegistryError(f"{exc}{hint}") from exc


def _compared(version, work_dir: Path) -> ComparedVersion:
    properties = registry.describe(version)
    model_dir = registry.download_model_dir(version, work_dir / f"v{version.version}")
    model = load_model(model_dir)
    config = properties.get("InputDataConfig", {})
    return ComparedVersion(
        version=str(version.version),
        version_name=properties.get("VersionName"),
        mode=properties.get("Mode", model.mode.value),
        label_delimiter=config.get("LabelDelimiter", "|"),
        labels=list(model.labels_),
        model_dir=str(model_dir),
        test_source=_recorded_test_source(config),
    )


def _recorded_test_source(config: dict) -> DataSource | None:
    if config.get("TestS3Uri"):
        return DataSource(config["TestS3Uri"])
    for manifest in config.get("AugmentedManifests", []):
        if manifest.get("Split") == "TEST":
            return DataSource(manifest["S3Uri"], DataFormat.AUGMENTED_MANIFEST, tuple(manifest["AttributeNames"]))
    return None


def _check_one_mode(versions: list[ComparedVersion]) -> None:
    if len({v.mode for v in versions}) > 1:
        found = ", ".join(f"version {v.version} {v.mode}" for v in versions)
        raise ComparisonError(f"expected versions of one mode to compare; found {found}")


@task(name="load-test-set")
def load_test_set(
    versions: list[ComparedVersion], test_uri: str | None, prepared: PreparedTestSet | None, work_dir: Path
) -> TestSet:
    """The one test set every version is scored on, as a parquet file.

    From, in order: a set the training flow prepared, ``test_uri``, or the test data the
    newest compared version was trained with. Read with the newest version's mode and
    label delimiter.

    Raises:
        ComparisonError: if there is no test data to use, or it holds no document.
        TrainingDataError: if the test data breaks the Comprehend format.
    """
    if prepared is not None:
        test_set, path, description = TrainingSet.from_parquet(prepared.path), prepared.path, prepared.description
    else:
        source = _test_source(versions, test_uri)
        newest = versions[-1]
        test_set, warnings = load_source(source, TrainingConfig(Mode(newest.mode), newest.label_delimiter), test_set=True)
        for issue in warnings:
            get_run_logger().warning(str(issue))
        path, description = str(work_dir / "comparison-test.parquet"), storage.redact(source.uri)
        test_set.to_parquet(path)
    if not len(test_set):
        raise ComparisonError(f"{description}: expected at least one test document; found none")
    _warn_unknown_labels(test_set, versions)
    get_run_logger().info("test set %s: %d documents", description, len(test_set))
    return TestSet(path, description, len(test_set))


def _test_source(versions: list[ComparedVersion], test_uri: str | None) -> DataSource:
    if test_uri:
        return DataSource(test_uri)
    newest = versions[-1]
    if newest.test_source is None:
        raise ComparisonError(
            f"expected test data to compare on; found none: version {newest.version} (the newest compared) was "
            "trained on a holdout, not on a TestS3Uri. Pass --test-data URI (TestS3Uri): a Comprehend CSV "
            "every version is scored on"
        )
    return newest.test_source


def _warn_unknown_labels(test_set: TrainingSet, versions: list[ComparedVersion]) -> None:
    known = {label for version in versions for label in version.labels}
    unknown = sorted(set(test_set.label_set) - known)
    if unknown:
        get_run_logger().warning(
            "test labels no compared version was trained on are left out of every score: %s", ", ".join(unknown)
        )


@task(name="evaluate-version")
def evaluate_version(version: ComparedVersion, test: TestSet, labels: list[str]) -> VersionScore:
    """The 8 Comprehend metrics and per-class metrics of one version on the shared test set."""
    score = score_version(version.version, load_model(version.model_dir), TrainingSet.from_parquet(test.path), labels)
    get_run_logger().info(
        "version %s: %s", version.version, ", ".join(f"{k}={v:.4f}" for k, v in score.metrics.items())
    )
    return score


@task(name="log-comparison", **IO_RETRIES)
def log_comparison(
    name: str, scores: list[VersionScore], test: TestSet, deltas: dict[str, float], rows: list[dict], rule: str, tags: dict[str, str]
) -> str:
    """Logs the comparison run and one evaluation run per version to MLflow; returns the run id."""
    home = docclass_home()
    registry.configure(home)
    params = {
        "classifier_name": name,
        "versions": ",".join(score.version for score in scores),
        "test_data": test.description,
        "number_of_test_documents": str(test.number_of_documents),
        "rule": rule,
    }
    table = {column: [row.get(column) for row in rows] for column in rows[0]}
    return registry.log_comparison(
        name=name, home=home, scores=scores, deltas=deltas, params=params, table=table, tags=tags
    )


@task(name="promote", **IO_RETRIES)
def promote_winner(name: str, winner: str, champion: str | None, reason: str) -> bool:
    """Makes ``winner`` champion, recording when and why; returns whether the alias moved.

    A winner that already is champion only gets the reason it stayed.
    """
    registry.configure(docclass_home())
    moves = winner != champion
    tags = {registry.PROMOTION_REASON_TAG: reason}
    if moves:
        tags[registry.PROMOTED_AT_TAG] = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    registry.promote(name, winner, champion, tags)
    get_run_logger().info("%s version %s %s champion: %s", name, winner, "is now" if moves else "stays", reason)
    return moves


@task(name="publish-comparison-table", **IO_RETRIES)
def publish_comparison_table(name: str, rows: list[dict], summary: str) -> None:
    """The side-by-side metrics as a table artifact on the flow run, for the Prefect UI."""
    create_table_artifact(table=rows, key=COMPARISON_ARTIFACT_KEY, description=f"{name}: {summary}")

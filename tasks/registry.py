"""The model registry: MLflow tracking + model registry. The only module importing mlflow.

A classifier NAME is an MLflow registered model and an experiment of the same name; each
trained version is one run (params, the 8 metrics, confusion_matrix.json, the pyfunc model)
and one model version carrying the Comprehend VersionName and the user's tags. The first
version gets the alias ``champion``, later ones ``challenger``.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import classifier_core
from classifier_core.errors import DocclassError, InvalidNameError
from classifier_core.names import validate_name
from tasks.storage import redact

if TYPE_CHECKING:  # scikit-learn: not needed to resolve or download a version
    from classifier_core.comparison import VersionScore
    from classifier_core.model import TextClassifier
    from classifier_core.scorer import Scorer

CHAMPION = "champion"
CHALLENGER = "challenger"
DESCRIBE_ARTIFACT = "classifier.json"
VERSION_NAME_TAG = "docclass.version_name"
_PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")


class RegistryError(DocclassError):
    """The registry cannot be reached, or has no such classifier or version."""


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME:VERSION`` (VersionName or registry version number) or ``NAME@ALIAS``."""

    name: str
    version: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, default_alias: str | None = CHAMPION) -> ModelRef:
        name, at, alias = text.partition("@")
        name, colon, version = name.partition(":")
        validate_name(name, "classifier name")
        if at and not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", alias):
            raise InvalidNameError(f"expected an alias of letters, digits, '-' or '_'; found {alias!r}")
        if colon and not version:
            raise InvalidNameError(f"expected a version after ':' in {text!r}; found nothing")
        if not at and not colon:
            alias = default_alias
        return cls(name=name, version=version or None, alias=alias or None)

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def default_tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


def configure(home: Path) -> str:
    """Points MLflow at a sqlite store under ``home`` unless MLFLOW_TRACKING_URI is set."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        home.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(default_tracking_uri(home))
    return mlflow.get_tracking_uri()


def _experiment_id(name: str, home: Path) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if mlflow.get_tracking_uri() == default_tracking_uri(home):
        # Without this MLflow puts artifacts in ./mlruns of whatever directory we run from.
        # (Compared by value: set_tracking_uri exports MLFLOW_TRACKING_URI, so the variable
        # cannot tell our default from the user's choice.)
        artifact_location = (home / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "pyarrow", "joblib")
    return [f"{package}=={version(package)}" for package in packages]


def register_classifier(
    *,
    name: str,
    model_dir: Path,
    describe: dict,
    params: dict,
    metrics: dict[str, float],
    artifacts: list[Path],
    tags: dict[str, str],
    home: Path,
) -> ModelVersion:
    """Logs one run and registers one model version; sets its alias; returns the version.

    ``describe`` (the DescribeDocumentClassifier shape) is stored as the run's
    classifier.json artifact, with ``ModelVersion`` added, so describe reads it back whole.
    """
    client = MlflowClient()
    version_name = describe.get("VersionName")
    experiment_id = _experiment_id(name, home)
    job_id = describe.get("TrainingJobId", "")
    done = _earlier_attempt(client, name, experiment_id, job_id)
    if done is not None:  # a retry after the registration completed but its answer was lost
        return done
    ensure_version_name_free(name, version_name)
    with mlflow.start_run(experiment_id=experiment_id, run_name=version_name or None):
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        mlflow.set_tags({**tags, JOB_TAG: job_id})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(_PYFUNC_FILE),
            artifacts={"model_dir": str(model_dir)},
            code_paths=[str(Path(classifier_core.__file__).parent)],
            pip_requirements=_pip_requirements(),
            registered_model_name=name,
        )
        version = client.get_model_version(name, str(info.registered_model_version))
        for key, value in {**tags, **({VERSION_NAME_TAG: version_name} if version_name else {})}.items():
            client.set_model_version_tag(name, version.version, key, value)
        alias = CHALLENGER if _alias_version(client, name, CHAMPION) else CHAMPION
        client.set_registered_model_alias(name, alias, version.version)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / DESCRIBE_ARTIFACT
            path.write_text(json.dumps({**describe, "ModelVersion": str(version.version)}, indent=2), encoding="utf-8")
            mlflow.log_artifact(str(path))
        mlflow.set_tag(DONE_TAG, str(version.version))
    return client.get_model_version(name, version.version)


JOB_TAG, DONE_TAG = "docclass.training_job_id", "docclass.model_version"


def _earlier_attempt(client: MlflowClient, name: str, experiment_id: str, job_id: str) -> ModelVersion | None:
    """Makes registering a training job idempotent, for the task's retries.

    An earlier attempt that finished (its run carries DONE_TAG) is returned as is. One that
    failed half way (the registry became unreachable, the process died) may have left a run and
    even a model version without its tags, alias or describe file: that version is deleted and
    the run marked FAILED, so a retry registers exactly one complete version.
    """
    if not job_id:
        return None
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{job_id}'")
    for run in runs:
        if run.data.tags.get(DONE_TAG):
            return client.get_model_version(name, run.data.tags[DONE_TAG])
    for run in runs:
        for version in client.search_model_versions(f"name='{name}' and run_id='{run.info.run_id}'"):
            client.delete_model_version(name, version.version)
        if run.info.status != "FAILED":
            client.set_terminated(run.info.run_id, status="FAILED")
    return None


def ensure_version_name_free(name: str, version_name: str | None) -> None:
    """Comprehend refuses a second version of the same name; so do we, before training.

    Raises:
        RegistryError: if the classifier already has a version called ``version_name``.
    """
    if version_name and _find_version_by_name(MlflowClient(), name, version_name):
        raise RegistryError(
            f"classifier {name!r} already has a version named {version_name!r}; choose another --version-name"
        )


def _alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _find_version_by_name(client: MlflowClient, name: str, version_name: str) -> ModelVersion | None:
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    return next((v for v in versions if v.tags.get(VERSION_NAME_TAG) == version_name), None)


def resolve(ref: ModelRef) -> ModelVersion:
    """The model version a reference points at.

    Raises:
        RegistryError: if there is no such classifier, version or alias.
    """
    client = MlflowClient()
    try:
        model = client.get_registered_model(ref.name)
    except MlflowException as exc:
        raise RegistryError(
            f"classifier {ref.name!r} not found in the registry ({mlflow.get_tracking_uri()}); "
            "`docclass classifiers list` shows the registered ones"
        ) from exc
    if ref.alias:
        version = _alias_version(client, ref.name, ref.alias)
        if version is None:
            held = ", ".join(f"{alias} (version {number})" for alias, number in sorted(model.aliases.items()))
            raise RegistryError(
                f"classifier {ref.name!r} has no version with alias {ref.alias!r}; its aliases: {held or 'none'}"
            )
        return version
    version = _find_version_by_name(client, ref.name, ref.version)
    if version is None and ref.version.isdigit():
        try:
            version = client.get_model_version(ref.name, ref.version)
        except MlflowException:
            version = None
    if version is None:
        raise RegistryError(f"classifier {ref.name!r} has no version {ref.version!r}; {_known_versions(client, ref.name)}")
    return version


def _known_versions(client: MlflowClient, name: str) -> str:
    """``its versions: 1 (v1), 2`` (registry numbers, with VersionNames), for messages."""
    try:
        versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    except MlflowException:
        return "its versions could not be listed"
    shown = [f"{v.version} ({v.tags[VERSION_NAME_TAG]})" if v.tags.get(VERSION_NAME_TAG) else str(v.version) for v in versions]
    return f"its versions: {', '.join(shown) or 'none'}"


def download_model_dir(version: ModelVersion, destination: Path) -> Path:
    """Downloads a registered version and returns the core model directory inside it.

    Raises:
        RegistryError: if the download holds no docclass model.
    """
    destination.mkdir(parents=True, exist_ok=True)
    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{version.name}/{version.version}", dst_path=str(destination)))
    found = sorted((root / "artifacts").glob("*/metadata.json"))
    if not found:
        raise RegistryError(f"{version.name} version {version.version}: expected a docclass model in the registry; found none")
    return found[0].parent


def load_scorer(version: ModelVersion) -> TextClassifier | Scorer:
    """Loads what classifying a registered version needs (classifier_core.scorer: no scikit-learn)."""
    from classifier_core.scorer import load_scorer as load

    with tempfile.TemporaryDirectory(prefix="docclass-") as tmp:
        return load(download_model_dir(version, Path(tmp)))


def describe(version: ModelVersion) -> dict:
    """The DescribeDocumentClassifier shape of a registered version."""
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(version.run_id, DESCRIBE_ARTIFACT, tmp)
        properties = json.loads(Path(path).read_text(encoding="utf-8"))
    aliases = sorted(client.get_model_version(version.name, version.version).aliases)
    return {**properties, "ModelVersion": str(version.version), "Aliases": aliases}


def list_classifiers() -> list[dict]:
    """Every version of every docclass classifier, newest first within a name."""
    client = MlflowClient()
    described = []
    for model in client.search_registered_models(order_by=["name ASC"]):
        versions = client.search_model_versions(f"name = '{model.name}'")
        for version in sorted(versions, key=lambda v: -int(v.version)):
            if version.run_id:
                described.append(describe(version))
    return described


KIND_TAG = "docclass.kind"
PROMOTED_AT_TAG = "docclass.promoted_at"
PROMOTION_REASON_TAG = "docclass.promotion_reason"
COMPARISON_ARTIFACT = "comparison.json"
_PER_CLASS_ARTIFACT = "per_class_metrics.json"  # the name training runs use, to line up


def aliases(name: str) -> dict[str, str]:
    """The classifier's aliases and the version each points at, e.g. ``{"champion": "2"}``.

    Raises:
        RegistryError: if there is no such classifier.
    """
    try:
        model = MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(f"classifier {name!r} not found in the registry ({mlflow.get_tracking_uri()})") from exc
    return {alias: str(version) for alias, version in model.aliases.items()}


def metric_keys(prefix: str, labels: Sequence[str], suffix: str) -> dict[str, str]:
    """A valid, distinct MLflow metric name ``prefix.<label>.suffix`` for each label.

    MLflow accepts letters, digits and ``_-./`` and space, and no path that normalizes to
    something else (``a//b``); anything else in a class name becomes ``_``.
    """
    keys: dict[str, str] = {}
    for label in labels:
        safe = re.sub(r"[^\w\-. /]", "_", label)[:200]  # MLflow names end at 250 characters
        if posixpath.normpath(f"{prefix}.{safe}.{suffix}") != f"{prefix}.{safe}.{suffix}":
            safe = safe.replace("/", "_")
        unique, n = safe, 2
        while f"{prefix}.{unique}.{suffix}" in keys.values():  # "a+b" and "a_b" must not share a name
            unique, n = f"{safe}_{n}", n + 1
        keys[label] = f"{prefix}.{unique}.{suffix}"
    return keys


def log_comparison(
    *,
    name: str,
    home: Path,
    scores: Sequence[VersionScore],
    deltas: dict[str, float],
    params: dict[str, str],
    table: dict[str, list],
    tags: dict[str, str],
) -> str:
    """Logs a comparison run with one nested evaluation run per version; returns its run id.

    The parent holds the metrics side by side (``v<N>.<Metric>``), the per-class F1Score
    deltas (``delta.<class>.F1Score``) and the ``comparison.json`` table. Each child holds
    the same metric names and ``per_class_metrics.json`` as a training run, so MLflow's
    compare view lines children and training runs up.

    Args:
        name: The classifier (its experiment receives the runs).
        home: DOCCLASS_HOME, for the default artifact location.
        scores: Every version's scores, in the order to show them.
        deltas: Per-class F1Score of the candidate minus the baseline.
        params: classifier_name, versions, test_data (redacted), number_of_test_documents, rule.
        table: Columns of the comparison table.
        tags: Extra tags of the parent run, e.g. the winner.
    """
    experiment_id = _experiment_id(name, home)
    run_name = "compare " + " vs ".join(f"v{score.version}" for score in scores)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as parent:
        mlflow.set_tags({**tags, KIND_TAG: "comparison"})
        mlflow.log_params(params)
        mlflow.log_metrics({f"v{s.version}.{metric}": value for s in scores for metric, value in s.metrics.items()})
        keys = metric_keys("delta", list(deltas), "F1Score")
        mlflow.log_metrics({keys[label]: delta for label, delta in deltas.items()})
        mlflow.log_table(table, COMPARISON_ARTIFACT)
        for score in scores:
            _log_evaluation(experiment_id, name, score, params, parent.info.run_id)
    return parent.info.run_id


def _log_evaluation(experiment_id: str, name: str, score: VersionScore, params: dict[str, str], parent_id: str) -> None:
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate v{score.version}", nested=True):
        mlflow.set_tags({KIND_TAG: "evaluation", "docclass.model_version": score.version, "docclass.comparison_run_id": parent_id})
        mlflow.log_params({
            "classifier_name": name,
            "classifier_version": score.version,
            "test_data": params["test_data"],
            "number_of_test_documents": params["number_of_test_documents"],
        })
        mlflow.log_metrics(score.metrics)
        mlflow.log_dict(score.per_class, _PER_CLASS_ARTIFACT)


def promote(name: str, version: str, previous_champion: str | None, tags: dict[str, str]) -> None:
    """Tags ``version``, then points ``champion`` at it and ``challenger`` at the previous champion.

    Tags go first and the champion alias last: the alias is what classification and serving
    follow, so it moves only once the record of why is in place, and a failure on the way
    leaves the old champion in charge. Safe to repeat.

    Args:
        name: The classifier.
        version: The winner.
        previous_champion: The version holding ``champion`` before, if any; when it is
            ``version`` itself only the tags are set.
        tags: e.g. docclass.promoted_at and docclass.promotion_reason.
    """
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if previous_champion == version:
        return
    client.set_registered_model_alias(name, CHAMPION, version)
    if previous_champion is not None:
        client.set_registered_model_alias(name, CHALLENGER, previous_champion)
    elif aliases(name).get(CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)


def check_reachable() -> None:
    """Asks the tracking server (or opens the store) once, so that an unreachable registry fails
    a job or a training before any work, with a message saying where docclass looked.

    Raises:
        RegistryError: the registry cannot be reached; chained to a ConnectionError, so the
            caller's retries (tasks.retry) try again later.
    """
    try:
        MlflowClient().search_registered_models(max_results=1)
    except MlflowException as exc:
        uri = redact(mlflow.get_tracking_uri())
        reason = _unreachable_reason(str(exc))
        raise RegistryError(
            f"cannot reach the MLflow registry at {uri}: {reason}; check that it is running and that "
            "MLFLOW_TRACKING_URI names it"
        ) from ConnectionError(reason)


_REASONS = (("Connection refused", "connection refused"), ("Name or service not known", "host not found"),
            ("nodename nor servname", "host not found"), ("timed out", "timed out"),
            ("unable to open database file", "cannot open the database file"))


def _unreachable_reason(message: str) -> str:
    for needle, reason in _REASONS:
        if needle in message:
            return reason
    return redact(message.splitlines()[0] if message else "")[:200]

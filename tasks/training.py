"""Prefect tasks of the training flow. Thin: resolve inputs, call the core, write outputs.

Tasks hand each other paths and small dataclasses: the parsed data goes through parquet files
in the job's work directory, the model through its saved directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from classifier_core.config import DataFormat, Mode, TrainingConfig
from classifier_core.errors import Issue, TrainingDataError
from classifier_core.holdout import holdout_split
from classifier_core.metrics import (
    confusion_matrix_json,
    evaluation_metrics,
    indicator_matrix,
    per_class_metrics,
    score_metrics,
)
from classifier_core.model import TextClassifier, load_model
from classifier_core.predictions import package_tar_gz
from classifier_core.training_data import TrainingSet, check_test_set, load_training_data
from tasks import registry, storage
from tasks.retry import IO_RETRIES
from tasks.settings import docclass_home

CONFUSION_MATRIX = "confusion_matrix.json"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
MODEL_SEARCH = "model_search.json"
METRICS_ARTIFACT_KEY = "docclass-metrics"
CONFUSION_ARTIFACT_KEY = "docclass-confusion-matrix"
PER_CLASS_METRICS = "per_class_metrics.json"
EVALUATION_BATCH = 10_000  # test documents vectorised at once: memory stays flat however many there are


@dataclass(frozen=True)
class DataSource:
    """One training or test input: a URI (file or prefix) and how to read it."""

    uri: str
    data_format: DataFormat = DataFormat.COMPREHEND_CSV
    attribute_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedData:
    train_path: str
    test_path: str
    labels: list[str]
    number_of_trained_documents: int
    number_of_test_documents: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    confusion_matrix_path: str
    per_class_path: str
    confusion_png_path: str
    score_metrics: dict[str, float] = field(default_factory=dict)


def _sources(uri: str) -> Iterator[tuple[str, BinaryIO]]:
    uris = storage.list_objects(uri)
    if not uris:
        raise TrainingDataError([Issue(storage.redact(uri), None, "expected at least one file at this URI or prefix; found none")])
    for object_uri in uris:
        with storage.open_input(object_uri) as fp:
            yield storage.base_name(object_uri), fp


def load_source(source: DataSource, config: TrainingConfig, test_set: bool = False) -> tuple[TrainingSet, list[Issue]]:
    return load_training_data(
        _sources(source.uri), config, source.data_format, source.attribute_names, test_set=test_set
    )


@task(name="validate-training-data")
def validate_training_data(
    train: DataSource, test: DataSource | None, config: TrainingConfig, work_dir: Path
) -> PreparedData:
    """Parses and validates the training (and test) data; splits off a holdout if no test set.

    Raises:
        TrainingDataError: with every problem found, each naming file, line, expected, found.
    """
    logger = get_run_logger()
    training_set, warnings = load_source(train, config)
    if test is not None:
        test_set, test_warnings = load_source(test, config, test_set=True)
        warnings += test_warnings + check_test_set(training_set, test_set, storage.base_name(test.uri), config)
    else:
        train_idx, test_idx = holdout_split(training_set.labels)
        training_set, test_set = training_set.subset(train_idx), training_set.subset(test_idx)
    for issue in warnings:
        logger.warning(str(issue))
    train_path, test_path = work_dir / "train.parquet", work_dir / "test.parquet"
    training_set.to_parquet(train_path)
    test_set.to_parquet(test_path)
    pa.default_memory_pool().release_unused()
    logger.info("validated: %d training and %d test documents, %d labels", len(training_set), len(test_set), len(training_set.label_set))
    return PreparedData(
        train_path=str(train_path),
        test_path=str(test_path),
        labels=training_set.label_set,
        number_of_trained_documents=len(training_set),
        number_of_test_documents=len(test_set),
        warnings=[str(issue) for issue in warnings],
    )


@dataclass(frozen=True)
class TrainedModel:
    model_dir: str
    params: dict[str, str]
    search_path: str


@task(name="train")
def train_classifier(train_path: str, mode: Mode, work_dir: Path, fast: bool = False,
                     search_budget: float | None = None) -> TrainedModel:
    """Chooses a configuration on a validation split of the training data (unless ``fast``),
    within ``search_budget`` seconds if given (else TextClassifier's default), calibrates
    it, fits it on all the training data and saves it."""
    training_set = read_parquet(train_path)
    budget = {} if search_budget is None else {"time_budget": search_budget}
    model = TextClassifier(mode=mode, search=not fast, **budget).fit(training_set.texts, training_set.labels)
    logger = get_run_logger()
    for row in model.search_:
        logger.info("model search: %s", row)
    logger.info("chose %s in %.1f s", model.config_.describe(), model.fit_seconds_)
    search_path = work_dir / MODEL_SEARCH
    search = {"chosen": model.config_.as_params(), "budget_seconds": model.search_budget_, "candidates": model.search_}
    search_path.write_text(json.dumps(search, indent=2), encoding="utf-8")
    params = {f"model_{key}": str(value) for key, value in model.config_.as_params().items()}
    params.update(model_search="off" if fast else f"{len(model.search_)} candidates",
                  model_temperature=f"{model.temperature_:.4f}", model_label_scale=f"{model.label_scale_:.4f}")
    if model.search_budget_ is not None:  # None with --fast (nothing to budget) and out of core
        params["model_search_budget_s"] = str(model.search_budget_)
    return TrainedModel(str(model.save(work_dir / "model")), params, str(search_path))


@task(name="evaluate")
def evaluate_classifier(model_dir: str, test_path: str, work_dir: Path) -> Evaluation:
    """The 8 Comprehend metrics, per-class metrics and the confusion matrix on the test split."""
    model = load_model(model_dir)
    test_set = read_parquet(test_path)
    y_true = indicator_matrix(test_set.labels, model.labels_)
    scores = predict_in_batches(model, test_set.texts)
    y_pred = model.decide(scores)
    metrics = evaluation_metrics(y_true, y_pred, model.mode)
    quality = score_metrics(y_true, scores, model.mode)
    confusion_path = work_dir / CONFUSION_MATRIX
    confusion_path.write_text(json.dumps(confusion_matrix_json(y_true, y_pred, model.labels_, model.mode)), encoding="utf-8")
    per_class_path = work_dir / PER_CLASS_METRICS
    per_class_path.write_text(json.dumps(per_class_metrics(y_true, y_pred, model.labels_), indent=2), encoding="utf-8")
    png_path = plot_confusion_matrix(json.loads(confusion_path.read_text(encoding="utf-8")), work_dir / CONFUSION_MATRIX_PNG)
    get_run_logger().info("evaluation: %s", ", ".join(f"{k}={v:.4f}" for k, v in {**metrics, **quality}.items()))
    return Evaluation(metrics, str(confusion_path), str(per_class_path), str(png_path), quality)


def read_parquet(path: str) -> TrainingSet:
    """``TrainingSet.from_parquet``, then hands the Arrow buffers it freed back to the system
    (at 1M documents pyarrow's allocator otherwise keeps ~600 MB of them for the rest of the task)."""
    data = TrainingSet.from_parquet(path)
    pa.default_memory_pool().release_unused()
    return data


def predict_in_batches(model: TextClassifier, texts: Sequence[str]) -> np.ndarray:
    """``model.predict_scores(texts)``, EVALUATION_BATCH documents at a time (a document's scores do not
    depend on its batch)."""
    if len(texts) <= EVALUATION_BATCH:
        return model.predict_scores(texts)
    batches = range(0, len(texts), EVALUATION_BATCH)
    return np.vstack([model.predict_scores(texts[i:i + EVALUATION_BATCH]) for i in batches])


def plot_confusion_matrix(confusion: dict, path: Path) -> Path:
    """A PNG heatmap: actual x predicted (multi-class), or FP/FN/TP per label (multi-label)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
    import numpy as np

    labels = confusion["labels"]
    if confusion["type"] == "multi_class":
        matrix, columns, xlabel = np.array(confusion["confusion_matrix"]), labels, "predicted"
    else:
        matrix = np.array([[m[0][1], m[1][0], m[1][1]] for m in confusion["confusion_matrix"]])
        columns, xlabel = ["FP", "FN", "TP"], "count per label"
    side = min(4 + 0.25 * len(labels), 40)
    fig, ax = plt.subplots(figsize=(max(5.0, min(4 + 0.25 * len(columns), 40)), side))
    ax.imshow(matrix, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("actual" if confusion["type"] == "multi_class" else "label")
    if matrix.size <= 400:  # numbers stay legible up to 20 x 20
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@task(name="publish-evaluation", **IO_RETRIES)
def publish_evaluation(evaluation: Evaluation) -> None:
    """Prefect table artifacts: the 8 metrics with per-class scores, and the confusion matrix."""
    per_class = json.loads(Path(evaluation.per_class_path).read_text(encoding="utf-8"))
    rows = [{"Metric": name, "Value": round(value, 6)} for name, value in {**evaluation.metrics, **evaluation.score_metrics}.items()]
    rows += [{"Metric": f"{label} {name}", "Value": round(value, 6) if isinstance(value, float) else value}
             for label, scores in per_class.items() for name, value in scores.items()]
    create_table_artifact(table=rows, key=METRICS_ARTIFACT_KEY, description="Evaluation metrics (Comprehend's 8, then per class)")
    confusion = json.loads(Path(evaluation.confusion_matrix_path).read_text(encoding="utf-8"))
    if confusion["type"] == "multi_class":
        table = [{"actual": label, **dict(zip(confusion["labels"], row))}
                 for label, row in zip(confusion["labels"], confusion["confusion_matrix"])]
    else:
        table = [{"label": label, "TN": m[0][0], "FP": m[0][1], "FN": m[1][0], "TP": m[1][1]}
                 for label, m in zip(confusion["labels"], confusion["confusion_matrix"])]
    create_table_artifact(table=table, key=CONFUSION_ARTIFACT_KEY, description="Confusion matrix on the test data (rows: actual)")


@task(name="check-registry", **IO_RETRIES)
def check_registry(name: str, version_name: str | None) -> None:
    """Fails early, before any training, if the registry is unreachable or the version name is taken."""
    registry.configure(docclass_home())
    registry.check_reachable()
    registry.ensure_version_name_free(name, version_name)


@task(name="register", **IO_RETRIES)
def register_classifier(
    describe: dict, trained: TrainedModel, evaluation: Evaluation, params: dict, tags: dict[str, str]
) -> str:
    """Logs the run (params, the 8 metrics and the score metrics, the confusion matrix, the
    model search) and registers the model version in MLflow; returns the version number."""
    home = docclass_home()
    registry.configure(home)
    metrics = {**evaluation.metrics, **{k: v for k, v in evaluation.score_metrics.items() if v == v}}  # MLflow refuses NaN
    artifacts = [evaluation.confusion_matrix_path, evaluation.per_class_path, evaluation.confusion_png_path, trained.search_path]
    version = registry.register_classifier(
        name=describe["DocumentClassifierName"],
        model_dir=Path(trained.model_dir),
        describe=describe,
        params={**params, **trained.params},
        metrics=metrics,
        artifacts=[Path(path) for path in artifacts],
        tags=tags,
        home=home,
    )
    get_run_logger().info("registered %s version %s (aliases: %s)", version.name, version.version, ", ".join(version.aliases))
    return str(version.version)


@task(name="package-training-output", **IO_RETRIES)
def package_training_output(confusion_matrix_path: str, output_uri: str, work_dir: Path) -> str:
    """Writes output.tar.gz with confusion_matrix.json and publishes it whole to ``output_uri``."""
    archive = work_dir / "output.tar.gz"
    package_tar_gz([(CONFUSION_MATRIX, confusion_matrix_path)], archive)
    return storage.publish(archive, output_uri)

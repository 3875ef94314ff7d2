"""The training flow: validate -> train -> evaluate -> register -> package training output."""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Failed

from classifier_core.config import ClassifierStatus, DataFormat, TrainingConfig
from classifier_core.errors import DocclassError
from flows.compare import auto_promote
from flows.request_models import CreateDocumentClassifierRequest
from tasks import storage
from tasks.settings import default_output_uri, work_dir
from tasks.training import (
    DataSource,
    check_registry,
    evaluate_classifier,
    package_training_output,
    publish_evaluation,
    register_classifier,
    train_classifier,
    validate_training_data,
)


@flow(name="create_document_classifier", log_prints=False)
def create_document_classifier(request: CreateDocumentClassifierRequest) -> dict:
    """Trains, evaluates and registers a version of a document classifier.

    Returns the DescribeDocumentClassifier shape. A classifier that cannot be trained ends
    the flow run Failed, its message naming every problem found (status IN_ERROR).
    """
    job_id = uuid.UUID(str(flow_run.id)).hex if flow_run.id else uuid.uuid4().hex
    describe = initial_properties(request, job_id)
    work = work_dir(job_id)
    try:
        check_registry(request.DocumentClassifierName, request.VersionName)
        train, test = data_sources(request)
        config = TrainingConfig(request.Mode, request.InputDataConfig.LabelDelimiter, request.Strict)
        data = validate_training_data(train, test, config, work)
        describe["TrainingStartTime"] = now_iso()
        trained = train_classifier(data.train_path, request.Mode, work, request.Fast, request.SearchBudgetSeconds)
        describe["TrainingEndTime"] = now_iso()
        evaluation = evaluate_classifier(trained.model_dir, data.test_path, work)
        publish_evaluation(evaluation)
        describe.update(finished_properties(data, evaluation.metrics))
        describe["ClassifierMetadata"]["ScoreMetrics"] = {k: round(v, 6) if v == v else None for k, v in evaluation.score_metrics.items()}
        params = training_params(request, data)
        describe["ModelVersion"] = register_classifier(describe, trained, evaluation, params, request.tag_dict())
        package_training_output(evaluation.confusion_matrix_path, describe["OutputDataConfig"]["S3Uri"], work)
        if request.AutoPromote:  # last: only a training that fully succeeded may take over
            describe["Promotion"] = auto_promote(describe, data.test_path)
    except DocclassError as exc:
        return Failed(message=str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return describe


def data_sources(request: CreateDocumentClassifierRequest) -> tuple[DataSource, DataSource | None]:
    """The training source and the optional test source, from either data format."""
    config = request.InputDataConfig
    if config.DataFormat is DataFormat.COMPREHEND_CSV:
        if not config.S3Uri:
            raise DocclassError("expected InputDataConfig.S3Uri (--training-data) for COMPREHEND_CSV; found none")
        test = DataSource(config.TestS3Uri) if config.TestS3Uri else None
        return DataSource(config.S3Uri), test
    by_split = {m.Split: DataSource(m.S3Uri, DataFormat.AUGMENTED_MANIFEST, tuple(m.AttributeNames)) for m in config.AugmentedManifests}
    if "TRAIN" not in by_split:
        raise DocclassError("expected an augmented manifest with Split TRAIN (--training-data); found none")
    return by_split["TRAIN"], by_split.get("TEST")


def initial_properties(request: CreateDocumentClassifierRequest, job_id: str) -> dict:
    """DocumentClassifierProperties as known at submission, with credentials redacted."""
    config = request.InputDataConfig
    input_config: dict = {"DataFormat": config.DataFormat.value}
    if config.S3Uri:
        input_config["S3Uri"] = storage.redact(config.S3Uri)
    if config.TestS3Uri:
        input_config["TestS3Uri"] = storage.redact(config.TestS3Uri)
    if request.Mode.value == "MULTI_LABEL":
        input_config["LabelDelimiter"] = config.LabelDelimiter
    if config.AugmentedManifests:
        input_config["AugmentedManifests"] = [
            {**m.model_dump(), "S3Uri": storage.redact(m.S3Uri)} for m in config.AugmentedManifests
        ]
    output_base = request.OutputDataConfig.S3Uri or default_output_uri()
    return {
        "DocumentClassifierName": request.DocumentClassifierName,
        **({"VersionName": request.VersionName} if request.VersionName else {}),
        "Status": ClassifierStatus.TRAINING.value,
        "Mode": request.Mode.value,
        "SubmitTime": now_iso(),
        "InputDataConfig": input_config,
        "OutputDataConfig": {"S3Uri": storage.redact(storage.join(output_base, job_id, "output", "output.tar.gz"))},
        "TrainingJobId": job_id,
    }


def finished_properties(data, metrics: dict[str, float]) -> dict:
    status = ClassifierStatus.TRAINED_WITH_WARNING if data.warnings else ClassifierStatus.TRAINED
    properties = {
        "Status": status.value,
        "EndTime": now_iso(),
        "ClassifierMetadata": {
            "NumberOfLabels": len(data.labels),
            "NumberOfTrainedDocuments": data.number_of_trained_documents,
            "NumberOfTestDocuments": data.number_of_test_documents,
            "EvaluationMetrics": {name: round(value, 6) for name, value in metrics.items()},
        },
    }
    if data.warnings:
        properties["Message"] = "\n".join(data.warnings)
    return properties


def training_params(request: CreateDocumentClassifierRequest, data) -> dict:
    """What MLflow records as the run's params (the same names for every run, to compare)."""
    return {
        "mode": request.Mode.value,
        "data_format": request.InputDataConfig.DataFormat.value,
        "label_delimiter": request.InputDataConfig.LabelDelimiter,
        "strict": request.Strict,
        "number_of_labels": len(data.labels),
        "number_of_trained_documents": data.number_of_trained_documents,
        "number_of_test_documents": data.number_of_test_documents,
        "test_data": "provided" if request.InputDataConfig.TestS3Uri else "holdout",
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

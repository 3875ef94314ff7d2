"""The classification job flow: resolve model -> list inputs -> classify -> package output."""

from __future__ import annotations

import shutil
import uuid

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Cancelled, Failed

from classifier_core.errors import DocclassError
from flows.request_models import StartDocumentClassificationJobRequest
from tasks import storage
from tasks.classification import (
    JobStopped,
    classify_inputs,
    ledger_uri,
    list_inputs,
    package_job_output,
    publish_job_summary,
    record_classified_inputs,
    resolve_classifier,
    skip_classified_inputs,
)
from tasks.settings import work_dir


def output_archive_uri(request: StartDocumentClassificationJobRequest, job_id: str) -> str:
    return storage.join(request.OutputDataConfig.S3Uri, job_id, "output", "output.tar.gz")


@flow(name="start_document_classification_job", log_prints=False)
def start_document_classification_job(request: StartDocumentClassificationJobRequest) -> dict:
    """Classifies every document under the input URI with a registered classifier.

    Writes ``<output>/<JobId>/output/output.tar.gz`` holding predictions.jsonl, one record per
    input document in input order, and publishes it only once complete. JobId is the flow
    run id. A job that cannot run ends Failed with the reason; a stopped job ends Cancelled.

    With ``OnlyNewDocuments`` (scheduled jobs over an "incoming" prefix) the job skips objects
    that earlier such jobs with the same input and output locations classified, and an empty
    or fully classified prefix completes with no documents instead of failing.
    """
    job_id = uuid.UUID(str(flow_run.id)).hex if flow_run.id else uuid.uuid4().hex
    output_uri = output_archive_uri(request, job_id)
    work = work_dir(job_id)
    try:
        classifier = resolve_classifier(request.DocumentClassifier, work)
        inputs = list_inputs(request.InputDataConfig.S3Uri, allow_empty=request.OnlyNewDocuments)
        if request.OnlyNewDocuments:
            ledger = ledger_uri(request.InputDataConfig.S3Uri, request.OutputDataConfig.S3Uri)
            inputs = skip_classified_inputs(inputs, ledger)
        counts = classify_inputs(classifier.model_dir, inputs, request.InputDataConfig.InputFormat, work, flow_run.id,
                                 explain=request.Explain, workers=request.Workers)
        package_job_output(counts.predictions_path, output_uri, work)
        if request.OnlyNewDocuments:
            record_classified_inputs(inputs, ledger, job_id, work)
        return publish_job_summary(classifier, counts, output_uri, len(inputs))
    except JobStopped as exc:
        return Cancelled(message=str(exc))
    except DocclassError as exc:
        return Failed(message=str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)

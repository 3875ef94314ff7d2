"""``make demo``: generate support tickets, train a classifier on them, show the result.

Runs with the embedded defaults: local files, Prefect's temporary local server (unless
PREFECT_API_URL is set), MLflow on sqlite under $DOCCLASS_HOME.
"""

from __future__ import annotations

import sys

from flows.demo_data import write_demo_data
from tasks.settings import apply_environment_defaults, docclass_home


def main() -> int:
    apply_environment_defaults()
    home = docclass_home()
    paths = write_demo_data(home / "demo")
    print(f"Generated support tickets under {home / 'demo'}", file=sys.stderr)
    from flows.cli import build_parser, training_request
    from flows.training import create_document_classifier

    args = build_parser().parse_args([
        "train", "--name", "support-tickets", "--mode", "MULTI_CLASS",
        "--training-data", str(paths["multi_class_train"]), "--test-data", str(paths["multi_class_test"]),
        "--tag", "source=demo",
    ])
    state = create_document_classifier(training_request(args), return_state=True)
    if not state.is_completed():
        print(f"demo: training failed: {state.message}", file=sys.stderr)
        return 1
    show(state.result())
    return classify_incoming(paths["incoming"], home / "demo" / "results")


def classify_incoming(incoming, output) -> int:
    """Runs a classification job over the generated incoming tickets and shows a few records."""
    import json
    import tarfile

    from flows.classification import start_document_classification_job
    from flows.cli import build_parser, classification_request, job_id_of
    from flows.jobs import describe_job

    args = build_parser().parse_args([
        "classify", "--classifier", "support-tickets", "--input-uri", str(incoming),
        "--output-uri", str(output), "--job-name", "demo-incoming",
    ])
    state = start_document_classification_job(classification_request(args), return_state=True)
    job = describe_job(job_id_of(state))
    print(f"Classification job {job['JobId']}: {job['JobStatus']}, {job.get('NumberOfDocuments', 0)} tickets, "
          f"{job.get('NumberOfDocumentErrors', 0)} errors")
    if job["JobStatus"] != "COMPLETED":
        print(f"  {job.get('Message', '')}")
        return 1
    archive = job["OutputDataConfig"]["S3Uri"]
    print(f"  output: {archive}")
    with tarfile.open(archive, "r:gz") as tar:
        lines = tar.extractfile("predictions.jsonl").read().decode("utf-8").splitlines()
    texts = incoming.read_text(encoding="utf-8").splitlines()
    for line in lines[:3]:
        record = json.loads(line)
        top = record["Classes"][0]
        print(f"  line {record['Line']}: {top['Name']} ({top['Score']:.2f})  {texts[int(record['Line'])][:70]}")
    print()
    print("Next:")
    print("  .venv/bin/docclass classifiers describe support-tickets")
    print(f"  .venv/bin/docclass jobs describe {job['JobId']}")
    print(f"  .venv/bin/docclass classify --classifier support-tickets --input-uri {incoming} --output-uri {output}")
    print("  .venv/bin/docclass --help")
    return 0


def show(describe: dict) -> None:
    meta = describe["ClassifierMetadata"]
    print()
    print(f"Classifier {describe['DocumentClassifierName']} version {describe['ModelVersion']}: {describe['Status']}")
    print(f"  trained on {meta['NumberOfTrainedDocuments']} tickets, tested on {meta['NumberOfTestDocuments']}, "
          f"{meta['NumberOfLabels']} classes")
    for name, value in meta["EvaluationMetrics"].items():
        print(f"  {name:<15} {value:.4f}")
    print(f"  training output: {describe['OutputDataConfig']['S3Uri']}")
    print()


if __name__ == "__main__":
    sys.exit(main())

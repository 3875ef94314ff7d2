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
    print("Next:")
    print("  .venv/bin/docclass classifiers describe support-tickets")
    print("  .venv/bin/docclass classifiers list")
    print("  .venv/bin/docclass train --help")


if __name__ == "__main__":
    sys.exit(main())

"""The ``docclass`` command line. Results go to stdout as JSON, progress and errors to stderr.

Exit codes: 0 success, 1 the work failed (e.g. a classifier ended IN_ERROR), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tasks.process import exit_without_teardown, without_heartbeats
from tasks.settings import apply_environment_defaults

EPILOG = """\
State lives under $DOCCLASS_HOME (default ~/.docclass): the MLflow store (mlflow.db,
mlartifacts/) unless MLFLOW_TRACKING_URI is set, and job outputs (output/). Prefect runs
flows on a temporary local server unless PREFECT_API_URL is set. s3:// URIs use the
standard AWS variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...).
"""


def run() -> NoReturn:
    """The ``docclass`` console script: ``main()``, then exit with its code without tearing the
    interpreter down (tasks.process.exit_without_teardown)."""
    code = 1
    exit_without_teardown(lambda: code)
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise
    except KeyboardInterrupt:
        code = 130
        raise
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_environment_defaults()
    _quiet_expected_tracebacks()
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("docclass: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - translated once, here, into a message and exit 1
        from classifier_core.errors import DocclassError, InvalidNameError

        if not isinstance(exc, DocclassError):
            raise
        print(f"docclass: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidNameError) else 1  # an invalid name is bad usage


class _NoTracebackForDocclassErrors(logging.Filter):
    """Prefect logs a failed task's exception with its traceback. For docclass's own errors (bad
    input, unknown classifier, missing file) the message says all there is to say, and a traceback
    on stderr reads as a crash; it is dropped from the log record (the message stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from classifier_core.errors import DocclassError

        if record.exc_info and isinstance(record.exc_info[1], DocclassError):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_expected_tracebacks() -> None:
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTracebackForDocclassErrors) for f in logger.filters):
            logger.addFilter(_NoTracebackForDocclassErrors())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docclass",
        description="Self-hosted document classification: Amazon Comprehend custom classification "
        "on Prefect, MLflow and scikit-learn.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_classifiers(commands)
    _add_classify(commands)
    _add_jobs(commands)
    _add_compare(commands)
    _add_realtime(commands)
    _add_server(commands)
    return parser


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train, evaluate and register a classifier version (CreateDocumentClassifier)",
        description="Runs the Prefect flow create_document_classifier: validate training data, train, "
        "evaluate (the 8 Comprehend metrics), register in MLflow, package output.tar.gz. Prints the "
        "DescribeDocumentClassifier JSON on stdout.",
    )
    train.add_argument("--name", required=True, help="classifier name (letters, digits, inner hyphens; <= 63)")
    train.add_argument("--mode", required=True, choices=["MULTI_CLASS", "MULTI_LABEL"])
    train.add_argument("--training-data", required=True, metavar="URI", help="CSV (label,text; no header) or manifest: a path, file://, s3://, file or prefix")
    train.add_argument("--test-data", metavar="URI", help="test data in the same format; default: a stratified 10%% holdout")
    train.add_argument("--label-delimiter", default="|", metavar="C", help="multi-label delimiter (default '|')")
    train.add_argument("--version-name", metavar="V", help="version name, unique per classifier")
    train.add_argument("--output", metavar="URI", help="training output location (default $DOCCLASS_HOME/output)")
    train.add_argument("--tag", action="append", default=[], metavar="K=V", help="a tag for the version (repeatable)")
    train.add_argument("--strict", action="store_true", help="apply Comprehend's minimum document counts as errors")
    train.add_argument("--fast", action="store_true",
                       help="skip the model search: train the default configuration only (still calibrated)")
    train.add_argument("--search-budget", type=float, metavar="SECONDS",
                       help="seconds the model search may spend in all, the first candidate included; a candidate "
                       "not expected to finish within them is skipped (default 10; more lets the slower "
                       "candidates run on large data; not with --fast; out-of-core training ignores it)")
    train.add_argument("--data-format", default="COMPREHEND_CSV", choices=["COMPREHEND_CSV", "AUGMENTED_MANIFEST"])
    train.add_argument("--attribute-names", metavar="A[,B...]", help="label attribute names of an augmented manifest (1-5)")
    train.add_argument("--auto-promote", action="store_true",
                       help="then compare the new version with the champion on this training's test data and "
                       "promote the winner (as compare --promote)")
    train.set_defaults(handler=_train)


def _add_classifiers(commands) -> None:
    classifiers = commands.add_parser("classifiers", help="list or describe registered classifiers")
    sub = classifiers.add_subparsers(dest="classifiers_command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="every version of every classifier, as a JSON array").set_defaults(handler=_list_classifiers)
    describe = sub.add_parser("describe", help="one version: NAME (its champion), NAME:VERSION or NAME@ALIAS")
    describe.add_argument("classifier", metavar="NAME[:VERSION|@ALIAS]")
    describe.set_defaults(handler=_describe_classifier)


def _add_classify(commands) -> None:
    classify = commands.add_parser(
        "classify",
        help="run an asynchronous classification job (StartDocumentClassificationJob)",
        description="Runs the Prefect flow start_document_classification_job: resolve the classifier in MLflow, "
        "read every input document, classify, write <output-uri>/<JobId>/output/output.tar.gz holding "
        "predictions.jsonl (one record per document, in input order). Prints the job's "
        "DescribeDocumentClassificationJob JSON on stdout; progress goes to stderr.",
    )
    classify.add_argument("--classifier", required=True, metavar="NAME[:VERSION|@ALIAS]", help="default alias: champion")
    classify.add_argument("--input-uri", required=True, metavar="URI", help="a file or a prefix: path, file:// or s3://")
    classify.add_argument("--input-format", default="ONE_DOC_PER_LINE", choices=["ONE_DOC_PER_LINE", "ONE_DOC_PER_FILE"])
    classify.add_argument("--output-uri", metavar="URI", help="where <JobId>/output/output.tar.gz goes (default $DOCCLASS_HOME/output)")
    classify.add_argument("--job-name", metavar="N", help="a name to find the job by")
    classify.add_argument("--tag", action="append", default=[], metavar="K=V", help="a tag for the job (repeatable)")
    classify.add_argument("--workers", type=int, metavar="N",
                          help="processes classifying in parallel (default: every core); output is the same for any N")
    classify.add_argument("--dask-address", metavar="ADDRESS",
                          help="classify the shards on the Dask cluster at this scheduler address (tcp://host:8786) "
                          "instead of processes on this machine")
    classify.add_argument("--explain", action="store_true",
                          help="add Explanations to each record: the terms behind each assigned class (slower)")
    classify.add_argument("--only-new", action="store_true",
                          help="skip input objects that earlier --only-new jobs into the same output location already "
                          "classified (for an 'incoming' prefix); an empty prefix completes with no documents")
    classify.add_argument("--no-wait", action="store_true",
                          help="submit through the deployment on the running `docclass server` (PREFECT_API_URL) and "
                          "print the SUBMITTED job at once; follow it with `docclass jobs describe JOB_ID`")
    classify.set_defaults(handler=_classify)


def _add_jobs(commands) -> None:
    jobs = commands.add_parser("jobs", help="list, describe, stop or resume classification jobs (read from Prefect's API)")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="jobs, newest first, as a JSON array; at most one filter, as Comprehend")
    filters = listing.add_mutually_exclusive_group()
    filters.add_argument("--job-name", metavar="N")
    filters.add_argument("--status", choices=[status.value for status in _job_statuses()])
    filters.add_argument("--submitted-before", metavar="T", type=_timestamp, help="ISO 8601 time, e.g. 2026-11-21T10:00:00Z")
    filters.add_argument("--submitted-after", metavar="T", type=_timestamp, help="ISO 8601 time")
    listing.add_argument("--max-results", type=int, default=100, metavar="N", help="at most N jobs, newest first (default 100)")
    listing.set_defaults(handler=_list_jobs)
    for name, handler, text in (("describe", _describe_job, "one job's properties"), ("stop", _stop_job, "stop a queued or running job; no output is published")):
        command = sub.add_parser(name, help=text)
        command.add_argument("job_id", metavar="JOB_ID")
        command.set_defaults(handler=handler)
    resume = sub.add_parser(
        "resume", help="finish a FAILED, STOPPED or killed job under the same JobId, classifying only what is missing",
        description="Runs the job's flow run again in this process. Shards finished before the failure, stop or kill "
        "(kept in <output>/<JobId>/staging/) are not classified again; predictions.jsonl comes out byte for byte "
        "as an uninterrupted run writes it. Prints the job's JSON when it ends.",
    )
    resume.add_argument("job_id", metavar="JOB_ID")
    resume.add_argument("--force", action="store_true",
                        help="resume an IN_PROGRESS job that docclass cannot see running on this machine "
                        "(its process or machine is gone)")
    resume.set_defaults(handler=_resume_job)


def _add_compare(commands) -> None:
    from classifier_core.config import PROMOTION_RULE

    compare = commands.add_parser(
        "compare",
        help="score versions of a classifier on one test set; optionally promote the winner",
        description="Runs the Prefect flow compare_document_classifiers: score every version on the same test "
        f"data (the 8 Comprehend metrics), log a comparison run to MLflow and pick a winner. Rule: {PROMOTION_RULE}. "
        "With --promote the winner becomes champion (and the previous champion challenger). Prints the "
        "comparison JSON on stdout and a table on stderr.",
    )
    compare.add_argument("--name", required=True, help="classifier name")
    compare.add_argument("--versions", nargs="+", default=[], metavar="V",
                         help="two or more version numbers or VersionNames (default: champion and challenger)")
    compare.add_argument("--test-data", metavar="URI", help="Comprehend CSV to score on (default: the test data "
                         "the newest compared version was trained with)")
    compare.add_argument("--promote", action="store_true", help="make the winner champion")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from flows.request_models import CompareDocumentClassifiersRequest

    request = _request(CompareDocumentClassifiersRequest, DocumentClassifierName=args.name, Versions=args.versions,
                       TestS3Uri=args.test_data, Promote=args.promote)
    from flows.compare import compare_document_classifiers, format_table

    print(f"docclass: comparing versions of {request.DocumentClassifierName} ...", file=sys.stderr)
    with without_heartbeats():
        state = compare_document_classifiers(request, return_state=True)
    if not state.is_completed():
        print(f"docclass: error: {state.message or 'the comparison failed'}", file=sys.stderr)
        return 1
    result = state.result()
    print(format_table(result), file=sys.stderr)
    _print_json(result)
    return 0


def _add_realtime(commands) -> None:
    text = commands.add_parser("classify-text", help="classify one text now, without a server or a job")
    text.add_argument("--classifier", required=True, metavar="NAME[:VERSION|@ALIAS]", help="default alias: champion")
    text.add_argument("text", nargs="?", help="the text (default: read standard input)")
    text.add_argument("--explain", action="store_true", help="add Explanations: the terms behind each assigned class")
    text.set_defaults(handler=_classify_text)
    serve = commands.add_parser(
        "serve", help="serve ClassifyDocument over HTTP (POST /classify-document, GET /health, /docs)",
        description="Loads the classifier the reference points at (the alias is resolved at start) and serves "
        "POST /classify-document {\"Text\": ...}. To roll to a new champion without downtime, start a second "
        "server on another port, switch traffic, stop the first.",
    )
    serve.add_argument("--classifier", required=True, metavar="NAME[:VERSION|@ALIAS]", help="default alias: champion")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes, each with its own copy of the model")
    serve.add_argument("--max-text-bytes", type=int, default=10 * 1024, metavar="N", help="largest Text accepted (default 10240)")
    serve.set_defaults(handler=_serve)


def _add_server(commands) -> None:
    server = commands.add_parser(
        "server",
        help="run deployments locally: Prefect server + deployments/prefect.yaml + a worker",
        description="Starts a Prefect server on loopback (state in $DOCCLASS_HOME/prefect unless PREFECT_HOME is "
        "set), creates the process work pool 'docclass', applies deployments/prefect.yaml and starts a worker, so "
        "runs triggered from the UI, `prefect deployment run` or `docclass classify --no-wait` execute. "
        "Schedules (nightly retrain, hourly incoming job) stay paused unless --schedules. Ctrl-C stops everything. "
        "Scheduled runs read DOCCLASS_SCHEDULED_CLASSIFIER (default support-tickets), DOCCLASS_TRAINING_URI, "
        "DOCCLASS_INCOMING_URI and DOCCLASS_OUTPUT_URI (defaults under $DOCCLASS_HOME).",
    )
    server.add_argument("--host", default="127.0.0.1", help="bind address of the Prefect server (default loopback)")
    server.add_argument("--port", type=int, default=4200, help="Prefect server port (default 4200)")
    server.add_argument("--schedules", action="store_true", help="activate the example schedules")
    server.set_defaults(handler=_server)


def _server(args: argparse.Namespace) -> int:
    from flows.deployments import run_server

    return run_server(args.host, args.port, args.schedules)


def _classify_text(args: argparse.Namespace) -> int:
    from classifier_core.inference import classify_texts

    from classifier_core.config import MAX_REALTIME_TEXT_BYTES
    from classifier_core.errors import DocclassError

    text = args.text if args.text is not None else sys.stdin.read()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_REALTIME_TEXT_BYTES:  # ClassifyDocument's limit, as `serve` applies it
        raise DocclassError(f"expected a text of at most {MAX_REALTIME_TEXT_BYTES} bytes (UTF-8), the real-time "
                            f"limit; found {size}; classify longer documents with a job (docclass classify)")
    registry = _registry()
    model = registry.load_scorer(registry.resolve(registry.ModelRef.parse(args.classifier)))
    result = classify_texts(model, [text], explain=args.explain)[0]
    _print_json(result)
    return 1 if "ErrorCode" in result else 0


def _serve(args: argparse.Namespace) -> int:
    from flows.realtime import SERVE_CLASSIFIER_ENV, SERVE_MAX_BYTES_ENV, run_server

    registry = _registry()
    version = registry.resolve(registry.ModelRef.parse(args.classifier))
    # Workers resolve "NAME:VERSION", not the alias, so all serve the version resolved here.
    os.environ[SERVE_CLASSIFIER_ENV] = f"{version.name}:{version.version}"
    os.environ[SERVE_MAX_BYTES_ENV] = str(args.max_text_bytes)
    print(f"docclass: serving {version.name} version {version.version} on http://{args.host}:{args.port} "
          f"({args.workers} worker(s))", file=sys.stderr)
    run_server(args.host, args.port, args.workers)
    return 0


def _job_statuses():
    from classifier_core.config import JobStatus

    return list(JobStatus)


def _timestamp(text: str):
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2026-11-21T10:00:00Z; found {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_tags(pairs: Sequence[str]) -> list[dict[str, str]]:
    tags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            _usage_error(f"--tag expects KEY=VALUE; found {pair!r}")
        tags.append({"Key": key, "Value": value})
    return tags


def training_request(args: argparse.Namespace):
    """The CreateDocumentClassifierRequest the train command's arguments describe."""
    from flows.request_models import CreateDocumentClassifierRequest

    if args.fast and args.search_budget is not None:
        _usage_error("--search-budget: not with --fast, which skips the model search")
    input_config: dict = {"DataFormat": args.data_format, "LabelDelimiter": args.label_delimiter}
    if args.data_format == "AUGMENTED_MANIFEST":
        if not args.attribute_names:
            _usage_error("--data-format AUGMENTED_MANIFEST needs --attribute-names")
        names = [name.strip() for name in args.attribute_names.split(",") if name.strip()]
        input_config["AugmentedManifests"] = [{"S3Uri": args.training_data, "AttributeNames": names, "Split": "TRAIN"}]
        if args.test_data:
            input_config["AugmentedManifests"].append({"S3Uri": args.test_data, "AttributeNames": names, "Split": "TEST"})
    else:
        input_config.update(S3Uri=args.training_data, TestS3Uri=args.test_data)
    return _request(
        CreateDocumentClassifierRequest,
        DocumentClassifierName=args.name,
        VersionName=args.version_name,
        Mode=args.mode,
        InputDataConfig=input_config,
        OutputDataConfig={"S3Uri": args.output},
        Tags=_parse_tags(args.tag),
        Strict=args.strict,
        AutoPromote=args.auto_promote,
        Fast=args.fast,
        SearchBudgetSeconds=args.search_budget,
    )


def _train(args: argparse.Namespace) -> int:
    request = training_request(args)
    from flows.training import create_document_classifier, initial_properties, now_iso

    print(f"docclass: training {request.DocumentClassifierName} ({request.Mode.value}) ...", file=sys.stderr)
    with without_heartbeats():
        state = create_document_classifier(request, return_state=True)
    if state.is_completed():
        _print_json(state.result())
        return 0
    describe = initial_properties(request, job_id_of(state))
    describe.update(Status="IN_ERROR", Message=state.message or "training failed", EndTime=now_iso())
    del describe["OutputDataConfig"]
    _print_json(describe)
    print(f"docclass: error: {describe['Message']}", file=sys.stderr)
    return 1


def _request(model, **fields):
    """Builds a pydantic request model; an invalid field exits with what was expected and found."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
    _usage_error(problems)


def _usage_error(message: str) -> NoReturn:
    """Bad usage (an invalid name, tag or option value): the message on stderr and exit 2, as argparse does."""
    print(f"docclass: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def classification_request(args: argparse.Namespace):
    """The StartDocumentClassificationJobRequest the classify command's arguments describe."""
    from flows.request_models import StartDocumentClassificationJobRequest
    from tasks.settings import default_output_uri

    return _request(
        StartDocumentClassificationJobRequest,
        JobName=args.job_name,
        DocumentClassifier=args.classifier,
        InputDataConfig={"S3Uri": args.input_uri, "InputFormat": args.input_format},
        OutputDataConfig={"S3Uri": args.output_uri or default_output_uri()},
        Tags=_parse_tags(args.tag),
        OnlyNewDocuments=args.only_new,
        Explain=args.explain,
        Workers=args.workers,
        DaskAddress=args.dask_address,
    )


def _classify(args: argparse.Namespace) -> int:
    request = classification_request(args)
    from flows.classification import start_document_classification_job
    from flows.jobs import describe_job
    from tasks.registry import ModelRef

    ModelRef.parse(request.DocumentClassifier)  # an invalid reference is bad usage (exit 2), not a FAILED job

    if args.no_wait:
        from flows.deployments import submit_classification_job

        _print_json(describe_job(submit_classification_job(request)))
        return 0

    print(f"docclass: classifying {request.InputDataConfig.S3Uri} with {request.DocumentClassifier} ...", file=sys.stderr)
    with without_heartbeats():
        state = start_document_classification_job(request, return_state=True)
    describe = describe_job(job_id_of(state))
    _print_json(describe)
    if describe["JobStatus"] != "COMPLETED":
        print(f"docclass: job {describe['JobId']} {describe['JobStatus']}: {describe.get('Message', '')}", file=sys.stderr)
        return 1
    return 0


def _list_jobs(args: argparse.Namespace) -> int:
    from classifier_core.config import JobStatus
    from flows.jobs import list_jobs

    status = JobStatus(args.status) if args.status else None
    _print_json(list_jobs(args.job_name, status, args.submitted_before, args.submitted_after, args.max_results))
    return 0


def _describe_job(args: argparse.Namespace) -> int:
    from flows.jobs import describe_job

    _print_json(describe_job(args.job_id))
    return 0


def _resume_job(args: argparse.Namespace) -> int:
    from flows.jobs import describe_job, resume_job

    print(f"docclass: resuming job {args.job_id} ...", file=sys.stderr)
    with without_heartbeats():
        state = resume_job(args.job_id, args.force)
    describe = describe_job(job_id_of(state))
    _print_json(describe)
    if describe["JobStatus"] != "COMPLETED":
        print(f"docclass: job {describe['JobId']} {describe['JobStatus']}: {describe.get('Message', '')}", file=sys.stderr)
        return 1
    return 0


def _stop_job(args: argparse.Namespace) -> int:
    from flows.jobs import stop_job

    _print_json(stop_job(args.job_id))
    return 0


def job_id_of(state) -> str:
    flow_run_id = state.state_details.flow_run_id
    return flow_run_id.hex if flow_run_id else ""


def _registry():
    from tasks import registry
    from tasks.settings import docclass_home

    registry.configure(docclass_home())
    return registry


def _list_classifiers(args: argparse.Namespace) -> int:
    _print_json(_registry().list_classifiers())
    return 0


def _describe_classifier(args: argparse.Namespace) -> int:
    registry = _registry()
    _print_json(registry.describe(registry.resolve(registry.ModelRef.parse(args.classifier))))
    return 0


def _print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    run()

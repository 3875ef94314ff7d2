"""The bad-input catalogue: every row of docs/errors.md is one test here, with the row's id.

Each case is exercised where a user meets it: the training-data reader for CSV problems, the
CLI end to end (exit code, stderr, the job's output) for what only the whole system shows, and
the real-time app for HTTP requests. Several rows are not errors by SPEC §2/§5 (a BOM is
stripped, CR ends a line, a bad job document becomes an error record and the job goes on):
their tests assert exactly that behaviour.

The end-to-end commands run once per module, three at a time, against the session's Prefect
server; each row's test then checks its own command's result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from classifier_core.config import MAX_DOCUMENT_BYTES_PER_FILE, Mode, TrainingConfig
from classifier_core.errors import TrainingDataError
from classifier_core.training_data import TrainingSet, check_test_set, load_training_data
from flows.demo_data import multi_class_rows, write_csv
from tests.conftest import Result, run_docclass

MULTI_CLASS = TrainingConfig()
MULTI_LABEL = TrainingConfig(mode=Mode.MULTI_LABEL)
STRICT = TrainingConfig(strict=True)
BOM = b"\xef\xbb\xbf"
MB = 1024 * 1024
NAME = "bad-inputs"
LABELS = {"account", "billing", "refund", "shipping", "technical"}


def rows(counts: dict[str, int]) -> bytes:
    """Valid Comprehend CSV rows: ``count`` documents per label."""
    return "".join(f"{label},document {i} about {label}\n" for label, n in counts.items() for i in range(n)).encode()


GOOD = rows({"ham": 60, "spam": 60})  # 120 valid rows, lines 1-120; a bad row appended is line 121


def load(files: dict[str, bytes], config: TrainingConfig = MULTI_CLASS, **kwargs):
    return load_training_data([(name, io.BytesIO(data)) for name, data in files.items()], config, **kwargs)


def load_error(files: dict[str, bytes], config: TrainingConfig = MULTI_CLASS, **kwargs) -> list[str]:
    with pytest.raises(TrainingDataError) as caught:
        load(files, config, **kwargs)
    return [str(issue) for issue in caught.value.issues]


# --- Training data: one bad row in otherwise valid data ------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "config", "message"),
    [
        pytest.param(b"ham,Caf\xe9 at noon\n", MULTI_CLASS,
                     "train.csv line 121: expected UTF-8 text; found invalid byte 0xe9", id="01-non-utf8-bytes"),
        pytest.param(b"just a text without a label\n", MULTI_CLASS,
                     "train.csv line 121: expected 2 columns (label,text); found 1", id="04-one-column"),
        pytest.param(b"spam,two,commas\n", MULTI_CLASS,
                     "train.csv line 121: expected 2 columns (label,text); found 3", id="05-three-columns"),
        pytest.param(b'ham,"this quote is never closed\nspam,and swallows this row\n', MULTI_CLASS,
                     "train.csv line 121: expected a closing quote for the field starting on this line; found end of file",
                     id="06-unclosed-quote"),
        pytest.param(b",a text without a label\n", MULTI_CLASS,
                     "train.csv line 121: expected a label; found an empty label", id="07-empty-label"),
        pytest.param(b"ham,\n", MULTI_CLASS, "train.csv line 121: expected a text; found an empty text", id="08-empty-text"),
        pytest.param(b"   ,a text\n", MULTI_CLASS,
                     "train.csv line 121: expected a label; found only whitespace", id="09-whitespace-label"),
        pytest.param(b"ham|spam,a text\n", MULTI_CLASS,
                     "train.csv line 121: expected one class per row in MULTI_CLASS mode; found 'ham|spam', which contains "
                     "the label delimiter '|' (use MULTI_LABEL mode or another --label-delimiter)",
                     id="10-delimiter-in-multiclass-label"),
        pytest.param(b"ham\x00,a text\n", MULTI_CLASS,
                     "train.csv line 121: expected a class name without control characters; found 'ham\\x00'",
                     id="11-nul-byte-in-label"),
    ],
)
def test_a_bad_training_row_is_an_error_naming_file_and_line(bad_row, config, message):
    assert load_error({"train.csv": GOOD + bad_row}, config) == [message]


def test_02_bom_is_stripped():
    data, warnings = load({"train.csv": BOM + GOOD})
    assert len(data) == 120 and data.label_set == ["ham", "spam"] and warnings == []  # not '\ufeffham'


def test_03_header_row_is_reported():
    assert load_error({"train.csv": b"label,text\n" + GOOD}) == [
        "train.csv line 1: expected a data row (Comprehend CSV has no header); found a header 'label,text'"
    ]


# --- Training data: the set as a whole --------------------------------------------------------------


def test_12_one_class_only():
    assert load_error({"train.csv": rows({"spam": 60})}) == ["expected at least 2 distinct classes; found 1 ('spam')"]


def test_13_too_few_documents_per_class_warns_and_strict_refuses():
    _, warnings = load({"train.csv": rows({"ham": 60, "spam": 12})})
    assert [str(w) for w in warnings] == [
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 12 for 'spam'"
    ]
    assert load_error({"train.csv": rows({"ham": 60, "spam": 5})}, STRICT) == [
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 5 for 'spam'"
    ]


def test_14_more_than_1000_classes():
    errors = load_error({"train.csv": rows({f"c{i}": 1 for i in range(1001)})})
    assert errors == ["expected at most 1000 classes; found 1001"]


def test_15_more_than_100_labels_in_multi_label_mode():
    errors = load_error({"train.csv": rows({f"l{i}|l{i + 1}": 1 for i in range(100)})}, MULTI_LABEL)
    assert errors == ["expected at most 100 labels; found 101"]


def test_16_wrong_multi_label_delimiter_warns():
    _, warnings = load({"train.csv": rows({"news;sport": 60, "news;politics": 60, "weather": 60})}, MULTI_LABEL)
    assert [str(w) for w in warnings] == [
        "expected labels joined by '|'; found no row with more than one label, while labels such as 'news;politics' "
        "contain ';' (is --label-delimiter ';'?)"
    ]


def test_17_label_delimiter_that_is_not_allowed():
    assert load_error({"train.csv": GOOD}, TrainingConfig(mode=Mode.MULTI_LABEL, label_delimiter=",")) == [
        "expected --label-delimiter to be one of '\\t', ' ', '!', '#', '$', '%', '*', '+', '-', '/', ':', ';', "
        "'=', '>', '?', '@', '\\', '^', '_', '|', '~'; found ','"
    ]


def test_18_test_set_missing_a_training_label_warns_and_strict_refuses():
    train = TrainingSet(["a", "b", "c"], [("billing",), ("refund",), ("shipping",)])
    test = TrainingSet(["a", "b"], [("billing",), ("refund",)])
    message = "test.csv: expected every training class in the test set; found no test document for 'shipping'"
    assert [str(i) for i in check_test_set(train, test, "test.csv", MULTI_CLASS)] == [message]
    with pytest.raises(TrainingDataError) as caught:
        check_test_set(train, test, "test.csv", STRICT)
    assert str(caught.value) == message


def test_19_empty_training_file():
    assert load_error({"train.csv": b""}) == ["expected at least one training document; found none in train.csv"]
    assert load_error({"train.csv": b"\n\r\n\n"}) == ["expected at least one training document; found none in train.csv"]


def test_20_empty_test_file_is_an_error_before_evaluation():
    assert load_error({"test.csv": b""}, test_set=True) == [
        "expected at least one test document; found none in test.csv"
    ]


def test_21_cr_only_training_file_ends_rows_at_cr():
    data, _ = load({"train.csv": GOOD.replace(b"\n", b"\r")})
    assert len(data) == 120
    assert load_error({"train.csv": GOOD.replace(b"\n", b"\r") + b"spam,a,b\r"}) == [
        "train.csv line 121: expected 2 columns (label,text); found 3"
    ]


def test_22_nul_byte_in_a_text_is_kept():
    data, _ = load({"train.csv": GOOD + b"spam,win a \x00 prize\n"})
    assert len(data) == 121 and data.texts[-1] == "win a \x00 prize"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (gzip.compress(GOOD), "a gzip archive: decompress it first"),
        (None, "a zip archive (an .xlsx workbook is one): export the sheet as CSV UTF-8"),
        (b"\xff\xfe" + GOOD.decode().encode("utf-16-le"),
         "UTF-16 text (byte order mark 0xff 0xfe): save it as UTF-8 (Excel: CSV UTF-8)"),
        (bytes(range(256)) * 4, "binary data (624 of its first 1024 characters are control characters or invalid UTF-8)"),
    ],
    ids=["gzip", "zip", "utf-16", "binary"],
)
def test_23_binary_training_file_is_one_error_for_the_file(content, found):
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("train.csv", GOOD)
        content = buffer.getvalue()
    assert load_error({"train.bin": content}) == [
        f"train.bin: expected a UTF-8 CSV of label,text rows; found {found}",
        "expected at least 2 distinct classes; found 0",
    ]


def test_24_a_50_mb_single_line_training_file():
    errors = load_error({"big.csv": b"x" * (50 * MB)})
    assert errors == ["big.csv line 1: expected 2 columns (label,text); found 1", "expected at least 2 distinct classes; found 0"]


def test_27_unreadable_training_uri(tmp_path):
    from tasks.storage import StorageError
    from tasks.training import DataSource, load_source

    (tmp_path / "train.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(StorageError) as caught:
        load_source(DataSource(str(tmp_path / "train.csv")), MULTI_CLASS)
    assert str(caught.value) == (
        f"{tmp_path}/train.csv: cannot read: [Errno 2] No such file or directory: '{tmp_path}/train.csv'"
    )
    with pytest.raises(StorageError) as caught:
        load_source(DataSource("hdfs://namenode/train.csv"), MULTI_CLASS)
    assert str(caught.value).startswith(
        "hdfs://namenode/train.csv: expected a local path, file:// or s3:// URI; found one that cannot be opened ("
    )


# --- Names: bad usage, refused before any work (exit 2) -----------------------------------------------


def cli_in_process(capsys, *args: str) -> tuple[int, str]:
    """``docclass ARGS`` through flows.cli.main in this process: (exit code, stderr)."""
    from flows.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--name", "support_tickets"],
                     "docclass: error: DocumentClassifierName: expected a classifier name of 1-63 letters, digits and inner "
                     "hyphens (^[a-zA-Z0-9](-*[a-zA-Z0-9])*$); found 'support_tickets'", id="28-invalid-classifier-name"),
        pytest.param(["--name", "tickets", "--version-name", "v1.0"],
                     "docclass: error: VersionName: expected a version name of 1-63 letters, digits and inner hyphens "
                     "(^[a-zA-Z0-9](-*[a-zA-Z0-9])*$); found 'v1.0'", id="29-invalid-version-name"),
        pytest.param(["--name", "tickets", "--tag", "team"],
                     "docclass: error: --tag expects KEY=VALUE; found 'team'", id="30-invalid-tag"),
        pytest.param(["--name", "tickets", "--search-budget", "0"],
                     "docclass: error: SearchBudgetSeconds: Input should be greater than 0", id="search-budget-zero"),
        pytest.param(["--name", "tickets", "--search-budget", "inf"],
                     "docclass: error: SearchBudgetSeconds: Input should be a finite number", id="search-budget-inf"),
        pytest.param(["--name", "tickets", "--fast", "--search-budget", "30"],
                     "docclass: error: --search-budget: not with --fast, which skips the model search",
                     id="search-budget-with-fast"),
    ],
)
def test_invalid_names_are_bad_usage(capsys, tmp_path, args, message):
    code, stderr = cli_in_process(capsys, "train", *args, "--mode", "MULTI_CLASS", "--training-data", str(tmp_path / "t.csv"))
    assert code == 2
    assert stderr.strip() == message


def test_a_search_budget_with_fast_is_refused_from_the_api_too():
    """A deployment's form or API call, not only the CLI, cannot ask for both."""
    from pydantic import ValidationError

    from flows.request_models import CreateDocumentClassifierRequest

    with pytest.raises(ValidationError, match="Fast skips the model search, so it takes no SearchBudgetSeconds; found 30"):
        CreateDocumentClassifierRequest(DocumentClassifierName="tickets", InputDataConfig={"S3Uri": "t.csv"}, Fast=True,
                                        SearchBudgetSeconds=30)
    assert CreateDocumentClassifierRequest(DocumentClassifierName="tickets", InputDataConfig={"S3Uri": "t.csv"},
                                           SearchBudgetSeconds=30).SearchBudgetSeconds == 30.0


def test_the_form_and_help_state_the_default_search_budget(capsys):
    """The Prefect UI form's description and ``train --help`` give TextClassifier's default."""
    from classifier_core.model import TIME_BUDGET
    from flows.cli import main
    from flows.request_models import CreateDocumentClassifierRequest

    described = CreateDocumentClassifierRequest.model_fields["SearchBudgetSeconds"].description
    assert f"Default: {TIME_BUDGET:g}." in described
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"(default {TIME_BUDGET:g};" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("support tickets", "expected a classifier name of 1-63 letters, digits and inner hyphens "
                            "(^[a-zA-Z0-9](-*[a-zA-Z0-9])*$); found 'support tickets'"),
        ("tickets:", "expected a version after ':' in 'tickets:'; found nothing"),
        ("tickets@", "expected an alias of letters, digits, '-' or '_'; found ''"),
    ],
    ids=["name", "empty-version", "empty-alias"],
)
def test_31_invalid_classifier_reference_is_bad_usage_and_starts_no_job(capsys, tmp_path, reference, message):
    code, stderr = cli_in_process(capsys, "classify", "--classifier", reference, "--input-uri", str(tmp_path),
                                  "--output-uri", str(tmp_path / "out"))
    assert code == 2
    assert stderr.strip() == f"docclass: error: {message}"
    assert not (tmp_path / "out").exists()


def test_56_classify_text_over_10_kb_is_refused_before_loading_anything(capsys):
    code, stderr = cli_in_process(capsys, "classify-text", "--classifier", "anything", "é" * 5121)
    assert code == 1
    assert stderr.strip() == ("docclass: error: expected a text of at most 10240 bytes (UTF-8), the real-time limit; "
                              "found 10242; classify longer documents with a job (docclass classify)")


# --- End to end: one trained classifier, then every command below, three at a time ---------------------


@dataclass
class EndToEnd:
    root: Path
    results: dict[str, Result]
    kept_before: dict[str, str]
    classifiers_after: list[dict]

    def job(self, key: str) -> dict:
        return json.loads(self.results[key].stdout)

    def records(self, key: str) -> list[dict]:
        job = self.job(key)
        assert job["JobStatus"] == "COMPLETED", self.results[key].stderr
        with tarfile.open(job["OutputDataConfig"]["S3Uri"], "r:gz") as archive:
            raw = archive.extractfile("predictions.jsonl").read().decode("utf-8")
        return [json.loads(line) for line in raw.splitlines()]

    def by_file(self, key: str, file: str) -> list[dict]:
        return [record for record in self.records(key) if record["File"] == file]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


LINE_FILES = {
    "a-bom.txt": BOM + b"my parcel never arrived\nI was charged twice\n",
    "b-bad-lines.txt": b"reset my password\n\xff\xfe broken\n\n   \nrefund please\x00 now\nlast line without an end",
    "c-cr-only.txt": b"line one\rline two\r\rline three\r",
    "d-empty.txt": b"",
    "e-binary.bin": bytes(range(256)),
}
PER_FILE_FILES = {
    "a-ok.txt": b"my parcel never arrived",
    "b-empty.txt": b"",
    "c-big.txt": b"y" * (MAX_DOCUMENT_BYTES_PER_FILE + 1),
    "d-binary.bin": bytes(range(256)),
    "e-bom.txt": BOM + b"I was charged twice",
    "f-nul.txt": b"refund\x00please",
}


@pytest.fixture(scope="module")
def e2e(prefect_server, tmp_path_factory) -> EndToEnd:
    root = tmp_path_factory.mktemp("bad-inputs")
    env = {"DOCCLASS_HOME": str(root / "home"), "PREFECT_API_URL": prefect_server, "MLFLOW_TRACKING_URI": ""}
    training = write_csv(multi_class_rows(200), root / "train.csv")
    trained = run_docclass("train", "--name", NAME, "--mode", "MULTI_CLASS", "--training-data", str(training),
                           "--version-name", "v1", "--fast", env=env)
    assert trained.code == 0, trained.stderr

    # A CSV with several problems; every one must be reported, with its line.
    bad = root / "bad.csv"
    bad.write_bytes(b"label,text\n" + training.read_bytes() + b"billing,Caf\xe9 charged twice\nrefund,a,b\nshipping,\n")
    for folder, files in (("lines", LINE_FILES), ("files", PER_FILE_FILES)):
        (root / folder).mkdir()
        for name, data in files.items():
            (root / folder / name).write_bytes(data)
    with open(root / "lines" / "f-huge.txt", "wb") as fp:  # 50 MB on one line, made here, never committed
        fp.write(b"before the huge line\n")
        for _ in range(50):
            fp.write(b"x" * MB)
        fp.write(b"\nafter the huge line\n")
    (root / "broken.txt").symlink_to(root / "gone.txt")
    kept = root / "kept"  # earlier output in the output location of the jobs that fail
    (kept / "earlier" / "output").mkdir(parents=True)
    (kept / "earlier" / "output" / "output.tar.gz").write_bytes(b"an earlier job's archive")
    kept_before = snapshot(kept)

    def train(data: Path, *extra: str) -> list[str]:
        return ["train", "--name", NAME, "--mode", "MULTI_CLASS", "--training-data", str(data), "--fast", *extra]

    def classify(classifier: str, input_uri: str, output: Path = kept, input_format: str = "ONE_DOC_PER_LINE") -> list[str]:
        return ["classify", "--classifier", classifier, "--input-uri", input_uri, "--input-format", input_format,
                "--output-uri", str(output), "--workers", "1"]

    commands = {
        "lines": classify(NAME, str(root / "lines") + "/", root / "out-lines"),
        "files": classify(NAME, str(root / "files") + "/", root / "out-files", "ONE_DOC_PER_FILE"),
        "every-problem": train(bad),
        "version-name-taken": train(training, "--version-name", "v1"),
        "unknown-classifier": classify("nobody", str(root / "lines") + "/"),
        "no-input": classify(NAME, str(root / "lines" / "z-nothing-starts-so")),
        "unreadable-input": classify(NAME, str(root / "broken.txt")),
        # The registry's answer is the same for a job; describe costs no flow run.
        "unknown-alias": ["classifiers", "describe", f"{NAME}@production"],
        "unknown-version": ["classifiers", "describe", f"{NAME}:v9"],
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run_docclass, *args, env=env) for key, args in commands.items()}
        results = {key: future.result() for key, future in futures.items()}
    listed = run_docclass("classifiers", "list", env=env)
    assert listed.code == 0, listed.stderr
    return EndToEnd(root, results, kept_before, json.loads(listed.stdout))


def assert_training_refused(e2e: EndToEnd, key: str, messages: list[str]) -> dict:
    """Exit 1, IN_ERROR, each message on stderr and in the JSON; no traceback; the registry untouched."""
    result = e2e.results[key]
    assert result.code == 1, result.stderr
    describe = json.loads(result.stdout)
    assert describe["Status"] == "IN_ERROR"
    for message in messages:
        assert message in describe["Message"] and message in result.stderr
    assert f"docclass: error: {messages[0]}" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing produced before is lost: still exactly the one version, still champion.
    assert [(d["DocumentClassifierName"], d["ModelVersion"], d["Aliases"]) for d in e2e.classifiers_after] == [
        (NAME, "1", ["champion"])
    ]
    return describe


def assert_job_failed(e2e: EndToEnd, key: str, message: str) -> None:
    """Exit 1, FAILED with the message, no traceback; nothing written or changed in the output location."""
    result = e2e.results[key]
    assert result.code == 1, result.stderr
    job = json.loads(result.stdout)
    assert job["JobStatus"] == "FAILED"
    assert job["Message"] == message
    assert result.stderr.rstrip().endswith(f"docclass: job {job['JobId']} FAILED: {message}")
    assert "Traceback" not in result.stderr
    assert snapshot(e2e.root / "kept") == e2e.kept_before


def test_25_every_problem_in_a_file_is_reported_end_to_end(e2e):
    assert_training_refused(e2e, "every-problem", [
        "bad.csv line 1: expected a data row (Comprehend CSV has no header); found a header 'label,text'",
        "bad.csv line 202: expected UTF-8 text; found invalid byte 0xe9",
        "bad.csv line 203: expected 2 columns (label,text); found 3",
        "bad.csv line 204: expected a text; found an empty text",
    ])


def test_26_missing_training_uri(tmp_path):
    from tasks.training import DataSource, load_source

    (tmp_path / "empty-folder").mkdir()
    for uri in (f"{tmp_path}/no-such-train.csv", f"{tmp_path}/empty-folder/"):
        with pytest.raises(TrainingDataError) as caught:
            load_source(DataSource(str(uri)), MULTI_CLASS)
        assert str(caught.value) == f"{uri}: expected at least one file at this URI or prefix; found none"


def test_32_version_name_already_taken(e2e):
    assert_training_refused(e2e, "version-name-taken", [
        f"classifier '{NAME}' already has a version named 'v1'; choose another --version-name"
    ])
    assert "validate-training-data" not in e2e.results["version-name-taken"].stderr  # refused before any work


def test_33_unknown_classifier(e2e):
    registry = f"sqlite:///{e2e.root / 'home' / 'mlflow.db'}"
    assert_job_failed(e2e, "unknown-classifier", f"classifier 'nobody' not found in the registry ({registry}); "
                                                 "`docclass classifiers list` shows the registered ones")


def test_34_unknown_alias(e2e):
    result = e2e.results["unknown-alias"]
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (f"docclass: error: classifier '{NAME}' has no version with alias 'production'; "
                             "its aliases: champion (version 1)\n")


def test_35_unknown_version(e2e):
    result = e2e.results["unknown-version"]
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == f"docclass: error: classifier '{NAME}' has no version 'v9'; its versions: 1 (v1)\n"


def test_36_input_prefix_that_matches_nothing(e2e):
    uri = e2e.root / "lines" / "z-nothing-starts-so"
    assert_job_failed(e2e, "no-input", f"{uri}: no input found: expected at least one file at this URI or prefix")


def test_37_unreadable_input_uri(e2e):
    uri = e2e.root / "broken.txt"
    assert_job_failed(e2e, "unreadable-input", f"{uri}: cannot read: [Errno 2] No such file or directory: '{uri}'")


def test_38_unsupported_uri_scheme():
    from tasks.classification import list_inputs
    from tasks.retry import is_transient
    from tasks.storage import StorageError

    with pytest.raises(StorageError) as caught:
        list_inputs.fn("hdfs://namenode/incoming/")  # the job's list-inputs task; it ends the job FAILED
    assert str(caught.value).startswith(
        "hdfs://namenode/incoming/: expected a local path, file:// or s3:// URI; found one that cannot be opened ("
    )
    assert not is_transient(caught.value)  # failed at once, not after three retries


# --- Jobs: documents that cannot be classified become error records; the job goes on ------------------


def classified(record: dict, file: str, line: str | None) -> bool:
    expected_keys = {"File", "Line", "Classes"} if line is not None else {"File", "Classes"}
    return (set(record) == expected_keys and record["File"] == file and record.get("Line") == line
            and len(record["Classes"]) == 3 and {c["Name"] for c in record["Classes"]} <= LABELS)


def error_record(file: str, line: str | None, code: str, message: str) -> dict:
    record = {"File": file, "Line": line, "ErrorCode": code, "ErrorMessage": message}
    return record if line is not None else {k: v for k, v in record.items() if k != "Line"}


def test_39_non_utf8_line_is_an_error_record(e2e):
    records = e2e.by_file("lines", "b-bad-lines.txt")
    assert records[1] == error_record("b-bad-lines.txt", "1", "INVALID_ENCODING",
                                      "line is not valid UTF-8: invalid byte 0xff at offset 0")
    assert classified(records[0], "b-bad-lines.txt", "0")  # the lines around it are classified


def test_40_bom_is_stripped_from_the_first_line(e2e):
    records = e2e.by_file("lines", "a-bom.txt")
    assert [classified(r, "a-bom.txt", str(i)) for i, r in enumerate(records)] == [True, True]
    assert classified(e2e.by_file("files", "e-bom.txt")[0], "e-bom.txt", None)


def test_41_empty_and_blank_lines_are_error_records(e2e):
    records = e2e.by_file("lines", "b-bad-lines.txt")
    assert records[2:4] == [error_record("b-bad-lines.txt", str(i), "EMPTY_DOCUMENT", "document is empty") for i in (2, 3)]


def test_42_nul_byte_in_a_document_is_classified(e2e):
    assert classified(e2e.by_file("lines", "b-bad-lines.txt")[4], "b-bad-lines.txt", "4")
    assert classified(e2e.by_file("files", "f-nul.txt")[0], "f-nul.txt", None)


def test_43_cr_only_file_is_split_at_cr(e2e):
    records = e2e.by_file("lines", "c-cr-only.txt")
    assert [r["Line"] for r in records] == ["0", "1", "2", "3"]
    assert records[2] == error_record("c-cr-only.txt", "2", "EMPTY_DOCUMENT", "document is empty")
    assert all(classified(records[i], "c-cr-only.txt", str(i)) for i in (0, 1, 3))


def test_44_empty_input_file(e2e):
    assert e2e.by_file("lines", "d-empty.txt") == []  # no line, no document (SPEC §5)
    assert e2e.by_file("files", "b-empty.txt") == [error_record("b-empty.txt", None, "EMPTY_DOCUMENT", "document is empty")]


def test_45_binary_input_file(e2e):
    # bytes 0x00-0xff: LF and CR split it into 3 lines; the one that decodes to text is classified.
    records = e2e.by_file("lines", "e-binary.bin")
    assert classified(records[0], "e-binary.bin", "0")
    assert records[1:] == [
        error_record("e-binary.bin", "1", "EMPTY_DOCUMENT", "document is empty"),  # \x0b\x0c: whitespace only
        error_record("e-binary.bin", "2", "INVALID_ENCODING", "line is not valid UTF-8: invalid byte 0x80 at offset 114"),
    ]
    assert e2e.by_file("files", "d-binary.bin") == [
        error_record("d-binary.bin", None, "INVALID_ENCODING", "file is not valid UTF-8: invalid byte 0x80 at offset 128")
    ]


def test_46_a_50_mb_single_line_is_one_error_record(e2e):
    records = e2e.by_file("lines", "f-huge.txt")
    assert len(records) == 3
    assert records[1] == error_record("f-huge.txt", "1", "DOCUMENT_SIZE_EXCEEDED",
                                      f"document is {50 * MB} bytes; the limit is {MAX_DOCUMENT_BYTES_PER_FILE} bytes")
    assert classified(records[0], "f-huge.txt", "0") and classified(records[2], "f-huge.txt", "2")


def test_47_document_over_the_size_limit(e2e):
    assert e2e.by_file("files", "c-big.txt") == [error_record(
        "c-big.txt", None, "DOCUMENT_SIZE_EXCEEDED",
        f"document is {MAX_DOCUMENT_BYTES_PER_FILE + 1} bytes; the limit is {MAX_DOCUMENT_BYTES_PER_FILE} bytes")]


def test_48_every_document_is_in_the_output_exactly_once_in_order(e2e):
    lines = e2e.records("lines")
    expected = ([("a-bom.txt", i) for i in range(2)] + [("b-bad-lines.txt", i) for i in range(6)]
                + [("c-cr-only.txt", i) for i in range(4)] + [("e-binary.bin", i) for i in range(3)]
                + [("f-huge.txt", i) for i in range(3)])
    assert [(r["File"], int(r["Line"])) for r in lines] == expected
    job = e2e.job("lines")
    assert (job["NumberOfDocuments"], job["NumberOfDocumentErrors"]) == (18, 7)
    assert e2e.results["lines"].code == 0
    files = e2e.records("files")
    assert [r["File"] for r in files] == list(PER_FILE_FILES)
    assert (e2e.job("files")["NumberOfDocuments"], e2e.job("files")["NumberOfDocumentErrors"]) == (6, 3)


# --- Real time: the app's answers to bad requests (4xx JSON, never a 500) -----------------------------------


@pytest.fixture(scope="module")
def app_client():
    with warnings.catch_warnings():  # starlette's notice about httpx, not about docclass
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from classifier_core.model import TextClassifier
    from flows.realtime import create_app

    data = multi_class_rows(200)
    model = TextClassifier(mode=Mode.MULTI_CLASS, search=False).fit([t for _, t in data], [(label,) for label, _ in data])
    with TestClient(create_app(model, {"DocumentClassifierName": NAME, "DocumentClassifierVersion": "1"})) as client:
        yield client


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "message"),
    [
        pytest.param(json.dumps({"Text": "x" * 10241}).encode(), JSON, 413, "DOCUMENT_SIZE_EXCEEDED",
                     "expected Text of at most 10240 bytes (UTF-8); found 10241", id="49-realtime-over-10-kb"),
        pytest.param(b'{"Text": "my parcel', JSON, 400, "INVALID_REQUEST",
                     'expected a JSON object {"Text": "..."}; found invalid JSON at character 9 '
                     "(JSON decode error: Unterminated string starting at)", id="50-realtime-malformed-json"),
        pytest.param(b"", JSON, 400, "INVALID_REQUEST", 'expected a JSON object {"Text": "..."}; found an empty body',
                     id="51-realtime-empty-body"),
        pytest.param(b'{"Text": "my parcel"}', {"Content-Type": "application/x-www-form-urlencoded"}, 400,
                     "INVALID_REQUEST",
                     'expected a JSON object {"Text": "..."}; found body: Input should be a valid dictionary or object to '
                     "extract fields from (Content-Type application/x-www-form-urlencoded: send Content-Type: "
                     "application/json)", id="52-realtime-not-json-content-type"),
        pytest.param(b'{"Text": "  \\n "}', JSON, 400, "EMPTY_DOCUMENT",
                     "expected a non-blank Text; found only whitespace", id="53-realtime-blank-text"),
        pytest.param(b'{"Text": "\xff\xfe"}', JSON, 400, "INVALID_REQUEST",
                     'expected a JSON object {"Text": "..."} in UTF-8; found a body that cannot be decoded as UTF-8 JSON '
                     "(There was an error parsing the body)", id="54-realtime-body-not-utf8"),
        pytest.param(b'{"text": "lower-case field"}', JSON, 400, "INVALID_REQUEST",
                     'expected a JSON object {"Text": "..."}; found body.Text: Field required',
                     id="55-realtime-missing-text"),
    ],
)
def test_realtime_bad_request_gets_a_4xx_json_error(app_client, body, headers, status, code, message):
    response = app_client.post("/classify-document", content=body, headers=headers)
    assert (response.status_code, response.json()) == (status, {"ErrorCode": code, "Message": message})
    # ... and the server goes on serving good requests.
    good = app_client.post("/classify-document", json={"Text": "my parcel never arrived"})
    assert good.status_code == 200 and len(good.json()["Classes"]) == 3


def test_no_catalogue_row_is_missing():
    """docs/errors.md and this file list the same row numbers."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = {int(line.split("|")[1]) for line in table.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    source = Path(__file__).read_text(encoding="utf-8")
    tested = {n for n in range(1, 100) if f'"{n:02d}-' in source or f"test_{n:02d}_" in source}
    assert documented == tested == set(range(1, 57))

"""`docclass classify` and `docclass jobs` end to end: the CLI, a real Prefect server, MLflow on
sqlite, S3 via moto. Two classifiers are trained once for the module."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from flows.demo_data import multi_class_rows, multi_label_rows, ticket, write_csv
from tests.conftest import DOCCLASS, run_docclass, use_home

LABELS = {"account", "billing", "refund", "shipping", "technical"}


@pytest.fixture(scope="module")
def trained_home(prefect_server, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("jobs") / "home"
    data = home.parent / "data"
    env = {"DOCCLASS_HOME": str(home), "PREFECT_API_URL": prefect_server, "MLFLOW_TRACKING_URI": ""}
    for name, mode, rows in (("tickets", "MULTI_CLASS", multi_class_rows(400)),
                             ("tickets-ml", "MULTI_LABEL", multi_label_rows(400))):
        path = write_csv(rows, data / f"{name}.csv")
        result = run_docclass("train", "--name", name, "--mode", mode, "--training-data", str(path), env=env)
        assert result.code == 0, result.stderr
    return home


@pytest.fixture
def home(trained_home, monkeypatch) -> Path:
    """The DOCCLASS_HOME of this module's tests (and of conftest's ``cli``): the trained one."""
    return use_home(monkeypatch, trained_home)


def predictions(archive: Path) -> list[dict]:
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.getnames() == ["predictions.jsonl"]
        raw = tar.extractfile("predictions.jsonl").read().decode("utf-8")
    assert raw.endswith("\n")
    return [json.loads(line) for line in raw.splitlines()]


def check_classes(record: dict) -> None:
    classes = record["Classes"]
    assert len(classes) == 3 and {c["Name"] for c in classes} <= LABELS
    scores = [c["Score"] for c in classes]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] and scores[0] <= 1


def test_prefix_with_mixed_line_endings_gives_exact_records(cli, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "doc1.txt").write_bytes(b"my parcel never arrived\r\n\r\nI was charged twice\r\n")
    (inputs / "doc2.txt").write_bytes(
        b"reset my password\rrefund please\xe2\x80\xa8 it is late\r\xff\xfe broken\rlast line without an end"
    )
    (inputs / "other.txt").write_bytes(b"not selected by the prefix\n")
    result = cli("classify", "--classifier", "tickets", "--input-uri", str(inputs / "doc"),
                 "--output-uri", str(tmp_path / "out"), "--job-name", "mixed")
    assert result.code == 0, result.stderr
    job = result.json()
    assert job["JobStatus"] == "COMPLETED" and job["JobName"] == "mixed" and len(job["JobId"]) == 32
    assert (job["NumberOfDocuments"], job["NumberOfDocumentErrors"]) == (7, 2)
    assert job["DocumentClassifierName"] == "tickets" and job["DocumentClassifierVersion"] == "1"
    archive = Path(job["OutputDataConfig"]["S3Uri"])
    assert archive == tmp_path / "out" / job["JobId"] / "output" / "output.tar.gz"
    records = predictions(archive)
    assert [(r["File"], r["Line"]) for r in records] == [
        ("doc1.txt", "0"), ("doc1.txt", "1"), ("doc1.txt", "2"),
        ("doc2.txt", "0"), ("doc2.txt", "1"), ("doc2.txt", "2"), ("doc2.txt", "3"),
    ]
    assert records[1] == {"File": "doc1.txt", "Line": "1", "ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}
    assert records[5]["ErrorCode"] == "INVALID_ENCODING"
    assert records[5]["ErrorMessage"].startswith("line is not valid UTF-8: invalid byte 0xff")
    for i in (0, 2, 3, 4, 6):
        assert list(records[i]) == ["File", "Line", "Classes"]
        check_classes(records[i])
    assert records[0]["Classes"][0]["Name"] == "shipping"
    assert records[2]["Classes"][0]["Name"] == "billing"

    described = cli("jobs", "describe", job["JobId"])
    assert described.code == 0 and described.json() == job


def test_one_doc_per_file_multi_label(cli, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("I was charged twice for my subscription this month.\n"
                                 "I would like a refund for the unused part of my plan.", encoding="utf-8")
    (docs / "b.txt").write_text("The app crashes every time I open the settings page.", encoding="utf-8")
    (docs / "c.txt").write_bytes(b"   \n")
    result = cli("classify", "--classifier", "tickets-ml@champion", "--input-uri", str(docs) + "/",
                 "--input-format", "ONE_DOC_PER_FILE", "--output-uri", str(tmp_path / "out"))
    assert result.code == 0, result.stderr
    records = predictions(Path(result.json()["OutputDataConfig"]["S3Uri"]))
    assert [r["File"] for r in records] == ["a.txt", "b.txt", "c.txt"]
    assert all("Line" not in r for r in records)
    assert records[2]["ErrorCode"] == "EMPTY_DOCUMENT"
    for record in records[:2]:
        labels = record["Labels"]
        scores = [label["Score"] for label in labels]
        assert scores == sorted(scores, reverse=True)
        assigned = [s for s in scores if s >= 0.5]
        assert len(labels) == max(3, len(assigned))  # every assigned label, topped up to 3
    assert {l["Name"] for l in records[0]["Labels"] if l["Score"] >= 0.5} >= {"billing", "refund"}
    assert records[1]["Labels"][0]["Name"] == "technical"


def test_whole_job_on_s3(cli, s3, tmp_path):
    fs = s3.filesystem()
    fs.mkdir("tickets")
    lines = [ticket(random.Random(i), ["shipping"]) for i in range(50)]
    fs.pipe("tickets/incoming/2026-11-20.txt", ("\n".join(lines) + "\n").encode())
    fs.pipe("tickets/incoming/2026-11-21.txt", ("\n".join(lines[:10])).encode())
    result = cli("classify", "--classifier", "tickets:1", "--input-uri", "s3://tickets/incoming/",
                 "--output-uri", "s3://tickets/results")
    assert result.code == 0, result.stderr
    job = result.json()
    assert job["NumberOfDocuments"] == 60 and job["NumberOfDocumentErrors"] == 0
    output = job["OutputDataConfig"]["S3Uri"]
    assert output == f"s3://tickets/results/{job['JobId']}/output/output.tar.gz"
    fs.invalidate_cache()
    fs.get(output.removeprefix("s3://"), str(tmp_path / "out.tar.gz"))
    records = predictions(tmp_path / "out.tar.gz")
    assert [(r["File"], r["Line"]) for r in records] == (
        [("2026-11-20.txt", str(i)) for i in range(50)] + [("2026-11-21.txt", str(i)) for i in range(10)]
    )
    assert sum(r["Classes"][0]["Name"] == "shipping" for r in records) >= 55


@pytest.mark.parametrize(
    ("classifier", "input_name", "message"),
    [
        ("nobody", "present.txt", "classifier 'nobody' not found in the registry"),
        ("tickets@nosuchalias", "present.txt", "classifier 'tickets' has no version with alias 'nosuchalias'"),
        ("tickets", "absent-prefix", "no input found: expected at least one file at this URI or prefix"),
    ],
)
def test_jobs_that_cannot_run_fail_with_a_message(cli, tmp_path, classifier, input_name, message):
    (tmp_path / "present.txt").write_text("hello\n", encoding="utf-8")
    result = cli("classify", "--classifier", classifier, "--input-uri", str(tmp_path / input_name),
                 "--output-uri", str(tmp_path / "out"))
    assert result.code == 1
    job = result.json()
    assert job["JobStatus"] == "FAILED"
    assert message in job["Message"]
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_jobs_list_filters_one_at_a_time(cli, tmp_path):
    (tmp_path / "in.txt").write_text("my parcel never arrived\n", encoding="utf-8")
    done = cli("classify", "--classifier", "tickets", "--input-uri", str(tmp_path / "in.txt"),
               "--output-uri", str(tmp_path / "out"), "--job-name", "listed-job")
    assert done.code == 0, done.stderr
    job_id = done.json()["JobId"]
    by_name = cli("jobs", "list", "--job-name", "listed-job").json()
    assert [j["JobId"] for j in by_name] == [job_id]
    completed = cli("jobs", "list", "--status", "COMPLETED").json()
    assert job_id in [j["JobId"] for j in completed] and all(j["JobStatus"] == "COMPLETED" for j in completed)
    assert job_id not in [j["JobId"] for j in cli("jobs", "list", "--status", "FAILED").json()]
    assert job_id in [j["JobId"] for j in cli("jobs", "list", "--submitted-before", "2999-01-01T00:00:00Z").json()]
    assert job_id not in [j["JobId"] for j in cli("jobs", "list", "--submitted-before", "2000-01-01T00:00:00Z").json()]
    assert job_id in [j["JobId"] for j in cli("jobs", "list", "--submitted-after", "2000-01-01T00:00:00Z").json()]
    assert cli("jobs", "list", "--submitted-after", "2999-01-01T00:00:00Z").json() == []
    two = cli("jobs", "list", "--job-name", "x", "--status", "FAILED")
    assert two.code == 2 and "not allowed with argument" in two.stderr
    missing = cli("jobs", "describe", "0" * 32)
    assert missing.code == 1 and f"no classification job with id {'0' * 32}" in missing.stderr


def test_a_stopped_job_ends_stopped_and_publishes_nothing(cli, tmp_path, trained_home, prefect_server):
    big = tmp_path / "big.txt"
    line = b"my parcel was delivered to the wrong address and nobody answers my emails\n"
    big.write_bytes(line * 1_500_000)
    env = {"DOCCLASS_HOME": str(trained_home), "PREFECT_API_URL": prefect_server}
    process = subprocess.Popen(
        [str(DOCCLASS), "classify", "--classifier", "tickets", "--input-uri", str(big),
         "--output-uri", str(tmp_path / "out"), "--job-name", "to-stop"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )
    try:
        job_id = None
        deadline = time.monotonic() + 120
        while job_id is None and time.monotonic() < deadline:
            running = [j for j in cli("jobs", "list", "--job-name", "to-stop").json() if j["JobStatus"] == "IN_PROGRESS"]
            job_id = running[0]["JobId"] if running else None
            time.sleep(0.5)
        assert job_id, "the job never showed IN_PROGRESS"
        stopped = cli("jobs", "stop", job_id)
        assert stopped.code == 0, stopped.stderr
        assert stopped.json()["JobStatus"] in ("STOP_REQUESTED", "STOPPED")
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1
    final = json.loads(out)
    assert final["JobStatus"] == "STOPPED"
    assert "stopped on request" in final["Message"]
    assert not list((tmp_path / "out").rglob("output.tar.gz*"))  # no partial output.tar.gz
    assert cli("jobs", "describe", job_id).json()["JobStatus"] == "STOPPED"


def test_a_job_on_two_workers_writes_exactly_what_one_worker_writes(cli, tmp_path, monkeypatch):
    """Three files, 5,500 lines: one shard in this process, or files cut into 20 kB shards
    classified by two processes, the same output bytes; the staging area is gone after."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    texts = [text for _, text in multi_class_rows(5500, seed=4)]
    for k, chunk in enumerate((texts[:2500], texts[2500:2600], texts[2600:])):
        (inputs / f"part-{k}.txt").write_text("\n".join(chunk) + "\n", encoding="utf-8")
    outputs = {}
    for workers in ("1", "2"):
        if workers == "2":
            monkeypatch.setenv("DOCCLASS_SHARD_BYTES", "20000")
            monkeypatch.setenv("DOCCLASS_PARALLEL_MIN_BYTES", "1")  # a pool, however small the job
        result = cli("classify", "--classifier", "tickets", "--input-uri", f"{inputs}/", "--output-uri",
                     str(tmp_path / f"out{workers}"), "--workers", workers)
        assert result.code == 0, result.stderr
        assert ("shard(s) of about 0.0 MB" in result.stderr) is (workers == "2")
        processes = set(re.findall(r"documents, \d+ errors, [\d.]+ s, in process (\d+)", result.stderr))
        assert len(processes) == int(workers)  # the pool's two processes each classified shards
        assert not list((tmp_path / f"out{workers}").rglob("staging"))
        assert result.json()["NumberOfDocuments"] == 5500
        with tarfile.open(result.json()["OutputDataConfig"]["S3Uri"], "r:gz") as tar:
            outputs[workers] = tar.extractfile("predictions.jsonl").read()
    assert outputs["2"] == outputs["1"]
    records = [json.loads(line) for line in outputs["2"].splitlines()]
    assert [(r["File"], r["Line"]) for r in records][2499:2502] == [("part-0.txt", "2499"), ("part-1.txt", "0"), ("part-1.txt", "1")]


def _input_lines(path: Path, count: int) -> Path:
    texts = [text for _, text in multi_class_rows(count, seed=12)]
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


def _start_job(source: Path, out: Path) -> subprocess.Popen:
    """`docclass classify` on one process, in its own process group (so a test can kill it whole)."""
    return subprocess.Popen(
        [str(DOCCLASS), "classify", "--classifier", "tickets", "--input-uri", str(source), "--output-uri", str(out),
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ), start_new_session=True,
    )


def _wait_for_shards(process: subprocess.Popen, out: Path, count: int) -> list[Path]:
    """The done marks in the job's staging area, once there are ``count`` of them."""
    deadline = time.monotonic() + 180
    while len(done := list(out.glob("*/staging/shard-*.json"))) < count:
        assert process.poll() is None and time.monotonic() < deadline, "the job ended before the test could act"
        time.sleep(0.05)
    return done


def test_a_killed_job_resumes_and_writes_what_an_uninterrupted_run_writes(cli, tmp_path, monkeypatch):
    """SIGKILL after a few of 16 shards; `jobs resume` classifies only the others; same bytes."""
    source = _input_lines(tmp_path / "in.txt", 48_000)
    reference = cli("classify", "--classifier", "tickets", "--input-uri", str(source), "--output-uri", str(tmp_path / "ref"))
    assert reference.code == 0, reference.stderr
    expected = predictions(Path(reference.json()["OutputDataConfig"]["S3Uri"]))

    monkeypatch.setenv("DOCCLASS_SHARD_BYTES", str(source.stat().st_size // 16 + 1))
    out = tmp_path / "out"
    process = _start_job(source, out)
    try:
        done = _wait_for_shards(process, out, 3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    job_id = done[0].parent.parent.name
    assert not list(out.rglob("output.tar.gz"))
    assert cli("jobs", "describe", job_id).json()["JobStatus"] == "IN_PROGRESS"  # nobody told the API
    marks = {path.name: path.stat().st_mtime_ns for path in out.glob("*/staging/shard-*.json")}

    resumed = cli("jobs", "resume", job_id)
    assert resumed.code == 0, resumed.stderr
    job = resumed.json()
    assert job["JobId"] == job_id and job["JobStatus"] == "COMPLETED" and job["NumberOfDocuments"] == 48_000
    assert resumed.stderr.count("already classified by an earlier run") == len(marks) >= 3
    assert "16/16 shards" in resumed.stderr
    assert predictions(out / job_id / "output" / "output.tar.gz") == expected  # nothing lost, nothing twice
    with tarfile.open(out / job_id / "output" / "output.tar.gz") as tar:
        with tarfile.open(reference.json()["OutputDataConfig"]["S3Uri"]) as ref:
            assert tar.extractfile("predictions.jsonl").read() == ref.extractfile("predictions.jsonl").read()
    assert not (out / job_id / "staging").exists()
    again = cli("jobs", "resume", job_id)
    assert again.code == 1 and "COMPLETED: its output is published; there is nothing to resume" in again.stderr


def test_a_running_job_is_not_resumed_twice(cli, tmp_path, monkeypatch):
    # 400 small shards, each its own task run: the job outlasts the resume command's start-up
    # even on a loaded machine (with 100, it once finished first under pytest -n 2).
    source = _input_lines(tmp_path / "in.txt", 150_000)
    monkeypatch.setenv("DOCCLASS_SHARD_BYTES", str(source.stat().st_size // 400 + 1))
    out = tmp_path / "out"
    process = _start_job(source, out)
    try:
        done = _wait_for_shards(process, out, 1)
        job_id = done[0].parent.parent.name
        refused = cli("jobs", "resume", job_id)
        assert refused.code == 1 and f"job {job_id} is still running (process " in refused.stderr
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_shards_on_a_dask_cluster_give_the_same_output(cli, tmp_path, monkeypatch):
    """A LocalCluster of two worker processes (what a real cluster's scheduler address gives)."""
    from distributed import Client, LocalCluster

    source = _input_lines(tmp_path / "in.txt", 6_000)
    local = cli("classify", "--classifier", "tickets", "--input-uri", str(source), "--output-uri", str(tmp_path / "local"))
    assert local.code == 0, local.stderr
    monkeypatch.setenv("DOCCLASS_SHARD_BYTES", str(source.stat().st_size // 6 + 1))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = cli("classify", "--classifier", "tickets", "--input-uri", str(source), "--output-uri",
                     str(tmp_path / "dask"), "--dask-address", cluster.scheduler_address)
        assert result.code == 0, result.stderr
        with Client(cluster) as client:
            ran_on = client.run(lambda: __import__("tasks.classification").classification._MODELS.keys().__len__())
    assert sorted(ran_on.values()) == [1, 1]  # both workers loaded the model: both classified shards
    assert "6/6 shards" in result.stderr
    assert predictions(Path(result.json()["OutputDataConfig"]["S3Uri"])) == \
        predictions(Path(local.json()["OutputDataConfig"]["S3Uri"]))

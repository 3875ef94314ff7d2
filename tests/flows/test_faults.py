"""Faults injected into real jobs: S3 going away mid-job, four jobs at once, an output location
that cannot be written. Every test checks every document came out exactly once.

Each test appends a line to the fault summary (printed at the end of the session with -rA and
written to $DOCCLASS_FAULT_SUMMARY when set), the figures of issue 8's closing note.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from flows.demo_data import multi_class_rows, write_csv
from tests.conftest import DOCCLASS, free_port, run_docclass, use_home

SUMMARY: list[dict] = []


@pytest.fixture(scope="module")
def trained_home(prefect_server, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("faults") / "home"
    path = write_csv(multi_class_rows(400), home.parent / "train.csv")
    env = {"DOCCLASS_HOME": str(home), "PREFECT_API_URL": prefect_server, "MLFLOW_TRACKING_URI": ""}
    result = run_docclass("train", "--name", "tickets", "--mode", "MULTI_CLASS", "--training-data", str(path), env=env)
    assert result.code == 0, result.stderr
    yield home
    if SUMMARY:
        lines = [json.dumps(row) for row in SUMMARY]
        print("\nfault summary:\n" + "\n".join(lines))
        if os.environ.get("DOCCLASS_FAULT_SUMMARY"):
            Path(os.environ["DOCCLASS_FAULT_SUMMARY"]).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def home(trained_home, monkeypatch) -> Path:
    """The DOCCLASS_HOME of this module's tests (and of conftest's ``cli``): the trained one."""
    return use_home(monkeypatch, trained_home)


def _lines(count: int, seed: int = 21) -> bytes:
    return ("\n".join(text for _, text in multi_class_rows(count, seed=seed)) + "\n").encode("utf-8")


def _predictions(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def _archive_predictions(path: Path) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getnames() == ["predictions.jsonl"]
        return tar.extractfile("predictions.jsonl").read()


def _lost_and_duplicated(records: list[dict], expected: list[tuple[str, str]]) -> tuple[int, int]:
    seen = [(r["File"], r["Line"]) for r in records]
    return len(set(expected) - set(seen)), len(seen) - len(set(seen))


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(DOCCLASS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), start_new_session=True)


def test_s3_stopped_mid_job_and_restarted_loses_and_duplicates_nothing(cli, tmp_path, monkeypatch):
    """moto's S3 server stops while shards are being classified and comes back 5 s later, with its
    data (as a real S3 would). The retries carry the job through; if they run out first, the job
    fails with a Message and `jobs resume` finishes it. Either way: the uninterrupted bytes."""
    from moto.server import ThreadedMotoServer

    import s3fs

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    try:
        fs.call_s3("create_bucket", Bucket="faults")
        data = _lines(30_000)
        fs.pipe("faults/in/docs.txt", data)
        (tmp_path / "docs.txt").write_bytes(data)
        reference = cli("classify", "--classifier", "tickets", "--input-uri", str(tmp_path / "docs.txt"),
                        "--output-uri", str(tmp_path / "ref"))
        assert reference.code == 0, reference.stderr
        expected = _archive_predictions(Path(reference.json()["OutputDataConfig"]["S3Uri"]))

        monkeypatch.setenv("DOCCLASS_SHARD_BYTES", str(len(data) // 12 + 1))
        process = _spawn("classify", "--classifier", "tickets", "--input-uri", "s3://faults/in/",
                         "--output-uri", "s3://faults/out", "--workers", "1")
        deadline = time.monotonic() + 180
        while True:
            fs.invalidate_cache()
            marks = [p for p in fs.find("faults/out") if p.endswith(".json") and "/staging/shard-" in p]
            if len(marks) >= 2:
                break
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() else ""
            time.sleep(0.2)
        server.stop()
        time.sleep(5)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        out, err = process.communicate(timeout=300)
        job = json.loads(out)
        outcome = "completed through retries"
        if job["JobStatus"] != "COMPLETED":
            assert job["JobStatus"] == "FAILED" and job["Message"], err
            resumed = cli("jobs", "resume", job["JobId"], "--force")
            assert resumed.code == 0, resumed.stderr
            job, outcome = resumed.json(), f"failed ({job['Message'][:80]}), then resumed"
        assert job["JobStatus"] == "COMPLETED" and job["NumberOfDocuments"] == 30_000
        fs.invalidate_cache()
        got = fs.cat(f"faults/out/{job['JobId']}/output/output.tar.gz")
        (tmp_path / "got.tar.gz").write_bytes(got)
        produced = _archive_predictions(tmp_path / "got.tar.gz")
        lost, duplicated = _lost_and_duplicated(_predictions(produced), [("docs.txt", str(i)) for i in range(30_000)])
        SUMMARY.append({"fault": "S3 server stopped 5 s mid-job", "outcome": outcome, "completed": 1,
                        "lost": lost, "duplicated": duplicated})
        assert produced == expected and lost == 0 and duplicated == 0
        assert not [p for p in fs.find("faults/out") if "/staging/" in p]
    finally:
        server.stop()


def test_four_concurrent_jobs_on_one_input_and_registry_all_complete_apart(cli, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_bytes(_lines(6_000, seed=1))
    (inputs / "b.txt").write_bytes(_lines(4_000, seed=2))
    processes = [_spawn("classify", "--classifier", "tickets", "--input-uri", f"{inputs}/", "--output-uri",
                        str(tmp_path / "out"), "--job-name", f"concurrent-{k}", "--workers", "1") for k in range(4)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [err[-2000:] for _, err in results]
    jobs = [json.loads(out) for out, _ in results]
    assert len({job["JobId"] for job in jobs}) == 4
    outputs = [_archive_predictions(Path(job["OutputDataConfig"]["S3Uri"])) for job in jobs]
    expected = [("a.txt", str(i)) for i in range(6_000)] + [("b.txt", str(i)) for i in range(4_000)]
    losses = [_lost_and_duplicated(_predictions(output), expected) for output in outputs]
    SUMMARY.append({"fault": "4 jobs at once, same input, registry and output root", "completed": 4,
                    "lost": sum(lost for lost, _ in losses), "duplicated": sum(dup for _, dup in losses)})
    assert outputs[1:] == outputs[:1] * 3 and losses == [(0, 0)] * 4
    assert all(job["NumberOfDocuments"] == 10_000 for job in jobs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(job["JobId"] for job in jobs)
    assert not list((tmp_path / "out").rglob("staging"))


@pytest.mark.parametrize("where", ["a path under a file", "an S3 bucket that does not exist"])
def test_an_unwritable_output_location_fails_the_job_with_a_message_and_publishes_nothing(cli, tmp_path, s3, where):
    (tmp_path / "docs.txt").write_bytes(_lines(500))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    output = str(blocker / "out") if where.startswith("a path") else "s3://no-such-bucket/out"
    result = cli("classify", "--classifier", "tickets", "--input-uri", str(tmp_path / "docs.txt"), "--output-uri", output)
    assert result.code == 1
    job = result.json()
    assert job["JobStatus"] == "FAILED"
    assert "cannot write" in job["Message"] and output.split("/out")[0] in job["Message"], job["Message"]
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "a file, not a folder\n"
    if where.startswith("an S3"):
        assert "no-such-bucket" not in {b["Name"] for b in s3.filesystem().call_s3("list_buckets")["Buckets"]}
    SUMMARY.append({"fault": f"output location not writable ({where})", "completed": 0, "outcome": "FAILED with Message",
                    "lost": 0, "duplicated": 0})


def test_an_unreachable_mlflow_fails_training_and_jobs_early_with_a_message(cli, tmp_path, monkeypatch):
    """The registry is a tracking server that is down: training ends IN_ERROR before any work,
    a job ends FAILED before reading any input; the message names the server (without the
    password in its URI), and nothing is registered or published."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ops:s3cret@127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # docclass's own retries (2, 4, 8 s) still run
    data = write_csv(multi_class_rows(200, seed=3), tmp_path / "train.csv")
    trained = cli("train", "--name", "unreachable", "--mode", "MULTI_CLASS", "--training-data", str(data))
    assert trained.code == 1
    describe = trained.json()
    assert describe["Status"] == "IN_ERROR"
    assert describe["Message"].startswith("cannot reach the MLflow registry at http://***@127.0.0.1:")
    assert "connection refused" in describe["Message"] and "MLFLOW_TRACKING_URI" in describe["Message"]
    assert "train-" not in trained.stderr  # failed before training started
    (tmp_path / "docs.txt").write_bytes(_lines(100))
    job = cli("classify", "--classifier", "tickets", "--input-uri", str(tmp_path / "docs.txt"),
              "--output-uri", str(tmp_path / "out"))
    assert job.code == 1 and job.json()["JobStatus"] == "FAILED"
    assert job.json()["Message"].startswith("cannot reach the MLflow registry")
    assert not (tmp_path / "out").exists()
    for result in (trained, job):
        assert "s3cret" not in result.stdout + result.stderr
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert "unreachable" not in [c["DocumentClassifierName"] for c in cli("classifiers", "list").json()]
    SUMMARY.append({"fault": "MLflow tracking server unreachable (training and a job)", "completed": 0,
                    "outcome": "IN_ERROR / FAILED with Message", "lost": 0, "duplicated": 0})

"""Real-time classification: `docclass serve` on a free loopback port, real HTTP requests;
`docclass classify-text`; answers identical to the batch job's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tarfile

import httpx
import psutil
import pytest

from flows.demo_data import multi_class_rows, multi_label_rows, write_csv
from tests.conftest import DOCCLASS, free_port, run_docclass, stop_process_group, wait_for_http

SERVERS: dict[str, subprocess.Popen] = {}  # classifier name -> its `docclass serve` process, while serving
TEXTS = ["my parcel was delivered to the wrong address", "I was charged twice for my subscription this month",
         "the app crashes every time I open the settings page", "I want my money back"]


@pytest.fixture(scope="module")
def env(prefect_server, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("realtime") / "home"
    env = {"DOCCLASS_HOME": str(home), "PREFECT_API_URL": prefect_server, "MLFLOW_TRACKING_URI": ""}
    for name, mode, rows in (("rt", "MULTI_CLASS", multi_class_rows(400)), ("rt-ml", "MULTI_LABEL", multi_label_rows(400))):
        result = run_docclass("train", "--name", name, "--mode", mode, "--training-data",
                              str(write_csv(rows, home.parent / f"{name}.csv")), env=env)
        assert result.code == 0, result.stderr
    return env


@pytest.fixture(scope="module", params=["rt", "rt-ml"])
def server(request, env):
    port = free_port()
    process = subprocess.Popen([str(DOCCLASS), "serve", "--classifier", request.param, "--port", str(port),
                                "--max-text-bytes", "10240", "--workers", "2"], env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/health", process, timeout=90)
    SERVERS[request.param] = process
    yield request.param, base
    stop_process_group(process, timeout=20)


def test_health_and_openapi(server):
    name, base = server
    health = httpx.get(f"{base}/health").json()
    assert health["DocumentClassifierName"] == name and health["DocumentClassifierVersion"] == "1"
    assert health["Mode"] == ("MULTI_LABEL" if name == "rt-ml" else "MULTI_CLASS") and health["Loaded"] is True
    assert "/classify-document" in httpx.get(f"{base}/openapi.json").json()["paths"]


def test_answers_match_the_batch_job(server, env, tmp_path):
    name, base = server
    answers = [httpx.post(f"{base}/classify-document", json={"Text": text}).json() for text in TEXTS]
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    job = run_docclass("classify", "--classifier", name, "--input-uri", str(tmp_path / "in.txt"),
                       "--output-uri", str(tmp_path / "out"), env=env)
    assert job.code == 0, job.stderr
    with tarfile.open(json.loads(job.stdout)["OutputDataConfig"]["S3Uri"], "r:gz") as tar:
        records = [json.loads(line) for line in tar.extractfile("predictions.jsonl").read().decode().splitlines()]
    key = "Labels" if name == "rt-ml" else "Classes"
    assert [{key: r[key]} for r in records] == answers
    cli = run_docclass("classify-text", "--classifier", name, TEXTS[0], env=env)
    assert cli.code == 0 and json.loads(cli.stdout) == answers[0]
    piped = run_docclass("classify-text", "--classifier", name, env=env, stdin=TEXTS[1])
    assert piped.code == 0 and json.loads(piped.stdout) == answers[1]


def _workers_with_scikit_learn_mapped(server_process) -> list[bool]:
    """For each serve worker process: whether it has scikit-learn's compiled modules mapped, i.e.
    imported scikit-learn."""
    workers = psutil.Process(server_process.pid).children(recursive=True)
    assert workers, "expected serve's worker processes"
    return [any("/sklearn/" in m.path for m in worker.memory_maps()) for worker in workers]


def test_explanations_are_the_same_over_http_the_cli_and_a_job(server, env, tmp_path):
    name, base = server
    served = httpx.post(f"{base}/classify-document", params={"explain": "true"}, json={"Text": TEXTS[1]}).json()
    assert served["Explanations"] and all(terms for terms in served["Explanations"].values())
    # Workers score and explain with the model's Scorer: none of them ever imports scikit-learn.
    assert not any(_workers_with_scikit_learn_mapped(SERVERS[name]))
    plain = httpx.post(f"{base}/classify-document", json={"Text": TEXTS[1]}).json()
    assert "Explanations" not in plain and {k: v for k, v in served.items() if k != "Explanations"} == plain
    cli = run_docclass("classify-text", "--classifier", name, "--explain", TEXTS[1], env=env)
    assert cli.code == 0 and json.loads(cli.stdout) == served
    (tmp_path / "in.txt").write_text(TEXTS[1] + "\n", encoding="utf-8")
    job = run_docclass("classify", "--explain", "--classifier", name, "--input-uri", str(tmp_path / "in.txt"),
                       "--output-uri", str(tmp_path / "out"), env=env)
    assert job.code == 0, job.stderr
    with tarfile.open(json.loads(job.stdout)["OutputDataConfig"]["S3Uri"], "r:gz") as tar:
        record = json.loads(tar.extractfile("predictions.jsonl").read().decode())
    assert record["Explanations"] == served["Explanations"]


def test_concurrent_requests_get_their_own_answers(server):
    """Requests arriving together are scored in one batch; each must still get its own answer."""
    _, base = server
    texts = [text for _, text in multi_class_rows(60, seed=11)]
    texts[7] = texts[31] = "   "  # blank ones in the middle of a batch get their own 400
    url = f"{base}/classify-document"

    def answer(response: httpx.Response) -> tuple[int, dict]:
        return response.status_code, response.json()

    alone = [answer(httpx.post(url, json={"Text": text})) for text in texts]

    async def together() -> list[tuple[int, dict]]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
            return [answer(r) for r in await asyncio.gather(*(client.post(url, json={"Text": t}) for t in texts))]

    assert asyncio.run(together()) == alone
    assert [status for status, _ in alone].count(400) == 2 and alone[7][1]["ErrorCode"] == "EMPTY_DOCUMENT"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (json.dumps({"Text": "x" * 10241}).encode(), 413, "DOCUMENT_SIZE_EXCEEDED", "at most 10240 bytes (UTF-8); found 10241"),
        (json.dumps({"Text": "é" * 5121}).encode(), 413, "DOCUMENT_SIZE_EXCEEDED", "found 10242"),
        (json.dumps({"Text": ""}).encode(), 400, "EMPTY_DOCUMENT", "expected a non-blank Text"),
        (json.dumps({"Text": "  \n "}).encode(), 400, "EMPTY_DOCUMENT", "expected a non-blank Text"),
        (b'{"Text": "unclosed', 400, "INVALID_REQUEST", "JSON decode error"),
        (json.dumps({"text": "wrong field"}).encode(), 400, "INVALID_REQUEST", "body.Text: Field required"),
        (json.dumps({"Text": 42}).encode(), 400, "INVALID_REQUEST", "body.Text"),
        (b'{"Text": "\xff\xfe bad bytes"}', 400, "INVALID_REQUEST", "expected a JSON object"),
    ],
)
def test_bad_requests_get_clear_4xx_json(server, body, status, code, message):
    _, base = server
    response = httpx.post(f"{base}/classify-document", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["ErrorCode"] == code
    assert message in response.json()["Message"]


def test_unknown_path_is_404_json(server):
    _, base = server
    response = httpx.get(f"{base}/nowhere")
    assert response.status_code == 404 and response.json()["ErrorCode"] == "NOT_FOUND"


def test_the_registered_pyfunc_serves_through_mlflow_models_serve(env):
    port = free_port()
    home = env["DOCCLASS_HOME"]
    # --env-manager local shells out to uvicorn: the venv's bin must be on PATH (see README)
    mlflow_env = {**os.environ, **env, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
                  "PATH": f"{DOCCLASS.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlflow_cli = str(DOCCLASS.with_name("mlflow"))
    process = subprocess.Popen([mlflow_cli, "models", "serve", "-m", "models:/rt@champion", "--env-manager", "local",
                                "-h", "127.0.0.1", "-p", str(port)], env=mlflow_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/ping", process, timeout=120)
        payload = {"dataframe_split": {"columns": ["Text"], "data": [[text] for text in TEXTS[:2]]}}
        served = httpx.post(f"{base}/invocations", json=payload, timeout=30)
        assert served.status_code == 200, served.text
        direct = run_docclass("classify-text", "--classifier", "rt", TEXTS[0], env=env)
        assert served.json()["predictions"][0] == json.loads(direct.stdout)
        assert served.json()["predictions"][1]["Classes"][0]["Name"] == "billing"
    finally:
        stop_process_group(process, timeout=20)

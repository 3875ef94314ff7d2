"""Real services for the tests, started on loopback: an S3 API (moto's server mode) and a
Prefect server; MLflow runs on a sqlite store under each test's own DOCCLASS_HOME."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
DOCCLASS = Path(sys.executable).with_name("docclass")

for key, value in {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}.items():
    os.environ.setdefault(key, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Waits until ``url`` answers 200; fails at once if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the process group a test started; SIGKILL if it is still there after ``timeout``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:  # already gone, children and all
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> str:
    """A local Prefect server on a free loopback port; stopped by process group at the end."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(home)}
    log = open(home / "server.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
         "--port", str(port), "--analytics-off"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_http(f"{url}/health", process, timeout=120)
        yield url
    finally:
        stop_process_group(process)
        log.close()


@dataclass
class S3:
    endpoint: str
    env: dict[str, str]

    def filesystem(self):
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        return s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": self.endpoint})


@pytest.fixture(scope="session")
def s3_server() -> S3:
    """moto's S3 HTTP API on a free loopback port, as s3fs's own test suite runs it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    yield S3(endpoint, env)
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch) -> S3:
    """An empty S3 (moto reset) with the AWS variables set for this process and children."""
    urllib.request.urlopen(urllib.request.Request(f"{s3_server.endpoint}/moto-api/reset", method="POST")).close()
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """This test's own DOCCLASS_HOME (so its own MLflow store), also for child processes."""
    return use_home(monkeypatch, tmp_path / "docclass-home")


def use_home(monkeypatch, path: Path) -> Path:
    """Makes ``path`` DOCCLASS_HOME, with its own MLflow store, for this test and its child processes."""
    monkeypatch.setenv("DOCCLASS_HOME", str(path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_docclass(*args: str, env: dict[str, str] | None = None, timeout: float = 300, stdin: str | None = None) -> Result:
    """Runs the installed ``docclass`` console script, as a user would."""
    done = subprocess.run(
        [str(DOCCLASS), *args], capture_output=True, text=True, timeout=timeout, input=stdin,
        env={**os.environ, **(env or {})},
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(home, prefect_server, monkeypatch):
    """``docclass`` against the session's Prefect server, with this test's DOCCLASS_HOME."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    return run_docclass


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"../shared/data/{name} is absent (benchmarks and slow tests read the shared datasets)")
    return path

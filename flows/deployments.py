"""Deployments on one machine: `docclass server`, and submitting jobs to it (`classify --no-wait`).

`docclass server` runs the steps deployments/README.md lists, so that a run triggered from the
Prefect UI, `prefect deployment run` or `docclass classify --no-wait` actually executes:
a Prefect server on loopback, the process work pool ``docclass``, the deployments of
deployments/prefect.yaml, and a worker polling the pool. It stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from classifier_core.errors import DocclassError
from tasks.settings import default_output_uri, docclass_home

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "deployments" / "prefect.yaml"
WORK_POOL = "docclass"
CLASSIFY_DEPLOYMENT = "start_document_classification_job/classify"
STARTUP_TIMEOUT_SECONDS = 120


class ServerError(DocclassError):
    """The local Prefect server, the deployments or the worker could not be started."""


def submit_classification_job(request) -> str:
    """Creates a run of the ``classify`` deployment and returns its job id at once.

    Raises:
        ServerError: without PREFECT_API_URL, or if the deployment is not on that server.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        raise ServerError("--no-wait submits to a running server: start `docclass server` and export the "
                          "PREFECT_API_URL it prints; found PREFECT_API_URL unset")
    tags = [f"{tag.Key}={tag.Value}" for tag in request.Tags]
    try:
        flow_run = run_deployment(CLASSIFY_DEPLOYMENT, parameters={"request": request.model_dump(mode="json")},
                                  timeout=0, tags=tags or None)
    except ObjectNotFound:
        raise ServerError(f"expected the deployment {CLASSIFY_DEPLOYMENT} on {api}; found none: start `docclass "
                          "server`, which applies deployments/prefect.yaml") from None
    _warn_without_worker()
    return flow_run.id.hex


def _warn_without_worker() -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        workers = client.read_workers_for_work_pool(WORK_POOL)
    if not any(worker.status.value == "ONLINE" for worker in workers):
        print(f"docclass: warning: no worker is polling the pool {WORK_POOL!r}; the job stays SUBMITTED until one "
              "starts (`docclass server` runs one)", file=sys.stderr)


def server_environment(host: str, port: int, schedules: bool) -> dict[str, str]:
    """The environment of the server, the deployment step and the worker (and so of every flow run)."""
    home = docclass_home()
    env = dict(os.environ)
    env.update(
        DOCCLASS_HOME=str(home),
        PREFECT_API_URL=f"http://{host}:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DOCCLASS_SCHEDULES_ACTIVE="true" if schedules else "false",
    )
    env.setdefault("PREFECT_HOME", str(home / "prefect"))
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")  # pick up a submitted run in ~2 s, not ~10 s
    env.setdefault("DOCCLASS_SCHEDULED_CLASSIFIER", "support-tickets")
    env.setdefault("DOCCLASS_TRAINING_URI", str(home / "training") + "/")
    env.setdefault("DOCCLASS_INCOMING_URI", str(home / "incoming") + "/")
    env.setdefault("DOCCLASS_OUTPUT_URI", default_output_uri())
    return env


def run_server(host: str, port: int, schedules: bool) -> int:
    """Starts server, pool, deployments and worker; returns when interrupted or a child dies."""
    if not PREFECT_FILE.is_file():
        raise ServerError(f"expected {PREFECT_FILE} (docclass server runs from a checkout of the repository); found none")
    env = server_environment(host, port, schedules)
    logs = Path(env["PREFECT_HOME"])
    logs.mkdir(parents=True, exist_ok=True)
    prefect = [str(Path(sys.executable).with_name("prefect"))]
    children: list[subprocess.Popen] = []
    stop = _install_stop_handlers()
    try:
        _log(f"starting the Prefect server on http://{host}:{port} (state and logs in {logs})")
        children.append(_start([*prefect, "server", "start", "--host", host, "--port", str(port), "--analytics-off"],
                               env, logs / "server.log"))
        _wait_healthy(env["PREFECT_API_URL"], children[0], logs / "server.log")
        _run([*prefect, "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
        _log(f"applying {PREFECT_FILE.relative_to(REPO)}")
        _run([*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)], env)
        children.append(_start([*prefect, "worker", "start", "--pool", WORK_POOL, "--type", "process"],
                               env, logs / "worker.log"))
        _log(f"ready: UI http://{host}:{port}, worker on pool {WORK_POOL!r}, schedules "
             f"{'active' if schedules else 'paused (--schedules to activate)'}\n"
             f"  export PREFECT_API_URL={env['PREFECT_API_URL']} DOCCLASS_HOME={env['DOCCLASS_HOME']}\n"
             "  then: docclass classify --no-wait ..., prefect deployment run start_document_classification_job/classify")
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.5)
        died = [child.args[1:3] for child in children if child.poll() is not None]
        if died and not stop:
            raise ServerError(f"a child process exited unexpectedly: {' '.join(died[0])}")
        return 0
    finally:
        _stop(children)


def _install_stop_handlers() -> list[int]:
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return received


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def _wait_healthy(api_url: str, process: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise ServerError(f"the Prefect server exited with code {process.returncode}; the end of {log}:\n"
                              + "\n".join(tail))
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServerError(f"the Prefect server did not answer {api_url}/health within {STARTUP_TIMEOUT_SECONDS} s")


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerError(f"`{' '.join(command[1:4])} ...` failed (exit {result.returncode}):\n"
                          f"{(result.stdout + result.stderr).strip()[-2000:]}")


def _stop(children: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a Prefect worker can ignore SIGTERM for a while."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 10
    for child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _log(message: str) -> None:
    print(f"docclass: {message}", file=sys.stderr, flush=True)

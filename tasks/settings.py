"""Where docclass keeps its state, read from the environment when asked (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

TELEMETRY_OFF = {
    # Prefect's server and client, and MLflow, call home; many users (and CI) are offline.
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def docclass_home() -> Path:
    """``$DOCCLASS_HOME``, by default ``~/.docclass``."""
    return Path(os.environ.get("DOCCLASS_HOME") or "~/.docclass").expanduser().resolve()


def default_output_uri() -> str:
    return str(docclass_home() / "output")


def work_dir(job_id: str) -> Path:
    """A job's private scratch directory."""
    path = docclass_home() / "work" / job_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def apply_environment_defaults() -> None:
    """Telemetry off and a patient ephemeral Prefect server, unless the user chose otherwise."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    # The temporary server can take longer than Prefect's 20 s default on a busy 2-core box.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    # MLflow's client retries a refused connection 7 times over minutes, under docclass's own
    # retries (tasks.retry): an unreachable registry would hold a job for ten minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

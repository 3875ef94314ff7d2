"""What the benchmark scripts share: a free loopback port and one Prefect server for every run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(env: dict, home: Path) -> Iterator[None]:
    """One Prefect server for every run inside, stopped at the end; sets PREFECT_API_URL in env."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                                "--analytics-off"], env={**env, "PREFECT_HOME": str(home / "prefect")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        env["PREFECT_API_URL"] = _wait_for_health(port)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()


def _wait_for_health(port: int) -> str:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as response:
                if response.status == 200:
                    return f"http://127.0.0.1:{port}/api"
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the Prefect server did not start")

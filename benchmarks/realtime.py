"""Real-time throughput and latency of `docclass serve`, against Comprehend's 20 docs/s endpoint.

Trains a classifier on ../shared/data/sms_spam in a temporary DOCCLASS_HOME, serves it with 1 and
2 worker processes on loopback, and loads it with wrk (a C load generator, `apt-get install wrk`;
`make bench-realtime` installs it) from a second process at concurrency 1, 16 and 64, cycling
through the real SMS texts of sms_spam/test.csv. Prints a table.

    .venv/bin/python benchmarks/realtime.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sms_spam"
BIN = Path(sys.executable).parent
COMPREHEND_DOCS_PER_SECOND = 20  # 10 inference units x 2 docs/s, the most one endpoint serves

# wrk script: POST each text in turn; at the end print one JSON line with the counts and latencies.
WRK_SCRIPT = """
bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
               + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests": %%d, "errors": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, errors, summary.duration / 1e6, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk_script(texts: list[str], path: Path) -> Path:
    bodies = ", ".join(f"[==[{json.dumps({'Text': text})}]==]" for text in texts)
    path.write_text(WRK_SCRIPT % bodies, encoding="utf-8")
    return path


def _load(url: str, script: Path, concurrency: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), url],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.split("RESULT ", 1)[1])
    return {"requests": result["requests"], "errors": result["errors"],
            "docs_per_s": result["requests"] / result["seconds"],
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([str(BIN / "docclass"), "serve", "--classifier", "sms-spam", "--port", str(port),
                                "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    import httpx

    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/classify-document"
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="load duration per row (default 10)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmarks need ../shared/data (not found: {DATA})")
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk (make bench-realtime does)")
    with open(DATA / "test.csv", encoding="utf-8", newline="") as fp:
        texts = [text for _, text in csv.reader(fp)]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DOCCLASS_HOME": home, "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([str(BIN / "docclass"), "train", "--name", "sms-spam", "--mode", "MULTI_CLASS",
                        "--training-data", str(DATA / "train.csv")], env=env, check=True, capture_output=True)
        script = _wrk_script(texts, Path(home) / "post.lua")
        rows = []
        for workers in (1, 2):
            process, url = _serve(env, workers)
            try:
                for concurrency in (1, 16, 64):
                    rows.append((workers, concurrency, _load(url, script, concurrency, args.seconds)))
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    mean_chars = statistics.mean(len(t) for t in texts)
    print(f"docclass serve, sms_spam model, {len(texts)} SMS texts in turn (mean {mean_chars:.0f} chars), "
          f"{args.seconds} s per row, {os.cpu_count()} cores shared with the load generator (wrk, 1 thread)\n")
    print("| workers | concurrency | requests | errors | docs/s | p50 ms | p99 ms | x Comprehend (20 docs/s) |")
    print("|---|---|---|---|---|---|---|---|")
    for workers, concurrency, r in rows:
        print(f"| {workers} | {concurrency} | {r['requests']} | {r['errors']} | {r['docs_per_s']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['docs_per_s'] / COMPREHEND_DOCS_PER_SECOND:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

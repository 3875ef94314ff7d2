"""Real-time throughput and latency of `docclass serve`, against Comprehend's 20 docs/s endpoint.

Trains a classifier on ../shared/data/sms_spam in a temporary DOCCLASS_HOME, serves it with 1 and
2 worker processes on loopback, and loads it from a second process (an async httpx client) at
concurrency 1, 16 and 64 with short documents (SMS texts). Prints a table.

    .venv/bin/python benchmarks/realtime.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
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


async def _load(url: str, texts: list[str], concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(url, json={"Text": texts[i % len(texts)]})
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200
                i += concurrency
        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "docs_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


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
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per row (default 10)")
    parser.add_argument("--load", nargs=3, metavar=("URL", "CONCURRENCY", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    with open(DATA / "test.csv", encoding="utf-8", newline="") as fp:
        texts = [text for _, text in csv.reader(fp)]
    if args.load:  # the load generator, in its own process
        url, concurrency, seconds = args.load
        print(json.dumps(asyncio.run(_load(url, texts, int(concurrency), float(seconds)))))
        return 0
    if not DATA.is_dir():
        sys.exit(f"benchmarks need ../shared/data (not found: {DATA})")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DOCCLASS_HOME": home, "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([str(BIN / "docclass"), "train", "--name", "sms-spam", "--mode", "MULTI_CLASS",
                        "--training-data", str(DATA / "train.csv")], env=env, check=True, capture_output=True)
        rows = []
        for workers in (1, 2):
            process, url = _serve(env, workers)
            try:
                for concurrency in (1, 16, 64):
                    out = subprocess.run([sys.executable, __file__, "--load", url, str(concurrency), str(args.seconds)],
                                         check=True, capture_output=True, text=True)
                    rows.append((workers, concurrency, json.loads(out.stdout)))
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    mean_chars = statistics.mean(len(t) for t in texts)
    print(f"docclass serve, sms_spam model, SMS texts (mean {mean_chars:.0f} chars), {args.seconds:.0f} s per row, "
          f"{os.cpu_count()} cores, load from a second process (async httpx)\n")
    print("| workers | concurrency | requests | errors | docs/s | p50 ms | p99 ms | x Comprehend (20 docs/s) |")
    print("|---|---|---|---|---|---|---|---|")
    for workers, concurrency, r in rows:
        print(f"| {workers} | {concurrency} | {r['requests']} | {r['errors']} | {r['docs_per_s']:.0f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['docs_per_s'] / COMPREHEND_DOCS_PER_SECOND:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

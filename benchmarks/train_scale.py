"""Training at scale: `docclass train` end to end on 100k and 1M documents; time, peak memory, accuracy.

Data. The 7,600 AG News texts of ../shared/data/ag_news/test.csv (4 classes, mean 235 bytes) are
split once, seeded: 400 texts per class (1,600) are the test set, passed as `--test-data` and never
copied into training, so the accuracy is measured on texts the model never saw. The other 6,000
are the training pool, written out cyclically, in a seeded shuffled order per copy, up to the
size asked for. The first copy is verbatim; in every later copy each word is dropped with
probability `--dropout` (0.1), so the rows are distinct texts: the vocabulary grows with the size
(new word pairs) as real data's would, if less, and no copy is an exact duplicate. AG News is the
only source because the issue sizes the problem on AG-News-length documents; mixing in other
datasets would change the task and the mean length. `--dropout 0` gives pure replication.

Runs. One Prefect server (started here) serves every run, so no run pays for a temporary one.
Each `docclass train --mode MULTI_CLASS --training-data train-N.csv --test-data test.csv` runs as a
child process in a temporary DOCCLASS_HOME (MLflow on sqlite). Wall time includes Python start-up,
reading and validating the CSV, the parquet handoff, training, evaluation and MLflow logging.
Peak RSS is /usr/bin/time -v's maximum resident set size of the child. A sampler reads the
child's RSS every 0.5 s: it gives each task's peak (from the Prefect log's task end times) and
kills the run once it passes `--limit-mb` (12 GB), which the table then reports as killed.
The path used (in memory or out of core) is read from the train task's log line "chose ...".

`--compare-at N` also fits the out-of-core path on the size-N set in a child process with
`TextClassifier(out_of_core_threshold=0)` (no Prefect, no MLflow), scored on the same test set,
so the two paths are compared on the same data. `--in-memory-at N` likewise forces the in-memory
path on the size-N set (to see what it would take, under the same RSS limit).

    .venv/bin/python benchmarks/train_scale.py [--sizes 100000,1000000] [--dropout 0.1]
        [--compare-at 100000] [--in-memory-at N] [--fast] [--limit-mb 12000] [--keep DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _harness import prefect_server  # benchmarks/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
TEST_PER_CLASS = 400
SEED = 0
SAMPLE_SECONDS = 0.5
PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024
csv.field_size_limit(1 << 30)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rows(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as fp:
        return [(label, text) for label, text in csv.reader(fp)]


def split_rows(rows: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training pool, test): TEST_PER_CLASS seeded texts per class are the test set."""
    rng = random.Random(SEED)
    by_class: dict[str, list[int]] = {}
    for i, (label, _) in enumerate(rows):
        by_class.setdefault(label, []).append(i)
    test = {i for members in by_class.values() for i in rng.sample(members, min(TEST_PER_CLASS, len(members) // 2))}
    return [row for i, row in enumerate(rows) if i not in test], [row for i, row in enumerate(rows) if i in test]


def write_training(pool: list[tuple[str, str]], size: int, dropout: float, path: Path) -> Path:
    """``size`` rows from the pool, copy after copy (see the module docstring)."""
    rng = random.Random(SEED)
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp, lineterminator="\n")
        copy = 0
        while written < size:
            order = list(range(len(pool)))
            rng.shuffle(order)
            for i in order[: size - written]:
                label, text = pool[i]
                if copy and dropout:
                    words = text.split(" ")
                    kept = [w for w in words if rng.random() >= dropout]
                    text = " ".join(kept or words[:1])
                writer.writerow((label, text))
            written += min(len(order), size - written)
            copy += 1
    return path


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


class Sampler(threading.Thread):
    """Samples a process tree's RSS; kills the process group above ``limit_mb``."""

    def __init__(self, process: subprocess.Popen, limit_mb: float):
        super().__init__(daemon=True)
        self.process, self.limit_mb = process, limit_mb
        self.samples: list[tuple[float, float]] = []
        self.killed = False

    def run(self) -> None:
        while self.process.poll() is None:
            rss = _tree_rss_mb(self.process.pid)
            self.samples.append((time.time(), rss))
            if rss > self.limit_mb and not self.killed:
                self.killed = True
                _log(f"  RSS {rss:.0f} MB > {self.limit_mb:.0f} MB: killing the run")
                os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(SAMPLE_SECONDS)


def measured(command: list[str], env: dict, work: Path, limit_mb: float) -> dict:
    """Runs command in its own process group; wall s, peak RSS MB, samples, stdout, stderr."""
    rss_file = work / "time.txt"
    started = time.time()
    with open(work / "stdout.txt", "w") as out, open(work / "stderr.txt", "w") as err:
        process = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(rss_file), *command], env=env, stdout=out,
                                   stderr=err, start_new_session=True)
        sampler = Sampler(process, limit_mb)
        sampler.start()
        process.wait()
        sampler.join()
    seconds = time.time() - started
    report = rss_file.read_text() if rss_file.is_file() else ""
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    peak = int(found.group(1)) / 1024 if found else max((rss for _, rss in sampler.samples), default=float("nan"))
    tree = max((rss for _, rss in sampler.samples), default=float("nan"))
    return {"seconds": seconds, "peak_rss_mb": peak, "peak_tree_mb": tree, "returncode": process.returncode,
            "killed": sampler.killed, "samples": sampler.samples, "started": started,
            "stdout": (work / "stdout.txt").read_text(), "stderr": (work / "stderr.txt").read_text()}


_LOG_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \| \w+\s*\| Task run '([^']+)' - (.*)$")


def phase_peaks(run: dict) -> dict[str, float]:
    """Peak tree RSS per task: samples up to a task's 'Finished' log line belong to it."""
    day = dt.datetime.fromtimestamp(run["started"]).date()
    ends: list[tuple[float, str]] = []
    for line in run["stderr"].splitlines():
        match = _LOG_LINE.match(line)
        if match and match.group(6).startswith("Finished in state"):
            h, m, s, ms, name = int(match[1]), int(match[2]), int(match[3]), int(match[4]), match[5]
            when = dt.datetime.combine(day, dt.time(h, m, s, ms * 1000)).timestamp()
            ends.append((when, re.sub(r"-[0-9a-f]{3}$", "", name)))
    peaks: dict[str, float] = {}
    for when, rss in run["samples"]:
        last = "until killed" if run["killed"] else "after the tasks"
        phase = next((name for end, name in ends if when <= end), last)
        peaks[phase] = max(peaks.get(phase, 0.0), rss)
    return peaks


def train_run(size: int, train_csv: Path, test_csv: Path, env: dict, work: Path, fast: bool, limit_mb: float) -> dict:
    command = [str(BIN / "docclass"), "train", "--name", f"scale-{size}", "--mode", "MULTI_CLASS",
               "--training-data", str(train_csv), "--test-data", str(test_csv)] + (["--fast"] if fast else [])
    run = measured(command, env, work, limit_mb)
    chose = re.findall(r"chose (.*) in ([\d.]+) s", run["stderr"])
    result = {"documents": size, "seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
              "peak_tree_mb": run["peak_tree_mb"], "killed": run["killed"], "returncode": run["returncode"],
              "accuracy": None, "path": chose[-1][0] if chose else None,
              "fit_seconds": float(chose[-1][1]) if chose else None,
              "phase_peaks_mb": phase_peaks(run)}
    if run["returncode"] == 0:
        describe = json.loads(run["stdout"])
        result["accuracy"] = describe["ClassifierMetadata"]["EvaluationMetrics"]["Accuracy"]
        result["trained_documents"] = describe["ClassifierMetadata"]["NumberOfTrainedDocuments"]
    else:
        result["error"] = run["stderr"][-2000:]
    return result


_IN_PROCESS = """
import csv, json, sys, time
sys.path.insert(0, sys.argv[1])
from classifier_core.config import Mode
from classifier_core.model import TextClassifier
csv.field_size_limit(1 << 30)
rows = list(csv.reader(open(sys.argv[2], encoding="utf-8", newline="")))
test = list(csv.reader(open(sys.argv[3], encoding="utf-8", newline="")))
started = time.time()
model = TextClassifier(Mode.MULTI_CLASS, search=sys.argv[4] != "fast", out_of_core_threshold=int(sys.argv[5]))
model.fit([t for _, t in rows], [(label,) for label, _ in rows])
fit = time.time() - started
scores = model.predict_scores([t for _, t in test])
accuracy = sum(model.labels_[i] == label for i, (label, _) in zip(scores.argmax(axis=1), test)) / len(test)
print(json.dumps({"fit_seconds": fit, "accuracy": accuracy, "path": model.config_.describe()}))
"""


def in_process_run(size: int, train_csv: Path, test_csv: Path, env: dict, work: Path, fast: bool,
                   limit_mb: float, threshold: int) -> dict:
    """Fits ``TextClassifier(out_of_core_threshold=threshold)`` in a child process, no Prefect or MLflow."""
    command = [sys.executable, "-c", _IN_PROCESS, str(REPO), str(train_csv), str(test_csv),
               "fast" if fast else "search", str(threshold)]
    run = measured(command, env, work, limit_mb)
    result = {"documents": size, "seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
              "peak_tree_mb": run["peak_tree_mb"], "killed": run["killed"], "returncode": run["returncode"],
              "accuracy": None, "path": None}
    if run["returncode"] == 0:
        fitted = json.loads(run["stdout"].strip().splitlines()[-1])
        result.update(accuracy=fitted["accuracy"], path=fitted["path"], fit_seconds=fitted["fit_seconds"])
    else:
        result["error"] = run["stderr"][-2000:]
    return result


def print_table(results: list[dict]) -> None:
    print(f"`docclass train` on AG News replicas ({os.cpu_count()} cores; test: {4 * TEST_PER_CLASS} distinct "
          f"AG News texts never in training).\n")
    print("| run | documents | wall s | fit s | peak RSS MB | peak RSS MB, with child processes | test accuracy "
          "| path |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        accuracy = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else (
            "killed" if r["killed"] else f"failed (exit {r['returncode']})")
        fit = f"{r['fit_seconds']:.0f}" if r.get("fit_seconds") is not None else "-"
        print(f"| {r['run']} | {r['documents']:,} | {r['seconds']:.0f} | {fit} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_tree_mb']:.0f} | "
              f"{accuracy} | {r['path'] or '-'} |")
    print()
    for r in results:
        if r.get("phase_peaks_mb"):
            phases = ", ".join(f"{name} {mb:.0f}" for name, mb in r["phase_peaks_mb"].items())
            print(f"- {r['run']} {r['documents']:,}: peak RSS MB by task: {phases}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="training set sizes (rows)")
    parser.add_argument("--dropout", type=float, default=0.1, help="word dropout in every copy after the first")
    parser.add_argument("--compare-at", type=int, default=100_000, metavar="N",
                        help="also fit the out-of-core path on the N-row set in-process (0: skip)")
    parser.add_argument("--in-memory-at", type=int, default=0, metavar="N",
                        help="also fit the in-memory path on the N-row set in-process (0: skip)")
    parser.add_argument("--fast", action="store_true", help="pass --fast (no model search)")
    parser.add_argument("--limit-mb", type=float, default=12_000, help="kill a run whose RSS passes this")
    parser.add_argument("--keep", type=Path, help="write the data and state here and keep them")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmarks need ../shared/data (not found: {DATA})")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="docclass-train-scale-") as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        pool, test = split_rows(_rows(DATA / "ag_news" / "test.csv"))
        test_csv = home / "test.csv"
        with open(test_csv, "w", encoding="utf-8", newline="") as fp:
            csv.writer(fp, lineterminator="\n").writerows(test)
        env = {**os.environ, "DOCCLASS_HOME": str(home / "home"), "DO_NOT_TRACK": "true",
               "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        with prefect_server(env, home):
            for size in sizes:
                train_csv = write_training(pool, size, args.dropout, home / f"train-{size}.csv")
                _log(f"{size:,} rows: {train_csv.stat().st_size / 1e6:.0f} MB; docclass train ...")
                work = home / f"run-{size}"
                work.mkdir(exist_ok=True)
                result = {"run": "docclass train", **train_run(size, train_csv, test_csv, env, work, args.fast,
                                                               args.limit_mb)}
                results.append(result)
                _log(f"  {result['seconds']:.0f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                     f"accuracy {result['accuracy']}, {result['path']}")
                forced = [("out of core forced", 0)] if size == args.compare_at else []
                forced += [("in memory forced", 10**15)] if size == args.in_memory_at else []
                for name, threshold in forced:
                    _log(f"{size:,} rows: {name}, fit in-process ...")
                    work = home / f"{threshold}-{size}"
                    work.mkdir(exist_ok=True)
                    result = {"run": f"{name}, in-process", **in_process_run(
                        size, train_csv, test_csv, env, work, args.fast, args.limit_mb, threshold)}
                    results.append(result)
                    _log(f"  {result['seconds']:.0f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                         f"accuracy {result['accuracy']}")
                if not args.keep:
                    train_csv.unlink()
    print_table(results)
    sys.stdout.flush()
    _log(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"dropout": args.dropout, "fast": args.fast, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

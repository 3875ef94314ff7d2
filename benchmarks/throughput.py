"""Classification job throughput and peak memory, end to end through the CLI, against fastText's predict.

Builds ONE_DOC_PER_LINE inputs of 10k, 100k and 1M lines by cycling through the 7,600 AG News texts
of ../shared/data/ag_news/test.csv, and a ONE_DOC_PER_FILE folder of long documents (one
20newsgroups test.csv text per file). Trains docclass (`docclass train --fast`) in a temporary
DOCCLASS_HOME on ag_news/test.csv, the only AG News split (fine for speed; the scores mean nothing),
and on 20newsgroups/train.csv.gz. Then, per input, runs `docclass classify` on the local file or
folder as a child process (wall time includes Python start-up, model loading and writing
output.tar.gz; peak RSS via /usr/bin/time -v) and, in this process, fastText 0.9.2's predict on the
same documents (bigrams, 5 epochs, dim 100, lr 0.5, 2 threads, trained on the same CSV): its time
covers reading the input file(s), splitting lines and predicting in batches of 10,000, not
training or loading. One Prefect server serves every job, so no job pays for a temporary one.
Prints a markdown table and whether the goals are met; progress (each job's time) goes to stderr.
fastText is a benchmark-only dependency (`make bench-throughput` installs the `bench` extra).

    .venv/bin/python benchmarks/throughput.py [--sizes 10000,100000,1000000] [--long-docs 2000]
                                              [--skip-long] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import prefect_server  # benchmarks/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
FASTTEXT_PARAMS = {"lr": 0.5, "wordNgrams": 2, "epoch": 5, "dim": 100, "thread": 2, "seed": 0, "verbose": 0}
PREDICT_BATCH = 10_000
GOAL_RATIO, GOAL_RSS_GROWTH, GOAL_RSS_MB = 1.0, 1.5, 1024
csv.field_size_limit(1 << 30)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _rows(path: Path) -> list[tuple[str, str]]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", newline="") as fp:
        return [(label, text) for label, text in csv.reader(fp)]


def _write_lines(texts: list[str], count: int, path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="\n") as fp:
        fp.writelines(_one_line(text) + "\n" for text in itertools.islice(itertools.cycle(texts), count))
    return path


def _write_files(texts: list[str], count: int, folder: Path) -> Path:
    folder.mkdir()
    for i, text in enumerate(itertools.islice(itertools.cycle(texts), count)):
        (folder / f"doc{i:06d}.txt").write_text(text, encoding="utf-8")
    return folder


def _measured(command: list[str], env: dict, rss_file: Path) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Runs command; returns (wall s, peak RSS MB of its largest process, peak RSS MB of all its
    processes together, sampled every 0.1 s, the result)."""
    import psutil  # distributed's dependency

    if Path("/usr/bin/time").is_file():
        wrapped = ["/usr/bin/time", "-v", "-o", str(rss_file), *command]
    else:  # own process: RUSAGE_CHILDREN then covers this one command only
        wrapped = [sys.executable, "-c", "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
                   "open(sys.argv[1], 'w').write('Maximum resident set size (kbytes): %d' % "
                   "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)", str(rss_file), *command]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(wrapped, env=env, stdout=out, stderr=err, text=True)
        tree_peak, parent = 0, psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                tree_peak = max(tree_peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        result = subprocess.CompletedProcess(wrapped, process.returncode, out.read(), err.read())
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rss_file.read_text())
    return seconds, int(found.group(1)) / 1024 if found else float("nan"), tree_peak / 2**20, result


def _train_docclass(env: dict, name: str, training_csv: Path) -> None:
    start = time.perf_counter()
    subprocess.run([str(BIN / "docclass"), "train", "--name", name, "--mode", "MULTI_CLASS", "--training-data",
                    str(training_csv), "--fast"], env=env, check=True, capture_output=True)
    _log(f"docclass train {name} --fast: {time.perf_counter() - start:.1f} s")


def _train_fasttext(rows: list[tuple[str, str]], path: Path):
    import fasttext

    tags = {label: "__label__" + re.sub(r"\s", "_", label) for label in {label for label, _ in rows}}
    with open(path, "w", encoding="utf-8", newline="\n") as fp:
        fp.writelines(f"{tags[label]} {_one_line(text)}\n" for label, text in rows)
    return fasttext.train_supervised(str(path), **FASTTEXT_PARAMS)


def _fasttext_predict(model, inputs: list[Path], per_line: bool) -> tuple[int, float, float]:
    """Reads and predicts like the job; returns (documents, total s, predict-only s)."""
    documents, predict_seconds, start = 0, 0.0, time.perf_counter()
    for path in inputs:
        text = path.read_bytes().decode("utf-8")
        lines = [line + "\n" for line in text.split("\n")[:-1]] if per_line else [_one_line(text) + "\n"]
        for i in range(0, len(lines), PREDICT_BATCH):
            started = time.perf_counter()
            labels, _ = model.f.multilinePredict(lines[i:i + PREDICT_BATCH], 1, 0.0, "strict")
            predict_seconds += time.perf_counter() - started
            documents += len(labels)
    return documents, time.perf_counter() - start, predict_seconds


def run_input(name: str, uri: Path, per_line: bool, classifier: str, model, env: dict, home: Path) -> dict:
    inputs = [uri] if per_line else sorted(uri.iterdir())
    expected = sum(1 for _ in open(uri, "rb")) if per_line else len(inputs)
    megabytes = sum(p.stat().st_size for p in inputs) / 1e6
    out = home / "out"
    command = [str(BIN / "docclass"), "classify", "--classifier", classifier, "--input-uri",
               str(uri) + ("" if per_line else "/"), "--input-format",
               "ONE_DOC_PER_LINE" if per_line else "ONE_DOC_PER_FILE", "--output-uri", str(out)]
    seconds, rss_mb, tree_mb, result = _measured(command, env, home / "rss.txt")
    shutil.rmtree(out, ignore_errors=True)
    describe = json.loads(result.stdout) if result.returncode == 0 else {}
    if (describe.get("JobStatus") != "COMPLETED" or int(describe.get("NumberOfDocuments", -1)) != expected
            or int(describe.get("NumberOfDocumentErrors", -1)) != 0):
        raise SystemExit(f"{name}: the job did not classify all {expected} documents (exit {result.returncode})\n"
                         f"{result.stdout}\n{result.stderr[-3000:]}")
    rate = re.findall(r"\d+/\d+ shards, \d+ documents \((\d+) docs/s\)", result.stderr)
    _log(f"[{name}] docclass classify: {seconds:.1f} s, {expected / seconds:.0f} docs/s, peak RSS {rss_mb:.0f} MB "
         f"(largest process), {tree_mb:.0f} MB (all processes)"
         + (f"; shards alone: {rate[-1]} docs/s" if rate else ""))
    ft_docs, ft_seconds, ft_predict = _fasttext_predict(model, inputs, per_line)
    assert ft_docs == expected, (ft_docs, expected)
    _log(f"[{name}] fastText read + predict: {ft_seconds:.2f} s ({ft_predict:.2f} s predict), "
         f"{expected / ft_seconds:.0f} docs/s")
    return {"documents": expected, "megabytes": megabytes, "docclass_seconds": seconds, "peak_rss_mb": rss_mb,
            "peak_tree_rss_mb": tree_mb,
            "classify_task_docs_per_s": int(rate[-1]) if rate else None, "fasttext_seconds": ft_seconds,
            "fasttext_predict_seconds": ft_predict, "ratio": ft_seconds / seconds}


def print_table(results: dict) -> None:
    print(f"docclass classify end to end (CLI child process incl. Python start-up, model load, output.tar.gz; "
          f"one shared Prefect server) vs fastText 0.9.2 in-process read + predict (epoch "
          f"{FASTTEXT_PARAMS['epoch']}, {FASTTEXT_PARAMS['thread']} threads), {os.cpu_count()} cores.\n")
    print("| input | documents | MB | docclass wall s | docclass docs/s | shards alone docs/s | docclass MB/s "
          "| peak RSS MB, largest process | peak RSS MB, all processes | fastText docs/s | ratio docclass/fastText |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['documents']} | {r['megabytes']:.1f} | {r['docclass_seconds']:.1f} | "
              f"{r['documents'] / r['docclass_seconds']:.0f} | {r['classify_task_docs_per_s'] or '-'} | "
              f"{r['megabytes'] / r['docclass_seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['peak_tree_rss_mb']:.0f} | "
              f"{r['documents'] / r['fasttext_seconds']:.0f} | {r['ratio']:.3f}x |")
    print()
    for name, r in results.items():
        print(f"- {name}: end to end >= {GOAL_RATIO:.1f}x fastText: {'yes' if r['ratio'] >= GOAL_RATIO else 'no'} "
              f"({r['ratio']:.3f}x)")
    small, large = results.get("10k lines"), results.get("1M lines")
    if small and large:
        growth = large["peak_rss_mb"] / small["peak_rss_mb"]
        print(f"- peak RSS 1M lines <= {GOAL_RSS_GROWTH}x 10k lines: {'yes' if growth <= GOAL_RSS_GROWTH else 'no'} "
              f"({large['peak_rss_mb']:.0f} / {small['peak_rss_mb']:.0f} MB = {growth:.2f}x)")
    if large:
        print(f"- peak RSS 1M lines <= 1 GB: {'yes' if large['peak_rss_mb'] <= GOAL_RSS_MB else 'no'} "
              f"({large['peak_rss_mb']:.0f} MB)")


def _label(size: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit} lines"
    return f"{size} lines"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="ONE_DOC_PER_LINE line counts")
    parser.add_argument("--long-docs", type=int, default=2000, help="20newsgroups files (ONE_DOC_PER_FILE)")
    parser.add_argument("--skip-long", action="store_true", help="leave out the 20newsgroups files")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmarks need ../shared/data (not found: {DATA})")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started, results = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="docclass-throughput-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "DOCCLASS_HOME": str(home / "home"), "DO_NOT_TRACK": "true",
               "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        with prefect_server(env, home):
            ag_csv = DATA / "ag_news" / "test.csv"
            ag_rows = _rows(ag_csv)
            _train_docclass(env, "ag", ag_csv)
            ag_model = _train_fasttext(ag_rows, home / "ag.txt")
            for size in sizes:
                path = _write_lines([text for _, text in ag_rows], size, home / f"ag-{size}.txt")
                results[_label(size)] = run_input(_label(size), path, True, "ag", ag_model, env, home)
                path.unlink()
            if not args.skip_long:
                ng_train = _rows(DATA / "20newsgroups" / "train.csv.gz")
                ng_csv = home / "20ng-train.csv"
                with open(ng_csv, "w", encoding="utf-8", newline="") as fp:
                    csv.writer(fp, lineterminator="\n").writerows(ng_train)
                _train_docclass(env, "news", ng_csv)
                ng_model = _train_fasttext(ng_train, home / "20ng.txt")
                ng_test = [text for _, text in _rows(DATA / "20newsgroups" / "test.csv")]
                folder = _write_files(ng_test, args.long_docs, home / "20ng")
                name = f"{args.long_docs} 20ng files"
                results[name] = run_input(name, folder, False, "news", ng_model, env, home)
    print_table(results)
    sys.stdout.flush()
    _log(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"inputs": results, "fasttext_params": FASTTEXT_PARAMS}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

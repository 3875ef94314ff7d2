"""Scoring speed of each feature configuration the model search can choose, side by side.

A job's speed depends on the chosen candidate's vectorizers: char n-grams inside words
(`char_wb`, the first candidate, which `--fast` and benchmarks/throughput.py use) are cached
per word; char n-grams across words (`char`) also look up the windows around every gap. For
each distinct feature set among the multi-class candidates, this trains that candidate alone on
../shared/data/ag_news/test.csv (7,600 news items), then times ``decision_function`` (the
job's scoring path, fast_tfidf + fast_scores, one process, one thread) over the same texts
repeated 13 times (98,800 documents) in batches of 10,000, and prints docs/s and the ratio to
the first candidate.

    .venv/bin/python benchmarks/candidate_scoring.py
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifier_core.config import Mode  # noqa: E402
from classifier_core.model import TextClassifier  # noqa: E402
from classifier_core.selection import MULTI_CLASS_CANDIDATES  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ag_news" / "test.csv"
REPEAT, BATCH = 13, 10_000


def main() -> None:
    if not DATA.exists():
        sys.exit(f"benchmarks need ../shared/data (not found: {DATA})")
    with open(DATA, encoding="utf-8", newline="") as fp:
        rows = list(csv.reader(fp))
    texts, labels = [text for _, text in rows], [[label] for label, _ in rows]
    documents = texts * REPEAT
    seen, results = set(), []
    for candidate in MULTI_CLASS_CANDIDATES:
        features = (candidate.features, candidate.lowercase, candidate.char_ngrams)
        if features in seen:
            continue
        seen.add(features)
        model = TextClassifier(Mode.MULTI_CLASS, search=False, candidates=[candidate]).fit(texts, labels)
        model.decision_function(texts[:100])  # compiles and warms the caches' code, not their contents
        started = time.perf_counter()
        for start in range(0, len(documents), BATCH):
            model.decision_function(documents[start:start + BATCH])
        rate = len(documents) / (time.perf_counter() - started)
        results.append((candidate.describe(), rate))
        print(f"{candidate.describe()}: {rate:,.0f} docs/s", file=sys.stderr)
    print(f"| candidate's features | docs/s ({len(documents):,} ag_news docs, batches of {BATCH:,}) | ratio to the first |")
    print("|---|---|---|")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {rate / results[0][1]:.2f}x |")


if __name__ == "__main__":
    main()

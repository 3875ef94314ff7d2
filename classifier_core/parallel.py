"""Classifying batches of documents on every core, output identical to one process.

The reader stays in the calling process, so documents, files and line numbers are exactly
what a serial run sees. Worker processes each load the model once, classify whole batches
and send back finished predictions.jsonl bytes with the batch's counts. Results come back
in submission order, with at most ``2 x workers`` batches in flight, so memory stays bounded.
A job of a single batch never starts a pool.
"""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from classifier_core.config import LABEL_THRESHOLD
from classifier_core.documents import Document
from classifier_core.inference import classify_documents
from classifier_core.model import TextClassifier, load_model
from classifier_core.predictions import write_jsonl

_worker_model: TextClassifier | None = None


@dataclass
class BatchResult:
    """One classified batch: its predictions.jsonl lines and what they hold."""

    jsonl: bytes
    documents: int
    errors: int
    class_counts: dict[str, int] = field(default_factory=dict)


def classify_batch(model: TextClassifier, batch: list[Document], explain: bool = False) -> BatchResult:
    """Classifies one batch into JSON lines, counting error records and top classes (or assigned labels)."""
    records = classify_documents(model, batch, explain)
    buffer = io.BytesIO()
    write_jsonl(records, buffer)
    errors, counts = 0, {}
    for record in records:
        if "ErrorCode" in record:
            errors += 1
        elif "Classes" in record:
            name = record["Classes"][0]["Name"]
            counts[name] = counts.get(name, 0) + 1
        else:
            for label in record["Labels"]:
                if label["Score"] >= LABEL_THRESHOLD:
                    counts[label["Name"]] = counts.get(label["Name"], 0) + 1
    return BatchResult(buffer.getvalue(), len(records), errors, counts)


def _load_worker_model(model_dir: str) -> None:
    global _worker_model
    _worker_model = load_model(model_dir)


def _classify_in_worker(batch: list[Document], explain: bool) -> BatchResult:
    return classify_batch(_worker_model, batch, explain)


def classify_batches(
    model: TextClassifier, model_dir: str, batches: Iterable[list[Document]], workers: int | None = None,
    explain: bool = False,
) -> Iterator[BatchResult]:
    """Yields each batch's result, in order; on ``workers`` processes once there is a second batch.

    Args:
        model: the loaded model, for the first batch and for ``workers == 1``.
        model_dir: where worker processes load the same model from.
        batches: the documents, in batches, consumed lazily.
        workers: processes to use; default every core.
        explain: add Explanations to every record.
    """
    workers = workers or os.cpu_count() or 1
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    yield classify_batch(model, first, explain)
    second = next(batches, None)
    if second is None:
        return
    batches = itertools.chain([second], batches)
    if workers == 1:
        for batch in batches:
            yield classify_batch(model, batch, explain)
        return
    # spawn, not fork: the caller runs threads (Prefect's), and a forked child can inherit a held lock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_load_worker_model, initargs=(model_dir,)) as pool:
        pending: deque[Future] = deque()
        try:
            for batch in batches:
                pending.append(pool.submit(_classify_in_worker, batch, explain))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early: do not classify what nobody will read
                future.cancel()

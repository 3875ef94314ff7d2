"""Fits a TextClassifier whose training set is too large for its feature matrix to fit in memory.

``TextClassifier.fit`` comes here above ``out_of_core_threshold`` characters of training text.
At 1,000,000 AG-News-length documents the in-memory path's char n-gram matrix alone would be
about 8 GB; here nothing held grows with the feature matrix, only the texts themselves:

- **Vocabulary and IDF** come from a seeded sample of the training texts, at most
  VOCABULARY_SAMPLE_CHARACTERS long: a sample's IDF estimates the corpus's, and a feature too
  rare to reach ``min_df`` in the sample carries little weight anyway. The features per block
  are capped so that the linear models' state stays within SGD_STATE_BYTES.
- **Validation**: ``validation_fraction`` of the distinct texts, at most VALIDATION_DOCUMENTS,
  chosen by a hash of the text and counted once each. Every copy of a validation text stays
  out of training, so a replicated corpus is not validated on exact copies of its training
  documents (near-copies still are). They are kept out of the fit (the in-memory path refits
  on them at the end; at this size they are a few percent of the data); they choose the
  regularisation and the epoch, and calibrate the scores with the in-memory path's own code
  (temperature for multi-class, per-label thresholds and scale for multi-label).
- **Linear model**: averaged SGD with hinge loss (scikit-learn's ``SGDClassifier.partial_fit``;
  one binary model per label in multi-label mode) over chunks of about CHUNK_CHARACTERS of
  text, in a new random order every epoch. Chunks are vectorised on the fly by the model's own
  ``transform``, by ``n_jobs`` worker processes while this one fits, at most two chunks per
  worker in flight (spawned, so a script calling ``fit`` needs the usual
  ``if __name__ == "__main__":`` guard). The first epoch trains one model per C of C_GRID
  (alpha = 1 / (C x documents), the scale of the in-memory LinearSVC's C); the best on
  validation goes on while its validation score improves, for at most MAX_EPOCHS. Averaging
  starts after the first epoch.

The result is an ordinary fitted TextClassifier. Its ``config_`` is an :class:`OutOfCoreConfig`
(``out_of_core=True``, alpha, epochs, chunks, sample and validation sizes); its ``search_``
has one row per model and epoch, and a first row summing up the run.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from classifier_core import fast_tfidf
from classifier_core.config import Mode
from classifier_core.metrics import indicator_matrix
from classifier_core.selection import Candidate

logger = logging.getLogger(__name__)

VOCABULARY_SAMPLE_CHARACTERS = 10_000_000  # ~42k AG News documents; fitting on them peaks at ~1 GB
CHUNK_CHARACTERS = 2_500_000  # ~10k AG News documents, ~50 MB of features
VALIDATION_DOCUMENTS = 20_000
MAX_EPOCHS = 3
MIN_IMPROVEMENT = 0.001  # of the validation score, for another epoch to count as better
C_GRID = (0.5, 0.25, 1.0)  # the first alone with search=False
SGD_STATE_BYTES = 1 << 30  # SGDClassifier keeps 3 float64 copies of its coefficients
MAX_FEATURES_PER_BLOCK = 1 << 21
MIN_FEATURES_PER_BLOCK = 1 << 15


@dataclass(frozen=True)
class OutOfCoreConfig(Candidate):
    """The configuration an out-of-core fit used: word+char features, averaged SGD.

    Args:
        out_of_core: always True; marks the path in params and metadata.
        alpha: SGD's regularisation strength (C above is 1 / (alpha x training documents)).
        epochs: passes over the training documents the chosen model was fitted with.
        chunks: chunks per epoch.
        vocabulary_sample: documents the vectorizers were fitted on.
        validation_documents: documents held out to choose and calibrate.
    """

    loss: str = "hinge"
    out_of_core: bool = True
    alpha: float = 0.0
    epochs: int = 0
    chunks: int = 0
    vocabulary_sample: int = 0
    validation_documents: int = 0

    def describe(self) -> str:
        return (f"{self.features}, out-of-core averaged SGD {self.loss}, alpha={self.alpha:.3g} (C={self.C:.3g}), "
                f"{self.epochs} epoch(s) of {self.chunks} chunks")


@dataclass
class _Corpus:
    """The training texts and labels, each text's length, and the train / validation indices."""

    texts: list[str]
    labels: list[Sequence[str]]
    lengths: np.ndarray
    train: np.ndarray
    valid: np.ndarray


def fit_out_of_core(model, texts: Sequence[str], labels: Sequence[Sequence[str]]):
    """Fits ``model`` (a TextClassifier) in bounded memory; returns it, fitted as ``fit`` would.

    ``model.search`` False tries only the first C of C_GRID; ``time_budget`` and ``candidates``
    do not apply (the features are always word+char).
    """
    started = time.monotonic()
    texts = list(texts)
    corpus = _Corpus(texts, list(labels), np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)),
                     np.zeros(0, np.int64), np.zeros(0, np.int64))
    model.labels_ = sorted({label for doc_labels in corpus.labels for label in doc_labels})
    rng = np.random.default_rng(model.random_state)
    corpus.train, corpus.valid = _validation_split(texts, model, rng)
    sample = _sample(corpus.train, corpus.lengths, VOCABULARY_SAMPLE_CHARACTERS, rng)
    grid = C_GRID if model.search else C_GRID[:1]
    model.vectorizers_ = _fit_vectorizers([texts[i] for i in sample], model, len(model.labels_) * len(grid))
    model.config_ = OutOfCoreConfig(vocabulary_sample=len(sample), validation_documents=len(corpus.valid))
    model.weights_, model.intercept_ = None, None  # transform() needs the model marked fitted
    model.search_, model.search_budget_ = [], None
    with _Vectoriser(model, workers(model.n_jobs)) as vectoriser:
        best, epochs_run, n_chunks = _train(model, vectoriser, corpus, grid, rng)
    model.weights_, model.intercept_ = best["weights"]
    calibration = best["calibration"]
    model.temperature_ = calibration.get("temperature", 1.0)
    model.thresholds_ = calibration.get("thresholds", np.zeros(len(model.labels_)))
    model.label_scale_ = calibration.get("scale", 1.0)
    model.config_ = replace(model.config_, C=best["C"], alpha=1.0 / (best["C"] * len(corpus.train)),
                            epochs=best["epoch"], chunks=n_chunks)
    model.search_.insert(0, {"out_of_core": True, "documents": len(texts), "training_documents": len(corpus.train),
                             "validation_documents": len(corpus.valid), "vocabulary_sample": len(sample),
                             "features": int(model.weights_.shape[0]), "chunks_per_epoch": n_chunks,
                             "epochs_run": epochs_run, "workers": vectoriser.workers})
    model.fit_seconds_ = time.monotonic() - started
    return model


def _train(model, vectoriser: _Vectoriser, corpus: _Corpus, grid: Sequence[float],
           rng: np.random.Generator) -> tuple[dict, int, int]:
    """Runs the epochs; returns the best model's weights and calibration, epochs run, chunks per epoch."""
    n_train = len(corpus.train)
    models = {c: _SgdModel(model.mode, len(model.labels_), 1.0 / (c * n_train), n_train, model.random_state)
              for c in grid}
    validation_chunks = _chunks(corpus.valid, corpus.lengths)
    best, previous, epoch, chunks = None, None, 0, []
    for epoch in range(1, MAX_EPOCHS + 1):
        started = time.monotonic()
        chunks = _chunks(rng.permutation(corpus.train), corpus.lengths)
        for x, rows in vectoriser.map(corpus.texts, chunks):
            target = indicator_matrix([corpus.labels[i] for i in rows], model.labels_)
            for sgd in models.values():
                sgd.partial_fit(x, target)
        scored = _score(model, models, vectoriser, corpus, validation_chunks)
        for c, (score, _) in scored.items():
            model.search_.append({"candidate": f"out-of-core SGD hinge, C={c:g}", "epoch": epoch,
                                  "validation_score": round(score, 6),
                                  "seconds": round(time.monotonic() - started, 2)})
        c, (score, calibration) = max(scored.items(), key=lambda item: item[1][0])  # ties: the first C
        logger.info("out-of-core epoch %d: %d chunks, C=%g, validation score %.4f", epoch, len(chunks), c, score)
        if best is None or score >= best["score"] or not validation_chunks:  # ties: more epochs, averaged
            best = {"score": score, "C": c, "epoch": epoch, "calibration": calibration, "weights": models[c].weights()}
        models = {c: models[c]}  # only the first epoch's best model goes on
        if validation_chunks and previous is not None and score < previous + MIN_IMPROVEMENT:
            break
        previous = score
    return best, epoch, len(chunks)


class _SgdModel:
    """Averaged SGD for one alpha: one multi-class SGDClassifier, or one binary one per label."""

    def __init__(self, mode: Mode, n_labels: int, alpha: float, average_after: int, seed: int):
        # Averaging starts after the first epoch (Bottou's ASGD), leaving the first, noisy steps
        # out of the average. On 20newsgroups that, plain and fully averaged SGD scored within 0.1 point.
        self.multi_label = mode is Mode.MULTI_LABEL
        self.n_labels = n_labels
        self.estimators = [SGDClassifier(loss="hinge", alpha=alpha, average=average_after, random_state=seed)
                           for _ in range(n_labels if self.multi_label else 1)]

    def partial_fit(self, x, target: np.ndarray) -> None:
        if self.multi_label:
            for j, estimator in enumerate(self.estimators):
                estimator.partial_fit(x, target[:, j], classes=np.array([False, True]))
        else:
            self.estimators[0].partial_fit(x, target.argmax(axis=1), classes=np.arange(self.n_labels))

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(features x labels) float32 C-order weights and the intercepts, as TextClassifier keeps them."""
        if self.multi_label:
            coef = np.vstack([e.coef_ for e in self.estimators])
            intercept = np.concatenate([e.intercept_ for e in self.estimators])
        else:
            coef, intercept = self.estimators[0].coef_, self.estimators[0].intercept_
            if coef.shape[0] == 1:  # binary: one weight vector, for the second class
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        return np.ascontiguousarray(coef.T, dtype=np.float32), np.asarray(intercept, dtype=np.float32)


def _score(model, models: dict, vectoriser: _Vectoriser, corpus: _Corpus,
           chunks: list[np.ndarray]) -> dict[float, tuple[float, dict]]:
    """Each model's validation score and calibration, by the in-memory path's own ``_validate``."""
    if not chunks:
        return {c: (0.0, {}) for c in models}
    weights = {c: sgd.weights() for c, sgd in models.items()}
    decisions, rows = {c: [] for c in models}, []
    for x, chunk in vectoriser.map(corpus.texts, chunks):
        rows.extend(chunk)
        for c, (w, b) in weights.items():
            decisions[c].append(np.asarray(x @ w) + b)
    truth = indicator_matrix([corpus.labels[i] for i in rows], model.labels_)
    return {c: model._validate(np.vstack(parts).astype(np.float64), truth) for c, parts in decisions.items()}


def _validation_split(texts: Sequence[str], model, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices. Validation holds the distinct texts whose hash falls below a
    cut, once each: ``validation_fraction`` of the distinct texts, at most VALIDATION_DOCUMENTS.
    Every copy of a validation text stays out of training."""
    salt = int(rng.integers(1 << 32))  # crc32: at 1M distinct texts ~100 collide, harmlessly (same side)
    keys = np.fromiter((zlib.crc32(text.encode("utf-8", "surrogatepass"), salt) for text in texts),
                       dtype=np.uint32, count=len(texts))
    distinct, first = np.unique(keys, return_index=True)
    wanted = min(int(round(len(distinct) * model.validation_fraction)), VALIDATION_DOCUMENTS)
    if wanted == 0 or wanted == len(distinct):
        return np.arange(len(texts)), np.zeros(0, dtype=np.int64)
    cut = distinct[wanted - 1]
    return np.flatnonzero(keys > cut), np.sort(first[:wanted])


def _sample(indices: np.ndarray, lengths: np.ndarray, characters: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded random subset of ``indices`` holding about ``characters`` of text, sorted."""
    order = rng.permutation(indices)
    count = int(np.searchsorted(np.cumsum(lengths[order]), characters)) + 1
    return np.sort(order[:count])


def _fit_vectorizers(sample: list[str], model, weight_columns: int) -> dict[str, TfidfVectorizer]:
    """The in-memory path's word and char vectorizers, fitted on the sample; features capped so
    that ``weight_columns`` SGD coefficient vectors fit in SGD_STATE_BYTES."""
    min_df = model.min_df if len(sample) >= 20 * model.min_df else 1
    cap = SGD_STATE_BYTES // (3 * 8 * max(weight_columns, 1) * 2)
    cap = int(min(max(cap, MIN_FEATURES_PER_BLOCK), MAX_FEATURES_PER_BLOCK))
    vectorizers = OutOfCoreConfig().vectorizers(min_df)
    for vectorizer in vectorizers.values():
        fast_tfidf.fit_transform(vectorizer, sample)  # the sample's matrix is dropped at once
        if len(vectorizer.vocabulary_) > cap:  # scikit-learn keeps the most frequent (slower)
            vectorizer.set_params(max_features=cap).fit(sample)
    return vectorizers


def _chunks(order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """``order`` cut into consecutive runs of about CHUNK_CHARACTERS of text."""
    ends = np.cumsum(lengths[order]) // CHUNK_CHARACTERS
    cuts = np.flatnonzero(np.diff(ends)) + 1
    return [chunk for chunk in np.split(order, cuts) if chunk.size]


def workers(n_jobs: int | None) -> int:
    """Processes or threads for ``n_jobs`` as scikit-learn reads it: None 1, -1 every core, -2 all but one..."""
    cores = os.cpu_count() or 1
    if n_jobs is None:
        return 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


_worker_model = None


def _start_worker(model_path: str) -> None:
    global _worker_model
    _worker_model = joblib.load(model_path)


def _transform_in_worker(texts: list[str]):
    return _worker_model.transform(texts)


class _Vectoriser:
    """Vectorises chunks with ``model.transform``: here, or in worker processes, results in order.

    If the workers die (killed, or an unguarded script re-running ``fit`` in them), the rest is
    vectorised here, with a warning.
    """

    def __init__(self, model, workers: int):
        self.model, self.workers, self.pool, self.folder = model, workers, None, None

    def __enter__(self) -> _Vectoriser:
        if self.workers > 1:
            if getattr(multiprocessing.current_process(), "_inheriting", False):
                # This is a worker importing a script that calls fit without the __main__ guard:
                # failing here ends it at once, and its parent goes on alone (else both hang).
                raise RuntimeError("a script that calls TextClassifier.fit with n_jobs > 1 must guard its "
                                   "entry point with: if __name__ == '__main__':")
            # Workers load the model from a file: a large initargs would be written down a pipe the
            # worker may never read, blocking this process for good.
            self.folder = tempfile.TemporaryDirectory(prefix="docclass-out-of-core-")
            path = os.path.join(self.folder.name, "model.joblib")
            joblib.dump(self.model, path)
            # spawn, not fork: the caller runs threads (Prefect's), and a forked child can inherit a held lock.
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                            initargs=(path,))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.folder is not None:
            self.folder.cleanup()

    def map(self, texts: Sequence[str], chunks: Iterable[np.ndarray]) -> Iterator[tuple[object, np.ndarray]]:
        """Yields (features, row indices) per chunk, in order."""
        chunks = iter(chunks)
        if self.pool is not None:
            pending: deque[tuple[np.ndarray, Future | None]] = deque()
            try:
                for rows in chunks:
                    pending.append((rows, None))
                    pending[-1] = (rows, self.pool.submit(_transform_in_worker, [texts[i] for i in rows]))
                    while len(pending) >= 2 * self.workers or (pending and pending[0][1].done()):
                        x = pending[0][1].result()
                        yield x, pending.popleft()[0]
                while pending:
                    x = pending[0][1].result()
                    yield x, pending.popleft()[0]
            except BrokenProcessPool as error:
                logger.warning("out-of-core: worker processes failed (%s); vectorising in this process", error)
                self.pool.shutdown(cancel_futures=True)
                self.pool, self.workers = None, 1
                chunks = itertools.chain([rows for rows, _ in pending], chunks)
        for rows in chunks:
            yield self.model.transform([texts[i] for i in rows]), rows

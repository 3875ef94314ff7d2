"""TextClassifier: TF-IDF word (+ char) n-grams and a linear model chosen on the training data.

Follows the scikit-learn estimator contract: ``__init__`` stores parameters only, ``fit``
returns ``self`` and sets trailing-underscore state, prediction checks it was fitted.

``fit`` picks a configuration among candidates (classifier_core.selection) on a validation
split of the training data, within a time budget; calibrates the scores on that split
(multi-class: temperature-scaled softmax; multi-label: per-label thresholds folded into a
sigmoid so 0.5 is the decision point); then refits the chosen configuration on all of it,
its SVMs starting from their solution on the split. The fitted model keeps only the
vectorizers and a float32 weight matrix, so prediction is one sparse product and explanations
are the per-term products.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from classifier_core import fast_scores, fast_tfidf
from classifier_core.config import Mode
from classifier_core.errors import ModelError
from classifier_core.linear_svm import TOL, fit_binary_svms
from classifier_core.metrics import indicator_matrix
from classifier_core.model_metadata import METADATA_FILE, MODEL_FORMAT, read_metadata
from classifier_core.out_of_core import fit_out_of_core, workers
from classifier_core.scorer import Scorer, calibrated, decide, explain_terms, load_weights, save_weights, term_names
from classifier_core.selection import (
    ANALYZER_COST,
    MULTI_CLASS_CANDIDATES,
    MULTI_LABEL_CANDIDATES,
    Candidate,
    fit_label_scale,
    fit_temperature,
    tune_thresholds,
    validation_split,
)

_MODEL_FILE = "model.joblib"
# The SVMs stop at liblinear's own tolerance for their solver, in the search (ranking the
# candidates, giving the validation scores the calibration is fitted on) and for the model that is
# kept. Against linear_svm.TOL (1e-2): on reuters 42% fewer passes in the search with the same
# choice; the kept model's fit 20-25% faster on 20newsgroups, reuters and goemotions, every
# shared dataset's score within 0.0005 (benchmarks/RESULTS.md).
FIT_TOL = 0.1
MIN_DOCUMENTS_FOR_SEARCH = 50
# Seconds the search may spend, the default candidate included (``--search-budget`` sets others).
# Small data tries every candidate within them; on large data, where one fit takes longer, the search
# ends sooner, down to the default alone: its choices matter less there (C=0.5 against C=1 on
# reuters, 0.881 / 0.513 against 0.882 / 0.508) and each costs more. On the shared datasets docclass
# then trains in about fastText's time in all (70.8 s against 72.4 s), where a budget of 4x the
# default's time (10-60 s) took 1.6x fastText's (112.1 s against 70.1 s) to find one choice more:
# goemotions' C=0.25, 0.563 / 0.472 against 0.554 / 0.461 (benchmarks/RESULTS.md).
TIME_BUDGET = 10.0
# Characters of training text (~130k news articles) above which fit goes out of core: in memory,
# training peaks at about 110 bytes per character (feature matrices and the solver's copy).
OUT_OF_CORE_THRESHOLD = 30_000_000


class TextClassifier(BaseEstimator):
    """A Comprehend-style text classifier in one of the two modes.

    Args:
        mode: MULTI_CLASS (one class per document, probabilities summing to 1) or
            MULTI_LABEL (an independent score per label, assigned at 0.5).
        search: try the candidate configurations and keep the best on validation data;
            False uses the first candidate (``--fast``).
        time_budget: seconds the search may spend, the first (default) candidate included; a
            candidate not expected to finish by then (from the slowest fit's time and its relative
            cost, plus fitting its new feature blocks) is skipped.
        candidates: the configurations to choose from; default: the mode's list in
            classifier_core.selection.
        validation_fraction: share of the training data held out to choose and calibrate.
        min_df: minimum document frequency of a feature (1 for tiny corpora).
        random_state: seed of the validation split.
        n_jobs: threads fitting the classes' or labels' SVMs at once (-1: all cores); also the processes
            vectorising for out-of-core training.
        out_of_core_threshold: characters of training text above which ``fit`` streams the data
            in bounded memory (classifier_core.out_of_core) rather than building the feature matrix.
    """

    def __init__(
        self,
        mode: Mode = Mode.MULTI_CLASS,
        search: bool = True,
        time_budget: float = TIME_BUDGET,
        candidates: Sequence[Candidate] | None = None,
        validation_fraction: float = 0.15,
        min_df: int = 2,
        random_state: int = 0,
        n_jobs: int | None = -1,
        out_of_core_threshold: int = OUT_OF_CORE_THRESHOLD,
    ):
        self.mode = mode
        self.search = search
        self.time_budget = time_budget
        self.candidates = candidates
        self.validation_fraction = validation_fraction
        self.min_df = min_df
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.out_of_core_threshold = out_of_core_threshold

    def fit(self, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> TextClassifier:
        """Chooses, calibrates and fits on texts and their labels (one per document in MULTI_CLASS)."""
        started = time.monotonic()
        texts = list(texts)
        if sum(map(len, texts)) > self.out_of_core_threshold:
            return fit_out_of_core(self, texts, labels)
        self.labels_ = sorted({label for doc_labels in labels for label in doc_labels})
        target = indicator_matrix(labels, self.labels_)
        candidates = list(self.candidates or (MULTI_CLASS_CANDIDATES if self.mode is Mode.MULTI_CLASS else MULTI_LABEL_CANDIDATES))
        if not self.search:
            candidates = candidates[:1]
        min_df = self.min_df if len(texts) >= 20 * self.min_df else 1  # else a tiny corpus has no vocabulary
        blocks = _FeatureBlocks(texts, min_df, workers(self.n_jobs))
        self.search_, self.search_budget_ = [], None
        chosen, calibration, start = candidates[0], {}, None
        if len(texts) >= MIN_DOCUMENTS_FOR_SEARCH:
            chosen, calibration, start = self._select(candidates, blocks, target, started)
        self.config_ = chosen
        self.temperature_ = calibration.get("temperature", 1.0)
        self.thresholds_ = calibration.get("thresholds", np.zeros(len(self.labels_)))
        self.label_scale_ = calibration.get("scale", 1.0)
        self.weights_, self.intercept_, _ = self._fit_weights(chosen, blocks.matrix(chosen), target, start)
        self.vectorizers_ = blocks.vectorizers(chosen)
        self.fit_seconds_ = time.monotonic() - started
        return self

    def _select(self, candidates, blocks, target, started) -> tuple[Candidate, dict, sp.csr_matrix | None]:
        """Scores each candidate on the validation split; returns the best, its calibration and its
        SVMs' duals on all documents (the validation split's at zero) to start the refit from."""
        single = [row.argmax() for row in target] if self.mode is Mode.MULTI_CLASS else None
        train, valid = validation_split(
            [self.labels_[i] for i in single] if single is not None else None,
            target.shape[0], self.validation_fraction, self.random_state,
        )
        if len(valid) == 0 or len(train) == 0:
            return candidates[0], {}, None
        if len(candidates) > 1:
            self.search_budget_ = round(self.time_budget, 1)
        best, slowest_fit, scores = None, None, {}
        for candidate in candidates:
            reason = _redundant(candidate, candidates, scores, target[train], self.mode)
            if reason is None and best is not None and not self._fits_in_budget(
                    candidate, time.monotonic() - started, slowest_fit, blocks.expected_seconds(candidate)):
                reason = "time budget"
            if reason is not None:
                self.search_.append({"candidate": candidate.describe(), "skipped": reason})
                continue
            t0 = time.monotonic()
            x_train, x_valid = blocks.rows(candidate, train, valid)
            fit_started = time.monotonic()
            weights, intercept, duals = self._fit_weights(candidate, x_train, target[train])
            unit = (time.monotonic() - fit_started) / candidate.relative_cost
            slowest_fit = unit if slowest_fit is None else max(slowest_fit, unit)
            decisions = np.asarray(x_valid @ weights) + intercept
            score, calibration = self._validate(decisions, target[valid])
            self.search_.append({"candidate": candidate.describe(), "validation_score": round(score, 6),
                                 "seconds": round(time.monotonic() - t0, 2)})
            scores[candidate] = score
            if best is None or score > best[0]:
                best = (score, candidate, calibration, duals)
        blocks.forget_rows()
        score, candidate, calibration, duals = best
        if duals is not None:  # documents renumbered from the training split's to all of them
            duals = sp.csr_matrix((duals.data, train[duals.indices], duals.indptr), shape=(duals.shape[0], len(target)))
        return candidate, calibration, duals

    def _fits_in_budget(self, candidate: Candidate, elapsed: float, slowest_fit: float | None,
                        vectorising: float = 0.0) -> bool:
        """Whether the candidate is expected to finish within ``time_budget`` seconds of the start:
        ``slowest_fit`` is the slowest fit's seconds so far per unit of relative cost (None: nothing
        fitted yet); the slowest, as a word-only fit says little of a word+char one.
        ``vectorising``: the expected seconds of fitting its feature blocks not fitted yet."""
        expected = 0.0 if slowest_fit is None else slowest_fit * candidate.relative_cost
        return elapsed + vectorising + expected <= self.time_budget

    def _validate(self, decisions: np.ndarray, truth: np.ndarray) -> tuple[float, dict]:
        """The selection score on validation data (accuracy; or mean of micro- and macro-F1
        at tuned thresholds) and the calibration that goes with it."""
        if self.mode is Mode.MULTI_CLASS:
            answer = truth.argmax(axis=1)
            accuracy = float(np.mean(decisions.argmax(axis=1) == answer))
            return accuracy, {"temperature": fit_temperature(decisions, answer)}
        thresholds = tune_thresholds(decisions, truth)
        decided = decisions >= thresholds
        tp = (decided & truth).sum(axis=0)
        fp, fn = (decided & ~truth).sum(axis=0), (~decided & truth).sum(axis=0)
        micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
        present = truth.any(axis=0)
        macro = float(np.mean((2 * tp / np.maximum(2 * tp + fp + fn, 1))[present])) if present.any() else 0.0
        scale = fit_label_scale(decisions - thresholds, truth)
        return (float(micro) + macro) / 2, {"thresholds": thresholds, "scale": scale}

    def _fit_weights(self, candidate: Candidate, x, target: np.ndarray, start: sp.csr_matrix | None = None):
        """Fits the candidate's linear model; returns (features x labels) float32 weights and intercepts,
        so decision scores are ``x @ weights + intercept`` whatever the model was, and the SVMs'
        duals (labels x documents; None for logistic regression). The SVMs stop at FIT_TOL, starting
        from the duals ``start`` if given: the refit starts from the search's solution, which cut its
        solver passes by 9-24% and its time by 3-28% on the shared datasets (benchmarks/RESULTS.md).

        C order matters: a sparse matrix times it reads contiguous memory, where the transpose
        of scikit-learn's (labels x features) made scipy copy the whole matrix on every call. The
        SVMs write their weights straight into it.
        """
        if self.mode is Mode.MULTI_CLASS and candidate.loss == "log":
            model = LogisticRegression(C=candidate.C, max_iter=1000, class_weight=candidate.class_weight)
            model.fit(x, target.argmax(axis=1))
            coef, intercept, duals = model.coef_, model.intercept_, None
            if coef.shape[0] == 1:  # binary: one weight vector, for the second class
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
            weights = np.ascontiguousarray(coef.T, dtype=np.float32)
        else:
            weights, intercept, duals = _one_vs_rest_svm(x, target, candidate, self.mode, workers(self.n_jobs), FIT_TOL,
                                                         start)
        return weights, np.asarray(intercept, dtype=np.float32), duals

    def scorer(self) -> Scorer | None:
        """This model's scoring without scikit-learn (classifier_core.scorer); None when a vectorizer
        is not one fast_tfidf reproduces."""
        check_is_fitted(self, "weights_")
        frozen = {name: fast_tfidf.freeze(vec) for name, vec in self.vectorizers_.items()}
        if any(vec is None for vec in frozen.values()):
            return None
        return Scorer(self.mode, self.labels_, frozen, self.weights_, self.intercept_, self.temperature_,
                      self.thresholds_, self.label_scale_)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw linear scores of shape (documents, labels), float64: computed from the documents'
        feature occurrences (classifier_core.fast_scores), else as ``transform(texts) @ weights_``."""
        check_is_fitted(self, "weights_")
        scores = fast_scores.decision_scores(self.vectorizers_, self.weights_, self.intercept_, texts)
        if scores is not None:
            return scores
        x = self.transform(texts)
        return (np.asarray(x @ self.weights_) + self.intercept_).astype(np.float64)

    def transform(self, texts: Sequence[str]):
        check_is_fitted(self, "weights_")
        return _stack(fast_tfidf.transform(self.vectorizers_, texts))  # = each vectorizer's transform, faster

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of shape (documents, labels), columns in ``labels_`` order.

        MULTI_CLASS: calibrated probabilities summing to 1 per row. MULTI_LABEL: independent
        per-label scores; a label is assigned iff its score >= 0.5.
        """
        check_is_fitted(self, "weights_")
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=float)
        return calibrated(self.mode, self.decision_function(texts), self.temperature_, self.thresholds_,
                          self.label_scale_)

    def explain(self, texts: Sequence[str], labels_per_text: Sequence[Sequence[str]], top: int = 5) -> list[dict]:
        """The words that pushed each text toward each given label: ``{label: [[term, weight], ...]}``
        (classifier_core.scorer.explain_terms, which the Scorer runs too)."""
        check_is_fitted(self, "weights_")
        words = fast_tfidf.freeze(self.vectorizers_["word"])
        if words is None:
            raise ModelError("explanations need a word vectorizer classifier_core.fast_tfidf reproduces")
        return explain_terms(words, self._word_names(), self.weights_, self.labels_, texts, labels_per_text, top)

    def __getstate__(self) -> dict:
        """The vectorizers go into the pickle as one C-pickled blob: joblib unpickles with Python's
        pure-Python unpickler, which took 4.5 s for a 20newsgroups model's million vocabulary terms,
        against 0.8 s for ``pickle.loads``. The explanations' name cache is left out."""
        state = dict(super().__getstate__())  # (object.__getstate__ gives the instance's own __dict__)
        state.pop("_word_names_cache", None)
        if isinstance(state.get("vectorizers_"), dict):
            state["vectorizers_"] = _PickledVectorizers(pickle.dumps(state["vectorizers_"], protocol=pickle.HIGHEST_PROTOCOL))
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("vectorizers_"), _PickledVectorizers):  # (models saved before hold a dict)
            state = dict(state, vectorizers_=pickle.loads(state["vectorizers_"].blob))
        super().__setstate__(state)

    def _word_names(self) -> np.ndarray:
        if getattr(self, "_word_names_cache", None) is None:
            self._word_names_cache = term_names(self.vectorizers_["word"].vocabulary_)  # (as the Scorer's)
        return self._word_names_cache

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Boolean (documents, labels) decisions from scores, as the job output assigns them."""
        return decide(self.mode, scores)

    def save(self, directory: str | Path) -> Path:
        """Writes the model, its Scorer (classifier_core.scorer: for classifying without scikit-learn),
        the weights both read (weights.npy: stored once, they are most of a model's size) and its
        metadata into ``directory`` (created if missing)."""
        check_is_fitted(self, "weights_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory, self.weights_)
        scorer = self.scorer()
        if scorer is not None:
            scorer.save(directory)
        without_weights = TextClassifier.__new__(TextClassifier)  # (a copy of the attributes, not of the arrays)
        without_weights.__dict__.update({k: v for k, v in self.__dict__.items() if k != "weights_"})
        joblib.dump(without_weights, directory / _MODEL_FILE, compress=3)
        metadata = {
            "format": MODEL_FORMAT,
            "mode": self.mode.value,
            "labels": self.labels_,
            "config": self.config_.as_params(),
            "search": self.search_,
            "sklearn_version": sklearn.__version__,
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        return directory


def load_model(directory: str | Path) -> TextClassifier:
    """Loads a model saved by ``TextClassifier.save``.

    Raises:
        ModelError: if the directory holds no docclass model or one of another format.
    """
    directory = Path(directory)
    read_metadata(directory)
    model = joblib.load(directory / _MODEL_FILE)
    if not isinstance(model, TextClassifier):
        raise ModelError(f"{directory / _MODEL_FILE}: expected a TextClassifier; found {type(model).__name__}")
    if not hasattr(model, "weights_"):  # (format /2 models hold them)
        model.weights_ = load_weights(directory)
    return model


class _PickledVectorizers(NamedTuple):
    """A model's vectorizers, pickled (TextClassifier.__getstate__)."""

    blob: bytes


class _FeatureBlocks:
    """The candidates' TF-IDF blocks on the training texts, each fitted on first use and shared
    by every candidate that uses it. IDF statistics come from all training texts (no labels
    involved), so the validation split and the final fit share one vectorisation; fast_tfidf
    gives scikit-learn's fitted vectorizers and matrices, only faster. A candidate's new blocks
    are fitted by up to ``threads`` threads at once (fast_tfidf's compiled and Arrow steps run
    without the GIL): the default's word and char blocks in 1.3 s rather than 2.8 on reuters,
    7.7 s rather than 12.0 on 20newsgroups."""

    def __init__(self, texts: list[str], min_df: int, threads: int = 1):
        self.texts, self.min_df, self.threads = texts, min_df, threads
        self.fitted: dict[tuple, tuple] = {}  # (block name, vectorizer parameters) -> (vectorizer, matrix)
        self.seconds: dict[tuple, float] = {}  # the same keys -> seconds their fit took
        self._rows: tuple | None = None  # (a candidate's block keys, training rows, validation rows): rows()

    def vectorizers(self, candidate: Candidate) -> dict[str, TfidfVectorizer]:
        return {name: vectorizer for name, (vectorizer, _) in self._blocks(candidate).items()}

    def matrix(self, candidate: Candidate):
        return _stack({name: matrix for name, (_, matrix) in self._blocks(candidate).items()})

    def rows(self, candidate: Candidate, train: np.ndarray, valid: np.ndarray):
        """The candidate's matrix's ``train`` and ``valid`` rows. The last ones asked for are kept
        until ``forget_rows``: the candidates after the default mostly share its blocks (C, class
        weights), and stacking and slicing 20newsgroups' 29M stored values took 0.5-0.7 s each time."""
        keys = tuple(self._keys(candidate))
        if self._rows is None or self._rows[0] != keys:
            self._rows = None  # (the previous ones freed first)
            x = self.matrix(candidate)
            self._rows = (keys, x[train], x[valid])
        return self._rows[1:]

    def forget_rows(self) -> None:
        self._rows = None

    def expected_seconds(self, candidate: Candidate) -> float:
        """Seconds the candidate's blocks not fitted yet are expected to take: each as long as the
        slowest fitted block of its name (a case-sensitive "word" block as the lowercase one), times
        its analyzer's cost relative to that block's (selection.ANALYZER_COST)."""
        def cost(key) -> float:
            return ANALYZER_COST.get(dict(key[1])["analyzer"], 1.0)

        expected = 0.0
        for key in self._keys(candidate):
            if key not in self.fitted:
                expected += max((s * cost(key) / cost(fitted) for fitted, s in self.seconds.items()
                                 if fitted[0] == key[0]), default=0.0)
        return expected

    def _keys(self, candidate: Candidate) -> dict[tuple, TfidfVectorizer]:
        """(block name, vectorizer parameters) -> unfitted vectorizer: equal parameters fit alike."""
        return {(name, tuple(sorted(vectorizer.get_params().items()))): vectorizer
                for name, vectorizer in candidate.vectorizers(self.min_df).items()}

    def _blocks(self, candidate: Candidate) -> dict[str, tuple]:
        keys = self._keys(candidate)
        new = [(key, vectorizer) for key, vectorizer in keys.items() if key not in self.fitted]

        def fit(key, vectorizer) -> None:
            started = time.monotonic()
            self.fitted[key] = (vectorizer, fast_tfidf.fit_transform(vectorizer, self.texts))
            self.seconds[key] = time.monotonic() - started

        with ThreadPoolExecutor(max(1, min(self.threads, len(new)))) as pool:
            list(pool.map(lambda item: fit(*item), new))
        return {key[0]: self.fitted[key] for key in keys}


def _redundant(candidate: Candidate, candidates: Sequence[Candidate], scores: dict, target: np.ndarray,
               mode: Mode) -> str | None:
    """Why the search need not fit ``candidate`` (None: it should), given the list it is in, the
    validation ``scores`` of the candidates fitted so far and the training split's labels ``target``.

    - C is searched along a line from the first candidate that differs from this one only in C (its
      base): the candidate is skipped when a C on the other side of the base's scored at least as
      well as the base, as the validation score rarely has two peaks in C. (On the shared datasets,
      where C=1 scored at least C=0.5's, C=0.25 never scored above C=1.)
    - "balanced" class weights are skipped when they are all equal on the training split (every
      class as frequent, as in clinc150) and the unweighted candidate was fitted: the problem is
      the same.
    """
    base = next((c for c in candidates if c.C != candidate.C and replace(c, C=candidate.C) == candidate), None)
    if base is not None and base in scores:
        for other, score in scores.items():
            if (replace(base, C=other.C) == other and (other.C - base.C) * (candidate.C - base.C) < 0
                    and score >= scores[base]):
                return f"C={other.C:g} scored at least C={base.C:g}'s"
    if candidate.class_weight == "balanced":
        unweighted = replace(candidate, class_weight=None)
        counts = target.sum(axis=0)
        if mode is Mode.MULTI_CLASS:
            equal = np.ptp(counts[counts > 0]) == 0
        else:
            equal = bool(np.all(2 * counts == target.shape[0]))
        if equal and unweighted in scores:
            return f"balanced weights all equal: the problem of {unweighted.describe()}"
    return None


def _stack(blocks: dict):
    """The feature matrix: the blocks side by side, in order."""
    matrices = list(blocks.values())
    return matrices[0] if len(matrices) == 1 else sp.hstack(matrices, format="csr")


def _one_vs_rest_svm(x, target: np.ndarray, candidate: Candidate, mode: Mode, threads: int, tol: float = TOL,
                     start: sp.csr_matrix | None = None):
    """(features x labels) float32 weights and the intercepts of linear SVMs, each label against the
    rest, fitted by ``threads`` threads at once on the matrix as it is (classifier_core.linear_svm),
    each stopping at ``tol``; and their duals, (labels x documents) sparse, zero for a label not
    fitted. ``start``: duals of that shape to start from (fit_binary_svms).

    The problems are scikit-learn's. MULTI_CLASS: each class's is the one liblinear solves for it in
    a multi-class LinearSVC, C times the class's weight for the class and C for the rest; with two
    classes, LinearSVC's single SVM for the second against the first (split between the two when
    there are only two). MULTI_LABEL: one binary SVM per label, as a OneVsRestClassifier of
    LinearSVC would fit. A label present in every document (or in none) gets zero weights and an
    intercept that always (never) assigns it.
    """
    n_docs, n_labels = target.shape
    counts = target.sum(axis=0)
    balanced = candidate.class_weight == "balanced"  # each class weighed inversely to its frequency
    weights, intercept = np.zeros((x.shape[1], n_labels), dtype=np.float32), np.where(counts == n_docs, 1e3, -1e3)
    fitted = np.flatnonzero((counts > 0) & (counts < n_docs))

    def solve(problems, positives, c_positive, c_negative):
        _, b, duals = fit_binary_svms(x, positives, c_positive, c_negative, threads, tol,
                                      start=None if start is None else start[problems], out=weights, columns=problems,
                                      nb_weights=candidate.nb_weights)
        duals = duals.tocoo()
        return b, sp.csr_matrix((duals.data, (problems[duals.row], duals.col)), shape=(n_labels, n_docs))

    if mode is Mode.MULTI_CLASS:
        weight = n_docs / (n_labels * np.maximum(counts, 1)) if balanced else np.ones(n_labels)
        if len(fitted) == 2:
            first, second = fitted
            b, duals = solve(fitted[1:], target[:, [second]], candidate.C * weight[[second]],
                             candidate.C * weight[[first]])
            share = 0.5 if n_labels == 2 else 1.0
            weights[:, second] *= share
            weights[:, first] = -weights[:, second]
            intercept[first], intercept[second] = -b[0] * share, b[0] * share
            return weights, intercept, duals
        c_positive, c_negative = candidate.C * weight[fitted], np.full(len(fitted), candidate.C)
    elif balanced:  # scikit-learn's "balanced" for a binary problem: n / (2 x the class's count)
        c_positive = candidate.C * n_docs / (2 * counts[fitted])
        c_negative = candidate.C * n_docs / (2 * (n_docs - counts[fitted]))
    else:
        c_positive = c_negative = np.full(len(fitted), candidate.C)
    intercept[fitted], duals = solve(fitted, target[:, fitted], c_positive, c_negative)
    return weights, intercept, duals

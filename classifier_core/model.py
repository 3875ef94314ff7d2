"""TextClassifier: TF-IDF word (+ char) n-grams and a linear model chosen on the training data.

Follows the scikit-learn estimator contract: ``__init__`` stores parameters only, ``fit``
returns ``self`` and sets trailing-underscore state, prediction checks it was fitted.

``fit`` picks a configuration among candidates (classifier_core.selection) on a validation
split of the training data, within a time budget; calibrates the scores on that split
(multi-class: temperature-scaled softmax; multi-label: per-label thresholds folded into a
sigmoid so 0.5 is the decision point); then refits the chosen configuration on all of it.
The fitted model keeps only the vectorizers and a float32 weight matrix, so prediction is
one sparse product and explanations are the per-term products.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from classifier_core import fast_scores, fast_tfidf
from classifier_core.config import LABEL_THRESHOLD, Mode
from classifier_core.errors import ModelError
from classifier_core.metrics import indicator_matrix
from classifier_core.model_metadata import METADATA_FILE, MODEL_FORMAT, read_metadata
from classifier_core.out_of_core import fit_out_of_core
from classifier_core.selection import (
    MULTI_CLASS_CANDIDATES,
    MULTI_LABEL_CANDIDATES,
    Candidate,
    fit_label_scale,
    fit_temperature,
    tune_thresholds,
    validation_split,
)

_MODEL_FILE = "model.joblib"
MIN_DOCUMENTS_FOR_SEARCH = 50
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
        time_budget: seconds the search may spend; candidates not started by then are skipped.
        candidates: the configurations to choose from; default: the mode's list in
            classifier_core.selection.
        validation_fraction: share of the training data held out to choose and calibrate.
        min_df: minimum document frequency of a feature (1 for tiny corpora).
        random_state: seed of the validation split.
        n_jobs: processes fitting the per-label models of MULTI_LABEL (-1: all cores).
        out_of_core_threshold: characters of training text above which ``fit`` streams the data
            in bounded memory (classifier_core.out_of_core) rather than building the feature matrix.
    """

    def __init__(
        self,
        mode: Mode = Mode.MULTI_CLASS,
        search: bool = True,
        time_budget: float = 120.0,
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
        self.vectorizers_ = {"word": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, dtype=np.float32)}
        if any(c.features == "word+char" for c in candidates):
            self.vectorizers_["char"] = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                                        min_df=min_df, dtype=np.float32)
        # IDF statistics come from all training texts (no labels involved), so the split and
        # the final fit share one vectorisation.
        # fast_tfidf gives scikit-learn's fitted vectorizers and matrices, only faster.
        blocks = {name: fast_tfidf.fit_transform(v, texts) for name, v in self.vectorizers_.items()}
        self.search_ = []
        chosen, calibration = candidates[0], {}
        if len(texts) >= MIN_DOCUMENTS_FOR_SEARCH:
            chosen, calibration = self._select(candidates, blocks, target, started)
        self.config_ = chosen
        self.temperature_ = calibration.get("temperature", 1.0)
        self.thresholds_ = calibration.get("thresholds", np.zeros(len(self.labels_)))
        self.label_scale_ = calibration.get("scale", 1.0)
        self.weights_, self.intercept_ = self._fit_weights(chosen, _features(blocks, chosen), target)
        if chosen.features == "word":
            self.vectorizers_.pop("char", None)
        self.fit_seconds_ = time.monotonic() - started
        return self

    def _select(self, candidates, blocks, target, started) -> tuple[Candidate, dict]:
        """Scores each candidate on the validation split; returns the best and its calibration."""
        single = [row.argmax() for row in target] if self.mode is Mode.MULTI_CLASS else None
        train, valid = validation_split(
            [self.labels_[i] for i in single] if single is not None else None,
            target.shape[0], self.validation_fraction, self.random_state,
        )
        if len(valid) == 0 or len(train) == 0:
            return candidates[0], {}
        best = None
        for candidate in candidates:
            if best is not None and time.monotonic() - started > self.time_budget:
                self.search_.append({"candidate": candidate.describe(), "skipped": "time budget"})
                continue
            t0 = time.monotonic()
            x = _features(blocks, candidate)
            weights, intercept = self._fit_weights(candidate, x[train], target[train])
            decisions = np.asarray(x[valid] @ weights) + intercept
            score, calibration = self._validate(decisions, target[valid])
            self.search_.append({"candidate": candidate.describe(), "validation_score": round(score, 6),
                                 "seconds": round(time.monotonic() - t0, 2)})
            if best is None or score > best[0]:
                best = (score, candidate, calibration)
        return best[1], best[2]

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

    def _fit_weights(self, candidate: Candidate, x, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fits the candidate's linear model; returns (features x labels) float32 weights and intercepts,
        so decision scores are ``x @ weights + intercept`` whatever the model was.

        C order matters: a sparse matrix times it reads contiguous memory, where the transpose
        of scikit-learn's (labels x features) made scipy copy the whole matrix on every call.
        """
        if self.mode is Mode.MULTI_CLASS:
            y = target.argmax(axis=1)
            if candidate.loss == "log":
                model = LogisticRegression(C=candidate.C, max_iter=1000, class_weight=candidate.class_weight)
            else:
                model = LinearSVC(C=candidate.C, class_weight=candidate.class_weight, random_state=0)
            model.fit(x, y)
            coef, intercept = model.coef_, model.intercept_
            if coef.shape[0] == 1:  # binary: one weight vector, for the second class
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        else:
            model = OneVsRestClassifier(LinearSVC(C=candidate.C, class_weight=candidate.class_weight, random_state=0),
                                        n_jobs=self.n_jobs)
            model.fit(x, target.astype(np.int8))
            coef = np.vstack([_coef(e, x.shape[1]) for e in model.estimators_])
            intercept = np.array([_intercept(e) for e in model.estimators_])
        return np.ascontiguousarray(coef.T, dtype=np.float32), np.asarray(intercept, dtype=np.float32)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw linear scores of shape (documents, labels), float64: computed from the documents'
        feature occurrences (classifier_core.fast_scores), else as ``transform(texts) @ weights_``."""
        check_is_fitted(self, "weights_")
        blocks = {"word": self.vectorizers_["word"]}  # in the order of _features
        if self.config_.features != "word" and "char" in self.vectorizers_:
            blocks["char"] = self.vectorizers_["char"]
        scores = fast_scores.decision_scores(blocks, self.weights_, self.intercept_, texts)
        if scores is not None:
            return scores
        x = self.transform(texts)
        return (np.asarray(x @ self.weights_) + self.intercept_).astype(np.float64)

    def transform(self, texts: Sequence[str]):
        check_is_fitted(self, "weights_")
        blocks = fast_tfidf.transform(self.vectorizers_, texts)  # = each vectorizer's transform, faster
        return _features(blocks, self.config_)

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of shape (documents, labels), columns in ``labels_`` order.

        MULTI_CLASS: calibrated probabilities summing to 1 per row. MULTI_LABEL: independent
        per-label scores; a label is assigned iff its score >= 0.5.
        """
        check_is_fitted(self, "weights_")
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=float)
        decisions = self.decision_function(texts)
        if self.mode is Mode.MULTI_CLASS:
            return softmax(decisions / self.temperature_, axis=1)
        return expit(self.label_scale_ * (decisions - self.thresholds_))

    def explain(self, texts: Sequence[str], labels_per_text: Sequence[Sequence[str]], top: int = 5) -> list[dict]:
        """The words that pushed each text toward each given label: ``{label: [[term, weight], ...]}``.

        A term's weight is its TF-IDF value in the text times the label's coefficient for it
        (the word n-gram part of the linear score), largest first, positive ones only.
        """
        check_is_fitted(self, "weights_")
        words = self.vectorizers_["word"]
        x = fast_tfidf.transform({"word": words}, texts)["word"].tocsr()
        names = self._word_names()
        index = {label: j for j, label in enumerate(self.labels_)}
        explained = []
        for row, labels in enumerate(labels_per_text):
            start, end = x.indptr[row], x.indptr[row + 1]
            columns, values = x.indices[start:end], x.data[start:end]
            per_label = {}
            for label in labels:
                weights = values * self.weights_[columns, index[label]]
                order = np.argsort(-weights)[:top]
                per_label[label] = [[str(names[columns[k]]), round(float(weights[k]), 4)] for k in order if weights[k] > 0]
            explained.append(per_label)
        return explained

    def _word_names(self) -> np.ndarray:
        if getattr(self, "_word_names_cache", None) is None:
            self._word_names_cache = self.vectorizers_["word"].get_feature_names_out()
        return self._word_names_cache

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Boolean (documents, labels) decisions from scores, as the job output assigns them."""
        if self.mode is Mode.MULTI_CLASS:
            decided = np.zeros(scores.shape, dtype=bool)
            if scores.shape[0]:
                decided[np.arange(scores.shape[0]), np.argmax(scores, axis=1)] = True
            return decided
        return scores >= LABEL_THRESHOLD

    def save(self, directory: str | Path) -> Path:
        """Writes the model and its metadata into ``directory`` (created if missing)."""
        check_is_fitted(self, "weights_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / _MODEL_FILE, compress=3)
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
    return model


def _features(blocks: dict, candidate: Candidate):
    """The candidate's feature matrix: the word block, or word and char blocks side by side."""
    if candidate.features == "word" or "char" not in blocks:
        return blocks["word"]
    return sp.hstack([blocks["word"], blocks["char"]], format="csr")


def _coef(estimator, features: int) -> np.ndarray:
    # OneVsRest puts a constant predictor in place of a label present in every (or no) document.
    return estimator.coef_ if hasattr(estimator, "coef_") else np.zeros((1, features))


def _intercept(estimator) -> float:
    if hasattr(estimator, "intercept_"):
        return float(np.ravel(estimator.intercept_)[0])
    return 1e3 if np.ravel(estimator.y_)[0] else -1e3

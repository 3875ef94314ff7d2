"""A fitted model's scoring, without scikit-learn: what classifying documents needs.

``TextClassifier.save`` writes it beside the full model as ``scorer.pkl``: the frozen vectorizers
(fast_tfidf.FrozenTfidf) and the calibration; the weights, which both share, go to
``weights.npy``. ``load_scorer`` loads it for the processes that only classify (a job's shards,
``docclass classify-text``): importing scikit-learn, and through it scipy.stats, took 1-2.5 s of
each of them. The scores are the model's own: ``TextClassifier.predict_scores`` runs this very
code, and so are the explanations (``explain_terms``).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.special import expit

from classifier_core import fast_scores
from classifier_core.config import LABEL_THRESHOLD, Mode
from classifier_core.errors import ModelError
from classifier_core.fast_tfidf import FrozenTfidf
from classifier_core.model_metadata import read_metadata

SCORER_FILE = "scorer.pkl"
WEIGHTS_FILE = "weights.npy"


@dataclass
class Scorer:
    """Scores documents as the TextClassifier it comes from (``TextClassifier.scorer``) does."""

    mode: Mode
    labels_: list[str]
    vectorizers_: dict[str, FrozenTfidf]
    weights_: np.ndarray
    intercept_: np.ndarray
    temperature_: float
    thresholds_: np.ndarray
    label_scale_: float

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw linear scores of shape (documents, labels), float64."""
        return fast_scores.decision_scores(self.vectorizers_, self.weights_, self.intercept_, texts)

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of shape (documents, labels), columns in ``labels_`` order (TextClassifier.predict_scores)."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=float)
        return calibrated(self.mode, self.decision_function(texts), self.temperature_, self.thresholds_,
                          self.label_scale_)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return decide(self.mode, scores)

    def explain(self, texts: Sequence[str], labels_per_text: Sequence[Sequence[str]], top: int = 5) -> list[dict]:
        """The words that pushed each text toward each given label (``explain_terms``)."""
        if getattr(self, "_word_names", None) is None:  # (not a field: save() leaves it out)
            self._word_names = term_names(self.vectorizers_["word"].vocabulary_)
        return explain_terms(self.vectorizers_["word"], self._word_names, self.weights_, self.labels_, texts,
                             labels_per_text, top)

    def save(self, directory: Path) -> None:
        """Writes scorer.pkl into ``directory``, without the weights (``save_weights``)."""
        with open(directory / SCORER_FILE, "wb") as fp:
            pickle.dump(replace(self, weights_=None), fp, protocol=pickle.HIGHEST_PROTOCOL)


def calibrated(mode: Mode, decisions: np.ndarray, temperature: float, thresholds: np.ndarray, scale: float) -> np.ndarray:
    """MULTI_CLASS: probabilities, softmax(decisions / temperature). MULTI_LABEL: independent
    scores, sigmoid(scale * (decisions - thresholds)), so a label is assigned iff its score >= 0.5."""
    if mode is Mode.MULTI_CLASS:
        # scipy.special.softmax's arithmetic, without its array-API dispatch (70 us of a one-text answer)
        scaled = decisions / temperature
        shifted = np.exp(scaled - np.max(scaled, axis=1, keepdims=True))
        return shifted / np.sum(shifted, axis=1, keepdims=True)
    return expit(scale * (decisions - thresholds))


def term_names(vocabulary: dict[str, int]) -> np.ndarray:
    """The vocabulary's terms by feature number (scikit-learn's ``get_feature_names_out``)."""
    names = np.empty(len(vocabulary), dtype=object)
    names[np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))] = list(vocabulary)
    return names


def explain_terms(words: FrozenTfidf, names: np.ndarray, weights: np.ndarray, labels: list[str],
                  texts: Sequence[str], labels_per_text: Sequence[Sequence[str]], top: int = 5) -> list[dict]:
    """The words that pushed each text toward each given label: ``{label: [[term, weight], ...]}``.

    A term's weight is its TF-IDF value in the text times the label's coefficient for it (the
    word n-gram part of the linear score), largest first, positive ones only, at most ``top``.
    ``words`` is the model's word block (its features are the weights' first rows), ``names``
    its terms by feature number.
    """
    indptr, columns, values = fast_scores.tfidf_rows(words, texts)
    index = {label: j for j, label in enumerate(labels)}
    explained = []
    for row, row_labels in enumerate(labels_per_text):
        features, tfidf = columns[indptr[row]:indptr[row + 1]], values[indptr[row]:indptr[row + 1]]
        per_label = {}
        for label in row_labels:
            contributions = tfidf * weights[features, index[label]]
            order = np.argsort(-contributions, kind="stable")[:top]
            per_label[label] = [[str(names[features[k]]), round(float(contributions[k]), 4)]
                                for k in order if contributions[k] > 0]
        explained.append(per_label)
    return explained


def decide(mode: Mode, scores: np.ndarray) -> np.ndarray:
    """Boolean (documents, labels) decisions from scores, as the job output assigns them."""
    if mode is Mode.MULTI_CLASS:
        decided = np.zeros(scores.shape, dtype=bool)
        if scores.shape[0]:
            decided[np.arange(scores.shape[0]), np.argmax(scores, axis=1)] = True
        return decided
    return scores >= LABEL_THRESHOLD


def load_scorer(directory: str | Path):
    """The model saved in ``directory``, for classifying: its Scorer, or the whole TextClassifier
    when there is none (models saved before scorer.pkl existed, vectorizers fast_tfidf does not
    reproduce). Both have ``mode``, ``labels_``, ``predict_scores`` and ``decide``.

    Raises:
        ModelError: if the directory holds no docclass model or one of another format.
    """
    directory = Path(directory)
    read_metadata(directory)
    path = directory / SCORER_FILE
    if not path.is_file():
        from classifier_core.model import load_model

        return load_model(directory)
    with open(path, "rb") as fp:
        scorer = pickle.load(fp)
    if not isinstance(scorer, Scorer):
        raise ModelError(f"{path}: expected a Scorer; found {type(scorer).__name__}")
    scorer.weights_ = load_weights(directory)
    return scorer


def save_weights(directory: Path, weights: np.ndarray) -> None:
    """Writes a model's (features x labels) float32 weights to ``directory``'s weights.npy."""
    np.save(directory / WEIGHTS_FILE, weights, allow_pickle=False)


def load_weights(directory: Path) -> np.ndarray:
    """The (features x labels) float32 weights saved in ``directory``'s weights.npy."""
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"{path}: expected the model's weights; found no file")
    return np.load(path, allow_pickle=False)

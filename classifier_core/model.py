"""TextClassifier: TF-IDF word n-grams + a linear model, saved to a directory we own.

Follows the scikit-learn estimator contract: ``__init__`` stores parameters only, ``fit``
returns ``self`` and sets trailing-underscore state, prediction checks it was fitted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from classifier_core.config import LABEL_THRESHOLD, Mode
from classifier_core.errors import ModelError
from classifier_core.metrics import indicator_matrix

MODEL_FORMAT = "docclass-model/1"
_MODEL_FILE = "model.joblib"
_METADATA_FILE = "metadata.json"


class TextClassifier(BaseEstimator):
    """A Comprehend-style text classifier in one of the two modes.

    Args:
        mode: MULTI_CLASS (one class per document, probabilities summing to 1) or
            MULTI_LABEL (an independent score per label).
        ngram_range: word n-gram range of the TF-IDF features.
        min_df: minimum document frequency of a feature; 2 keeps rare bigrams out, which
            keeps models small without costing accuracy.
        C: inverse regularisation strength of the logistic regression.
        class_weight: passed to each model; "balanced" lifts rare labels' recall.
    """

    def __init__(
        self,
        mode: Mode = Mode.MULTI_CLASS,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        C: float = 30.0,
        class_weight: str | None = None,
    ):
        self.mode = mode
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.C = C
        self.class_weight = class_weight

    def fit(self, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> TextClassifier:
        """Fits on texts and their labels (one per document in MULTI_CLASS mode)."""
        self.labels_ = sorted({label for doc_labels in labels for label in doc_labels})
        # min_df > 1 would leave a tiny corpus with no vocabulary at all.
        min_df = self.min_df if len(texts) >= 20 * self.min_df else 1
        vectorizer = TfidfVectorizer(
            ngram_range=self.ngram_range, sublinear_tf=True, min_df=min_df, dtype=np.float32
        )
        if self.mode is Mode.MULTI_CLASS:
            estimator = LogisticRegression(C=self.C, max_iter=1000, class_weight=self.class_weight)
            target = np.array([doc_labels[0] for doc_labels in labels])
        else:
            estimator = OneVsRestClassifier(
                LogisticRegression(C=self.C, solver="liblinear", class_weight=self.class_weight)
            )
            target = indicator_matrix(labels, self.labels_).astype(np.int8)
        self.pipeline_ = Pipeline([("tfidf", vectorizer), ("model", estimator)]).fit(texts, target)
        return self

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of shape (documents, labels), columns in ``labels_`` order.

        MULTI_CLASS: probabilities summing to 1 per row. MULTI_LABEL: independent
        per-label scores; a label is assigned iff its score >= 0.5.
        """
        check_is_fitted(self, "pipeline_")
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=float)
        return self.pipeline_.predict_proba(texts)

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
        check_is_fitted(self, "pipeline_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / _MODEL_FILE, compress=3)
        metadata = {
            "format": MODEL_FORMAT,
            "mode": self.mode.value,
            "labels": self.labels_,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "sklearn_version": sklearn.__version__,
        }
        (directory / _METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        return directory


def load_model(directory: str | Path) -> TextClassifier:
    """Loads a model saved by ``TextClassifier.save``.

    Raises:
        ModelError: if the directory holds no docclass model or one of another format.
    """
    directory = Path(directory)
    metadata_path = directory / _METADATA_FILE
    if not metadata_path.is_file():
        raise ModelError(f"{directory}: expected a docclass model directory; found no {_METADATA_FILE}")
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    if metadata.get("format") != MODEL_FORMAT:
        raise ModelError(
            f"{metadata_path}: expected model format {MODEL_FORMAT!r}; found {metadata.get('format')!r}"
        )
    model = joblib.load(directory / _MODEL_FILE)
    if not isinstance(model, TextClassifier):
        raise ModelError(f"{directory / _MODEL_FILE}: expected a TextClassifier; found {type(model).__name__}")
    return model


def _jsonable(value):
    return value.value if isinstance(value, Mode) else value

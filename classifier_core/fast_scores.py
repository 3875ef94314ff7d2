"""Decision scores of TF-IDF features times a linear model, without building the TF-IDF matrix.

``model.decision_function`` is ``hstack(tfidf blocks) @ weights + intercept``. Building the
sparse blocks costs most of a classification job: scipy multiplies (documents x words) by
(words x n-grams), sorts rows, hstacks, normalises and only then multiplies by the weights.
Here one compiled loop (numba) walks each document's feature occurrences
(``fast_tfidf.occurrences``) once: it counts them in a scratch array, turns each distinct
feature into its TF-IDF value (sublinear TF, IDF, norm: the fitted ``TfidfTransformer``'s
settings), and adds value x weight row into the document's scores.

The scores equal scikit-learn's to float rounding (computed here in float64, where scipy sums
float32 products in another order), and each document's scores depend on that document
only, never on the batch around it. Vectorizers ``fast_tfidf`` does not reproduce give None,
and the caller builds the matrix instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from classifier_core import fast_tfidf

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

_NORMS = {None: 0, "l2": 1, "l1": 2}


def decision_scores(blocks: Mapping[str, TfidfVectorizer | fast_tfidf.FrozenTfidf], weights: np.ndarray,
                    intercept: np.ndarray, texts: Sequence[str]) -> np.ndarray | None:
    """``hstack([v.transform(texts) for v in blocks.values()]) @ weights + intercept`` as float64,
    the blocks' features numbered in that order; None when a vectorizer is not supported."""
    frozen = {name: fast_tfidf.freeze(vec) for name, vec in blocks.items()}
    if any(vec is None for vec in frozen.values()):
        return None
    found = fast_tfidf.occurrences(frozen, texts)
    if found is None:
        return None
    scores = np.zeros((len(texts), weights.shape[1]), dtype=np.float64)
    offset = 0
    for name, vec in frozen.items():
        n_features = len(vec.vocabulary_)
        idf = vec.idf_ if vec.idf_ is not None else np.ones(n_features)
        occ = found[name]
        _accumulate(scores, occ.doc_ptr, occ.item_of, occ.item_ptr, occ.features, idf,
                    vec.sublinear_tf, _NORMS[vec.norm], weights, offset)
        offset += n_features
    scores += intercept
    return scores


@njit(cache=True, nogil=True)
def _tf_table(sublinear):  # pragma: no cover (compiled)
    """The TF of the counts most features have (0-255)."""
    tf_of = np.empty(256, dtype=np.float64)
    for c in range(256):
        tf_of[c] = 1.0 + math.log(c) if sublinear and c > 0 else float(c)
    return tf_of


@njit(cache=True, nogil=True)
def _document(d, doc_ptr, item_of, item_ptr, features, idf, sublinear, norm, tf_of, counts, touched, values, start):  # pragma: no cover (compiled)
    """Document ``d``'s distinct features and their TF-IDF values (normalised) into ``touched`` and
    ``values`` from ``start``, in order of first occurrence; returns where they end. ``counts``
    (zeros, one per feature) is left zero."""
    n = start
    for o in range(doc_ptr[d], doc_ptr[d + 1]):
        item = item_of[o]
        for p in range(item_ptr[item], item_ptr[item + 1]):
            f = features[p]
            if f < 0:
                continue
            if counts[f] == 0:
                touched[n] = f
                n += 1
            counts[f] += 1
    total = 0.0
    for t in range(start, n):
        f = touched[t]
        c = counts[f]
        counts[f] = 0
        if c < len(tf_of):
            v = tf_of[c]
        else:
            v = 1.0 + math.log(c) if sublinear else float(c)
        v *= idf[f]
        values[t] = v
        total += v * v if norm == 1 else abs(v)
    scale = 1.0
    if norm == 1 and total > 0.0:
        scale = 1.0 / math.sqrt(total)
    elif norm == 2 and total > 0.0:
        scale = 1.0 / total
    for t in range(start, n):
        values[t] *= scale
    return n


@njit(cache=True, nogil=True)
def _accumulate(scores, doc_ptr, item_of, item_ptr, features, idf, sublinear, norm, weights, offset):  # pragma: no cover (compiled)
    n_features = len(idf)
    counts = np.zeros(n_features, dtype=np.int32)
    touched = np.empty(n_features, dtype=np.int64)
    values = np.empty(n_features, dtype=np.float64)
    tf_of = _tf_table(sublinear)
    for d in range(len(doc_ptr) - 1):
        n = _document(d, doc_ptr, item_of, item_ptr, features, idf, sublinear, norm, tf_of, counts, touched, values, 0)
        for t in range(n):
            v = values[t]
            row = offset + touched[t]
            for k in range(weights.shape[1]):
                scores[d, k] += v * weights[row, k]


def tfidf_rows(vec: fast_tfidf.FrozenTfidf, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The TF-IDF rows of ``texts`` as CSR arrays (indptr, features, values), each value the one
    ``decision_scores`` multiplies by the weights; a row's features in order of first occurrence.
    None for texts ``fast_tfidf.occurrences`` does not take."""
    found = fast_tfidf.occurrences({"x": vec}, texts)
    if found is None:
        return None
    occ = found["x"]
    idf = vec.idf_ if vec.idf_ is not None else np.ones(len(vec.vocabulary_))
    return _rows(occ.doc_ptr, occ.item_of, occ.item_ptr, occ.features, idf, vec.sublinear_tf, _NORMS[vec.norm])


@njit(cache=True, nogil=True)
def _rows(doc_ptr, item_of, item_ptr, features, idf, sublinear, norm):  # pragma: no cover (compiled)
    counts = np.zeros(len(idf), dtype=np.int32)
    n_docs = len(doc_ptr) - 1
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    columns = np.empty(len(features), dtype=np.int64)  # at most one per occurrence
    values = np.empty(len(features), dtype=np.float64)
    tf_of = _tf_table(sublinear)
    for d in range(n_docs):
        indptr[d + 1] = _document(d, doc_ptr, item_of, item_ptr, features, idf, sublinear, norm, tf_of, counts, columns,
                                  values, indptr[d])
    return indptr, columns[:indptr[n_docs]], values[:indptr[n_docs]]

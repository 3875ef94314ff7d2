"""Linear SVMs (L2-regularised, squared hinge loss) solved by dual coordinate descent on the
feature matrix as it is: liblinear's solver ``L2R_L2LOSS_SVC_DUAL``, the one LinearSVC uses,
compiled with numba.

The problems are LinearSVC's (same objective, intercept as a regularised feature of value 1, same
shrinking and stopping rule), and so are the solutions at LinearSVC's ``tol``; but:

- the CSR matrix is read in place, float32 or float64: scikit-learn converts it to liblinear's
  own format on every fit, which cost a quarter of a multi-label search (one fit per label);
- the binary problems run in threads at once, without the GIL, sharing that one matrix;
- the solver sees the features renumbered by falling document frequency, so the weights it
  reads most lie together in cache: 17-25% faster on 20newsgroups and reuters, and the same
  result to the bit (a document's features are still summed in the same order);
- the feature numbers are unsigned, so numba's compiled reads of w skip the test for negative
  (wrapped-around) indices: 14-30% faster fits, the same result to the bit;
- each step asks the CPU to load the next document's row and variables (classifier_core._prefetch)
  while it works on this one: the documents come in random order, so the hardware cannot guess
  them; fits 5-15% faster on clinc150, goemotions and reuters, the same result to the bit;
- the weights are float32, as the features are: half the memory to gather from and scatter to,
  where a pass spends its time once they outgrow the cache (fits 8-15% faster on reuters and
  20newsgroups). Dot products and the intercept, which every step updates, stay float64.

Hsieh et al., "A dual coordinate descent method for large-scale linear SVM", ICML 2008.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from numba import njit
from sklearn.exceptions import ConvergenceWarning

from classifier_core._prefetch import prefetch

# Stop when the dual's projected gradients all lie within TOL of each other. liblinear's own default
# for this solver is 0.1, LinearSVC's 1e-4. At 1e-2 benchmarks/accuracy.py's table for docclass came
# out identical to 1e-4's (every score, every shared dataset), and the slow problems (rare labels
# weighed "balanced": up to 1000 passes at 1e-4) converge 2-4x sooner.
TOL = 1e-2
MAX_ITER = 1000  # LinearSVC's default


def fit_binary_svms(x, positives: np.ndarray, c_positive: np.ndarray, c_negative: np.ndarray, threads: int,
                    tol: float = TOL, max_iter: int = MAX_ITER,
                    start: sp.csr_matrix | None = None, out: np.ndarray | None = None,
                    columns: np.ndarray | None = None,
                    nb_weights: bool = False) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Fits one binary SVM per column of ``positives`` (documents x problems, bool).

    Problem j weighs a positive document's loss by ``c_positive[j]`` and a negative one's by
    ``c_negative[j]`` (C times the class weights). Returns the problems' weights, (features x
    problems) float32, and intercepts, as LinearSVC's ``coef_[0]`` and ``intercept_[0]`` for the
    positive class; and the solutions' dual variables, (problems x documents) sparse: a document's
    is non-zero where it lies inside its problem's margin.

    ``out``, a (features x k) float32 array, receives problem j's weights in its column
    ``columns[j]`` (default j) instead, and is returned: the weights are written once, where the
    model keeps them (at Comprehend's 1,000 classes, float64 copies on the way took five times the
    memory).

    ``start``, duals of that shape, warm-starts each problem from them (liblinear's warm start):
    from a solution on part of the documents, the others' duals at zero, a refit on all of them
    converges in fewer passes than from zero, to the same optimum.

    ``nb_weights``: problem j sees each feature scaled by its Naive Bayes weight for j
    (``nb_scale``), as NBSVM does (Wang & Manning, "Baselines and bigrams", ACL 2012), in a copy of
    the matrix's values, one per thread (the indices are shared); its weights times the scale are
    returned, the weights for the features as they are. (Scaling inside the solver instead, without
    the copy, took 13.6-14.9 s on 20newsgroups against 12.8-13.2 s: benchmarks/RESULTS.md.)
    """
    x = sp.csr_matrix(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    indptr, data = x.indptr, x.data
    # feature -> its place by falling frequency; unsigned, so reads of w skip numba's wraparound test
    rank = np.empty(x.shape[1], dtype=np.uint32)
    rank[np.argsort(-np.bincount(x.indices, minlength=x.shape[1]), kind="stable")] = np.arange(x.shape[1])
    indices = rank[x.indices]
    # + the intercept's feature, 1 in every document (NB weights: each problem's own, from its scaled values)
    squares = None if nb_weights else _squared_norms(indptr, data) + 1.0
    n_problems = positives.shape[1]
    if out is None:
        out = np.zeros((x.shape[1], n_problems), dtype=np.float32)
    if columns is None:
        columns = np.arange(n_problems)
    intercept = np.zeros(n_problems)
    iterations = np.zeros(n_problems, dtype=np.int64)
    support: list = [None] * n_problems  # each problem's (documents, duals) where the duals are non-zero
    column_sums = _row_sums(indptr, indices, data, np.arange(x.shape[0]), x.shape[1]) if nb_weights else None
    scratch = threading.local()  # a thread's copy of the values, scaled for its problem of the moment

    def fit(j: int) -> None:
        w, alpha = np.zeros(x.shape[1], dtype=np.float32), np.zeros(x.shape[0])
        if start is not None:
            alpha[start.indices[start.indptr[j]:start.indptr[j + 1]]] = start.data[start.indptr[j]:start.indptr[j + 1]]
        y = np.where(positives[:, j], 1.0, -1.0)
        diagonal = np.where(positives[:, j], 0.5 / c_positive[j], 0.5 / c_negative[j])
        scale, problem_data, problem_squares = None, data, squares
        if nb_weights:  # the values scaled for this problem (in the solver's feature order)
            if not hasattr(scratch, "data"):  # (reused: allocating it anew took longer than filling it)
                scratch.data, scratch.squares = np.empty_like(data), np.empty(x.shape[0])
            inside = _row_sums(indptr, indices, data, np.flatnonzero(positives[:, j]), x.shape[1])
            scale = nb_scale(inside, column_sums).astype(data.dtype)
            problem_data, problem_squares = scratch.data, scratch.squares
            _scale_rows(indptr, indices, data, scale, problem_data, problem_squares)
        iterations[j], intercept[j] = _dual_coordinate_descent(indptr, indices, problem_data, problem_squares, y,
                                                               diagonal, w, alpha, tol, max_iter, j)
        if scale is not None:
            w *= scale  # the weights for the features as they are
        out[:, columns[j]] = w[rank]
        documents = np.flatnonzero(alpha)
        support[j] = (documents, alpha[documents])

    with ThreadPoolExecutor(max(1, min(threads, n_problems))) as pool:
        list(pool.map(fit, range(n_problems)))
    if (iterations >= max_iter).any():
        warnings.warn("the linear SVM solver did not converge within max_iter iterations", ConvergenceWarning)
    counts = [len(documents) for documents, _ in support]
    duals = sp.csr_matrix((np.concatenate([d for _, d in support] or [np.zeros(0)]),
                           np.concatenate([i for i, _ in support] or [np.zeros(0, dtype=np.int64)]),
                           np.r_[0, np.cumsum(counts)]), shape=(n_problems, x.shape[0]))
    return out, intercept, duals


# NB weights: the smoothing added to every feature's summed values in and out of the class (TF-IDF
# values, 0.05-0.3 a word in a document), and the power of the log-count ratio's magnitude.
NB_SMOOTHING = 0.1
NB_POWER = 0.5


def nb_scale(inside: np.ndarray, column_sums: np.ndarray) -> np.ndarray:
    """Each feature's Naive Bayes weight for a class against the rest, from its values summed over
    the class's documents (``inside``) and over all of them: the magnitude of its log-count ratio
    (NBSVM's r, here on the feature values, each side smoothed by NB_SMOOTHING) to the power NB_POWER,
    divided by its mean so C keeps its meaning. Features typical of either side weigh more: the SVM's
    regularisation then favours them, where it treats every feature alike. (The sign of r is the
    SVM's to learn: a weight may be negative.)"""
    p = inside + NB_SMOOTHING
    q = np.maximum(column_sums - inside, 0.0) + NB_SMOOTHING
    r = np.abs(np.log(p / p.sum()) - np.log(q / q.sum())) ** NB_POWER
    mean = r.mean()
    return r / mean if mean > 0 else np.ones_like(r)  # (the class no different from the rest: no weights)


@njit(cache=True, nogil=True)
def _row_sums(indptr, indices, data, rows, n_features):
    """Each feature's values summed over the given rows."""
    sums = np.zeros(n_features)
    for i in rows:
        for p in range(indptr[i], indptr[i + 1]):
            sums[indices[p]] += data[p]
    return sums


@njit(cache=True, nogil=True)
def _scale_rows(indptr, indices, data, scale, out, squares):
    """``out``: the values times their feature's scale; ``squares``: each row's squared norm then, plus 1
    (the intercept's feature)."""
    for i in range(indptr.shape[0] - 1):
        total = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            value = data[p] * scale[indices[p]]
            out[p] = value
            total += float(value) * value
        squares[i] = total + 1.0


@njit(cache=True, nogil=True)
def _squared_norms(indptr, data):
    squares = np.zeros(indptr.shape[0] - 1)
    for i in range(squares.shape[0]):
        for p in range(indptr[i], indptr[i + 1]):
            squares[i] += float(data[p]) * data[p]
    return squares


@njit(cache=True, nogil=True)
def _dual_coordinate_descent(indptr, indices, data, squares, y, diagonal, w, alpha, tol, max_iter, seed):
    """liblinear's solve_l2r_l1l2_svc for the squared hinge loss, from the duals ``alpha`` (zeros:
    liblinear's start), which receive the solution's; w (zeros) receives the features' weights.
    Returns the number of iterations and the intercept (kept in float64, w may be float32)."""
    n = y.shape[0]
    b = 0.0  # the intercept
    for i in range(n):  # the primal weights of the starting duals
        if alpha[i] != 0.0:
            d = alpha[i] * y[i]
            for p in range(indptr[i], indptr[i + 1]):
                w[indices[p]] += d * data[p]
            b += d
    qd = squares + diagonal
    order = np.arange(n)
    active = n
    pg_max_old, pg_min_old = np.inf, -np.inf
    state = np.uint64(seed * 2654435761 + 1)
    iteration = 0
    while iteration < max_iter:
        pg_max_new, pg_min_new = -np.inf, np.inf
        for i in range(active):  # a random order each pass
            state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
            k = i + int((state >> np.uint64(33)) % np.uint64(active - i))
            order[i], order[k] = order[k], order[i]
        s = 0
        while s < active:
            if s + 2 < active:  # the document after next's row bounds, the next one's row and scalars
                prefetch(indptr, order[s + 2])
            if s + 1 < active:
                j = order[s + 1]
                q, last = indptr[j], indptr[j + 1] - 1  # (addresses inside the arrays only)
                if q <= last:
                    prefetch(indices, q)
                    prefetch(indices, min(q + 16, last))
                    prefetch(data, q)
                    prefetch(data, min(q + 16, last))
                prefetch(alpha, j)
                prefetch(qd, j)
                prefetch(y, j)
                prefetch(diagonal, j)
            i = order[s]
            g = b
            for p in range(indptr[i], indptr[i + 1]):
                g += w[indices[p]] * data[p]
            g = g * y[i] - 1.0 + alpha[i] * diagonal[i]
            pg = 0.0
            if alpha[i] == 0.0:
                if g > pg_max_old:  # shrink: likely to stay at 0
                    active -= 1
                    order[s], order[active] = order[active], order[s]
                    continue
                if g < 0.0:
                    pg = g
            else:
                pg = g
            pg_max_new = max(pg_max_new, pg)
            pg_min_new = min(pg_min_new, pg)
            if abs(pg) > 1e-12:
                old = alpha[i]
                alpha[i] = max(old - g / qd[i], 0.0)
                d = (alpha[i] - old) * y[i]
                for p in range(indptr[i], indptr[i + 1]):
                    w[indices[p]] += d * data[p]
                b += d
            s += 1
        iteration += 1
        if pg_max_new - pg_min_new <= tol:
            if active == n:
                break
            active = n  # converged on the active set: check every document once more
            pg_max_old, pg_min_old = np.inf, -np.inf
            continue
        pg_max_old = np.inf if pg_max_new <= 0 else pg_max_new
        pg_min_old = -np.inf if pg_min_new >= 0 else pg_min_new
    return iteration, b

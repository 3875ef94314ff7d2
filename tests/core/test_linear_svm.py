import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from classifier_core.linear_svm import fit_binary_svms, nb_scale


def _fit(*args, **kwargs):
    """fit_binary_svms with each problem's weights in a row."""
    weights, intercept, duals = fit_binary_svms(*args, **kwargs)
    return weights.T, intercept, duals


def _problem(n_docs=400, n_features=300, n_problems=4, seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(n_docs, n_features, density=0.04, format="csr", random_state=seed, dtype=np.float64)
    positives = rng.random((n_docs, n_problems)) < np.linspace(0.05, 0.5, n_problems)
    x = sp.lil_matrix(x)
    for j in range(n_problems):  # a feature per problem makes it learnable, but not separable
        x[np.flatnonzero(positives[:, j] & (rng.random(n_docs) < 0.8)), j] = 1.0
    x[7] = 0.0  # a document without features
    return sp.csr_matrix(x), positives


def _objective(x, positive, w, b, c_positive, c_negative) -> float:
    """The primal LinearSVC minimises: ||(w, b)||^2 / 2 + sum of C_i x squared hinge loss."""
    y = np.where(positive, 1.0, -1.0)
    loss = np.maximum(0.0, 1.0 - y * (x @ w + b)) ** 2
    return float((w @ w + b * b) / 2 + np.sum(np.where(positive, c_positive, c_negative) * loss))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_problem_is_linear_svcs_with_its_class_weights_at_its_tolerance(dtype):
    x, positives = _problem()
    c_positive, c_negative = np.array([0.5, 2.0, 1.0, 0.25]), np.array([0.5, 0.3, 1.0, 4.0])
    coef, intercept, _ = _fit(x.astype(dtype), positives, c_positive, c_negative, threads=2, tol=1e-4)
    default = _fit(x.astype(dtype), positives, c_positive, c_negative, threads=2)
    close = [_objective(x, positives[:, j], default[0][j], default[1][j], c_positive[j], c_negative[j])
             for j in range(positives.shape[1])]
    for j in range(positives.shape[1]):
        reference = LinearSVC(C=1.0, class_weight={0: c_negative[j], 1: c_positive[j]}, random_state=0)
        reference.fit(x.astype(dtype), positives[:, j].astype(int))
        np.testing.assert_allclose(coef[j], reference.coef_[0], atol=2e-3)
        np.testing.assert_allclose(intercept[j], reference.intercept_[0], atol=2e-3)
        ours = _objective(x, positives[:, j], coef[j], intercept[j], c_positive[j], c_negative[j])
        theirs = _objective(x, positives[:, j], reference.coef_[0], reference.intercept_[0], c_positive[j], c_negative[j])
        assert ours == pytest.approx(theirs, rel=1e-5)
        assert close[j] == pytest.approx(theirs, rel=1e-3)  # the default tol stops near the optimum
        assert np.abs(coef[j]).max() > 0.1  # something was learned, so the comparison means something


def test_the_result_does_not_depend_on_the_number_of_threads_or_the_index_type():
    x, positives = _problem(n_problems=5)
    c = np.full(5, 0.5)
    one = _fit(x, positives, c, c, threads=1)
    x64 = sp.csr_matrix((x.data, x.indices.astype(np.int64), x.indptr.astype(np.int64)), shape=x.shape)
    for threads, matrix in [(3, x), (2, x64)]:
        again = _fit(matrix, positives, c, c, threads=threads)
        np.testing.assert_array_equal(again[0], one[0])
        np.testing.assert_array_equal(again[1], one[1])


def test_stopping_before_convergence_warns():
    x, positives = _problem(n_problems=1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        _fit(x, positives, np.array([100.0]), np.array([100.0]), threads=1, max_iter=1)


def test_the_order_of_the_features_does_not_change_the_result():
    # the solver renumbers features by frequency internally; its weights must come back in the
    # caller's order, and a document's features are summed in the same order whatever their ids
    x, positives = _problem(n_problems=3)
    c = np.full(3, 0.5)
    coef, intercept, _ = _fit(x, positives, c, c, threads=2)
    shuffled = np.random.default_rng(1).permutation(x.shape[1])
    coef2, intercept2, _ = _fit(x[:, shuffled], positives, c, c, threads=2)
    np.testing.assert_array_equal(coef2, coef[:, shuffled])
    np.testing.assert_array_equal(intercept2, intercept)


def test_the_duals_are_returned_and_restarting_from_them_converges_at_once_to_the_same_solution():
    x, positives = _problem(n_problems=3)
    c_positive, c_negative = np.array([0.5, 1.0, 2.0]), np.array([0.5, 2.0, 1.0])
    coef, intercept, duals = _fit(x, positives, c_positive, c_negative, threads=2, tol=1e-4)
    assert duals.shape == (3, x.shape[0]) and (duals.data > 0).all()
    for j in range(3):  # the primal weights are the duals' sum over the documents (LinearSVC's dual)
        y = np.where(positives[:, j], 1.0, -1.0)
        combined = duals[j].toarray()[0] * y
        np.testing.assert_allclose(x.T @ combined, coef[j], atol=1e-5)  # (the solver's weights are float32)
        assert combined.sum() == pytest.approx(intercept[j], abs=1e-10)  # (its intercept float64)
    with pytest.warns(ConvergenceWarning):  # from zero, two passes are not enough...
        _fit(x, positives, c_positive, c_negative, threads=2, tol=1e-2, max_iter=2)
    with warnings.catch_warnings():  # ...from the solution, one is
        warnings.simplefilter("error", ConvergenceWarning)
        again, again_intercept, _ = _fit(x, positives, c_positive, c_negative, threads=2, tol=1e-2,
                                                    max_iter=2, start=duals)
    np.testing.assert_allclose(again, coef, atol=1e-3)
    np.testing.assert_allclose(again_intercept, intercept, atol=1e-3)


def test_a_refit_started_from_a_subsets_duals_reaches_the_optimum_on_all_documents():
    x, positives = _problem(n_docs=600, n_problems=3, seed=2)
    c = np.full(3, 1.0)
    part = np.flatnonzero(np.arange(600) % 3 != 0)  # two thirds of the documents
    _, _, duals = _fit(x[part], positives[part], c, c, threads=2, tol=1e-4)
    start = sp.csr_matrix((duals.data, part[duals.indices], duals.indptr), shape=(3, 600))
    cold, cold_intercept, _ = _fit(x, positives, c, c, threads=2, tol=1e-4)
    warm, warm_intercept, _ = _fit(x, positives, c, c, threads=2, tol=1e-4, start=start)
    np.testing.assert_allclose(warm, cold, atol=1e-3)
    np.testing.assert_allclose(warm_intercept, cold_intercept, atol=1e-3)
    subset, _, _ = _fit(x[part], positives[part], c, c, threads=2, tol=1e-4)
    assert np.abs(subset - cold).max() > 0.05  # the start was not already the answer


def test_the_weights_go_into_the_given_columns_of_a_given_array():
    x, positives = _problem(n_problems=2)
    c = np.full(2, 0.5)
    weights, intercept, _ = fit_binary_svms(x, positives, c, c, threads=2)
    assert weights.shape == (x.shape[1], 2) and weights.dtype == np.float32 and weights.flags.c_contiguous
    out = np.full((x.shape[1], 4), 7.0, dtype=np.float32)
    returned, again, _ = fit_binary_svms(x, positives, c, c, threads=2, out=out, columns=np.array([3, 1]))
    assert returned is out
    np.testing.assert_array_equal(out[:, [3, 1]], weights)
    assert (out[:, [0, 2]] == 7.0).all()  # the other columns are left as they were
    np.testing.assert_array_equal(again, intercept)
    fit_binary_svms(x, positives, c, c, threads=2, out=out[:, 2:])  # (a view: columns 2 and 3, in order)
    np.testing.assert_array_equal(out[:, 2:], weights)


def test_nb_scale_weighs_features_by_how_unevenly_they_fall_in_and_out_of_the_class():
    # 3 features, values summed over the class's documents and over all of them: the first only in
    # the class, the second as common inside as outside (in proportion), the third mostly outside
    inside, total = np.array([4.0, 2.0, 1.0]), np.array([4.0, 4.0, 9.0])
    scale = nb_scale(inside, total)
    p, q = inside + 0.1, total - inside + 0.1  # NBSVM's log-count ratio, smoothed by 0.1
    r = np.sqrt(np.abs(np.log(p / p.sum()) - np.log(q / q.sum())))
    np.testing.assert_allclose(scale, r / r.mean())
    assert scale.mean() == pytest.approx(1.0)
    assert scale[0] > scale[2] > scale[1]
    # a class no different from the rest has nothing to weigh: every feature keeps its value
    np.testing.assert_array_equal(nb_scale(np.array([1.0, 2.0]), np.array([2.0, 4.0])), [1.0, 1.0])


def test_nb_weights_solve_linear_svcs_problem_on_the_nb_scaled_features():
    # the returned weights are for the features as they are: the scaled problem's times the scale
    x, positives = _problem()
    c_positive, c_negative = np.array([0.5, 2.0, 1.0, 0.25]), np.array([0.5, 0.3, 1.0, 4.0])
    coef, intercept, _ = _fit(x, positives, c_positive, c_negative, threads=2, tol=1e-6, nb_weights=True)
    plain, _, _ = _fit(x, positives, c_positive, c_negative, threads=2, tol=1e-6)
    for j in range(positives.shape[1]):
        scale = nb_scale(np.asarray(x[positives[:, j]].sum(axis=0)).ravel(), np.asarray(x.sum(axis=0)).ravel())
        reference = LinearSVC(C=1.0, class_weight={0: c_negative[j], 1: c_positive[j]}, tol=1e-6, max_iter=100_000,
                              random_state=0)  # (both near the optimum: at 1e-4 LinearSVC stops further off)
        scaled = x.multiply(scale).tocsr()
        reference.fit(scaled, positives[:, j].astype(int))
        np.testing.assert_allclose(coef[j] / scale, reference.coef_[0], atol=1e-4)
        np.testing.assert_allclose(intercept[j], reference.intercept_[0], atol=1e-4)
        ours = _objective(scaled, positives[:, j], coef[j] / scale, intercept[j], c_positive[j], c_negative[j])
        theirs = _objective(scaled, positives[:, j], reference.coef_[0], reference.intercept_[0], c_positive[j],
                            c_negative[j])
        assert ours == pytest.approx(theirs, rel=1e-5)
        assert np.abs(coef[j] - plain[j]).max() > 0.05  # not the plain SVM's solution

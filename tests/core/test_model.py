import json
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from classifier_core import fast_tfidf
from classifier_core.config import Mode
from classifier_core.errors import ModelError
from classifier_core.inference import classify_texts
from classifier_core.metrics import indicator_matrix, score_metrics
from classifier_core.model import (FIT_TOL, TIME_BUDGET, TextClassifier, _FeatureBlocks, _one_vs_rest_svm,
                                   _PickledVectorizers, _redundant, load_model)
from classifier_core.scorer import SCORER_FILE, Scorer, calibrated, load_scorer
from classifier_core.selection import (MULTI_CLASS_CANDIDATES, MULTI_LABEL_CANDIDATES, Candidate, tune_thresholds,
                                      validation_split)
from flows.demo_data import multi_class_rows, multi_label_rows


def _ovr(*args):
    """_one_vs_rest_svm with each label's weights in a row, as scikit-learn's coef_."""
    weights, intercept, duals = _one_vs_rest_svm(*args)
    return weights.T, intercept, duals


@pytest.fixture(scope="module")
def tickets():
    rows = multi_class_rows(400)
    return [text for _, text in rows], [(label,) for label, _ in rows]


def test_init_stores_parameters_only():
    model = TextClassifier(mode=Mode.MULTI_LABEL, time_budget=3.0)
    assert model.get_params()["time_budget"] == 3.0
    assert not hasattr(model, "labels_")
    with pytest.raises(NotFittedError):
        model.predict_scores(["x"])


def test_multi_class_scores_are_probabilities(tickets):
    texts, labels = tickets
    model = TextClassifier(Mode.MULTI_CLASS).fit(texts[:300], labels[:300])
    assert model.labels_ == ["account", "billing", "refund", "shipping", "technical"]
    scores = model.predict_scores(texts[300:])
    assert scores.shape == (100, 5)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    predicted = [model.labels_[i] for i in scores.argmax(axis=1)]
    accuracy = np.mean([p == t[0] for p, t in zip(predicted, labels[300:])])
    assert accuracy > 0.75  # chance is 0.2; the generator mislabels 3% and adds cross-topic asides


def test_multi_label_scores_are_independent_and_decided_at_half():
    rows = multi_label_rows(400)
    texts, labels = [t for _, t in rows], [tuple(label.split("|")) for label, _ in rows]
    model = TextClassifier(Mode.MULTI_LABEL).fit(texts, labels)
    scores = model.predict_scores(texts[:50])
    assert scores.shape == (50, 5)
    assert not np.allclose(scores.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.decide(scores), scores >= 0.5)


def test_save_load_round_trip_predicts_the_same(tmp_path, tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), model.predict_scores(texts[:20]))
    assert loaded.mode is Mode.MULTI_CLASS


def test_the_vectorizers_are_pickled_as_one_blob_and_the_live_model_is_untouched(tmp_path, tickets):
    texts, labels = tickets
    model = TextClassifier(search=False).fit(texts, labels)
    model.explain(texts[:1], [model.labels_[:1]])  # fills the explanations' name cache
    state = model.__getstate__()
    assert isinstance(state["vectorizers_"], _PickledVectorizers) and "_word_names_cache" not in state
    assert isinstance(model.vectorizers_, dict) and model._word_names_cache is not None
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.vectorizers_.keys() == model.vectorizers_.keys()
    assert loaded.vectorizers_["char"].vocabulary_ == model.vectorizers_["char"].vocabulary_
    older = TextClassifier.__new__(TextClassifier)  # a model pickled before: its vectorizers as a dict
    older.__setstate__(dict(model.__dict__))
    np.testing.assert_array_equal(older.predict_scores(texts[:5]), loaded.predict_scores(texts[:5]))


@pytest.mark.parametrize("mode", [Mode.MULTI_CLASS, Mode.MULTI_LABEL])
def test_the_saved_scorer_scores_as_the_model_without_importing_scikit_learn(tmp_path, mode):
    rows = (multi_class_rows if mode is Mode.MULTI_CLASS else multi_label_rows)(400)
    model = TextClassifier(mode).fit([t for _, t in rows], [label.split("|") for label, _ in rows])
    directory = model.save(tmp_path / "m")
    texts = [t for _, t in multi_class_rows(200, seed=8)] + ["", " ", "\u00e9t\u00e9\u00a0", "x" * 3000]
    scorer = load_scorer(directory)
    assert isinstance(scorer, Scorer) and scorer.labels_ == model.labels_ and scorer.mode is mode
    np.testing.assert_array_equal(scorer.predict_scores(texts), model.predict_scores(texts))
    np.testing.assert_array_equal(scorer.decide(scorer.predict_scores(texts)), model.decide(model.predict_scores(texts)))
    code = ("import json, sys\nfrom classifier_core.scorer import load_scorer\n"
            f"scores = load_scorer({str(directory)!r}).predict_scores(json.loads(sys.stdin.read()))\n"
            "print(json.dumps([scores.tolist(), sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True)
    scores, imported = json.loads(done.stdout)
    assert imported == []
    np.testing.assert_array_equal(np.array(scores), model.predict_scores(texts))


def test_a_text_scores_the_same_alone_and_in_a_large_batch(tickets):
    """A real-time answer (one text, split in Python) is the job's (large batches, split by Arrow)."""
    texts, labels = tickets
    model = TextClassifier(search=False).fit(texts, labels)
    batch = texts[:200] + ["\u00e9t\u00e9\u00a0caf\u00e9\u3000x", "  ", "A\tB  c"]
    assert sum(map(len, batch)) > fast_tfidf._ARROW_MIN_CHARS > max(map(len, batch))
    alone = np.vstack([model.predict_scores([text]) for text in batch])
    np.testing.assert_array_equal(alone, model.predict_scores(batch))


def test_multi_class_scores_are_scipy_softmax_to_the_bit():
    from scipy.special import softmax

    rng = np.random.default_rng(0)
    for shape in ((1, 4), (7, 150), (1000, 20), (0, 3)):
        for temperature in (0.3, 1.0, 2.7):
            decisions = rng.normal(scale=5, size=shape)
            np.testing.assert_array_equal(calibrated(Mode.MULTI_CLASS, decisions, temperature, None, None),
                                          softmax(decisions / temperature, axis=1))


def test_a_model_saved_without_a_scorer_loads_whole_for_scoring(tmp_path, tickets):
    texts, labels = tickets
    model = TextClassifier(search=False).fit(texts, labels)
    directory = model.save(tmp_path / "m")
    (directory / SCORER_FILE).unlink()  # as models saved before the scorer existed
    loaded = load_scorer(directory)
    assert isinstance(loaded, TextClassifier)
    np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), model.predict_scores(texts[:20]))
    (directory / SCORER_FILE).write_bytes(pickle.dumps({"not": "a scorer"}))
    with pytest.raises(ModelError, match="scorer.pkl: expected a Scorer; found dict"):
        load_scorer(directory)


def test_the_weights_are_saved_once_and_format_2_models_still_load(tmp_path, tickets):
    texts, labels = tickets
    model = TextClassifier(search=False).fit(texts, labels)
    directory = model.save(tmp_path / "m")
    assert sorted(p.name for p in directory.iterdir()) == ["metadata.json", "model.joblib", "scorer.pkl", "weights.npy"]
    assert "weights_" not in joblib.load(directory / "model.joblib").__dict__ and hasattr(model, "weights_")
    assert pickle.loads((directory / SCORER_FILE).read_bytes()).weights_ is None
    np.testing.assert_array_equal(load_model(directory).weights_, model.weights_)
    np.testing.assert_array_equal(load_scorer(directory).weights_, model.weights_)
    old = tmp_path / "format2"  # before weights.npy and scorer.pkl: the weights inside model.joblib
    old.mkdir()
    joblib.dump(model, old / "model.joblib", compress=3)
    metadata = json.loads((directory / "metadata.json").read_text())
    (old / "metadata.json").write_text(json.dumps(dict(metadata, format="docclass-model/2")))
    for loaded in (load_model(old), load_scorer(old)):
        np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), model.predict_scores(texts[:20]))
    (directory / "weights.npy").unlink()
    with pytest.raises(ModelError, match="weights.npy: expected the model's weights; found no file"):
        load_model(directory)


def test_load_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(ModelError, match="expected a docclass model directory; found no metadata.json"):
        load_model(tmp_path)


def test_classify_texts_shapes_and_blank_text(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    results = classify_texts(model, ["my parcel never arrived", "   "])
    assert [c["Name"] for c in results[0]["Classes"]][0] == "shipping"
    assert len(results[0]["Classes"]) == 3
    assert results[1] == {"ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}


def test_the_search_chooses_on_training_data_and_records_every_candidate(tickets):
    texts, labels = tickets
    model = TextClassifier(time_budget=1e9).fit(texts, labels)
    assert [row["candidate"] for row in model.search_] == [c.describe() for c in MULTI_CLASS_CANDIDATES]
    scored = [row for row in model.search_ if "validation_score" in row]
    assert all("skipped" in row for row in model.search_ if row not in scored)
    best = max(scored, key=lambda row: row["validation_score"])
    assert model.config_.describe() == best["candidate"]
    fast = TextClassifier(search=False).fit(texts, labels)
    assert [row["candidate"] for row in fast.search_] == [MULTI_CLASS_CANDIDATES[0].describe()]


def test_an_exhausted_time_budget_skips_the_remaining_candidates(tickets):
    texts, labels = tickets
    model = TextClassifier(time_budget=0.0).fit(texts, labels)
    assert "validation_score" in model.search_[0]
    assert all(row.get("skipped") == "time budget" for row in model.search_[1:])


def test_the_search_spends_its_budget_in_seconds_whatever_the_default_took(tickets):
    texts, labels = tickets
    assert TextClassifier().fit(texts, labels).search_budget_ == TIME_BUDGET == 10.0
    given = TextClassifier(time_budget=2.5).fit(texts, labels)  # --search-budget 2.5
    assert given.search_budget_ == 2.5
    assert TextClassifier(search=False).fit(texts, labels).search_budget_ is None  # --fast: nothing to budget


def test_a_candidate_is_skipped_when_its_expected_fit_would_overrun_the_budget():
    model = TextClassifier(time_budget=100.0)
    svm, logistic = Candidate(), Candidate(loss="log")
    assert model._fits_in_budget(svm, elapsed=60.0, slowest_fit=None)
    assert model._fits_in_budget(svm, elapsed=60.0, slowest_fit=8.0)
    assert not model._fits_in_budget(logistic, elapsed=60.0, slowest_fit=8.0)  # ~80 s more: 140 > 100
    assert model._fits_in_budget(logistic, elapsed=60.0, slowest_fit=1.0)
    assert not model._fits_in_budget(svm, elapsed=95.0, slowest_fit=8.0)
    assert not model._fits_in_budget(svm, elapsed=60.0, slowest_fit=8.0, vectorising=35.0)
    across = Candidate(lowercase=False, char_ngrams="char")  # 1.7x the stored values: 13.6 s expected
    assert model._fits_in_budget(across, elapsed=86.0, slowest_fit=8.0)
    assert not model._fits_in_budget(across, elapsed=87.0, slowest_fit=8.0)


def test_the_budget_expects_new_feature_blocks_to_take_as_long_as_fitted_ones_times_their_cost(tickets):
    blocks = _FeatureBlocks(tickets[0], min_df=2)
    assert blocks.expected_seconds(Candidate()) == 0.0  # nothing fitted: nothing to go by
    blocks.matrix(Candidate())
    word, char = (next(s for (name, _), s in blocks.seconds.items() if name == n) for n in ("word", "char"))
    assert blocks.expected_seconds(Candidate(C=1.0)) == 0.0
    assert blocks.expected_seconds(Candidate(features="word")) == 0.0
    # char n-grams across words: ANALYZER_COST times the char_wb block's time
    assert blocks.expected_seconds(Candidate(lowercase=False, char_ngrams="char")) == pytest.approx(word + 3.0 * char)
    assert blocks.expected_seconds(Candidate(lowercase=False)) == pytest.approx(word + char)
    assert word > 0 and char > 0


def test_candidates_sharing_feature_blocks_share_their_split_rows(tickets):
    blocks = _FeatureBlocks(tickets[0], min_df=2)
    n = len(tickets[0])
    train, valid = np.arange(0, n, 2), np.arange(1, n, 2)
    x_train, x_valid = blocks.rows(Candidate(), train, valid)
    assert (x_train != blocks.matrix(Candidate())[train]).nnz == 0 and x_valid.shape[0] == len(valid)
    same = blocks.rows(Candidate(C=1.0, class_weight="balanced"), train, valid)
    assert same[0] is x_train and same[1] is x_valid
    words, _ = blocks.rows(Candidate(features="word"), train, valid)
    assert words.shape[1] < x_train.shape[1]
    assert (words != blocks.matrix(Candidate(features="word"))[train]).nnz == 0
    blocks.forget_rows()
    assert blocks.rows(Candidate(features="word"), train, valid)[0] is not words


def test_c_is_searched_along_a_line_from_the_first_candidate_differing_only_in_c():
    nb, default, up, down = Candidate(nb_weights=True), Candidate(), Candidate(C=1.0), Candidate(C=0.25)
    listed = [nb, default, up, down]
    target = np.eye(3, dtype=bool)[[0, 0, 1, 2]]
    reason = _redundant(down, listed, {nb: 0.9, default: 0.8, up: 0.8}, target, Mode.MULTI_CLASS)
    assert reason == "C=1 scored at least C=0.5's"
    assert _redundant(down, listed, {nb: 0.9, default: 0.8, up: 0.7}, target, Mode.MULTI_CLASS) is None
    assert _redundant(up, listed, {nb: 0.9, default: 0.8}, target, Mode.MULTI_CLASS) is None
    assert _redundant(down, listed, {nb: 0.9, up: 0.9}, target, Mode.MULTI_CLASS) is None  # its base not fitted
    other_features = Candidate(features="word", C=0.25)  # on no listed candidate's line
    assert _redundant(other_features, listed, {default: 0.8, up: 0.9}, target, Mode.MULTI_CLASS) is None


def test_nb_weights_need_an_svm_and_are_the_multi_class_default_only():
    with pytest.raises(ValueError, match="nb_weights needs the squared_hinge loss"):
        Candidate(loss="log", nb_weights=True)
    assert MULTI_CLASS_CANDIDATES[0].nb_weights and MULTI_CLASS_CANDIDATES[1] == Candidate()
    assert not any(c.nb_weights for c in MULTI_LABEL_CANDIDATES)
    assert "NB weights" in MULTI_CLASS_CANDIDATES[0].describe()


def test_balanced_weights_are_skipped_only_when_they_change_nothing():
    default, balanced = Candidate(), Candidate(class_weight="balanced")
    even, uneven = np.eye(3, dtype=bool)[[0, 1, 2, 0, 1, 2]], np.eye(3, dtype=bool)[[0, 0, 1, 2]]
    listed = [default, balanced]
    reason = _redundant(balanced, listed, {default: 0.8}, even, Mode.MULTI_CLASS)
    assert reason == "balanced weights all equal: the problem of word+char, squared_hinge, C=0.5"
    assert _redundant(balanced, listed, {default: 0.8}, uneven, Mode.MULTI_CLASS) is None
    assert _redundant(balanced, listed, {}, even, Mode.MULTI_CLASS) is None  # the unweighted one was not fitted
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)  # each label in half the documents
    assert _redundant(balanced, listed, {default: 0.8}, labels, Mode.MULTI_LABEL) is not None
    assert _redundant(balanced, listed, {default: 0.8}, labels[:3], Mode.MULTI_LABEL) is None


def test_equal_balanced_weights_fit_the_same_model_as_none(tickets):
    texts, labels = tickets
    per_class = {}
    for text, label in zip(texts, labels):
        per_class.setdefault(label, []).append(text)
    n = min(map(len, per_class.values()))
    texts = [t for members in per_class.values() for t in members[:n]]
    labels = [label for label, members in per_class.items() for _ in members[:n]]
    plain = TextClassifier(search=False, candidates=[Candidate()]).fit(texts, labels)
    balanced = TextClassifier(search=False, candidates=[Candidate(class_weight="balanced")]).fit(texts, labels)
    np.testing.assert_array_equal(plain.weights_, balanced.weights_)


def test_temperature_scaling_makes_confidence_match_accuracy(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts[:300], labels[:300])
    y_true = indicator_matrix(labels[300:], model.labels_)
    calibrated = score_metrics(y_true, model.predict_scores(texts[300:]), Mode.MULTI_CLASS)
    model.temperature_ = 1.0  # the raw SVM margins through a softmax
    raw = score_metrics(y_true, model.predict_scores(texts[300:]), Mode.MULTI_CLASS)
    assert calibrated["ExpectedCalibrationError"] < raw["ExpectedCalibrationError"]
    assert calibrated["BrierScore"] < raw["BrierScore"]


def test_label_thresholds_are_folded_into_the_score():
    rows = multi_label_rows(400)
    texts, labels = [t for _, t in rows], [tuple(label.split("|")) for label, _ in rows]
    model = TextClassifier(Mode.MULTI_LABEL).fit(texts, labels)
    assert model.thresholds_.shape == (5,) and np.any(model.thresholds_ != 0)
    decisions, scores = model.decision_function(texts[:80]), model.predict_scores(texts[:80])
    np.testing.assert_array_equal(scores >= 0.5, decisions >= model.thresholds_)


def test_tune_thresholds_maximises_f1_and_shrinks_rare_labels():
    decisions = np.array([[0.9, 0.9], [0.6, -0.5], [0.2, -0.6], [-0.3, -0.7]])
    truth = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], dtype=bool)
    thresholds = tune_thresholds(decisions, truth)
    assert 0.2 < thresholds[0] < 0.6  # label 0's best cut, pulled a little toward the global one
    assert np.all((decisions >= thresholds) == truth)


def test_explanations_name_the_words_behind_the_class(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    result = classify_texts(model, ["I was charged twice and want a refund of the charge", " "], explain=True)
    assert result[1] == {"ErrorCode": "EMPTY_DOCUMENT", "ErrorMessage": "document is empty"}
    top = result[0]["Classes"][0]["Name"]
    terms = result[0]["Explanations"][top]
    assert list(result[0]["Explanations"]) == [top] and 1 <= len(terms) <= 5
    assert all(weight > 0 for _, weight in terms) and [w for _, w in terms] == sorted((w for _, w in terms), reverse=True)
    assert any("charge" in term or "refund" in term for term, _ in terms)


@pytest.mark.parametrize("mode", [Mode.MULTI_CLASS, Mode.MULTI_LABEL])
def test_explanations_are_scikit_learns_tfidf_times_the_weights_and_the_scorer_gives_them(tmp_path, mode):
    rows = (multi_class_rows if mode is Mode.MULTI_CLASS else multi_label_rows)(300)
    model = TextClassifier(mode, search=False).fit([t for _, t in rows], [label.split("|") for label, _ in rows])
    texts = [t for _, t in multi_class_rows(40, seed=5)] + ["refund refund REFUND, please!", "caf\u00e9\u00a0cr\u00e8me"]
    asked = [model.labels_[i % len(model.labels_):][:2] for i in range(len(texts))]
    explained = model.explain(texts, asked, top=7)
    x = model.vectorizers_["word"].transform(texts).tocsr()  # the definition, through scikit-learn
    names = model.vectorizers_["word"].get_feature_names_out()
    for row, (labels, per_label) in enumerate(zip(asked, explained)):
        assert list(per_label) == list(labels)
        columns, values = x.indices[x.indptr[row]:x.indptr[row + 1]], x.data[x.indptr[row]:x.indptr[row + 1]]
        for label in labels:
            weights = values * model.weights_[columns, model.labels_.index(label)]
            expected = {str(names[c]): w for c, w in zip(columns, weights) if w > 0}
            got = dict(per_label[label])
            assert len(got) == min(7, len(expected)) and all(abs(got[t] - expected[t]) <= 1e-4 for t in got)
            if got:  # the largest ones
                assert min(got.values()) >= sorted(expected.values(), reverse=True)[len(got) - 1] - 1e-4
    directory = model.save(tmp_path / "m")
    code = ("import json, sys\nfrom classifier_core.scorer import load_scorer\n"
            f"texts, asked = json.loads(sys.stdin.read())\n"
            f"explained = load_scorer({str(directory)!r}).explain(texts, asked, top=7)\n"
            "print(json.dumps([explained, sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps([texts, asked]), capture_output=True, text=True,
                          check=True)
    assert json.loads(done.stdout) == [explained, []]


def _sparse_problem(n_docs=300, n_features=200, n_labels=5, seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(n_docs, n_features, density=0.05, format="csr", random_state=seed, dtype=np.float64)
    truth = rng.integers(0, n_labels, n_docs)
    x[np.arange(n_docs), truth] = 1.0  # a feature per class makes the problem learnable
    return sp.csr_matrix(x), truth


@pytest.mark.parametrize("class_weight", [None, "balanced"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_one_vs_rest_is_linear_svcs_multi_class_model(class_weight, threads):
    x, y = _sparse_problem()
    y[:5] = 4  # uneven classes, so "balanced" weighs them differently
    reference = LinearSVC(C=0.5, class_weight=class_weight, random_state=0).fit(x, y)
    coef, intercept, _ = _ovr(x, np.eye(5, dtype=bool)[y], Candidate(class_weight=class_weight), Mode.MULTI_CLASS, threads)
    np.testing.assert_allclose(coef, reference.coef_, atol=2e-3)
    np.testing.assert_allclose(intercept, reference.intercept_, atol=2e-3)


def test_two_classes_need_one_svm_split_between_them():
    x, y = _sparse_problem(n_labels=2)
    reference = LinearSVC(C=0.5, random_state=0).fit(x, y)
    coef, intercept, _ = _ovr(x, np.eye(2, dtype=bool)[y], Candidate(), Mode.MULTI_CLASS, 2)
    np.testing.assert_allclose(coef[1] - coef[0], reference.coef_[0], atol=2e-3)
    np.testing.assert_allclose(intercept[1] - intercept[0], reference.intercept_[0], atol=2e-3)


def test_classes_missing_from_the_training_documents_are_never_chosen():
    x, y = _sparse_problem(n_labels=2)
    target = np.zeros((len(y), 3), dtype=bool)
    target[np.arange(len(y)), y * 2] = True  # classes 0 and 2 only
    coef, intercept, _ = _ovr(x, target, Candidate(), Mode.MULTI_CLASS, 1)
    reference = LinearSVC(C=0.5, random_state=0).fit(x, y)
    np.testing.assert_allclose(coef[2], reference.coef_[0], atol=2e-3)
    np.testing.assert_allclose(coef[0], -reference.coef_[0], atol=2e-3)
    assert not coef[1].any() and intercept[1] == -1e3
    assert not ((x @ coef.T + intercept).argmax(axis=1) == 1).any()


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_threaded_multi_label_svms_are_one_vs_rest_classifiers_and_constant_labels_are_fixed(class_weight):
    x, y = _sparse_problem()
    rng = np.random.default_rng(1)
    target = np.eye(5, dtype=bool)[y] | (rng.random((300, 5)) < 0.2)
    target[:, 3], target[:, 4] = True, False  # in every document; in none
    reference = OneVsRestClassifier(LinearSVC(C=0.5, class_weight=class_weight, random_state=0))
    reference.fit(x, target.astype(int))
    coef, intercept, _ = _ovr(x, target, Candidate(class_weight=class_weight), Mode.MULTI_LABEL, 2)
    for j in range(3):
        np.testing.assert_allclose(coef[j], reference.estimators_[j].coef_[0], atol=2e-3)
        np.testing.assert_allclose(intercept[j], reference.estimators_[j].intercept_[0], atol=2e-3)
    assert not coef[3:].any() and intercept[3] > 0 > intercept[4]
    np.testing.assert_array_equal((x @ coef.T + intercept)[:, 3:] > 0, target[:, 3:])


def test_a_case_sensitive_choice_keeps_case_in_its_vectorizers():
    # "Apple" the company and "apple" the fruit differ only in case; so do the labels.
    texts = [f"{word} {filler}" for word in ("Apple", "apple") for filler in ("pie", "stock", "juice", "news")] * 10
    labels = [("company",) if text.startswith("A") else ("fruit",) for text in texts]
    chosen = Candidate(lowercase=False, char_ngrams="char")
    model = TextClassifier(candidates=[Candidate(), chosen]).fit(texts, labels)
    assert model.config_ == chosen
    assert [row["candidate"] for row in model.search_][1] == \
        "word+char, case-sensitive, char n-grams across words, squared_hinge, C=0.5"
    assert model.search_[1]["validation_score"] > model.search_[0]["validation_score"]
    assert all(not v.lowercase for v in model.vectorizers_.values()) and set(model.vectorizers_) == {"word", "char"}
    assert model.vectorizers_["char"].analyzer == "char" and fast_tfidf.supports(model.vectorizers_["char"])
    scores = model.predict_scores(["Apple news", "apple news"])
    assert [model.labels_[i] for i in scores.argmax(axis=1)] == ["company", "fruit"]


def test_without_a_search_only_the_first_candidates_blocks_are_fitted(tickets):
    texts, labels = tickets
    model = TextClassifier(search=False, candidates=[Candidate(features="word"), Candidate()]).fit(texts, labels)
    assert set(model.vectorizers_) == {"word"} and model.vectorizers_["word"].lowercase
    np.testing.assert_array_equal(model.transform(texts[:5]).toarray(),
                                  model.vectorizers_["word"].transform(texts[:5]).toarray())


def test_the_kept_model_is_refitted_on_all_documents_from_the_searchs_solution_at_liblinears_tolerance(tickets):
    texts, labels = tickets
    model = TextClassifier().fit(texts, labels)
    x, target = model.transform(texts), indicator_matrix(labels, model.labels_)
    train, _ = validation_split([model.labels_[i] for i in target.argmax(axis=1)], len(texts), 0.15, 0)
    _, _, duals = _ovr(x[train], target[train], model.config_, Mode.MULTI_CLASS, 1, FIT_TOL)
    start = sp.csr_matrix((duals.data, train[duals.indices], duals.indptr), shape=(len(model.labels_), len(texts)))
    kept, _, _ = _ovr(x, target, model.config_, Mode.MULTI_CLASS, 1, FIT_TOL, start)
    np.testing.assert_allclose(model.weights_, kept.T, atol=1e-5)
    cold, _, _ = _ovr(x, target, model.config_, Mode.MULTI_CLASS, 1, FIT_TOL)
    optimum, _, _ = _ovr(x, target, model.config_, Mode.MULTI_CLASS, 1, 1e-5)
    assert np.abs(cold - kept).max() > 1e-3  # the start matters here, so the check above means something
    # both stop near the optimum on all documents, far nearer than the search's model on part of them
    searched, _, _ = _ovr(x[train], target[train], model.config_, Mode.MULTI_CLASS, 1, 1e-5)
    assert np.abs(kept - optimum).max() < np.abs(searched - optimum).max() / 3
    assert np.abs(cold - optimum).max() < np.abs(searched - optimum).max() / 3
    assert FIT_TOL == 0.1

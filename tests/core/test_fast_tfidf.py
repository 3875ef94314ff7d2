"""classifier_core.fast_tfidf gives exactly scikit-learn's TfidfVectorizer output and fitted state."""

import contextlib
import csv
import pickle
import random
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier_core import fast_scores, fast_tfidf
from classifier_core.config import Mode
from classifier_core.model import TextClassifier, load_model
from flows.demo_data import multi_class_rows, multi_label_rows
from tests.conftest import shared_dataset

WORD = dict(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
CHAR = dict(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32)
CROSS = dict(CHAR, analyzer="char")  # n-grams across word boundaries

EDGE_CASES = [
    "", " ", "   ", "\t\n\r\x0b\x0c", "\u2028\u2029\u00a0\u3000\x1c\x1d\x1e\x1f\x85",
    "a", "I", "ab", "abc", "abcd", "abcde", "abcdef", "a b c d e f", "A  B\tC\nD",
    "Café naïve ÉCOLE résumé Ångström", "東京タワー 東京 タ ワ", "emoji 😀😀 👍🏽 🇫🇷 x😀y",
    "nul\x00inside\x00 words \x00", "tabs\tand\u2028line\u2029separators", "ΟΔΟΣ ΣΑΣ σοφός ΣΟΦΟΣ",
    "İstanbul DİYARBAKIR straße STRASSE ǅemal ﬁne", "x" * 300, "y" * 80 + " " + "y" * 80,
    "don't won't e-mail U.S.A. 3.14 1,000,000 _under_score __ _", "the the the the the the",
    "repeated repeated words words in in a a row row", "lone surrogate \udcff and \udc80 bytes",
    "mixed\u200bzero\u200cwidth\u200djoiners", "123 4567 89 0", "a-b-c a_b_c a.b.c",
]


def varied_texts(count: int, seed: int = 0) -> list[str]:
    """Texts mixing a small Zipf-like vocabulary (so n-grams recur) with unicode oddities."""
    rng = random.Random(seed)
    common = [
        "the", "a", "of", "and", "to", "in", "price", "prices", "market", "Market", "MARKET", "report",
        "reports", "reported", "oil", "stocks", "team", "game", "won", "lost", "new", "york", "nasa",
        "space", "launch", "café", "naïve", "東京", "😀", "über", "ΣΑΣ", "x", "I", "it's", "U.S.",
        "e-mail", "_id", "2004", "3.5%", "$100", "(AP)", "--", "...", "a_b", "İ", "ß", "ǅ",
    ]
    separators = [" ", " ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u2028", "\x00", ", ", ". ", "-", "\u3000"]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_éèçñøåöüßλσςΣ東京😀-'"
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.8:
                word = common[min(int(rng.paretovariate(1.0)) - 1, len(common) - 1)]
            else:
                word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
            parts.append(word)
            parts.append(rng.choice(separators))
        texts.append("".join(parts))
    return texts


def assert_same_fitted_matrix(fast, reference, vec):
    """fit_transform's output: for "char", entries sorted within rows where scikit-learn's are in
    its provisional order; otherwise that order too."""
    assert_same(fast, reference.sorted_indices() if vec.analyzer == "char" else reference)


def assert_same(fast, reference):
    """Bit-for-bit the same sparse matrix, entry order within rows included."""
    assert type(fast) is type(reference)
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_array_equal(fast.indptr, reference.indptr)
    np.testing.assert_array_equal(fast.indices, reference.indices)
    np.testing.assert_array_equal(fast.data, reference.data)


def assert_same_fit(fast_vec, reference_vec):
    if reference_vec.analyzer == "char":  # provisional order is not scikit-learn's: the same terms and ids
        assert fast_vec.vocabulary_ == reference_vec.vocabulary_
    else:
        assert list(fast_vec.vocabulary_.items()) == list(reference_vec.vocabulary_.items())  # insertion order too
    assert hasattr(fast_vec._tfidf, "idf_") == hasattr(reference_vec._tfidf, "idf_")
    if hasattr(reference_vec._tfidf, "idf_"):
        assert fast_vec.idf_.dtype == reference_vec.idf_.dtype
        np.testing.assert_array_equal(fast_vec.idf_, reference_vec.idf_)
    assert sorted(fast_vec.__dict__) == sorted(reference_vec.__dict__)
    assert sorted(fast_vec._tfidf.__dict__) == sorted(reference_vec._tfidf.__dict__)
    assert fast_vec._tfidf.n_features_in_ == reference_vec._tfidf.n_features_in_
    np.testing.assert_array_equal(fast_vec.get_feature_names_out(), reference_vec.get_feature_names_out())


@pytest.fixture(scope="module")
def corpus():
    return varied_texts(1500) + EDGE_CASES


@pytest.mark.parametrize("params", [WORD, CHAR, CROSS], ids=["word", "char_wb", "char"])
def test_transform_is_identical_to_scikit_learn(corpus, params):
    vec = TfidfVectorizer(min_df=2, **params).fit(corpus[:1000])
    assert fast_tfidf.supports(vec)
    unseen = corpus[1000:] + varied_texts(300, seed=1)
    for texts in (corpus, unseen, EDGE_CASES, [EDGE_CASES[0]], corpus):  # the last one with a warm cache
        assert_same(fast_tfidf.transform({"x": vec}, texts)["x"], vec.transform(texts))
    for transform in (vec.transform, lambda texts: fast_tfidf.transform({"x": vec}, texts)):
        with pytest.raises(ValueError, match="Found array with 0 sample"):  # no documents: the same error
            transform([])


def test_both_blocks_at_once_share_the_split(corpus):
    vectorizers = {"word": TfidfVectorizer(min_df=2, **WORD).fit(corpus), "char": TfidfVectorizer(min_df=2, **CHAR).fit(corpus),
                   "cross": TfidfVectorizer(min_df=2, **CROSS).fit(corpus)}
    blocks = fast_tfidf.transform(vectorizers, corpus)
    assert list(blocks) == ["word", "char", "cross"]
    for name, vec in vectorizers.items():
        assert_same(blocks[name], vec.transform(corpus))


@pytest.mark.parametrize("params", [
    WORD, CHAR,
    dict(WORD, ngram_range=(1, 1)), dict(WORD, ngram_range=(2, 2)), dict(WORD, lowercase=False),
    dict(CHAR, ngram_range=(1, 3)), dict(CHAR, ngram_range=(3, 3)), dict(CHAR, lowercase=False),
    CROSS, dict(CROSS, ngram_range=(1, 3)), dict(CROSS, ngram_range=(3, 3)), dict(CROSS, ngram_range=(1, 7)),
    dict(CROSS, lowercase=False, use_idf=False, norm=None),
    dict(WORD, sublinear_tf=False, norm="l1", smooth_idf=False, dtype=np.float64),
    dict(CHAR, use_idf=False, norm=None),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items() if k != "dtype"))
@pytest.mark.parametrize("df", [dict(min_df=1), dict(min_df=3), dict(min_df=0.01, max_df=0.3), dict(min_df=2, max_df=50)],
                         ids=["min1", "min3", "float", "max50"])
def test_fit_transform_is_identical_to_scikit_learn(corpus, params, df, monkeypatch):
    monkeypatch.setattr(fast_tfidf, "_FIT_CHUNK", 400)  # several chunks: ids must follow across them
    monkeypatch.setattr(fast_tfidf, "_NUMBER_STEP", 999)  # and several steps of numbering per chunk
    reference = TfidfVectorizer(**params, **df)
    fast = clone(reference)
    reference_x = reference.fit_transform(corpus)
    assert_same_fitted_matrix(fast_tfidf.fit_transform(fast, corpus), reference_x, reference)  # unsorted rows too
    assert_same_fit(fast, reference)
    more = varied_texts(200, seed=5)
    assert_same(fast_tfidf.transform({"x": fast}, more)["x"], reference.transform(more))


def test_fit_errors_are_scikit_learn_errors():
    for texts, params, message in [
        (["a", "b", " "], WORD, "empty vocabulary"),
        (["aa bb", "cc dd"], dict(WORD, min_df=2), "no terms remain"),
        (["aa bb", "cc dd"], dict(WORD, min_df=2, max_df=1), "max_df corresponds to < documents than min_df"),
    ]:
        with pytest.raises(ValueError, match=message):
            TfidfVectorizer(**params).fit_transform(texts)
        with pytest.raises(ValueError, match=message):
            fast_tfidf.fit_transform(TfidfVectorizer(**params), texts)


def test_what_is_not_reproduced_goes_to_scikit_learn(corpus):
    texts = corpus[:200]
    for params in [dict(stop_words="english"), dict(CROSS, preprocessor=str.strip),
                   dict(WORD, token_pattern=r"\S+"), dict(WORD, ngram_range=(1, 3)), dict(CHAR, binary=True),
                   dict(WORD, max_features=50), dict(WORD, vocabulary=["price", "oil price", "the"])]:
        reference = TfidfVectorizer(**params)
        fast = clone(reference)
        assert_same(fast_tfidf.fit_transform(fast, texts), reference.fit_transform(texts))
        assert_same(fast_tfidf.transform({"x": fast}, texts)["x"], reference.transform(texts))
    vec = TfidfVectorizer(**WORD).fit(texts)
    documents = [text.encode("utf-8") for text in texts[:20]]  # bytes: scikit-learn decodes them
    assert_same(fast_tfidf.transform({"x": vec}, documents)["x"], vec.transform(documents))
    assert not fast_tfidf.supports(TfidfVectorizer(**WORD))  # not fitted


def test_a_refitted_vectorizer_gets_new_lookups(corpus):
    vec = TfidfVectorizer(**CHAR).fit(corpus[:300])
    fast_tfidf.transform({"x": vec}, corpus[:50])
    vec.fit(corpus[300:700])
    assert_same(fast_tfidf.transform({"x": vec}, corpus)["x"], vec.transform(corpus))


@pytest.mark.parametrize("params", [CHAR, CROSS], ids=["char_wb", "char"])
def test_the_word_cache_is_bounded_and_never_pickled(corpus, params):
    vec = TfidfVectorizer(**params).fit(corpus)
    pickled = pickle.dumps(vec)
    keys = set(vec.__dict__)
    state = fast_tfidf._state(vec)
    state.cache.max_words = 50
    if params is CROSS:
        contexts = state.contexts
        state.contexts = fast_tfidf._ContextCache(contexts.width, contexts.bound, contexts.compute, capacity=50)
    for start in range(0, len(corpus), 100):
        batch = corpus[start:start + 100]
        assert_same(fast_tfidf.transform({"x": vec}, batch)["x"], vec.transform(batch))
        assert len(state.cache.entries) <= 50 + len({w for t in batch for w in t.lower().split()})
        if params is CROSS:  # full, it starts over, keeping what fits of the batch's new contexts
            assert 0 < state.contexts.size <= 50
    assert set(vec.__dict__) == keys and pickle.dumps(vec) == pickled
    assert_same(fast_tfidf.transform({"x": pickle.loads(pickled)}, corpus)["x"], vec.transform(corpus))


@contextlib.contextmanager
def split_by(how: str):
    """Batches of any size split by Arrow ("arrow"), or in Python ("python") as small ones are."""
    saved = fast_tfidf._ARROW_MIN_CHARS
    fast_tfidf._ARROW_MIN_CHARS = 0 if how == "arrow" else 1 << 62
    try:
        yield
    finally:
        fast_tfidf._ARROW_MIN_CHARS = saved


@pytest.mark.parametrize("split", ["arrow", "python"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
                      | st.text(alphabet="ab cé東😀\t\n\u2028_-.İΣ", max_size=40), min_size=1, max_size=12))
def test_any_unicode_text(split, texts):
    with split_by(split):
        _same_as_scikit_learn_on(texts)


def _same_as_scikit_learn_on(texts):
    for params in (WORD, CHAR, CROSS):
        reference = TfidfVectorizer(min_df=1, **params)
        fast = clone(reference)
        try:
            reference_x = reference.fit_transform(texts + ["aa bb"])
        except ValueError:
            continue
        assert_same_fitted_matrix(fast_tfidf.fit_transform(fast, texts + ["aa bb"]), reference_x, reference)
        assert_same_fit(fast, reference)
        assert_same(fast_tfidf.transform({"x": reference}, texts)["x"], reference.transform(texts))


def _scikit_learn_only(monkeypatch):
    """Makes TextClassifier vectorise with scikit-learn alone, as before fast_tfidf and fast_scores."""
    monkeypatch.setattr(fast_tfidf, "fit_transform", lambda vec, texts: vec.fit_transform(texts))
    monkeypatch.setattr(fast_tfidf, "transform", lambda vecs, texts: {n: v.transform(texts) for n, v in vecs.items()})
    monkeypatch.setattr(fast_scores, "decision_scores", lambda *args: None)


def test_words_split_at_exactly_the_code_points_str_split_does():
    """Every code point, as a separator inside, around and doubled, splits as str.split() does."""
    docs = [f"{c}a{c}{c}b{c}" for c in map(chr, range(0x110000)) if not 0xD800 <= ord(c) <= 0xDFFF]
    docs += ["", " ", "  x  ", "\t\n", "a\r\nb"]
    batch = fast_tfidf._Batch(docs)
    words = [batch.distinct[i] for i in batch.columns]
    expected = [doc.split() for doc in docs]
    assert batch.lengths.tolist() == [len(w) for w in expected]
    assert words == [w for doc in expected for w in doc]


def test_a_last_text_ending_in_wide_whitespace_splits_as_str_split_does():
    """Arrow 25's split reads past its data when the array's last string ends in multi-byte
    whitespace, and now and then kept the whitespace in the last word ('and\xa0': 7 texts in
    3,000 batches here, a different few each run). Batches of any size ending that way."""
    rng = random.Random(0)
    endings = ["\xa0", "\u2028", "\u3000", "\x85", "\u2003", " ", ""]
    wrong = []
    for seed in range(3000):
        docs = [text.lower() for text in varied_texts(rng.randint(1, 40), seed=seed)]
        docs[-1] = docs[-1].rstrip() + " and" + rng.choice(endings)
        with split_by("arrow"):
            batch = fast_tfidf._Batch(docs)
        ends = np.cumsum(batch.lengths)
        for doc, start, end in zip(docs, ends - batch.lengths, ends):
            if [batch.distinct[i] for i in batch.columns[start:end]] != doc.split():
                wrong.append(doc[-20:])
    assert wrong == []


def test_char_ngrams_across_every_kind_of_gap():
    """n-grams across gaps of every whitespace character, alone (kept) or in runs (one space),
    at the start and end of a text, and between words shorter than the n-grams."""
    spaces = [c for c in map(chr, range(0x3001)) if c.isspace()]
    texts = [f"{c}ab{c}{c}cd{c}e{c}f{c}{c}{c}ghij{c}" for c in spaces] + [f"x{a}y{b}zz" for a in spaces for b in spaces[:4]]
    texts += ["a b", "a  b", " a", "a ", "  ", "ab\tcd\n\nef", "\u2028", "x\u3000\u3000y z"]
    for params in (CROSS, dict(CROSS, ngram_range=(1, 9))):
        reference = TfidfVectorizer(min_df=1, **params)
        fast = clone(reference)
        assert_same_fitted_matrix(fast_tfidf.fit_transform(fast, texts), reference.fit_transform(texts), reference)
        assert_same_fit(fast, reference)
        assert_same(fast_tfidf.transform({"x": reference}, texts[::-1])["x"], reference.transform(texts[::-1]))
        unknown = ["qq ab rr", "ab", "zz\u2028q", " "]  # windows outside the vocabulary; a last text without any
        assert_same(fast_tfidf.transform({"x": reference}, unknown)["x"], reference.transform(unknown))


@pytest.mark.parametrize("mode", [Mode.MULTI_CLASS, Mode.MULTI_LABEL])
def test_models_are_the_same_as_with_scikit_learn_alone(mode, tmp_path):
    rows = (multi_class_rows if mode is Mode.MULTI_CLASS else multi_label_rows)(300)
    texts, labels = [t for _, t in rows], [tuple(label.split("|")) for label, _ in rows]
    new_texts = [t for _, t in multi_class_rows(80, seed=3)] + EDGE_CASES
    with pytest.MonkeyPatch.context() as patch:
        _scikit_learn_only(patch)
        before = TextClassifier(mode, search=False, n_jobs=1).fit(texts, labels)
        before_scores = before.predict_scores(new_texts)
        before_explained = before.explain(new_texts[:5], [[before.labels_[0]]] * 5)
        before.save(tmp_path / "before")  # a model saved before fast_tfidf existed
    model = TextClassifier(mode, search=False, n_jobs=1).fit(texts, labels)
    np.testing.assert_array_equal(model.weights_, before.weights_)
    np.testing.assert_array_equal(model.intercept_, before.intercept_)
    for name, vec in model.vectorizers_.items():
        assert_same_fit(vec, before.vectorizers_[name])
    # fast_scores sums in float64 where scipy sums float32 products: equal to rounding.
    np.testing.assert_allclose(model.predict_scores(new_texts), before_scores, rtol=0, atol=1e-5)
    loaded = load_model(tmp_path / "before")
    np.testing.assert_array_equal(loaded.predict_scores(new_texts), model.predict_scores(new_texts))
    assert loaded.explain(new_texts[:5], [[loaded.labels_[0]]] * 5) == before_explained
    reloaded = load_model(model.save(tmp_path / "after"))
    np.testing.assert_array_equal(reloaded.predict_scores(new_texts), model.predict_scores(new_texts))
    assert_same(reloaded.transform(new_texts), before.transform(new_texts))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ag_news", "20newsgroups"])
def test_identical_on_the_shared_datasets(dataset):
    csv.field_size_limit(2**31 - 1)
    with open(shared_dataset(dataset) / "test.csv", encoding="utf-8", newline="") as fp:
        # 20newsgroups posts are long: scikit-learn's char analyzers took over a minute on 2,000.
        texts = [text for _, text in csv.reader(fp)][:2000 if dataset == "ag_news" else 1000]
    half = len(texts) // 2
    for params in (WORD, CHAR, CROSS):
        reference = TfidfVectorizer(min_df=2, **params)
        fast = clone(reference)
        assert_same_fitted_matrix(fast_tfidf.fit_transform(fast, texts[:half]), reference.fit_transform(texts[:half]),
                                  reference)
        assert_same_fit(fast, reference)
        assert_same(fast_tfidf.transform({"x": fast}, texts)["x"], reference.transform(texts))


def test_gram_numbers_follow_first_occurrence_as_a_dict_would_and_grow(monkeypatch):
    monkeypatch.setattr(fast_tfidf, "_NUMBER_STEP", 7_000)
    rng = np.random.default_rng(0)
    alphabet = list("abcdefgh ") + ["\udcff", "é", "\U0001f600"]
    grams = ["".join(rng.choice(alphabet, size=rng.integers(1, 6))) for _ in range(120_000)]  # > initial room
    numbers = fast_tfidf._GramNumbers(width=5)
    expected: dict[str, int] = {}
    for start in range(0, len(grams), 50_000):  # in batches, numbering on across them
        batch = grams[start:start + 50_000]
        text = np.frombuffer("".join(batch).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ends = np.cumsum([len(g) for g in batch])
        ids = numbers.number(text, ends - [len(g) for g in batch], ends)
        assert ids.tolist() == [expected.setdefault(g, len(expected)) for g in batch]
    assert numbers.size == len(expected) > 1 << 15
    assert numbers.names(np.arange(numbers.size)) == list(expected)


@pytest.mark.parametrize("odd", ["plain", "surrogate"])
def test_a_given_vocabularys_odd_terms_transform_as_in_scikit_learn(corpus, odd):
    # Terms the analyzers never produce (three words, empty parts, longer than max_n) match nothing,
    # and a lone surrogate makes the word vocabulary's tokens go term by term instead of through Arrow.
    extra = ["\udcff"] if odd == "surrogate" else []
    texts = corpus[:300] + ["oil price rises", "the the oil", "price  oil"]
    words = ["price", "oil price", "the", "oil", "a  b", " x", "x ", "three word term", "rises"] + extra
    chars = ["oi", " oi", "il ", "price", "e o", "toolongforfive", "pr"] + extra
    for params, vocabulary in [(WORD, words), (CHAR, chars), (CROSS, chars)]:
        reference = TfidfVectorizer(**params, vocabulary=vocabulary).fit(texts)
        assert fast_tfidf.supports(reference)
        assert_same(fast_tfidf.transform({"x": reference}, texts)["x"], reference.transform(texts))


@pytest.mark.parametrize("params", [WORD, CHAR, CROSS], ids=["word", "char_wb", "char"])
def test_threads_sharing_a_vectorizer_get_what_one_thread_gets(params):
    """A Dask worker runs several shards at once on threads sharing one model, so the lookups
    one vectorizer keeps across batches (word and context caches) must stay right under
    concurrent use: every batch's matrix is the one scikit-learn gives. Small caches start over
    often, while other threads read them. (Unguarded, the "char" context cache gave wrong
    matrices, errors, or threads probing a full table forever: hence daemon threads and a limit.)"""
    vec = TfidfVectorizer(min_df=2, **params).fit(varied_texts(1000))
    state = fast_tfidf._state(vec)
    (state.tokens if params is WORD else state).cache.max_words = 200
    if params is CROSS:
        contexts = state.contexts
        state.contexts = fast_tfidf._ContextCache(contexts.width, contexts.bound, contexts.compute, capacity=200)
    batches = [varied_texts(150, seed=seed) for seed in range(2, 50)]
    found: dict[int, object] = {}

    def work(first: int) -> None:
        for k in range(first, len(batches), 4):
            try:
                found[k] = fast_tfidf.transform({"x": vec}, batches[k])["x"]
            except Exception as exc:  # noqa: BLE001 (reported below, per batch)
                found[k] = exc

    threads = [threading.Thread(target=work, args=(first,), daemon=True) for first in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    assert not any(thread.is_alive() for thread in threads), "a thread is still transforming after 120 s"
    for k, texts in enumerate(batches):
        assert not isinstance(found[k], Exception), found[k]
        assert_same(found[k], vec.transform(texts))

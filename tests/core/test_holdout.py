"""classifier_core.holdout: the stratified, seeded holdout split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from classifier_core.holdout import holdout_split


# --- holdout_split -------------------------------------------------------------------------


def multiclass_labels(counts: dict[str, int]) -> list[tuple[str, ...]]:
    labels = [(label,) for label, n in counts.items() for _ in range(n)]
    return [labels[i] for i in np.random.default_rng(1).permutation(len(labels))]


def test_holdout_is_a_sorted_disjoint_cover():
    labels = multiclass_labels({"a": 100, "b": 37, "c": 5})
    train, test = holdout_split(labels)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(len(labels)))


def test_holdout_is_stratified():
    labels = multiclass_labels({"a": 100, "b": 40, "c": 5, "d": 2, "e": 1})
    _, test = holdout_split(labels)
    held_out = Counter(labels[i][0] for i in test)
    assert held_out == {"a": 10, "b": 4, "c": 1, "d": 1}  # e's single document stays in training


def test_holdout_cap_scales_strata_down():
    labels = multiclass_labels({"a": 300, "b": 100})
    _, test = holdout_split(labels, fraction=0.5, cap=40)
    assert len(test) <= 40
    assert Counter(labels[i][0] for i in test) == {"a": 30, "b": 10}


def test_holdout_is_deterministic_and_depends_on_seed():
    labels = multiclass_labels({"a": 200, "b": 200})
    first = holdout_split(labels, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(first, holdout_split(labels, seed=7)))
    assert not np.array_equal(first[1], holdout_split(labels, seed=8)[1])


def test_holdout_multilabel_stratifies_by_rarest_label():
    labels = [("common", "rare")] * 10 + [("common",)] * 90
    _, test = holdout_split(labels)
    assert sum(1 for i in test if i < 10) == 1  # stratum 'rare' (10 docs) gives 1
    assert sum(1 for i in test if i >= 10) == 9  # stratum 'common' (90 docs) gives 9


def test_holdout_keeps_one_document_per_stratum_in_training():
    train, test = holdout_split([("a",), ("a",), ("b",)], fraction=0.9)
    assert list(test) == [0] or list(test) == [1]
    assert 2 in train


def test_holdout_rejects_bad_fraction():
    with pytest.raises(ValueError):
        holdout_split([("a",)], fraction=1.0)


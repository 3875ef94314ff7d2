"""Splits off a stratified, seeded holdout test set when no test data is given (SPEC §3)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from classifier_core.config import HOLDOUT_CAP, HOLDOUT_FRACTION, HOLDOUT_SEED


def _strata(labels: Sequence[tuple[str, ...]]) -> dict[str, list[int]]:
    """Row indices per stratum: the row's rarest label (ties by name; "" for no label)."""
    frequency = Counter(label for row in labels for label in row)
    strata: dict[str, list[int]] = {}
    for i, row in enumerate(labels):
        key = min(row, key=lambda label: (frequency[label], label)) if row else ""
        strata.setdefault(key, []).append(i)
    return strata


def _holdout_sizes(sizes: list[int], fraction: float, cap: int) -> list[int]:
    # Half-up rounding, at least one test document, and never the stratum's last document.
    wanted = [min(max(1, int(np.floor(n * fraction + 0.5))), n - 1) if n >= 2 else 0 for n in sizes]
    total = sum(wanted)
    if total > cap:
        wanted = [k * cap // total for k in wanted]
    return wanted


def holdout_split(
    labels: Sequence[tuple[str, ...]],
    fraction: float = HOLDOUT_FRACTION,
    cap: int = HOLDOUT_CAP,
    seed: int = HOLDOUT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits rows into training and test, stratified by label and seeded (SPEC §3).

    Args:
        labels: Each row's labels; multi-label rows are stratified by their rarest label.
        fraction: Share of each stratum to hold out.
        cap: The most documents held out in all.
        seed: The seed of numpy's default_rng.

    Returns:
        (train indices, test indices), each sorted ascending, disjoint and covering all rows.

    Raises:
        ValueError: If fraction is not strictly between 0 and 1 or cap is negative.
    """
    if not 0 < fraction < 1 or cap < 0:
        raise ValueError(f"expected 0 < fraction < 1 and cap >= 0; found fraction={fraction} cap={cap}")
    strata = sorted(_strata(labels).items())
    sizes = _holdout_sizes([len(rows) for _, rows in strata], fraction, cap)
    rng = np.random.default_rng(seed)
    test = [rng.choice(rows, size=k, replace=False) for (_, rows), k in zip(strata, sizes) if k]
    test_indices = np.sort(np.concatenate(test)).astype(np.int64) if test else np.zeros(0, np.int64)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_indices] = True
    return np.flatnonzero(~is_test).astype(np.int64), test_indices

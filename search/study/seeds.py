"""Seeds per trial: one study seed, a different and unrelated seed for every trial number."""

from __future__ import annotations

import numpy as np


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial `number` in a study seeded `seed`, for its sampler draws and its
    network's initial weights and shuffling.

    NumPy's SeedSequence hashes the pair, so studies seeded 1 and 2 draw unrelated streams. The
    plain `seed + number` made trial n of a study seeded 2 an exact copy of trial n + 1 of one
    seeded 1 (same parameters, same weights), so "independent" runs with consecutive seeds
    were shifted copies of each other.
    """
    # 31 bits: every consumer (NumPy, TensorFlow, Python's random, Optuna) takes it.
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0] >> 1)

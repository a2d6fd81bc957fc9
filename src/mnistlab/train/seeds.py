"""Where a run's randomness comes from: pure functions of the run's seed and the epoch.

A resumed run sees in epoch ``e`` exactly what an uninterrupted one would, because
every random choice of that epoch is derived from ``(seed, e)`` here, never from
what ran before.
"""

from __future__ import annotations

import hashlib

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits ``n`` training images.

    A pure function of ``(seed, epoch, n)``: a resumed run sees the same order.

    Examples
    --------
    >>> epoch_order(0, 3, 5).tolist() == epoch_order(0, 3, 5).tolist()
    True
    """
    return np.random.default_rng([seed % 2**64, epoch, 0x5EED]).permutation(n).astype(np.int32)


def derive_seed(seed: int, *key: int | str) -> int:
    """A 31-bit seed for one purpose (``key``), derived from the run's ``seed``.

    Distinct keys give independent streams; the same key always the same seed.
    """
    words = [seed % 2**64] + [
        int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "big") if isinstance(k, str) else k
        for k in key
    ]
    return int(np.random.SeedSequence(words).generate_state(1)[0]) & 0x7FFFFFFF

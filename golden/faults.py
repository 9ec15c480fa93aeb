"""Memory faults: bit flips in stored weights after every update.

:class:`MemoryFaults` is the integer model's, bit-exact with :mod:`intrain.fault_spec` (its own
LFSR lanes, the hardware's order of draws); :class:`FloatFaults` flips bits of float32 arrays at
the same rate with NumPy's generator, for the float32 baseline.
"""

from __future__ import annotations

import numpy as np

from intrain.fault_spec import FAULT_LFSR, FaultPlan
from intrain.golden.lfsr import LfsrBank

__all__ = ["MemoryFaults", "FloatFaults"]


class MemoryFaults:
    """Bit flips in the stored weight words of a configuration with ``bit_error_rate > 0``.

    Parameters
    ----------
    plan : FaultPlan
        Threshold, lane seeds and word widths (:meth:`FaultPlan.from_config`).

    Attributes
    ----------
    flips : int
        Bits flipped so far.
    """

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self.bank = LfsrBank(FAULT_LFSR, plan.seeds)
        # XOR mask of bit k of a word, applied to its sign-extended value: the word's top bit
        # is its sign, so flipping it flips every bit above too.
        self._masks = [np.array([1 << k for k in range(b - 1)] + [-(1 << (b - 1))],
                                dtype=np.int64) for b in plan.word_bits]
        self.flips = 0

    @classmethod
    def for_config(cls, config) -> MemoryFaults | None:
        """The faults of ``config``, or None when it has none."""
        plan = FaultPlan.from_config(config)
        return None if plan is None else cls(plan)

    def apply(self, weights, trace: dict | None = None) -> None:
        """Flip bits of ``weights`` (the stored weights of every layer, ``(n_out, n_in)`` signed
        integer arrays) in place, drawing one word per lane per weight, layers from the last to
        the first. With ``trace``, store each layer's XOR masks (of the words' bit patterns) as
        ``flips{l}`` and the weights after the flips as ``W{l}``."""
        words = self.bank.draw(sum(w.size for w in weights))
        hits = np.flatnonzero(words <= words.dtype.type(self.plan.threshold))
        draw, lane = np.divmod(hits, self.plan.lanes)  # the word and the bit of each hit
        start = 0
        for i in reversed(range(len(weights))):
            w, end = weights[i], start + weights[i].size
            mine = (draw >= start) & (draw < end) & (lane < self.plan.word_bits[i])
            rows, cols = np.divmod(draw[mine] - start, w.shape[1])
            bits = lane[mine]
            np.bitwise_xor.at(w, (rows, cols), self._masks[i][bits].astype(w.dtype))
            self.flips += int(bits.size)
            start = end
            if trace is not None:
                flips = np.zeros(w.shape, dtype=np.int64)
                np.bitwise_or.at(flips, (rows, cols), np.left_shift(1, bits))
                trace[f"flips{i + 1}"] = flips
                trace[f"W{i + 1}"] = w.copy()


class FloatFaults:
    """Bit flips in float32 arrays: each of the 32 bits of every element flips with probability
    ``rate`` per :meth:`apply` (NumPy's generator seeded with ``seed``).

    Attributes
    ----------
    flips : int
        Bits flipped so far.
    """

    def __init__(self, rate: float, seed: int):
        self.rate = float(rate)
        self.rng = np.random.default_rng([seed, 2])
        self.flips = 0

    def apply(self, arrays) -> None:
        """Flip bits of every float32 array in ``arrays`` in place (C-contiguous arrays)."""
        for a in arrays:
            bits = a.size * 32
            k = int(self.rng.binomial(bits, self.rate))
            if not k:
                continue
            pos = self.rng.choice(bits, size=k, replace=False)
            words = a.reshape(-1).view(np.uint32)
            np.bitwise_xor.at(words, pos >> 5, np.left_shift(1, pos & 31).astype(np.uint32))
            self.flips += k

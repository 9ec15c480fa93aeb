"""Memory faults in the stored weights: which bits flip, as the golden model and the hardware
must both compute them (one source of truth, as :mod:`intrain.lfsr_spec` is for the rounder).

With ``Config.bit_error_rate = P``, after the update of every training step each bit of every
stored weight word flips with probability ``P``:

- *Words.* Layer ``l`` stores each weight as a ``word_bits = w_max.bit_length() + 1``-bit
  two's-complement word (the width of the engine's weight memory; 8 bits for 2-8-8-8). A flip of
  bit ``k`` inverts that bit of the word; the word is then read as two's complement again, so a
  flipped weight lies anywhere in ``[-2 ** (word_bits - 1), 2 ** (word_bits - 1) - 1]``,
  possibly beyond ``w_max``.
- *Generators.* ``lanes = max(word_bits)`` over the layers, each a :data:`FAULT_LFSR`: the
  rounder's 32-bit Fibonacci LFSR (taps 32, 22, 2, 1) drawing 32 bits, so a draw is the whole
  state and then the state leaps 32 steps. Seeds ``FAULT_LFSR.lane_seeds(fault_seed, lanes)``
  (evenly spaced around the cycle; ``fault_seed`` is ``seed ^ 1`` unless the config gives one).
- *Order.* After all layers are updated, layers from the last to the first; in a layer the
  words row by row (output ``o``) and, in a row, column by column (input ``i``): the order of
  the ``(n_out, n_in)`` matrix in memory. Every lane draws once per word; lane ``k`` decides
  bit ``k`` (lanes at or above a narrower layer's ``word_bits`` draw but are not used).
- *Decision.* Bit ``k`` flips when lane ``k``'s draw ``u`` satisfies ``u <= threshold`` with
  ``threshold = min(round(P * 2 ** 32), 2 ** 32 - 1)`` (:func:`fault_threshold`). A draw is
  never 0, so over the generator's period a bit flips with probability exactly
  ``threshold / (2 ** 32 - 1)``. With ``threshold == 0`` faults are off and the lanes never draw.

The forward view and the next clip take any word as it is: ``T = clip(round(W / 2 ** t_shift),
t_max)`` (ternary: ``sign(W)`` where ``|W| > 2 ** (t_shift - 1)``) and ``clip(W - dW, -w_max,
w_max)`` at full width, so a flipped weight beyond ``w_max`` is used as read by the next
forward and backward pass and clipped back by the next update.

This module imports nothing else of intrain but the LFSR specification.
"""

from __future__ import annotations

from dataclasses import dataclass

from intrain.lfsr_spec import LfsrSpec

__all__ = ["FAULT_LFSR", "FaultPlan", "fault_threshold", "word_bits"]

#: The fault generators: the rounder's polynomial, a whole 32-bit state per draw.
FAULT_LFSR = LfsrSpec(width=32, taps=(32, 22, 2, 1), draw_bits=32)


def fault_threshold(rate: float) -> int:
    """The 32-bit threshold of a bit-error rate: ``min(round(rate * 2 ** 32), 2 ** 32 - 1)``
    (``rate * 2 ** 32`` is exact in binary floating point; ``round`` is half to even)."""
    return min(round(float(rate) * 2.0**32), 2**32 - 1)


def word_bits(plan) -> int:
    """Width of a layer's stored weight word (a :class:`~intrain.config.LayerPlan`)."""
    return plan.w_max.bit_length() + 1


@dataclass(frozen=True)
class FaultPlan:
    """What the fault generators of a configuration are.

    Attributes
    ----------
    threshold : int
        A bit flips when its draw is at most this (:func:`fault_threshold`).
    seeds : tuple of int
        One seed per lane; lane ``k`` decides bit ``k`` of every word.
    word_bits : tuple of int
        The stored word width of each layer.
    """

    threshold: int
    seeds: tuple[int, ...]
    word_bits: tuple[int, ...]

    @classmethod
    def from_config(cls, config) -> FaultPlan | None:
        """The faults of ``config``; None when it has none (threshold 0)."""
        threshold = fault_threshold(config.bit_error_rate)
        if threshold == 0:
            return None
        widths = tuple(word_bits(p) for p in config.plan)
        return cls(threshold, FAULT_LFSR.lane_seeds(config.fault_seed, max(widths)), widths)

    @property
    def lanes(self) -> int:
        return len(self.seeds)

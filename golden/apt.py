"""APT mode: per-layer error widths that grow while training (README, "APT mode").

Every training step measures, for the error of each layer ``l`` (``E_L`` and every ``E_{l-1}``
sent back from ``R``), how much of the tensor its QE kept: ``S = sum|x|`` of the masked wide
tensor ``x`` and ``S^ = sum|x^|`` of the quantized error shifted back to ``x``'s units. The
width ``kE_l`` holds while ``|S - S^| * den <= num * S``; when the test fails, ``kE_l`` grows by
``apt_step`` bits, at most to ``apt_max``, from the next step on. Widths never shrink.
Integers only, so the RTL can follow every decision bit for bit.
"""

from __future__ import annotations

import numpy as np

from intrain.config import Config, LayerPlan
from intrain.golden.arith import qe_scale

__all__ = ["AptState", "error_sums", "metric_holds", "next_width"]


def error_sums(x, e, shift: int | None, mask=None) -> tuple[int, int]:
    """``(S, S^)`` of a wide tensor ``x`` and its quantized error ``e``, in common units.

    ``shift`` is QE's (:func:`~intrain.golden.arith.qe_scale`: ``e = clip(round(x / 2 **
    shift))``). A right shift (``shift > 0``) is undone exactly by ``e << shift``; a left shift
    cannot be undone in integers, so ``x`` is taken to ``e``'s units instead (``x << -shift``).
    Either way both sums are in the finer of the two units, and their ratio is exact. ``mask``
    (boolean, ``x``'s shape) keeps only the elements it marks in ``S``; ``e`` is already zero
    elsewhere. An all-zero ``x`` (``shift`` None) gives ``(0, 0)``.
    """
    if shift is None:
        return 0, 0
    s = int(np.abs(x).sum(dtype=np.int64, where=True if mask is None else mask))
    s_hat = int(np.abs(e).sum(dtype=np.int64))
    return s << max(0, -shift), s_hat << max(0, shift)


def metric_holds(s: int, s_hat: int, threshold: tuple[int, int]) -> bool:
    """``|S - S^| * den <= num * S`` (``threshold = (num, den)``): QE kept enough of ``x``."""
    num, den = threshold
    return abs(s - s_hat) * den <= num * s


def next_width(width: int, holds: bool, step: int, maximum: int) -> int:
    """The width of the next step: unchanged if the metric holds, else ``width + step``, capped
    at ``maximum`` (never below ``width``)."""
    return width if holds else max(width, min(width + step, maximum))


class AptState:
    """The error widths of a model in APT mode, carried from step to step.

    The model reports every QE of a step with :meth:`measure` and closes the step with
    :meth:`end_step`, which applies the step's decisions to :attr:`widths` and :attr:`plan`.

    Attributes
    ----------
    widths : list of int
        ``kE_l`` of layers ``1 .. L`` in force for the next step.
    sums : list of tuple
        ``(S, S^, holds)`` per layer from the last step (``None`` before the first).
    events : list of tuple
        ``(step, layer, width)``: the metric of ``layer`` (1-based) failed in ``step`` (0-based,
        counted by the model) and ``width`` applies from ``step + 1`` on.
    """

    def __init__(self, config: Config):
        if not config.apt:
            raise ValueError("AptState needs a config with apt on")
        self.config = config
        self.widths = [b.e for b in config.bits]
        self.plan: tuple[LayerPlan, ...] = config.plan
        self.sums: list = [None] * len(self.widths)
        self.events: list[tuple[int, int, int]] = []

    def measure(self, index: int, x, e, mask=None) -> None:
        """Record the QE of layer ``index + 1``'s error: ``x`` the wide tensor QE took (its
        maximum set the scale), ``e`` the quantized error (after ``mask``, the ReLU mask)."""
        shift = qe_scale(x, self.plan[index].e_max)
        s, s_hat = error_sums(x, e, shift, mask)
        self.sums[index] = (s, s_hat, metric_holds(s, s_hat, self.config.apt_threshold))

    def end_step(self, step: int) -> bool:
        """Apply the decisions of ``step``; True when a width grew (:attr:`plan` is then new)."""
        c, grown = self.config, False
        for i, m in enumerate(self.sums):
            w = next_width(self.widths[i], m is None or m[2], c.apt_step, c.apt_max)
            if w != self.widths[i]:
                self.widths[i], grown = w, True
                self.events.append((step, i + 1, w))
        if grown:
            self.plan = c.error_plan(self.widths)
        return grown

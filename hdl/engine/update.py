"""The weight update's lanes: QG with stochastic rounding, then the clip and the forward view."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .._util import check_int, delay
from ..stochastic_rounder import StochasticRounder
from ..weight_updater import WeightUpdater

__all__ = ["UpdateLanes"]


class UpdateLanes(wiring.Component):
    """``lanes`` weights updated per cycle: ``W' = clip(W - SR(G * 2 ** -s, u))``.

    The shift is QG's, ``s = RL2(max |G|) - lam`` (SPEC section 3), clamped to the range the
    rounders take: ``[-(w_bits + 1), g_width + draw_bits]`` with ``w_bits`` the widest weight
    clip, below which every ``G`` moves a weight past its clip and above which every result is
    0 or the draw's carry. Each lane is a :class:`StochasticRounder` and, per distinct weight
    format of the layers (``w_max``, ``t_shift``, ``t_max``), a :class:`WeightUpdater`; the
    caller picks the format of the layer it writes (:meth:`format_of`).

    Fully pipelined, no back-pressure: a lane's ``g``, ``u`` and ``w`` taken with ``valid`` give
    its new weight :meth:`cycles` edges later on ``w_new`` (the rounder's latency, then the
    updater's: each block's ``LATENCY``); ``w`` is delayed inside to meet the rounded update.

    Parameters
    ----------
    lanes : int
        Weights per cycle.
    g_width : int
        Width of the signed gradients.
    draw_bits : int
        Width of the random draws (:attr:`LfsrConfig.draw_bits`).
    w_width : int
        Width of the signed stored weights taken (the widest layer's).
    plans : list of LayerPlan
        The layers whose weights the lanes update.
    rl2_width : int
        Width of ``RL2(max |G|)``.

    Members
    -------
    valid : ``In(1)``
        The lanes' inputs are taken.
    g : ``In(data.ArrayLayout(signed(g_width), lanes))``
    u : ``In(data.ArrayLayout(unsigned(draw_bits), lanes))``
    w : ``In(data.ArrayLayout(signed(w_width), lanes))``
    rl2 : ``In(range(2 ** rl2_width))``
        ``RL2(max |G|)`` of the layer; held while its elements flow.
    lam : ``In(signed(8))``
        The learning-rate exponent of the run.
    w_new : ``Out(data.ArrayLayout(data.ArrayLayout(signed(w_width), lanes), formats))``
        The new stored weights, per weight format.
    """

    def __init__(self, lanes, g_width, draw_bits, w_width, plans, rl2_width):
        self._lanes = check_int("Lanes", lanes, 1)
        self._g_width = check_int("Gradient width", g_width, 2)
        self._draw_bits = check_int("Draw width", draw_bits, 1)
        self._w_width = check_int("Weight width", w_width, 2)
        if not plans:
            raise ValueError("UpdateLanes needs at least one layer")
        self._formats = list(dict.fromkeys((p.w_max, p.t_shift, p.t_max) for p in plans))
        w_bits = max(p.w_max.bit_length() for p in plans)
        self._min_shift, self._max_shift = -(w_bits + 1), g_width + draw_bits
        super().__init__({
            "valid": In(1),
            "g": In(data.ArrayLayout(signed(g_width), lanes)),
            "u": In(data.ArrayLayout(unsigned(draw_bits), lanes)),
            "w": In(data.ArrayLayout(signed(w_width), lanes)),
            "rl2": In(range(1 << check_int("RL2 width", rl2_width, 1))),
            "lam": In(signed(8)),
            "w_new": Out(data.ArrayLayout(data.ArrayLayout(signed(w_width), lanes),
                                          len(self._formats))),
        })

    @staticmethod
    def cycles() -> int:
        """Clock edges from taking a lane's inputs to its new weight: the rounder's
        :attr:`~StochasticRounder.LATENCY` plus the updater's."""
        return StochasticRounder.LATENCY + WeightUpdater.LATENCY

    def format_of(self, plan) -> int:
        """The index in ``w_new`` of the weight format of layer ``plan``."""
        return self._formats.index((plan.w_max, plan.t_shift, plan.t_max))

    def elaborate(self, platform):
        m = Module()
        lo, hi = self._min_shift, self._max_shift
        shift = Signal(range(lo, hi + 1), name="qg_shift")
        wide = Signal(signed(max(self._g_width.bit_length(), 8) + 2), name="qg_shift_wide")
        m.d.comb += [
            wide.eq(self.rl2 - self.lam),
            shift.eq(Mux(wide < lo, lo, Mux(wide > hi, hi, wide))),
        ]
        w_r = delay(m, self.w, StochasticRounder.LATENCY, "w")   # with the rounders' results
        for k in range(self._lanes):
            rnd = m.submodules[f"qg_{k}"] = StochasticRounder(self._g_width, self._draw_bits,
                                                               hi, lo)
            m.d.comb += [
                rnd.i.valid.eq(self.valid),
                rnd.i.payload.g.eq(self.g[k]),
                rnd.i.payload.u.eq(self.u[k]),
                rnd.shift.eq(shift),
                rnd.o.ready.eq(1),
            ]
            for f, (w_max, t_shift, t_max) in enumerate(self._formats):
                upd = WeightUpdater(w_max, t_shift, t_max, rnd.out_width)
                m.submodules[f"update_{f}_{k}"] = upd
                m.d.comb += [
                    upd.i.valid.eq(rnd.o.valid),
                    upd.i.payload.w.eq(w_r[k]),
                    upd.i.payload.dw.eq(rnd.o.payload),
                    upd.o.ready.eq(1),
                    self.w_new[f][k].eq(upd.o.payload.w),
                ]
        return m

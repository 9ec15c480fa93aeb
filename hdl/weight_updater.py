"""The weight update and the forward view of the new weight: the hardware twin of
``intrain.golden.arith.update_weights`` and ``forward_weights``."""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_int as _check_int
from .shift_quantizer import round_shift, saturate

__all__ = ["WeightUpdater"]



class WeightUpdater(wiring.Component):
    """``W' = clip(W - dW, -w_max, w_max)`` and its forward view
    ``T = clip(round(W' / 2 ** t_shift), -t_max, t_max)``.

    ``round`` is half to even (:func:`~intrain.hdl.shift_quantizer.round_shift`). For ternary
    weights (``kW = 2``, ``kG = 8``: ``t_shift = 6``, ``t_max = 1``) ``T`` is ``sign(W')`` where
    ``|W'| > 32`` and 0 otherwise. ``W`` (normally already in ``[-w_max, w_max]``) and ``dW`` may
    be any ``w_width``- and ``dw_width``-bit values: the difference is computed at full width
    before the clip, so it never wraps.

    Fully pipelined: one element per cycle. Latency: 2 cycles (stage 1 subtracts and clips,
    stage 2 rounds and clips the forward view). All stages advance when the output register is
    empty or read (``~o.valid | o.ready``).

    Parameters
    ----------
    w_max : int
        The clip of the stored weights (``plan.w_max``).
    t_shift : int
        Stored weights are ``2 ** t_shift`` forward-weight units (``plan.t_shift``, at least 0).
    t_max : int
        The largest forward weight (``plan.t_max``).
    dw_width : int
        Width of the signed update ``dW``.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({"w": signed(w_width),
    "dw": signed(dw_width)})))``
        The stored weight and its update; ``w_width = w_max.bit_length() + 1``.
    o : ``Out(stream.Signature(data.StructLayout({"w": signed(w_width),
    "t": signed(t_width)})))``
        The new stored weight and its forward view; ``t_width = t_max.bit_length() + 1``.
    """

    #: Clock edges from accepting an element to presenting its result (subtraction and clip;
    #: the forward view). The engine delays its side signals and the cycle model counts by this
    #: constant.
    LATENCY = 2

    def __init__(self, w_max, t_shift, t_max, dw_width, *, src_loc_at=0):
        self._w_max = _check_int("Weight clip w_max", w_max, 1)
        self._t_shift = _check_int("Forward-weight shift t_shift", t_shift, 0)
        self._t_max = _check_int("Forward-weight clip t_max", t_max, 1)
        self._dw_width = _check_int("Update width", dw_width, 1)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "w": signed(self.w_width), "dw": signed(dw_width)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "w": signed(self.w_width), "t": signed(self.t_width)}))),
        }, src_loc_at=src_loc_at + 1)

    @classmethod
    def for_layer(cls, plan, dw_width) -> WeightUpdater:
        """The updater of one layer (:class:`~intrain.config.LayerPlan`) for ``dw_width``-bit
        updates."""
        return cls(plan.w_max, plan.t_shift, plan.t_max, dw_width, src_loc_at=1)

    @property
    def w_max(self) -> int:
        return self._w_max

    @property
    def t_shift(self) -> int:
        return self._t_shift

    @property
    def t_max(self) -> int:
        return self._t_max

    @property
    def dw_width(self) -> int:
        return self._dw_width

    @property
    def w_width(self) -> int:
        """Width of the signed stored weight: ``w_max.bit_length() + 1``."""
        return self._w_max.bit_length() + 1

    @property
    def t_width(self) -> int:
        """Width of the signed forward weight: ``t_max.bit_length() + 1``."""
        return self._t_max.bit_length() + 1

    @property
    def latency(self) -> int:
        """Clock edges from accepting an element to presenting its result: :attr:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # Stage 1: subtract at full width, clip.
        s1_valid = Signal(name="s1_valid")
        s1_w = Signal(signed(self.w_width), name="s1_w")
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1_w.eq(saturate(self.i.payload.w - self.i.payload.dw, self._w_max)),
            ]

        # Stage 2: the forward view.
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.w.eq(s1_w),
                self.o.payload.t.eq(saturate(round_shift(s1_w, self._t_shift), self._t_max)),
            ]
        return m

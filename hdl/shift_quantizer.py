"""Divide by a power of two with round half to even, then saturate symmetrically.

The hardware twin of ``round_shift``, ``saturate`` and ``qa`` in ``intrain.golden.arith`` (and of
the last step of ``qe``). The two expression builders :func:`round_shift` and :func:`saturate` are
the one place where this arithmetic is written for the hardware; other blocks (such as the weight
updater) use them too.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.hdl import Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_int as _check_int

__all__ = ["ShiftQuantizer", "round_shift", "saturate"]


def round_shift(x, s: int) -> Value:
    """``round(x / 2 ** s)`` with ties to even for a constant ``s > 0``; ``x * 2 ** -s`` for
    ``s <= 0`` (exact).

    For ``s > 0`` this is the one-adder form ``(x + 2 ** (s - 1) - 1 + bit_s(x)) >> s`` with an
    arithmetic (flooring) shift; ``bit_s`` of a signed value above its top bit is its sign.

    Parameters
    ----------
    x : value-like
        The dividend (signed or unsigned).
    s : int
        The shift.

    Returns
    -------
    Value
        Wide enough for every result.
    """
    x = Value.cast(x)
    if not isinstance(s, int) or isinstance(s, bool):
        raise TypeError(f"Shift must be an integer, not {s!r}")
    if s <= 0:
        return x.shift_left(-s)
    if s < len(x):
        bit = x[s]
    elif x.shape().signed:
        bit = x[-1]
    else:
        bit = 0
    return (x + ((1 << (s - 1)) - 1) + bit).shift_right(s)


def saturate(x, limit: int) -> Value:
    """Clip ``x`` to ``[-limit, limit]`` (symmetric: the most negative code is never produced).

    The result fits ``signed(limit.bit_length() + 1)``; assigning it to a signal of that width
    (or wider) never changes its value.
    """
    x = Value.cast(x)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise TypeError(f"Saturation limit must be a non-negative integer, not {limit!r}")
    return Mux(x > limit, limit, Mux(x < -limit, -limit, x))



def _check_bool(what, value):
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {value!r}")
    return value


class ShiftQuantizer(wiring.Component):
    """Round-shift-saturate quantizer with optional ReLU and straight-through clip mask.

    Every element ``x`` of the input stream becomes
    ``saturate(round_shift(h, s), limit)`` with ``h = max(x, 0)`` if ``relu`` else ``x``,
    ``limit = 2 ** (out_bits - 1) - 1`` and ``round_shift`` rounding half to even for ``s > 0``
    (one adder: ``(h + 2 ** (s - 1) - 1 + bit_s(h)) >> s``) and shifting left exactly for
    ``s <= 0``. With ``clip_mask``, the output also carries the straight-through mask of the clip,
    ``max(x, 0) <= limit * 2 ** s`` (inclusive, exact for either sign of ``s``).

    The shift ``s`` is either a constant (``shift``) or read from the ``shift`` port for every
    element, within ``[min_shift, max_shift]``: the value of the port in the cycle an element is
    accepted applies to that element. A port value outside the range gives an unspecified result.

    Fully pipelined: one element per cycle. Latency: 2 cycles (an element accepted at clock edge
    ``t`` is presented at the output after edge ``t + 2``). Stage 1 applies the ReLU and computes
    the mask (with a run-time shift it also adds the rounding constant); stage 2 rounds (with a
    constant shift), shifts and saturates. All stages advance when the output register is empty
    or read (``~o.valid | o.ready``); nothing is dropped or duplicated under back-pressure.

    Parameters
    ----------
    in_width : int
        Width of the signed input.
    out_bits : int
        Width of the signed output (at least 2).
    shift : int or None
        The constant shift; leave ``None`` for a run-time shift.
    min_shift, max_shift : int or None
        The range of the run-time shift (inclusive); give both, and no ``shift``.
    relu : bool
        Apply ``max(x, 0)`` first.
    clip_mask : bool
        Add the straight-through mask to the output.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(signed(in_width)))``
        The elements to quantize.
    shift : ``In(range(min_shift, max_shift + 1))``
        The shift of the element being accepted; only with a run-time shift.
    o : ``Out(stream.Signature(data.StructLayout({"value": signed(out_bits), "mask": 1})))``
        The quantized element; the ``mask`` field exists only with ``clip_mask``.
    """

    #: Clock edges from accepting an element to presenting its result (stage 1: ReLU, mask,
    #: rounding constant; stage 2: shift, saturation). The engine delays its side signals and
    #: the cycle model counts by this constant.
    LATENCY = 2

    def __init__(self, in_width, out_bits, *, shift=None, min_shift=None, max_shift=None,
                 relu=False, clip_mask=False, src_loc_at=0):
        self._in_width = _check_int("Input width", in_width, 1)
        self._out_bits = _check_int("Output width", out_bits, 2)
        if shift is not None:
            if min_shift is not None or max_shift is not None:
                raise ValueError(
                    "Give either a constant shift or a run-time range min_shift..max_shift, "
                    "not both")
            _check_int("Shift", shift, -(1 << 16))
            if shift > (1 << 16):
                raise ValueError(f"Shift must be at most {1 << 16}, not {shift!r}")
            self._min_shift = self._max_shift = shift
        else:
            if min_shift is None or max_shift is None:
                raise ValueError(
                    "Give either a constant shift or both min_shift and max_shift for a "
                    "run-time shift")
            _check_int("Minimum shift", min_shift, -(1 << 16))
            _check_int("Maximum shift", max_shift, min_shift)
            if max_shift > (1 << 16):
                raise ValueError(f"Maximum shift must be at most {1 << 16}, not {max_shift!r}")
            self._min_shift, self._max_shift = min_shift, max_shift
        self._shift = shift
        self._relu = _check_bool("relu", relu)
        self._clip_mask = _check_bool("clip_mask", clip_mask)

        fields = {"value": signed(out_bits)}
        if clip_mask:
            fields["mask"] = 1
        members = {
            "i": In(stream.Signature(signed(in_width))),
            "o": Out(stream.Signature(data.StructLayout(fields))),
        }
        if shift is None:
            members["shift"] = In(range(min_shift, max_shift + 1))
        super().__init__(members, src_loc_at=src_loc_at + 1)

    # -- configuration ------------------------------------------------------------------------
    @property
    def in_width(self) -> int:
        return self._in_width

    @property
    def out_bits(self) -> int:
        return self._out_bits

    @property
    def const_shift(self) -> int | None:
        """The constant shift, or ``None`` for a run-time shift."""
        return self._shift

    @property
    def min_shift(self) -> int:
        return self._min_shift

    @property
    def max_shift(self) -> int:
        return self._max_shift

    @property
    def relu(self) -> bool:
        return self._relu

    @property
    def clip_mask(self) -> bool:
        return self._clip_mask

    @property
    def limit(self) -> int:
        """The saturation value ``2 ** (out_bits - 1) - 1``."""
        return (1 << (self._out_bits - 1)) - 1

    @property
    def latency(self) -> int:
        """Clock edges from accepting an element to presenting its result: :attr:`LATENCY`."""
        return self.LATENCY

    # -- builders from the configuration -------------------------------------------------------
    @classmethod
    def for_qa(cls, plan, in_width=None) -> ShiftQuantizer:
        """QA of a hidden layer: ReLU, constant shift ``plan.qa_shift``, ``plan.bits.a`` bits and
        the clip mask. ``in_width`` defaults to ``plan.acc_bits_forward``."""
        return cls(plan.acc_bits_forward if in_width is None else in_width, plan.bits.a,
                   shift=plan.qa_shift, relu=True, clip_mask=True, src_loc_at=1)

    @classmethod
    def for_qe(cls, plan, in_width=None) -> ShiftQuantizer:
        """The last step of QE, ``saturate(round_shift(x, k - (kE - 1)), e_max)``, for every
        ``k = RL2(max|x|)`` of a signed ``in_width`` tensor (``0 <= k <= in_width - 1``).
        ``in_width`` defaults to ``plan.acc_bits_backward``."""
        in_width = plan.acc_bits_backward if in_width is None else in_width
        ke1 = plan.bits.e - 1
        return cls(in_width, plan.bits.e, min_shift=-ke1, max_shift=max(in_width - 1 - ke1, -ke1),
                   src_loc_at=1)

    # -- hardware ------------------------------------------------------------------------------
    def _mask_threshold(self, s):
        """``floor(limit * 2 ** s)``: for an integer ``h``, ``h <= threshold`` exactly when
        ``h <= limit * 2 ** s``."""
        return self.limit << s if s >= 0 else self.limit >> -s

    def elaborate(self, platform):
        m = Module()

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        x = self.i.payload
        h = Signal(signed(self._in_width), name="h")
        m.d.comb += h.eq(Mux(x < 0, 0, x) if self._relu else x)

        # Stage 1: mask and rounding constant (run time) or mask only (constant shift).
        s1_valid = Signal(name="s1_valid")
        s1_mask = Signal(name="s1_mask")
        mask = Signal(name="mask")
        if self._shift is not None:
            m.d.comb += mask.eq(x <= self._mask_threshold(self._shift))
            s1_h = Signal(signed(self._in_width), name="s1_h")
            with m.If(advance):
                m.d.sync += [s1_valid.eq(self.i.valid), s1_h.eq(h), s1_mask.eq(mask)]
            result = round_shift(s1_h, self._shift)
        else:
            # A common left shift by ``lead`` makes every run-time shift ``r = s + lead`` a right
            # shift; for ``s <= 0`` the low ``lead`` bits are zero and the rounding is exact.
            lead = max(0, -self._min_shift)
            r_max = self._max_shift + lead
            r = Signal(range(r_max + 1), name="r")
            m.d.comb += r.eq(self.shift + lead)
            hs = h.shift_left(lead)
            half = Signal(range(max(1, 1 << max(r_max - 1, 0))), name="half_minus_one")
            threshold = Signal(range(self._mask_threshold(self._max_shift) + 1), name="threshold")
            # Chains of ``Mux`` rather than ``m.Switch``: that becomes a Verilog ``always @*``
            # block, which Icarus Verilog (``-g2012``) first evaluates when ``shift`` changes.
            half_table = threshold_table = 0
            for s in reversed(range(self._min_shift, self._max_shift + 1)):
                hit = self.shift == s
                half_table = Mux(hit, (1 << (s + lead - 1)) - 1 if s + lead > 0 else 0,
                                 half_table)
                threshold_table = Mux(hit, self._mask_threshold(s), threshold_table)
            m.d.comb += [half.eq(half_table), threshold.eq(threshold_table)]
            bit = Signal(name="round_bit")
            m.d.comb += [
                bit.eq(Mux(r == 0, 0, (hs >> r)[0])),
                mask.eq(x <= threshold),
            ]
            s1_sum = Signal(signed(max(len(hs), r_max) + 1), name="s1_sum")
            s1_r = Signal.like(r, name="s1_r")
            with m.If(advance):
                m.d.sync += [
                    s1_valid.eq(self.i.valid),
                    s1_sum.eq(hs + half + bit),
                    s1_r.eq(r),
                    s1_mask.eq(mask),
                ]
            result = s1_sum >> s1_r

        # Stage 2: shift and saturate into the output register.
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.value.eq(saturate(result, self.limit)),
            ]
            if self._clip_mask:
                m.d.sync += self.o.payload.mask.eq(s1_mask)
        return m

"""Output-stationary systolic MAC array: the hardware twin of ``intrain.golden.matmul``."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_int as _check_int
from ._util import select
from .multiplier import DSP_FAMILIES, check_dsp, product_cycles, registered_products

__all__ = ["SystolicArray"]


def _check_shape(what, value):
    if not isinstance(value, (Shape, int, range)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a signed or unsigned integer shape, not {value!r}")
    shape = Shape.cast(value)
    if shape.width < 1:
        raise ValueError(f"{what} must be at least 1 bit wide, not {value!r}")
    return shape


_INT8 = signed(8)
_flags_layout = data.StructLayout({"valid": 1, "first": 1, "last": 1})


class SystolicArray(wiring.Component):
    """A ``rows`` x ``cols`` grid of multiply-accumulate processing elements (PEs) that computes
    tile matrix products ``OUT[r][c] = sum_k A[r][k] * B[k][c]``.

    The array is output-stationary: PE ``(r, c)`` accumulates ``OUT[r][c]``. Each input beat
    carries one reduction index ``k``: column ``k`` of the A tile (``a[r] = A[r][k]``) and row
    ``k`` of the B tile (``b[c] = B[k][c]``), unskewed. Inside, row ``r``'s operand and the beat's
    flags are delayed ``r`` cycles and column ``c``'s operand ``c`` cycles; every PE passes ``a``
    to its east neighbour and ``b`` to its south neighbour through registers (``a`` takes the
    flags along), so beat ``k`` reaches PE ``(r, c)`` ``r + c`` cycles after it is accepted. Which
    matrices of a training step are A and B (``T . A``, ``T^T . E``, ``E . A^T``) is up to the
    caller's address generation.

    Each PE registers the product ``a * b`` (a multiplier followed by a pipeline register, as in
    a DSP block; with ``dsp``, a vendor DSP primitive and its registers, see
    :mod:`intrain.hdl.multiplier`), then adds it to its accumulator (``first``: start from the
    product); the beat's flags follow the product through as many registers. With
    ``last``, the sum also goes into the PE's output register, so the PE starts the next tile on
    the very next beat (double buffering). Accumulators and output registers are
    ``signed(acc_width)`` and wrap: a result is ``OUT[r][c]`` modulo ``2 ** acc_width`` as a two's
    complement value. No wrap occurs when ``acc_width`` is sized from the configuration
    (``Config.acc_bits`` holds every accumulator of every layer; see :meth:`for_config`).

    A finished tile comes out one row per beat, rows ``0`` to ``rows - 1`` in order, while the
    next tile computes. Latency: :attr:`latency` ``= pipeline_cycles + cols - 1`` cycles from
    accepting the beat with ``last`` to presenting row 0 (no stalls); row ``r`` follows ``r``
    cycles later. :attr:`pipeline_cycles` is the product latency of the ``dsp`` mapping plus
    one: 2 for ``"generic"`` and ``"ice40"``, 3 for ``"gowin"``, 5 for ``"ecp5"``.

    Throughput: one beat per cycle (every PE busy every cycle) for back-to-back tiles with
    ``K >= max(rows, cols)`` beats and the output always ready. The input stalls (``i.ready``
    low) only to keep every result:

    - a beat with ``last`` waits until ``cols`` cycles have passed since the previous beat with
      ``last`` (row ``r`` of the previous tile must be complete, all ``cols`` PEs, before the new
      tile's first sum reaches it), and until the tile before the previous one has drained: at
      most two tiles lie between input and output, one accumulating and one in the output
      registers. Other beats are never held back by this rule;
    - the whole array (skew registers and PEs) stops while a new sum would reach a row of output
      registers that has not been read yet (output back-pressure); the rows already complete keep
      draining meanwhile. With ``output_always_ready``, this stall logic is left out.

    With ``o.ready`` held at 1 from reset, that stop never happens, so ``output_always_ready``
    changes no cycle. Let tile ``n``'s beat with ``last`` be accepted in cycle ``L(n)`` and
    ``P = pipeline_cycles``. Row ``r`` of tile ``n`` is complete (all its output registers
    written) in cycle ``L(n) + P + cols - 1 + r`` and is presented in cycle
    ``D(n, r) = D(n, 0) + r`` with ``D(n, 0) = max(L(n) + P + cols - 1, D(n - 1, rows - 1) + 1)``
    (rows drain in order, one per cycle). The next tile's sum reaches PE ``(r, 0)``'s output
    register at the end of cycle ``L(n + 1) + P - 1 + r``: the stall happens only if row ``r``
    is presented later than that, i.e. if ``D(n, 0) > L(n + 1) + P - 1``. The first term of
    ``D(n, 0)`` is covered by the ``cols`` spacing (``L(n + 1) >= L(n) + cols``), the second by
    the two-tile rule (``L(n + 1) >= D(n - 1, rows - 1)``) and ``P >= 2``; neither depends on
    ``K`` (single-beat tiles included), ``rows`` against ``cols``, or the input's gaps.

    Otherwise the array advances every cycle, carrying invalid beats (bubbles) when no input is
    offered, so a tile flushes through without further input. ``i.ready`` depends on
    ``i.payload.last`` and, combinationally, on ``o.ready`` (with ``output_always_ready``,
    on ``i.payload.last`` and registers only); ``o.valid`` and ``o.payload`` come
    from registers (the payload through a ``rows``-to-1 multiplexer).

    Resources per PE: ``len(a)`` + ``len(b)`` bits of operand registers passed on (none to the
    east of the last column, none to the south of the last row), 3 flag bits, the product
    (``len(a) + len(b)`` bits, in a DSP block's output register), the accumulator and the output
    register (``acc_width`` bits each): 99 flip-flops for 8-bit operands and 32-bit accumulators
    (generic mapping; a DSP mapping moves the product into the primitive and adds 3 flag bits
    per extra pipeline stage, and ``"ecp5"`` a fabric product register).
    Skew registers: ``rows * (rows - 1) / 2`` A operands, ``cols * (cols - 1) / 2`` B operands,
    ``rows - 1`` flag sets.

    Parameters
    ----------
    rows, cols : int
        Shape of the array: ``rows`` rows of A and of OUT, ``cols`` columns of B and of OUT.
    a_shape, b_shape : shape-like
        Shapes of the A and B operands (signed or unsigned integers).
    acc_width : int
        Width of the signed accumulators and results.
    dsp : str
        How the products are built (:data:`~intrain.hdl.multiplier.DSP_FAMILIES`):
        ``"generic"`` (inferred, the default), ``"ice40"`` (``SB_MAC16`` in dual 8x8 mode, two
        PEs per DSP), ``"ecp5"`` (``MULT18X18D``) or ``"gowin"`` (``MULT9X9``). A primitive
        must hold the operands (8, 18 and 9 bits).
    output_always_ready : bool
        The caller holds ``o.ready`` at 1 from reset (the array may present a row in any cycle),
        so the array leaves out the stall logic, which never fires then: its registers and DSP
        blocks run without clock enables (cutting a path from the output row pointer to the
        enable of every register), and the admission of ``last`` beats comes from a register
        computed a cycle ahead. Same results, same cycles; a row not taken is overwritten.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({...})))``
        Fields ``"a": data.ArrayLayout(a_shape, rows)``, ``"b": data.ArrayLayout(b_shape, cols)``,
        ``"first": 1``, ``"last": 1``. One beat per reduction index: ``a`` is a column of the A
        tile, ``b`` a row of the B tile; ``first`` marks the first beat of a tile (the
        accumulators restart from its products), ``last`` the final one. A tile of one beat sets
        both. Every tile must start with ``first``; without it, sums continue from the previous
        tile's.
    o : ``Out(stream.Signature(data.StructLayout({...})))``
        Fields ``"row": range(rows)``, ``"values": data.ArrayLayout(signed(acc_width), cols)``,
        ``"last": 1``. One row of a finished tile per beat: ``values[c] = OUT[row][c]``; ``last``
        on row ``rows - 1``.
    busy : ``Out(1)``
        Some PE multiplies operands of a valid beat in this cycle.
    mac_count : ``Out(range(rows * cols + 1))``
        How many PEs multiply operands of a valid beat in this cycle (summed over a tile:
        ``K * rows * cols``). The PEs on one anti-diagonal ``r + c = d`` hold the same beat, so
        this is a constant-weighted sum of ``rows + cols - 1`` valid bits.
    """

    PIPELINE_CYCLES = 2
    """Cycles from a PE's operands to its sum in the output register (product register, then
    accumulator) with the generic multiplier; :attr:`pipeline_cycles` gives an instance's."""

    DSP_FAMILIES = tuple(DSP_FAMILIES)
    """The values ``dsp`` takes."""

    def __init__(self, rows, cols, *, a_shape=_INT8, b_shape=_INT8, acc_width=32,
                 dsp="generic", output_always_ready=False, src_loc_at=0):
        self._rows = _check_int("Number of rows", rows, 1)
        self._cols = _check_int("Number of columns", cols, 1)
        self._a_shape = _check_shape("A operand shape", a_shape)
        self._b_shape = _check_shape("B operand shape", b_shape)
        self._acc_width = _check_int("Accumulator width", acc_width, 1)
        self._dsp = check_dsp(dsp, self._a_shape, self._b_shape)
        if not isinstance(output_always_ready, bool):
            raise TypeError(f"output_always_ready must be a bool, not {output_always_ready!r}")
        self._output_always_ready = output_always_ready
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(self._a_shape, rows),
                "b": data.ArrayLayout(self._b_shape, cols),
                "first": 1,
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "row": range(rows),
                "values": data.ArrayLayout(signed(acc_width), cols),
                "last": 1,
            }))),
            "busy": Out(1),
            "mac_count": Out(range(rows * cols + 1)),
        }, src_loc_at=src_loc_at + 1)

    # -- configuration ------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def a_shape(self) -> Shape:
        return self._a_shape

    @property
    def b_shape(self) -> Shape:
        return self._b_shape

    @property
    def acc_width(self) -> int:
        return self._acc_width

    @property
    def dsp(self) -> str:
        """How the products are built: ``"generic"``, ``"ice40"``, ``"ecp5"`` or ``"gowin"``."""
        return self._dsp

    @property
    def output_always_ready(self) -> bool:
        """The caller holds ``o.ready`` at 1; the array has no stall logic."""
        return self._output_always_ready

    @property
    def pipeline_cycles(self) -> int:
        """Cycles from a PE's operands to its sum in the output register: the product latency
        of the ``dsp`` mapping, plus one for the accumulator."""
        return self.dsp_pipeline_cycles(self._dsp)

    @staticmethod
    def dsp_pipeline_cycles(dsp) -> int:
        """:attr:`pipeline_cycles` of an array with the mapping ``dsp``."""
        return product_cycles(dsp) + 1

    @staticmethod
    def check_dsp(dsp, a_shape=_INT8, b_shape=_INT8) -> str:
        """``dsp`` if its primitive holds operands of ``a_shape`` and ``b_shape``, else
        :class:`ValueError` (an unknown name or an operand too wide, said in the message)."""
        return check_dsp(dsp, a_shape, b_shape)

    @staticmethod
    def operand_shape(config) -> Shape:
        """The operand shape of :meth:`for_config`'s array: signed, as wide as the widest of
        the configuration's inputs, weights, activations and errors (in APT mode, errors of
        ``apt_max`` bits)."""
        width = max([config.input_bits] + [w for b in config.bits for w in (b.w, b.a, b.e)]
                    + ([config.apt_max] if config.apt else []))
        return signed(width)

    @property
    def macs(self) -> int:
        """Multiply-accumulate units: ``rows * cols``."""
        return self._rows * self._cols

    @property
    def latency(self) -> int:
        """Cycles from accepting the beat with ``last`` to presenting row 0 of its tile, without
        stalls: ``pipeline_cycles + cols - 1``."""
        return self.pipeline_cycles + self._cols - 1

    @classmethod
    def for_config(cls, config, *, dsp="generic", output_always_ready=False) -> SystolicArray:
        """The array of a :class:`~intrain.config.Config`: ``array_rows`` x ``array_cols``,
        ``acc_bits`` wide (enough for every product of every layer, so nothing wraps), both
        operands signed and as wide as the widest of the weights, activations and errors
        (:meth:`operand_shape`), its products built as ``dsp`` says; ``output_always_ready`` as
        in the constructor."""
        shape = cls.operand_shape(config)
        return cls(config.array_rows, config.array_cols, a_shape=shape, b_shape=shape,
                   acc_width=config.acc_bits, dsp=dsp, output_always_ready=output_always_ready,
                   src_loc_at=1)

    # -- hardware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        # The array advances (``en``) unless a sum would overwrite an unread output row; with
        # the output always ready, that never happens (see the class docstring): no enables.
        en = Const(1) if self._output_always_ready else Signal(name="en")
        accepted = Signal(name="accepted")
        drain = Signal(name="drain")
        m.d.comb += [
            accepted.eq(self.i.valid & self.i.ready),
            drain.eq(self.o.valid & self.o.ready),
        ]
        s = SimpleNamespace(en=en, accepted=accepted, drain=drain)

        # The beat entering the array: a bubble unless accepted.
        entry = Signal(_flags_layout, name="entry")
        m.d.comb += [
            entry.valid.eq(accepted),
            entry.first.eq(self.i.payload.first),
            entry.last.eq(self.i.payload.last),
        ]
        west_a, west_flags, north_b = self._skew(m, en, entry)
        flags_out, valid_in, operands = self._processing_elements(m, en, west_a, west_flags,
                                                                  north_b)
        # Registered products, ``product_cycles`` after the operands.
        prod_shape = (Const(0, self._a_shape) * Const(0, self._b_shape)).shape()
        prods = registered_products(
            m, self._dsp, operands, en, prod_shape,
            [f"prod_{r}_{c}" for r in range(self._rows) for c in range(self._cols)])
        s.acc_flags, out = self._accumulators(m, en, flags_out, prods)
        self._output(m, s, out)
        self._admission(m, s)
        self._activity(m, en, valid_in)
        return m

    def _register(self, m, en, value, shape, name):
        """``value`` through a register that advances with ``en``."""
        reg = Signal(shape, name=name)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    def _skew(self, m, en, entry):
        """Row ``r``'s operand and the flags delayed ``r`` cycles, column ``c``'s operand ``c``
        cycles: ``(west_a, west_flags, north_b)``, what enters the west and north edges."""
        west_a, west_flags, north_b = [], [], []
        flags = entry
        flag_taps = [entry]
        for j in range(1, self._rows):
            flags = self._register(m, en, flags, _flags_layout, f"skew_flags_{j}")
            flag_taps.append(flags)
        for r in range(self._rows):
            a = self.i.payload.a[r]
            for j in range(r):
                a = self._register(m, en, a, self._a_shape, f"skew_a_{r}_{j}")
            west_a.append(a)
            west_flags.append(flag_taps[r])
        for c in range(self._cols):
            b = self.i.payload.b[c]
            for j in range(c):
                b = self._register(m, en, b, self._b_shape, f"skew_b_{c}_{j}")
            north_b.append(b)
        return west_a, west_flags, north_b

    def _processing_elements(self, m, en, west_a, west_flags, north_b):
        """Operands and flags passed east and south through registers: each PE's flags out,
        whether its operands are valid, and its ``(a, b)`` operands (row by row)."""
        rows, cols = self._rows, self._cols
        a_out = [[None] * cols for _ in range(rows)]
        b_out = [[None] * cols for _ in range(rows)]
        flags_out = [[None] * cols for _ in range(rows)]
        valid_in = [[None] * cols for _ in range(rows)]
        operands = []
        for r in range(rows):
            for c in range(cols):
                a_in = west_a[r] if c == 0 else a_out[r][c - 1]
                f_in = west_flags[r] if c == 0 else flags_out[r][c - 1]
                b_in = north_b[c] if r == 0 else b_out[r - 1][c]
                valid_in[r][c] = f_in.valid
                operands.append((a_in, b_in))

                f_reg = Signal(_flags_layout, name=f"flags_{r}_{c}")
                with m.If(en):
                    m.d.sync += f_reg.eq(f_in)
                    if c < cols - 1:
                        a_reg = Signal(self._a_shape, name=f"a_{r}_{c}")
                        m.d.sync += a_reg.eq(a_in)
                        a_out[r][c] = a_reg
                    if r < rows - 1:
                        b_reg = Signal(self._b_shape, name=f"b_{r}_{c}")
                        m.d.sync += b_reg.eq(b_in)
                        b_out[r][c] = b_reg
                flags_out[r][c] = f_reg
        return flags_out, valid_in, operands

    def _accumulators(self, m, en, flags_out, prods):
        """Each PE's accumulator and output register, the flags following the product through
        its extra pipeline stages: ``(acc_flags, out)``."""
        rows, cols, width = self._rows, self._cols, self._acc_width
        acc_flags = [[None] * cols for _ in range(rows)]
        out = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                f_acc = flags_out[r][c]
                for j in range(1, product_cycles(self._dsp)):
                    f_acc = self._register(m, en, f_acc, _flags_layout, f"flags_{r}_{c}_p{j}")
                prod = prods[r * cols + c]
                acc = Signal(signed(width), name=f"acc_{r}_{c}")
                total = Signal(signed(width), name=f"sum_{r}_{c}")
                res = Signal(signed(width), name=f"out_{r}_{c}")
                # The assignment truncates to acc_width bits: sums wrap modulo 2 ** acc_width.
                m.d.comb += total.eq(Mux(f_acc.first, prod, acc + prod))
                with m.If(en & f_acc.valid):
                    m.d.sync += acc.eq(total)
                    with m.If(f_acc.last):
                        m.d.sync += res.eq(total)
                acc_flags[r][c] = f_acc
                out[r][c] = res
        return acc_flags, out

    def _output(self, m, s, out):
        """The output rows, read in order, and the stall when a sum would reach an unread row
        (sets ``s.row_full`` and ``s.drain_row``)."""
        rows, cols, en, drain = self._rows, self._cols, s.en, s.drain
        # Row r is complete when PE (r, cols - 1) has written its sum, and is read in order. A
        # sum reaching PE (r, 0)'s output register while row r still holds an unread result
        # stops the array; the spacing of ``last`` beats (:meth:`_admission`) guarantees that
        # the unread row is complete then, so it drains and the array moves on (and, with the
        # output always ready, that it has drained by then: no stall logic).
        row_full = s.row_full = Signal(rows, name="row_full")
        drain_row = s.drain_row = Signal(range(rows), name="drain_row")
        m.d.comb += [
            self.o.valid.eq(row_full.bit_select(drain_row, 1)),
            self.o.payload.row.eq(drain_row),
            self.o.payload.last.eq(drain_row == rows - 1),
        ]
        for c in range(cols):
            m.d.comb += self.o.payload.values[c].eq(select(drain_row, [
                (r, out[r][c]) for r in range(rows)]))
        with m.If(drain):
            m.d.sync += row_full.bit_select(drain_row, 1).eq(0)
            with m.If(drain_row == rows - 1):
                m.d.sync += drain_row.eq(0)
            with m.Else():
                m.d.sync += drain_row.eq(drain_row + 1)
        conflicts = []
        for r in range(rows):
            start, done = s.acc_flags[r][0], s.acc_flags[r][cols - 1]
            if not self._output_always_ready:
                conflict = Signal(name=f"conflict_{r}")
                m.d.comb += conflict.eq(start.valid & start.last & row_full[r]
                                        & ~(drain & (drain_row == r)))
                conflicts.append(conflict)
            with m.If(en & done.valid & done.last):
                m.d.sync += row_full[r].eq(1)
        if conflicts:
            m.d.comb += en.eq(~Cat(*conflicts).any())

    def _admission(self, m, s):
        """``i.ready``: ``last`` beats admitted ``cols`` array cycles after the previous one, and
        at most two tiles between the input and the end of their drain."""
        rows, cols, en = self._rows, self._cols, s.en
        row_full, drain_row, accepted = s.row_full, s.drain_row, s.accepted
        pending = Signal(range(3), name="pending")
        final_drain = Signal(name="final_drain")
        # ``drain & o.payload.last``, without the output multiplexer: the row is ``rows - 1``.
        m.d.comb += final_drain.eq(row_full[rows - 1] & (drain_row == rows - 1) & self.o.ready)
        last_ok = Signal(name="last_ok")
        if cols > 1:
            since_last = Signal(range(cols + 1), init=cols, name="since_last")
            with m.If(en):
                with m.If(accepted & self.i.payload.last):
                    m.d.sync += since_last.eq(1)
                with m.Elif(since_last != cols):
                    m.d.sync += since_last.eq(since_last + 1)
            m.d.comb += last_ok.eq((since_last == cols) & ((pending != 2) | final_drain))
        else:
            m.d.comb += last_ok.eq((pending != 2) | final_drain)
        pending_next = Signal(range(3), name="pending_next")
        m.d.comb += pending_next.eq(pending + (accepted & self.i.payload.last) - final_drain)
        m.d.sync += pending.eq(pending_next)
        if self._output_always_ready:
            # ``last_ok`` from a register, computed a cycle ahead from the next state (the output
            # is ready in every cycle): no path from the output row pointer to ``i.ready``.
            last_ok_reg = Signal(init=1, name="last_ok_reg")
            since_ok = Const(1)
            if cols > 1:
                since_ok = ~(accepted & self.i.payload.last) & (
                    (since_last == cols) | (since_last == cols - 1))
            done = s.acc_flags[rows - 1][cols - 1]
            full_next = (done.valid & done.last) | (row_full[rows - 1] & ~final_drain)
            if rows > 1:
                at_last_next = Mux(s.drain, drain_row == rows - 2, drain_row == rows - 1)
            else:
                at_last_next = Const(1)
            m.d.sync += last_ok_reg.eq(since_ok & ((pending_next != 2) | (full_next
                                                                          & at_last_next)))
            last_ok = last_ok_reg
        m.d.comb += self.i.ready.eq(en & (~self.i.payload.last | last_ok))

    def _activity(self, m, en, valid_in):
        """``busy`` and ``mac_count``: the PEs on anti-diagonal ``d`` hold the same beat."""
        rows, cols = self._rows, self._cols
        terms, valids = [], []
        for d in range(rows + cols - 1):
            r = min(d, rows - 1)
            n = sum(1 for rr in range(rows) if 0 <= d - rr < cols)
            v = Signal(name=f"diag_valid_{d}")
            m.d.comb += v.eq(en & valid_in[r][d - r])
            valids.append(v)
            terms.append(Mux(v, n, 0))
        m.d.comb += [
            self.busy.eq(Cat(*valids).any()),
            self.mac_count.eq(sum(terms)),
        ]

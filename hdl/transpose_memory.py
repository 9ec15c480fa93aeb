"""A diagonally banked matrix memory that reads and writes both row and column slices.

The systolic array needs, from one stored matrix (weights ``W[o][i]``, activations ``A[b][i]``,
errors ``E[b][o]``), a run of ``lanes`` consecutive elements of a row in one cycle for one
product and a run of ``lanes`` consecutive elements of a column for another. Skewing the matrix
across ``lanes`` memory banks lets both come out of the same storage at full rate, so a transpose
is only a different address sequence, never a copy.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Const, Module, Mux, Shape, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._util import check_int as _check_int
from .single_port import SINGLE_PORT_KINDS, SinglePortBank

__all__ = ["SliceMode", "TransposeMemory", "divmod_const", "mul_const"]


class SliceMode(enum.Enum, shape=1):
    """Which way a slice runs: along a row (fixed row, consecutive columns) or down a column
    (fixed column, consecutive rows)."""

    ROW = 0
    COLUMN = 1



def _check_shape(what, value):
    if not isinstance(value, (Shape, int, range)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a signed or unsigned integer shape, not {value!r}")
    shape = Shape.cast(value)
    if shape.width < 1:
        raise ValueError(f"{what} must be at least 1 bit wide, not {value!r}")
    return shape


def _csd(c: int) -> list[tuple[int, int]]:
    """The canonical signed-digit form of ``c >= 0``: ``(sign, position)`` pairs with ``c ==
    sum(sign << position)`` and no two adjacent non-zero digits (the fewest terms)."""
    digits, pos = [], 0
    while c:
        if c & 1:
            digit = 2 - (c & 3)   # +1 if c % 4 == 1, -1 if c % 4 == 3
            digits.append((digit, pos))
            c -= digit
        c >>= 1
        pos += 1
    return digits


def mul_const(x, c: int) -> Value:
    """``x * c`` of an unsigned value ``x`` and a constant ``c >= 0``, as shifts and adders.

    The product is the sum of the signed digits of ``c`` (:func:`_csd`) applied to shifted
    copies of ``x``, so synthesis builds it from adders in the fabric and never from a DSP
    multiplier (a constant multiplication written as ``*`` may take one). The result is
    unsigned and wide enough for every product.
    """
    x = Value.cast(x)
    if x.shape().signed:
        raise TypeError(f"Multiplicand must be unsigned, not {x.shape()!r}")
    _check_int("Constant factor", c, 0)
    digits = _csd(c)
    if not digits:
        return Const(0, 1)
    width = len(x) + c.bit_length()
    total = None
    for sign, pos in sorted(digits, key=lambda d: -d[0]):   # additions first
        term = x.shift_left(pos)
        total = term if total is None else (total + term if sign > 0 else total - term)
    return total.as_unsigned()[:width] if len(total) > width else total.as_unsigned()


def divmod_const(x, d: int) -> tuple[Value, Value]:
    """``(x // d, x % d)`` of an unsigned value ``x`` and a constant ``d >= 1``, without a divider
    or a multiplier.

    A power of two is a bit slice. Any other ``d`` uses the reciprocal: with ``N = len(x)`` and
    ``l = ceil(log2(d))``, ``x // d == (x * ceil(2 ** (N + l) / d)) >> (N + l)`` for every
    ``0 <= x < 2 ** N`` (the rounding error of the reciprocal stays below ``1 / d``), and
    ``x % d == x - (x // d) * d``: both constant multiplications are shifts and adders
    (:func:`mul_const`).
    """
    x = Value.cast(x)
    if x.shape().signed:
        raise TypeError(f"Dividend must be unsigned, not {x.shape()!r}")
    _check_int("Divisor", d, 1)
    width = len(x)
    if d & (d - 1) == 0:
        log = d.bit_length() - 1
        return x >> log, x[:log]
    k = width + (d - 1).bit_length()
    quotient = (mul_const(x, -(-(1 << k) // d)) >> k)[:width]
    return quotient, (x - mul_const(quotient, d))[:(d - 1).bit_length()]


def _rotate(values, amount, lanes, *, left):
    """Barrel rotation of ``lanes`` values by ``amount`` (a value below ``lanes``).

    Left: ``out[k] = values[(k + amount) % lanes]``; right: ``out[k] = values[(k - amount) %
    lanes]``. One stage of 2:1 multiplexers per bit of ``amount``: stage ``j`` rotates by
    ``2 ** j % lanes``, and the stages add up to ``amount`` modulo ``lanes``.
    """
    values = list(values)
    for j in range(len(amount)):
        step = (1 << j) % lanes
        if not left:
            step = -step
        values = [Mux(amount[j], values[(k + step) % lanes], values[k]) for k in range(lanes)]
    return values


class TransposeMemory(wiring.Component):
    """A ``rows`` x ``cols`` matrix in ``lanes`` memory banks, read and written a row slice or a
    column slice of ``lanes`` elements per cycle.

    Mapping (diagonal banking): element ``(r, c)`` lives in bank ``(r + c) % lanes`` at address
    ``(r // lanes) * cols + c``. Each bank is a :class:`~amaranth.lib.memory.Memory` of
    :attr:`bank_depth` ``= ceil(rows / lanes) * cols`` words of ``shape``. Example for
    ``rows=6, cols=5, lanes=4`` (each entry is ``bank:address``)::

                c=0    c=1    c=2    c=3    c=4
        r=0     0:0    1:1    2:2    3:3    0:4
        r=1     1:0    2:1    3:2    0:3    1:4
        r=2     2:0    3:1    0:2    1:3    2:4
        r=3     3:0    0:1    1:2    2:3    3:4
        r=4     0:5    1:6    2:7    3:8    0:9
        r=5     1:5    2:6    3:7    0:8    1:9

    A slice is ``lanes`` consecutive elements from its first element ``(row, col)``: a row slice
    is ``(row, col + k)``, a column slice ``(row + k, col)``, for lanes ``k = 0 .. lanes - 1``.
    Either way the ``lanes`` elements fall in ``lanes`` different banks, lane ``k`` in bank
    ``(s + k) % lanes`` with ``s = (row + col) % lanes``, so a slice is one access to every bank.
    Any first element is supported (neither ``row`` nor ``col`` has to be a multiple of
    ``lanes``). The bank addresses of a slice, with ``q, p = divmod(row, lanes)`` and lane
    ``k = (b - s) % lanes`` in bank ``b``:

    ========  =============================================================
    slice     address in bank ``b``
    ========  =============================================================
    row       ``q * cols + col + k``
    column    ``q * cols + col + (cols if p + k >= lanes else 0)``
    ========  =============================================================

    The words are rotated by ``s`` between lane order and bank order (a barrel rotator of
    ``ceil(log2(lanes))`` stages of 2:1 multiplexers, on the write data and on the read data).
    The divisions by ``lanes`` are bit slices for a power of two and constant multiplications
    by a reciprocal otherwise (see :func:`divmod_const`); every constant multiplication is
    shifts and adders (:func:`mul_const`), so the memory takes no DSP multiplier.

    Edges: ``rows`` and ``cols`` need not be multiples of ``lanes``. A lane whose element lies
    outside the matrix (``r >= rows`` or ``c >= cols``, including a first element outside it,
    which the port widths allow) reads as 0, and writing it does nothing. The banks hold
    ``ceil(rows / lanes) * lanes`` rows, so up to ``(lanes - 1) * cols`` words are never used.

    Reading: a request on ``read`` comes back on ``read_data`` as the slice in lane order.
    Fully pipelined (one request per cycle): the banks' synchronous read ports form stage 1 and
    the rotation and the edge mask feed the output register, stage 2. Latency: 2 cycles (a
    request accepted at clock edge ``t`` is presented after edge ``t + 1`` and can be taken at
    edge ``t + 2``). A stage advances when the next one is empty or advancing, the last when
    ``read_data`` is empty or read; nothing is lost or duplicated under back-pressure.

    Writing: ``write.ready`` is always high; a write accepted at clock edge ``t`` updates every
    lane whose ``mask`` bit is set (and whose element is inside the matrix) at that edge.

    Read-after-write: a read returns the contents at the edge it is accepted. A read accepted at
    the same edge as a write returns the old contents; a read accepted at any later edge sees
    the write. (A write accepted at edge ``t`` is visible to reads accepted at ``t + 1`` on.)
    In simulation, :attr:`collided` records a word inside the matrix read and written on the same
    edge (the case where a read returns the old contents): a user that never does it, as
    the engine, lets synthesis treat such reads as undefined and drop the logic that makes the
    block RAMs return the old contents (``intrain build`` does so for every bank).

    Registered requests (``registered=True``): reads and writes first go into a request
    register, which cuts the paths from the requesters' logic to the address arithmetic. The
    read latency becomes 3 (stage 0 the request register; the request register advances when
    it is empty or stage 1 advances) and a write reaches the banks at edge ``t + 1``; since a
    read reaches the banks one edge later too, every read-after-write rule above holds as long
    as ``read_data`` is always ready (as in the engine). Under back-pressure nothing is lost or
    duplicated, but a read that waits in the request register also sees the writes accepted
    while it waits.

    Address stage (``address_stage=True``, with ``registered``): every bank's address, write
    data and enables (and the read slice's rotation and edge mask) go through one more register
    between the address arithmetic and the banks, so that a bank far from the request register
    meets a plain route in one cycle and its arithmetic in the other. Reads and writes both take
    the extra edge (read latency 4), so the read-after-write rules above hold unchanged.

    Single-port banks (``single_port="generic"`` or ``"ice40"``): every bank is a
    :class:`~.single_port.SinglePortBank` (on the iCE40, SPRAM primitives): one access a
    cycle, a write that meets a read held for the next free cycle (``hold_writes``; without it,
    for a memory never written while it is read, such a write is lost). The rules above hold for
    a user that never reads an address with a write still held, leaves a free cycle after each
    write that met a read, and keeps ``read_data`` always ready (a bank's word is valid only in
    the cycle after its read), as the engine does for the memories it puts there;
    :attr:`collided` also records a write lost, a read of a held address and a read slice kept
    waiting.

    Host access: row slices are enough to load or dump a matrix; :meth:`slice_starts` lists the
    first elements of the slices that cover it.

    Parameters
    ----------
    shape : Shape, int or range
        The element shape, such as ``signed(8)`` (an int is that many unsigned bits).
    rows, cols : int
        The size of the largest matrix held.
    lanes : int
        Elements per access (and banks).
    registered : bool
        Put requests through a register first (read latency 3, see above).
    address_stage : bool
        Register each bank's address and data after the arithmetic (read latency 4; needs
        ``registered``; see above).
    aligned_rows : bool
        The memory is only ever accessed in row slices that start at a multiple of ``lanes``:
        element ``(row, col)`` then lives in bank ``col % lanes`` at
        ``row * ceil(cols / lanes) + col // lanes``, so every bank takes the same address and
        no slice is rotated (no barrel rotators, no per-bank address adders). A column slice or
        an unaligned row slice reads and writes other elements than it names.
    single_port : str or None
        ``None``: dual-port banks (a read and a write every cycle); ``"generic"`` or
        ``"ice40"``: single-port banks of that kind (see above).
    hold_writes : bool
        Single-port banks hold a write that meets a read (the default; see above).
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    read : ``In(stream.Signature(data.StructLayout({"mode": SliceMode, "row": range(rows),
    "col": range(cols)})))``
        Read requests: the slice's direction and first element.
    read_data : ``Out(stream.Signature(data.ArrayLayout(shape, lanes)))``
        The slices read, in request order; lane ``k`` is element ``k`` of the slice.
    write : ``In(stream.Signature(data.StructLayout({"mode": SliceMode, "row": range(rows),
    "col": range(cols), "data": data.ArrayLayout(shape, lanes), "mask": lanes})))``
        Slice writes: lane ``k`` of ``data`` goes to element ``k`` of the slice if bit ``k`` of
        ``mask`` is set.
    """

    def __init__(self, shape, rows, cols, lanes, *, registered=False, address_stage=False,
                 aligned_rows=False, single_port=None, hold_writes=True, src_loc_at=0):
        if not isinstance(registered, bool):
            raise TypeError(f"registered must be a bool, not {registered!r}")
        if not isinstance(address_stage, bool):
            raise TypeError(f"address_stage must be a bool, not {address_stage!r}")
        if address_stage and not registered:
            raise ValueError("address_stage needs registered requests (registered=True)")
        if not isinstance(aligned_rows, bool):
            raise TypeError(f"aligned_rows must be a bool, not {aligned_rows!r}")
        if single_port is not None and single_port not in SINGLE_PORT_KINDS:
            raise ValueError(f"single_port must be None or one of "
                             f"{', '.join(map(repr, SINGLE_PORT_KINDS))}, not {single_port!r}")
        self._single_port = single_port
        self._hold_writes = bool(hold_writes)
        self._address_stage = address_stage
        #: Set for good (in simulation) once a word inside the matrix is read and written on the
        #: same clock edge; nothing reads it, so synthesis drops it.
        self.collided = Signal(name="collided")
        self._registered = registered
        self._aligned = aligned_rows
        self._shape = _check_shape("Element shape", shape)
        self._rows = _check_int("Number of rows", rows, 1)
        self._cols = _check_int("Number of columns", cols, 1)
        self._lanes = _check_int("Number of lanes", lanes, 1)
        request = {"mode": SliceMode, "row": range(rows), "col": range(cols)}
        self._request_layout = data.StructLayout(request)
        self._data_layout = data.ArrayLayout(self._shape, lanes)
        self._write_layout = data.StructLayout(
            {**request, "data": self._data_layout, "mask": unsigned(lanes)})
        super().__init__({
            "read": In(stream.Signature(self._request_layout)),
            "read_data": Out(stream.Signature(self._data_layout)),
            "write": In(stream.Signature(self._write_layout)),
        }, src_loc_at=src_loc_at + 1)

    # -- configuration ------------------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        return self._shape

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def request_layout(self) -> data.StructLayout:
        """The payload layout of ``read``."""
        return self._request_layout

    @property
    def write_layout(self) -> data.StructLayout:
        """The payload layout of ``write``."""
        return self._write_layout

    @property
    def data_layout(self) -> data.ArrayLayout:
        """The payload layout of ``read_data`` (and of the ``data`` field of ``write``)."""
        return self._data_layout

    @property
    def aligned_rows(self) -> bool:
        """Only aligned row slices (no rotation; see the parameter)."""
        return self._aligned

    @property
    def bank_depth(self) -> int:
        """Words per bank: ``ceil(rows / lanes) * cols`` (``rows * ceil(cols / lanes)`` with
        ``aligned_rows``)."""
        if self._aligned:
            return self._rows * -(-self._cols // self._lanes)
        return -(-self._rows // self._lanes) * self._cols

    @property
    def size_bits(self) -> int:
        """Bits of memory in all banks: ``lanes * bank_depth * shape.width``."""
        return self._lanes * self.bank_depth * self._shape.width

    @property
    def latency(self) -> int:
        """Clock edges from accepting a read request to presenting its slice: 2 (the registered
        bank read, then the rotation into the output register), 3 with ``registered`` (the
        request register first), 4 with ``address_stage`` as well."""
        return 2 + self._registered + self._address_stage

    @property
    def single_port(self) -> str | None:
        """The kind of single-port banks (``None``: dual-port banks)."""
        return self._single_port

    @property
    def address_stage(self) -> bool:
        """Each bank's address and data are registered after the arithmetic."""
        return self._address_stage

    @property
    def registered(self) -> bool:
        """Requests (reads and writes) go through a register before the address arithmetic."""
        return self._registered

    def location(self, row: int, col: int) -> tuple[int, int]:
        """``(bank, address)`` of element ``(row, col)``:
        ``((row + col) % lanes, (row // lanes) * cols + col)``."""
        if not 0 <= row < self._rows or not 0 <= col < self._cols:
            raise ValueError(
                f"Element ({row}, {col}) is outside the {self._rows}x{self._cols} matrix")
        if self._aligned:
            return col % self._lanes, row * -(-self._cols // self._lanes) + col // self._lanes
        return (row + col) % self._lanes, (row // self._lanes) * self._cols + col

    def slice_starts(self, mode=SliceMode.ROW, rows=None, cols=None) -> list[tuple[int, int]]:
        """First elements ``(row, col)`` of the slices that cover the top left ``rows`` x
        ``cols`` of the matrix (all of it by default), row by row for row slices and column by
        column for column slices. The last slice of a row (column) may run past the edge."""
        rows = self._rows if rows is None else rows
        cols = self._cols if cols is None else cols
        if not 1 <= rows <= self._rows or not 1 <= cols <= self._cols:
            raise ValueError(f"A {rows}x{cols} matrix does not fit {self._rows}x{self._cols}")
        step = self._lanes
        if SliceMode(mode) is SliceMode.ROW:
            return [(r, c) for r in range(rows) for c in range(0, cols, step)]
        return [(r, c) for c in range(cols) for r in range(0, rows, step)]

    # -- hardware -----------------------------------------------------------------------------
    def _aligned_slice(self, m, prefix, request):
        """The address (the same in every bank) and the per-lane in-matrix flags of an aligned
        row slice."""
        lanes, rows, cols = self._lanes, self._rows, self._cols
        row, col = request.row, request.col
        addr = Signal(range(self.bank_depth), name=f"{prefix}_addr")
        inside = Signal(lanes, name=f"{prefix}_inside")
        block, _ = divmod_const(col, lanes)
        m.d.comb += addr.eq(mul_const(row, -(-cols // lanes)) + block)
        for k in range(lanes):
            m.d.comb += inside[k].eq((row < rows) & (col < cols - k) if cols > k else 0)
        return Const(0, 1), [addr] * lanes, inside

    def _slice(self, m, prefix, request):
        """The rotation, the per-bank addresses and the per-lane in-matrix flags of a slice."""
        if self._aligned:
            return self._aligned_slice(m, prefix, request)
        lanes, rows, cols = self._lanes, self._rows, self._cols
        row, col = request.row, request.col
        column = Signal(name=f"{prefix}_column")
        quotient = Signal(range(-(-rows // lanes) + 1), name=f"{prefix}_row_block")
        phase = Signal(range(lanes), name=f"{prefix}_row_phase")
        col_phase = Signal(range(lanes), name=f"{prefix}_col_phase")
        shift = Signal(range(lanes), name=f"{prefix}_shift")
        base = Signal(range(self.bank_depth + cols + lanes), name=f"{prefix}_base")
        inside = Signal(lanes, name=f"{prefix}_inside")
        q, p = divmod_const(row, lanes)
        _, cp = divmod_const(col, lanes)
        phase_sum = Signal(range(2 * lanes), name=f"{prefix}_phase_sum")
        m.d.comb += [
            column.eq(request.mode == SliceMode.COLUMN),
            quotient.eq(q),
            phase.eq(p),
            col_phase.eq(cp),
            phase_sum.eq(phase + col_phase),
            shift.eq(Mux(phase_sum >= lanes, phase_sum - lanes, phase_sum)),
            base.eq(mul_const(quotient, cols) + col),
        ]
        # ``row + k < rows`` as a compare with a constant (no adder): ``row < rows - k``.
        row_in = [row < rows - k if rows > k else Const(0, 1) for k in range(lanes)]
        col_in = [col < cols - k if cols > k else Const(0, 1) for k in range(lanes)]
        for k in range(lanes):
            m.d.comb += inside[k].eq(Mux(column, row_in[k] & col_in[0], row_in[0] & col_in[k]))
        addrs = []
        for b in range(lanes):
            lane = Signal(range(lanes), name=f"{prefix}_lane_{b}")
            addr = Signal(range(self.bank_depth), name=f"{prefix}_addr_{b}")
            m.d.comb += [
                lane.eq(Mux(shift > b, b + lanes - shift, b - shift)),
                addr.eq(base + Mux(column, Mux(phase + lane >= lanes, cols, 0), lane)),
            ]
            addrs.append(addr)
        return shift, addrs, inside

    @staticmethod
    def _stage(m, name, values):
        """``values`` through a register each (one name per bank)."""
        regs = []
        for b, value in enumerate(values):
            reg = Signal.like(Value.cast(value), name=f"{name}_{b}")
            m.d.sync += reg.eq(value)
            regs.append(reg)
        return regs

    def elaborate(self, platform):
        m = Module()
        lanes = self._lanes

        banks = []
        for b in range(lanes):
            if self._single_port:
                bank = _SinglePortPorts(SinglePortBank(self._shape, self.bank_depth,
                                                       kind=self._single_port,
                                                       hold=self._hold_writes))
                m.submodules[f"bank_{b}"] = bank.bank
            else:
                bank = m.submodules[f"bank_{b}"] = Memory(shape=self._shape,
                                                          depth=self.bank_depth, init=[])
            banks.append(bank)

        # -- write: rotate lane k into bank (s + k) % lanes, in the accepting cycle (or the
        # next one, from the request register) -----------------------------------------------
        m.d.comb += self.write.ready.eq(1)
        if self._registered:
            wr = Signal(self._write_layout, name="wr_request")
            wr_valid = Signal(name="wr_request_valid")
            m.d.sync += [wr_valid.eq(self.write.valid), wr.eq(self.write.payload)]
        else:
            wr, wr_valid = self.write.payload, self.write.valid
        w_shift, w_addrs, w_inside = self._slice(m, "wr", wr)
        w_en = Signal(lanes, name="wr_lane_en")
        m.d.comb += w_en.eq(Mux(wr_valid, wr.mask & w_inside, 0))
        w_data, w_bank_en = [wr.data[k] for k in range(lanes)], [w_en[k] for k in range(lanes)]
        if not self._aligned:
            w_data = _rotate(w_data, w_shift, lanes, left=False)
            w_bank_en = _rotate(w_bank_en, w_shift, lanes, left=False)
        if self._address_stage:
            w_addrs = self._stage(m, "wr_a_addr", w_addrs)
            w_data = self._stage(m, "wr_a_data", w_data)
            w_bank_en = self._stage(m, "wr_a_en", w_bank_en)
        w_ports = []
        for b, bank in enumerate(banks):
            port = bank.write_port()
            m.d.comb += [
                port.addr.eq(w_addrs[b]),
                port.data.eq(w_data[b]),
                port.en.eq(w_bank_en[b]),
            ]
            w_ports.append(port)

        # -- read: (stage 0 the request register), stage 1 the banks' read registers, stage 2
        # the output register ------------------------------------------------------------------
        s1_valid = Signal(name="rd_s1_valid")
        s1_shift = Signal(range(lanes), name="rd_s1_shift")
        s1_inside = Signal(lanes, name="rd_s1_inside")
        advance2 = Signal(name="rd_advance2")
        advance1 = Signal(name="rd_advance1")
        m.d.comb += [
            advance2.eq(~self.read_data.valid | self.read_data.ready),
            advance1.eq(~s1_valid | advance2),
        ]
        # With the address stage, stage A (the banks' addresses) sits before stage 1.
        advance_a = Signal(name="rd_advance_a") if self._address_stage else advance1
        if self._registered:
            rd = Signal(self._request_layout, name="rd_request")
            rd_valid = Signal(name="rd_request_valid")
            advance0 = Signal(name="rd_advance0")
            m.d.comb += [
                advance0.eq(~rd_valid | advance_a),
                self.read.ready.eq(advance0),
            ]
            with m.If(advance0):
                m.d.sync += [rd_valid.eq(self.read.valid), rd.eq(self.read.payload)]
        else:
            rd, rd_valid = self.read.payload, self.read.valid
            m.d.comb += self.read.ready.eq(advance1)
        r_shift, r_addrs, r_inside = self._slice(m, "rd", rd)
        if self._address_stage:
            a_valid = Signal(name="rd_a_valid")
            a_shift = Signal(range(lanes), name="rd_a_shift")
            a_inside = Signal(lanes, name="rd_a_inside")
            a_addrs = [Signal(range(self.bank_depth), name=f"rd_a_addr_{b}")
                       for b in range(lanes)]
            m.d.comb += advance_a.eq(~a_valid | advance1)
            with m.If(advance_a):
                m.d.sync += [a_valid.eq(rd_valid), a_shift.eq(r_shift), a_inside.eq(r_inside),
                             *[a.eq(r) for a, r in zip(a_addrs, r_addrs)]]
            rd_valid, r_shift, r_inside, r_addrs = a_valid, a_shift, a_inside, a_addrs
        # The banks whose word is inside the matrix (the others are read, but masked to 0).
        r_bank_inside = [r_inside[k] for k in range(lanes)]
        if not self._aligned:
            r_bank_inside = _rotate(r_bank_inside, r_shift, lanes, left=False)
        bank_words = []
        for b, bank in enumerate(banks):
            port = bank.read_port()
            # A single-port bank is only read for a word inside the matrix (the others are
            # masked to 0 anyway), which leaves its port to the writes.
            inside = r_bank_inside[b] if self._single_port else 1
            m.d.comb += [
                port.addr.eq(r_addrs[b]),
                port.en.eq(rd_valid & advance1 & inside),
            ]
            bank_words.append(port.data)
            if self._single_port:   # the bank checks its own port; its word lasts a cycle
                with m.If(bank.bank.collided | (s1_valid & ~advance2)):
                    m.d.sync += self.collided.eq(1)
                continue
            w_port = w_ports[b]
            with m.If(port.en & r_bank_inside[b] & w_port.en.any()
                      & (port.addr == w_port.addr)):
                m.d.sync += self.collided.eq(1)
        with m.If(advance1):
            m.d.sync += [
                s1_valid.eq(rd_valid),
                s1_shift.eq(r_shift),
                s1_inside.eq(r_inside),
            ]
        lane_words = bank_words if self._aligned else _rotate(bank_words, s1_shift, lanes,
                                                               left=True)
        with m.If(advance2):
            m.d.sync += self.read_data.valid.eq(s1_valid)
            with m.If(s1_valid):
                m.d.sync += [self.read_data.payload[k].eq(Mux(s1_inside[k], lane_words[k], 0))
                             for k in range(lanes)]
        return m


class _SinglePortPorts:
    """A :class:`SinglePortBank` seen through the ``read_port()`` and ``write_port()`` of a
    :class:`~amaranth.lib.memory.Memory` (``addr``, ``data``, ``en``)."""

    def __init__(self, bank: SinglePortBank):
        self.bank = bank

    def read_port(self):
        b = self.bank
        return SimpleNamespace(addr=b.r_addr, data=b.r_data, en=b.r_en)

    def write_port(self):
        b = self.bank
        return SimpleNamespace(addr=b.w_addr, data=b.w_data, en=b.w_en)

"""A memory bank with a read port and a write port on single-port RAM (the iCE40UP5K's SPRAM).

The iCE40UP5K has four ``SB_SPRAM256KA`` (16,384 x 16 bits each, 1 Mbit in all) beside its
thirty 4-kbit block RAMs: room for an MNIST-size layer's weights and input batch. A single-port
RAM does one access a cycle, a read or a write at one address, so a user that reads and writes
in the same cycle (the engine's update writes a row while it reads a later one) needs help:
:class:`SinglePortBank` keeps a write that meets a read in a one-word hold register and
writes it in the next cycle without a read. That is enough for a user whose reads leave a
free cycle after each write that met one (the engine's recomputed gradient on one lane reads
one row every ``batch`` cycles); a user that does not is caught in simulation by
:attr:`SinglePortBank.collided`.
"""

from __future__ import annotations

from amaranth import ClockSignal, Const, Module, Mux, Shape, Signal
from amaranth.hdl import Instance
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._util import check_int

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SINGLE_PORT_KINDS", "SinglePortBank", "spram_blocks"]

#: ``SB_SPRAM256KA``: 16,384 words of 16 bits, written a nibble at a time (``MASKWREN``).
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
#: What a bank is built from: an inferred memory with one address (``"generic"``: simulation
#: and families without SPRAM, where Yosys maps it to block RAM) or the iCE40's SPRAM
#: primitives (``"ice40"``).
SINGLE_PORT_KINDS = ("generic", "ice40")


def _most_per_word(width: int) -> int:
    """The most elements of ``width`` bits one 16-bit SPRAM word holds, each on whole nibbles."""
    if not 1 <= width <= SPRAM_WIDTH:
        raise ValueError(f"An SPRAM bank holds elements of 1 to {SPRAM_WIDTH} bits, not {width}")
    return 4 if width <= 4 else 2 if width <= 8 else 1


def _per_word(depth: int, width: int) -> int:
    """Elements of ``width`` bits in one 16-bit SPRAM word: as many as make the fewest
    primitives hold ``depth`` of them, and no more (one a word needs no field select)."""
    fewest = _blocks(depth, _most_per_word(width))
    return next(per for per in (1, 2, 4) if _blocks(depth, per) == fewest)


def _blocks(depth: int, per: int) -> int:
    words = -(-depth // per)
    return -(-words // SPRAM_DEPTH)


def spram_blocks(depth: int, width: int) -> int:
    """``SB_SPRAM256KA`` primitives of a bank of ``depth`` elements of ``width`` bits, packed
    up to ``16 // nibbles`` to a word (25,088 8-bit weights two to a word: one primitive)."""
    return _blocks(depth, _per_word(depth, width))


class SinglePortBank(wiring.Component):
    """``depth`` words of ``shape`` on single-port RAM, with a read port and a write port.

    Reading: ``r_en`` with ``r_addr`` at a clock edge presents the word on ``r_data`` in the
    cycle after that edge (like a synchronous read port; afterwards ``r_data`` may change, as
    the SPRAM's output does on a write). Writing: ``w_en`` with ``w_addr`` and ``w_data``. The
    RAM does one access per cycle, and a read goes first.

    With ``hold`` (the default), a write that meets a read, or a write still held, waits in the
    hold register and goes to the RAM in the next cycle without a read (writes keep their order;
    a read sees the contents before any write still held). ``collided`` is set for good (in
    simulation; nothing reads it, so synthesis drops it) when a write is lost (a new write while
    one is held and a read takes the cycle) or a read's address is that of a held or
    simultaneous write. Without ``hold`` (a memory its user never writes while it reads, such as
    the engine's input), a write that meets a read is lost, and ``collided`` records it.

    ``kind`` ``"generic"``: one inferred :class:`~amaranth.lib.memory.Memory` whose read and
    write ports share the address. ``"ice40"``: ``SB_SPRAM256KA`` primitives (see
    :func:`spram_blocks`), ``per_word`` elements packed into nibble-aligned fields of each
    16-bit word (default: as many as make the fewest primitives) and written with the nibble
    mask.
    """

    def __init__(self, shape, depth, *, kind="generic", hold=True, per_word=None):
        self._shape = Shape.cast(shape)
        self._depth = check_int("Depth", depth, 1)
        if kind not in SINGLE_PORT_KINDS:
            raise ValueError(f"Single-port kind must be one of {', '.join(SINGLE_PORT_KINDS)}, "
                             f"not {kind!r}")
        if not isinstance(hold, bool):
            raise TypeError(f"hold must be a bool, not {hold!r}")
        self._per_word = None
        if kind == "ice40":
            width = self._shape.width
            if per_word is None:
                per_word = _per_word(self._depth, width)
            elif per_word not in (1, 2, 4) or per_word > _most_per_word(width):
                raise ValueError(f"{per_word!r} elements of {width} bits do not fit a 16-bit "
                                 f"word on whole nibbles")
            self._per_word = per_word
        self._kind = kind
        self._hold = hold
        super().__init__({
            "r_addr": In(range(depth)), "r_en": In(1), "r_data": Out(self._shape),
            "w_addr": In(range(depth)), "w_data": In(self._shape), "w_en": In(1),
            "collided": Out(1),
        })

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def hold(self) -> bool:
        return self._hold

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        write = Signal(name="port_write")
        addr = Signal(range(self._depth), name="port_addr")
        data = Signal(self._shape, name="port_data")
        if self._hold:
            lost, stale = self._hold_register(m, write, addr, data)
        else:
            m.d.comb += [
                write.eq(self.w_en & ~self.r_en),
                addr.eq(Mux(self.r_en, self.r_addr, self.w_addr)),
                data.eq(self.w_data),
            ]
            lost, stale = self.r_en & self.w_en, 0
        with m.If(lost | stale):
            m.d.sync += self.collided.eq(1)
        if self._kind == "generic":
            self._generic(m, addr, data, write)
        else:
            self._spram(m, addr, data, write)
        return m

    def _hold_register(self, m, write, addr, data):
        """The port's access with the hold register; returns the ``lost`` and ``stale`` flags."""
        held = Signal(name="held")
        h_addr = Signal(range(self._depth), name="held_addr")
        h_data = Signal(self._shape, name="held_data")
        m.d.comb += [
            write.eq(~self.r_en & (held | self.w_en)),
            addr.eq(Mux(self.r_en, self.r_addr, Mux(held, h_addr, self.w_addr))),
            data.eq(Mux(held, h_data, self.w_data)),
        ]
        with m.If(self.w_en & (self.r_en | held)):
            m.d.sync += [held.eq(1), h_addr.eq(self.w_addr), h_data.eq(self.w_data)]
        with m.Elif(~self.r_en):
            m.d.sync += held.eq(0)
        lost = self.r_en & held & self.w_en
        stale = self.r_en & ((held & (self.r_addr == h_addr))
                             | (self.w_en & (self.r_addr == self.w_addr)))
        return lost, stale

    def _generic(self, m, addr, data, write):
        m.submodules.ram = ram = Memory(shape=self._shape, depth=self._depth, init=[])
        rd, wr = ram.read_port(), ram.write_port()
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(self.r_en), self.r_data.eq(rd.data),
                     wr.addr.eq(addr), wr.data.eq(data), wr.en.eq(write)]

    def _spram(self, m, addr, data, write):
        width = self._shape.width
        per = self._per_word
        nibbles = 4 // per
        log_per = per.bit_length() - 1
        n = _blocks(self._depth, per)
        word = addr[log_per:]
        lane = addr[:log_per] if log_per else Const(0, 1)
        field = Signal(4 * nibbles, name="port_field")
        m.d.comb += field.eq(data.as_unsigned())
        mask = Signal(4, name="port_mask")
        m.d.comb += mask.eq(Const((1 << nibbles) - 1, 4) << (lane * nibbles))
        block = word[14:] if n > 1 else Const(0, 1)
        address = Signal(14, name="port_word")
        m.d.comb += address.eq(word[:14])
        outs = []
        for i in range(n):
            out = Signal(SPRAM_WIDTH, name=f"spram_{i}_out")
            m.submodules[f"spram_{i}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=address, i_DATAIN=field.replicate(per), i_MASKWREN=mask,
                i_WREN=write, i_CHIPSELECT=(self.r_en | write) & (block == i),
                i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=out)
            outs.append(out)
        # Which primitive and field the last read came from.
        r_block = Signal.like(block, name="read_block")
        r_lane = Signal.like(lane, name="read_lane")
        with m.If(self.r_en):
            m.d.sync += [r_block.eq(block), r_lane.eq(lane)]
        word_out = outs[0]
        for i in range(1, n):
            word_out = Mux(r_block == i, outs[i], word_out)
        m.d.comb += self.r_data.eq(word_out.word_select(r_lane, 4 * nibbles)[:width])

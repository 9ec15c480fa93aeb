"""CRC-32 of every tensor the engine writes in a run, so that a host can check a training step by
reading a few words instead of every tensor back."""

from __future__ import annotations

from functools import cache

from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import crc, data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .._util import check_int, first

__all__ = ["TensorCrc", "crc32_parameters", "crc32_taps"]

#: CRC-32's polynomial, bit-reflected (zlib's register shifts right).
_POLY_REFLECTED = 0xEDB88320


def crc32_parameters(data_width: int) -> crc.Parameters:
    """CRC-32/ISO-HDLC (zlib's ``crc32``) over words of ``data_width`` bits: with the input
    reflected, a word's bit 0 goes in first, so for whole bytes the CRC of a word sequence equals
    ``zlib.crc32`` of the words' little-endian bytes."""
    return crc.catalog.CRC32_ISO_HDLC(data_width)


@cache
def crc32_taps(data_width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """CRC-32's step over one word of ``data_width`` bits as GF(2) matrices: with zlib's register
    ``s`` (before the final XOR) and the word ``d`` (bit 0 in first), bit ``i`` of the register
    after the word is the parity of ``s & state_taps[i]`` and ``d & data_taps[i]``. Returns
    ``(state_taps, data_taps)``, each 32 bit masks."""
    def step(state: int, word: int) -> int:
        for j in range(data_width):
            state = (state >> 1) ^ (_POLY_REFLECTED if (state ^ (word >> j)) & 1 else 0)
        return state

    f_cols = [step(1 << j, 0) for j in range(32)]
    g_cols = [step(0, 1 << j) for j in range(data_width)]
    state_taps = tuple(sum(1 << j for j in range(32) if f_cols[j] >> i & 1) for i in range(32))
    data_taps = tuple(sum(1 << j for j in range(data_width) if g_cols[j] >> i & 1)
                      for i in range(32))
    return state_taps, data_taps


def _parity(value, taps: int):
    """The XOR of the bits of ``value`` that ``taps`` selects, as one balanced reduction."""
    bits = [value[j] for j in range(taps.bit_length()) if taps >> j & 1]
    return Cat(*bits).xor() if bits else 0


class TensorCrc(wiring.Component):
    """One CRC-32 per tensor over the slices written to it since ``clear``.

    Every write (``port(t).valid``) of ``lanes`` values to tensor ``t`` adds one word to that
    tensor's CRC: lane ``k`` as ``element_bits`` bits of two's complement (sign- or
    zero-extended by its shape) if bit ``k`` of its ``mask`` is set, else 0, lane 0 in the low
    bits. The first write to a tensor after ``clear`` starts its CRC afresh; a tensor not
    written keeps the CRC it had. Writes to one tensor must not interleave with writes to
    another (one CRC register serves them all, one tensor after the other); in a cycle with
    writes to several tensors only the lowest-numbered one counts.

    :attr:`LATENCY`: a write is reflected in the CRC that a read asks for that many cycles later
    (the input registers, the word register, each lane's share of the step, their XOR, the CRC
    register, the result memory's write). Each tensor's write port is registered twice as it
    comes, with no logic before it, and the choice among them follows the registers: the placer
    can put each port's first register beside its memory's write logic and the second beside the
    choice, so that neither the route from the engine nor the long routes into the XOR network
    carry logic (on ECP5 the engine's write ports, through one register, were the critical path:
    the ``layer`` register's write enables 10.4 ns of route from the CRC's registers). With
    ``register_ports=False`` the choice comes first and one register takes the chosen write, one
    cycle less than :attr:`LATENCY` for ``n_tensors`` times fewer registers (a one-lane engine on
    a small part, where every logic cell counts and this path is short).

    The step is :func:`crc32_taps`' matrices, each output bit one balanced XOR reduction
    (``amaranth.lib.crc.Processor`` writes each as a chain of two-input XORs, which took Yosys'
    ABC9 over ten minutes to map for a 256-bit word, and whose 256 inputs each feeding half the
    outputs made a routing hot spot); :func:`crc32_parameters`' ``compute()``
    is the software twin the tests hold it to.

    Members
    -------
    clear : ``In(1)``
        A run begins: the next write to each tensor starts its CRC.
    restart : ``In(1)``
        With a write: it starts its tensor's CRC afresh (a tensor written again later in the
        run, as the weights are by the fault pass).
    writes : ``In(data.StructLayout)``
        Each tensor's write (:meth:`port`): ``valid``, ``mask`` (``lanes`` bits) and ``values``
        (``lanes`` of the tensor's element shape, ``shapes[t]``: default
        ``signed(element_bits)``; registered at that width, then extended).
    read_addr : ``In(range(n_tensors))``
        The tensor whose CRC ``read_data`` gives in the next cycle.
    read_data : ``Out(32)``
        The CRC (``zlib.crc32`` of its words' bytes) of tensor ``read_addr`` of the cycle
        before; 0 for a tensor not written since the design was loaded.
    """

    LATENCY = 7

    def __init__(self, lanes: int, element_bits: int, n_tensors: int, *, shapes=None,
                 register_ports: bool = True):
        if not isinstance(register_ports, bool):
            raise TypeError(f"register_ports must be a bool, not {register_ports!r}")
        self._register_ports = register_ports
        self._lanes = check_int("Number of lanes", lanes, 1)
        self._element_bits = check_int("Element width", element_bits, 1)
        self._n = check_int("Number of tensors", n_tensors, 1)
        self._shapes = [Shape.cast(s) for s in (shapes or [signed(element_bits)] * n_tensors)]
        if len(self._shapes) != n_tensors or any(s.width > element_bits for s in self._shapes):
            raise ValueError(f"Need {n_tensors} element shapes of at most {element_bits} bits, "
                             f"not {shapes!r}")
        super().__init__({
            "clear": In(1),
            "restart": In(1),
            "writes": In(data.StructLayout({
                f"t{t}": self.write_layout(lanes, shape) for t, shape in enumerate(self._shapes)
            })),
            "read_addr": In(range(n_tensors)),
            "read_data": Out(32),
        })

    @staticmethod
    def write_layout(lanes: int, shape) -> data.StructLayout:
        """One tensor's write port: ``valid``, ``mask``, ``values`` (``lanes`` of ``shape``)."""
        return data.StructLayout({"valid": 1, "mask": lanes,
                                  "values": data.ArrayLayout(shape, lanes)})

    def port(self, tensor: int):
        """The write port of tensor ``tensor``."""
        return self.writes[f"t{tensor}"]

    def _extend(self, value, shape) -> Value:
        """``value`` of ``shape`` as ``element_bits`` bits of two's complement, unsigned (a
        signed value among the unsigned ones would widen the choice by a bit)."""
        value = Value.cast(value)
        pad = self._element_bits - shape.width
        fill = value[-1].replicate(pad) if shape.signed else Const(0, pad)
        return Cat(value, fill) if pad else value.as_unsigned()

    @property
    def word_bits(self) -> int:
        return self._lanes * self._element_bits

    def elaborate(self, platform):
        m = Module()
        w = self._input_register(m)
        seen = Signal(self._n, name="seen")
        word = Signal(self.word_bits, name="crc_word")
        valid1, start1 = Signal(name="crc_valid_1"), Signal(name="crc_start_1")
        tensor1 = Signal(range(self._n), name="crc_tensor_1")
        fresh = ~seen.bit_select(w["tensor"], 1) | w["restart"]
        m.d.sync += [
            word.eq(Cat(*[Mux(w["mask"][k], w["values"][k], 0) for k in range(self._lanes)])),
            valid1.eq(w["valid"]),
            start1.eq(w["valid"] & fresh),
            tensor1.eq(w["tensor"]),
        ]
        with m.If(w["clear"]):
            m.d.sync += seen.eq(0)
        with m.Elif(w["valid"]):
            m.d.sync += seen.eq(seen | (1 << w["tensor"]))
        word_part, valid2, start2, tensor2 = self._word_part(m, word, valid1, start1, tensor1)
        register = Signal(32, name="crc_register", init=0xFFFFFFFF)
        source = Mux(start2, 0xFFFFFFFF, register)
        state_taps = crc32_taps(self.word_bits)[0]
        with m.If(valid2):
            m.d.sync += register.eq(Cat(*[_parity(source, state_taps[i]) for i in range(32)])
                                    ^ word_part)
        valid3 = Signal(name="crc_valid_3")
        tensor3 = Signal(range(self._n), name="crc_tensor_3")
        m.d.sync += [valid3.eq(valid2), tensor3.eq(tensor2)]
        self._results(m, valid3, tensor3, register ^ 0xFFFFFFFF)
        return m

    def _results(self, m, valid, tensor, value) -> None:
        """Each tensor's CRC, ``value`` after its latest write, in a memory of ``n_tensors``
        words (its write port takes ``value`` with ``valid``) read through ``read_addr``: the
        host asks for one CRC at a time, so one read port serves it, where a register per tensor
        and a choice among them took about 40 logic cells per tensor on the iCE40."""
        mem = m.submodules.results = Memory(shape=32, depth=self._n, init=[])
        wr, rd = mem.write_port(), mem.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(tensor), wr.data.eq(value), wr.en.eq(valid),
                     rd.addr.eq(self.read_addr), self.read_data.eq(rd.data)]

    def _input_register(self, m) -> dict:
        """The inputs, registered as they come (twice with ``register_ports``; ``clear`` with
        them, so that a write in the cycle of ``clear`` still counts after it), and the first
        valid write among them: chosen after each port's registers, or
        (``register_ports=False``) before one register for the chosen write. Every register
        takes the reset: Yosys' ECP5 flow (0.69) mapped this unit's registers without a reset
        into a multiply driven net or failed an assertion in ABC9."""
        regs = {name: getattr(self, name) for name in ("clear", "restart")}
        for stage in range(2 if self._register_ports else 1):
            for name, value in regs.items():
                regs[name] = Signal(name=f"crc_in_{name}{'_early' if stage == 0 else ''}")
                m.d.sync += regs[name].eq(value)
        ports = [(p.valid, p.mask, p.values) for p in map(self.port, range(self._n))]
        if self._register_ports:
            ports = [self._register(m, *port, f"_early_{t}") for t, port in enumerate(ports)]
            ports = [self._register(m, *port, f"_{t}") for t, port in enumerate(ports)]
        valid = Cat(*[v for v, _, _ in ports]).any()
        tensor = first([(v, t) for t, (v, _, _) in enumerate(ports)])
        mask = first([(v, mk) for v, mk, _ in ports])
        values = [first([(v, self._extend(vals[k], shape))
                         for (v, _, vals), shape in zip(ports, self._shapes)])
                  for k in range(self._lanes)]
        if not self._register_ports:
            chosen = Signal(range(self._n), name="crc_in_tensor")
            m.d.sync += chosen.eq(tensor)
            valid, mask, values = self._register(
                m, valid, mask, Cat(*values), "")
            tensor = chosen
            eb = self._element_bits
            values = [values[k * eb:(k + 1) * eb] for k in range(self._lanes)]
        regs.update(valid=valid, tensor=tensor, mask=mask, values=values)
        return regs

    @staticmethod
    def _register(m, valid, mask, values, suffix):
        """``valid``, ``mask`` and ``values`` registered."""
        r_valid = Signal(name=f"crc_in_valid{suffix}")
        r_mask = Signal.like(mask, name=f"crc_in_mask{suffix}")
        r_values = Signal.like(values, name=f"crc_in_values{suffix}")
        m.d.sync += [r_valid.eq(valid), r_mask.eq(mask), r_values.eq(values)]
        return r_valid, r_mask, r_values

    def _word_part(self, m, word, valid, start, tensor):
        """The word's share of the next CRC register, two pipeline stages: each lane's share from
        its own element (a 32 x ``element_bits`` matrix, placed by its lane), then the XOR of
        the lanes' shares. Only the 32 x 32 state matrix sits in the register's loop. Returns the
        share and ``valid``, ``start``, ``tensor`` delayed to match."""
        eb, data_taps = self._element_bits, crc32_taps(self.word_bits)[1]
        mask = (1 << eb) - 1
        shares = []
        for k in range(self._lanes):
            element = word[k * eb:(k + 1) * eb]
            share = Signal(32, name=f"crc_lane_share_{k}")
            m.d.sync += share.eq(Cat(*[_parity(element, data_taps[i] >> (k * eb) & mask)
                                       for i in range(32)]))
            shares.append(share)
        word_part = Signal(32, name="crc_word_part")
        m.d.sync += word_part.eq(Cat(*[Cat(*[sh[i] for sh in shares]).xor() for i in range(32)]))
        delayed = [valid, start, tensor]
        for stage in (1, 2):
            nxt = [Signal.like(v, name=f"crc_{n}_d{stage}")
                   for v, n in zip(delayed, ("valid", "start", "tensor"))]
            m.d.sync += [n.eq(v) for n, v in zip(nxt, delayed)]
            delayed = nxt
        return (word_part, *delayed)

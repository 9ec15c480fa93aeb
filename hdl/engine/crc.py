"""CRC-32 of every tensor the engine writes in a run, so that a host can check a training step by
reading a few words instead of every tensor back."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import crc, data, wiring
from amaranth.lib.wiring import In, Out

from .._util import check_int

__all__ = ["TensorCrc", "crc32_parameters"]


def crc32_parameters(data_width: int) -> crc.Parameters:
    """CRC-32/ISO-HDLC (zlib's ``crc32``) over words of ``data_width`` bits: with the input
    reflected, a word's bit 0 goes in first, so for whole bytes the CRC of a word sequence equals
    ``zlib.crc32`` of the words' little-endian bytes."""
    return crc.catalog.CRC32_ISO_HDLC(data_width)


class TensorCrc(wiring.Component):
    """One CRC-32 per tensor over the slices written to it since ``clear``.

    Every write (``valid``) of ``lanes`` values to tensor ``tensor`` adds one word to that
    tensor's CRC: lane ``k`` as ``element_bits`` bits of two's complement (sign- or
    zero-extended by its shape) if bit ``k`` of ``mask`` is set, else 0, lane 0 in the low bits.
    The first write to a tensor after ``clear`` starts its CRC afresh; a tensor not written keeps
    the CRC it had. Writes to one tensor must not interleave with writes to another (one
    :class:`~amaranth.lib.crc.Processor` serves them all, one tensor after the other).

    :attr:`LATENCY`: a write is reflected in ``crcs`` that many cycles later (a register before
    the processor, the processor, the result register).

    Members
    -------
    clear : ``In(1)``
        A run begins: the next write to each tensor starts its CRC.
    restart : ``In(1)``
        With ``valid``: this write starts its tensor's CRC afresh (a tensor written again later
        in the run, as the weights are by the fault pass).
    valid, tensor, values, mask : ``In``
        The write.
    crcs : ``Out(data.ArrayLayout(32, n_tensors))``
        The CRC of each tensor (``zlib.crc32`` of its words' bytes).
    """

    LATENCY = 3

    def __init__(self, lanes: int, element_bits: int, n_tensors: int):
        self._lanes = check_int("Number of lanes", lanes, 1)
        self._element_bits = check_int("Element width", element_bits, 1)
        self._n = check_int("Number of tensors", n_tensors, 1)
        super().__init__({
            "clear": In(1),
            "restart": In(1),
            "valid": In(1),
            "tensor": In(range(n_tensors)),
            "values": In(data.ArrayLayout(signed(element_bits), lanes)),
            "mask": In(lanes),
            "crcs": Out(data.ArrayLayout(32, n_tensors)),
        })

    @property
    def word_bits(self) -> int:
        return self._lanes * self._element_bits

    def elaborate(self, platform):
        m = Module()
        proc = m.submodules.processor = crc32_parameters(self.word_bits).create()
        seen = Signal(self._n, name="seen")
        word = Signal(self.word_bits, name="crc_word")
        valid1, start1 = Signal(name="crc_valid_1"), Signal(name="crc_start_1")
        tensor1 = Signal.like(self.tensor, name="crc_tensor_1")
        fresh = ~seen.bit_select(self.tensor, 1) | self.restart
        m.d.sync += [
            word.eq(Cat(*[Mux(self.mask[k], self.values[k], 0) for k in range(self._lanes)])),
            valid1.eq(self.valid),
            start1.eq(self.valid & fresh),
            tensor1.eq(self.tensor),
        ]
        with m.If(self.clear):
            m.d.sync += seen.eq(0)
        with m.Elif(self.valid):
            m.d.sync += seen.eq(seen | (1 << self.tensor))
        m.d.comb += [proc.start.eq(start1), proc.valid.eq(valid1), proc.data.eq(word)]
        valid2 = Signal(name="crc_valid_2")
        tensor2 = Signal.like(self.tensor, name="crc_tensor_2")
        m.d.sync += [valid2.eq(valid1), tensor2.eq(tensor1)]
        for t in range(self._n):
            with m.If(valid2 & (tensor2 == t)):
                m.d.sync += self.crcs[t].eq(proc.crc)
        return m


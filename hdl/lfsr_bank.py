"""A bank of leap-forward LFSRs: the random draws of the stochastic rounder.

The hardware twin of ``intrain.golden.lfsr`` (``generate`` for one lane, ``LfsrBank`` for many);
both are built from the same :class:`~intrain.lfsr_spec.LfsrSpec`.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from intrain.lfsr_spec import LfsrSpec

__all__ = ["LfsrBank"]


class LfsrBank(wiring.Component):
    """``lanes`` independent Fibonacci LFSRs that advance a whole draw per clock.

    Lane ``n`` holds a ``spec.width``-bit state, starting from ``seeds[n]``. Its word is the top
    ``spec.draw_bits`` bits of the state; taking a draw (a transfer on ``o``) replaces every
    state by its image under ``spec.leap_map`` (``draw_bits`` single steps at once: an XOR
    network, one XOR tree per state bit). All lanes draw together, so lane ``n`` produces
    ``generate(spec, seeds[n], count)`` word for word, however the draws are spaced in time.

    ``o.valid`` is always high: a word is presented at all times, and the state only advances in
    a cycle where ``o.ready`` is high. Latency: 0 cycles (the word of the current state is
    presented from the state registers; after a draw the next word is presented one clock later).

    Reseeding: a transfer on ``load`` (``load.ready`` is always high) sets every lane to its
    seed from ``load.payload``, and the first word of the new seed is presented after that clock
    edge. A draw taken in the same cycle returns the word of the old state. The all-zero state
    locks an LFSR up, so it can never be loaded: a lane whose loaded seed is 0 is set to its
    power-on seed ``seeds[n]`` instead (loading all zeros restarts every lane, like a reset).
    Since ``spec.width`` is one of the taps, one step is invertible and a non-zero state never
    reaches zero.

    Parameters
    ----------
    spec : LfsrSpec
        The generator: width, taps and bits per draw.
    seeds : sequence of int
        One power-on seed per lane, each from 1 to ``2 ** spec.width - 1``.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    o : ``Out(stream.Signature(data.ArrayLayout(unsigned(spec.draw_bits), lanes)))``
        The current word of every lane; a transfer is a draw.
    load : ``In(stream.Signature(data.ArrayLayout(unsigned(spec.width), lanes)))``
        New seeds for every lane.
    """

    def __init__(self, spec, seeds, *, src_loc_at=0):
        if not isinstance(spec, LfsrSpec):
            raise TypeError(f"LFSR specification must be an LfsrSpec, not {spec!r}")
        try:
            seeds = tuple(seeds)
        except TypeError:
            raise TypeError(f"Seeds must be a sequence of integers, not {seeds!r}") from None
        if not seeds:
            raise ValueError("Seeds must give at least one lane")
        for n, seed in enumerate(seeds):
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise TypeError(f"Seed of lane {n} must be an integer, not {seed!r}")
            if not 1 <= seed <= spec.mask:
                raise ValueError(
                    f"Seed of lane {n} must be from 1 to {spec.mask} (non-zero, {spec.width} "
                    f"bits), not {seed!r}")
        self._spec = spec
        self._seeds = seeds
        super().__init__({
            "o": Out(stream.Signature(data.ArrayLayout(unsigned(spec.draw_bits), len(seeds)))),
            "load": In(stream.Signature(data.ArrayLayout(unsigned(spec.width), len(seeds)))),
        }, src_loc_at=src_loc_at + 1)

    @classmethod
    def from_config(cls, config) -> LfsrBank:
        """The bank of a :class:`~intrain.config.Config`: its generator and lane seeds."""
        return cls(config.lfsr, config.rng_seeds, src_loc_at=1)

    @property
    def spec(self) -> LfsrSpec:
        return self._spec

    @property
    def seeds(self) -> tuple[int, ...]:
        return self._seeds

    @property
    def lanes(self) -> int:
        return len(self._seeds)

    @property
    def latency(self) -> int:
        """0: the word of a draw is presented, from the state registers, before the draw is
        taken; the word of the following draw appears one clock edge after it."""
        return 0

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        # Output bit i of the leap map is the XOR of the state bits j whose column has bit i set.
        rows = [[j for j, col in enumerate(spec.leap_map) if (col >> i) & 1]
                for i in range(spec.width)]

        m.d.comb += [self.o.valid.eq(1), self.load.ready.eq(1)]
        draw = Signal(name="draw")
        m.d.comb += draw.eq(self.o.ready)

        for n, seed in enumerate(self._seeds):
            state = Signal(unsigned(spec.width), init=seed, name=f"state_{n}")
            leaped = Signal(unsigned(spec.width), name=f"leaped_{n}")
            m.d.comb += [
                leaped.eq(Cat(*(Cat(*(state[j] for j in row)).xor() if row else Const(0, 1)
                                for row in rows))),
                self.o.payload[n].eq(state[spec.width - spec.draw_bits:]),
            ]
            seed_in = self.load.payload[n]
            with m.If(self.load.valid):
                m.d.sync += state.eq(Mux(seed_in == 0, seed, seed_in))
            with m.Elif(draw):
                m.d.sync += state.eq(leaped)
        return m

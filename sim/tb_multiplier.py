# amaranth: UnusedElaboratable=no
"""cocotb testbench of the DSP mappings of the systolic array: a generic array and one whose
products go through a vendor DSP primitive (``dsp``), side by side in one design
(:class:`ArrayPair`), simulated with the primitive's model (:mod:`intrain.sim.dsp_models`).

Both arrays get the same tiles, each through its own stream with its own random stalls (input
gaps and output back-pressure, so the array stalls); every output row of both, in order, must
equal the exact product of its tile (``intrain.golden.matmul.tile_matmul``), and so each other.
Without stalls, the mapped array takes the same beats in the same cycles and presents every row
``pipeline_cycles`` later than the generic one by exactly the difference of their pipelines. The
MACs counted (``mac_count``) agree.

Parameters (:func:`~intrain.sim.cocotb_helpers.test_parameters`): ``rows``, ``cols``, ``dsp``,
``a_width``/``a_signed``, ``b_width``/``b_signed``, ``acc_width``; ``tiles``: a list of ``K``
for random tiles; ``exhaustive``: add one ``K = 1`` tile per operand pair ``(x, y)`` of the whole
input space (for ``cols >= 2``, column ``c`` multiplies ``x`` by ``y`` shifted by
``c * 2 ** (b_width - 1)``, so each PE of the first row sees every pair); ``extremes``: add
tiles of the extreme operands (default); ``valid_prob``,
``ready_prob``: the stall rates; ``seed``.

The test module also runs, with ``engine`` parameters, training steps of an
:class:`~intrain.hdl.engine.Engine` built with a DSP mapping (see
:func:`engine_steps_match_golden`).
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from amaranth import Module, Shape
from amaranth.lib import wiring
from cocotb.triggers import ReadOnly, RisingEdge

from intrain.golden import matmul
from intrain.hdl import SystolicArray
from intrain.sim.cocotb_helpers import read_unsigned, reset, start_clock, test_parameters

__all__ = ["ArrayPair", "array_from_parameters"]


class ArrayPair(wiring.Component):
    """A generic :class:`SystolicArray` (ports ``g_i``, ``g_o``, ``g_mac_count``) and one with
    the products of ``dsp`` (``d_i``, ``d_o``, ``d_mac_count``), otherwise alike."""

    def __init__(self, rows, cols, dsp, **kwargs):
        self.generic = SystolicArray(rows, cols, **kwargs)
        self.mapped = SystolicArray(rows, cols, dsp=dsp, **kwargs)
        members = self.generic.signature.members
        super().__init__({
            "g_i": members["i"], "g_o": members["o"], "g_mac_count": members["mac_count"],
            "d_i": members["i"], "d_o": members["o"], "d_mac_count": members["mac_count"],
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.generic = self.generic
        m.submodules.mapped = self.mapped
        for prefix, array in (("g", self.generic), ("d", self.mapped)):
            wiring.connect(m, wiring.flipped(getattr(self, f"{prefix}_i")), array.i)
            wiring.connect(m, array.o, wiring.flipped(getattr(self, f"{prefix}_o")))
            m.d.comb += getattr(self, f"{prefix}_mac_count").eq(array.mac_count)
        return m


def _shape(width, signed):
    return Shape(int(width), bool(signed))


def array_from_parameters(params: dict, dsp: str | None = None) -> SystolicArray:
    """The array that the parameters describe (``dsp``: its mapping, default generic)."""
    return SystolicArray(params["rows"], params["cols"],
                         a_shape=_shape(params.get("a_width", 8), params.get("a_signed", True)),
                         b_shape=_shape(params.get("b_width", 8), params.get("b_signed", True)),
                         acc_width=params.get("acc_width", 32), dsp=dsp or "generic")


def _range(shape):
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def _tiles(params, array):
    """``(A, B)`` tiles: the exhaustive set (if asked), extremes, then random tiles."""
    rng = np.random.default_rng(params.get("seed", 0))
    rows, cols = array.rows, array.cols
    (alo, ahi), (blo, bhi) = _range(array.a_shape), _range(array.b_shape)
    tiles = []
    if params.get("exhaustive"):
        xs, ys = np.meshgrid(np.arange(alo, ahi + 1), np.arange(blo, bhi + 1), indexing="ij")
        span = bhi - blo + 1
        for x, y in zip(xs.ravel(), ys.ravel()):
            a = np.full((rows, 1), x)
            b = np.array([[blo + (y - blo + c * (span // 2)) % span for c in range(cols)]])
            tiles.append((a, b))
    for k in (3, 1) if params.get("extremes", True) else ():
        for va, vb in ((alo, blo), (alo, bhi), (ahi, bhi)):
            tiles.append((np.full((rows, k), va), np.full((k, cols), vb)))
    for k in params.get("tiles", []):
        tiles.append((rng.integers(alo, ahi + 1, (rows, k)), rng.integers(blo, bhi + 1, (k, cols))))
    return tiles


class _Side:
    """One array of the pair: its input beats, a driver and a monitor on its ports, every
    transfer's cycle recorded."""

    def __init__(self, dut, prefix, array, beats, valid_prob, ready_prob, rng):
        self.i_valid = getattr(dut, f"{prefix}_i__valid")
        self.i_ready = getattr(dut, f"{prefix}_i__ready")
        self.i_payload = getattr(dut, f"{prefix}_i__payload")
        self.o_valid = getattr(dut, f"{prefix}_o__valid")
        self.o_ready = getattr(dut, f"{prefix}_o__ready")
        self.o_payload = getattr(dut, f"{prefix}_o__payload")
        self.mac_count = getattr(dut, f"{prefix}_mac_count")
        self.beats = beats
        self.valid_prob, self.ready_prob, self.rng = valid_prob, ready_prob, rng
        self.next = 0
        self.accept_cycles, self.output_cycles, self.outputs = [], [], []
        self.macs = 0
        layout = array.o.payload.shape()
        self._row = layout["row"]
        self._values = layout["values"]
        self._last = layout["last"]
        self._acc = array.acc_width
        self._cols = array.cols
        self.i_valid.value = 0
        self.o_ready.value = 0

    def drive(self):
        """Right after a clock edge: offer the next beat (or not) and set ``ready``."""
        present = self.next < len(self.beats) and self.rng.random() < self.valid_prob
        if present:
            self.i_payload.value = self.beats[self.next]
        self.i_valid.value = int(present)
        self.o_ready.value = int(self.rng.random() < self.ready_prob)

    def sample(self, cycle):
        """In the read-only phase before the next edge: record the transfers."""
        if str(self.i_valid.value) == "1" and str(self.i_ready.value) == "1":
            self.accept_cycles.append(cycle)
            self.next += 1
        if str(self.o_valid.value) == "1" and str(self.o_ready.value) == "1":
            self.output_cycles.append(cycle)
            self.outputs.append(self._decode(read_unsigned(self.o_payload)))
        self.macs += read_unsigned(self.mac_count)

    def _decode(self, bits):
        row = (bits >> self._row.offset) & ((1 << Shape.cast(self._row.shape).width) - 1)
        base = self._values.offset
        values = []
        for c in range(self._cols):
            v = (bits >> (base + c * self._acc)) & ((1 << self._acc) - 1)
            values.append(v - (1 << self._acc) if v >> (self._acc - 1) else v)
        return row, values, (bits >> self._last.offset) & 1


def _encode(array, a_col, b_row, first, last):
    """The input payload bits of one beat."""
    layout = array.i.payload.shape()
    wa, wb = array.a_shape.width, array.b_shape.width
    bits = 0
    for r, v in enumerate(a_col):
        bits |= (int(v) & ((1 << wa) - 1)) << (layout["a"].offset + r * wa)
    for c, v in enumerate(b_row):
        bits |= (int(v) & ((1 << wb) - 1)) << (layout["b"].offset + c * wb)
    return bits | int(first) << layout["first"].offset | int(last) << layout["last"].offset


def _beats(array, tiles):
    beats = []
    for a, b in tiles:
        k = a.shape[1]
        for j in range(k):
            beats.append(_encode(array, a[:, j], b[j, :], j == 0, j == k - 1))
    return beats


def _check_rows(name, array, tiles, outputs):
    want_n = len(tiles) * array.rows
    if len(outputs) != want_n:
        raise AssertionError(f"{name}: {len(outputs)} output rows, expected {want_n}")
    for n, (a, b) in enumerate(tiles):
        want = matmul.tile_matmul(a, b, array.acc_width)
        for r in range(array.rows):
            row, values, last = outputs[n * array.rows + r]
            if (row, last) != (r, int(r == array.rows - 1)):
                raise AssertionError(f"{name}: tile {n} output {r} is row {row} (last={last})")
            expected = [int(v) for v in want[r]]
            if values != expected:
                c = next(i for i, (g, e) in enumerate(zip(values, expected)) if g != e)
                raise AssertionError(
                    f"{name}: tile {n} ({a.shape[1]} beats) row {r} column {c} is {values[c]}, "
                    f"expected {expected[c]} (A[{r}] = {a[r].tolist()[:8]}, "
                    f"B[:, {c}] = {b[:, c].tolist()[:8]})")


async def _run_pair(dut, params, valid_prob, ready_prob, seed):
    generic = array_from_parameters(params)
    mapped = array_from_parameters(params, params["dsp"])
    tiles = _tiles(params, generic)
    beats = _beats(generic, tiles)
    start_clock(dut)
    rng = random.Random(seed)
    sides = [_Side(dut, "g", generic, beats, valid_prob, ready_prob, random.Random(seed)),
             _Side(dut, "d", mapped, beats, valid_prob, ready_prob, rng)]
    await reset(dut)
    n_out = len(tiles) * generic.rows
    limit = int(len(beats) / (valid_prob * ready_prob) ** 2) + 100 * (generic.rows + 10) \
        + 4 * n_out
    cycle = 0
    while any(len(s.outputs) < n_out for s in sides) and cycle < limit:
        for s in sides:
            s.drive()
        await ReadOnly()
        for s in sides:
            s.sample(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
    for s in sides:
        s.i_valid.value = 0
        s.o_ready.value = 1
    for _ in range(mapped.latency + mapped.rows + 5):  # nothing more comes out
        await ReadOnly()
        for s in sides:
            s.sample(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
    _check_rows("generic array", generic, tiles, sides[0].outputs)
    _check_rows(f"{params['dsp']} array", mapped, tiles, sides[1].outputs)
    k_total = sum(a.shape[1] for a, _ in tiles)
    for s, name in zip(sides, ("generic", params["dsp"])):
        if s.macs != k_total * generic.macs:
            raise AssertionError(f"{name} array counted {s.macs} MACs, expected "
                                 f"{k_total * generic.macs}")
    return generic, mapped, sides


@cocotb.test()
async def products_match_generic(dut):
    """Random tiles (and the exhaustive set, if asked) under random stalls: every row of both
    arrays equals the exact product, in order."""
    params = test_parameters()
    _, _, sides = await _run_pair(dut, params, params.get("valid_prob", 0.8),
                                  params.get("ready_prob", 0.6), params.get("seed", 0))
    dut._log.info("%d rows equal in %d cycles", len(sides[1].outputs),
                  sides[1].output_cycles[-1])


@cocotb.test()
async def timing_follows_the_pipeline(dut):
    """Without stalls: the same beats accepted in the same cycles; every row of the mapped array
    comes out exactly ``pipeline_cycles`` difference later; the stated latency holds."""
    params = dict(test_parameters())
    k = max(params["rows"], params["cols"]) + 2
    params.update(tiles=[k] * 6, exhaustive=False, extremes=False)
    generic, mapped, (g, d) = await _run_pair(dut, params, 1.0, 1.0, 1)
    if g.accept_cycles != d.accept_cycles:
        raise AssertionError(f"accept cycles differ: {g.accept_cycles} vs {d.accept_cycles}")
    shift = mapped.pipeline_cycles - generic.pipeline_cycles
    if d.output_cycles != [c + shift for c in g.output_cycles]:
        raise AssertionError(f"output cycles of the {params['dsp']} array "
                             f"{d.output_cycles[:8]}... are not those of the generic array "
                             f"{g.output_cycles[:8]}... plus {shift}")
    # Tiles back to back, K >= rows and cols: one beat per cycle, row 0 ``latency`` cycles after
    # the beat with ``last``.
    lasts = np.cumsum([a.shape[1] for a, _ in _tiles(params, generic)]) - 1
    if g.accept_cycles != list(range(len(g.accept_cycles))):
        raise AssertionError(f"the input stalled: beats accepted in cycles {g.accept_cycles}")
    for side, array in ((g, generic), (d, mapped)):
        for n in range(len(lasts)):
            first = side.output_cycles[n * array.rows]
            if first - side.accept_cycles[lasts[n]] != array.latency:
                raise AssertionError(f"tile {n}: row 0 {first - side.accept_cycles[lasts[n]]} "
                                     f"cycles after its last beat, not {array.latency}")


@cocotb.test()
async def engine_steps_match_golden(dut):
    """(Engine designs only.) Training steps and a forward pass of an Engine built with a DSP
    mapping: every weight, error, output and prediction equals the golden model's after every
    step, and the ``cycles`` and ``mac_cycles`` counters equal the engine's own predictions
    (:meth:`Engine.train_cycles`, :meth:`Engine.forward_cycles`)."""
    params = test_parameters()
    if "engine" not in params:
        return
    from intrain.config import Config
    from intrain.hdl.engine import Engine
    from intrain.sim.engine_host import CocotbTransport, EngineHost
    from intrain.sim.tb_engine import RtlTrainer

    spec = params["engine"]
    config = Config.from_dict(spec["config"])
    engine = Engine(config, dsp=spec["dsp"])
    start_clock(dut)
    await reset(dut)
    host = EngineHost(engine, CocotbTransport(dut, crcs=len(engine.geometry.crc_tensors)))
    trainer = RtlTrainer(host, config)
    await trainer.load()
    rng = np.random.default_rng(spec.get("seed", 0))
    lo, hi = -(1 << (config.input_bits - 1)), (1 << (config.input_bits - 1)) - 1
    batch = config.batch_size
    for step in range(1, spec["steps"] + 1):
        a0 = rng.integers(lo, hi + 1, (batch, config.layers[0]))
        labels = rng.integers(0, config.layers[-1], batch)
        await trainer._train_step(a0, labels, int(spec.get("lam", 0)))
        want = {"cycles": step * engine.train_cycles(batch),
                "mac_cycles": step * engine.train_macs(batch)}
        got = {k: trainer.counters[k] for k in want}
        if got != want:
            raise AssertionError(f"step {step}: counters {got}, the engine predicts {want}")
    counters = await host.run(batch, train=False)
    if (counters["cycles"], counters["mac_cycles"]) != (engine.forward_cycles(batch),
                                                        engine.forward_macs(batch)):
        raise AssertionError(f"forward pass: {counters['cycles']} cycles and "
                             f"{counters['mac_cycles']} MAC cycles, the engine predicts "
                             f"{engine.forward_cycles(batch)} and {engine.forward_macs(batch)}")
    dut._log.info("%d steps of a %s engine bit-exact, counters as predicted", spec["steps"],
                  spec["dsp"])

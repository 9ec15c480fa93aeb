"""cocotb testbenches of the six hardware blocks, each checked against its golden twin.

``tests/test_blocks_cocotb.py`` runs this module with :func:`intrain.sim.runner.run_cocotb` on
the exported Verilog of one block. The run's parameters (:func:`test_parameters`) name the block
and how it was built (``block`` and ``args``: :func:`build` makes the same component again, for
its port layouts and properties) and say how much to check:

``seed``
    Seeds the NumPy generator of the inputs and the Python one of the stalls.
``exhaustive``
    ``True``: check every case of the block's small input space first (see each bench);
    an integer: a random sample of that many of those cases; ``False`` or 0: none.
``random``
    Random cases of ``stream_matches_twin``.
``stall``
    Probability of an idle cycle on each side in ``stream_matches_twin`` (few stalls: Python
    runs once per clock, so the big runs keep it low).
``backpressure``, ``backpressure_stall``
    Cases and stall probability of ``stream_under_backpressure``.
``model``
    ``"twin"``, or a deliberately wrong model (``"half_up"`` for the shift quantizer) that a
    test uses to show that a difference fails the run.
``draws``, ``twin_seeds`` (LFSR bank)
    Draws per lane of ``lfsr_words_match_twin``, and the seeds of the twin if not the block's.
``lfsr``, ``rng_seeds``, ``trials``, ``values``, ``bias`` (stochastic rounder)
    The generator of the draws of ``rounding_is_unbiased``, its trials per ``(g, shift)`` of
    ``values``, and an error added to the expected means (0 but in a test of the test).

A bench is a driver, a monitor, a reference model (the golden NumPy functions) and an in-order
checker. Every input is made up front with the seeded generator and every expected output
computed at once; one coroutine then drives the input and takes the output each clock (both
sides in one loop, values read and written as integers into a preallocated list), and the
outputs are compared with the expected ones in bulk. A mismatch names the case, its input, the
expected and the actual output. After a run the bench checks that every input was taken and
that nothing more comes out.
"""

from __future__ import annotations

import math
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from intrain.golden import arith
from intrain.golden.lfsr import LfsrBank as TwinLfsrBank
from intrain.golden.lfsr import generate
from intrain.lfsr_spec import LfsrSpec
from intrain.sim.cocotb_helpers import reset, start_clock, test_parameters

__all__ = ["BLOCK_NAMES", "build", "block_args"]

#: The blocks :func:`build` knows.
BLOCK_NAMES = ("shift_quantizer", "log2_round", "max_abs", "lfsr_bank", "stochastic_rounder",
               "weight_updater")

_SHOWN = 5  # mismatches quoted in a failure message


# ------------------------------------------------------------------------------------------------
# Blocks from JSON parameters

def build(block: str, args: dict):
    """The component of ``block`` (a name of :data:`BLOCK_NAMES`) built from ``args``, the
    constructor's keyword arguments as JSON gives them (:func:`block_args` makes them)."""
    from intrain import hdl

    if block == "lfsr_bank":
        spec = LfsrSpec(args["width"], tuple(args["taps"]), args["draw_bits"])
        return hdl.LfsrBank(spec, args["seeds"])
    classes = {
        "shift_quantizer": hdl.ShiftQuantizer,
        "log2_round": hdl.Log2Round,
        "max_abs": hdl.MaxAbs,
        "stochastic_rounder": hdl.StochasticRounder,
        "weight_updater": hdl.WeightUpdater,
    }
    if block not in classes:
        raise ValueError(f"Unknown block {block!r}; known blocks: {', '.join(BLOCK_NAMES)}")
    return classes[block](**args)


def block_args(component) -> tuple[str, dict]:
    """``(block, args)`` such that ``build(block, args)`` makes the same component."""
    from intrain import hdl

    c = component
    if isinstance(c, hdl.ShiftQuantizer):
        args = {"in_width": c.in_width, "out_bits": c.out_bits, "relu": c.relu,
                "clip_mask": c.clip_mask}
        if c.const_shift is not None:
            args["shift"] = c.const_shift
        else:
            args.update(min_shift=c.min_shift, max_shift=c.max_shift)
        return "shift_quantizer", args
    if isinstance(c, hdl.Log2Round):
        return "log2_round", {"width": c.width}
    if isinstance(c, hdl.MaxAbs):
        return "max_abs", {"width": c.width}
    if isinstance(c, hdl.LfsrBank):
        return "lfsr_bank", {"width": c.spec.width, "taps": list(c.spec.taps),
                             "draw_bits": c.spec.draw_bits, "seeds": list(c.seeds)}
    if isinstance(c, hdl.StochasticRounder):
        return "stochastic_rounder", {"g_width": c.g_width, "draw_bits": c.draw_bits,
                                      "max_shift": c.max_shift, "min_shift": c.min_shift}
    if isinstance(c, hdl.WeightUpdater):
        return "weight_updater", {"w_max": c.w_max, "t_shift": c.t_shift, "t_max": c.t_max,
                                  "dw_width": c.dw_width}
    raise TypeError(f"Not a block of intrain.hdl: {component!r}")


# ------------------------------------------------------------------------------------------------
# Payload bits

def _shape(shape):
    from amaranth.hdl import Shape
    from amaranth.lib import data

    return shape if isinstance(shape, data.Layout) else Shape.cast(shape)


class Fields:
    """The fields of a port's flat bit vector, first field in the low bits: ``(key, offset,
    width, signed)`` each. A plain shape is one field called ``name``; an array's fields are
    called by their index."""

    def __init__(self, shape, name: str):
        from amaranth.hdl import Shape
        from amaranth.lib import data

        shape = _shape(shape)
        if isinstance(shape, data.Layout):
            self.fields = [(key, f.offset, f.width, Shape.cast(f.shape).signed)
                           for key, f in shape]
            self.width = shape.size
        else:
            self.fields = [(name, 0, shape.width, shape.signed)]
            self.width = shape.width
        for key, _, width, _ in self.fields:
            if width > 63:
                raise ValueError(f"Field {key!r} is {width} bits wide; at most 63 supported")

    @property
    def keys(self) -> list:
        return [key for key, *_ in self.fields]

    def encode(self, values: dict) -> list[int]:
        """The bit vectors of many elements: ``values[key]`` an integer array per field (each
        value must fit its field)."""
        n = len(np.asarray(values[self.fields[0][0]]))
        if self.width > 64:
            return [sum((int(values[key][k]) & ((1 << w) - 1)) << off
                        for key, off, w, _ in self.fields) for k in range(n)]
        acc = np.zeros(n, dtype=np.uint64)
        for key, off, w, signed in self.fields:
            v = np.asarray(values[key], dtype=np.int64)
            lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
            bad = np.flatnonzero((v < lo) | (v > hi))
            if bad.size:
                raise ValueError(f"Field {key!r} value {v[bad[0]]} at {bad[0]} does not fit "
                                 f"{'signed' if signed else 'unsigned'}({w})")
            acc |= (v.astype(np.uint64) & np.uint64((1 << w) - 1)) << np.uint64(off)
        return acc.tolist()

    def decode(self, raw: list[int]) -> dict:
        """The field values (int64 arrays) of many bit vectors."""
        nwords = max(1, -(-self.width // 64))
        if nwords == 1:
            words = np.array(raw, dtype=np.uint64).reshape(-1, 1)
        else:
            nbytes = 8 * nwords
            words = np.frombuffer(b"".join(x.to_bytes(nbytes, "little") for x in raw),
                                  dtype="<u8").reshape(-1, nwords)
        out = {}
        for key, off, w, signed in self.fields:
            q, r = divmod(off, 64)
            v = words[:, q] >> np.uint64(r)
            if r + w > 64:
                v = v | (words[:, q + 1] << np.uint64(64 - r))
            v = (v & np.uint64((1 << w) - 1)).astype(np.int64)
            if signed:
                v = np.where((v >> (w - 1)) & 1 == 1, v - (1 << w), v)
            out[key] = v
        return out


def _fmt(values: dict, k: int) -> str:
    return ", ".join(f"{key}={int(values[key][k])}" for key in values)


# ------------------------------------------------------------------------------------------------
# Random operands

def _signed_mix(rng, width: int, n: int) -> np.ndarray:
    """``n`` signed ``width``-bit values: a quarter uniform over the range, half with a
    log-uniform magnitude (every bit length equally likely), the rest the extremes and the
    values next to 0."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    kind = rng.integers(0, 4, n)
    uniform = rng.integers(lo, hi, n, endpoint=True)
    bits = rng.integers(0, width, n)
    mag = rng.integers(0, 1 << 62, n) >> (62 - bits)
    logu = np.where(rng.integers(0, 2, n) == 1, -mag, mag)
    edges = np.array(sorted(v for v in {lo, lo + 1, hi, hi - 1, -2, -1, 0, 1, 2} if lo <= v <= hi))
    edge = rng.choice(edges, n)
    return np.where(kind == 0, uniform, np.where(kind == 3, edge, logu)).astype(np.int64)


def _unsigned_mix(rng, width: int, n: int) -> np.ndarray:
    """``n`` unsigned ``width``-bit values: a quarter uniform, half log-uniform, the rest the
    extremes and the smallest values."""
    hi = (1 << width) - 1
    kind = rng.integers(0, 4, n)
    uniform = rng.integers(0, hi, n, endpoint=True)
    bits = rng.integers(0, width + 1, n)
    logu = rng.integers(0, 1 << 62, n) >> (62 - bits)
    edge = rng.choice(np.array(sorted(v for v in {0, 1, 2, 3, hi - 1, hi} if 0 <= v <= hi)), n)
    return np.where(kind == 0, uniform, np.where(kind == 3, edge, logu)).astype(np.int64)


def _sample(rng, cases: dict, count) -> dict:
    """All of ``cases`` (``count`` True), none (False or 0) or a random sample of ``count``."""
    n = len(next(iter(cases.values())))
    if count is True or (not isinstance(count, bool) and count >= n):
        return cases
    if not count:
        return {key: v[:0] for key, v in cases.items()}
    pick = np.sort(rng.choice(n, int(count), replace=False))
    return {key: v[pick] for key, v in cases.items()}


def _concat(*parts: dict) -> dict:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _grid(**axes) -> dict:
    """Every combination of the values of ``axes`` (the last varies fastest)."""
    grids = np.meshgrid(*(np.asarray(v, dtype=np.int64) for v in axes.values()), indexing="ij")
    return {key: g.ravel() for key, g in zip(axes, grids)}


# ------------------------------------------------------------------------------------------------
# Stream benches

class StreamBench:
    """Driver, monitor, model and checker of a block with an input stream ``i``, an output
    stream ``o`` and, for some, a ``shift`` port that applies to the element being accepted.

    A subclass gives the cases (:meth:`exhaustive_cases`, :meth:`random_cases`: a dict of
    integer arrays, one per input field and ``"shift"``), the model (:meth:`expect`: a dict of
    arrays, one per output field) and, if an output is not one per input, :meth:`describe` and
    :meth:`anchors`.
    """

    in_name = "x"   # the name of a plain input payload
    out_name = "y"  # the name of a plain output payload

    def __init__(self, dut, component, params: dict):
        self.dut = dut
        self.component = component
        self.params = params
        self.model = params.get("model", "twin")
        self.i_fields = Fields(component.i.payload.shape(), self.in_name)
        self.o_fields = Fields(component.o.payload.shape(), self.out_name)
        self.shift_range = None
        if hasattr(component, "shift") and not isinstance(component.shift, int):
            self.shift_range = (component.min_shift, component.max_shift)
            self.shift_width = len(dut.shift)
        self.rng = np.random.default_rng(params.get("seed", 0))
        self.stall_rng = random.Random(params.get("seed", 0))
        self.log = dut._log

    # -- cases and model (subclasses) -------------------------------------------------------------
    def exhaustive_cases(self) -> dict | None:
        return None

    def random_cases(self, count: int) -> dict:
        raise NotImplementedError

    def expect(self, cases: dict) -> dict:
        raise NotImplementedError

    def describe(self, cases: dict, k: int) -> str:
        """The input that output ``k`` comes from."""
        return _fmt(cases, k)

    def anchors(self, cases: dict) -> np.ndarray:
        """For every output, the input whose acceptance its latency counts from."""
        return np.arange(len(next(iter(cases.values()))))

    def shifts(self, n: int) -> np.ndarray:
        lo, hi = self.shift_range
        return self.rng.integers(lo, hi, n, endpoint=True)

    # -- running ----------------------------------------------------------------------------------
    async def setup(self) -> None:
        dut = self.dut
        start_clock(dut)
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        if self.shift_range is not None:
            dut.shift.value = self.shift_range[0] & ((1 << self.shift_width) - 1)
        await reset(dut)

    async def stream(self, payloads: list[int], shifts: list[int] | None, n_out: int,
                     stall: float, timing: bool = False):
        """Send ``payloads`` (and ``shifts`` with them) and take ``n_out`` outputs, each side
        idle with probability ``stall`` in a cycle.

        Returns the raw outputs taken (fewer than ``n_out`` after a timeout), what went wrong
        with the stream itself (a timeout, inputs left over, extra outputs: a list of messages)
        and, with ``timing``, the cycles at which every input was accepted and every output
        taken."""
        dut = self.dut
        i_payload, i_valid, i_ready = dut.i__payload, dut.i__valid, dut.i__ready
        o_payload, o_valid, o_ready = dut.o__payload, dut.o__valid, dut.o__ready
        shift = dut.shift if shifts is not None else None
        rand = self.stall_rng.random
        edge, settled = RisingEdge(dut.clk), ReadOnly()
        n_in = len(payloads)
        out = [0] * n_out
        in_cycles, out_cycles = [], []
        sent = got = cycle = 0
        presenting = valid_on = False
        ready_on = 0
        limit = int((n_in + n_out) / max(1e-3, 1 - stall) ** 2) + 200 + 20 * self.component.latency
        problems = []
        while got < n_out:
            await edge
            cycle += 1
            if cycle > limit:
                problems.append(f"timed out: {sent} of {n_in} inputs accepted and {got} of "
                                f"{n_out} outputs taken after {limit} cycles")
                break
            if not presenting:
                if sent < n_in and (not stall or rand() >= stall):
                    i_payload.value = payloads[sent]
                    if shift is not None:
                        shift.value = shifts[sent]
                    presenting = True
                    if not valid_on:
                        i_valid.value = valid_on = 1
                elif valid_on:
                    i_valid.value = valid_on = 0
            want = 1 if not stall or rand() >= stall else 0
            if want != ready_on:
                o_ready.value = ready_on = want
            await settled
            if presenting and i_ready.value:
                presenting = False
                sent += 1
                if timing:
                    in_cycles.append(cycle)
            if ready_on and o_valid.value:
                out[got] = o_payload.value.to_unsigned()
                got += 1
                if timing:
                    out_cycles.append(cycle)
        # Nothing more may come out: drain the pipeline with the input idle.
        await edge
        i_valid.value = 0
        o_ready.value = 1
        extra = []
        for _ in range(self.component.latency + 8):
            await settled
            if o_valid.value:
                extra.append(o_payload.value.to_unsigned())
            await edge
        if not problems and sent != n_in:
            problems.append(f"all {n_out} outputs came out but only {sent} of {n_in} inputs "
                            "were accepted")
        if extra:
            first = {key: int(v[0]) for key, v in self.o_fields.decode(extra[:1]).items()}
            problems.append(f"{len(extra)} outputs came out beyond the {n_out} expected; the "
                            f"first: {first}")
        return out[:got], problems, (np.array(in_cycles), np.array(out_cycles))

    async def check(self, cases: dict, *, stall: float, label: str, timing: bool = False,
                    exhaustive: int = 0) -> dict:
        """Drive ``cases``, compare every output with the model and return the outputs (a dict
        of arrays, one per field). The first ``exhaustive`` cases are the exhaustive ones (for
        the messages). With ``timing``, :attr:`cycles` holds the cycle numbers of
        :meth:`stream`."""
        n = len(next(iter(cases.values())))
        expected = self.expect(cases)
        n_out = len(next(iter(expected.values())))
        n_exhaustive_out = len(self.anchors({k: v[:exhaustive] for k, v in cases.items()}))
        payloads = self.i_fields.encode({key: cases[key] for key in self.i_fields.keys})
        shifts = None
        if self.shift_range is not None:
            shifts = (cases["shift"] & ((1 << self.shift_width) - 1)).tolist()
        start = time.perf_counter()
        raw, problems, self.cycles = await self.stream(payloads, shifts, n_out, stall, timing)
        elapsed = time.perf_counter() - start
        got = self.o_fields.decode(raw)
        # The values first (also those that came out before a timeout), then the stream.
        wrong = np.zeros(len(raw), dtype=bool)
        for key in expected:
            wrong |= got[key] != expected[key][:len(raw)]
        bad = np.flatnonzero(wrong)
        if bad.size:
            lines = []
            for k in bad[:_SHOWN]:
                kind = (f"exhaustive case {k}" if k < n_exhaustive_out
                        else f"random case {k - n_exhaustive_out}")
                lines.append(f"  {kind}: input {self.describe(cases, k)}: expected "
                             f"{_fmt(expected, k)}, got {_fmt(got, k)}")
            raise AssertionError(
                f"{bad.size} of {n_out} outputs differ from the twin ({self.model}); first "
                f"{min(bad.size, _SHOWN)}:\n" + "\n".join(lines + [f"  {p}" for p in problems]))
        if problems:
            raise AssertionError("; ".join(problems) + f" (the {len(raw)} outputs taken equal "
                                 "the twin)")
        self.log.info("%s: %d cases (%d exhaustive, %d random), %d outputs, all equal the twin; "
                      "%.1f s, %.0f cases/s", label, n, exhaustive, n - exhaustive, n_out,
                      elapsed, n / max(elapsed, 1e-9))
        return got

    # -- the tests --------------------------------------------------------------------------------
    async def matches_twin(self) -> None:
        p = self.params
        parts, n_exhaustive = [], 0
        exhaustive = p.get("exhaustive", False)
        if exhaustive:
            every = self.exhaustive_cases()
            if every is None:
                raise AssertionError(f"{type(self).__name__} has no exhaustive cases")
            every = _sample(self.rng, every, exhaustive)
            n_exhaustive = len(next(iter(every.values())))
            parts.append(every)
        if p.get("random", 0):
            parts.append(self.random_cases(p["random"]))
        if not parts:
            raise AssertionError("no cases asked for: give 'exhaustive' or 'random'")
        await self.setup()
        await self.check(_concat(*parts) if len(parts) > 1 else parts[0],
                         stall=p.get("stall", 0.0), label="stream_matches_twin",
                         exhaustive=n_exhaustive)

    async def under_backpressure(self) -> None:
        p = self.params
        await self.setup()
        await self.check(self.random_cases(p.get("backpressure", 2000)),
                         stall=p.get("backpressure_stall", 0.5), label="stream_under_backpressure")

    async def one_element_per_cycle(self) -> None:
        cases = self.random_cases(self.params.get("full_rate", 200))
        await self.setup()
        await self.check(cases, stall=0.0, timing=True, label="stream_one_element_per_cycle")
        in_cycles, out_cycles = self.cycles
        n = len(in_cycles)
        if not np.array_equal(in_cycles, in_cycles[0] + np.arange(n)):
            gap = int(np.flatnonzero(np.diff(in_cycles) != 1)[0])
            raise AssertionError(f"without stalls the input paused after element {gap} (cycles "
                                 f"{in_cycles[gap]} and {in_cycles[gap + 1]})")
        # The latency counts the clock edges from the input's transfer to the output's (the
        # project's convention, as in the Amaranth tests of the blocks).
        latency = out_cycles - in_cycles[self.anchors(cases)]
        bad = np.flatnonzero(latency != self.component.latency)
        if bad.size:
            k = int(bad[0])
            raise AssertionError(f"output {k} was taken {latency[k]} clock edges after its "
                                 f"input, not after the stated latency {self.component.latency}")


class ShiftQuantizerBench(StreamBench):
    """``saturate(round_shift(h, s), limit)`` with ``h = max(x, 0)`` under ``relu``, and the clip
    mask: :func:`~intrain.golden.arith.round_shift`, ``saturate`` and ``qa``.

    Exhaustive: every input at every shift of the range."""

    def _shift_axis(self):
        c = self.component
        return [c.const_shift] if c.const_shift is not None else range(c.min_shift,
                                                                        c.max_shift + 1)

    def exhaustive_cases(self):
        w = self.component.in_width
        return _grid(shift=self._shift_axis(), x=range(-(1 << (w - 1)), 1 << (w - 1)))

    def random_cases(self, count):
        c = self.component
        x = _signed_mix(self.rng, c.in_width, count)
        s = (np.full(count, c.const_shift) if c.const_shift is not None
             else self.shifts(count))
        # An eighth of the cases are ties, (2k + 1) * 2 ** (s - 1), where they fit.
        room = np.left_shift(1, np.clip(c.in_width - 1 - s, 0, 62))
        k = (self.rng.random(count) * 2 * room).astype(np.int64) - room
        tie = (2 * k + 1) << np.maximum(s - 1, 0)
        lo, hi = -(1 << (c.in_width - 1)), (1 << (c.in_width - 1)) - 1
        use = (self.rng.integers(0, 8, count) == 0) & (s > 0) & (tie >= lo) & (tie <= hi)
        return {"x": np.where(use, tie, x), "shift": s}

    def expect(self, cases):
        c = self.component
        x, s = cases["x"], cases["shift"]
        value = np.empty_like(x)
        mask = np.empty_like(x)
        for shift in np.unique(s):
            at = s == shift
            shift = int(shift)
            h = np.maximum(x[at], 0) if c.relu else x[at]
            if self.model == "half_up" and shift > 0:
                rounded = (h + (1 << (shift - 1))) >> shift  # ties away from -inf: wrong
            else:
                rounded = arith.round_shift(h, shift)
            value[at] = arith.saturate(rounded, c.limit)
            mask[at] = arith.qa(x[at], shift, c.limit)[1]
        out = {"value": value}
        if c.clip_mask:
            out["mask"] = mask
        return out


class Log2RoundBench(StreamBench):
    """``rl2(m)``, and 0 for ``m = 0`` (as the block documents).

    Exhaustive: every input of up to 16 bits (every input of a block at most 16 bits wide)."""

    in_name = "m"
    out_name = "rl2"

    def exhaustive_cases(self):
        return {"m": np.arange(1 << min(self.component.width, 16), dtype=np.int64)}

    def random_cases(self, count):
        w = self.component.width
        m = _unsigned_mix(self.rng, w, count)
        # A quarter of the cases next to a rounding threshold ceil(2 ** (p + 0.5)).
        p = self.rng.integers(0, w, count)
        t = np.array([math.isqrt((1 << (2 * q + 1)) - 1) + 1 for q in range(w)], dtype=np.int64)
        near = t[p] + self.rng.integers(-1, 2, count)
        use = (self.rng.integers(0, 4, count) == 0) & (near < (1 << w))
        return {"m": np.where(use, near, m)}

    def expect(self, cases):
        return {"rl2": np.array([arith.rl2(m) if m else 0 for m in cases["m"].tolist()],
                                dtype=np.int64)}


class MaxAbsBench(StreamBench):
    """``max_abs`` of every tensor (a run of elements closed by ``last``).

    Exhaustive: every one-element tensor, then every two-element tensor."""

    out_name = "max_abs"

    def _tensors(self, values, lengths):
        last = np.zeros(len(values), dtype=np.int64)
        last[np.cumsum(lengths) - 1] = 1
        return {"value": np.asarray(values, dtype=np.int64), "last": last}

    def exhaustive_cases(self):
        w = self.component.width
        v = np.arange(-(1 << (w - 1)), 1 << (w - 1), dtype=np.int64)
        pairs = _grid(a=v, b=v)
        values = np.concatenate([v, np.stack([pairs["a"], pairs["b"]], axis=1).ravel()])
        return self._tensors(values, np.concatenate([np.ones(len(v), np.int64),
                                                     np.full(len(pairs["a"]), 2)]))

    def random_cases(self, count):
        w = self.component.width
        lengths = []
        total = 0
        while total < count:
            kind = self.rng.integers(0, 4)
            n = (1 if kind == 0 else int(self.rng.integers(2, 9)) if kind == 1
                 else int(self.rng.integers(9, 200)))
            n = min(n, count - total)
            lengths.append(n)
            total += n
        lengths = np.array(lengths, dtype=np.int64)
        values = _signed_mix(self.rng, w, count)
        # Some tensors all of one magnitude scale (so the maximum is not always an extreme),
        # some all zero.
        starts = np.cumsum(lengths) - lengths
        for t in range(len(lengths)):
            kind = self.rng.integers(0, 6)
            sl = slice(starts[t], starts[t] + lengths[t])
            if kind == 0:
                values[sl] = 0
            elif kind <= 2:
                bits = int(self.rng.integers(1, w))
                values[sl] = self.rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), lengths[t])
        return self._tensors(values, lengths)

    def _bounds(self, cases):
        ends = np.flatnonzero(cases["last"]) + 1
        return np.concatenate([[0], ends[:-1]]), ends

    def expect(self, cases):
        starts, ends = self._bounds(cases)
        v = cases["value"]
        return {"max_abs": np.array([arith.max_abs(v[a:b]) for a, b in zip(starts, ends)],
                                    dtype=np.int64)}

    def describe(self, cases, k):
        starts, ends = self._bounds(cases)
        a, b = int(starts[k]), int(ends[k])
        shown = cases["value"][a:min(b, a + 12)].tolist()
        more = f", ... ({b - a} elements)" if b - a > 12 else ""
        return f"tensor {k} = elements {a}..{b - 1}: {shown}{more}"

    def anchors(self, cases):
        return np.flatnonzero(cases["last"])


class StochasticRounderBench(StreamBench):
    """``stochastic_round(g, shift, u, draw_bits)``.

    Exhaustive: every ``g`` at every shift with every draw when there are at most 16 draws,
    else with the draws 0, the largest, the fraction (the tie: not rounded up), one either side
    of it, and two at random."""

    out_name = "dw"

    def frac(self, g, s):
        """The compared fraction, from the block's definition (truncated to ``draw_bits``)."""
        d = self.component.draw_bits
        mag = np.abs(g)
        out = np.zeros_like(g)
        for shift in np.unique(s):
            at = s == shift
            shift = int(shift)
            if shift > 0:
                rem = mag[at] & ((1 << shift) - 1)
                out[at] = (rem << d) >> shift if shift <= d else rem >> (shift - d)
        return out

    def _draws_around(self, g, s, uniform):
        umax = (1 << self.component.draw_bits) - 1
        f = self.frac(g, s)
        pick = self.rng.integers(0, 6, len(g))
        u = np.where(pick == 0, f, np.where(pick == 1, f - 1, np.where(pick == 2, f + 1, uniform)))
        return np.clip(u, 0, umax)

    def exhaustive_cases(self):
        c = self.component
        gs = range(-(1 << (c.g_width - 1)), 1 << (c.g_width - 1))
        shifts = range(c.min_shift, c.max_shift + 1)
        umax = (1 << c.draw_bits) - 1
        if c.draw_bits <= 4:
            return _grid(shift=shifts, g=gs, u=range(umax + 1))
        base = _grid(shift=shifts, g=gs)
        g, s = base["g"], base["shift"]
        f = self.frac(g, s)
        draws = [np.zeros_like(g), np.full_like(g, umax), f, np.maximum(f - 1, 0),
                 np.minimum(f + 1, umax), self.rng.integers(0, umax, len(g), endpoint=True),
                 self.rng.integers(0, umax, len(g), endpoint=True)]
        return {"g": np.tile(g, len(draws)), "shift": np.tile(s, len(draws)),
                "u": np.concatenate(draws)}

    def random_cases(self, count):
        c = self.component
        g = _signed_mix(self.rng, c.g_width, count)
        s = self.shifts(count)
        uniform = self.rng.integers(0, (1 << c.draw_bits) - 1, count, endpoint=True)
        return {"g": g, "u": self._draws_around(g, s, uniform), "shift": s}

    def expect(self, cases):
        d = self.component.draw_bits
        g, s, u = cases["g"], cases["shift"], cases["u"]
        out = np.empty_like(g)
        for shift in np.unique(s):
            at = s == shift
            out[at] = arith.stochastic_round(g[at], int(shift), u[at], d)
        return {"dw": out}

    async def rounding_is_unbiased(self) -> None:
        """The mean of ``dW`` over many draws of the LFSR twin is ``g / 2 ** shift`` within
        5 sigma (sigma of the mean of a Bernoulli ``frac`` over ``trials`` draws), for every
        ``(g, shift)`` of ``values``; every single result is also bit exact."""
        p = self.params
        c = self.component
        trials = int(p["trials"])
        values = [(int(g), int(s)) for g, s in p["values"]]
        lf = p["lfsr"]
        spec = LfsrSpec(lf["width"], tuple(lf["taps"]), lf["draw_bits"])
        if spec.draw_bits != c.draw_bits:
            raise AssertionError(f"the generator draws {spec.draw_bits} bits, the rounder "
                                 f"compares {c.draw_bits}")
        twin = TwinLfsrBank(spec, p["rng_seeds"])
        total = trials * len(values)
        u = twin.draw(-(-total // twin.lanes)).ravel()[:total].astype(np.int64)
        g = np.repeat([v[0] for v in values], trials).astype(np.int64)
        s = np.repeat([v[1] for v in values], trials).astype(np.int64)
        await self.setup()
        cases = {"g": g, "u": u, "shift": s}
        got = await self.check(cases, stall=p.get("stall", 0.0), label="rounding_is_unbiased")
        dw = got["dw"].reshape(len(values), trials)
        lines, failures = [], []
        for (gv, sv), row in zip(values, dw):
            if not 0 < sv <= c.draw_bits:
                raise AssertionError(f"shift {sv} must be from 1 to {c.draw_bits} for an exact "
                                     "fraction")
            exact = gv / 2 ** sv
            f = (abs(gv) % (1 << sv)) / 2 ** sv
            sigma = math.sqrt(f * (1 - f) / trials)
            if not min(f, 1 - f) > 5 * sigma:
                raise AssertionError(f"g={gv}, shift={sv}: {trials} trials cannot tell a biased "
                                     f"rounding (off by {min(f, 1 - f)}) from 5 sigma = "
                                     f"{5 * sigma:.4g}; use more trials or another value")
            mean = float(row.mean())
            expected = exact + p.get("bias", 0.0)
            z = (mean - expected) / sigma
            lines.append(f"g={gv} shift={sv}: mean {mean:.5f}, expected {expected:.5f}, "
                         f"z = {z:+.2f}")
            if abs(z) > 5:
                failures.append(lines[-1])
        self.log.info("rounding_is_unbiased over %d trials each:\n  %s", trials,
                      "\n  ".join(lines))
        if failures:
            raise AssertionError("the mean of dW is more than 5 sigma from g / 2 ** shift:\n  "
                                 + "\n  ".join(failures))


class WeightUpdaterBench(StreamBench):
    """``W' = update_weights(W, dW, w_max)`` and ``T = forward_weights(W', t_shift, t_max)``.

    Exhaustive: every ``W`` of its width with every ``dW`` in ``[-dw_range, dw_range]``
    (parameter ``dw_range``, default ``2 * w_max + 32``)."""

    def exhaustive_cases(self):
        c = self.component
        r = int(self.params.get("dw_range", 2 * c.w_max + 32))
        r = min(r, (1 << (c.dw_width - 1)) - 1)
        w = c.w_width
        return _grid(w=range(-(1 << (w - 1)), 1 << (w - 1)), dw=range(-r, r + 1))

    def random_cases(self, count):
        c = self.component
        kind = self.rng.integers(0, 4, count)
        w_in = self.rng.integers(-c.w_max, c.w_max, count, endpoint=True)
        w_any = _signed_mix(self.rng, c.w_width, count)
        dw_small = self.rng.integers(-2 * c.w_max, 2 * c.w_max, count, endpoint=True)
        dw_any = _signed_mix(self.rng, c.dw_width, count)
        return {"w": np.where(kind == 0, w_any, w_in),
                "dw": np.where(kind >= 2, dw_small, dw_any)}

    def expect(self, cases):
        c = self.component
        w = arith.update_weights(cases["w"], cases["dw"], c.w_max)
        return {"w": w, "t": arith.forward_weights(w, c.t_shift, c.t_max)}


_BENCHES = {
    "shift_quantizer": ShiftQuantizerBench,
    "log2_round": Log2RoundBench,
    "max_abs": MaxAbsBench,
    "stochastic_rounder": StochasticRounderBench,
    "weight_updater": WeightUpdaterBench,
}


# ------------------------------------------------------------------------------------------------
# The LFSR bank

class LfsrBankBench:
    """The hardware bank against :class:`intrain.golden.lfsr.LfsrBank` and ``generate``."""

    def __init__(self, dut, component, params: dict):
        self.dut = dut
        self.component = component
        self.params = params
        self.spec = component.spec
        self.seeds = list(component.seeds)
        self.lanes = len(self.seeds)
        self.words = Fields(component.o.payload.shape(), "word")
        self.loads = Fields(component.load.payload.shape(), "seed")
        self.stall_rng = random.Random(params.get("seed", 0))
        self.log = dut._log

    def twin(self, seeds=None) -> TwinLfsrBank:
        """The twin from ``seeds``, by default the ``twin_seeds`` parameter or the block's."""
        return TwinLfsrBank(self.spec, seeds or self.params.get("twin_seeds") or self.seeds)

    def as_lanes(self, raw: list[int]) -> np.ndarray:
        """``(draws, lanes)`` words from raw bus values."""
        fields = self.words.decode(raw)
        return np.stack([fields[n] for n in range(self.lanes)], axis=1)

    async def setup(self) -> None:
        dut = self.dut
        start_clock(dut)
        dut.o__ready.value = 0
        dut.load__valid.value = 0
        dut.load__payload.value = 0
        await reset(dut)

    async def read_every_cycle(self, n: int) -> np.ndarray:
        """Take a draw every clock (``o.ready`` high) and return the first ``n`` words of every
        lane, read between the clock edges."""
        dut = self.dut
        dut.o__ready.value = 1
        if not dut.o__valid.value:
            raise AssertionError("o.valid is low")
        payload, fall = dut.o__payload, FallingEdge(dut.clk)
        buf = [0] * n
        for k in range(n):
            await fall
            buf[k] = payload.value.to_unsigned()
        if not dut.o__valid.value:
            raise AssertionError("o.valid is low")
        return self.as_lanes(buf)

    def compare(self, got: np.ndarray, expected: np.ndarray, what: str = "the twin"):
        """Compare ``(draws, lanes)`` words; the message names the first differences."""
        bad = np.argwhere(got != expected)
        if bad.size:
            lines = [f"  draw {k} of lane {n}: expected {int(expected[k, n]):#x}, got "
                     f"{int(got[k, n]):#x}" for k, n in bad[:_SHOWN]]
            raise AssertionError(f"{len(bad)} of {got.size} words differ from {what}; first:\n"
                                 + "\n".join(lines))

    async def words_match_twin(self) -> None:
        n = int(self.params["draws"])
        await self.setup()
        start = time.perf_counter()
        got = await self.read_every_cycle(n)
        elapsed = time.perf_counter() - start
        self.compare(got, self.twin().draw(n))
        # The plain one-draw-at-a-time reference too, on a stretch of every lane.
        head = min(n, 4096)
        seeds = self.params.get("twin_seeds") or self.seeds
        reference = np.array([generate(self.spec, s, head) for s in seeds]).T
        self.compare(got[:head], reference, "generate()")
        self.log.info("lfsr_words_match_twin: %d draws x %d lanes equal the twin; %.1f s, "
                      "%.0f draws/s", n, self.lanes, elapsed, n / max(elapsed, 1e-9))

    async def draws_only_when_ready(self) -> None:
        """With ``o.ready`` at random, every transfer is the next word of the twin and
        ``o.valid`` is high in every cycle."""
        dut = self.dut
        cycles = int(self.params.get("ready_cycles", 20_000))
        await self.setup()
        edge, settled = RisingEdge(dut.clk), ReadOnly()
        rand = self.stall_rng.random
        taken = []
        for cycle in range(cycles):
            await edge
            ready = int(rand() < 0.5)
            dut.o__ready.value = ready
            await settled
            if not dut.o__valid.value:
                raise AssertionError(f"o.valid is low in cycle {cycle}")
            if ready:
                taken.append(dut.o__payload.value.to_unsigned())
        got = self.as_lanes(taken)
        self.compare(got, self.twin().draw(len(taken)))
        self.log.info("lfsr_draws_only_when_ready: %d draws in %d cycles", len(taken), cycles)

    async def reload(self) -> None:
        """A load sets every lane to its new seed (a zero seed: the power-on seed); a draw in
        the load cycle returns the old word; a load with ``o.ready`` low takes no draw."""
        dut = self.dut
        rng = np.random.default_rng(self.params.get("seed", 0))
        await self.setup()
        edge, settled = RisingEdge(dut.clk), ReadOnly()

        async def cycle(ready, load=None):
            await edge
            dut.o__ready.value = ready
            dut.load__valid.value = int(load is not None)
            if load is not None:
                dut.load__payload.value = self.loads.encode(
                    {n: [s] for n, s in enumerate(load)})[0]
            await settled
            return dut.o__payload.value.to_unsigned()

        def fresh():
            seeds = [int(s) for s in rng.integers(1, self.spec.mask, self.lanes, endpoint=True)]
            seeds[self.lanes // 2] = 0  # a zero seed restarts that lane from its power-on seed
            return seeds, [s or p for s, p in zip(seeds, self.seeds)]

        raw = [await cycle(1) for _ in range(37)]
        first, effective = fresh()
        raw.append(await cycle(1, first))   # draws the old word and loads
        raw += [await cycle(1) for _ in range(50)]
        second, effective2 = fresh()
        await cycle(0, second)              # loads without a draw
        raw2 = [await cycle(1) for _ in range(50)]
        await edge
        dut.o__ready.value = 0
        got, got2 = self.as_lanes(raw), self.as_lanes(raw2)
        self.compare(got[:38], self.twin().draw(38), "the twin before the load")
        self.compare(got[38:], self.twin(effective).draw(50), "the twin of the first load")
        self.compare(got2, self.twin(effective2).draw(50), "the twin of the second load")

    async def full_period(self) -> None:
        """Every lane runs through its whole period: each word equals the twin's, every
        non-zero state comes once, and the lane is back at its seed."""
        spec = self.spec
        if spec.draw_bits != spec.width:
            raise AssertionError("the full-period test needs draw_bits == width (a word is the "
                                 "whole state)")
        period = spec.period // math.gcd(spec.period, spec.draw_bits)
        await self.setup()
        start = time.perf_counter()
        got = await self.read_every_cycle(period + 1)
        elapsed = time.perf_counter() - start
        self.compare(got, self.twin().draw(period + 1))
        every = np.arange(1, spec.mask + 1)
        for n, seed in enumerate(self.seeds):
            if not np.array_equal(np.sort(got[:period, n]), every):
                raise AssertionError(f"lane {n} did not visit every non-zero state once in "
                                     f"{period} draws")
            if got[period, n] != seed:
                raise AssertionError(f"lane {n} is at {int(got[period, n]):#x} after {period} "
                                     f"draws, not back at its seed {seed:#x}")
        self.log.info("lfsr_full_period: %d lanes x %d draws, back at their seeds; %.1f s",
                      self.lanes, period, elapsed)


# ------------------------------------------------------------------------------------------------
# cocotb tests

def _bench(dut):
    params = test_parameters()
    component = build(params["block"], params["args"])
    if params["block"] == "lfsr_bank":
        return LfsrBankBench(dut, component, params)
    return _BENCHES[params["block"]](dut, component, params)


@cocotb.test()
async def stream_matches_twin(dut):
    """Every exhaustive case, then the random ones, equal the golden twin (few stalls)."""
    await _bench(dut).matches_twin()


@cocotb.test()
async def stream_under_backpressure(dut):
    """Random cases under heavy random stalls on both sides: nothing lost, duplicated or
    reordered, every value equal to the twin."""
    await _bench(dut).under_backpressure()


@cocotb.test()
async def stream_one_element_per_cycle(dut):
    """Without stalls an element goes in every cycle and comes out after the stated latency."""
    await _bench(dut).one_element_per_cycle()


@cocotb.test()
async def rounding_is_unbiased(dut):
    """The stochastic rounder's mean over many LFSR draws is ``g / 2 ** shift``."""
    await _bench(dut).rounding_is_unbiased()


@cocotb.test()
async def lfsr_words_match_twin(dut):
    """A draw every clock: every word of every lane equals the twin's."""
    await _bench(dut).words_match_twin()


@cocotb.test()
async def lfsr_draws_only_when_ready(dut):
    """The bank advances only on a transfer."""
    await _bench(dut).draws_only_when_ready()


@cocotb.test()
async def lfsr_reload(dut):
    """Loading new seeds restarts every lane from them."""
    await _bench(dut).reload()


@cocotb.test()
async def lfsr_full_period(dut):
    """A small bank runs through its whole period and returns to its seeds."""
    await _bench(dut).full_period()

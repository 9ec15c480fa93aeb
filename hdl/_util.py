"""Small helpers shared by the hardware blocks: argument checks and combinational selections.

The selections are chains of ``Mux`` rather than ``m.Switch``/``m.If``: those become Verilog
``always @*`` blocks, which Icarus Verilog (``-g2012``, as cocotb runs it) only evaluates once one
of their inputs changes, so a selection whose inputs keep their initial values would stay X. A
``Mux`` chain becomes continuous assignments, defined from time 0.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth import Mux, Signal, Value

__all__ = ["Level", "check_int", "const_mux", "delay", "first", "nested_count", "select"]


def check_int(what, value, minimum=None):
    """``value`` if it is an integer of at least ``minimum``; ``TypeError`` or ``ValueError``
    naming ``what`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, not {value!r}")
    return value


def first(pairs, default=0):
    """The value of the first ``(condition, value)`` of ``pairs`` whose condition holds, else
    ``default``: a chain of ``Mux``."""
    result = default
    for cond, value in reversed(list(pairs)):
        result = Mux(cond, value, result)
    return result


def select(sel, pairs, default=0):
    """The value of the ``(key, value)`` of ``pairs`` with ``sel == key``, else ``default``."""
    return first([(sel == key, value) for key, value in pairs], default)


def const_mux(m, sel, values, name):
    """A signal that holds ``values[sel]`` (combinational; 0 for ``sel`` past the list)."""
    sig = Signal(range(max(values) + 1), name=name)
    m.d.comb += sig.eq(select(sel, enumerate(values)))
    return sig


def delay(m, sig, cycles, name):
    """``sig`` delayed by ``cycles`` clock edges (a chain of registers named ``{name}_{n}``)."""
    for n in range(cycles):
        reg = Signal.like(sig, name=f"{name}_{n + 1}")
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


class Level(NamedTuple):
    """One counter of a :func:`nested_count`: it adds ``step`` until ``end`` holds, then returns
    to 0 and carries into the next level. ``bases`` are ``(signal, increment)`` pairs that
    follow it: each adds its increment with every step and returns to 0 with the counter."""
    counter: Value
    step: object
    end: Value
    bases: tuple = ()


def nested_count(m, enable, levels) -> Value:
    """Advance the ``levels`` (:class:`Level`, innermost first) by one count when ``enable``
    holds; returns the condition of the last count (``enable`` and every level at its end),
    an expression, so that a caller can act on it without a statement inside the counters'
    ``m.If`` (which Verilog would get as an ``always @*`` block)."""
    levels = list(levels)

    def level(n):
        lv = levels[n]
        with m.If(lv.end):
            m.d.sync += [lv.counter.eq(0), *[base.eq(0) for base, _ in lv.bases]]
            if n + 1 < len(levels):
                level(n + 1)
        with m.Else():
            m.d.sync += [lv.counter.eq(lv.counter + lv.step),
                         *[base.eq(base + inc) for base, inc in lv.bases]]

    with m.If(enable):
        level(0)
    last = Value.cast(enable)
    for lv in levels:
        last = last & lv.end
    return last

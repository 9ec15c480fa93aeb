"""Small helpers shared by the hardware blocks: argument checks and combinational selections.

The selections are chains of ``Mux`` rather than ``m.Switch``/``m.If``: those become Verilog
``always @*`` blocks, which Icarus Verilog (``-g2012``, as cocotb runs it) only evaluates once one
of their inputs changes, so a selection whose inputs keep their initial values would stay X. A
``Mux`` chain becomes continuous assignments, defined from time 0.
"""

from __future__ import annotations

from amaranth import Mux, Signal

__all__ = ["check_int", "const_mux", "delay", "first", "select"]


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

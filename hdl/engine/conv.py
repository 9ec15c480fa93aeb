"""The engine's convolution layers: the counters and masks that turn the array's three products
of a convolution into slices of its channel-last memories (:class:`~.geometry.ConvDims`), with
no patch matrix in memory.

A convolution ``c_out x c_in x k x k`` over ``h x w`` positions runs its products as the fully
connected jobs do, with positions in place of samples:

======== ======================= ===================== ================ ============================
job      rows                    columns               K                operands (slices)
======== ======================= ===================== ================ ============================
forward  ``c_out``               positions of a sample taps x ``c_in``  ``T`` column of ``W``;
                                                                        ``A`` column, shifted
gradient ``c_out``               taps x ``c_in``       all positions    ``E`` row; ``A`` row,
                                                                        shifted
backward positions of a sample   ``c_in``              taps x ``c_out`` ``E`` column, shifted back;
                                                                        ``T`` row of ``W``
======== ======================= ===================== ================ ============================

Every dimension of a job is a :class:`BlockLoop`: blocks of ``R`` (or ``C``) positions within
one sample, samples outer (a block never spans two samples, so a forward result row is one
piece of one sample's output), or blocks of channels within one kernel tap, taps outer. A beat
of the forward and backward jobs is a kernel tap ``(i, j)`` and a channel (:class:`Taps`, the
channel inner); the input of tap ``(i, j)`` at position ``(y, x)`` is the position matrix's row
shifted by ``(i - p) * w + (j - p)``, and the memories hold ``p * w + p`` guard rows before the
matrix so that every shifted row is an address. A lane whose shifted position leaves the image
(or a block past the sample's last position) is masked to zero: :func:`lane_positions` gives
each lane's ``(y, x)``.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Signal

from .._util import const_mux, select
from ..transpose_memory import divmod_const

__all__ = ["BlockLoop", "Taps", "lane_positions", "layer_const", "layer_consts", "inside"]


def layer_const(m, layer, values, name):
    """``values[layer]`` (one non-negative integer per layer) as a signal."""
    return const_mux(m, layer, list(values), name)


def layer_consts(m, layer, dims, prefix, **fields):
    """For each ``name=f`` of ``fields``, ``f(dims[layer])`` as a signal named
    ``{prefix}_{name}`` (0 where ``dims[layer]`` is None)."""
    return SimpleNamespace(dims=dims, **{
        name: layer_const(m, layer, [f(d) if d else 0 for d in dims], f"{prefix}_{name}")
        for name, f in fields.items()})


class BlockLoop:
    """One dimension of an array job as blocks: ``n_major`` majors (samples, or kernel taps) of
    ``n_minor`` elements each, visited ``step`` at a time; :attr:`flat` is the element index
    ``major * n_minor + minor``."""

    def __init__(self, m, name, step, max_major, max_minor):
        self.step = step
        self.minor = Signal(range(max_minor + step), name=f"{name}_minor")
        self.major = Signal(range(max_major + 1), name=f"{name}_major")
        self.base = Signal(range(max_major * max_minor + 1), name=f"{name}_base")
        self.flat = Signal(range(max_major * max_minor + step), name=f"{name}_flat")
        m.d.comb += self.flat.eq(self.base + self.minor)
        self._restart, self._step = [], []

    def track(self, restart, step):
        """Statements that follow the loop: ``restart`` with every new major (and reset),
        ``step`` with every next minor."""
        self._restart += restart
        self._step += step

    def minor_end(self, n_minor):
        return self.minor + self.step >= n_minor

    def major_end(self, n_major):
        return self.major + 1 >= n_major

    def reset(self):
        return [self.minor.eq(0), self.major.eq(0), self.base.eq(0), *self._restart]

    def next_minor(self):
        return [self.minor.eq(self.minor + self.step), *self._step]

    def next_major(self, n_minor):
        return [self.minor.eq(0), self.major.eq(self.major + 1),
                self.base.eq(self.base + n_minor), *self._restart]

    def advance(self, m, n_major, n_minor, on_end):
        """Statements for the next block; ``on_end()`` runs in the branch after the last."""
        with m.If(self.minor_end(n_minor)):
            with m.If(self.major_end(n_major)):
                m.d.sync += self.reset()
                on_end()
            with m.Else():
                m.d.sync += self.next_major(n_minor)
        with m.Else():
            m.d.sync += self.next_minor()


class Taps:
    """A kernel tap ``(i, j)`` (``j`` inner) with the row shift of its input plus the guard,
    ``offg = i * w + j``, and the first stored weight column of the tap, ``base = (i * k + j) *
    c_in``; in a beat counter, the channel ``ch`` inner to the tap."""

    def __init__(self, m, name, max_k, max_offset, max_base, max_ch=1):
        self.i = Signal(range(max_k), name=f"{name}_i")
        self.j = Signal(range(max_k), name=f"{name}_j")
        self.ch = Signal(range(max_ch), name=f"{name}_ch")
        self.offg = Signal(range(max_offset + 1), name=f"{name}_offg")
        self.base = Signal(range(max_base + 1), name=f"{name}_base")

    def reset(self):
        return [self.i.eq(0), self.j.eq(0), self.ch.eq(0), self.offg.eq(0), self.base.eq(0)]

    def next_tap(self, m, k, row_step, c_in):
        """The next tap: ``row_step = w - k + 1`` takes the shift to the next kernel row."""
        m.d.sync += self.base.eq(self.base + c_in)
        with m.If(self.j + 1 >= k):
            m.d.sync += [self.j.eq(0), self.i.eq(self.i + 1),
                         self.offg.eq(self.offg + row_step)]
        with m.Else():
            m.d.sync += [self.j.eq(self.j + 1), self.offg.eq(self.offg + 1)]

    def next_beat(self, m, n_ch, k, row_step, c_in):
        with m.If(self.ch + 1 >= n_ch):
            m.d.sync += self.ch.eq(0)
            self.next_tap(m, k, row_step, c_in)
        with m.Else():
            m.d.sync += self.ch.eq(self.ch + 1)


def inside(value, low, high):
    """``low <= value < high``."""
    return (value >= low) & (value < high)


def lane_positions(m, conv_dims, layer, loop, size, name):
    """For lanes ``l < size`` of the current block of a sample's positions (the minor of
    ``loop``, ``size`` positions per block), in the convolution layer ``layer`` selects:
    ``(valid, y, x)`` of position ``minor + l`` (``valid``: inside the image). The block's first
    position is tracked as ``(y0, x0)`` registers that follow ``loop``'s steps, and each lane's
    ``x0 + l`` is divided by the image width (a constant per layer: small shifts and adders,
    nothing for a width that is a power of two)."""
    dims = [(j, d) for j, d in enumerate(conv_dims) if d is not None]
    h_max, w_max = max(d.h for _, d in dims), max(d.w for _, d in dims)
    y0 = Signal(range(h_max + size + 1), name=f"{name}_y0")
    x0 = Signal(range(w_max), name=f"{name}_x0")
    # The block's first position, one step on: ``x0 + step`` over the width.
    y_step = Signal.like(y0, name=f"{name}_y_step")
    x_step = Signal.like(x0, name=f"{name}_x_step")
    steps = [(j, divmod_const(x0 + loop.step, d.w)) for j, d in dims]
    m.d.comb += [y_step.eq(y0 + select(layer, [(j, q) for j, (q, _) in steps])),
                 x_step.eq(select(layer, [(j, r) for j, (_, r) in steps]))]
    loop.track([y0.eq(0), x0.eq(0)], [y0.eq(y_step), x0.eq(x_step)])
    lanes = []
    for lane in range(size):
        v = Signal(name=f"{name}_in_{lane}")
        y = Signal(range(h_max + size + 1), name=f"{name}_y_{lane}")
        x = Signal(range(w_max), name=f"{name}_x_{lane}")
        parts = [(j, divmod_const(x0 + lane, d.w)) for j, d in dims]
        m.d.comb += [
            y.eq(y0 + select(layer, [(j, q) for j, (q, _) in parts])),
            x.eq(select(layer, [(j, r) for j, (_, r) in parts])),
            v.eq(y < select(layer, [(j, d.h) for j, d in dims])),
        ]
        lanes.append((v, y, x))
    return lanes


"""The engine's max-pool: the pool pass after a pooled convolution's forward job and the unpool
pass before its gradient job (SPEC.md section 4b: pool before ReLU, each window's FIRST maximum
in raster order takes the whole error).

The forward job of a pooled convolution writes its raw accumulators to ``Z{l}`` (positions x
channels). The pool pass then reads, per sample, channel and row of windows, ``pool`` column
slices of ``Z{l}`` (``span = (lanes // pool) * pool`` positions of ``pool`` consecutive image
rows): a running maximum per lane over the rows (a later row only wins when it is greater), then
per window the greatest of its ``pool`` columns (ties to the smaller raster index ``dy * pool +
dx``), then QA; the pooled activations and masks go to ``A{l+1}``/``M{l}`` as the next layer
reads them and each window's choice ``dy * pool + dx`` to ``CH{l}``. In the backward direction,
after the QE pass has written the pooled error ``E{l}``, the unpool pass reads each slice of
``E{l}`` and ``CH{l}`` ``pool`` times and writes ``pool`` column slices of ``D{l}``, the error at
the convolution's outputs, with every window's error at its choice and zeros elsewhere; the
gradient and backward jobs of the layer read ``D{l}`` in place of ``E{l}``.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Mux, Signal, signed
from amaranth.lib import data

from .._util import Level, delay, nested_count, select
from ..shift_quantizer import ShiftQuantizer
from ..transpose_memory import SliceMode, mul_const
from .control import State
from .conv import layer_consts

__all__ = ["build_pool_passes"]


def _consts(m, s, layer):
    """The pooled layers' constants, selected by ``layer`` (0 elsewhere)."""
    lanes = s.lanes
    return layer_consts(
        m, layer, [d if j in s.geo.pooled else None for j, d in enumerate(s.cv.dims)], "pl",
        pool=lambda d: d.pool, w=lambda d: d.w, hw=lambda d: d.hw, hp=lambda d: d.hp,
        wp=lambda d: d.wp, hwp=lambda d: d.hwp, c_out=lambda d: d.c_out,
        pw=lambda d: d.pool * d.w, step=lambda d: lanes // d.pool,
        span=lambda d: lanes // d.pool * d.pool)


def _loop(m, s, pc, issue):
    """The pass's slices: ``dy`` (a window's row) inner, then the block of windows ``xb``, the
    row of windows ``Y``, the channel ``o`` and the sample ``b``; with the running bases of the
    slice's rows in ``Z``/``D`` (``zrow``) and in the pooled matrices (``prow``, and ``pcol`` the
    first column of a flat row of the next layer)."""
    batch = s.batch_size
    pooled = [d for d in pc.dims if d]
    max_pool = max(d.pool for d in pooled)
    r = SimpleNamespace(
        dy=Signal(range(max_pool), name="pl_dy"),
        xb=Signal(range(max(d.wp for d in pooled) + s.lanes), name="pl_xb"),
        y=Signal(range(max(d.hp for d in pooled)), name="pl_y"),
        o=Signal(range(max(d.c_out for d in pooled)), name="pl_o"),
        b=Signal(range(batch), name="pl_b"),
        r_b=Signal(range(batch * max(d.hw for d in pooled) + 1), name="pl_r_b"),
        r_y=Signal(range(max(d.hw for d in pooled) + 1), name="pl_r_y"),
        r_dy=Signal(range(max(d.pool * d.w for d in pooled) + 1), name="pl_r_dy"),
        p_b=Signal(range(batch * max(d.hwp for d in pooled) + 1), name="pl_p_b"),
        p_y=Signal(range(max(d.hwp for d in pooled) + 1), name="pl_p_y"),
        p_o=Signal(range(max(d.hwp * d.c_out for d in pooled) + 1), name="pl_p_o"))
    ends = [r.dy + 1 >= pc.pool, r.xb + pc.step >= pc.wp, r.y + 1 >= pc.hp,
            r.o + 1 >= pc.c_out, r.b + 1 >= s.n_batch]
    steps = [  # (counter, its bases with their steps)
        (r.dy, [(r.r_dy, pc.w)]), (r.xb, []), (r.y, [(r.r_y, pc.pw), (r.p_y, pc.wp)]),
        (r.o, [(r.p_o, pc.hwp)]), (r.b, [(r.r_b, pc.hw), (r.p_b, pc.hwp)])]
    final = nested_count(m, issue, [
        Level(counter, pc.step if counter is r.xb else 1, end, tuple(bases))
        for (counter, bases), end in zip(steps, ends, strict=True)])
    x0 = Signal(range(max(d.w for d in pooled) + max_pool * s.lanes), name="pl_x0")
    m.d.comb += x0.eq(select(s.layer, [(j, mul_const(r.xb, d.pool))
                                       for j, d in enumerate(pc.dims) if d]))
    r.zrow = r.r_b + r.r_y + r.r_dy + x0
    r.prow = r.p_b + r.p_y + r.xb
    r.pcol = r.p_o + r.p_y + r.xb
    r.x0, r.final = x0, final
    return r


def build_pool_passes(s, pool_job, unpool_job):
    """The pool and unpool passes of every pooled layer; returns ``(pool_final,
    unpool_final)``, the cycles of each pass's last write."""
    m, lanes, layer, job, rl = s.m, s.lanes, s.layer, s.job, s.rl
    pc = _consts(m, s, layer)
    issue = Signal(name="pl_issue")
    m.d.comb += issue.eq((s.state == State.ISSUE) & ((job == pool_job) | (job == unpool_job)))
    r = _loop(m, s, pc, issue)
    s.issue_ends.append(r.final)   # (``final`` includes ``issue``)
    max_pool = max(d.pool for d in pc.dims if d)
    fields = {"valid": 1, "final": 1, "unpool": 1, "dy": r.dy.shape(), "last_dy": 1,
              "zrow": range(s.batch_size * max(d.hw for d in pc.dims if d) + 1),
              "prow": range(s.batch_size * max(d.hwp for d in pc.dims if d) + s.lanes),
              "pcol": range(max(d.hwp * d.c_out for d in pc.dims if d) + s.lanes),
              "o": r.o.shape(), "b": r.b.shape(), "ok": lanes, "pok": lanes}
    f0 = Signal(data.StructLayout(fields), name="pl_0")
    m.d.comb += [
        f0.valid.eq(issue), f0.final.eq(r.final), f0.unpool.eq(job == unpool_job),
        f0.dy.eq(r.dy), f0.last_dy.eq(r.dy + 1 >= pc.pool), f0.zrow.eq(r.zrow),
        f0.prow.eq(r.prow), f0.pcol.eq(r.pcol), f0.o.eq(r.o), f0.b.eq(r.b),
    ]
    for lane in range(lanes):
        m.d.comb += [f0.ok[lane].eq((r.x0 + lane < pc.w) & (lane < pc.span)),
                     f0.pok[lane].eq((r.xb + lane < pc.wp) & (lane < pc.step))]
    for j, d in enumerate(pc.dims):
        if d is None:
            continue
        on = issue & (layer == j)
        s.ports.read(s.z_mems[j], on & (job == pool_job), SliceMode.COLUMN, r.zrow, r.o)
        s.ports.read(s.e_mems[j], on & (job == unpool_job), SliceMode.COLUMN, r.prow, r.o)
        s.ports.read(s.ch_mems[j], on & (job == unpool_job), SliceMode.COLUMN, r.prow, r.o)
    f2 = delay(m, f0, rl, "pl")   # with the slices read
    pool_final = _pool_data(s, pc, f2, max_pool)
    unpool_final = _unpool_data(s, f2)
    return pool_final, unpool_final


def _window_max(m, s, pc, f2, max_pool):
    """Per window of the slice: the running maxima of its lanes over the window's rows
    (registered: the rows' and the columns' compares in one cycle were the critical path of
    the ECP5 conv build), then the greatest column; returns ``(value, choice)`` per pooled lane
    (combinational, valid the cycle after ``f2.last_dy``)."""
    lanes, layer = s.lanes, s.layer
    width = max(s.geo.plan[j].acc_bits_forward for j in s.geo.pooled)
    z = [select(layer, [(j, s.z_mems[j].read_data.payload[k]) for j in s.geo.pooled])
         for k in range(lanes)]
    best = [Signal(signed(width), name=f"pl_best_{k}") for k in range(lanes)]
    best_dy = [Signal(f2.dy.shape(), name=f"pl_best_dy_{k}") for k in range(lanes)]
    cur, cur_dy = [], []
    for k in range(lanes):
        take = (f2.dy == 0) | (z[k] > best[k])
        v = Signal(signed(width), name=f"pl_cur_{k}")
        vd = Signal(f2.dy.shape(), name=f"pl_cur_dy_{k}")
        m.d.comb += [v.eq(Mux(take, z[k], best[k])), vd.eq(Mux(take, f2.dy, best_dy[k]))]
        with m.If(f2.valid & ~f2.unpool):
            m.d.sync += [best[k].eq(v), best_dy[k].eq(vd)]
        cur.append(best[k])     # after the window's last row: its lane's maximum
        cur_dy.append(best_dy[k])
    out = []
    for q in range(lanes // min(d.pool for d in pc.dims if d)):
        options = []
        for j, d in enumerate(pc.dims):
            if d is None or (q + 1) * d.pool > lanes:
                continue
            val, idx = cur[q * d.pool], mul_const(cur_dy[q * d.pool], d.pool)
            for dx in range(1, d.pool):
                k = q * d.pool + dx
                cand = mul_const(cur_dy[k], d.pool) + dx
                better = (cur[k] > val) | ((cur[k] == val) & (cand < idx))
                val, idx = Mux(better, cur[k], val), Mux(better, cand, idx)
            options.append((j, val, idx))
        v = Signal(signed(width), name=f"pl_win_{q}")
        i = Signal(range(max_pool * max_pool), name=f"pl_win_choice_{q}")
        m.d.comb += [v.eq(select(layer, [(j, val) for j, val, _ in options])),
                     i.eq(select(layer, [(j, idx) for j, _, idx in options]))]
        out.append((v, i))
    return out


def _pool_data(s, pc, f2, max_pool):
    """The pool pass's windows, QA and writes; returns the cycle of its last write."""
    m, layer = s.m, s.layer
    windows = _window_max(m, s, pc, f2, max_pool)
    n_win = len(windows)
    width = len(windows[0][0])
    # Stage 3: the lanes' row maxima (registered in _window_max); 4: the windows' maxima.
    w4 = Signal(data.ArrayLayout(signed(width), n_win), name="pl_win_4")
    c4 = Signal(data.ArrayLayout(windows[0][1].shape(), n_win), name="pl_choice_4")
    m.d.sync += [*[w4[q].eq(v) for q, (v, _) in enumerate(windows)],
                 *[c4[q].eq(i) for q, (_, i) in enumerate(windows)]]
    on = f2.valid & ~f2.unpool & f2.last_dy
    f3 = Signal.like(f2, name="pl_3")
    m.d.sync += [f3.eq(f2), f3.valid.eq(on)]
    f4 = delay(m, f3, 1, "pl_win")   # with the windows' maxima (w4, c4)
    qa_lat = s.geo.qa_latency
    fq = delay(m, f4, qa_lat, "pl_qa")   # with QA's results
    cq = delay(m, c4, qa_lat, "pl_choice")
    relu_q = delay(m, Cat(*[w4[q] > 0 for q in range(n_win)]), qa_lat, "pl_relu")
    for j in s.geo.pooled:
        p = s.geo.plan[j]
        qs = []
        for q in range(n_win):
            qa = m.submodules[f"pl_qa_{j}_{q}"] = ShiftQuantizer.for_qa(p, width)
            m.d.comb += [qa.i.valid.eq(f4.valid), qa.i.payload.eq(w4[q]), qa.o.ready.eq(1)]
            qs.append(qa)
        cond = fq.valid & (layer == j)
        mode, row, col = _pooled_write(s, j, fq)
        mask = fq.pok[:n_win]
        s.ports.write(s.a_mems[j + 1], cond, mode, row, col, mask,
                      [qa.o.payload.value for qa in qs])
        s.ports.write(s.mask_mems[j], cond, mode, row, col, mask, [
            Cat(relu_q[q], qs[q].o.payload.mask) for q in range(n_win)])
        s.ports.write(s.ch_mems[j], cond, SliceMode.COLUMN, fq.prow, fq.o, mask,
                      [cq[q] for q in range(n_win)])
    return fq.valid & fq.final


def _pooled_write(s, j, f):
    """``(mode, row, col)`` of a pooled slice of layer ``j`` in ``A{j+1}``/``M{j+1}``: a column
    slice of the next convolution's positions (after its guard), or a row slice of the sample's
    flat input of a fully connected layer."""
    d_next = s.cv.dims[j + 1]
    if d_next is not None:
        return SliceMode.COLUMN, f.prow + d_next.guard, f.o
    return SliceMode.ROW, f.b, f.pcol


def _unpool_data(s, f2):
    """The unpool pass's writes of ``D``: each window's error at its choice, zeros elsewhere;
    returns the cycle of its last write."""
    _m, lanes, layer = s.m, s.lanes, s.layer
    on = f2.valid & f2.unpool
    for j in s.geo.pooled:
        d = s.cv.dims[j]
        e, ch = s.e_mems[j].read_data.payload, s.ch_mems[j].read_data.payload
        values = []
        for k in range(lanes):
            q, dx = divmod(k, d.pool)
            if q >= lanes // d.pool:
                values.append(0)
                continue
            hit = ch[q] == mul_const(f2.dy, d.pool) + dx
            values.append(Mux(hit, e[q], 0))
        s.ports.write(s.d_mems[j], on & (layer == j), SliceMode.COLUMN, f2.zrow + d.guard, f2.o,
                      f2.ok, values)
    return on & f2.final

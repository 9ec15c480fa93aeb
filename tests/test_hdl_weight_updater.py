# amaranth: UnusedElaboratable=no
"""WeightUpdater against ``update_weights`` and ``forward_weights`` of the golden model, element
by element, under random stalls on both sides."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from stream_helpers import assert_latency, run_stream

from intrain.config import Bits, Config
from intrain.golden import arith
from intrain.hdl import WeightUpdater


def _check(dut, ws, dws, seed, **kwargs):
    items = [{"w": w, "dw": dw} for w, dw in zip(ws, dws, strict=True)]
    res = run_stream(dut, items, len(items), seed=seed, **kwargs)
    new_w = arith.update_weights(ws, dws, dut.w_max)
    new_t = arith.forward_weights(new_w, dut.t_shift, dut.t_max)
    assert [int(p.w) for p in res.outputs] == [int(v) for v in new_w]
    assert [int(p.t) for p in res.outputs] == [int(v) for v in new_t]
    return res


def _edge_updates(w_max, t_shift, dw_width, rng, n_random):
    """Every stored weight against a few updates: the clip boundaries, the rounding ties of the
    forward view (new weights at odd multiples of 2 ** (t_shift - 1)) and the widest updates."""
    dw_lo, dw_hi = -(1 << (dw_width - 1)), (1 << (dw_width - 1)) - 1
    ws, dws = [], []
    targets = {0, w_max, -w_max, w_max - 1, -w_max + 1}
    if t_shift > 0:
        half = 1 << (t_shift - 1)
        targets |= {k * half + e for k in range(-2 * (w_max // half) - 1, 2 * (w_max // half) + 2)
                    for e in (-1, 0, 1)}
    for w in range(-w_max, w_max + 1):
        picks = {0, 1, -1, dw_lo, dw_hi, 2 * w_max, -2 * w_max, w + w_max, w - w_max,
                 w + w_max + 1, w - w_max - 1}
        picks.add(w - int(rng.choice(sorted(targets))))   # lands exactly on a target
        picks |= {int(v) for v in rng.integers(dw_lo, dw_hi + 1, n_random)}
        for dw in sorted(picks):
            if dw_lo <= dw <= dw_hi:
                ws.append(w)
                dws.append(dw)
    return ws, dws


@pytest.mark.parametrize(("bits", "clip", "dw_width"), [
    ("2-8-8-8", "code", 10),    # ternary forward weights, stored in [-64, 64]
    ("2-8-8-8", "paper", 32),   # stored in [-127, 127], 32-bit updates
    ("4-8-8-8", "code", 9),     # 4-bit forward weights: round half to even with ties
    ("8-8-8-8", "code", 8),     # full INT8: the forward weight is the stored weight
])
def test_every_stored_weight_matches_golden_under_stalls(bits, clip, dw_width):
    plan = Config(bits=bits, weight_clip=clip).plan[0]
    dut = WeightUpdater.for_layer(plan, dw_width)
    assert (dut.w_max, dut.t_shift, dut.t_max) == (plan.w_max, plan.t_shift, plan.t_max)
    rng = np.random.default_rng(dw_width)
    ws, dws = _edge_updates(plan.w_max, plan.t_shift, dw_width, rng, 2)
    order = rng.permutation(len(ws))
    res = _check(dut, [ws[k] for k in order], [dws[k] for k in order], seed=dw_width)
    assert_latency(res, dut.latency)


def test_ternary_view_is_the_sign_above_32_and_zero_at_the_tie():
    dut = WeightUpdater(64, 6, 1, 8)
    ws = [0, 0, 0, 0, 0, 0, 0, 64, -64]
    dws = [-33, -32, 32, 33, 31, -31, 0, -100, 100]
    res = _check(dut, ws, dws, seed=1)
    assert [(int(p.w), int(p.t)) for p in res.outputs] == [
        (33, 1), (32, 0), (-32, 0), (-33, -1), (-31, 0), (31, 0), (0, 0), (64, 1), (-64, -1)]


def test_full_throughput_and_exact_latency_without_stalls():
    dut = WeightUpdater(64, 6, 1, 12)
    rng = np.random.default_rng(2)
    ws = [int(v) for v in rng.integers(-64, 65, 300)]
    dws = [int(v) for v in rng.integers(-2048, 2048, 300)]
    res = _check(dut, ws, dws, seed=2, valid_prob=1, ready_prob=1)
    assert res.accept_cycles == list(range(300))
    assert_latency(res, dut.latency, exact=True)


def test_widths_follow_the_clips():
    dut = WeightUpdater.for_layer(Config(bits=Bits(2, 8, 8, 8)).plan[0], 16)
    assert (dut.w_width, dut.t_width, dut.dw_width) == (8, 2, 16)
    assert dut.i.payload.shape().size == 8 + 16
    assert dut.o.payload.shape().size == 8 + 2


def test_converts_to_verilog():
    text = verilog.convert(WeightUpdater(64, 6, 1, 32), name="weight_updater")
    assert "module weight_updater" in text and "o__payload" in text


@pytest.mark.parametrize(("args", "exc", "match"), [
    ((0, 6, 1, 8), ValueError, r"Weight clip w_max must be at least 1, not 0"),
    ((64.0, 6, 1, 8), TypeError, r"Weight clip w_max must be an integer, not 64\.0"),
    ((64, -1, 1, 8), ValueError, r"Forward-weight shift t_shift must be at least 0, not -1"),
    ((64, 6, 0, 8), ValueError, r"Forward-weight clip t_max must be at least 1, not 0"),
    ((64, 6, 1, 0), ValueError, r"Update width must be at least 1, not 0"),
    ((64, 6, 1, "8"), TypeError, r"Update width must be an integer, not '8'"),
])
def test_constructor_rejects_invalid_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        WeightUpdater(*args)

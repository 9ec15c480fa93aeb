# amaranth: UnusedElaboratable=no
"""Log2Round against ``rl2`` of the golden model, under random stalls on both sides."""

from __future__ import annotations

import math

import numpy as np
import pytest
from amaranth.back import verilog
from stream_helpers import assert_latency, run_stream

from intrain.golden import arith
from intrain.hdl import Log2Round
from intrain.hdl.log2round import rl2_thresholds


def _rl2(m):
    return arith.rl2(m) if m else 0


def test_thresholds_are_the_exact_half_powers():
    for p, t in enumerate(rl2_thresholds(40)):
        assert t * t >= 1 << (2 * p + 1) > (t - 1) * (t - 1)
        if p < 20:  # float64 is exact enough here
            assert t == math.ceil(2 ** (p + 0.5))


def test_every_10_bit_value_matches_golden_under_stalls():
    dut = Log2Round(10)
    ms = list(range(1 << 10)) + list(range(1 << 10))[::-1]
    res = run_stream(dut, ms, len(ms), seed=1)
    assert res.outputs == [_rl2(m) for m in ms]
    assert_latency(res, dut.latency)


def test_every_threshold_of_a_32_bit_input_matches_golden():
    dut = Log2Round(32)
    ms = {0, 1, (1 << 32) - 1}
    for p, t in enumerate(rl2_thresholds(32)):
        ms |= {t - 1, t, t + 1, 1 << p, (1 << (p + 1)) - 1}
    rng = np.random.default_rng(2)
    ms = sorted(m for m in ms if 0 <= m < 1 << 32)
    ms += [int(v) >> int(s) for v, s in zip(rng.integers(0, 1 << 32, 300, dtype=np.uint64),
                                            rng.integers(0, 32, 300), strict=True)]
    res = run_stream(dut, ms, len(ms), seed=2)
    assert res.outputs == [_rl2(m) for m in ms]
    assert max(res.outputs) == 32


def test_log2round_has_full_throughput_and_exact_latency():
    dut = Log2Round(8)
    ms = list(range(256))
    res = run_stream(dut, ms, len(ms), valid_prob=1, ready_prob=1)
    assert res.accept_cycles == list(range(256))
    assert_latency(res, dut.latency, exact=True)
    assert res.outputs == [_rl2(m) for m in ms]


def test_converts_to_verilog():
    text = verilog.convert(Log2Round(24), name="log2round")
    assert "module log2round" in text and "o__payload" in text


@pytest.mark.parametrize(("width", "exc", "match"), [
    (0, ValueError, r"Input width must be at least 1, not 0"),
    (-3, ValueError, r"Input width must be at least 1, not -3"),
    (8.0, TypeError, r"Input width must be an integer, not 8\.0"),
    (None, TypeError, r"Input width must be an integer, not None"),
])
def test_constructor_rejects_invalid_widths(width, exc, match):
    with pytest.raises(exc, match=match):
        Log2Round(width)

# amaranth: UnusedElaboratable=no
"""MaxAbs against ``max_abs`` of the golden model, tensor by tensor, under random stalls on both
sides."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from stream_helpers import run_stream

from intrain.golden import arith
from intrain.hdl import MaxAbs


def _tensor_items(tensors):
    items = []
    for t in tensors:
        for k, v in enumerate(t):
            items.append({"value": int(v), "last": int(k == len(t) - 1)})
    return items


def _max_abs_tensors(width, rng):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    tensors = [[0], [0] * 7, [lo], [hi], [lo, hi, 0], [hi, lo], [-1], [1, -1], [5] * 3,
               [0, 0, -3, 0]]
    for _ in range(40):
        n = int(rng.integers(1, 30))
        scale = int(rng.integers(1, width))
        tensors.append([int(v) for v in rng.integers(-(1 << scale), 1 << scale, n).clip(lo, hi)])
    return tensors


@pytest.mark.parametrize("width", [8, 20])
def test_max_abs_of_each_tensor_matches_golden_under_stalls(width):
    rng = np.random.default_rng(width)
    tensors = _max_abs_tensors(width, rng)
    dut = MaxAbs(width)
    res = run_stream(dut, _tensor_items(tensors), len(tensors), seed=width)
    assert res.outputs == [arith.max_abs(t) for t in tensors]


def test_max_abs_takes_one_element_per_cycle_with_no_gap_between_tensors():
    tensors = [[1], [-7, 3], [0], [100, -128, 5, 2]]
    dut = MaxAbs(8)
    items = _tensor_items(tensors)
    res = run_stream(dut, items, len(tensors), valid_prob=1, ready_prob=1)
    assert res.accept_cycles == list(range(len(items)))
    lasts = [k for k, it in enumerate(items) if it["last"]]
    assert res.output_cycles == [k + dut.latency for k in lasts]
    assert res.outputs == [1, 7, 0, 128]


def test_converts_to_verilog():
    text = verilog.convert(MaxAbs(24), name="max_abs")
    assert "module max_abs" in text and "o__payload" in text


@pytest.mark.parametrize(("width", "exc", "match"), [
    (0, ValueError, r"Input width must be at least 1, not 0"),
    (8.0, TypeError, r"Input width must be an integer, not 8\.0"),
    ("8", TypeError, r"Input width must be an integer, not '8'"),
])
def test_constructor_rejects_invalid_widths(width, exc, match):
    with pytest.raises(exc, match=match):
        MaxAbs(width)

"""Memory faults: the golden model's bit flips against a plain reference of
``intrain.fault_spec`` (one draw at a time, every word and bit), the forward view and the clip
of any bit pattern, the rates, the float32 baseline's flips, and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from intrain.cli import main
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.fault_spec import FAULT_LFSR, FaultPlan, fault_threshold, word_bits
from intrain.golden.arith import forward_weights, update_weights
from intrain.golden.faults import FloatFaults, MemoryFaults
from intrain.golden.lfsr import generate
from intrain.golden.model import GoldenModel

# Two layers with different word widths: 8 bits (2-8-8-8) and 12 bits (4-8-12-8).
MIXED = Config(layers=(7, 5, 3), bits=("2-8-8-8", "4-8-12-8"), batch_size=4, seed=3,
               bit_error_rate=0.04)


def _reference_flips(config: Config, steps: int) -> list[list[np.ndarray]]:
    """Per step, per layer: the XOR mask of every word, straight from the specification."""
    plan = FaultPlan.from_config(config)
    sizes = [p.n_out * p.n_in for p in config.plan]
    draws = [generate(FAULT_LFSR, seed, steps * sum(sizes)) for seed in plan.seeds]
    out, t = [], 0
    for _ in range(steps):
        masks = [None] * len(sizes)
        for i in reversed(range(len(sizes))):
            p, m = config.plan[i], np.zeros(sizes[i], dtype=np.int64)
            for word in range(sizes[i]):
                for k in range(plan.lanes):
                    if k < plan.word_bits[i] and draws[k][t] <= plan.threshold:
                        m[word] |= 1 << k
                t += 1
            masks[i] = m.reshape(p.n_out, p.n_in)
        out.append(masks)
    return out


def _unsigned(w, bits):
    return np.asarray(w, dtype=np.int64) & ((1 << bits) - 1)


def _signed(u, bits):
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u)


def test_flips_follow_the_specification_bit_for_bit():
    steps = 3
    expected = _reference_flips(MIXED, steps)
    faults = MemoryFaults.for_config(MIXED)
    rng = np.random.default_rng(1)
    for s in range(steps):
        weights = [rng.integers(-p.w_max, p.w_max + 1, (p.n_out, p.n_in)).astype(np.int32)
                   for p in MIXED.plan]
        before = [w.copy() for w in weights]
        trace = {}
        faults.apply(weights, trace)
        for i, p in enumerate(MIXED.plan):
            b = word_bits(p)
            want = _signed(_unsigned(before[i], b) ^ expected[s][i], b)
            np.testing.assert_array_equal(weights[i], want)
            np.testing.assert_array_equal(trace[f"flips{i + 1}"], expected[s][i])
            np.testing.assert_array_equal(trace[f"W{i + 1}"], want)
    assert faults.flips == sum(int(np.unpackbits(m.astype(">u2").view(np.uint8)).sum())
                               for step in expected for m in step)


def test_the_threshold_and_the_generators_come_from_the_config():
    assert fault_threshold(0) == 0 and fault_threshold(2.0**-33) == 0
    assert fault_threshold(2.0**-32) == 1 and fault_threshold(1e-7) == 429
    assert fault_threshold(1) == 2**32 - 1
    plan = FaultPlan.from_config(MIXED)
    assert plan.word_bits == (8, 12) and plan.lanes == 12
    assert plan.seeds == FAULT_LFSR.lane_seeds(MIXED.seed ^ 1, 12)
    assert plan.seeds != FAULT_LFSR.lane_seeds(MIXED.seed, 12)  # not the rounder's seed
    assert FaultPlan.from_config(Config()) is None
    assert FaultPlan.from_config(Config(bit_error_rate=2.0**-34)) is None


@pytest.mark.parametrize("bits", ["2-8-8-8", "4-8-12-8", "8-8-8-8"])
def test_the_forward_view_and_the_clip_take_every_bit_pattern(bits):
    p = Config(layers=(4, 3), bits=bits).plan[0]
    b = word_bits(p)
    w = np.arange(-(1 << (b - 1)), 1 << (b - 1))  # every word, beyond w_max too
    t = forward_weights(w, p.t_shift, p.t_max)
    exact = np.clip(np.round(w / 2.0**p.t_shift), -p.t_max, p.t_max)  # numpy rounds half even
    np.testing.assert_array_equal(t, exact)
    np.testing.assert_array_equal(update_weights(w, np.zeros_like(w), p.w_max),
                                  np.clip(w, -p.w_max, p.w_max))


def test_a_training_step_flips_its_stored_weights_after_the_update():
    clean = GoldenModel(MIXED.replace(bit_error_rate=0.0))
    faulty = GoldenModel(MIXED)
    rng = np.random.default_rng(2)
    a0 = rng.integers(-127, 128, (4, 7))
    labels = np.array([0, 1, 2, 1])
    trace = faulty.train_step(a0, labels, 0, record=True).trace
    clean_trace = clean.train_step(a0, labels, 0, record=True).trace
    expected = _reference_flips(MIXED, 1)[0]
    for i, p in enumerate(MIXED.plan):
        b = word_bits(p)
        np.testing.assert_array_equal(trace[f"dW{i + 1}"], clean_trace[f"dW{i + 1}"])
        want = _signed(_unsigned(clean.weights[i], b) ^ expected[i], b)
        np.testing.assert_array_equal(faulty.weights[i], want)
        np.testing.assert_array_equal(trace[f"W{i + 1}"], want)
    assert any(np.any(np.abs(w) > p.w_max) for w, p in zip(faulty.weights, MIXED.plan))
    # The next update clips what the flips left beyond w_max.
    faulty.faults = None
    faulty.train_step(a0, labels, 0)
    assert all(np.all(np.abs(w) <= p.w_max) for w, p in zip(faulty.weights, MIXED.plan))


@pytest.mark.parametrize("rate", [1e-3, 3e-2])
def test_bits_flip_at_the_rate_asked(rate):
    config = Config(layers=(64, 32, 10), bit_error_rate=rate)
    faults = MemoryFaults.for_config(config)
    weights = [np.zeros((p.n_out, p.n_in), dtype=np.int32) for p in config.plan]
    steps = 40
    for _ in range(steps):
        faults.apply(weights)
    n = steps * 8 * config.n_weights
    p = fault_threshold(rate) / (2**32 - 1)
    assert abs(faults.flips - n * p) < 5 * math.sqrt(n * p * (1 - p)), faults.flips


def test_float_faults_flip_bits_at_the_rate_asked():
    faults = FloatFaults(1e-3, seed=5)
    arrays = [np.zeros((64, 32), dtype=np.float32), np.zeros(32, dtype=np.float32)]
    for _ in range(50):
        faults.apply(arrays)
    flipped = sum(int(np.unpackbits(a.view(np.uint8)).sum()) for a in arrays)
    assert flipped <= faults.flips  # a bit flipped twice is back
    n = 50 * 32 * (64 * 32 + 32)
    assert abs(faults.flips - n * 1e-3) < 5 * math.sqrt(n * 1e-3)


def test_fault_fields_are_validated_and_kept_out_of_fault_free_configs():
    for bad in (-0.1, 1.5, float("nan"), "often", True):
        with pytest.raises(ConfigError, match="bit_error_rate must be a probability"):
            Config(bit_error_rate=bad)
    c = Config(seed=5)
    assert c.fault_seed == 4 and "bit_error_rate" not in c.to_dict()
    assert c.replace(seed=6).fault_seed == 7
    f = Config(seed=5, bit_error_rate=1e-4, fault_seed=11)
    assert f.to_dict()["bit_error_rate"] == 1e-4 and f.to_dict()["fault_seed"] == 11
    assert Config.from_dict(f.to_dict()) == f


def test_the_command_line_reports_the_flips(tmp_path):
    report, cfg = tmp_path / "r.json", tmp_path / "c.toml"
    assert main(["train", "-q", "--epochs", "2", "--layers", "64,32,10", "--batch-size", "16",
                 "--bit-error-rate", "1e-3", "--report", str(report),
                 "--save-config", str(cfg)]) == 0
    r = json.loads(report.read_text())
    assert r["bit_error_rate"] == 1e-3 and r["config"]["bit_error_rate"] == 1e-3
    assert r["bit_flips"] > 0 and r["float_bit_flips"] > 0
    assert Config.load(cfg).bit_error_rate == 1e-3


@pytest.mark.parametrize("args, message", [
    (["--bit-error-rate", "2"], "bit_error_rate must be a probability from 0 to 1, not 2.0"),
    (["--bit-error-rate", "nan"], "bit_error_rate must be a probability"),
])
def test_bad_fault_options_end_in_one_line(args, message, capsys):
    assert main(["train", "-q", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error:") and message in err and err.count("\n") == 1

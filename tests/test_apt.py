"""APT mode: the rule on hand-made tensors, a run whose widths grow checked step by step against
an element-by-element statement of the rule, APT off unchanged, the config fields and the CLI."""

import json
from fractions import Fraction

import numpy as np
import pytest
from bench_helpers import load_bench
from test_golden_model import _ReferenceTrainer, _rl2

from intrain.cli import main
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.golden.apt import error_sums, metric_holds, next_width
from intrain.golden.arith import qe, qe_scale
from intrain.golden.model import GoldenModel


# ---------------------------------------------------------------------------------------------
# The rule on hand-made tensors
def _sums(x, k_e, mask=None):
    x = np.array(x, dtype=np.int64)
    e_max = (1 << (k_e - 1)) - 1
    e = qe(x, e_max) * (1 if mask is None else np.asarray(mask))
    return error_sums(x, e, qe_scale(x, e_max), mask)


def test_right_shift_takes_the_error_back_to_x_units():
    # max 10 -> k = RL2(10) = 3; kE = 2: shift 3 - 1 = 2, e = clip(round(x / 4), 1) = [1, -1, 0, 1]
    assert _sums([10, -3, 0, 7], 2) == (20, 3 * 4)
    assert not metric_holds(20, 12, (43, 2048))


def test_left_shift_takes_x_to_error_units():
    # max 3 -> k = 2; kE = 8: shift 2 - 7 = -5, e = 32 x exactly: no loss at all.
    assert _sums([3, -1, 2], 8) == (6 * 32, 6 * 32)
    assert metric_holds(192, 192, (43, 2048))
    # max 5 -> k = RL2(5) = 2: 5 * 32 = 160 saturates at 127.
    assert _sums([5, 1], 8) == (6 * 32, 127 + 32)
    assert not metric_holds(192, 159, (43, 2048))


def test_sums_count_only_the_masked_elements_and_zero_holds():
    # The scale comes from the whole tensor (max 10), S and S^ only from the kept elements.
    assert _sums([10, -3, 0, 7], 2, mask=[False, True, True, True]) == (10, 2 * 4)
    assert _sums([0, 0, 0], 4) == (0, 0)
    assert metric_holds(0, 0, (43, 2048)) and metric_holds(0, 0, (0, 1))


@pytest.mark.parametrize("s_hat, holds", [(2048 - 43, True), (2048 - 44, False),
                                          (2048 + 43, True), (2048 + 44, False),
                                          (2048, True)])
def test_metric_boundary_on_both_sides(s_hat, holds):
    assert metric_holds(2048, s_hat, (43, 2048)) is holds


def test_widths_grow_by_the_step_up_to_the_cap_and_never_shrink():
    assert next_width(4, True, 4, 16) == 4
    assert next_width(4, False, 4, 16) == 8
    assert next_width(14, False, 4, 16) == 16
    assert next_width(16, False, 4, 16) == 16
    assert next_width(12, False, 4, 10) == 12  # above the cap: stays, never shrinks


# ---------------------------------------------------------------------------------------------
# Training runs
GROW = dict(layers=(7, 6, 5, 3), bits="2-8-8-2", batch_size=4, rng_lanes=3, seed=7, apt=True,
            apt_step=3, apt_max=9)


def _batches(config, steps, seed=3):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        a0 = rng.integers(-127, 128, size=(config.batch_size, config.layers[0]))
        yield a0, rng.integers(0, config.layers[-1], size=config.batch_size)


def _expected_widths(config, widths, trace):
    """Next widths from one step's trace, the rule restated element by element."""
    n = len(widths)
    out = []
    for i in range(n):
        e = trace[f"E{i + 1}"]
        if i == n - 1:
            x = wide = trace["x_out"]
        else:
            wide = trace[f"R{i + 2}"] * trace[f"clipmask{i + 1}"]
            x = wide * trace[f"relumask{i + 1}"]
        m = int(np.abs(wide).max())
        s = int(np.abs(x).sum())
        s_hat = int(np.abs(e).sum()) * Fraction(2) ** (_rl2(m) - (widths[i] - 1)) if m else 0
        fails = m and abs(s - s_hat) > Fraction(43, 2048) * s
        out.append(min(widths[i] + config.apt_step, config.apt_max) if fails else widths[i])
    return out


def test_widths_grow_during_a_run_exactly_as_the_rule_says():
    config = Config(**GROW)
    model = GoldenModel(config)
    ref = _ReferenceTrainer(config, model.weights)
    widths, seen = [2, 2, 2], [[2, 2, 2]]
    for step, (a0, labels) in enumerate(_batches(config, 12)):
        # The reference quantizes every error at the widths in force before the step.
        ref.c = config.replace(bits=[f"2-8-8-{w}" for w in widths], apt=False)
        got = model.train_step(a0, labels, 0, record=True).trace
        want = ref.step(a0, labels, 0)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], np.array(value, dtype=np.int64),
                                          err_msg=f"step {step}, tensor {key}")
        got["x_out"] = model.output_error(got["out"], labels)
        widths = _expected_widths(config, widths, got)
        assert list(model.error_widths) == widths == model.apt.widths, f"step {step}"
        seen.append(widths)
    assert all(a <= b for s, t in zip(seen, seen[1:]) for a, b in zip(s, t))
    assert len({tuple(w) for w in seen}) >= 3, "the widths must change more than once"
    assert 9 in seen[-1], "some layer must reach apt_max"
    assert [(s, lay, w) for s, lay, w in model.apt.events if w == 9]


def test_apt_that_never_fails_is_bit_identical_to_apt_off():
    # |S - S^| <= S always (each kept element rounds to at most twice its value), so 1/1 holds.
    off = Config(**{**GROW, "apt": False})
    on = off.replace(apt=True, apt_threshold=(1, 1))
    m_off, m_on = GoldenModel(off), GoldenModel(on)
    assert m_off.apt is None
    for a0, labels in _batches(off, 6):
        t_off = m_off.train_step(a0, labels, 1, record=True).trace
        t_on = m_on.train_step(a0, labels, 1, record=True).trace
        assert t_off.keys() == t_on.keys()
        for key in t_off:
            np.testing.assert_array_equal(t_on[key], t_off[key], err_msg=key)
    assert m_on.error_widths == m_off.error_widths == (2, 2, 2) and not m_on.apt.events


def test_wide_errors_train_in_the_golden_model_on_digits():
    from intrain.data import load_digits
    from intrain.train import train

    config = Config(layers=(64, 32, 10), bits="2-8-8-4", batch_size=32, epochs=2, apt=True)
    report = train(config, load_digits(), float_baseline=False, progress=False)
    widths = report.extra["apt_widths"]
    assert len(widths) == 2 and max(widths[-1]) > 4
    assert report.extra["apt_events"] and report.test_accuracy > 0.5


# ---------------------------------------------------------------------------------------------
# Configuration and command line
def test_apt_fields_default_off_and_round_trip(tmp_path):
    c = Config()
    assert (c.apt, c.apt_threshold, c.apt_step, c.apt_max) == (False, (43, 2048), 4, 16)
    d = Config(apt=True, apt_threshold="3/100", apt_step=2, apt_max=12)
    assert d.apt_threshold == (3, 100)
    for suffix in (".toml", ".json"):
        d.save(tmp_path / f"c{suffix}")
        assert Config.load(tmp_path / f"c{suffix}") == d


@pytest.mark.parametrize("kwargs, match", [
    (dict(apt=1), "apt must be true or false"),
    (dict(apt_threshold="43"), "apt_threshold must be NUM/DEN"),
    (dict(apt_threshold=(1, 0)), "apt_threshold denominator must be an integer from 1"),
    (dict(apt_threshold="5/4"), "apt_threshold numerator must be an integer from 0 to 4"),
    (dict(apt_step=0), "apt_step must be an integer from 1 to 14"),
    (dict(apt_max=6), "apt_max must be an integer from 8 to 16, not 6"),
    (dict(apt_max=17), "apt_max must be an integer from 8 to 16, not 17"),
    (dict(layers=(4096, 10), batch_size=4096, apt=True), "acc_bits must be at least"),
])
def test_apt_config_mistakes_are_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Config(**kwargs)
    if "apt" in kwargs and kwargs["apt"] is True:
        Config(**{**kwargs, "apt": False})  # only the wide errors need the wider accumulators


def test_train_apt_reports_the_width_history(tmp_path, capsys):
    report, plot = tmp_path / "r.json", tmp_path / "p.png"
    assert main(["train", "-q", "--no-float", "--epochs", "2", "--layers", "64,32,10",
                 "--bits", "2-8-8-2", "--apt", "--apt-step", "3", "--apt-max", "11",
                 "--apt-threshold", "1/64", "--report", str(report), "--plot", str(plot)]) == 0
    assert "error widths kE (APT)" in capsys.readouterr().out
    r = json.loads(report.read_text())
    assert r["config"]["apt"] and r["config"]["apt_threshold"] == [1, 64]
    assert len(r["apt_widths"]) == 2 and all(2 < w <= 11 for w in r["apt_widths"][-1])
    assert all((w - 2) % 3 == 0 or w == 11 for w in r["apt_widths"][-1])
    assert all(w == r["apt_widths"][-1][lay - 1] or w < 11 for _, lay, w in r["apt_events"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--apt", "--backend", "board", "--board", "ulx3s-85f", "--port", "/dev/null"],
     "APT mode (--apt) runs on the golden and rtl backends"),
    (["--apt-threshold", "x"], "apt_threshold must be NUM/DEN"),
    (["--apt-max", "4"], "apt_max must be an integer from 8 to 16"),
])
def test_apt_mistakes_end_in_one_error_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-q", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error:") and message in err and err.count("\n") == 1


def test_bench_costs_come_from_the_engine_geometry_with_wide_operands():

    from intrain.hdl.engine import EngineGeometry

    bench = load_bench("apt")
    config = Config(bits="2-8-8-4", apt=True)
    step, mean, base = bench._step_costs(config, n_train=100, steps=4)
    assert step == base == EngineGeometry(Config()).train_cycles(64)
    # 2 steps per epoch: 64 samples, then 36.
    assert mean == (2 * step + 2 * EngineGeometry(config).train_cycles(36)) / 4

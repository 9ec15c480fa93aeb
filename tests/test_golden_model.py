"""The vectorised golden model equals a plain, element-by-element statement of SPEC.md section 4,
for every intermediate tensor of every step; and it learns."""

from fractions import Fraction
from math import floor

import numpy as np
import pytest

from intrain.config import Config
from intrain.data import load_digits
from intrain.golden.model import GoldenModel, _matmul, init_weights


# ---------------------------------------------------------------------------------------------
# A slow reference: Python integers and Fractions, loops over elements, written from the spec.
def _round(q: Fraction) -> int:
    return round(q)  # Fraction rounds half to even


def _clip(v, limit):
    return max(-limit, min(limit, v))


def _rl2(m):
    # round(log2 m): the k with |log2 m - k| smallest, i.e. 2**(k-1/2) <= m < 2**(k+1/2).
    k = 0
    while not (Fraction(m) ** 2 < Fraction(2) ** (2 * k + 1)):
        k += 1
    while Fraction(m) ** 2 < Fraction(2) ** (2 * k - 1):
        k -= 1
    return k


def _qe(x, e_max):
    flat = [v for row in x for v in row]
    m = max(abs(v) for v in flat)
    if m == 0:
        return [[0] * len(r) for r in x]
    k = _rl2(m)
    ke1 = (e_max + 1).bit_length() - 1
    return [[_clip(_round(Fraction(v) * Fraction(2) ** (ke1 - k)), e_max) for v in r] for r in x]


class _ReferenceTrainer:
    def __init__(self, config: Config, weights):
        self.c = config
        self.w = [[[int(v) for v in row] for row in w] for w in weights]
        self.states = list(config.rng_seeds)

    def _next_word(self, lane):
        word, self.states[lane] = self.c.lfsr.draw(self.states[lane])
        return word

    def step(self, a0, labels, lam):
        c, plan = self.c, self.c.plan
        tr = {}
        acts = [[[int(v) for v in row] for row in a0]]
        ts, clipm, relum = [], [], []
        for p, w in zip(plan, self.w):
            t = [[_clip(_round(Fraction(v, 2 ** p.t_shift)), p.t_max) for v in row] for row in w]
            ts.append(t)
            acc = [[sum(t[o][i] * a[i] for i in range(p.n_in)) for o in range(p.n_out)]
                   for a in acts[-1]]
            tr[f"acc{p.index}"] = acc
            if p.last:
                out = acc
                break
            sc = Fraction(2) ** -p.qa_shift
            acts.append([[min(p.a_max, _round(max(v, 0) * sc)) for v in r] for r in acc])
            clipm.append([[max(v, 0) <= p.a_max * Fraction(2) ** p.qa_shift for v in r]
                          for r in acc])
            relum.append([[v > 0 for v in r] for r in acc])
            tr[f"A{p.index}"] = acts[-1]
        x = [[v - (plan[-1].label if j == lab else 0) for j, v in enumerate(r)]
             for r, lab in zip(out, labels)]
        e = _qe(x, plan[-1].e_max)
        lanes = c.rng_lanes
        for li in reversed(range(len(plan))):
            p = plan[li]
            tr[f"E{p.index}"] = e
            a_in = acts[li]
            g = [[sum(e[b][o] * a_in[b][i] for b in range(len(e))) for i in range(p.n_in)]
                 for o in range(p.n_out)]
            tr[f"G{p.index}"] = g
            if li > 0:
                r = [[sum(e[b][o] * ts[li][o][i] for o in range(p.n_out)) for i in range(p.n_in)]
                     for b in range(len(e))]
                masked = [[v if m else 0 for v, m in zip(rr, mm)]
                          for rr, mm in zip(r, clipm[li - 1])]
                qe_ = _qe(masked, plan[li - 1].e_max)
                e_prev = [[v if m else 0 for v, m in zip(rr, mm)]
                          for rr, mm in zip(qe_, relum[li - 1])]
            u = [[None] * p.n_in for _ in range(p.n_out)]
            for o in range(p.n_out):
                for chunk in range(-(-p.n_in // lanes)):
                    for lane in range(lanes):
                        word = self._next_word(lane)
                        col = chunk * lanes + lane
                        if col < p.n_in:
                            u[o][col] = word
            m = max(abs(v) for row in g for v in row)
            dw = [[0] * p.n_in for _ in range(p.n_out)]
            if m:
                k = _rl2(m)
                for o in range(p.n_out):
                    for i in range(p.n_in):
                        mag = abs(Fraction(g[o][i]) * Fraction(2) ** (lam - k))
                        frac16 = floor((mag - floor(mag)) * 2 ** c.lfsr.draw_bits)
                        q = floor(mag) + (1 if frac16 > u[o][i] else 0)
                        dw[o][i] = q if g[o][i] > 0 else -q
            tr[f"dW{p.index}"] = dw
            self.w[li] = [[_clip(wv - d, p.w_max) for wv, d in zip(wr, dr)]
                          for wr, dr in zip(self.w[li], dw)]
            tr[f"W{p.index}"] = self.w[li]
            if li > 0:
                e = e_prev
        return tr


CASES = [
    dict(layers=(7, 5, 3), bits="2-8-8-8", batch_size=4, rng_lanes=3),
    dict(layers=(6, 9, 4, 3), bits="8-8-8-8", batch_size=3, rng_lanes=4),
    dict(layers=(5, 4, 2), bits=("3-6-10-5", "4-8-8-8"), batch_size=2, rng_lanes=1),
    dict(layers=(9, 3), bits="2-8-8-8", batch_size=5, rng_lanes=2, weight_clip="paper"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c["layers"])))
@pytest.mark.parametrize("lam", [-3, 0, 2])
def test_every_tensor_of_every_step_equals_the_elementwise_reference(case, lam):
    config = Config(seed=7, **case)
    model = GoldenModel(config)
    ref = _ReferenceTrainer(config, model.weights)
    rng = np.random.default_rng(3)
    in_max = (1 << (config.input_bits - 1)) - 1
    for step in range(6):
        b = config.batch_size - (step % 2)  # full and short batches
        a0 = rng.integers(-in_max, in_max + 1, size=(b, config.layers[0]))
        if step == 5:
            a0[:] = 0  # an all-zero input: zero gradients for the first layer
        labels = rng.integers(0, config.layers[-1], size=b)
        got = model.train_step(a0, labels, lam, record=True).trace
        want = ref.step(a0, labels, lam)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], np.array(value, dtype=np.int64),
                                          err_msg=f"step {step}, tensor {key}")
    assert [s for s in model.rng.state] == ref.states


def test_trace_records_every_intermediate_tensor():
    config = Config(layers=(4, 3, 3, 2), batch_size=2)
    tr = GoldenModel(config).train_step(np.ones((2, 4), dtype=np.int64), [0, 1], 0,
                                        record=True).trace
    for key in ["A0", "out", "T1", "T3", "acc1", "acc3", "A1", "A2", "clipmask1", "relumask2",
                "E1", "E3", "R2", "R3", "G1", "G3", "draws1", "dW2", "W1", "W3"]:
        assert key in tr, key
    assert "R1" not in tr and "A3" not in tr


def test_initial_weights_lie_on_the_forward_grid():
    config = Config(layers=(64, 256, 10))
    for p, w in zip(config.plan, init_weights(config)):
        assert set(np.unique(w)) == {-64, 0, 64}
        assert w.shape == (p.n_out, p.n_in)
    c8 = Config(layers=(64, 32, 10), bits="8-8-8-8")
    w = init_weights(c8)[0]
    assert np.abs(w).max() <= c8.plan[0].w_max and len(np.unique(w)) > 50


def test_same_config_gives_identical_training():
    config = Config(layers=(8, 6, 3), batch_size=4)
    rng = np.random.default_rng(0)
    a0 = rng.integers(-127, 128, size=(4, 8))
    labels = rng.integers(0, 3, size=4)
    m1, m2 = GoldenModel(config), GoldenModel(config)
    for _ in range(5):
        m1.train_step(a0, labels, 0)
        m2.train_step(a0, labels, 0)
    for w1, w2 in zip(m1.weights, m2.weights):
        np.testing.assert_array_equal(w1, w2)
    m3 = GoldenModel(config.replace(seed=1))
    assert any(not np.array_equal(a, b) for a, b in zip(m1.weights, m3.weights))


def test_batch_larger_than_configured_is_refused():
    model = GoldenModel(Config(layers=(4, 2), batch_size=2))
    with pytest.raises(ValueError, match="batch"):
        model.train_step(np.zeros((3, 4), dtype=np.int64), [0, 1, 0], 0)


def test_wide_products_fall_back_to_exact_integer_arithmetic():
    a = np.array([[2**40 + 1, 3]], dtype=np.int64)
    b = np.array([[2**20 + 1], [5]], dtype=np.int64)
    assert int(_matmul(a, b, 63)[0, 0]) == (2**40 + 1) * (2**20 + 1) + 15
    small = np.array([[3, -7]], dtype=np.int64)
    assert _matmul(small, np.array([[2], [1]]), 8).tolist() == [[-1]]


@pytest.mark.parametrize("bits", ["2-8-8-8", "8-8-8-8"])
def test_training_on_digits_clearly_raises_accuracy(bits):
    data = load_digits()
    config = Config(layers=(64, 128, 10), bits=bits, batch_size=16)
    a_train, a_test = data.quantize(8)
    model = GoldenModel(config)
    before, _ = model.evaluate(a_test, data.y_test)
    rng = np.random.default_rng(0)
    for epoch in range(4):
        perm = rng.permutation(data.n_train)
        for s in range(0, data.n_train, 16):
            idx = perm[s:s + 16]
            model.train_step(a_train[idx], data.y_train[idx], 0 if epoch < 3 else -1)
    after, _ = model.evaluate(a_test, data.y_test)
    assert before < 0.3
    assert after > 0.85, after


def test_float_baseline_learns_a_784_input_network_at_batch_8():
    """The float32 baseline's default rate scales with the first layer's fan-in past 64: at a
    flat 0.05, 784-32-10 at batch 8 on the digits at 28x28 diverges to chance."""
    from intrain.data import load_dataset
    from intrain.golden.float_trainer import FloatNet

    config = Config(layers=(784, 32, 10), batch_size=8, acc_bits=18)
    data = load_dataset("digits28")
    x_train, x_test = (a.astype(np.float32) / 128 for a in data.quantize(8))
    rng = np.random.default_rng(0)
    for lr, low, high in ((None, 0.85, 1.0), (0.05, 0.0, 0.3)):
        net = FloatNet(config.plan, seed=0, lr=lr)
        for _ in range(2):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), config.batch_size):
                idx = order[start:start + config.batch_size]
                net.train_step(x_train[idx], data.y_train[idx])
        assert low <= net.evaluate(x_test, data.y_test)[0] <= high, lr

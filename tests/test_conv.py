"""Convolution and max-pool layers (SPEC.md section 4b): the integer golden model against the
float64 restatement of ``golden/reference.py`` (direct loops), element for element, for every
tensor of every step; and the layout helpers of ``golden/conv.py`` against the same loops.

Real values and integer units differ by powers of two only, so every comparison is exact
(``assert_array_equal``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intrain.config import Config
from intrain.golden import conv
from intrain.golden import reference as ref
from intrain.golden.model import GoldenModel

pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


# ---------------------------------------------------------------------------------------------
# One training step in float64, from the reference's loops and quantizers
class _ReferenceStep:
    """The reference code's step for a network of convolutions, pools and FC layers, in real
    units (float64); the random draws are the integer model's (their layout is tested in
    test_golden_model.py and is the same for a convolution's ``c_out x c_in*k*k`` weights)."""

    def __init__(self, config: Config, weights):
        self.c = config
        self.w = [ref.to_real(w, p.bits.g) for p, w in zip(config.plan, weights)]

    def _weights(self, p, w):
        """Forward weights ``W(w) / alpha``, as 4-D kernels for a convolution."""
        t = ref.W(w, p.bits.w) / ref.alpha(p.n_in, p.bits.w)
        return t.reshape(p.n_out, p.in_shape[0], p.kernel, p.kernel) if p.conv else t

    def step(self, a0, labels, lam, draws):
        c, tr = self.c, {}
        acts = [ref.to_real(a0, c.input_bits)]
        saved = []
        for p, w in zip(c.plan, self.w):
            t = self._weights(p, w)
            x = acts[-1]
            if p.conv:
                out = ref.conv2d(x, t)
                tr[f"acc{p.index}"] = ref.scale_to_int(out, p.out_shift)
                where = None
                if p.pool > 1:
                    out, where = ref.max_pool(out, p.pool)
                    tr[f"pool{p.index}"] = ref.scale_to_int(out, p.out_shift)
                    tr[f"choice{p.index}"] = where[..., 0] * p.pool + where[..., 1]
            else:
                out = x.reshape(len(x), -1) @ t.T
                tr[f"acc{p.index}"] = ref.scale_to_int(out, p.out_shift)
            if p.last:
                saved.append((None, None, None))
                break
            h = ref.relu(out)
            acts.append(ref.QA(h, p.bits.a))
            tr[f"A{p.index}"] = ref.to_int(acts[-1], p.bits.a)
            tr[f"clipmask{p.index}"] = ref.clip_mask(h, p.bits.a)
            tr[f"relumask{p.index}"] = out > 0
            saved.append((where, ref.clip_mask(h, p.bits.a), out > 0))
        x = out.copy()
        x[np.arange(len(labels)), labels] -= 1.0
        e = ref.QE(x, c.plan[-1].bits.e)
        for i in reversed(range(len(c.plan))):
            p = c.plan[i]
            tr[f"E{p.index}"] = ref.to_int(e, p.bits.e)
            a_in = acts[i]
            t = ref.W(self.w[i], p.bits.w)  # the integer model's T, in real units
            if p.conv:
                dz = ref.unpool(e, saved[i][0], p.pool) if p.pool > 1 else e
                tr[f"dZ{p.index}"] = ref.to_int(dz, p.bits.e)
                g = ref.conv2d_weight_gradient(dz, a_in, p.kernel).reshape(p.n_out, -1)
                t4 = t.reshape(p.n_out, p.in_shape[0], p.kernel, p.kernel)
                r = ref.conv2d_transposed(dz, t4) if i else None
            else:
                g = e.T @ a_in.reshape(len(a_in), -1)
                r = (e @ t).reshape(acts[i].shape) if i else None
            in_bits = c.input_bits if i == 0 else c.plan[i - 1].bits.a
            tr[f"G{p.index}"] = ref.scale_to_int(g, p.bits.e - 1 + in_bits - 1)
            if i:
                tr[f"R{p.index}"] = ref.scale_to_int(r, p.bits.e - 1 + p.bits.w - 1)
                _, clipmask, relumask = saved[i - 1]
                e = ref.QE(r * clipmask, c.plan[i - 1].bits.e) * relumask
            dw = ref.QG(g, lam, p.bits.g, draws=draws[p.index], draw_bits=c.lfsr.draw_bits)
            tr[f"dW{p.index}"] = ref.to_int(dw, p.bits.g)
            clip = p.bits.w if c.weight_clip == "code" else p.bits.g
            self.w[i] = ref.update(self.w[i], dw, clip)
            tr[f"W{p.index}"] = ref.to_int(self.w[i], p.bits.g)
        return tr


CASES = [
    # kernel 3, pool, c_in = 1, conv then FC
    dict(layers="1x4x4,3C3,MP2,5", batch_size=2, rng_lanes=3),
    # two convolutions (c_in > 1), kernels 5 and 1, one without pool, two FC layers
    dict(layers="2x6x6,3C5,MP3,4C1,6,4", batch_size=3, rng_lanes=4),
    # full INT8, a 1x1 convolution and a pool that is the whole image, batch 1
    dict(layers="1x4x6,2C1,MP2,3C3,3", bits="8-8-8-8", batch_size=1, rng_lanes=2,
         weight_clip="paper"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["layers"])
@pytest.mark.parametrize("lam", [-2, 0, 3])
def test_every_tensor_of_a_conv_step_equals_the_float64_loops(case, lam):
    config = Config(seed=5, **case)
    model = GoldenModel(config)
    reference = _ReferenceStep(config, model.weights)
    rng = np.random.default_rng(lam + 7)
    in_max = (1 << (config.input_bits - 1)) - 1
    for step in range(3):
        b = config.batch_size - (step % 2 and config.batch_size > 1)
        # Few distinct values: ties in the pools and zeros in the sums happen.
        a0 = rng.integers(-in_max, in_max + 1, size=(b, *config.input_shape)) // 40 * 40
        labels = rng.integers(0, config.layers[-1], size=b)
        got = model.train_step(a0, labels, lam, record=True).trace
        draws = {p.index: got[f"draws{p.index}"] for p in config.plan}
        want = reference.step(a0, labels, lam, draws)
        assert any(np.any(got[f"choice{p.index}"] > 0) for p in config.plan if p.pool > 1)
        for key, value in want.items():
            assert got[key].shape == value.shape, key
            np.testing.assert_array_equal(got[key], value, err_msg=f"step {step}, {key}")
    for p in config.plan:
        assert got[f"draws{p.index}"].shape == (p.n_out, p.n_in)


def test_a_conv_model_takes_flat_or_image_batches_alike():
    config = Config(layers="1x4x4,2C3,MP2,3", batch_size=2)
    a0 = np.random.default_rng(1).integers(-127, 128, size=(2, 1, 4, 4))
    out_img = GoldenModel(config).train_step(a0, [0, 2], 0).out
    out_flat = GoldenModel(config).train_step(a0.reshape(2, 16), [0, 2], 0).out
    np.testing.assert_array_equal(out_img, out_flat)
    with pytest.raises(ValueError, match=r"a batch must be \(batch, 1, 4, 4\)"):
        GoldenModel(config).forward(np.zeros((2, 15)))


# ---------------------------------------------------------------------------------------------
# golden/conv.py against the loops, on random small shapes
@st.composite
def conv_cases(draw):
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3, 5]))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lim = draw(st.sampled_from([1, 3, 127]))
    a = rng.integers(-lim, lim + 1, size=(n, c, h, w))
    t = rng.integers(-lim, lim + 1, size=(o, c * k * k))
    dz = rng.integers(-lim, lim + 1, size=(n, o, h, w))
    return a, t, dz, k


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_conv_products_equal_the_loops(case):
    a, t, dz, k = case
    t4 = t.reshape(t.shape[0], a.shape[1], k, k)
    acc, cols = conv.conv_forward(a, t, k)
    np.testing.assert_array_equal(acc, ref.conv2d(a, t4))
    np.testing.assert_array_equal(conv.conv_gradient(dz, cols),
                                  ref.conv2d_weight_gradient(dz, a, k).reshape(t.shape))
    np.testing.assert_array_equal(conv.conv_transposed(dz, t, k, a.shape[1:]),
                                  ref.conv2d_transposed(dz, t4))


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_transposed_conv_and_gradient_are_the_adjoints_of_the_conv(case):
    a, t, dz, k = case
    acc, cols = conv.conv_forward(a, t, k)
    # <conv(a, t), dz> = <a, conv^T(dz, t)> = <t, G(dz, a)>, exactly in integers.
    lhs = int(np.sum(acc * dz))
    assert lhs == int(np.sum(a * conv.conv_transposed(dz, t, k, a.shape[1:])))
    assert lhs == int(np.sum(t * conv.conv_gradient(dz, cols)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), p=st.integers(2, 3), hp=st.integers(1, 3),
       wp=st.integers(1, 3), lim=st.sampled_from([0, 1, 2, 1000]), seed=st.integers(0, 2**32 - 1))
def test_max_pool_takes_the_first_maximum_and_unpool_routes_to_it(n, c, p, hp, wp, lim, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-lim, lim + 1, size=(n, c, hp * p, wp * p))  # small ranges: many ties
    pooled, choice = conv.max_pool(x, p)
    want, where = ref.max_pool(x, p)
    np.testing.assert_array_equal(pooled, want)
    np.testing.assert_array_equal(choice, where[..., 0] * p + where[..., 1])
    e = rng.integers(-5, 6, size=pooled.shape)
    np.testing.assert_array_equal(conv.unpool(e, choice, p), ref.unpool(e, where, p))


def test_max_pool_tie_goes_to_the_first_position_in_raster_order():
    x = np.array([[[[1, 7], [7, 7]]]])
    assert conv.max_pool(x, 2)[1].item() == 1
    np.testing.assert_array_equal(conv.unpool(np.array([[[[3]]]]), conv.max_pool(x, 2)[1], 2),
                                  [[[[0, 3], [0, 0]]]])


def test_im2col_and_col2im_are_adjoint_layouts():
    rng = np.random.default_rng(2)
    x = rng.integers(-9, 10, size=(2, 3, 4, 5))
    cols = conv.im2col(x, 3)
    assert cols.shape == (2 * 4 * 5, 3 * 9)
    # Row (b, y, x), column (c, i, j): A_pad[b, c, y + i, x + j].
    assert cols[(1 * 4 + 2) * 5 + 3, 2 * 9 + 0 * 3 + 1] == x[1, 2, 1, 3]
    assert cols[0, 0] == 0  # the window's corner lies on the padding
    y = rng.integers(-9, 10, size=cols.shape)
    assert int(np.sum(cols * y)) == int(np.sum(x * conv.col2im(y, x.shape, 3)))
    with pytest.raises(ValueError, match="odd"):
        conv.im2col(x, 2)


def test_wide_conv_gradients_are_summed_exactly():
    """A gradient bound beyond float32's exact range is summed in groups of samples."""
    config = Config(layers="1x8x8,2C3,10", batch_size=512)
    assert config.plan[0].acc_bits_gradient > 25
    model = GoldenModel(config)
    a0 = np.full((512, 1, 8, 8), 127)
    a0[:, :, ::3] = -127  # similar images, same label: the errors add up over the batch
    a0[np.random.default_rng(0).random(a0.shape) < 0.01] = 3
    tr = model.train_step(a0, np.zeros(512, dtype=np.int64), 0, record=True).trace
    want = conv.conv_gradient(tr["dZ1"], conv.im2col(a0.astype(np.int64), 3))
    assert np.abs(want).max() > 2**24 and np.any(want % 2)
    np.testing.assert_array_equal(tr["G1"], want)


# ---------------------------------------------------------------------------------------------
# The float32 baseline's backward pass is the gradient of its loss
def test_float_baseline_gradients_equal_finite_differences():
    from intrain.golden.float_trainer import FloatNet

    config = Config(layers="2x6x6,3C3,MP2,4C1,5,4")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 2, 6, 6))
    labels = np.array([0, 3, 1])
    net = FloatNet(config.plan, seed=1, weight_decay=0.0)
    net.w = [w.astype(np.float64) for w in net.w]
    net.b = [rng.normal(size=b.shape) * 0.1 for b in net.b]
    before = [w.copy() for w in net.w]
    lr = 1e-3

    def loss():
        return float(net._softmax_ce(net.logits(x).astype(np.float64), labels)[1].mean())

    probe = FloatNet(config.plan, seed=1, weight_decay=0.0)
    probe.w, probe.b = [w.copy() for w in net.w], [b.copy() for b in net.b]
    probe.train_step(x, labels, lr_scale=lr / float(probe.lr))
    for i, w in enumerate(net.w):
        grad = (before[i] - probe.w[i]) / lr
        for idx in zip(*(rng.integers(0, n, 4) for n in w.shape)):
            w[idx] += 1e-6
            up = loss()
            w[idx] -= 2e-6
            down = loss()
            w[idx] += 1e-6
            assert grad[idx] == pytest.approx((up - down) / 2e-6, rel=1e-3, abs=1e-7), (i, idx)


def test_a_small_conv_network_learns_the_digits_in_both_trainers():
    from intrain.data import load_digits
    from intrain.golden.float_trainer import FloatNet

    data = load_digits()
    config = Config(layers="1x8x8,16C3,16C3,MP2,10", batch_size=16)
    a_train, a_test = data.quantize(8, config.input_shape)
    model, fmodel = GoldenModel(config), FloatNet(config.plan)
    before, _ = model.evaluate(a_test, data.y_test)
    rng = np.random.default_rng(0)
    for _epoch in range(3):
        perm = rng.permutation(data.n_train)
        for s in range(0, data.n_train, 16):
            idx = perm[s:s + 16]
            model.train_step(a_train[idx], data.y_train[idx], 1)
            fmodel.train_step(a_train[idx] / 128, data.y_train[idx])
    after, _ = model.evaluate(a_test, data.y_test)
    assert before < 0.3 and after > 0.7, (before, after)
    assert fmodel.evaluate(a_test / 128, data.y_test)[0] > 0.9

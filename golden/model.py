"""The integer golden model: a network trained as SPEC.md sections 4 and 4b say.

Integers only: every tensor is an int64 array. Matrix products run through float64 BLAS, which
is exact while every partial sum stays below 2**53; :class:`intrain.config.LayerPlan` bounds every
accumulator, and a layer whose bound could reach 2**53 falls back to NumPy's integer product.

Tensors are laid out as the hardware sees them: activations and errors ``(batch, features)``,
stored weights ``(n_out, n_in)``. Convolution layers (:mod:`intrain.golden.conv`) keep their
activations and errors as ``(batch, C, H, W)`` and their weights as ``c_out`` rows of
``c_in * k * k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from intrain.config import Config
from intrain.golden.apt import AptState
from intrain.golden.arith import forward_weights, qa, qe, qg, update_weights
from intrain.golden.conv import (
    batch_limit,
    conv_forward,
    conv_gradient,
    conv_transposed,
    max_pool,
    unpool,
)
from intrain.golden.faults import MemoryFaults
from intrain.golden.lfsr import LfsrBank

__all__ = ["GoldenModel", "StepResult", "init_weights", "int_dtype"]

def int_dtype(bits: int):
    """The NumPy integer type for signed values of ``bits`` bits, with a bit of headroom for the
    rounding adder: int32 is several times faster than int64 for shifts."""
    return np.int32 if bits <= 30 else np.int64


def _matmul(a, b, bound_bits: int):
    """Exact integer product ``a @ b`` of integer arrays whose products and partial sums all fit
    a signed ``bound_bits``-bit integer: float32 BLAS below 2**24, float64 below 2**53 (every
    intermediate value is then an exactly representable integer, whatever the summation order),
    else NumPy's integer product. The result has type :func:`int_dtype` of ``bound_bits``."""
    out = int_dtype(bound_bits)
    if bound_bits <= 25:
        return (a.astype(np.float32, copy=False) @ b.astype(np.float32, copy=False)).astype(out)
    if bound_bits <= 54:
        return (a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False)).astype(out)
    return (a.astype(np.int64) @ b.astype(np.int64)).astype(out)


def init_weights(config: Config) -> list[np.ndarray]:
    """Stored weights at the start: ``U(-L, L)`` with ``L = max(L_min, L_init)``, quantized to the
    kW grid (``Q(C(W, kW), kW)``) and expressed in units of ``2 ** (1 - kG)``."""
    rng = np.random.default_rng(config.seed)
    weights = []
    for p in config.plan:
        w = rng.uniform(-p.init_limit, p.init_limit, size=(p.n_out, p.n_in))
        scale = 1 << (p.bits.w - 1)
        t = np.clip(np.rint(w * scale), -p.t_max, p.t_max).astype(np.int64)
        weights.append(np.clip(t << p.t_shift, -p.w_max, p.w_max))
    return weights


@dataclass
class StepResult:
    """What one training step produced.

    Attributes
    ----------
    out : ndarray
        Output accumulators ``(batch, n_classes)`` of the forward pass (before the update).
    loss : float
        SSE ``0.5 * sum((out_real - onehot) ** 2)`` over the batch (for reporting only).
    correct : int
        Samples whose ``argmax(out)`` equals the label.
    trace : dict
        Every intermediate tensor when the step was recorded (else empty); keys are listed in
        :meth:`GoldenModel.train_step`.
    """

    out: np.ndarray
    loss: float
    correct: int
    trace: dict = field(default_factory=dict)


class GoldenModel:
    """Bit-exact integer trainer built from a :class:`~intrain.config.Config`.

    Parameters
    ----------
    config : Config
        The trainer's definition.
    weights : list of ndarray, optional
        Stored weights per layer ``(n_out, n_in)``; by default :func:`init_weights`.
    """

    def __init__(self, config: Config, weights=None):
        self.config = config
        self.plan = config.plan
        if weights is None:
            weights = init_weights(config)
        self.weights = [np.array(w, dtype=int_dtype(p.bits.g + 1))
                        for p, w in zip(config.plan, weights, strict=True)]
        for p, w in zip(self.plan, self.weights, strict=True):
            if w.shape != (p.n_out, p.n_in):
                raise ValueError(f"layer {p.index} weights must be {(p.n_out, p.n_in)}, "
                                 f"not {w.shape}")
        self.rng = LfsrBank(config.lfsr, config.rng_seeds)
        self.faults = MemoryFaults.for_config(config)  # None without bit_error_rate
        self.steps = 0
        self.apt = AptState(config) if config.apt else None
        # Draws per layer update, and where each layer's draws start in a step's draws.
        self._draw_counts = [config.draws_per_update(p) for p in self.plan]
        offsets, o = [0] * len(self.plan), 0
        for i in reversed(range(len(self.plan))):
            offsets[i], o = o, o + self._draw_counts[i]
        self._draw_offsets = offsets
        self._draws_per_step = o
        self._recompute_index = {p.index: config.recompute_draws(p) for p in self.plan
                                 if p.index in config.recompute_gradients}

    @property
    def error_widths(self) -> tuple[int, ...]:
        """``kE_l`` of every layer for the next step (APT mode grows them: :attr:`apt`)."""
        return tuple(p.bits.e for p in self.plan)

    # ------------------------------------------------------------------------------------------
    def forward_weights(self) -> list[np.ndarray]:
        """The forward/backward view ``T`` of every layer."""
        return [forward_weights(w, p.t_shift, p.t_max) for p, w in zip(self.plan, self.weights)]

    def _batch(self, a0) -> np.ndarray:
        """Inputs as int32 ``(batch, n_in)``, or ``(batch, C, H, W)`` for a network that starts
        with a convolution (a flat ``(batch, C * H * W)`` batch is folded)."""
        a = np.asarray(a0, dtype=np.int32)
        shape = self.config.input_shape or (self.config.n_inputs,)
        if a.ndim < 2 or a.shape[1:] not in (shape, (self.config.n_inputs,)):
            raise ValueError(f"a batch must be (batch, {', '.join(map(str, shape))}) inputs, "
                             f"not {a.shape}")
        return a.reshape(len(a), *shape)

    def _layer_forward(self, p, x, t):
        """Layer ``p`` on float32 inputs ``x``: ``(z, acc, saved)``, the accumulators after the
        pool (QA's input), the wide accumulators and what the backward pass needs."""
        if not p.conv:
            acc = _matmul(x.reshape(len(x), -1), t.T, p.acc_bits_forward)
            return acc, acc, None
        acc, cols = conv_forward(x, t, p.kernel, partial(_matmul, bound_bits=p.acc_bits_forward))
        z, choice = max_pool(acc, p.pool) if p.pool > 1 else (acc, None)
        return z, acc, (cols, choice)

    def _forward(self, a0, ts, keep: bool):
        a = np.asarray(a0, dtype=np.int32)
        # Activations as integers (for the trace) and as float32 for the products (exact: every
        # activation is far below 2**24), converted once per step.
        acts, facts, clipmasks, relumasks, accs = [a], [a.astype(np.float32)], [], [], []
        saved = []
        for p, t in zip(self.plan, ts):
            z, acc, keep_p = self._layer_forward(p, facts[-1], t)
            saved.append(keep_p)
            if keep:
                accs.append((acc, z))
            if p.last:
                return acc, acts, facts, clipmasks, relumasks, accs, saved
            a, clipmask = qa(z, p.qa_shift, p.a_max)
            acts.append(a)
            facts.append(a.astype(np.float32))
            clipmasks.append(clipmask)
            relumasks.append(z > 0)
        raise AssertionError("unreachable: the last layer returns")

    def forward(self, a0) -> np.ndarray:
        """Output accumulators ``OUT`` for inputs ``A_0`` ``(batch, n_in)`` (or images)."""
        return self._forward(self._batch(a0), self.forward_weights(), keep=False)[0]

    def predict(self, a0) -> np.ndarray:
        """``argmax(OUT)`` per sample (first index on ties)."""
        return np.argmax(self.forward(a0), axis=1)

    def output_error(self, out, labels):
        """``OUT - label * onehot``, before QE."""
        p = self.plan[-1]
        x = out.copy()
        x[np.arange(len(labels)), labels] -= p.label
        return x

    def loss(self, out, labels) -> float:
        """SSE of the batch in real units (float64; reporting only)."""
        return 0.5 * float(np.sum(self.output_error(out, labels).astype(np.float64) ** 2)) \
            / float(self.plan[-1].label) ** 2

    def train_step(self, a0, labels, lam: int, record: bool = False) -> StepResult:
        """One complete training step: forward, output error, backward, gradient, update.

        Parameters
        ----------
        a0 : ndarray
            Quantized inputs ``(batch, n_in)``, at most ``config.batch_size`` rows.
        labels : ndarray
            Class of each sample.
        lam : int
            Learning rate ``2 ** lam``.
        record : bool
            Keep every intermediate tensor in ``StepResult.trace``: ``A0`` and, per layer ``l``
            (1-based), ``T{l}`` (forward weights used), ``acc{l}``, ``A{l}``/``clipmask{l}``/
            ``relumask{l}`` (hidden layers), ``E{l}`` (the quantized error at the layer's
            output), ``R{l}`` (``E{l} . T{l}``, for ``l > 1``), ``G{l}``, ``draws{l}``, ``dW{l}``,
            ``W{l}`` (stored weights after the update); ``out``, ``qe_scale{l}`` and
            ``qg_shift{l}`` (``None`` where the tensor was all zero). With memory faults,
            ``flips{l}`` (each word's flipped bits) and ``W{l}`` after the flips.
            A convolution layer's tensors keep their ``(batch, C, H, W)`` shape: ``acc{l}`` before
            the pool, ``pool{l}`` after it and ``choice{l}`` (each window's first maximum,
            ``i * p + j``) where it has one, ``dZ{l}`` (``E{l}`` unpooled); ``R{l}`` has the
            shape of layer ``l - 1``'s output.
        """
        labels = np.asarray(labels, dtype=np.int64)
        a0 = self._batch(a0)
        if len(a0) != len(labels) or not 1 <= len(a0) <= self.config.batch_size:
            raise ValueError(f"a batch must be 1..{self.config.batch_size} inputs with one "
                             f"label each, not {a0.shape} and {labels.shape}")
        ts = [forward_weights(w, p.t_shift, p.t_max, np.float32)
              for p, w in zip(self.plan, self.weights)]
        out, acts, facts, clipmasks, relumasks, accs, saved = self._forward(a0, ts, keep=record)
        err = self.output_error(out, labels)
        label = float(self.plan[-1].label)
        flat = err.astype(np.float64).ravel()
        loss = 0.5 * float(np.dot(flat, flat)) / label**2
        result = StepResult(out=out, loss=loss,
                            correct=int(np.count_nonzero(out.argmax(axis=1) == labels)))
        trace = result.trace
        n = len(self.plan)
        e = qe(err, self.plan[-1].e_max)
        if self.apt is not None:
            self.apt.measure(n - 1, err, e)
        # All draws of the step at once: layers are updated from the last to the first.
        words = self.rng.draw(self._draws_per_step)
        if record:
            trace["A0"] = a0
            trace["out"] = out
            for i in range(n):
                trace[f"T{i + 1}"] = ts[i].astype(np.int64)
                trace[f"acc{i + 1}"] = accs[i][0]
                if self.plan[i].pool > 1:
                    trace[f"pool{i + 1}"], trace[f"choice{i + 1}"] = accs[i][1], saved[i][1]
                if i < n - 1:
                    trace[f"A{i + 1}"] = acts[i + 1]
                    trace[f"clipmask{i + 1}"] = clipmasks[i]
                    trace[f"relumask{i + 1}"] = relumasks[i]
        for i in reversed(range(n)):
            p = self.plan[i]
            a_in = facts[i]
            if record:
                trace[f"E{i + 1}"] = e
            fe = e.astype(np.float32)
            g, r, dz = self._layer_backward(p, fe, a_in, ts[i], saved[i], i > 0)
            if record and dz is not None:
                trace[f"dZ{i + 1}"] = dz.astype(np.int64)
            e_prev = None
            if i > 0:
                r = r.reshape(clipmasks[i - 1].shape)
                masked = r * clipmasks[i - 1] if record else np.multiply(r, clipmasks[i - 1], out=r)
                e_prev = qe(masked, self.plan[i - 1].e_max)
                e_prev *= relumasks[i - 1]
                if self.apt is not None:
                    self.apt.measure(i - 1, masked, e_prev, relumasks[i - 1])
                if record:
                    trace[f"R{i + 1}"] = r
            o = self._draw_offsets[i]
            draws = self._layer_draws(p, words[o:o + self._draw_counts[i]])
            if g.dtype == np.int32 and lam + self.config.lfsr.draw_bits > 28:
                g = g.astype(np.int64)  # the aligned magnitude in QG could pass 2**31
            dw = qg(g, lam, draws, self.config.lfsr.draw_bits)
            self.weights[i] = update_weights(self.weights[i], dw, p.w_max).astype(
                self.weights[i].dtype, copy=False)
            if record:
                trace[f"G{i + 1}"] = g
                trace[f"draws{i + 1}"] = draws
                trace[f"dW{i + 1}"] = dw
                trace[f"W{i + 1}"] = self.weights[i].copy()
            e = e_prev
        if self.apt is not None and self.apt.end_step(self.steps):
            self.plan = self.apt.plan
        if self.faults is not None:
            self.faults.apply(self.weights, trace if record else None)
        self.steps += 1
        return result

    def _layer_draws(self, p, words):
        """The draw of every weight of layer ``p`` (``n_out x n_in``) from its ``words`` (one
        row of lane words per draw, in the order of :meth:`Config.draws_per_update`)."""
        if p.index not in self.config.recompute_gradients:
            # (n_out * chunks, lanes) words in visiting order -> one word per stored weight,
            # which a channel-last convolution stores in another column order.
            draws = words.reshape(p.n_out, -1)[:, :p.n_in]
            if p.stored_columns is None:
                return draws
            out = np.empty_like(draws)
            out[:, list(p.stored_columns)] = draws
            return out
        index = self._recompute_index[p.index]
        cols = self.config.array_cols
        return words[index][:, :, :cols].reshape(p.n_out, -1)[:, :p.n_in]

    def _layer_backward(self, p, fe, a_in, t, saved, need_r: bool):
        """Layer ``p``'s gradient ``G`` ``(n_out, n_in)``, the error ``R`` it sends back (if
        ``need_r``) and, for a convolution, ``dZ`` (the float32 error unpooled)."""
        if not p.conv:
            g = _matmul(fe.T, a_in.reshape(len(a_in), -1), p.acc_bits_gradient)
            return g, _matmul(fe, t, p.acc_bits_backward) if need_r else None, None
        cols, choice = saved
        dz = unpool(fe, choice, p.pool) if p.pool > 1 else fe
        # Sum G over groups of samples whose products stay exact in float32 (below 2**24).
        wide = p.acc_bits_gradient - 25
        samples = self.config.batch_size >> max(wide, 0)
        if wide <= 0 or samples < 1:
            samples, bits = None, p.acc_bits_gradient
        g = conv_gradient(dz, cols, partial(_matmul, bound_bits=25 if samples else bits), samples)
        g = g.astype(int_dtype(p.acc_bits_gradient), copy=False)
        r = None
        if need_r:
            # Exact float32 sums where the bound allows: one conversion of the result.
            exact = np.matmul if p.acc_bits_backward <= 25 else partial(
                _matmul, bound_bits=p.acc_bits_backward)
            r = conv_transposed(dz, t, p.kernel, p.in_shape, exact).astype(
                int_dtype(p.acc_bits_backward), copy=False)
        return g, r, dz

    def evaluate(self, a0, labels, batch: int = 1024) -> tuple[float, float]:
        """``(accuracy, mean SSE loss per sample)`` over a data set, without training."""
        labels = np.asarray(labels)
        correct, loss = 0, 0.0
        batch = batch_limit(self.plan, batch)
        for s in range(0, len(labels), batch):
            out = self.forward(a0[s:s + batch])
            correct += int(np.sum(np.argmax(out, axis=1) == labels[s:s + batch]))
            loss += self.loss(out, labels[s:s + batch])
        return correct / max(1, len(labels)), loss / max(1, len(labels))

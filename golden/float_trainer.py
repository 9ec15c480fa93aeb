"""The float32 baseline: the same network trained with a conventional recipe.

Fully connected and convolution layers (SPEC.md section 4b's geometry: SAME padding, max-pool
after the convolution, :mod:`intrain.golden.conv`) with biases, ReLU, softmax cross-entropy,
SGD with momentum, He initialisation; float32 throughout. It is the accuracy a user would
otherwise get, trained in the same run on the same split as the integer model, and never part
of the integer path.
"""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np

from intrain.golden.conv import (
    batch_limit,
    conv_forward,
    conv_gradient,
    conv_transposed,
    max_pool,
    unpool,
)
from intrain.golden.faults import FloatFaults

__all__ = ["FloatNet", "FloatMLP"]


class FloatNet:
    """A float32 network of convolution, max-pool and fully connected layers.

    Parameters
    ----------
    plan : sequence of LayerPlan
        The layers (:attr:`intrain.config.Config.plan`: ``n_in``, ``n_out``, ``kernel``,
        ``pool``, ``in_shape``); a convolution's weights are ``n_out`` rows of ``n_in``.
    seed : int
        Seeds the initial weights.
    lr : float, optional
        SGD learning rate (per mean-over-batch gradient); unset: 0.05, or 0.01 for a network
        with convolutions (Caffe's LeNet recipe: at 0.05 LeNet-5's ReLUs die in the first
        epoch); a fully connected network of more than 64 inputs takes ``0.05 * 64 / n_in``
        (the step an update makes in the first layer's outputs grows with the input's length:
        784-32-10 on the digits at 28x28 diverges at 0.05 with batch 8, and reaches the same
        accuracy at the scaled rate with batch 64).
    momentum : float
        SGD momentum.
    weight_decay : float
        L2 penalty added to the weight gradients.
    bit_error_rate : float
        Memory faults: after every step each bit of every stored weight and bias flips with
        this probability (:class:`~intrain.golden.faults.FloatFaults`, seeded ``fault_seed``).
    """

    def __init__(self, plan, seed: int = 0, lr: float | None = None, momentum: float = 0.9,
                 weight_decay: float = 1e-4, bit_error_rate: float = 0.0, fault_seed: int = 1):
        rng = np.random.default_rng(seed)
        self.plan = tuple(plan)
        if lr is None:
            lr = 0.01 if any(p.kernel for p in self.plan) \
                else 0.05 * min(1.0, 64 / self.plan[0].n_in)
        # Fully connected weights are (n_in, n_out), convolutions (n_out, n_in).
        self.w = [(rng.standard_normal((p.n_out, p.n_in) if p.kernel else (p.n_in, p.n_out))
                   * np.sqrt(2.0 / p.n_in)).astype(np.float32) for p in self.plan]
        self.b = [np.zeros(p.n_out, dtype=np.float32) for p in self.plan]
        self.vw = [np.zeros_like(w) for w in self.w]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.lr = np.float32(lr)
        self.momentum = np.float32(momentum)
        self.weight_decay = np.float32(weight_decay)
        self.faults = FloatFaults(bit_error_rate, fault_seed) if bit_error_rate else None

    def _quiet(self):
        """Flipped exponent bits bring infinities and NaN: carried silently."""
        return np.errstate(all="ignore") if self.faults is not None else nullcontext()

    def _forward(self, x):
        """Every layer's input and, per layer, what its backward pass needs."""
        acts, saved = [x], []
        for i, (p, w, b) in enumerate(zip(self.plan, self.w, self.b)):
            if p.kernel:
                z, cols = conv_forward(acts[-1], w, p.kernel)
                z += b[:, None, None]
                choice = None
                if p.pool > 1:
                    z, choice = max_pool(z, p.pool)
                saved.append((cols, choice))
            else:
                z = acts[-1].reshape(len(x), -1) @ w + b
                saved.append(None)
            if i < len(self.w) - 1:
                z = np.maximum(z, 0)
            acts.append(z)
        return acts, saved

    def logits(self, x) -> np.ndarray:
        return self._forward(np.asarray(x, dtype=np.float32))[0][-1]

    def predict(self, x) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)

    @staticmethod
    def _softmax_ce(z, labels):
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        idx = np.arange(len(labels))
        loss = -np.log(np.maximum(p[idx, labels], np.float32(1e-12)))
        return p, loss

    def _gradients(self, i, d, acts, saved):
        """Layer ``i``'s weight and bias gradients for the error ``d`` at its output (after the
        pool), and the error at its input (None for the first layer)."""
        p, w = self.plan[i], self.w[i]
        if not p.kernel:
            a = acts[i].reshape(len(d), -1)
            back = (d @ w.T).reshape(acts[i].shape) if i else None
            return a.T @ d, d.sum(axis=0), back
        cols, choice = saved[i]
        dz = unpool(d, choice, p.pool) if p.pool > 1 else d
        back = conv_transposed(dz, w, p.kernel, p.in_shape) if i else None
        return conv_gradient(dz, cols), dz.sum(axis=(0, 2, 3)), back

    def train_step(self, x, labels, lr_scale: float = 1.0) -> tuple[float, int]:
        """One SGD step on a batch (then the memory faults); returns ``(summed loss, correct
        predictions)``."""
        with self._quiet():
            result = self._step(x, labels, lr_scale)
            if self.faults is not None:
                self.faults.apply(self.w + self.b)
        return result

    def _step(self, x, labels, lr_scale):
        x = np.asarray(x, dtype=np.float32)
        labels = np.asarray(labels)
        acts, saved = self._forward(x)
        p, loss = self._softmax_ce(acts[-1], labels)
        correct = int(np.sum(np.argmax(acts[-1], axis=1) == labels))
        d = p
        d[np.arange(len(labels)), labels] -= 1
        d /= np.float32(len(labels))
        lr = self.lr * np.float32(lr_scale)
        for i in reversed(range(len(self.w))):
            gw, gb, back = self._gradients(i, d, acts, saved)
            gw += self.weight_decay * self.w[i]
            if i > 0:
                d = back * (acts[i] > 0)
            self.vw[i] = self.momentum * self.vw[i] + gw
            self.vb[i] = self.momentum * self.vb[i] + gb
            self.w[i] -= lr * self.vw[i]
            self.b[i] -= lr * self.vb[i]
        return float(loss.sum()), correct

    def evaluate(self, x, labels, batch: int = 1024) -> tuple[float, float]:
        """``(accuracy, mean cross-entropy per sample)``, in batches of at most ``batch``
        (fewer for a convolution: :func:`~intrain.golden.conv.batch_limit`)."""
        labels = np.asarray(labels)
        correct, loss = 0, 0.0
        batch = batch_limit(self.plan, batch)
        for s in range(0, len(labels), batch):
            with self._quiet():
                z = self.logits(x[s:s + batch])
                loss += float(self._softmax_ce(z, labels[s:s + batch])[1].sum())
            correct += int(np.sum(np.argmax(z, axis=1) == labels[s:s + batch]))
        return correct / max(1, len(labels)), loss / max(1, len(labels))


class FloatMLP(FloatNet):
    """A :class:`FloatNet` of fully connected layers given by their sizes (input to output)."""

    def __init__(self, layers, **kwargs):
        plan = [SimpleNamespace(n_in=a, n_out=b, kernel=0) for a, b in zip(layers, layers[1:])]
        super().__init__(plan, **kwargs)

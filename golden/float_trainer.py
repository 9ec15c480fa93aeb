"""The float32 baseline: the same network trained with a conventional recipe.

Fully connected layers with biases, ReLU, softmax cross-entropy, SGD with momentum, He
initialisation; float32 throughout. It is the accuracy a user would otherwise get, trained in
the same run on the same split as the integer model, and never part of the integer path.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from intrain.golden.faults import FloatFaults

__all__ = ["FloatMLP"]


class FloatMLP:
    """A float32 multilayer perceptron.

    Parameters
    ----------
    layers : sequence of int
        Layer sizes from input to output.
    seed : int
        Seeds the initial weights.
    lr : float
        SGD learning rate (per mean-over-batch gradient).
    momentum : float
        SGD momentum.
    weight_decay : float
        L2 penalty added to the weight gradients.
    bit_error_rate : float
        Memory faults: after every step each bit of every stored weight and bias flips with
        this probability (:class:`~intrain.golden.faults.FloatFaults`, seeded ``fault_seed``).
    """

    def __init__(self, layers, seed: int = 0, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 1e-4, bit_error_rate: float = 0.0, fault_seed: int = 1):
        rng = np.random.default_rng(seed)
        self.w = [(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
                  for n_in, n_out in zip(layers[:-1], layers[1:])]
        self.b = [np.zeros(n_out, dtype=np.float32) for n_out in layers[1:]]
        self.vw = [np.zeros_like(w) for w in self.w]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.lr = np.float32(lr)
        self.momentum = np.float32(momentum)
        self.weight_decay = np.float32(weight_decay)
        self.faults = FloatFaults(bit_error_rate, fault_seed) if bit_error_rate else None

    def _forward(self, x):
        acts = [x]
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            z = acts[-1] @ w + b
            if i < len(self.w) - 1:
                z = np.maximum(z, 0)
            acts.append(z)
        return acts

    def logits(self, x) -> np.ndarray:
        return self._forward(np.asarray(x, dtype=np.float32))[-1]

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

    def _quiet(self):
        """Flipped exponent bits bring infinities and NaN: carried silently."""
        return np.errstate(all="ignore") if self.faults is not None else nullcontext()

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
        acts = self._forward(x)
        p, loss = self._softmax_ce(acts[-1], labels)
        correct = int(np.sum(np.argmax(acts[-1], axis=1) == labels))
        d = p
        d[np.arange(len(labels)), labels] -= 1
        d /= np.float32(len(labels))
        lr = self.lr * np.float32(lr_scale)
        for i in reversed(range(len(self.w))):
            gw = acts[i].T @ d + self.weight_decay * self.w[i]
            gb = d.sum(axis=0)
            if i > 0:
                d = (d @ self.w[i].T) * (acts[i] > 0)
            self.vw[i] = self.momentum * self.vw[i] + gw
            self.vb[i] = self.momentum * self.vb[i] + gb
            self.w[i] -= lr * self.vw[i]
            self.b[i] -= lr * self.vb[i]
        return float(loss.sum()), correct

    def evaluate(self, x, labels) -> tuple[float, float]:
        """``(accuracy, mean cross-entropy per sample)``."""
        with self._quiet():
            z = self.logits(x)
            _, loss = self._softmax_ce(z, np.asarray(labels))
        return float(np.mean(np.argmax(z, axis=1) == labels)), float(loss.mean())

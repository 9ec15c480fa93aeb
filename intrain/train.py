"""Training runs: the integer trainer and the float32 baseline on the same data, side by side.

:func:`train` drives any backend that offers the golden model's interface
(``train_step(a0, labels, lam) -> StepResult`` and ``evaluate(a0, labels) -> (acc, loss)``):
the golden model today, the simulated RTL and the board later. Both trainers see the same
quantized inputs in the same order.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from intrain.config import Config
from intrain.data import Dataset
from intrain.errors import ConfigError
from intrain.golden.float_trainer import FloatNet
from intrain.golden.model import GoldenModel

__all__ = ["EpochStats", "TrainReport", "train", "batches"]


#: The rtl and board backends' recipe for short runs, where neither a config file nor an option
#: says otherwise: 8 epochs, the learning rate 2**2, 2**1 from epoch 4, 2**0 from epoch 6; on the
#: simulated engine (whose batch is free) batches of 32 (more steps per epoch).
RTL_EPOCHS = 8
RTL_LR = ((0, 2), (4, 1), (6, 0))
RTL_BATCH = 32

@dataclass
class EpochStats:
    """Per-epoch figures (losses are means per sample: SSE for integer, cross-entropy for float)."""

    epoch: int
    lam: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    float_train_loss: float | None = None
    float_train_accuracy: float | None = None
    float_test_accuracy: float | None = None


@dataclass
class TrainReport:
    """What a training run measured; :meth:`to_dict` is the ``--report`` JSON."""

    backend: str
    dataset: str
    n_train: int
    n_test: int
    config: Config
    test_accuracy: float = 0.0
    train_accuracy: float = 0.0
    float_test_accuracy: float | None = None
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    float_train_seconds: float | None = None
    float_samples_per_second: float | None = None
    steps: int = 0
    samples_trained: int = 0
    history: list[EpochStats] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "backend": self.backend,
            "dataset": self.dataset,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "test_accuracy": self.test_accuracy,
            "train_accuracy": self.train_accuracy,
            "float_test_accuracy": self.float_test_accuracy,
            "train_seconds": self.train_seconds,
            "samples_per_second": self.samples_per_second,
            "float_train_seconds": self.float_train_seconds,
            "float_samples_per_second": self.float_samples_per_second,
            "epochs": len(self.history),
            "steps": self.steps,
            "samples_trained": self.samples_trained,
            "bit_error_rate": self.config.bit_error_rate,
            "config": self.config.to_dict(),
            "history": [asdict(h) for h in self.history],
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainReport:
        """The report of :meth:`to_dict` (fields it does not know go to :attr:`extra`)."""
        d = dict(d)
        config = Config.from_dict(d.pop("config"))
        history = [EpochStats(**h) for h in d.pop("history", [])]
        d.pop("epochs", None)
        known = {f for f in cls.__dataclass_fields__} - {"config", "history", "extra"}
        fields = {k: d.pop(k) for k in list(d) if k in known}
        return cls(config=config, history=history, extra=d, **fields)


def batches(n: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of one epoch: a fresh permutation cut into batches (the last may be short)."""
    perm = rng.permutation(n)
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


def train(config: Config, data: Dataset, model=None, *, float_baseline: bool = True,
          progress: bool = True, backend: str = "golden",
          max_steps: int | None = None, final_eval_model=None) -> TrainReport:
    """Train ``model`` (default: a fresh :class:`GoldenModel`) on ``data`` for ``config.epochs``.

    The float32 baseline (:class:`FloatNet`, same layers, batch, epochs and data order; its
    learning rate follows the integer schedule's steps) trains in the same run when
    ``float_baseline`` is set. ``max_steps`` ends the run after that many training steps (the
    epoch in progress is then evaluated as the last one). The training accuracy at the end is
    measured with ``final_eval_model`` if given (a model with the same weights), else ``model``.
    """
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"the number of steps must be at least 1, not {max_steps}")
    if config.input_shape is None and data.n_features != config.layers[0]:
        raise ConfigError(f"the first layer must have {data.n_features} inputs for data set "
                          f"{data.name}, not {config.layers[0]}")
    if data.n_classes > config.layers[-1]:
        raise ConfigError(f"the last layer must have at least {data.n_classes} outputs for data "
                          f"set {data.name}, not {config.layers[-1]}")
    model = model if model is not None else GoldenModel(config)
    a_train, a_test = data.quantize(config.input_bits, config.input_shape)
    y_train, y_test = data.y_train, data.y_test
    scale = float(1 << (config.input_bits - 1))
    f_train = (a_train / scale).astype(np.float32)
    f_test = (a_test / scale).astype(np.float32)
    fmodel = FloatNet(config.plan, seed=config.seed, bit_error_rate=config.bit_error_rate,
                      fault_seed=config.fault_seed) if float_baseline else None
    lam0 = config.lam_at(0)

    report = TrainReport(backend=backend, dataset=data.name, n_train=data.n_train,
                         n_test=data.n_test, config=config)
    order = np.random.default_rng([config.seed, 1])
    bar = None
    if progress:
        from intrain.progress import progress_bar
        total = config.epochs * data.n_train
        if max_steps is not None:
            total = min(total, max_steps * config.batch_size)
        bar = progress_bar(total=total, unit="sample", unit_scale=True,
                           desc=f"{backend} training")
    t_int = t_float = 0.0
    trained = 0
    try:
        for epoch in range(config.epochs):
            if max_steps is not None and report.steps >= max_steps:
                break
            lam = config.lam_at(epoch)
            loss = 0.0
            correct = 0
            f_loss = 0.0
            f_correct = 0
            seen = 0
            for idx in batches(data.n_train, config.batch_size, order):
                if max_steps is not None and report.steps >= max_steps:
                    break
                t0 = time.perf_counter()
                r = model.train_step(a_train[idx], y_train[idx], lam)
                t_int += time.perf_counter() - t0
                loss += r.loss
                correct += r.correct
                report.steps += 1
                seen += len(idx)
                if fmodel is not None:
                    t0 = time.perf_counter()
                    fl, fc = fmodel.train_step(f_train[idx], y_train[idx], 2.0 ** (lam - lam0))
                    t_float += time.perf_counter() - t0
                    f_loss += fl
                    f_correct += fc
                if bar is not None:
                    bar.update(len(idx))
            test_acc, _ = model.evaluate(a_test, y_test)
            trained += seen
            stats = EpochStats(epoch=epoch, lam=lam, train_loss=loss / seen,
                               train_accuracy=correct / seen, test_accuracy=test_acc)
            if fmodel is not None:
                stats.float_train_loss = f_loss / seen
                stats.float_train_accuracy = f_correct / seen
                stats.float_test_accuracy = fmodel.evaluate(f_test, y_test)[0]
            report.history.append(stats)
            if config.apt:
                report.extra.setdefault("apt_widths", []).append(list(model.error_widths))
            if bar is not None:
                post = {"int": f"{test_acc:.2%}"}
                if fmodel is not None:
                    post["float"] = f"{stats.float_test_accuracy:.2%}"
                bar.set_postfix(post, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    last = report.history[-1]
    report.test_accuracy = last.test_accuracy
    if config.apt:
        report.extra["apt_events"] = [list(e) for e in model.apt.events]
    report.train_accuracy = (final_eval_model or model).evaluate(a_train, y_train)[0]
    report.train_seconds = t_int
    report.samples_trained = trained
    report.samples_per_second = trained / t_int if t_int else 0.0
    if fmodel is not None:
        report.float_test_accuracy = last.float_test_accuracy
        report.float_train_seconds = t_float
        report.float_samples_per_second = trained / t_float if t_float else 0.0
    if config.bit_error_rate:
        report.extra.update(_fault_counts(model, fmodel))
    return report


def _fault_counts(model, fmodel) -> dict:
    """The report's fault fields: bits flipped in each model's stored weights."""
    faults = getattr(model, "faults", None)
    counts = {"bit_flips": faults.flips if faults is not None else 0}
    if fmodel is not None:
        counts["float_bit_flips"] = fmodel.faults.flips if fmodel.faults is not None else 0
    return counts

"""Training on the engine with the golden model checking every step: the trainer that the
simulated engine (``intrain train --backend rtl``) and a board (``--backend board``) share.

After every training step the engine's CRC-32 of every tensor it wrote (the weights after the
update, every layer's quantized error, the output accumulators, the predictions) is compared
with the CRC of the golden model's tensors (:mod:`intrain.host.crc`). Tensors are read back in
full only when a CRC differs (to name the step, phase, tensor, index and both values), every
``check_every`` steps, or when the transport reports no CRCs. A CRC that differs while every
element read back agrees is an error too.
"""

from __future__ import annotations

import time

import numpy as np

from intrain.config import Config
from intrain.errors import ConfigError
from intrain.golden.model import GoldenModel, StepResult
from intrain.hdl.engine.geometry import HostTarget

from .crc import expected_crcs
from .driver import EngineHost

__all__ = ["CheckedTrainer", "LoopTrainer", "EngineMismatch", "compare",
           "run_checked_training"]


class EngineMismatch(AssertionError):
    """The engine and the golden model differ."""


#: The phase of a training step that produces each tensor.
PHASE_OF = {"W": "update", "E": "backward", "OUT": "forward", "P": "forward (argmax)"}


def compare(step: int, tensor: str, expected, got) -> None:
    """Raise :class:`EngineMismatch` at the first element where ``got`` differs from
    ``expected`` (every element compared), naming the step, phase, tensor and index."""
    expected = np.asarray(expected)
    got = np.asarray(got)
    if expected.shape != got.shape:
        raise EngineMismatch(f"step {step}: {tensor} has shape {got.shape}, expected "
                             f"{expected.shape}")
    diff = np.argwhere(expected != got)
    if len(diff):
        index = tuple(int(i) for i in diff[0])
        phase = PHASE_OF.get(tensor.rstrip("0123456789"), "?")
        raise EngineMismatch(
            f"step {step}, phase {phase}: {tensor}{list(index)} is {int(got[index])}, expected "
            f"{int(expected[index])} ({len(diff)} of {expected.size} elements differ)")


class CheckedTrainer:
    """The engine behind the golden model's interface (``train_step``, ``evaluate``), so that
    :func:`intrain.train.train` drives it; a golden twin checks every step.

    Parameters
    ----------
    host : EngineHost
        The engine's host driver over its transport.
    config : Config
        The configuration the engine was built for.
    check_every : int
        Read every tensor back after every ``check_every``-th step as well (0: only when a CRC
        differs).
    progress : path, optional
        A file that gets the number of samples trained after every step.
    corrupt : dict, optional
        ``{"after_step", "layer", "row", "col"}``: after that step, change one stored weight of
        the engine behind the golden model's back (a test of the check: the next step fails).

    The coroutines (``load``, ``_train_step``, ``_evaluate``) run on the transport's event
    loop; :meth:`train_step` and :meth:`evaluate` block, for a subclass or a thread to bridge.
    """

    def __init__(self, host: EngineHost, config: Config, progress=None,
                 corrupt: dict | None = None, check_every: int = 0):
        self.host = host
        self.geometry = host.geometry
        self.config = config
        self.golden = GoldenModel(config)
        self.progress = progress
        self.corrupt = corrupt
        self.check_every = check_every
        self.steps = 0
        self.checked_steps = 0
        self.samples = 0
        self.counters: dict[str, int] = {}
        self.checks = {"crc_tensors": 0, "crc_elements": 0, "readback_tensors": 0,
                       "readback_elements": 0}
        self.sim_seconds = 0.0

    @property
    def faults(self):
        """The memory faults (:class:`~intrain.golden.faults.MemoryFaults`) the engine and its
        golden twin share, or None."""
        return self.golden.faults

    @property
    def error_widths(self) -> tuple[int, ...]:
        """``kE_l`` of every layer for the next step (APT mode): the golden twin's, which the
        engine's own widths follow (every error it writes is compared)."""
        return self.golden.error_widths

    @property
    def apt(self):
        """The golden twin's :class:`~intrain.golden.apt.AptState` (APT mode), or None."""
        return self.golden.apt

    async def load(self) -> None:
        await self.host.load_weights(self.golden.weights)
        got = await self.host.read_weights()
        for layer, (w, g) in enumerate(zip(self.golden.weights, got), start=1):
            compare(0, f"W{layer}", w, g)

    # -- checks ---------------------------------------------------------------------------------
    async def _read(self, name: str, batch: int) -> np.ndarray:
        host = self.host
        if name == "OUT":
            return await host.read_outputs(batch)
        if name == "P":
            return await host.read_predictions(batch)
        layer = int(name[1:])
        if name[0] == "E":
            return await host.read_errors(layer, batch)
        p = self.config.plan[layer - 1]
        return await host.read_matrix(HostTarget.WEIGHTS, layer, p.n_out, p.n_in)

    async def check(self, step: int, tensors: dict, batch: int, counters: dict,
                    full: bool = False) -> None:
        """Compare the engine's ``tensors`` (name -> the golden model's matrix) after a run of
        ``batch`` samples: by CRC, and element by element where a CRC differs, when ``full``,
        or when the run reported no CRCs."""
        crcs = counters.get("crcs")
        bad = []
        if crcs is not None:
            got = dict(zip(self.geometry.crc_tensors, crcs))
            want = expected_crcs(self.geometry, tensors, batch)
            bad = [name for name in want if got[name] != want[name]]
            self.checks["crc_tensors"] += len(want)
            self.checks["crc_elements"] += sum(int(np.size(m)) for m in tensors.values())
        if not (full or bad or crcs is None):
            return
        for name in bad + [n for n in tensors if n not in bad]:
            compare(step, name, tensors[name], await self._read(name, batch))
            self.checks["readback_tensors"] += 1
            self.checks["readback_elements"] += int(np.size(tensors[name]))
        if bad:
            raise EngineMismatch(
                f"step {step}: the engine's CRC of {bad[0]} is {got[bad[0]]:08x}, expected "
                f"{want[bad[0]]:08x}, yet every element read back equals the golden model's")

    # -- training -------------------------------------------------------------------------------
    async def _train_step(self, a0, labels, lam):
        host = self.host
        batch = len(a0)
        step = self.steps + 1
        expected = self.golden.train_step(a0, labels, lam, record=True)
        trace = expected.trace
        t0 = time.perf_counter()
        await host.load_batch(a0, labels)
        counters = await host.run(batch, train=True, lam=lam)
        self.sim_seconds += time.perf_counter() - t0
        for k, v in counters.items():
            if k not in ("steps", "crcs"):
                self.counters[k] = self.counters.get(k, 0) + v
        tensors = {"OUT": trace["out"], "P": np.argmax(trace["out"], axis=1)}
        for layer in range(len(self.config.plan), 0, -1):
            tensors[f"E{layer}"] = trace[f"E{layer}"]
        for layer in range(1, len(self.config.plan) + 1):
            tensors[f"W{layer}"] = trace[f"W{layer}"]
        full = bool(self.check_every) and step % self.check_every == 0
        tensors = {name: self.geometry.engine_matrix(name, t) for name, t in tensors.items()}
        await self.check(step, tensors, batch, counters, full=full)
        if counters.get("steps", step) != step:
            raise EngineMismatch(f"step {step}: the engine counted {counters['steps']} steps")
        self.steps = self.checked_steps = step
        self.samples += batch
        if self.corrupt and self.corrupt["after_step"] == step:
            await self._corrupt_weight(**{k: v for k, v in self.corrupt.items()
                                          if k != "after_step"})
        if self.progress is not None:
            with open(self.progress, "a") as f:
                f.write(f"{self.samples}\n")
        return StepResult(out=trace["out"], loss=expected.loss, correct=expected.correct)

    async def _corrupt_weight(self, layer: int, row: int, col: int) -> None:
        """Change one stored weight of the engine (not of the golden model): a test of the
        check, which the next step must report."""
        p = self.config.plan[layer - 1]
        w = int(self.golden.weights[layer - 1][row, col])
        await self.host.write_elements(HostTarget.WEIGHTS, layer, row, col,
                                       [p.w_max if w != p.w_max else -p.w_max])

    def train_step(self, a0, labels, lam: int) -> StepResult:
        raise NotImplementedError("run _train_step on the transport's event loop")

    # -- inference -------------------------------------------------------------------------------
    async def _evaluate(self, a0, labels):
        host, b = self.host, self.config.batch_size
        correct, loss = 0, 0.0
        for s in range(0, len(labels), b):
            x, y = a0[s:s + b], labels[s:s + b]
            out = self.golden.forward(x)
            await host.load_batch(x)
            counters = await host.run(len(x), train=False)
            pred = await host.read_predictions(len(x))
            compare(self.steps, "P", np.argmax(out, axis=1), pred)
            await self.check(self.steps, {"OUT": out}, len(x), counters)
            correct += int(np.count_nonzero(pred == y))
            loss += self.golden.loss(out, y)
        return correct / max(1, len(labels)), loss / max(1, len(labels))

    def evaluate(self, a0, labels, batch: int = 0) -> tuple[float, float]:
        raise NotImplementedError("run _evaluate on the transport's event loop")

    # -- figures --------------------------------------------------------------------------------
    def figures(self) -> dict:
        """``cycles``, ``mac_utilization``, the per-phase counters of the training steps, and
        what was checked (``checks``)."""
        c = self.counters
        pes = self.config.array_rows * self.config.array_cols
        cycles = c.get("cycles", 0)
        out = {"cycles": cycles, "mac_cycles": c.get("mac_cycles", 0),
               "mac_utilization": c.get("mac_cycles", 0) / (pes * cycles) if cycles else 0.0,
               "rtl_steps": self.steps, "checks": dict(self.checks),
               "bit_exact": self.steps > 0 and self.checked_steps == self.steps}
        phases = {}
        for key in c if self.config.phase_counters else ():   # the link sends zeros without
            if key.endswith("_mac_cycles") and key != "mac_cycles":
                name = key[:-len("_mac_cycles")]
                pc = c.get(f"{name}_cycles", 0)
                phases[name] = {"cycles": pc, "mac_cycles": c[key],
                                "mac_utilization": c[key] / (pes * pc) if pc else 0.0}
        out["phases"] = phases
        return out


class LoopTrainer(CheckedTrainer):
    """:class:`CheckedTrainer` whose blocking methods run its coroutines on an asyncio ``loop``
    (a board's serial link, or a simulated engine in this process); ``on_step(samples)`` is
    called after every training step (a progress bar's ``update``)."""

    def __init__(self, host: EngineHost, config: Config, loop, on_step=None, **kwargs):
        super().__init__(host, config, **kwargs)
        self._loop = loop
        self._on_step = on_step

    def train_step(self, a0, labels, lam: int) -> StepResult:
        result = self._loop.run_until_complete(
            self._train_step(np.asarray(a0), np.asarray(labels), int(lam)))
        if self._on_step is not None:
            self._on_step(len(a0))
        return result

    def evaluate(self, a0, labels, batch: int = 0) -> tuple[float, float]:
        return self._loop.run_until_complete(self._evaluate(np.asarray(a0), np.asarray(labels)))


def run_checked_training(trainer: CheckedTrainer, config: Config, params: dict) -> dict:
    """Train ``config``'s network through ``trainer`` (data, steps, float baseline and whether
    the test set runs on the engine from ``params``); the report of ``intrain train`` plus the
    engine's figures and where each accuracy came from."""
    from intrain.data import load_dataset
    from intrain.train import train

    data = load_dataset(params.get("data", "digits"))
    used = data.n_train if not params.get("steps") \
        else min(data.n_train, params["steps"] * config.batch_size)
    last = used % config.batch_size
    if 0 < last < trainer.geometry.min_train_batch:
        raise ConfigError(f"the {used:,} training samples leave a last batch of {last} "
                          f"and this engine's steps need {trainer.geometry.min_train_batch} or "
                          f"more (weights in single-port RAM, spram = {list(config.spram)}): "
                          f"choose another batch_size")
    t0 = time.perf_counter()
    on_engine = params.get("evaluate_on_rtl", True)
    if not on_engine:
        trainer.evaluate = trainer.golden.evaluate
    report = train(config, data, model=trainer, float_baseline=params.get("float_baseline", True),
                   progress=False, backend=params.get("backend", "rtl"),
                   max_steps=params.get("steps"), final_eval_model=trainer.golden)
    wall = time.perf_counter() - t0
    d = report.to_dict()
    d.update(trainer.figures())
    twin = "golden twin (weights checked equal to the engine's after every step)"
    d["figure_sources"] = {
        "test_accuracy": "engine (inference runs checked against the golden model)"
        if on_engine else twin,
        "train_accuracy": twin,
        "float_test_accuracy": "float32 baseline",
    }
    d["sim_seconds"] = wall
    d["sim_samples_per_second"] = trainer.samples / report.train_seconds \
        if report.train_seconds else 0.0
    d["sim_cycles_per_second"] = trainer.counters.get("cycles", 0) / trainer.sim_seconds \
        if trainer.sim_seconds else 0.0
    return d

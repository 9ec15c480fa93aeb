"""cocotb testbench of the training engine: training and inference through the host ports, every
step checked against the golden model.

:func:`intrain.sim.engine_run.run_engine` runs this module on the exported Verilog of an
:class:`~intrain.hdl.engine.Engine`. Its parameters (:func:`test_parameters`):

``config``
    The :class:`~intrain.config.Config` as a dict (``Config.to_dict``).
``data``
    A data set spec for :func:`intrain.data.load_dataset` (``"digits"``, a folder, an ``.npz``).
``steps``
    Stop after this many training steps (``null``: train ``config.epochs`` epochs).
``float_baseline``
    Train the float32 baseline beside it, as ``intrain train`` does.
``evaluate_on_rtl``
    Measure the test accuracy after each epoch with inference runs of the engine (default), or
    with the golden twin (same weights; for benchmarks of the training steps alone).
``report``, ``progress``
    Where to write the JSON report, and a file that gets one line per training step (samples
    done so far), read by the caller for its progress bar.
``corrupt``
    ``{"after_step", "layer", "row", "col"}``: after that step, change one stored weight of the
    engine behind the golden model's back (a test of the testbench: the next step must fail).

After every training step the testbench reads back every layer's stored weights, the output
accumulators, the predictions and every layer's quantized error ``E_l``, and compares every
element with the golden model's step. The first difference ends the run with the step, the
phase, the tensor, the index, the expected and the actual value.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.task import bridge, resume

from intrain.config import Config
from intrain.golden.model import GoldenModel, StepResult
from intrain.hdl.engine import Engine, HostTarget
from intrain.sim.cocotb_helpers import reset, start_clock, test_parameters
from intrain.sim.engine_host import CocotbTransport, EngineHost

__all__ = ["EngineMismatch", "RtlTrainer", "compare"]


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


class RtlTrainer:
    """The simulated engine behind the golden model's interface (``train_step``, ``evaluate``),
    so that :func:`intrain.train.train` drives it; a golden twin checks every step.

    Its methods block: call them from a thread started with :func:`cocotb.task.bridge`.
    """

    def __init__(self, host: EngineHost, config: Config, progress: Path | None = None,
                 corrupt: dict | None = None):
        self.host = host
        self.corrupt = corrupt
        self.config = config
        self.golden = GoldenModel(config)
        self.progress = progress
        self.steps = 0
        self.samples = 0
        self.counters: dict[str, int] = {}
        self.sim_seconds = 0.0

    async def load(self) -> None:
        await self.host.load_weights(self.golden.weights)
        got = await self.host.read_weights()
        for layer, (w, g) in enumerate(zip(self.golden.weights, got), start=1):
            compare(0, f"W{layer}", w, g)

    # -- training -------------------------------------------------------------------------------
    async def _train_step(self, a0, labels, lam):
        host, cfg = self.host, self.config
        batch = len(a0)
        step = self.steps + 1
        expected = self.golden.train_step(a0, labels, lam, record=True)
        trace = expected.trace
        t0 = time.perf_counter()
        await host.load_batch(a0, labels)
        counters = await host.run(batch, train=True, lam=lam)
        self.sim_seconds += time.perf_counter() - t0
        for k, v in counters.items():
            if k != "steps":
                self.counters[k] = self.counters.get(k, 0) + v
        n = len(cfg.plan)
        out = await host.read_outputs(batch)
        compare(step, "OUT", trace["out"], out)
        compare(step, "P", np.argmax(trace["out"], axis=1), await host.read_predictions(batch))
        for layer in range(n, 0, -1):
            compare(step, f"E{layer}", trace[f"E{layer}"], await host.read_errors(layer, batch))
        for layer, w in enumerate(await host.read_weights(), start=1):
            compare(step, f"W{layer}", trace[f"W{layer}"], w)
        if counters.get("steps", step) != step:
            raise EngineMismatch(f"step {step}: the engine counted {counters['steps']} steps")
        self.steps = step
        self.samples += batch
        if self.corrupt and self.corrupt["after_step"] == step:
            await self._corrupt_weight(**{k: v for k, v in self.corrupt.items()
                                          if k != "after_step"})
        if self.progress is not None:
            with open(self.progress, "a") as f:
                f.write(f"{self.samples}\n")
        return StepResult(out=out, loss=expected.loss, correct=expected.correct)

    async def _corrupt_weight(self, layer: int, row: int, col: int) -> None:
        """Change one stored weight of the engine (not of the golden model): a test of the
        test, which the next step must report."""
        p = self.config.plan[layer - 1]
        w = int(self.golden.weights[layer - 1][row, col])
        await self.host.write_elements(HostTarget.WEIGHTS, layer, row, col,
                                       [p.w_max if w != p.w_max else -p.w_max])

    def train_step(self, a0, labels, lam: int) -> StepResult:
        return resume(self._train_step)(np.asarray(a0), np.asarray(labels), int(lam))

    # -- inference -------------------------------------------------------------------------------
    async def _evaluate(self, a0, labels):
        host, b = self.host, self.config.batch_size
        correct, loss = 0, 0.0
        for s in range(0, len(labels), b):
            x, y = a0[s:s + b], labels[s:s + b]
            await host.load_batch(x)
            await host.run(len(x), train=False)
            out = await host.read_outputs(len(x))
            compare(self.steps, "OUT", self.golden.forward(x), out)
            pred = await host.read_predictions(len(x))
            compare(self.steps, "P", np.argmax(out, axis=1), pred)
            correct += int(np.count_nonzero(pred == y))
            loss += self.golden.loss(out, y)
        return correct / max(1, len(labels)), loss / max(1, len(labels))

    def evaluate(self, a0, labels, batch: int = 0) -> tuple[float, float]:
        return resume(self._evaluate)(np.asarray(a0), np.asarray(labels))

    # -- figures --------------------------------------------------------------------------------
    def figures(self) -> dict:
        """``cycles``, ``mac_utilization`` and the per-phase counters of the training steps."""
        c = self.counters
        pes = self.config.array_rows * self.config.array_cols
        cycles = c.get("cycles", 0)
        out = {"cycles": cycles, "mac_cycles": c.get("mac_cycles", 0),
               "mac_utilization": c.get("mac_cycles", 0) / (pes * cycles) if cycles else 0.0,
               "rtl_steps": self.steps}
        phases = {}
        for key in c:
            if key.endswith("_mac_cycles") and key != "mac_cycles":
                name = key[:-len("_mac_cycles")]
                pc = c.get(f"{name}_cycles", 0)
                phases[name] = {"cycles": pc, "mac_cycles": c[key],
                                "mac_utilization": c[key] / (pes * pc) if pc else 0.0}
        out["phases"] = phases
        return out


def _train(trainer: RtlTrainer, config: Config, params: dict) -> dict:
    from intrain.data import load_dataset
    from intrain.train import train

    data = load_dataset(params.get("data", "digits"))
    t0 = time.perf_counter()
    # The test set goes through the engine after every epoch (compared with the golden model);
    # the final accuracy on the training set comes from the golden twin, whose weights were
    # checked equal to the engine's after every step.
    if not params.get("evaluate_on_rtl", True):
        trainer.evaluate = trainer.golden.evaluate
    report = train(config, data, model=trainer, float_baseline=params.get("float_baseline", True),
                   progress=False, backend="rtl", max_steps=params.get("steps"),
                   final_eval_model=trainer.golden)
    wall = time.perf_counter() - t0
    d = report.to_dict()
    d.update(trainer.figures())
    d["bit_exact"] = True
    d["sim_seconds"] = wall
    d["sim_samples_per_second"] = trainer.samples / report.train_seconds \
        if report.train_seconds else 0.0
    d["sim_cycles_per_second"] = trainer.counters.get("cycles", 0) / trainer.sim_seconds \
        if trainer.sim_seconds else 0.0
    return d


@cocotb.test()
async def train_matches_golden(dut):
    """Train through the engine; every step equals the golden model's."""
    params = test_parameters()
    config = Config.from_dict(params["config"])
    start_clock(dut)
    transport = CocotbTransport(dut)
    await reset(dut)
    progress = Path(params["progress"]) if params.get("progress") else None
    trainer = RtlTrainer(EngineHost(Engine(config), transport), config, progress,
                         params.get("corrupt"))
    await trainer.load()
    result = await bridge(_train)(trainer, config, params)
    if params.get("report"):
        Path(params["report"]).write_text(json.dumps(result, indent=2) + "\n")
    dut._log.info("%d steps bit-exact: %d cycles, MAC utilization %.1f %%", trainer.steps,
                  result["cycles"], 100 * result["mac_utilization"])


@cocotb.test()
async def inference_matches_golden(dut):
    """Inference passes over the test set (``samples`` of them): outputs and predictions equal
    the golden model's."""
    from intrain.data import load_dataset

    params = test_parameters()
    config = Config.from_dict(params["config"])
    start_clock(dut)
    transport = CocotbTransport(dut)
    await reset(dut)
    trainer = RtlTrainer(EngineHost(Engine(config), transport), config)
    await trainer.load()
    data = load_dataset(params.get("data", "digits"))
    _, a_test = data.quantize(config.input_bits)
    n = params.get("samples", len(a_test))
    accuracy, _ = await trainer._evaluate(a_test[:n], data.y_test[:n])
    dut._log.info("%d samples: outputs and predictions equal the golden model's; accuracy "
                  "%.2f %%", n, 100 * accuracy)

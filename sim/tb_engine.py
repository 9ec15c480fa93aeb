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
``check_every``
    Also read every tensor back after every this-many steps (0: only on a CRC mismatch).

After every training step the testbench compares the engine's CRC of every layer's stored
weights, the output accumulators, the predictions and every layer's quantized error ``E_l`` with
the golden model's (:class:`intrain.host.checked.CheckedTrainer`); a differing CRC reads the
tensors back, and the first differing element ends the run with the step, the phase, the tensor,
the index, the expected and the actual value.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.task import bridge, resume

from intrain.config import Config
from intrain.golden.model import StepResult
from intrain.hdl.engine import EngineGeometry
from intrain.host.checked import CheckedTrainer, EngineMismatch, compare, run_checked_training
from intrain.sim.cocotb_helpers import reset, start_clock, test_parameters
from intrain.sim.engine_host import CocotbTransport, EngineHost

__all__ = ["EngineMismatch", "RtlTrainer", "compare"]


class RtlTrainer(CheckedTrainer):
    """:class:`~intrain.host.checked.CheckedTrainer` on the simulated engine: its blocking
    methods resume the coroutines on cocotb's scheduler. Call them from a thread started with
    :func:`cocotb.task.bridge`."""

    def train_step(self, a0, labels, lam: int) -> StepResult:
        return resume(self._train_step)(np.asarray(a0), np.asarray(labels), int(lam))

    def evaluate(self, a0, labels, batch: int = 0) -> tuple[float, float]:
        return resume(self._evaluate)(np.asarray(a0), np.asarray(labels))


def _train(trainer: RtlTrainer, config: Config, params: dict) -> dict:
    return run_checked_training(trainer, config, params)


def _trainer(dut, config: Config, params: dict, **kwargs) -> RtlTrainer:
    geo = EngineGeometry(config)
    host = EngineHost(geo, CocotbTransport(dut, crcs=len(geo.crc_tensors)))
    return RtlTrainer(host, config, check_every=params.get("check_every", 0), **kwargs)


@cocotb.test()
async def train_matches_golden(dut):
    """Train through the engine; every step equals the golden model's."""
    params = test_parameters()
    config = Config.from_dict(params["config"])
    start_clock(dut)
    progress = Path(params["progress"]) if params.get("progress") else None
    trainer = _trainer(dut, config, params, progress=progress, corrupt=params.get("corrupt"))
    await reset(dut)
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
    trainer = _trainer(dut, config, params)
    await reset(dut)
    await trainer.load()
    data = load_dataset(params.get("data", "digits"))
    _, a_test = data.quantize(config.input_bits)
    n = params.get("samples", len(a_test))
    accuracy, _ = await trainer._evaluate(a_test[:n], data.y_test[:n])
    dut._log.info("%d samples: outputs and predictions equal the golden model's; accuracy "
                  "%.2f %%", n, 100 * accuracy)

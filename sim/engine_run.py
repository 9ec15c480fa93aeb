"""Training through the simulated RTL: the engine of a config, built with Verilator or Icarus
Verilog, trained with the golden model checking every step: by Verilator's model in this process
(:mod:`intrain.sim.verilated`) or by the cocotb testbench :mod:`intrain.sim.tb_engine`.
``intrain train --backend rtl`` and ``bench/sim.py`` call :func:`run_engine`."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from intrain.config import Config
from intrain.errors import ConfigError, SimulationFailed

__all__ = ["run_engine", "WAVE_SUFFIXES"]

#: Waveform formats each simulator writes.
WAVE_SUFFIXES = {"verilator": (".fst", ".vcd"), "icarus": (".fst",)}


def run_engine(config: Config, *, data: str = "digits", sim: str = "verilator",
               steps: int | None = None, float_baseline: bool = True, waves=None,
               progress: bool = True, build_dir=None, corrupt: dict | None = None,
               evaluate_on_rtl: bool = True, check_every: int = 0,
               harness: str = "auto") -> dict:
    """Train ``config``'s network on the simulated engine; returns the report (the fields of
    ``intrain train --report`` plus ``cycles``, ``mac_utilization``, per-phase counters,
    ``bit_exact``, ``sim_samples_per_second`` and ``sim_cycles_per_second``).

    Parameters
    ----------
    config : Config
        The network and the engine (array shape, batch, bit widths).
    data : str
        A data set spec (:func:`intrain.data.load_dataset`).
    sim : str
        ``"verilator"`` or ``"icarus"``.
    steps : int, optional
        Stop after this many training steps (default: ``config.epochs`` epochs).
    float_baseline : bool
        Train the float32 baseline in the same run.
    waves : path, optional
        Write the waveform of the run there: ``.vcd`` or ``.fst`` from Verilator (FST needs
        the lz4 headers), ``.fst`` from Icarus.
    progress : bool
        Show a progress bar (samples trained).
    build_dir : path, optional
        Where to build (default: a cache folder per design).
    evaluate_on_rtl : bool
        Measure the test accuracy after each epoch on the engine (inference runs checked
        against the golden model), or with the golden twin alone (same weights).
    corrupt : dict, optional
        Change one stored weight after a step (see :mod:`intrain.sim.tb_engine`): a test that
        a difference is caught.
    check_every : int
        Every step is checked by the engine's tensor CRCs; also read every tensor back after
        every ``check_every`` steps (0: only when a CRC differs).
    harness : str
        ``"direct"``: the Verilator model runs in this process (:mod:`intrain.sim.verilated`),
        about 4 times faster; ``"cocotb"``: the cocotb testbench :mod:`intrain.sim.tb_engine`
        (the one Icarus and waveforms need). ``"auto"`` (default): direct for Verilator without
        waveforms.

    Raises
    ------
    SimulationFailed
        If the simulator is missing or fails, or the engine differs from the golden model (the
        message gives the step, phase, tensor, index, expected and actual value).
    """
    from intrain.hdl.engine import Engine
    from intrain.sim.runner import (
        BuildError,
        CocotbTestFailure,
        SimulationError,
        cached_verilog,
        run_cocotb,
    )
    from intrain.sim.tools import SimulatorNotFound

    if sim not in WAVE_SUFFIXES:
        raise ConfigError(f"simulator must be one of {', '.join(WAVE_SUFFIXES)}, not {sim!r}")
    if waves is not None:
        waves = Path(waves)
        if waves.suffix not in WAVE_SUFFIXES[sim]:
            raise ConfigError(f"{sim} writes {' or '.join(WAVE_SUFFIXES[sim])} waveforms, not "
                              f"{waves.name}")
        if sim == "verilator" and waves.suffix == ".fst" and not _have_lz4_header():
            raise ConfigError("Verilator's FST writer needs the lz4 headers (apt-get install "
                              f"liblz4-dev); or ask for a VCD file: {waves.with_suffix('.vcd')}")
    from intrain.data import load_dataset

    n_train = load_dataset(data).n_train  # a bad data set fails here, before any build
    total = config.epochs * n_train
    if steps is not None:
        total = min(total, steps * config.batch_size)
    if harness not in ("auto", "direct", "cocotb"):
        raise ConfigError(f"harness must be auto, direct or cocotb, not {harness!r}")
    if harness == "auto":
        harness = "direct" if sim == "verilator" and waves is None else "cocotb"
    if harness == "direct" and (sim != "verilator" or waves is not None):
        raise ConfigError("the direct harness runs Verilator without waveforms only")
    make_engine = functools.partial(Engine, config)   # elaborated only if not cached
    with tempfile.TemporaryDirectory(prefix="intrain-rtl-") as tmp:
        report_file = Path(tmp) / "report.json"
        progress_file = Path(tmp) / "progress"
        progress_file.touch()
        params = {"config": config.to_dict(), "data": data, "steps": steps,
                  "float_baseline": float_baseline, "report": str(report_file),
                  "progress": str(progress_file), "corrupt": corrupt,
                  "evaluate_on_rtl": evaluate_on_rtl, "check_every": check_every}
        build_args = ["--trace-fst"] if sim == "verilator" and waves is not None \
            and waves.suffix == ".fst" else []
        outcome: dict = {}

        def work():
            try:
                if harness == "direct":
                    outcome["result"] = _run_direct(make_engine, config, params, build_dir)
                    return
                outcome["result"] = run_cocotb(
                    cached_verilog(make_engine, "engine", config.to_dict()), toplevel="engine",
                    test_module="intrain.sim.tb_engine", sim=sim,
                    testcase="train_matches_golden",
                    parameters=params, waves=waves is not None, build_args=build_args,
                    build_dir=build_dir, seed=config.seed)
            except BaseException as e:  # handed to the caller's thread
                outcome["error"] = e

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        _follow(thread, progress_file, total if progress else None, sim)
        error = outcome.get("error")
        if isinstance(error, SimulatorNotFound):
            raise SimulationFailed(str(error)) from None
        if isinstance(error, CocotbTestFailure):
            raise SimulationFailed(_mismatch_message(str(error))) from None
        if isinstance(error, (BuildError, SimulationError)):
            raise SimulationFailed(str(error)) from None
        if error is not None:
            raise error
        result = json.loads(report_file.read_text())
        result["sim"] = sim
        result["harness"] = harness
        result["build_dir"] = str(outcome["result"].build_dir)
        if waves is not None:
            src = outcome["result"].waves_file
            if src is None:
                raise SimulationFailed(f"{sim} wrote no waveform in {outcome['result'].build_dir}")
            waves.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, waves)
            result["waves"] = str(waves)
        return result


def _run_direct(make_engine, config: Config, params: dict, build_dir):
    """Train through the engine's Verilator model in this process (the checked trainer of the
    cocotb testbench on :class:`~intrain.sim.verilated.VerilatedTransport`); writes the report
    where ``params`` says; returns a result with the ``build_dir``."""
    import asyncio
    from types import SimpleNamespace

    from intrain.hdl.engine import EngineGeometry
    from intrain.host.checked import EngineMismatch, LoopTrainer, run_checked_training
    from intrain.host.driver import EngineHost
    from intrain.sim.runner import cached_verilog
    from intrain.sim.verilated import VerilatedModel, VerilatedTransport, build_model, verilog_ports

    verilog = cached_verilog(make_engine, "engine", config.to_dict())
    library = build_model(verilog, "engine", build_dir=build_dir)
    model = VerilatedModel(library, verilog_ports(verilog.read_text(), "engine"))
    loop = asyncio.new_event_loop()
    try:
        geo = EngineGeometry(config)
        host = EngineHost(geo, VerilatedTransport(model, crcs=len(geo.crc_tensors)))
        trainer = LoopTrainer(host, config, loop, progress=params["progress"],
                              corrupt=params["corrupt"], check_every=params["check_every"])
        loop.run_until_complete(trainer.load())
        result = run_checked_training(trainer, config, params)
    except EngineMismatch as e:
        raise SimulationFailed(f"RTL and golden model differ: {e}") from None
    except RuntimeError as e:   # the engine hung, or refused the host
        raise SimulationFailed(f"the simulated engine failed: {e}") from None
    finally:
        loop.close()
        model.close()
    Path(params["report"]).write_text(json.dumps(result, indent=2) + "\n")
    return SimpleNamespace(build_dir=library.parent, waves_file=None)


def _have_lz4_header() -> bool:
    """Whether the C++ compiler finds ``lz4.h`` (Verilator's FST writer includes it)."""
    dirs = ["/usr/include", "/usr/local/include", "/opt/homebrew/include"]
    dirs += [d for d in os.environ.get("CPATH", "").split(os.pathsep) if d]
    return any(Path(d, "lz4.h").exists() for d in dirs)


def _mismatch_message(text: str) -> str:
    """The useful line of a failed testbench run: the engine's difference from golden."""
    for line in text.splitlines():
        if "EngineMismatch" in line or "expected" in line and "step" in line:
            return "RTL and golden model differ: " + line.split(": ", 1)[-1].strip()
    return text


def _follow(thread, progress_file: Path, total: int | None, sim: str):
    """Wait for ``thread``; with a ``total``, show the samples the testbench has trained."""
    bar = None
    if total is not None:
        from intrain.progress import progress_bar

        bar = progress_bar(total=total, unit="sample", desc=f"rtl training ({sim})")
    done = 0
    try:
        while thread.is_alive():
            thread.join(0.2)
            if bar is not None:
                lines = progress_file.read_text().split()
                if lines:
                    now = int(lines[-1])
                    if done == 0:
                        bar.set_postfix_str("", refresh=False)
                        bar.reset()  # the rate counts from the first step, not the build
                    bar.update(now - done)
                    done = now
                elif bar.n == 0:
                    bar.set_postfix_str("building", refresh=True)
    finally:
        if bar is not None:
            bar.close()

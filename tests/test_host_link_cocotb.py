"""A board's top level (:class:`~intrain.hdl.host_link.HostLink`: the engine behind a UART) in
cocotb on Verilator, driven by the host driver of :mod:`intrain.boards.host` through a
simulated UART (:mod:`intrain.sim.tb_link`): training steps bit-exact with the golden model,
every kind of bad frame rejected with its error code and without effect, and
:func:`~intrain.boards.host.train_on_board` through pyserial on a pseudo-terminal that the
simulated board serves.

The design is small (a 2x2 array, an 8-6-4 network, batch 24, 4 clock cycles per bit), so that
a training step outlasts a short frame (the tests of requests while the engine runs need it)
and the simulation stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time

import numpy as np
import pytest

from intrain.boards import protocol as proto
from intrain.boards.check import CHECKS
from intrain.boards.host import host_geometry, step_traffic, train_on_board
from intrain.cli import main
from intrain.config import Config
from intrain.hdl.host_link import HostLink
from intrain.sim.runner import run_cocotb
from intrain.sim.tools import available_simulators

CLK_FREQ = 100_000_000
DIVISOR = 4
TIMEOUT = 30 * 10 * DIVISOR  # 30 bytes' time of silence ends a frame

pytestmark = pytest.mark.skipif("verilator" not in available_simulators(),
                                reason="Verilator is not installed")


def _config():
    return Config(layers=(8, 6, 4), bits="2-8-8-8", array_rows=2, array_cols=2, batch_size=24,
                  lr_schedule=((0, 1),), epochs=1, seed=5)


def _run(testcase, tmp_path, config=None, **params):
    config = config or _config()
    link = HostLink(config, clk_freq=CLK_FREQ, baud=CLK_FREQ // DIVISOR, timeout=TIMEOUT)
    params = {"config": config.to_dict(), "divisor": DIVISOR, "clk_freq": CLK_FREQ,
              "timeout": TIMEOUT, **params}
    return run_cocotb(link, toplevel="host_link", test_module="intrain.sim.tb_link",
                      testcase=testcase, parameters=params, seed=1)


def _data(tmp_path, n=60):
    rng = np.random.default_rng(3)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.uniform(-1, 1, (n, 8)), y=np.arange(n) % 4)
    return str(path)


def test_training_over_the_uart_is_bit_exact(tmp_path):
    report = tmp_path / "report.json"
    _run("train_over_uart", tmp_path, data=_data(tmp_path), steps=2, float_baseline=False,
         evaluate_on_rtl=True, report=str(report))
    r = json.loads(report.read_text())
    assert r["bit_exact"] and r["rtl_steps"] == r["steps"] == 2
    assert r["link"]["errors"] == 0
    assert r["link"]["frames"] > 0 and r["link"]["bytes_received"] > 0
    assert 0 < r["mac_cycles"] <= 4 * r["cycles"]
    # Each step's traffic is what the link model counts, and its simulated time is the model's
    # within 10 % (bench/link.py compares them on the boards' default networks).
    model = step_traffic(_config(), max_payload=512)
    seconds = model.seconds(CLK_FREQ / DIVISOR, CLK_FREQ)["step"]
    assert len(r["link"]["steps"]) == 2
    for step in r["link"]["steps"]:
        assert (step["frames"], step["bytes_sent"], step["bytes_received"]) == (
            model.frames, model.bytes_sent, model.bytes_received)
        assert step["sim_seconds"] == pytest.approx(seconds, rel=0.1)


def test_conv_training_over_the_uart_is_bit_exact(tmp_path):
    # The input goes as its positions x channels matrix (WRITE_ROWS of one value per row);
    # without phase counters (the link sends their words as zeros), as the iCEBreaker's build.
    config = Config(layers="1x4x4,2C3,MP2,3", bits="2-8-8-8", array_rows=2, array_cols=2,
                    batch_size=3, lr_schedule=((0, -1),), epochs=1, seed=5, phase_counters=False)
    rng = np.random.default_rng(4)
    data = tmp_path / "conv.npz"
    np.savez(data, x=rng.uniform(-1, 1, (30, 1, 4, 4)), y=np.arange(30) % 3)
    report = tmp_path / "report.json"
    _run("train_over_uart", tmp_path, config=config, data=str(data), steps=2,
         float_baseline=False, evaluate_on_rtl=False, report=str(report))
    r = json.loads(report.read_text())
    assert r["bit_exact"] and r["rtl_steps"] == r["steps"] == 2
    assert r["link"]["errors"] == 0 and r["phases"] == {}
    model = step_traffic(config, max_payload=512)
    for step in r["link"]["steps"]:
        assert (step["frames"], step["bytes_sent"]) == (model.frames, model.bytes_sent)


def test_bad_frames_are_rejected_and_change_nothing(tmp_path):
    _run("bad_frames_are_rejected", tmp_path)


@pytest.mark.slow
def test_bad_frames_with_two_byte_values_in_three_lanes(tmp_path):
    # WRITE_ROWS of 12-bit inputs (two bytes a value) into 3 lanes: rows of 8 values end in a
    # slice of 2, and a payload of half a value is refused.
    config = _config().replace(input_bits=12, array_rows=3, array_cols=1)
    _run("bad_frames_are_rejected", tmp_path, config=config)


@contextlib.contextmanager
def _simulated_board(tmp_path):
    """The simulated board behind a pseudo-terminal (the cocotb test ``serve_pty`` in a thread):
    yields the terminal's name, which a host opens with pyserial as a board's serial port."""
    pty_file, stop_file = tmp_path / "pty", tmp_path / "stop"
    outcome = {}

    def serve():
        try:
            outcome["result"] = _run("serve_pty", tmp_path, pty_file=str(pty_file),
                                     stop_file=str(stop_file), serve_seconds=300)
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not pty_file.exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pty_file.exists(), outcome.get("error", "the simulated board did not start")
    try:
        yield pty_file.read_text()
    finally:
        stop_file.touch()
        thread.join(120)
    assert "error" not in outcome, outcome.get("error")


needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")


@needs_pty
def test_train_on_board_over_a_serial_port_to_the_simulated_board(tmp_path):
    # train_on_board opens the pseudo-terminal with pyserial, as `intrain train --backend board
    # --port DEV` opens a real board's port.
    with _simulated_board(tmp_path) as port:
        r = train_on_board(_config(), port=port, baud=115200, data=_data(tmp_path), steps=2,
                           float_baseline=False, progress=False, timeout=5.0)
    assert r["backend"] == "board" and r["bit_exact"] and r["rtl_steps"] == r["steps"] == 2
    assert r["board"]["clk_freq"] == CLK_FREQ and r["board"]["max_payload"] == 512
    assert r["link"]["errors"] == 0 and r["link"]["frames"] > 0
    assert r["link"]["bytes_per_step"] > 0
    for key in ("test_accuracy", "train_accuracy", "cycles", "mac_utilization", "phases",
                "samples_per_second", "config", "history"):
        assert key in r, key


@needs_pty
def test_board_check_of_the_simulated_board(tmp_path, capsys):
    built, other = tmp_path / "built.toml", tmp_path / "other.toml"
    _config().save(built)
    _config().replace(layers=(8, 5, 4)).save(other)
    report = tmp_path / "check.json"
    with _simulated_board(tmp_path) as port:
        common = ["board-check", "--board", "icebreaker", "--port", port, "--baud", "115200",
                  "--timeout", "5"]
        # Checked against another configuration: refused after the protocol check.
        assert main([*common, "--config", str(other)]) == 1
        out = capsys.readouterr().out
        assert f"protocol       PASS  version {proto.VERSION}" in out
        assert "config         FAIL  the board was built for another configuration" in out
        assert "memory" not in out
        assert main([*common, "--config", str(built), "--report", str(report)]) == 0
        out = capsys.readouterr().out
    r = json.loads(report.read_text())
    assert r["ok"] and [c["name"] for c in r["checks"]] == list(CHECKS)
    assert all(c["ok"] for c in r["checks"]) and "FAIL" not in out
    assert r["board"]["clk_freq"] == CLK_FREQ and r["link"]["errors"] == 0
    engine = host_geometry(_config())
    step = next(c for c in r["checks"] if c["name"] == "training step")["detail"]
    assert f"{engine.train_cycles(24):,} cycles" in step
    memory = next(c for c in r["checks"] if c["name"] == "memory")["detail"]
    assert memory.startswith("W1, W2, A0, LABELS: 3 patterns each")
    assert "baud moving" in next(c for c in r["checks"] if c["name"] == "link rate")["detail"]

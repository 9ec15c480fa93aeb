"""Training steps per second of ``intrain train --backend board`` on each board's default network
at its default baud rate: simulated, and as the link model predicts.

*Simulated*: the board's top level (:class:`~intrain.hdl.host_link.HostLink`, the engine behind
its UART, built for the board's default clock and baud rate) in cocotb on Verilator, driven by
the host driver through cocotbext-uart's simulated serial port (:mod:`intrain.sim.tb_link`):
``--steps`` training steps on the digits, each checked by the engine's tensor CRCs against the
golden model, timed in simulated seconds at the board's clock (deterministic: two steps give the
figure). The initial weights are loaded without the read-back (the first step's CRCs check them).

*Modelled*: :func:`intrain.boards.host.step_traffic`, the bytes each way of the frames the driver
sends for a checked step (the batch's inputs and labels, ``RUN``, the answers with counters and
CRCs) at 10 bits per byte and the UART's baud rate, plus the engine's cycles from its geometry
and the link's own cycles per frame, at the clock.

The simulation maps the engine's products as ``"generic"``; the board's DSP mapping lengthens the
array pipeline and so the step by a few cycles (``engine_cycles_board_dsp`` in the JSON; 12 on
the ECP5 boards, under 0.001 % of a step). ``double_buffer_gain`` is what uploading the next
batch while the engine computes would save at most: the engine's share of the step.

    python bench/link.py [--boards ulx3s-85f,...] [--steps 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from intrain.boards.host import step_traffic
from intrain.boards.pll import pll_settings
from intrain.boards.registry import BOARDS, get_board
from intrain.hdl.host_link import HostLink
from intrain.hdl.uart import uart_divisor
from intrain.sim.runner import run_cocotb


def _board_link(board):
    """The board's default configuration, clock (the PLL's) and the UART's divisor and rate."""
    config = board.default_config.replace(epochs=1)
    clk = int(round(pll_settings(board.family, board.clock_hz / 1e6,
                                 board.default_clock_mhz).out_mhz * 1e6))
    divisor = uart_divisor(clk, board.link_baud)
    return config, clk, divisor


def simulate(board, steps: int, tmp: Path) -> dict:
    """``steps`` checked training steps over the simulated UART: the report's per-step
    records (simulated seconds, frames, bytes) and the wall time."""
    config, clk, divisor = _board_link(board)
    link = HostLink(config, clk_freq=clk, baud=board.link_baud)
    report = tmp / f"{board.name}.json"
    t0 = time.perf_counter()
    run_cocotb(link, toplevel="host_link", test_module="intrain.sim.tb_link",
               testcase="train_over_uart", seed=1, parameters={
                   "config": config.to_dict(), "divisor": divisor, "clk_freq": clk,
                   "timeout": link.timeout, "data": "digits", "steps": steps,
                   "float_baseline": False, "evaluate_on_rtl": False, "verify_load": False,
                   "report": str(report)})
    r = json.loads(report.read_text())
    if not r["bit_exact"] or r["rtl_steps"] != steps:
        sys.exit(f"{board.name}: not bit-exact over the link: {r.get('checks')}")
    return {"steps": r["link"]["steps"], "checks": r["checks"], "cycles": r["cycles"],
            "wall_seconds": time.perf_counter() - t0, "max_payload": link.info.max_payload}


def model(board, max_payload: int) -> dict:
    config, clk, divisor = _board_link(board)
    traffic = step_traffic(config, max_payload=max_payload)
    t = traffic.seconds(clk / divisor, clk)
    return {"frames": traffic.frames, "bytes_sent": traffic.bytes_sent,
            "bytes_received": traffic.bytes_received, "link_cycles": traffic.link_cycles,
            "engine_cycles": traffic.engine_cycles,
            "engine_cycles_board_dsp": step_traffic(config, dsp=board.dsp).engine_cycles,
            "seconds": t, "double_buffer_gain": t["engine"] / t["step"]}


def row(board, steps: int, tmp: Path) -> dict:
    config, clk, divisor = _board_link(board)
    sim = simulate(board, steps, tmp)
    mod = model(board, sim["max_payload"])
    sim_step = sum(s["sim_seconds"] for s in sim["steps"]) / len(sim["steps"])
    return {
        "board": board.name, "network": "-".join(map(str, config.layers)),
        "batch_size": config.batch_size, "array": f"{config.array_rows}x{config.array_cols}",
        "clock_hz": clk, "baud": board.link_baud, "uart_divisor": divisor,
        "uart_baud": clk / divisor, "simulated": {**sim, "step_seconds": sim_step,
                                                  "steps_per_second": 1 / sim_step},
        "model": mod,
        "model_error": mod["seconds"]["step"] / sim_step - 1,
    }


def table(rows) -> str:
    head = (f"{'board':15} {'network':10} {'batch':>5} {'baud':>5} {'MHz':>4} "
            f"{'sent B':>7} {'recv B':>6} {'line ms':>8} {'engine ms':>9} {'turn ms':>7} "
            f"{'model/s':>7} {'sim/s':>6} {'diff':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        m, t = r["model"], r["model"]["seconds"]
        lines.append(
            f"{r['board']:15} {r['network']:10} {r['batch_size']:5} {r['baud'] / 1e6:4g}M "
            f"{r['clock_hz'] / 1e6:4g} {m['bytes_sent']:7,} {m['bytes_received']:6,} "
            f"{1e3 * t['line']:8.2f} {1e3 * t['engine']:9.3f} {1e3 * t['turnaround']:7.3f} "
            f"{t['steps_per_second']:7.2f} {r['simulated']['steps_per_second']:6.2f} "
            f"{100 * r['model_error']:+5.1f}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default=",".join(BOARDS),
                    help="boards to run, comma-separated (default: all)")
    ap.add_argument("--steps", type=int, default=2,
                    help="simulated training steps per board (simulated time is deterministic)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/link.json"))
    args = ap.parse_args(argv)
    boards = [get_board(b.strip()) for b in args.boards.split(",") if b.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="intrain-link-") as tmp:
        for board in boards:
            print(f"{board.name}: simulating {args.steps} steps ...", flush=True)
            rows.append(row(board, args.steps, Path(tmp)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    result = {"benchmark": "link", "steps": args.steps, "boards": rows,
              "machine": {"python": platform.python_version(), "processor": platform.machine()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

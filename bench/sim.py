"""RTL simulation speed of the training engine, per simulator, in one run.

Trains the default network (built-in digits, 64-256-10, 2-8-8-8, batch 64) on the engine with an
8x8 array through the cocotb testbench (host transfers and the golden model's check of every
step included), on Verilator and on Icarus Verilog (when installed), and tabulates:
- simulated clock cycles per second and training samples per second;
- the wall time of the training steps (one epoch on Verilator by default);
- the MAC utilization of the training steps, per phase (busy MAC-cycles / (PEs x cycles)).
Icarus is much slower: it runs ``--icarus-steps`` steps (2 by default) of the same training.
Every step is checked by the engine's tensor CRCs. Verilator runs its model in this process
(the direct harness, row ``verilator``), and as baselines in the same run: the same training in
the cocotb testbench (``verilator-cocotb``) and in the direct harness with every tensor read
back after every step (``verilator-readback``, the check of the previous engine).
The testbench times the training steps itself, so the build (cached) is not in the figures.

The runs are the points of a sweep (:mod:`intrain.sweep_run`) on one Dask worker, one after the
other, so neither slows the other; ``--scheduler tcp://HOST:PORT`` runs them on an existing
Dask cluster (the figures are then those of its workers).

    python bench/sim.py [--steps N] [--icarus-steps N] [--array 8x8] [--sims verilator,icarus]
                        [--layers SPEC] [--batch-size N] [--json FILE]
                        [--scheduler tcp://HOST:PORT]

The digits CNN (its MAC utilization per phase, ``bench/results/sim_conv.json``):

    python bench/sim.py --layers 1x8x8,16C3,MP2,32C3,MP2,10 --batch-size 16 --steps 20 \\
        --json bench/results/sim_conv.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from intrain.config import Config
from intrain.sim.tools import available_simulators
from intrain.sweep import Point, TrainOptions
from intrain.sweep_run import open_client, run_sweep


def _run(config, sims, args) -> dict:
    """Train on each simulator (and on Verilator once more with every tensor read back after
    every step), as the points of one sweep; the reports by run name, with the wall time of
    each run (its build included) as ``wall_seconds``."""
    runs = [(sim, sim, 0, "auto") for sim in sims]
    if "verilator" in sims:
        runs[1:1] = [("verilator-cocotb", "verilator", 0, "cocotb"),
                     ("verilator-readback", "verilator", 1, "direct")]
    points = [Point(index=n, config=config, jobs=("train",),
                    train=TrainOptions(backend="rtl", sim=sim, float_baseline=False,
                                       evaluate_on_rtl=False, check_every=check_every,
                                       harness=harness,
                                       steps=args.steps if sim == "verilator"
                                       else args.icarus_steps))
              for n, (_, sim, check_every, harness) in enumerate(runs)]
    with tempfile.TemporaryDirectory(prefix="intrain-sim-") as tmp, \
            open_client(workers=None if args.scheduler else 1,
                        scheduler=args.scheduler) as client:
        result = run_sweep(points, tmp, client)
    results = {}
    for (name, _, check_every, _), p in zip(runs, points):
        record = result.records[result.keys[p.index]["train"]]
        if "error" in record:
            sys.exit(f"{name}: {record['error']}")
        results[name] = {**record["report"], "wall_seconds": record["seconds"],
                         "check": "full read-back every step" if check_every
                         else "CRC every step", "harness": record["report"]["harness"]}
    return results


def _useful_macs(config, report) -> int:
    """The network's MACs in the run's training steps (full batches, then the rest)."""
    from intrain.hdl.engine import EngineGeometry

    geo, b = EngineGeometry(config), config.batch_size
    full, rest = divmod(report["samples_trained"], b)
    return full * geo.useful_train_macs(b) + (geo.useful_train_macs(rest) if rest else 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None,
                    help="Verilator: training steps (default: one epoch, 23 steps)")
    ap.add_argument("--icarus-steps", type=int, default=2, help="Icarus: training steps")
    ap.add_argument("--array", default="8x8", help="systolic array, ROWSxCOLS")
    ap.add_argument("--layers", help="the network (default: the default network), e.g. the "
                    "digits CNN 1x8x8,16C3,MP2,32C3,MP2,10")
    ap.add_argument("--batch-size", type=int, help="batch size (default: the default's, 64)")
    ap.add_argument("--sims", default="verilator,icarus",
                    help="simulators to run, comma-separated (those installed)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/sim.json"))
    ap.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                    help="run on an existing Dask cluster")
    args = ap.parse_args(argv)
    rows_, _, cols_ = args.array.partition("x")
    extra = {"layers": args.layers} if args.layers else {}
    if args.batch_size:
        extra["batch_size"] = args.batch_size
    config = Config(epochs=1, array_rows=int(rows_), array_cols=int(cols_), **extra)
    asked = [s.strip() for s in args.sims.split(",") if s.strip()]
    sims = [s for s in asked if s in available_simulators()]
    # The testbench times the training steps itself: the build is not in the figures.
    results = _run(config, sims, args)

    print(f"\nnetwork {'-'.join(map(str, config.layers))}, batch {config.batch_size}, "
          f"{config.array_rows}x{config.array_cols} array; training steps with golden checks")
    head = (f"{'run':<19} {'steps':>5} {'cycles':>10} {'train s':>8} {'cycles/s':>10} "
            f"{'samples/s':>10} {'MAC util':>9}  check")
    print(head)
    for sim, r in results.items():
        print(f"{sim:<19} {r['steps']:>5} {r['cycles']:>10,} {r['train_seconds']:>8.1f} "
              f"{r['sim_cycles_per_second']:>10,.0f} {r['sim_samples_per_second']:>10,.1f} "
              f"{r['mac_utilization']:>8.1%}  {r['check']}")
    if "verilator" in results:
        r = results["verilator"]
        useful = _useful_macs(config, r)
        r["useful_mac_utilization"] = useful / (config.array_rows * config.array_cols
                                                * r["cycles"])
        print(f"\nuseful MACs (the network's, padding and masked lanes not counted): "
              f"{r['useful_mac_utilization']:.1%} of the array's MAC-cycles")
        print("\nMAC utilization per phase (Verilator run)")
        print(f"{'phase':<10} {'cycles':>10} {'MAC-cycles':>12} {'utilization':>12}")
        for name, p in r["phases"].items():
            print(f"{name:<10} {p['cycles']:>10,} {p['mac_cycles']:>12,} "
                  f"{p['mac_utilization']:>11.1%}")
    if "verilator-readback" in results:
        v, b = results["verilator"], results["verilator-readback"]
        print(f"\nCRC checks: {b['train_seconds'] / v['train_seconds']:.1f}x faster than full "
              "read-back")
    if "verilator-cocotb" in results:
        v, c = results["verilator"], results["verilator-cocotb"]
        print(f"direct harness: {c['train_seconds'] / v['train_seconds']:.1f}x faster than the "
              "cocotb testbench")
    if "verilator" in results and "icarus" in results:
        v, i = results["verilator"], results["icarus"]
        print(f"\nVerilator simulates {v['sim_cycles_per_second'] / i['sim_cycles_per_second']:.0f}"
              "x as many cycles per second as Icarus")
    missing = [s for s in asked if s not in sims]
    if missing:
        print(f"(not installed: {', '.join(missing)})")
    keep = ("steps", "samples_trained", "cycles", "mac_cycles", "mac_utilization",
            "useful_mac_utilization", "phases",
            "train_seconds", "sim_cycles_per_second", "sim_samples_per_second", "bit_exact",
            "checks", "check", "harness", "wall_seconds")
    out = {
        "benchmark": "RTL simulation of the training engine",
        "network": list(config.layers), "bits": "2-8-8-8", "batch_size": config.batch_size,
        "array": [config.array_rows, config.array_cols],
        "simulators": {s: {k: r[k] for k in keep if k in r} for s, r in results.items()},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

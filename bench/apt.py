"""APT mode against fixed error widths on the built-in digits, in one run.

For a starting error width kE of 4 and 6 (every layer): the golden model trained with that width
fixed, with APT mode from it, and with fixed 8-bit errors (one run, shared by both rows). The
table gives the test accuracy after the full schedule, the widths each layer ends with, and the
cost of a training step on the engine (default 8x8 array, full batch): the engine's cycle model
(``EngineGeometry.train_cycles``, which its cycle counter matches in every step of the engine
tests, APT mode included) and the width of its array's operands (in APT mode the engine keeps
every error ``apt_max`` bits wide, so the cost is in the multipliers' width, not in cycles).
The mean over the run follows the short last batch of each epoch. One test set
of 355 images makes one image 0.28 points, so the mean test accuracy over ``--seeds`` seeds
(from ``--seed`` on; weights, data order and lanes) stands beside the first seed's.

    python bench/apt.py [--epochs N] [--seed N] [--seeds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from intrain.config import Config
from intrain.data import load_digits
from intrain.hdl.engine import EngineGeometry
from intrain.hdl.systolic_array import SystolicArray
from intrain.train import train


def _step_costs(config: Config, n_train: int, steps: int):
    """Cycles of a full-batch step, the mean cycles per step of the run (the last batch of an
    epoch short) and a full-batch step of the same engine without APT mode. The engine keeps
    its errors ``apt_max`` bits wide in APT mode (operands of its array included), so a
    step's cycles do not depend on the widths in force (the engine tests check its cycle
    counter against this model in every step, APT mode included)."""
    geometry = EngineGeometry(config)
    per_epoch = -(-n_train // config.batch_size)
    short = n_train - (per_epoch - 1) * config.batch_size
    full = config.batch_size
    total = sum(geometry.train_cycles(short if step % per_epoch == per_epoch - 1 else full)
                for step in range(steps))
    base = EngineGeometry(config.replace(apt=False)).train_cycles(full)
    return geometry.train_cycles(full), total / steps, base


def _run(config: Config, data, seeds: int) -> dict:
    report = train(config, data, float_baseline=False, progress=False)
    accuracies = [report.test_accuracy] + [
        train(config.replace(seed=config.seed + i), data, float_baseline=False,
              progress=False).test_accuracy for i in range(1, seeds)]
    start = [b.e for b in config.bits]
    final = report.extra["apt_widths"][-1] if config.apt else start
    events = report.extra.get("apt_events", [])
    step, mean, base = _step_costs(config, data.n_train, report.steps)
    return {
        "start_ke": start[0], "apt": config.apt, "bits": str(config.bits[0]),
        "test_accuracy": report.test_accuracy, "test_accuracy_seeds": accuracies,
        "mean_test_accuracy": sum(accuracies) / len(accuracies), "final_widths": final,
        "apt_widths": report.extra.get("apt_widths"), "apt_events": events,
        "cycles_per_step": step, "extra_cycles_per_step": step - base,
        "mean_cycles_per_step": mean, "steps": report.steps,
        "array_operand_bits": SystolicArray.operand_shape(config).width,
        "train_seconds": report.train_seconds,
    }


def _table(runs, seeds) -> str:
    head = (f"{'start kE':>8}  {'errors':<12} {'test acc':>8}  {f'mean of {seeds}':>10}  "
            f"{'final kE per layer':<18} "
            f"{'operands':>8} {'cycles/step':>11} {'extra':>6} {'mean cycles/step':>16}")
    lines = [head, "-" * len(head)]
    for r in runs:
        mode = "APT" if r["apt"] else f"fixed {r['bits'].split('-')[-1]}-bit"
        lines.append(f"{r['start_ke']:>8}  {mode:<12} {r['test_accuracy']:>8.2%}  "
                     f"{r['mean_test_accuracy']:>10.2%}  "
                     f"{'-'.join(map(str, r['final_widths'])):<18} "
                     f"{r['array_operand_bits']:>7}b {r['cycles_per_step']:>11,} "
                     f"{r['extra_cycles_per_step']:>+6,} {r['mean_cycles_per_step']:>16,.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=Config().epochs, help="training epochs")
    ap.add_argument("--seed", type=int, default=0, help="seeds weights, data order and lanes")
    ap.add_argument("--seeds", type=int, default=4, help="seeds of the mean test accuracy")
    ap.add_argument("--json", type=Path, default=Path("bench/results/apt.json"))
    args = ap.parse_args(argv)

    data = load_digits()
    base = Config(layers=(data.n_features, *Config().layers[1:-1], data.n_classes),
                  epochs=args.epochs, seed=args.seed)
    plan = [(4, False), (4, True), (6, False), (6, True), (8, False)]
    runs = []
    for k_e, apt in tqdm(plan, desc="apt bench", unit="run"):
        config = base.replace(bits=f"2-8-8-{k_e}", apt=apt)
        runs.append(_run(config, data, args.seeds))
    print(f"digits, network {'-'.join(map(str, base.layers))}, W-A-G-E 2-8-8-kE, "
          f"{args.epochs} epochs, batch {base.batch_size}, seed {args.seed}; APT threshold "
          f"{base.apt_threshold[0]}/{base.apt_threshold[1]}, step {base.apt_step}, max "
          f"{base.apt_max}; cycles on the {base.array_rows}x{base.array_cols} engine")
    order = [runs[0], runs[1], runs[4], runs[2], runs[3], runs[4]]
    print(_table(order, args.seeds))
    apt4, fixed8 = runs[1], runs[4]
    print(f"APT from kE = 4: {apt4['test_accuracy']:.2%}, fixed 8-bit {fixed8['test_accuracy']:.2%}"
          f" ({100 * (apt4['test_accuracy'] - fixed8['test_accuracy']):+.2f} points), fixed "
          f"4-bit {runs[0]['test_accuracy']:.2%}; means of {args.seeds} seeds: "
          f"{apt4['mean_test_accuracy']:.2%}, {fixed8['mean_test_accuracy']:.2%}, "
          f"{runs[0]['mean_test_accuracy']:.2%}")
    result = {
        "benchmark": "APT mode against fixed error widths", "dataset": data.name,
        "config": base.to_dict(), "seeds": list(range(args.seed, args.seed + args.seeds)),
        "cycle_model": "EngineGeometry.train_cycles(batch), which the engine's cycle counter "
                       "matches in every step of its tests (APT mode included): in APT mode "
                       "the engine holds its errors apt_max bits wide, its array's operands "
                       "too, so the widths in force do not change a step's cycles",
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

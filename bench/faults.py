"""Test accuracy against the bit-error rate of the stored weights, integer and float32.

Trains the default digits network (``intrain train`` with no options: 64-256-10, 2-8-8-8,
batch 64) at every rate of a sweep over several decades, with memory faults injected after
every update (``Config.bit_error_rate``: each bit of every stored weight flips with that
probability per step; the integer model's 8-bit words, the float32 baseline's 32-bit weights and
biases). Both arms train in the same run with the same epochs, batches and rates; each rate is
trained with several seeds and the table gives the mean test accuracy. The threshold of an arm
is the highest rate at which it, and every lower rate, stays within 2 points of its fault-free
accuracy.

    python bench/faults.py [--epochs N] [--seeds N] [--json FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from intrain.config import Config
from intrain.data import load_digits
from intrain.fileio import replacing, write_text
from intrain.train import train

#: 0, then 1, 2 and 5 per decade from 1e-9 to 1e-2.
RATES = [0.0] + [float(f"{m}e{e}") for e in range(-9, -2) for m in (1, 2, 5)] + [1e-2]
#: Accuracy points an arm may lose and still count as tolerating a rate.
TOLERANCE = 0.02


def threshold(rates, accuracies, tolerance=TOLERANCE):
    """The highest rate up to which every rate's accuracy stays within ``tolerance`` of the
    accuracy at rate 0 (the first); None if even the lowest nonzero rate does not."""
    best = None
    for rate, acc in zip(rates[1:], accuracies[1:]):
        if acc < accuracies[0] - tolerance:
            break
        best = rate
    return best


def sweep(config: Config, data, rates, seeds) -> list[dict]:
    """Train every (rate, seed); a row per rate with both arms' accuracies and flips."""
    rows = []
    for rate in rates:
        runs = []
        for seed in seeds:
            r = train(config.replace(bit_error_rate=rate, seed=seed), data, progress=False)
            runs.append(r)
        rows.append({
            "bit_error_rate": rate,
            "integer_test_accuracy": statistics.mean(r.test_accuracy for r in runs),
            "float_test_accuracy": statistics.mean(r.float_test_accuracy for r in runs),
            "integer_runs": [r.test_accuracy for r in runs],
            "float_runs": [r.float_test_accuracy for r in runs],
            "integer_flips_per_run": statistics.mean(r.extra.get("bit_flips", 0) for r in runs),
            "float_flips_per_run": statistics.mean(r.extra.get("float_bit_flips", 0)
                                                   for r in runs),
        })
        print(_row(rows[-1]), flush=True)
    return rows


def _row(r) -> str:
    return (f"| {r['bit_error_rate']:.0e} | {100 * r['integer_test_accuracy']:.2f} % | "
            f"{100 * r['float_test_accuracy']:.2f} % | {r['integer_flips_per_run']:,.0f} | "
            f"{r['float_flips_per_run']:,.0f} |")


def plot(rows, thresholds, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [r["bit_error_rate"] for r in rows[1:]]
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for key, label, color in (("integer", "integer 2-8-8-8", "C0"), ("float", "float32", "C1")):
        acc = [100 * r[f"{key}_test_accuracy"] for r in rows]
        ax.plot(rates, acc[1:], "o-", color=color, label=label)
        ax.axhline(acc[0], color=color, ls=":", lw=1)
        ax.axhline(acc[0] - 100 * TOLERANCE, color=color, ls="--", lw=0.8)
        if thresholds[key] is not None:
            ax.axvline(thresholds[key], color=color, lw=0.8, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("bit-error rate (per stored-weight bit per step)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=Config().epochs, help="epochs of every run")
    ap.add_argument("--seeds", type=int, default=3, help="runs per rate (seeds 0, 1, ...)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/faults.json"))
    ap.add_argument("--plot", type=Path, default=Path("bench/results/faults.png"))
    args = ap.parse_args(argv)

    data = load_digits()
    config = Config(layers=(data.n_features, *Config().layers[1:-1], data.n_classes),
                    epochs=args.epochs)
    print(f"digits, network {'-'.join(map(str, config.layers))}, {args.epochs} epochs, batch "
          f"{config.batch_size}, mean test accuracy of {args.seeds} seeds", file=sys.stderr)
    print("| bit-error rate | integer 2-8-8-8 | float32 | integer flips / run | "
          "float32 flips / run |")
    print("| --- | --- | --- | --- | --- |")
    t0 = time.perf_counter()
    rows = sweep(config, data, RATES, range(args.seeds))
    rates = [r["bit_error_rate"] for r in rows]
    thresholds = {key: threshold(rates, [r[f"{key}_test_accuracy"] for r in rows])
                  for key in ("integer", "float")}
    for key, name in (("integer", "integer"), ("float", "float32")):
        t = thresholds[key]
        print(f"{name}: within {100 * TOLERANCE:.0f} points of fault-free up to "
              f"{'no rate tried' if t is None else f'{t:.0e}'}")
    result = {
        "benchmark": "test accuracy against bit-error rate",
        "network": list(config.layers), "bits": str(config.bits[0]),
        "batch_size": config.batch_size, "epochs": args.epochs, "seeds": args.seeds,
        "tolerance": TOLERANCE, "thresholds": thresholds, "rows": rows,
        "seconds": time.perf_counter() - t0,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps(result, indent=2) + "\n")
    plot(rows, thresholds, args.plot, f"digits {'-'.join(map(str, config.layers))}, "
         f"{args.epochs} epochs, memory faults in the stored weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())

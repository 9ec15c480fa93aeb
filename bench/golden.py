"""Training throughput of the integer golden model against float32 trainers, in one run.

Trains the same network with the same batches of the built-in digits through:
- the integer golden model (``intrain.golden.model.GoldenModel``, 2-8-8-8 by default);
- the float32 NumPy baseline (``intrain.golden.float_trainer.FloatMLP``);
- a float32 PyTorch CPU trainer of the same network (when torch is installed).
Epochs of the trainers are interleaved, round after round, so that a noisy machine slows them
alike; the table gives the median over rounds of training samples per second (time spent in
training steps only) and the ratio to the float32 NumPy trainer.

A second table does the same for LeNet-5 (WAGE's MNIST network,
``1x28x28,32C5,MP2,64C5,MP2,512,10``): the golden model against the float32 NumPy trainer of
the same network (``FloatNet``), steps interleaved on random 28x28 images, median over steps.

    python bench/golden.py [--rounds N] [--batch-size N] [--layers 64,256,10]
                           [--lenet-steps N] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from intrain.config import Config
from intrain.data import load_digits
from intrain.golden.float_trainer import FloatMLP, FloatNet
from intrain.golden.model import GoldenModel

LENET5 = "1x28x28,32C5,MP2,64C5,MP2,512,10"


def _torch_trainer(layers, seed):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    mods = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    return step, torch


def lenet_throughput(steps: int, batch_size: int, bits: str) -> dict:
    """Samples per second of LeNet-5 training steps on random 28x28 images, golden model and
    float32 NumPy, steps interleaved (one warm-up step each, not counted)."""
    config = Config(layers=LENET5, bits=bits, batch_size=batch_size)
    rng = np.random.default_rng(0)
    a0 = rng.integers(-127, 128, size=(steps + 1, batch_size, 1, 28, 28))
    labels = rng.integers(0, 10, size=(steps + 1, batch_size))
    f0 = (a0 / 128.0).astype(np.float32)
    int_model, float_model = GoldenModel(config), FloatNet(config.plan, seed=0)
    times = {"integer golden": [], "float32 NumPy": []}
    steppers = {"integer golden": lambda s: int_model.train_step(a0[s], labels[s], 0),
                "float32 NumPy": lambda s: float_model.train_step(f0[s], labels[s])}
    for s in range(steps + 1):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            step(s)
            if s:
                times[name].append(batch_size / (time.perf_counter() - t0))
    return times


def _table(times: dict) -> dict:
    """Print the median, min and max samples/s of each trainer; return the medians."""
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["float32 NumPy"]
    print(f"{'trainer':<22} {'samples/s (median)':>19} {'min':>9} {'max':>9} "
          f"{'vs float32 NumPy':>17}")
    for name, v in times.items():
        print(f"{name:<22} {med[name]:>19,.0f} {min(v):>9,.0f} {max(v):>9,.0f} "
              f"{med[name] / base:>16.2f}x")
    return med


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="epochs per trainer (interleaved)")
    ap.add_argument("--batch-size", type=int, default=Config().batch_size)
    ap.add_argument("--layers", default=None, help="default: the default network")
    ap.add_argument("--bits", default="2-8-8-8")
    ap.add_argument("--lenet-steps", type=int, default=7,
                    help="LeNet-5 training steps per trainer (0: leave LeNet-5 out)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads of the NumPy trainers (the PyTorch trainer uses one)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/golden.json"))
    args = ap.parse_args(argv)
    # threadpoolctl comes with scikit-learn; the limit holds for the rest of the run.
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=args.threads, user_api="blas")

    data = load_digits()
    layers = (tuple(int(v) for v in args.layers.split(",")) if args.layers
              else (data.n_features, *Config().layers[1:-1], data.n_classes))
    config = Config(layers=layers, bits=args.bits, batch_size=args.batch_size)
    a_train, _ = data.quantize(config.input_bits)
    y = data.y_train
    f_train = (a_train / 128.0).astype(np.float32)
    int_model = GoldenModel(config)
    float_model = FloatMLP(layers, seed=0)
    torch_trainer = _torch_trainer(layers, 0)
    rng = np.random.default_rng(0)
    times = {"integer golden": [], "float32 NumPy": []}
    if torch_trainer:
        step, torch = torch_trainer
        tx, ty = torch.from_numpy(f_train), torch.from_numpy(y)
        times["float32 PyTorch CPU"] = []

    def epoch(name, fn):
        t = 0.0
        for s in range(0, data.n_train, config.batch_size):
            idx = order[s:s + config.batch_size]
            t0 = time.perf_counter()
            fn(idx)
            t += time.perf_counter() - t0
        times[name].append(data.n_train / t)

    for r in range(args.rounds + 1):  # round 0 warms up and is not counted
        order = rng.permutation(data.n_train)
        epoch("integer golden", lambda idx: int_model.train_step(a_train[idx], y[idx], 0))
        epoch("float32 NumPy", lambda idx: float_model.train_step(f_train[idx], y[idx]))
        if torch_trainer:
            epoch("float32 PyTorch CPU", lambda idx: step(tx[idx], ty[idx]))
        if r == 0:
            for v in times.values():
                v.clear()
    print(f"network {'-'.join(map(str, layers))}, batch {config.batch_size}, "
          f"{data.n_train} samples per epoch, {args.rounds} rounds")
    med = _table(times)
    base = med["float32 NumPy"]
    if not torch_trainer:
        print("(PyTorch not installed: its row is left out)")
    result = {
        "benchmark": "golden training throughput",
        "network": list(layers), "bits": args.bits, "batch_size": config.batch_size,
        "rounds": args.rounds, "samples_per_epoch": data.n_train,
        "samples_per_second": med,
        "samples_per_second_all_rounds": times,
        "integer_vs_float32_numpy": med["integer golden"] / base,
        "lenet5": None,
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                    "platform": platform.platform(), "processor": platform.machine(),
                    "blas_threads": args.threads},
    }
    if args.lenet_steps > 0:
        lenet = lenet_throughput(args.lenet_steps, config.batch_size, args.bits)
        print(f"\nLeNet-5 {LENET5}, batch {config.batch_size}, random 28x28 images, "
              f"{args.lenet_steps} steps")
        lmed = _table(lenet)
        result["lenet5"] = {
            "network": LENET5, "steps": args.lenet_steps, "samples_per_second": lmed,
            "samples_per_second_all_steps": lenet,
            "integer_vs_float32_numpy": lmed["integer golden"] / lmed["float32 NumPy"]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

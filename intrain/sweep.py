"""``intrain sweep``: a design-space sweep, each point built, trained or both, on Dask.

A sweep is the product of its axes: ``board``, ``layers``, ``array``, ``bits``, ``batch``,
``clock`` and ``seed`` (nextpnr's placer seed). Each point is a :class:`~intrain.config.Config`
(the ``config`` file, else the board's default, else the defaults, with the point's values)
and a kind of job: ``build`` (a bitstream and its report through
:func:`intrain.boards.build.build_board`), ``train`` (the golden model or the RTL in simulation,
with the report of ``intrain train --report``) or ``both``. The spec comes from a TOML file::

    job = "build"                              # build, train or both
    board = ["icebreaker", "tang-nano-9k"]
    layers = ["16,10", "64,10"]                # or [[16, 10], [64, 10]]; [64, 10] is one network
    array = ["1x1", "1x2"]
    bits = ["2-8-8-8", "2-8-8-8,4-8-8-8"]      # one for all layers, or one per layer
    batch = [8, 16]
    clock = [24]                               # MHz; unset: the board's default
    seed = [1, 2, 3]
    config = "base.toml"                       # relative to this file

    [train]
    backend = "golden"                         # or "rtl" (with sim = "verilator" or "icarus")
    data = "digits"
    epochs = 10                                # and/or steps = N; float = false skips float32

    [build]
    fit_check = true

and from the command line, whose lists replace the file's. Every axis takes one value or a
list. The points run as Dask tasks (:mod:`intrain.sweep_run`); the results land in one table
(``sweep.json``, ``sweep.csv``) and its plots (:mod:`intrain.sweep_plot`).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from intrain.config import Config
from intrain.errors import ConfigError

__all__ = ["AXES", "JOB_KINDS", "TrainOptions", "Point", "load_spec", "expand", "pareto",
           "add_arguments", "run"]

#: The axes of a sweep, in the order points are numbered.
AXES = ("board", "layers", "array", "bits", "batch", "clock", "seed")
#: What a point does, per ``job``.
JOB_KINDS = {"build": ("build",), "train": ("train",), "both": ("build", "train")}
_TRAIN_KEYS = ("backend", "sim", "data", "epochs", "steps", "float")
_BUILD_KEYS = ("fit_check",)
_BACKENDS = ("golden", "rtl")
_SIMULATORS = ("verilator", "icarus")


@dataclass(frozen=True)
class TrainOptions:
    """How a point trains: the backend (``golden`` or ``rtl``), the simulator of ``rtl``, the
    data set, a limit on the steps, whether the float32 baseline trains beside it, and (rtl)
    whether the test set runs on the engine, how often every tensor is read back, and the
    harness of a Verilator run (:func:`intrain.sim.engine_run.run_engine`)."""

    backend: str = "golden"
    sim: str = "verilator"
    data: str = "digits"
    steps: int | None = None
    float_baseline: bool = True
    evaluate_on_rtl: bool = True
    check_every: int = 0
    harness: str = "auto"

    def to_dict(self) -> dict:
        return {"backend": self.backend, "sim": self.sim, "data": self.data,
                "steps": self.steps, "float_baseline": self.float_baseline,
                "evaluate_on_rtl": self.evaluate_on_rtl, "check_every": self.check_every,
                "harness": self.harness}


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its configuration and what to do with it.

    ``clock`` is the PLL clock in MHz (``None``: the board's default) and ``seed`` the nextpnr
    placer seed; both matter to builds only.
    """

    index: int
    config: Config
    jobs: tuple[str, ...] = ("build",)
    board: str | None = None
    clock: float | None = None
    seed: int = 1
    train: TrainOptions = field(default_factory=TrainOptions)

    @property
    def layers(self) -> str:
        return "-".join(map(str, self.config.layers))

    @property
    def array(self) -> str:
        return f"{self.config.array_rows}x{self.config.array_cols}"

    @property
    def bits(self) -> str:
        return ",".join(dict.fromkeys(str(b) for b in self.config.bits))

    def target_mhz(self) -> float | None:
        if self.board is None:
            return self.clock
        from intrain.boards.registry import get_board
        return self.clock if self.clock is not None else get_board(self.board).default_clock_mhz

    def build_key(self, options: dict | None = None) -> str:
        """The name of the point's build (its task and its report): board, network, array,
        batch, clock, seed and a hash of everything the bitstream depends on."""
        from intrain.boards.protocol import config_hash
        opts = {k: getattr(v, "__qualname__", v) for k, v in sorted((options or {}).items())}
        digest = _digest([config_hash(self.config), self.target_mhz(), self.seed, repr(opts)])
        return (f"build-{self.board}-{self.layers}-{self.array}-b{self.config.batch_size}-"
                f"{self.target_mhz():g}MHz-s{self.seed}-{digest}")

    def train_key(self) -> str:
        """The name of the point's training run: points that differ only in what a build
        depends on (board, clock, seed) share it."""
        t = self.train
        where = t.backend if t.backend == "golden" else f"{t.sim}-{self.array}"
        digest = _digest([self.config.to_dict(), t.to_dict()])
        return (f"train-{where}-{self.layers}-{self.bits.replace(',', '+')}-"
                f"b{self.config.batch_size}-{digest}")

    def describe(self) -> str:
        """The point in a few words, for messages."""
        parts = [self.board] if self.board else []
        parts += [self.layers, self.array, self.bits, f"batch {self.config.batch_size}"]
        if "build" in self.jobs:
            parts += [f"{self.target_mhz():g} MHz", f"seed {self.seed}"]
        return f"point {self.index} ({', '.join(parts)})"


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# -- the spec ---------------------------------------------------------------------------------
def load_spec(path) -> dict:
    """Read a sweep spec from a TOML file (see the module's documentation); a ``config`` path
    in it is taken relative to the file."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read sweep spec {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep spec {path} is not valid TOML: {e}") from None
    known = {"job", "config", "train", "build", *AXES}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"sweep spec {path}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    for table, keys in (("train", _TRAIN_KEYS), ("build", _BUILD_KEYS)):
        if not isinstance(spec.get(table, {}), dict):
            raise ConfigError(f"sweep spec {path}: [{table}] must be a table")
        bad = sorted(set(spec.get(table, {})) - set(keys))
        if bad:
            raise ConfigError(f"sweep spec {path}: unknown key(s) in [{table}]: "
                              f"{', '.join(bad)}; known: {', '.join(keys)}")
    if "config" in spec:
        spec["config"] = str(path.parent / str(spec["config"]))
    return spec


def _alternatives(name, value, scalar=(str, int, float)) -> list:
    """The values of one axis: a scalar is one value, a list holds alternatives (but a list of
    integers is one network for ``layers``)."""
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"sweep: {name} lists no value")
        if name == "layers" and all(isinstance(v, int) for v in value):
            return [value]
        return value
    if isinstance(value, scalar) and not isinstance(value, bool):
        return [value]
    raise ConfigError(f"sweep: {name} must be a value or a list of values, not {value!r}")


def _parse_layers(v):
    if isinstance(v, list):
        return tuple(v)
    text = str(v).replace("-", ",").replace(" ", "")
    parts = text.split(",")
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"sweep: layers must be sizes such as 64,256,10, not {v!r}")
    return tuple(int(p) for p in parts)


def _parse_array(v):
    rows, _, cols = str(v).lower().partition("x")
    if not (rows.isdigit() and cols.isdigit()):
        raise ConfigError(f"sweep: array must be ROWSxCOLS, e.g. 2x2, not {v!r}")
    return int(rows), int(cols)


def _parse_bits(v):
    return tuple(v) if isinstance(v, list) else tuple(str(v).split(","))


def _parse_number(kind, name, lo):
    def parse(v):
        try:
            x = kind(v)
        except (TypeError, ValueError):
            x = None
        if isinstance(v, bool) or x is None or x < lo or (kind is int and x != float(v)):
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"sweep: {name} must be {what} of at least {lo}, not {v!r}")
        return x
    return parse


def _parse_board(v):
    from intrain.boards.registry import get_board
    return get_board(str(v)).name


_PARSERS = {
    "board": _parse_board, "layers": _parse_layers, "array": _parse_array, "bits": _parse_bits,
    "batch": _parse_number(int, "batch", 1), "clock": _parse_number(float, "clock", 1e-3),
    "seed": _parse_number(int, "seed", 0),
}


def _train_options(table: dict) -> tuple[TrainOptions, int | None]:
    """The training options of a spec and the epochs it asks for (``None``: the config's)."""
    backend = table.get("backend", "golden")
    if backend not in _BACKENDS:
        raise ConfigError(f"sweep: train backend must be {' or '.join(_BACKENDS)}, not "
                          f"{backend!r}")
    sim = table.get("sim", "verilator")
    if sim not in _SIMULATORS:
        raise ConfigError(f"sweep: sim must be {' or '.join(_SIMULATORS)}, not {sim!r}")
    if sim != "verilator" and backend != "rtl":
        raise ConfigError("sweep: sim needs the rtl backend")
    steps, epochs = table.get("steps"), table.get("epochs")
    steps = None if steps is None else _parse_number(int, "steps", 1)(steps)
    epochs = None if epochs is None else _parse_number(int, "epochs", 1)(epochs)
    use_float = table.get("float", True)
    if not isinstance(use_float, bool):
        raise ConfigError(f"sweep: float must be true or false, not {use_float!r}")
    return TrainOptions(backend=backend, sim=sim, data=str(table.get("data", "digits")),
                        steps=steps, float_baseline=use_float), epochs


def expand(spec: dict) -> list[Point]:
    """The points of ``spec`` (a dict as :func:`load_spec` returns), numbered from 0 in the
    order of :data:`AXES`; raises :class:`~intrain.errors.ConfigError` with one line for a bad
    spec or a point whose configuration is invalid."""
    job = spec.get("job", "build" if spec.get("board") else "train")
    if job not in JOB_KINDS:
        raise ConfigError(f"sweep: job must be {', '.join(JOB_KINDS)}, not {job!r}")
    jobs = JOB_KINDS[job]
    axes = {a: [_PARSERS[a](v) for v in _alternatives(a, spec[a])] if spec.get(a) is not None
            else [None] for a in AXES}
    if "build" in jobs and axes["board"] == [None]:
        raise ConfigError(f"sweep: a {job} sweep needs at least one board (board = [...] in the "
                          "spec, or --board); see `intrain boards`")
    if "build" not in jobs:
        given = [a for a in ("clock", "seed") if axes[a] != [None]]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise ConfigError(f"sweep: {' and '.join(given)} {verb} to builds only (job = "
                              "\"build\" or \"both\")")
    options, epochs = _train_options(spec.get("train", {}))
    build = spec.get("build", {})
    if not isinstance(build.get("fit_check", True), bool):
        raise ConfigError("sweep: fit_check must be true or false")
    base = Config.load(spec["config"]) if spec.get("config") else None
    if epochs is None and options.backend == "rtl" and base is None:
        from intrain.train import RTL_EPOCHS
        epochs = RTL_EPOCHS
    points = []
    for values in itertools.product(*(axes[a] for a in AXES)):
        p = dict(zip(AXES, values))
        config = _point_config(base, p, epochs, len(points))
        points.append(Point(index=len(points), config=config, jobs=jobs, board=p["board"],
                            clock=p["clock"], seed=1 if p["seed"] is None else p["seed"],
                            train=options))
    return points


def _point_config(base: Config | None, p: dict, epochs: int | None, index: int) -> Config:
    """The configuration of one point: ``base`` (else the board's default, else the defaults)
    with the point's layers, array, bits and batch."""
    if base is None:
        from intrain.boards.registry import get_board
        base = get_board(p["board"]).default_config if p["board"] else Config()
    changes = {}
    if p["layers"] is not None:
        changes["layers"] = p["layers"]
        if p["bits"] is None and len(p["layers"]) != len(base.layers):
            changes["bits"] = base.bits[:1] if len(set(base.bits)) == 1 else base.bits
    if p["array"] is not None:
        changes["array_rows"], changes["array_cols"] = p["array"]
    if p["bits"] is not None:
        changes["bits"] = p["bits"]
    if p["batch"] is not None:
        changes["batch_size"] = p["batch"]
    if epochs is not None:
        changes["epochs"] = epochs
    try:
        return base.replace(**changes)
    except ConfigError as e:
        what = ", ".join(f"{k} {_show(v)}" for k, v in p.items() if v is not None)
        raise ConfigError(f"sweep point {index} ({what}): {e}") from None


def _show(v) -> str:
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return f"{v[0]}x{v[1]}"
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


# -- the table --------------------------------------------------------------------------------
def pareto(rows: list[dict], cost: str = "lut", gain: str = "effective_gops") -> set[int]:
    """The points (``row["point"]``) on the Pareto front of ``rows``: no other row has at most
    their ``cost`` and at least their ``gain``, one of them strictly. Rows missing either
    value are left out."""
    pts = [(r[cost], r[gain], r["point"]) for r in rows
           if r.get(cost) is not None and r.get(gain) is not None]
    return {n for c, g, n in pts
            if not any(c2 <= c and g2 >= g and (c2 < c or g2 > g) for c2, g2, _ in pts)}


# -- the command ------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``intrain sweep`` to ``p``."""
    p.add_argument("spec", nargs="?", type=Path, metavar="SPEC.toml",
                   help="the sweep spec (see README); the lists below replace its values")
    p.add_argument("--job", choices=tuple(JOB_KINDS),
                   help="what each point does: a bitstream and its report, a training run, or "
                        "both (default: build when a board is named, else train)")
    p.add_argument("--board", nargs="+", metavar="NAME", help="boards (see `intrain boards`)")
    p.add_argument("--layers", nargs="+", metavar="N,N,...", help="networks, e.g. 64,10 64,32,10")
    p.add_argument("--array", nargs="+", metavar="RxC", help="array shapes, e.g. 1x1 2x2")
    p.add_argument("--bits", nargs="+", metavar="W-A-G-E[,...]",
                   help="bit widths, each one for all layers or one per layer")
    p.add_argument("--batch-size", nargs="+", dest="batch", metavar="N", help="batch sizes")
    p.add_argument("--clock", nargs="+", metavar="MHZ",
                   help="PLL clocks (builds; unset: each board's default)")
    p.add_argument("--seed", nargs="+", metavar="N", help="nextpnr placer seeds (builds; "
                   "default 1)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="base configuration of every point (.toml or .json); unset: the "
                        "board's default, or the defaults")
    p.add_argument("--backend", choices=_BACKENDS, help="train: the golden model or the RTL in "
                   "simulation (default golden)")
    p.add_argument("--sim", choices=_SIMULATORS, help="train: simulator of the rtl backend")
    p.add_argument("--data", metavar="SPEC", help="train: data set (default: digits)")
    p.add_argument("--epochs", type=int, metavar="N", help="train: epochs (unset: the config's)")
    p.add_argument("--steps", type=int, metavar="N", help="train: stop after N steps")
    p.add_argument("--no-float", action="store_true", help="train: skip the float32 baseline")
    p.add_argument("--no-fit-check", action="store_true",
                   help="build: try configurations the estimate says do not fit")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), metavar="DIR",
                   help="the table (sweep.json, sweep.csv), the plots and the reports; a "
                        "re-run with the same DIR skips points whose report is there")
    p.add_argument("--build-dir", type=Path, metavar="DIR",
                   help="where the workers build (default: DIR/builds; on a remote cluster, a "
                        "folder the workers can write)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="workers of the local Dask cluster (default: one per CPU core)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on an existing Dask cluster instead of a local one")
    p.add_argument("--no-plot", action="store_true", help="write the table only")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def spec_from_args(args) -> dict:
    """The spec of ``intrain sweep``: the file's, with the command line's values over it."""
    spec = load_spec(args.spec) if args.spec else {}
    for axis in AXES:
        if getattr(args, axis) is not None:
            spec[axis] = getattr(args, axis)
    if args.job is not None:
        spec["job"] = args.job
    if args.config is not None:
        spec["config"] = str(args.config)
    train = dict(spec.get("train", {}))
    for key in ("backend", "sim", "data", "epochs", "steps"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    if args.no_float:
        train["float"] = False
    spec["train"] = train
    if args.no_fit_check:
        spec["build"] = {**spec.get("build", {}), "fit_check": False}
    return spec


def run(args) -> int:
    """Carry out ``intrain sweep``; the exit status is 1 when a point failed."""
    from intrain.sweep_run import open_client, run_sweep, summary_text

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    if args.workers is not None and args.scheduler:
        raise ConfigError("--workers sizes the local cluster: leave it out with --scheduler")
    spec = spec_from_args(args)
    points = expand(spec)
    options = {"check": spec.get("build", {}).get("fit_check", True)}
    with open_client(workers=args.workers, scheduler=args.scheduler,
                     quiet=args.quiet) as client:
        result = run_sweep(points, args.out, client, progress=not args.quiet,
                           build_dir=args.build_dir, build_options=options)
    if not args.no_plot and result.rows:
        from intrain.sweep_plot import plot_sweep
        result.files.append(plot_sweep(result.rows, args.out / "sweep.png"))
    print(summary_text(result))
    if not args.quiet:
        print(f"intrain: sweep: wrote {', '.join(map(str, result.files))}", file=sys.stderr)
    return 1 if result.failed else 0

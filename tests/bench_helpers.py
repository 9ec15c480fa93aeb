"""The benchmark scripts of bench/ (not a package) loaded as modules, for their tests."""

import importlib.util
from pathlib import Path


def load_bench(name: str):
    """``bench/<name>.py`` as a module."""
    path = Path(__file__).parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""intrain: FPGA hardware that trains neural networks with integers only.

Subpackages: :mod:`intrain.golden` (bit-exact NumPy model), :mod:`intrain.hdl` (Amaranth RTL),
:mod:`intrain.sim` (cocotb simulation against the golden model), :mod:`intrain.boards` (FPGA
bitstreams and the host link). :class:`intrain.config.Config` is the one configuration object
they are all built from.
"""

__version__ = "0.1.0"

# Installed, the subpackages (golden, hdl, sim, boards) sit inside this package; in a source
# checkout they are folders beside it. When this file is imported from a checkout (for example
# `python -m intrain` run in the repository root), find them there too.
import pathlib as _pathlib

_checkout = _pathlib.Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "golden" / "__init__.py").is_file():
    __path__.append(str(_checkout))
del _pathlib, _checkout

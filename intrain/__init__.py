"""intrain: FPGA hardware that trains neural networks with integers only.

Subpackages: :mod:`intrain.golden` (bit-exact NumPy model), :mod:`intrain.hdl` (Amaranth RTL),
:mod:`intrain.sim` (cocotb simulation against the golden model), :mod:`intrain.boards` (FPGA
bitstreams and the host link). :class:`intrain.config.Config` is the one configuration object
they are all built from.
"""

__version__ = "0.1.0"

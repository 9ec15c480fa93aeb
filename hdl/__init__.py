"""The training hardware: Amaranth 0.5 components, each the twin of a function in
``intrain.golden``.

Every block is a :class:`~amaranth.lib.wiring.Component` with ``lib.stream`` ports, fully
pipelined (one element per cycle) and with its latency in cycles as a ``latency`` property.
"""

from .lfsr_bank import LfsrBank
from .log2round import Log2Round
from .max_abs import MaxAbs
from .shift_quantizer import ShiftQuantizer
from .stochastic_rounder import StochasticRounder
from .systolic_array import SystolicArray
from .transpose_memory import SliceMode, TransposeMemory
from .weight_updater import WeightUpdater

__all__ = [
    "LfsrBank",
    "Log2Round",
    "MaxAbs",
    "ShiftQuantizer",
    "StochasticRounder",
    "SliceMode",
    "SystolicArray",
    "TransposeMemory",
    "WeightUpdater",
]

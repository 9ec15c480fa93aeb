"""The training engine: every layer's weights, activations and errors in on-chip memories around
one systolic array, with its geometry (shapes, memory map, cycle model) apart from the hardware.

- :mod:`.geometry`: :class:`EngineGeometry`, plain Python from the configuration.
- :mod:`.top`: :class:`Engine`, the hardware.
- :mod:`.conv`, :mod:`.pool`: the block loops, kernel taps and lane masks of convolution layers,
  and the pool and unpool passes of max-pools.
- :mod:`.global_max`, :mod:`.crc`, :mod:`.update`, :mod:`.counters`: its stages as components
  (the maxima, the tensor CRCs, the update lanes, the run counters).
"""

from .geometry import EngineGeometry, MemorySpec
from .top import Engine, HostTarget, Phase

__all__ = ["Engine", "EngineGeometry", "HostTarget", "MemorySpec", "Phase"]

"""The training engine: every layer's weights, activations and errors in on-chip memories around
one systolic array, with its geometry (shapes, memory map, cycle model) apart from the hardware.

- :mod:`.geometry`: :class:`EngineGeometry`, plain Python from the configuration.
- :mod:`.top`: :class:`Engine`, the hardware.
- :mod:`.global_max`, :mod:`.crc`: its post-processing blocks.
"""

from .geometry import EngineGeometry, MemorySpec
from .top import Engine, HostTarget, Phase

__all__ = ["Engine", "EngineGeometry", "HostTarget", "MemorySpec", "Phase"]

"""The software twin of the engine's tensor CRCs (:class:`intrain.hdl.engine.crc.TensorCrc`).

The engine feeds every slice it writes to a tensor into a CRC-32 (zlib's): one word per write,
lane ``k`` as ``crc_element_bits`` of two's complement (0 for a lane the write masks off), lane 0
first, in the order :meth:`EngineGeometry.crc_layout` lists the writes. :func:`expected_crcs`
computes the same values from the golden model's tensors with NumPy and :func:`zlib.crc32`;
the tests check :func:`zlib.crc32` against ``amaranth.lib.crc``'s own ``compute()``.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from intrain.hdl.engine.geometry import EngineGeometry

__all__ = ["expected_crcs", "tensor_crc", "tensor_words"]


@lru_cache(maxsize=256)
def _gather(geometry: EngineGeometry, tensor: str, batch: int, cols: int) -> np.ndarray:
    """``(writes, lanes)`` flat indices into the ``? x cols`` matrix of ``tensor`` (``-1``: a
    lane written as 0), in the engine's write order."""
    layout = geometry.crc_layout(tensor, batch)
    lanes = geometry.lanes
    idx = np.full((len(layout), lanes), -1, dtype=np.int64)
    k = np.arange(lanes)
    for w, (r0, c0, dr, dc, n) in enumerate(layout):
        idx[w, :n] = (r0 + k[:n] * dr) * cols + c0 + k[:n] * dc
    return idx


def tensor_words(geometry: EngineGeometry, tensor: str, matrix, batch: int) -> bytes:
    """The bytes the engine's CRC unit takes for ``tensor`` (``matrix`` as the engine holds it,
    e.g. ``batch x n_out`` for an error) in a run of ``batch`` samples."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    idx = _gather(geometry, tensor, batch, matrix.shape[1])
    flat = np.append(matrix.reshape(-1), 0)          # index -1: the appended 0
    values = flat[idx].astype("<i8")
    n_bytes = geometry.crc_element_bits // 8
    return values.view(np.uint8).reshape(*values.shape, 8)[..., :n_bytes].tobytes()


def tensor_crc(geometry: EngineGeometry, tensor: str, matrix, batch: int) -> int:
    """The CRC-32 the engine reports for ``tensor`` holding ``matrix``."""
    return zlib.crc32(tensor_words(geometry, tensor, matrix, batch))


def expected_crcs(geometry: EngineGeometry, tensors: dict, batch: int) -> dict[str, int]:
    """The CRC of each tensor of ``tensors`` (name -> matrix, names as
    :attr:`EngineGeometry.crc_tensors`)."""
    return {name: tensor_crc(geometry, name, m, batch) for name, m in tensors.items()}

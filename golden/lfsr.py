"""Software twin of the LFSR bank: the same generators, seeds and order of draws as the hardware.

:func:`generate` is the plain reference (one lane, one draw at a time, straight from
:class:`~intrain.lfsr_spec.LfsrSpec`); :class:`LfsrBank` produces the same words for many lanes and
many draws at once, vectorised: a linear map over GF(2) is applied through four byte-indexed
tables, and ``n`` consecutive states come from ``log2 n`` doublings with the maps ``L ** 2 ** j``
(``L`` the leap of one draw).
"""

from __future__ import annotations

import numpy as np

from intrain.lfsr_spec import LfsrSpec, compose_maps

__all__ = ["generate", "LfsrBank"]


def generate(spec: LfsrSpec, seed: int, count: int) -> list[int]:
    """The first ``count`` draws of one lane started at ``seed``: the reference sequence."""
    words, state = [], seed
    for _ in range(count):
        word, state = spec.draw(state)
        words.append(word)
    return words


def _tables(columns, width):
    """Byte tables: ``map(x) = XOR_b table[b][(x >> 8b) & 255]``."""
    nbytes = (width + 7) // 8
    tables = np.zeros((nbytes, 256), dtype=np.uint64)
    for b in range(nbytes):
        for bit in range(8):
            j = 8 * b + bit
            if j >= width:
                break
            v = np.arange(256)
            tables[b, (v >> bit) & 1 == 1] ^= np.uint64(columns[j])
    return tables


class LfsrBank:
    """``lanes`` independent generators, advanced together (one draw per lane per group).

    Parameters
    ----------
    spec : LfsrSpec
        The generator.
    seeds : sequence of int
        One non-zero seed per lane.
    """

    def __init__(self, spec: LfsrSpec, seeds):
        self.spec = spec
        self.state = np.array([int(s) for s in seeds], dtype=np.uint64)
        if np.any(self.state == 0):
            raise ValueError("LFSR seeds must be non-zero")
        self._pow_tables = []  # tables of leap ** (2 ** j)
        self._pow_maps = [spec.leap_map]
        self._top_shift = np.uint64(spec.width - spec.draw_bits)

    @property
    def lanes(self) -> int:
        return len(self.state)

    def _table(self, j):
        while len(self._pow_tables) <= j:
            k = len(self._pow_tables)
            while len(self._pow_maps) <= k:
                m = self._pow_maps[-1]
                self._pow_maps.append(compose_maps(m, m))
            self._pow_tables.append(_tables(self._pow_maps[k], self.spec.width))
        return self._pow_tables[j]

    @staticmethod
    def _apply(tables, x):
        out = tables[0][x & np.uint64(255)]
        for b in range(1, len(tables)):
            out ^= tables[b][(x >> np.uint64(8 * b)) & np.uint64(255)]
        return out

    def draw(self, count: int) -> np.ndarray:
        """The next ``count`` draws of every lane: an array ``(count, lanes)`` of words, in order.
        The lanes advance by ``count`` draws."""
        if count <= 0:
            return np.zeros((0, self.lanes), dtype=np.int64)
        states = np.empty((count, self.lanes), dtype=np.uint64)
        states[0] = self.state
        have, j = 1, 0
        while have < count:
            n = min(have, count - have)
            states[have:have + n] = self._apply(self._table(j), states[:n])
            have += n
            j += 1
        self.state = self._apply(self._table(0), states[-1])
        return (states >> self._top_shift).astype(np.int64)

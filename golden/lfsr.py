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

    Two exact ways to produce the words, chosen automatically:

    - *table doubling* (any spec): ``n`` consecutive states from ``log2 n`` applications of the
      maps ``leap ** 2 ** j``, each through byte-indexed tables;
    - *word recurrence* (``draw_bits`` a power of two, the common case): the output bits obey
      ``x[n] = XOR_t x[n - t]`` over the taps ``t``, hence (squaring over GF(2)) also
      ``x[n] = XOR_t x[n - d * t]`` for ``d = draw_bits * block``; so the words obey
      ``w[u] = XOR_t w[u - block * t]`` and ``block`` words per lane come from four slices of the
      history at once. The first ``block * width`` words come from table doubling.

    Parameters
    ----------
    spec : LfsrSpec
        The generator.
    seeds : sequence of int
        One non-zero seed per lane.
    block : int
        Words per lane computed per vector operation on the recurrence path (a power of two).
    """

    def __init__(self, spec: LfsrSpec, seeds, block: int = 1024):
        self.spec = spec
        seeds = np.array([int(s) for s in seeds], dtype=np.uint64)
        if seeds.ndim != 1 or len(seeds) == 0 or np.any(seeds == 0):
            raise ValueError("LFSR seeds must be a non-empty list of non-zero states")
        self._pow_tables = []  # tables of leap ** (2 ** j)
        self._pow_maps = [spec.leap_map]
        self._top_shift = np.uint64(spec.width - spec.draw_bits)
        d = spec.draw_bits
        # The narrowest type that holds a word: less memory traffic in the recurrence.
        self._dtype = np.uint16 if d <= 16 else np.int32 if d <= 30 else np.int64
        self._recurrence = d & (d - 1) == 0 and spec.width % d == 0 and d <= 32
        # The history (block * width words per lane) stays near 2**21 words in all.
        per_lane = (1 << 21) // (spec.width * len(seeds))
        self._block = block = min(block, 1 << max(0, per_lane.bit_length() - 1))
        self._lanes = len(seeds)
        self._taps = spec.taps
        if self._recurrence:
            first = block * spec.width + 2
            self._words = self._states(seeds, first + 1)
            self._next_state = None
            self._words = (self._words >> self._top_shift).astype(self._dtype)
            self._len = len(self._words)
            self._pos = 0
        else:
            self._state = seeds

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def state(self) -> np.ndarray:
        """The current state of every lane (the next draw is its top ``draw_bits`` bits)."""
        if not self._recurrence:
            return self._state.copy()
        self._ensure(self.spec.width // self.spec.draw_bits)
        d = self.spec.draw_bits
        st = np.zeros(self._lanes, dtype=np.uint64)
        for k in range(self.spec.width // d):
            st = (st << np.uint64(d)) | self._words[self._pos + k].astype(np.uint64)
        return st

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

    def _states(self, start, count):
        """``count`` consecutive states ``(count, lanes)`` beginning with ``start``."""
        states = np.empty((count, len(start)), dtype=np.uint64)
        states[0] = start
        have, j = 1, 0
        while have < count:
            n = min(have, count - have)
            states[have:have + n] = self._apply(self._table(j), states[:n])
            have += n
            j += 1
        return states

    def _ensure(self, count):
        """Make ``count`` words past the read position available (recurrence path).

        ``_words[:_len]`` holds the words made so far (at least the history the recurrence needs
        before ``_pos``); the buffer has room to grow and is compacted only when full.
        """
        need = self._pos + count
        if need <= self._len:
            return
        b = self._block
        hist = b * self.spec.width
        blocks = -(-(need - self._len) // b)
        if self._len + blocks * b > len(self._words):
            drop = max(0, min(self._pos, self._len - hist))
            keep = self._len - drop
            grown = np.empty((max(keep + blocks * b, 4 * hist), self._lanes), dtype=self._dtype)
            grown[:keep] = self._words[drop:self._len]
            self._words, self._len, self._pos = grown, keep, self._pos - drop
        w, u = self._words, self._len
        for _ in range(blocks):
            t0 = self._taps[0]
            acc = w[u - b * t0:u - b * t0 + b].copy()
            for t in self._taps[1:]:
                acc ^= w[u - b * t:u - b * t + b]
            w[u:u + b] = acc
            u += b
        self._len = u

    def draw(self, count: int) -> np.ndarray:
        """The next ``count`` draws of every lane: an array ``(count, lanes)`` of words, in order
        (read-only; the narrowest integer type that holds a word). The lanes advance by ``count``
        draws."""
        if count <= 0:
            return np.zeros((0, self.lanes), dtype=self._dtype)
        if self._recurrence:
            self._ensure(count)
            out = self._words[self._pos:self._pos + count]  # a read-only view: no copy
            out.flags.writeable = False
            self._pos += count
            return out
        states = self._states(self._state, count + 1)
        self._state = states[-1]
        return (states[:-1] >> self._top_shift).astype(self._dtype)

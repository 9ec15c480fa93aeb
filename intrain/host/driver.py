"""The host side of the training engine: whole matrices to and from its memories, runs, and the
counters, over any transport.

:class:`EngineHost` turns matrices into the engine's host slices (``lanes`` values of a row,
through ``host_write``) and reads them back (``host_read`` requests, ``host_read_data``
responses); a transport moves the packed words. The simulated engine
(:class:`intrain.sim.engine_host.CocotbTransport`) and a board's serial link
(:mod:`intrain.boards.host`) offer the same three coroutines.
"""

from __future__ import annotations

import numpy as np

from intrain.errors import ConfigError
from intrain.hdl.engine.geometry import EngineGeometry, HostTarget
from intrain.hdl.transpose_memory import SliceMode

__all__ = ["EngineHost", "RunCounters"]


class _Packer:
    """Packs the fields of a host request (``target``, ``layer``, ``mode``, ``row``, ``col`` and,
    for writes, ``data`` and ``mask``) into the bits of the engine's port, with the offsets of
    its ``data.StructLayout`` computed once."""

    def __init__(self, layout, lanes: int, width: int):
        self.offsets = {name: field.offset for name, field in layout}
        self.lanes = lanes
        self.width = width
        self._mask = (1 << width) - 1
        if "data" in self.offsets:
            base = self.offsets["data"]
            self._data_offsets = [base + k * width for k in range(lanes)]

    def pack(self, target, layer, mode, row, col, values=None, mask=None) -> int:
        o = self.offsets
        target, mode = getattr(target, "value", target), getattr(mode, "value", mode)
        bits = (int(target) << o["target"] | int(layer) << o["layer"] | int(mode) << o["mode"]
                | int(row) << o["row"] | int(col) << o["col"])
        if values is not None:
            m = self._mask
            for off, v in zip(self._data_offsets, values):
                bits |= (int(v) & m) << off
            bits |= int(mask) << o["mask"]
        return bits


class RunCounters(dict):
    """The engine's counters after a run: ``cycles``, ``mac_cycles``, ``steps`` and, per
    :class:`Phase` name (lower case), ``<phase>_cycles`` and ``<phase>_mac_cycles``."""


class EngineHost:
    """Matrices in and out of an :class:`Engine` through a transport.

    Parameters
    ----------
    geometry : EngineGeometry
        The engine's geometry (its host layouts and sizes); an :class:`Engine` stands for its
        own.
    transport
        Offers ``async write(words)`` (packed ``host_write`` payloads, in order), ``async
        read(words) -> list[int]`` (packed ``host_read`` requests; the raw ``host_read_data``
        payloads, in order) and ``async run(batch, train, lam) -> dict`` (start, wait for
        ``done``, the counters).
    """

    def __init__(self, geometry, transport):
        if not isinstance(geometry, EngineGeometry):   # an Engine: its geometry
            geometry = geometry.geometry
        self.geometry = geo = geometry
        self.config = geo.config
        self.transport = transport
        self.lanes = geo.lanes
        self.width = geo.host_width
        self._writer = _Packer(geo.host_write_layout, self.lanes, self.width)
        self._reader = _Packer(geo.host_read_layout, self.lanes, self.width)
        self._full_mask = (1 << self.lanes) - 1

    # -- matrices ---------------------------------------------------------------------------------
    def _slices(self, rows: int, cols: int):
        return [(r, c) for r in range(rows) for c in range(0, cols, self.lanes)]

    async def write_matrix(self, target: HostTarget, layer: int, matrix) -> None:
        """Write ``matrix`` (rows x cols integers) into the memory ``(target, layer)``, row
        slices of ``lanes`` values."""
        matrix = np.asarray(matrix, dtype=np.int64)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        rows, cols = matrix.shape
        words = []
        for r, c in self._slices(rows, cols):
            values = matrix[r, c:c + self.lanes].tolist()
            n = len(values)
            words.append(self._writer.pack(target, layer, SliceMode.ROW, r, c,
                                           values + [0] * (self.lanes - n), (1 << n) - 1))
        await self.transport.write(words)

    async def write_elements(self, target: HostTarget, layer: int, row: int, col: int,
                             values) -> None:
        """Write ``values`` (at most ``lanes``) into row ``row`` from column ``col`` on."""
        values = [int(v) for v in values]
        if not 1 <= len(values) <= self.lanes:
            raise ValueError(f"1 to {self.lanes} values, not {len(values)}")
        n = len(values)
        await self.transport.write([self._writer.pack(
            target, layer, SliceMode.ROW, row, col, values + [0] * (self.lanes - n),
            (1 << n) - 1)])

    async def read_matrix(self, target: HostTarget, layer: int, rows: int, cols: int):
        """Read ``rows x cols`` of the memory ``(target, layer)``: an int64 array."""
        starts = self._slices(rows, cols)
        words = [self._reader.pack(target, layer, SliceMode.ROW, r, c) for r, c in starts]
        raw = await self.transport.read(words)
        if len(raw) != len(words):
            raise RuntimeError(f"{len(words)} slices asked for, {len(raw)} came back")
        out = np.zeros((rows, cols), dtype=np.int64)
        w, m, sign = self.width, (1 << self.width) - 1, 1 << (self.width - 1)
        for (r, c), bits in zip(starts, raw):
            n = min(self.lanes, cols - c)
            for k in range(n):
                v = bits >> (k * w) & m
                out[r, c + k] = v - (v & sign) * 2
        return out

    # -- the network ------------------------------------------------------------------------------
    async def load_weights(self, weights) -> None:
        """The golden model's weights, into the engine's stored order."""
        for layer, w in enumerate(weights, start=1):
            await self.write_matrix(HostTarget.WEIGHTS, layer,
                                    self.geometry.engine_matrix(f"W{layer}", w))

    async def read_weights(self) -> list[np.ndarray]:
        """Every layer's weights, in the golden model's order."""
        return [self.geometry.golden_weights(p.index, await self.read_matrix(
            HostTarget.WEIGHTS, p.index, p.n_out, p.n_in)) for p in self.config.plan]

    async def load_batch(self, a0, labels=None) -> None:
        """The batch's inputs and labels: through the transport's ``write_rows(matrix,
        request)`` where it has one (a board's link sends bare values,
        :meth:`intrain.boards.host.LinkTransport.write_rows`; ``request(row)`` is the packed
        read request of the row's first slice), else as ``host_write`` slices."""
        await self._write_rows(HostTarget.ACTIVATIONS, 0, self.geometry.engine_matrix("A0", a0))
        if labels is not None:
            await self._write_rows(HostTarget.LABELS, 0, np.asarray(labels)[:, None])

    async def _write_rows(self, target: HostTarget, layer: int, matrix) -> None:
        matrix = np.asarray(matrix, dtype=np.int64)
        write_rows = getattr(self.transport, "write_rows", None)
        if write_rows is None or not await write_rows(
                matrix, lambda row: self._reader.pack(target, layer, SliceMode.ROW, row, 0)):
            await self.write_matrix(target, layer, matrix)

    async def read_outputs(self, batch: int) -> np.ndarray:
        n = len(self.config.plan)
        return await self.read_matrix(HostTarget.ACTIVATIONS, n, batch, self.config.plan[-1].n_out)

    async def read_predictions(self, batch: int) -> np.ndarray:
        return (await self.read_matrix(HostTarget.PREDICTIONS, 0, batch, 1))[:, 0]

    async def read_errors(self, layer: int, batch: int) -> np.ndarray:
        """``E_layer`` (``1 .. L``) of the last training step, as the engine holds it
        (:meth:`EngineGeometry.engine_matrix`)."""
        return await self.read_matrix(HostTarget.ERRORS, layer,
                                      *self.geometry.matrix_shape(f"E{layer}", batch))

    async def run(self, batch: int, *, train: bool, lam: int = 0) -> RunCounters:
        """Run a training step (``train``) or an inference pass of ``batch`` samples; fails if
        the engine takes more than twice the cycles it should."""
        g = self.geometry
        if train and batch < g.min_train_batch:
            raise ConfigError(f"a training step of {batch} sample on this engine: its weights in "
                              f"single-port RAM (spram = {list(g.config.spram)}) need "
                              f"{g.min_train_batch} or more")
        limit = 2 * (g.train_cycles(batch) if train else g.forward_cycles(batch)) + 100
        return RunCounters(await self.transport.run(batch, bool(train), int(lam), limit))

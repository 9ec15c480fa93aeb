"""The host side of :class:`intrain.hdl.engine.Engine`: whole matrices to and from its memories,
runs, and the counters, over any transport.

:class:`EngineHost` turns matrices into the engine's host slices (``lanes`` values of a row,
through ``host_write``) and reads them back (``host_read`` requests, ``host_read_data``
responses); a transport moves the packed words. :class:`CocotbTransport` drives the ports of the
simulated engine from a cocotb test, one slice per clock; the board's serial link offers the same
three coroutines.
"""

from __future__ import annotations

import numpy as np

from intrain.hdl import engine as _engine
from intrain.hdl.engine import Engine, HostTarget
from intrain.hdl.transpose_memory import SliceMode

__all__ = ["EngineHost", "CocotbTransport", "RunCounters"]


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
    engine : Engine
        The engine as built (its layouts and sizes; it need not be elaborated).
    transport
        Offers ``async write(words)`` (packed ``host_write`` payloads, in order), ``async
        read(words) -> list[int]`` (packed ``host_read`` requests; the raw ``host_read_data``
        payloads, in order) and ``async run(batch, train, lam) -> dict`` (start, wait for
        ``done``, the counters).
    """

    def __init__(self, engine: Engine, transport):
        self.engine = engine
        self.config = engine.config
        self.transport = transport
        self.lanes = engine.lanes
        self.width = engine.host_width
        self._writer = _Packer(engine.host_write_layout, self.lanes, self.width)
        self._reader = _Packer(engine.host_read_layout, self.lanes, self.width)
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
        for layer, w in enumerate(weights, start=1):
            await self.write_matrix(HostTarget.WEIGHTS, layer, w)

    async def read_weights(self) -> list[np.ndarray]:
        return [await self.read_matrix(HostTarget.WEIGHTS, p.index, p.n_out, p.n_in)
                for p in self.config.plan]

    async def load_batch(self, a0, labels=None) -> None:
        await self.write_matrix(HostTarget.ACTIVATIONS, 0, a0)
        if labels is not None:
            await self.write_matrix(HostTarget.LABELS, 0, np.asarray(labels)[:, None])

    async def read_outputs(self, batch: int) -> np.ndarray:
        n = len(self.config.plan)
        return await self.read_matrix(HostTarget.ACTIVATIONS, n, batch, self.config.layers[-1])

    async def read_predictions(self, batch: int) -> np.ndarray:
        return (await self.read_matrix(HostTarget.PREDICTIONS, 0, batch, 1))[:, 0]

    async def read_errors(self, layer: int, batch: int) -> np.ndarray:
        """``E_layer`` (``1 .. L``) of the last training step."""
        return await self.read_matrix(HostTarget.ERRORS, layer, batch, self.config.layers[layer])

    async def run(self, batch: int, *, train: bool, lam: int = 0) -> RunCounters:
        """Run a training step (``train``) or an inference pass of ``batch`` samples; fails if
        the engine takes more than twice the cycles it should."""
        e = self.engine
        limit = 2 * (e.train_cycles(batch) if train else e.forward_cycles(batch)) + 100
        return RunCounters(await self.transport.run(batch, bool(train), int(lam), limit))


# ------------------------------------------------------------------------------------------------
# cocotb

class CocotbTransport:
    """The engine's host ports driven from a cocotb test: one slice per clock while the engine
    is idle; ``run`` pulses ``start`` and lets the simulator run freely until ``done``."""

    def __init__(self, dut):
        from cocotb.triggers import ReadOnly, RisingEdge

        self.dut = dut
        self._edge = RisingEdge(dut.clk)
        self._settled = ReadOnly()
        self._done = RisingEdge(dut.done)
        # Every input gets a value: Icarus would carry X from an undriven payload into the
        # engine's address decoding.
        for name in ("host_write__valid", "host_write__payload", "host_read__valid",
                     "host_read__payload", "host_read_data__ready", "start", "batch", "train",
                     "lam"):
            if hasattr(dut, name):
                getattr(dut, name).value = 0

    async def write(self, words: list[int]) -> None:
        dut = self.dut
        payload, valid, ready = dut.host_write__payload, dut.host_write__valid, \
            dut.host_write__ready
        k = 0
        valid.value = 1
        for _ in range(4 * len(words) + 16):
            if k == len(words):
                break
            payload.value = words[k]
            await self._settled
            taken = ready.value
            await self._edge
            k += int(taken)
        valid.value = 0
        if k != len(words):
            raise RuntimeError(f"host_write took {k} of {len(words)} slices (is the engine "
                               "busy?)")

    async def read(self, words: list[int]) -> list[int]:
        dut = self.dut
        req, req_valid, req_ready = dut.host_read__payload, dut.host_read__valid, \
            dut.host_read__ready
        rsp, rsp_valid = dut.host_read_data__payload, dut.host_read_data__valid
        dut.host_read_data__ready.value = 1
        out: list[int] = []
        k = 0
        n = len(words)
        for _ in range(4 * n + 32):
            if len(out) == n:
                break
            if k < n:
                req.value = words[k]
                req_valid.value = 1
            else:
                req_valid.value = 0
            await self._settled
            if k < n and req_ready.value:
                k += 1
            if rsp_valid.value:
                out.append(rsp.value.to_unsigned())
            await self._edge
        req_valid.value = 0
        dut.host_read_data__ready.value = 0
        return out

    async def run(self, batch: int, train: bool, lam: int, limit: int | None = None) -> dict:
        dut = self.dut
        dut.batch.value = batch
        if hasattr(dut, "train"):
            dut.train.value = int(train)
            dut.lam.value = lam & 0xFF
        elif train:
            raise RuntimeError("this engine has no training step")
        dut.start.value = 1
        await self._edge
        dut.start.value = 0
        if limit is None:
            await self._done
        else:
            from cocotb.triggers import ClockCycles, First

            fired = await First(self._done, ClockCycles(dut.clk, limit))
            if fired is not self._done:
                what = "training step" if train else "forward pass"
                raise RuntimeError(f"the engine did not finish a {what} of {batch} samples in "
                                   f"{limit} cycles")
        await self._settled
        counters = {"cycles": dut.cycles.value.to_unsigned(),
                    "mac_cycles": dut.mac_cycles.value.to_unsigned()}
        if hasattr(dut, "steps"):
            counters["steps"] = dut.steps.value.to_unsigned()
            cyc = dut.phase_cycles.value.to_unsigned()
            mac = dut.phase_mac_cycles.value.to_unsigned()
            for ph in _engine.Phase:
                name = ph.name.lower()
                counters[f"{name}_cycles"] = cyc >> (32 * ph.value) & 0xFFFFFFFF
                counters[f"{name}_mac_cycles"] = mac >> (32 * ph.value) & 0xFFFFFFFF
        await self._edge
        return counters

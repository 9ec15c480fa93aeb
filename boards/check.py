"""``intrain board-check``: a programmed board's self-test over its serial link.

In order, each a :class:`Check` (the first failure stops the rest):

1. ``protocol``: the board answers ``INFO`` in the protocol version the host speaks;
2. ``config``: it was built for the configuration (its hash and host word sizes);
3. ``uart``: the UART divider makes the link's baud rate from the board's clock within 2 %;
4. ``memory``: every weight memory, the input ``A0`` and the labels take three patterns (the
   largest and smallest value of the memory's shape in a checkerboard, its inverse, random
   values) and read them back equal, element by element;
5. ``training step``: one training step from the golden model's initial weights on random
   inputs, every output, prediction, error and updated weight read back equal to the golden
   model's, in the cycles the engine's model predicts;
6. ``link rate``: the bytes per second the memory test moved, as a baud rate, and its share of
   the nominal rate (frames each way, the board's turnaround and the host's included).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass

import numpy as np

from intrain.config import Config

from .host import LinkTransport, SerialTransport, expected_info, host_geometry, step_traffic
from .protocol import VERSION

__all__ = ["CHECKS", "Check", "board_check", "check_line"]

#: The checks, in the order they run.
CHECKS = ("protocol", "config", "uart", "memory", "training step", "link rate")


@dataclass
class Check:
    """One check: its name, whether it passed, and what was measured."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _patterns(shape, rows: int, cols: int, rng) -> list[np.ndarray]:
    """A checkerboard of the shape's extremes, its inverse, and random values."""
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    board = (np.add.outer(np.arange(rows), np.arange(cols)) % 2).astype(bool)
    return [np.where(board, hi, lo), np.where(board, lo, hi),
            rng.integers(lo, hi + 1, (rows, cols))]


def _pattern_memories(geometry) -> list[tuple[str, object, int]]:
    """``(name, target, layer)`` of the memories the pattern test writes."""
    from intrain.hdl.engine import HostTarget

    memories = [(f"W{p.index}", HostTarget.WEIGHTS, p.index) for p in geometry.config.plan]
    return memories + [("A0", HostTarget.ACTIVATIONS, 0), ("LABELS", HostTarget.LABELS, 0)]


async def _memory(host, rng) -> Check:
    words = 0
    for name, target, layer in _pattern_memories(host.geometry):
        spec = host.geometry.memories[name]
        shape, rows, cols = spec.shape, spec.rows, spec.cols
        for k, pattern in enumerate(_patterns(shape, rows, cols, rng)):
            await host.write_matrix(target, layer, pattern)
            got = await host.read_matrix(target, layer, rows, cols)
            bad = np.argwhere(got != pattern)
            if len(bad):
                r, c = bad[0]
                return Check("memory", False, f"{name} pattern {k + 1}: {len(bad)} of "
                             f"{pattern.size} values differ, first [{r}, {c}]: wrote "
                             f"{pattern[r, c]}, read {got[r, c]}")
            words += 2 * rows * -(-cols // host.lanes)
    names = ", ".join(name for name, _, _ in _pattern_memories(host.geometry))
    return Check("memory", True, f"{names}: 3 patterns each, {words:,} words written and read "
                                 "back equal")


async def _training_step(host, config: Config, rng) -> Check:
    from intrain.host.checked import CheckedTrainer, EngineMismatch

    trainer = CheckedTrainer(host, config)
    batch = config.batch_size
    half = 1 << (config.input_bits - 1)
    a0 = rng.integers(-half, half, (batch, config.layers[0]))
    labels = rng.integers(0, config.layers[-1], batch)
    try:
        await trainer.load()
        await trainer._train_step(a0, labels, config.lam_at(0))
    except EngineMismatch as e:
        return Check("training step", False, f"differs from the golden model: {e}")
    cycles = trainer.counters.get("cycles", 0)
    expected = host.geometry.train_cycles(batch)
    if cycles != expected:
        return Check("training step", False, f"bit-exact, but {cycles:,} cycles instead of the "
                                              f"{expected:,} the engine's model predicts")
    return Check("training step", True, f"batch {batch}: outputs, predictions, errors and "
                                        f"weights equal the golden model's; {cycles:,} cycles")


def _uart(info, baud: int) -> Check:
    from intrain.errors import ConfigError
    from intrain.hdl.uart import uart_divisor

    try:
        divisor = uart_divisor(info.clk_freq, baud)
    except ConfigError as e:
        return Check("uart", False, f"clock {info.clk_freq / 1e6:g} MHz: {e}")
    made = info.clk_freq / divisor
    return Check("uart", True, f"clock {info.clk_freq / 1e6:g} MHz / {divisor} = {made:,.0f} baud "
                               f"({(made - baud) / baud:+.2%} from {baud:,})")


async def _run_checks(transport: LinkTransport, config: Config, baud: int, seed: int,
                      report) -> dict:
    from intrain.host.driver import EngineHost

    info = await transport.client.info()
    report(Check("protocol", info.version == VERSION,
                 f"version {info.version} (host: {VERSION}), max payload {info.max_payload} B"))
    if info.version != VERSION:
        return info
    why = info.mismatch(expected_info(config))
    report(Check("config", why is None, why or f"config hash {info.config_hash:08x}, "
                                              f"{info.lanes} lanes"))
    if why is not None:
        return info
    transport.info = info
    transport.client.n_crcs = len(host_geometry(config).crc_tensors)
    if not report(_uart(info, baud)):
        return info
    host = EngineHost(host_geometry(config), transport)
    rng = np.random.default_rng(seed)
    stats = transport.stats
    moved = stats.bytes_sent + stats.bytes_received
    t0 = time.perf_counter()
    if not report(await _memory(host, rng)):
        return info
    seconds = time.perf_counter() - t0
    moved = stats.bytes_sent + stats.bytes_received - moved
    if not report(await _training_step(host, config, rng)):
        return info
    rate = 10 * moved / seconds
    step = step_traffic(config, max_payload=info.max_payload).seconds(baud, info.clk_freq) \
        if info.clk_freq else None
    report(Check("link rate", True, f"{rate:,.0f} baud moving {moved:,} bytes in {seconds:.2f} "
                                    f"s: {rate / baud:.0%} of {baud:,}" + (
                                        f"; model: {step['steps_per_second']:.1f} training steps"
                                        f" per second at {baud:,} baud" if step else "")))
    return info


def board_check(config: Config, *, port: str, baud: int, timeout: float = 0.5, seed: int = 0,
                transport: LinkTransport | None = None, echo=None) -> dict:
    """Run the checks against the board on ``port`` built for ``config``; returns ``ok``,
    ``checks`` (name, ok, detail), ``board`` (what ``INFO`` said) and ``link`` (the traffic).
    ``echo(check)`` is called as each check ends. Raises
    :class:`~intrain.boards.protocol.LinkError` when the port cannot be opened or the board
    does not answer at all."""
    checks: list[Check] = []

    def report(check: Check) -> bool:
        checks.append(check)
        if echo is not None:
            echo(check)
        return check.ok

    own = transport is None
    if own:
        transport = SerialTransport(port, baud, timeout=timeout)
    loop = asyncio.new_event_loop()
    try:
        info = loop.run_until_complete(_run_checks(transport, config, baud, seed, report))
    finally:
        loop.close()
        if own:
            transport.close()
    return {"ok": [c.name for c in checks if c.ok] == list(CHECKS),
            "checks": [c.to_dict() for c in checks],
            "board": {"port": port, "baud": baud, "version": info.version,
                      "clk_freq": info.clk_freq, "max_payload": info.max_payload,
                      "config_hash": f"{info.config_hash:08x}"},
            "link": transport.stats.to_dict()}


def check_line(check: Check) -> str:
    """``name  PASS|FAIL  detail``."""
    width = max(map(len, CHECKS))
    return f"{check.name:<{width}}  {'PASS' if check.ok else 'FAIL'}  {check.detail}"

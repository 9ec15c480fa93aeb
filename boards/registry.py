"""The FPGA boards ``intrain build`` knows: device, resources, clock, UART, and a default
configuration that fits each.

Resources are the figures nextpnr reports as available for the device (``--report``
utilization): LUT4 logic cells, flip-flops, DSP blocks, block RAMs. ``macs_per_dsp`` is how
many of the engine's multipliers one DSP block holds with the board's ``dsp`` mode: an iCE40
``SB_MAC16`` in its dual 8x8 mode holds two, an ECP5 ``MULT18X18D`` one; on the Gowin GW1NR-9
the blocks counted are the ``MULT9X9`` multipliers (two per 18x18 DSP macro), one product each.

Block RAM is counted in blocks, not bits: the engine keeps every matrix in a
:class:`~intrain.hdl.transpose_memory.TransposeMemory` of ``lanes`` banks, and each bank that
is too large for distributed memory takes at least one block however few bits it holds
(:func:`bank_blocks`).

The numbers of LUTs a configuration needs are an estimate (:func:`estimate_luts`) calibrated
from builds of the engine on each family (``bench/results/fpga.json``); the fit check in
:mod:`intrain.boards.build` refuses a configuration it puts over the part, and the real
figure is in every build report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from intrain.config import Config
from intrain.errors import ConfigError

__all__ = ["Board", "BoardError", "Resources", "Programmer", "BOARDS", "get_board", "board_names",
           "check_baud",
           "memory_banks", "bank_blocks", "memory_blocks", "spram_blocks", "bram_blocks",
           "estimate_luts",
           "largest_array", "largest_hidden", "boards_table", "list_boards_text"]


class BoardError(ConfigError):
    """An unknown board, or a configuration that does not fit the board; the message says
    what to change."""


@dataclass(frozen=True)
class Resources:
    """What a device offers, as nextpnr counts it."""

    luts: int
    ffs: int
    dsp_blocks: int
    macs_per_dsp: int
    bram_blocks: int
    bram_bits: int          # bits per block, parity bits included
    plls: int
    spram_blocks: int = 0
    spram_bits: int = 0

    @property
    def macs(self) -> int:
        """Multipliers the DSP blocks hold: the largest ``array_rows * array_cols``."""
        return self.dsp_blocks * self.macs_per_dsp


@dataclass(frozen=True)
class Programmer:
    """How openFPGALoader (``intrain program``) reaches a board.

    Attributes
    ----------
    sram : str or None
        openFPGALoader's board name (``-b``) for loading the FPGA's configuration SRAM; ``None``
        where the board's own USB port cannot (a JTAG cable is needed: ``--cable``).
    flash : str
        Its board name for writing the configuration flash (``-f``).
    probe : str
        What openFPGALoader talks to, for messages.
    jtag_models : tuple of str
        The models ``openFPGALoader --detect`` names for the board's FPGA (its ``model`` line);
        empty where the FPGA is not reached over JTAG (an iCE40 is configured over SPI).
    hint : str
        How to make the board reachable, for the message when it is not found.
    """

    sram: str | None
    flash: str
    probe: str
    jtag_models: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str
        The name ``intrain build --board`` takes.
    title : str
        The board's name for people.
    family : str
        ``"ice40"``, ``"ecp5"`` or ``"gowin"``: selects the tools, the PLL and the block RAM
        model.
    device, package : str
        As nextpnr names them.
    speed : str
        The speed grade timing is analysed at (the slowest grade of the family).
    resources : Resources
    clock_resource : str
        The platform resource of the board's oscillator; ``clock_hz`` its frequency.
    uart : str
        The platform's UART resource (number 0).
    led : str
        The LED resource that shows ``busy``.
    dsp : str
        The engine's ``dsp`` mode for this family.
    default_clock_mhz : float
        The clock the PLL makes unless told otherwise (``intrain build --clock`` overrides it),
        a frequency the PLL hits exactly, below the Fmax nextpnr measured for the board's default
        configuration (``bench/results/fpga.json``: iCEBreaker 28.1 MHz, ULX3S 59.2 MHz,
        OrangeCrab 62.9 MHz, Tang Nano 9K 72.0 MHz). The build report says whether nextpnr's
        Fmax meets it.
    default : dict
        Configuration fields of the default configuration (the rest are ``Config()``'s).
    usb_bridge : str
        The USB-serial bridge the host link goes through.
    bridge_max_baud : int or None
        The highest rate that bridge carries reliably (``None``: the bridge is the user's own).
    link_baud : int
        The link's default rate (``intrain build``, ``train --backend board`` and
        ``board-check`` take it unless ``--baud`` says otherwise): at most
        ``bridge_max_baud``, a rate the bridge makes exactly, and one the UART divider makes
        from the default clock within 2 % (:func:`check_baud`).
    programmer : Programmer
        How ``intrain program`` loads a bitstream.
    placer_seed : int
        nextpnr's placer seed for the board's builds unless told otherwise (``--seed``): one
        with which the default bitstream routes (nextpnr's router2 can fail to converge on one
        placement and finish on another).
    notes : str
        How the board is wired or built, where that is not obvious.
    """

    name: str
    title: str
    family: str
    device: str
    package: str
    speed: str
    resources: Resources
    clock_resource: str
    clock_hz: float
    uart: str
    led: str
    dsp: str
    default_clock_mhz: float
    default: dict = field(default_factory=dict)
    usb_bridge: str = ""
    bridge_max_baud: int | None = None
    link_baud: int = 1_000_000
    programmer: Programmer | None = None
    platform_module: str = ""
    platform_class: str = ""
    placer_seed: int = 1
    notes: str = ""

    @cached_property
    def default_config(self) -> Config:
        return Config(**self.default)

    def platform(self):
        """A fresh amaranth-boards platform for this board (with the UART added where the
        board has none, and the speed grade timing is analysed at)."""
        return make_platform(self)


#: The LFE5U-85F of both ECP5 boards, as nextpnr-ecp5 counts it.
_LFE5U_85F = Resources(luts=83640, ffs=83640, dsp_blocks=156, macs_per_dsp=1, bram_blocks=208,
                       bram_bits=18432, plls=4)

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board(
        name="icebreaker", title="iCEBreaker", family="ice40",
        device="iCE40UP5K", package="SG48", speed="",
        resources=Resources(luts=5280, ffs=5280, dsp_blocks=8, macs_per_dsp=2,
                            bram_blocks=30, bram_bits=4096, plls=1,
                            spram_blocks=4, spram_bits=262144),
        clock_resource="clk12", clock_hz=12e6, uart="uart", led="led_g", dsp="ice40",
        default_clock_mhz=24.0,
        # A hidden layer of 24 (93.5 % on the digits where 64-10 reaches 76 %): 5,103 logic
        # cells of 5,280 and 27 of the 30 block RAMs without the per-phase counters (5,441 with
        # them, which does not place).
        default=dict(layers=(64, 24, 10), batch_size=16, array_rows=1, array_cols=1,
                     acc_bits=20, rng_lanes=1, phase_counters=False),
        # FTDI DS_FT2232H: its UARTs run up to 12 Mbaud (12 MHz / n); 3 Mbaud (12 MHz / 4) keeps
        # 8 clock cycles per bit at the 24 MHz default clock.
        usb_bridge="FT2232H", bridge_max_baud=3_000_000, link_baud=3_000_000,
        # openFPGALoader's board list names the iCEBreaker "ice40_generic" (FT2232H channel A
        # in SPI mode: SRAM through the iCE40's SPI slave port, or the flash).
        programmer=Programmer(sram="ice40_generic", flash="ice40_generic",
                              probe="FT2232H (SPI)"),
        platform_module="amaranth_boards.icebreaker", platform_class="ICEBreakerPlatform",
        notes="UART on the FTDI's second channel; a hidden layer needs more than the 30 "
              "block RAMs (13 memories of 4 banks)",
    ),
    Board(
        name="ulx3s-85f", title="ULX3S-85F", family="ecp5",
        device="LFE5U-85F", package="CABGA381", speed="6",
        resources=_LFE5U_85F,
        clock_resource="clk25", clock_hz=25e6, uart="uart", led="led", dsp="ecp5",
        default_clock_mhz=50.0,
        default=dict(layers=(64, 256, 10), batch_size=64, array_rows=8, array_cols=8),
        # FTDI DS_FT231X: 300 baud to 3 Mbaud, made as 3 MHz / n (n = 1, 1.5, 2, 2.125, ...: 3,
        # 2, 1.5 Mbaud, ...). 3 Mbaud needs 16.7 cycles per bit at the 50 MHz default clock
        # (16: 3.125 Mbaud, 4.2 % off); 2 Mbaud is 25 exactly. `intrain build --clock 45` makes
        # 3 Mbaud exact (15 cycles per bit).
        usb_bridge="FT231X", bridge_max_baud=3_000_000, link_baud=2_000_000,
        programmer=Programmer(sram="ulx3s", flash="ulx3s", probe="FT231X (JTAG)",
                              jtag_models=("LFE5U-85",)),
        platform_module="amaranth_boards.ulx3s", platform_class="ULX3S_85F_Platform",
        notes="UART on the FTDI (its TXDEN output, uart_tx_enable, is left alone)",
    ),
    Board(
        name="orangecrab-85f", title="OrangeCrab r0.2 85F", family="ecp5",
        device="LFE5U-85F", package="CSFBGA285", speed="6",
        resources=_LFE5U_85F,
        clock_resource="clk", clock_hz=48e6, uart="uart", led="rgb_led", dsp="ecp5",
        default_clock_mhz=52.0,
        default=dict(layers=(64, 256, 10), batch_size=64, array_rows=8, array_cols=8),
        # No bridge on the board: a 3.3 V USB-serial adapter on the Feather pins. 1 Mbaud is what
        # the common ones carry (Silicon Labs CP2102 datasheet: up to 1 Mbaud), 52 cycles per
        # bit; an FTDI FT232R (DS_FT232R: up to 3 Mbaud, as 3 MHz / n) takes --baud 2000000.
        usb_bridge="USB-serial adapter", link_baud=1_000_000,
        # Seed 1 placed the default of tree 1d6e998 at 56.2 MHz, then router2's overused wires
        # grew from 280 to 2,600 over 56 iterations (stopped); seed 2 routed in 48 (62.9 MHz).
        placer_seed=2,
        # Its USB port reaches only the DFU bootloader, which writes the flash; the SRAM is
        # loaded over JTAG (the board's JTAG pads and a cable: --cable).
        programmer=Programmer(sram=None, flash="orangeCrab", probe="DFU bootloader",
                              jtag_models=("LFE5U-85",),
                              hint="with its button held, to start the bootloader"),
        platform_module="amaranth_boards.orangecrab_r0_2",
        platform_class="OrangeCrabR0_2_85FPlatform",
        notes="the board has no UART: rx on Feather pin 0, tx on pin 1 (a 3.3 V USB-serial "
              "adapter); sold as speed grade 8, timing analysed at grade 6, the slowest",
    ),
    Board(
        name="tang-nano-9k", title="Tang Nano 9K", family="gowin",
        device="GW1NR-LV9QN88PC6/I5", package="QN88", speed="C6/I5",
        resources=Resources(luts=8640, ffs=6480, dsp_blocks=40, macs_per_dsp=1,
                            bram_blocks=26, bram_bits=18432, plls=2),
        clock_resource="clk27", clock_hz=27e6, uart="uart", led="led", dsp="gowin",
        default_clock_mhz=54.0,
        # A hidden layer of 48 on the 1x1 (96.5 % on the digits over seeds 0-3, where 64-10
        # reaches 76 % and 64-32-10 94.6 %). The 2x2 (4 MACs) takes 7,025 LUT4 + ALU with 64-10
        # (bench/configs/gowin-2x2.toml); with a hidden layer it needs more than the 8,640
        # (64-32-10: 8,414 LUT4 and 2,478 ALU after packing) and does not place.
        default=dict(layers=(64, 48, 10), batch_size=16, array_rows=1, array_cols=1,
                     acc_bits=20, rng_lanes=1),
        # The BL702 answers as an FT2232 (JTAG on the first channel, the UART on the second);
        # clean transfers at 3 Mbaud were reported through pyftdi (sipeed/TangNano-9K-example
        # issue 7, where Linux's ftdi_sio driver of the time garbled 1 Mbaud: if the link stays
        # silent, try a lower --baud). 18 cycles per bit at the 54 MHz default clock.
        usb_bridge="BL702", bridge_max_baud=3_000_000, link_baud=3_000_000,
        programmer=Programmer(sram="tangnano9k", flash="tangnano9k", probe="BL702 (JTAG)",
                              jtag_models=("GW1N(R)-9C", "GW1NR-9")),
        platform_module="amaranth_boards.tang_nano_9k", platform_class="TangNano9kPlatform",
        notes="UART on the BL702 USB bridge; nextpnr-himbaechel and apicula's gowin_pack",
    ),
)}

def check_baud(board: Board, baud, clock_hz: float | None = None) -> int:
    """``baud`` if the board's link can run at it: at most what its USB bridge carries and, with
    ``clock_hz``, a rate the UART divider makes from that clock within 2 %
    (:func:`~intrain.hdl.uart.uart_divisor`); a :class:`BoardError` saying what to choose
    otherwise."""
    from intrain.hdl.uart import uart_divisor

    if isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
        raise BoardError(f"the baud rate must be a positive integer, not {baud!r}")
    if board.bridge_max_baud is not None and baud > board.bridge_max_baud:
        raise BoardError(f"{board.title}'s {board.usb_bridge} carries at most "
                         f"{board.bridge_max_baud:,} baud, not {baud:,}")
    if clock_hz is not None:
        try:
            uart_divisor(int(round(clock_hz)), baud)
        except ConfigError as e:
            raise BoardError(f"{board.title} at {clock_hz / 1e6:g} MHz: {e}") from None
    return baud


def make_platform(board: Board):
    """The board's amaranth-boards platform, adjusted for building: the ECP5 boards analysed at
    speed grade 6 (the slowest; the bitstream does not depend on it), the OrangeCrab with a
    UART on its Feather pins 0 (rx) and 1 (tx)."""
    import importlib

    from amaranth.build import Attrs, Resource, Subsignal  # noqa: F401
    from amaranth_boards.resources import UARTResource

    module = importlib.import_module(board.platform_module)
    base = getattr(module, board.platform_class)
    extra = {}
    if board.family == "ecp5" and board.speed:
        extra["speed"] = board.speed
    cls = type(f"{board.platform_class}ForIntrain", (base,), extra)
    platform = cls()
    if board.name == "orangecrab-85f":
        platform.add_resources([
            UARTResource(0, rx="0", tx="1", conn=("io", 0), attrs=Attrs(IO_TYPE="LVCMOS33")),
        ])
    return platform


_ALIASES = {
    "icebreaker": "icebreaker", "ice40": "icebreaker", "up5k": "icebreaker",
    "ulx3s": "ulx3s-85f", "ulx3s85f": "ulx3s-85f", "ulx3s-85": "ulx3s-85f",
    "orangecrab": "orangecrab-85f", "orangecrab85f": "orangecrab-85f",
    "tangnano9k": "tang-nano-9k", "tang_nano_9k": "tang-nano-9k", "tang-nano9k": "tang-nano-9k",
    "tangnano": "tang-nano-9k",
}


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name) -> Board:
    """The board called ``name`` (case and ``_``/``-`` do not matter); a :class:`BoardError`
    listing the known boards otherwise."""
    if isinstance(name, Board):
        return name
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, _ALIASES.get(key.replace("-", ""), key))
    if key not in BOARDS:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]


# -- memory -----------------------------------------------------------------------------------
def memory_banks(config: Config) -> dict[str, tuple[int, int, int]]:
    """Every memory of the engine as ``(banks, depth, width)``: ``lanes`` banks of
    ``ceil(rows / lanes) * cols`` words (:meth:`EngineGeometry.memory_banks`)."""
    return _geometry(config).memory_banks()


def bank_blocks(family: str, depth: int, width: int) -> int:
    """Block RAMs one bank of ``depth`` words of ``width`` bits takes on ``family``
    (:func:`intrain.hdl.engine.geometry.bank_blocks`)."""
    from intrain.hdl.engine.geometry import bank_blocks as blocks
    return blocks(family, depth, width)


def memory_blocks(config: Config, family: str) -> dict[str, int]:
    """Block RAMs of every memory of the engine on ``family``
    (:meth:`EngineGeometry.memory_blocks`)."""
    return _geometry(config).memory_blocks(family)


def spram_blocks(config: Config, family: str) -> dict[str, int]:
    """SPRAM blocks of every memory in single-port RAM on ``family``
    (:meth:`EngineGeometry.spram_blocks`)."""
    return _geometry(config).spram_blocks(family)


def bram_blocks(config: Config, family: str) -> int:
    """Block RAMs of the engine with its host link on ``family``
    (:meth:`EngineGeometry.resources`)."""
    return _geometry(config).resources(family)["bram"]


def estimate_luts(config: Config, family: str) -> int:
    """An estimate of the LUT sites (LUT4s and carry cells) the engine and its host link need
    (:meth:`EngineGeometry.estimate_luts`). It is meant to tell a configuration that plainly
    does not fit from one that might, not to replace the build report."""
    return _geometry(config).estimate_luts(family)


def _geometry(config: Config):
    from intrain.hdl.engine import EngineGeometry
    config.require_engine_layers("the engine")
    return EngineGeometry(config)


def largest_array(board: Board) -> tuple[int, int]:
    """The largest ``(rows, cols)`` (most multipliers, then the squarest) that the DSP blocks
    hold and whose estimated LUTs fit, with the board's default network."""
    res = board.resources
    best = (1, 1)
    base = board.default_config
    for rows in range(1, 65):
        for cols in range(rows, 65):
            macs = rows * cols
            if macs > res.macs:
                break
            cfg = base.replace(array_rows=rows, array_cols=cols)
            if estimate_luts(cfg, board.family) > res.luts:
                continue
            if macs > best[0] * best[1] or (macs == best[0] * best[1]
                                             and cols - rows < abs(best[1] - best[0])):
                best = (rows, cols)
    return best


def largest_hidden(board: Board, config: Config | None = None, *,
                   recompute: bool = False) -> int:
    """The widest single hidden layer ``layers[0]-H-layers[-1]`` whose memories fit the block
    RAMs with the board's default array and batch (0 if no hidden layer fits); with
    ``recompute``, recomputing the gradients that do not fit (:func:`plan_recompute`)."""
    from intrain.hdl.engine.geometry import plan_recompute

    cfg = config or board.default_config
    best = 0
    for hidden in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048):
        trial = cfg.replace(layers=(cfg.layers[0], hidden, cfg.layers[-1]))
        try:
            if recompute:
                fits = plan_recompute(trial, board.family, board.resources.bram_blocks) \
                    is not None
            else:
                fits = bram_blocks(trial, board.family) <= board.resources.bram_blocks
        except ConfigError:
            break
        if fits:
            best = hidden
    return best


#: The convolutional networks ``intrain boards`` tries, from the smallest: the digits CNN's
#: shape (two 3x3 convolutions of ``n`` and ``2n`` channels, each pooled, then the classifier),
#: or without the pools where the array's memory slices are too narrow for one.
CONV_CHANNELS = (2, 4, 8, 16, 32, 64, 128)


def _conv_spec(n: int, pooled: bool) -> str:
    return f"1x8x8,{n}C3,MP2,{2 * n}C3,MP2,10" if pooled else f"1x8x8,{n}C3,{2 * n}C3,10"


def largest_conv(board: Board, config: Config | None = None) -> str:
    """The largest convolutional network of the digits (1x8x8) of :data:`CONV_CHANNELS` whose
    memories fit the block RAMs with the board's default array and batch, recomputing the
    classifier's gradient where that makes it fit, and accumulators as wide as the network
    needs, and whose estimated LUTs fit; ``""`` if none fits."""
    from intrain.hdl.engine.geometry import plan_recompute

    cfg = config or board.default_config
    pooled = max(cfg.array_rows, cfg.array_cols) >= 2
    best = ""
    for n in CONV_CHANNELS:
        spec = _conv_spec(n, pooled)
        try:
            trial = Config(**{**cfg.to_dict(), "layers": spec, "acc_bits": 32,
                              "recompute_gradients": (), "bits": cfg.to_dict()["bits"][:1]})
            fits = plan_recompute(trial, board.family, board.resources.bram_blocks)
        except ConfigError:
            break
        if fits is None or estimate_luts(trial, board.family) > board.resources.luts:
            break
        note = f" (recomputing G{','.join(map(str, fits))})" if fits else ""
        best = f"{spec} batch {cfg.batch_size}{note}"
    return best


def _summary(config: Config) -> str:
    return (f"{'-'.join(map(str, config.layers))} batch {config.batch_size}, "
            f"{config.array_rows}x{config.array_cols} array")


def boards_table() -> list[dict]:
    """One row per board: resources, the default configuration and what it holds at most."""
    rows = []
    for board in BOARDS.values():
        res, cfg = board.resources, board.default_config
        r, c = largest_array(board)
        hidden = largest_hidden(board)
        hidden_recomputed = largest_hidden(board, recompute=True)
        rows.append({
            "board": board.name,
            "title": board.title,
            "family": board.family,
            "device": board.device,
            "luts": res.luts,
            "ffs": res.ffs,
            "dsp_blocks": res.dsp_blocks,
            "macs_per_dsp": res.macs_per_dsp,
            "max_macs": res.macs,
            "bram_blocks": res.bram_blocks,
            "bram_kbit": res.bram_blocks * res.bram_bits // 1024,
            "spram_kbit": res.spram_blocks * res.spram_bits // 1024,
            "clock_in_mhz": board.clock_hz / 1e6,
            "default_clock_mhz": board.default_clock_mhz,
            "usb_bridge": board.usb_bridge,
            "link_baud": board.link_baud,
            "default_config": _summary(cfg),
            "default_macs": cfg.array_rows * cfg.array_cols,
            "default_bram_blocks": bram_blocks(cfg, board.family),
            "default_luts_estimate": estimate_luts(cfg, board.family),
            "largest_array": f"{r}x{c}",
            "largest_network": (f"{cfg.layers[0]}-{hidden}-{cfg.layers[-1]} "
                                f"batch {cfg.batch_size}" if hidden else
                                f"{cfg.layers[0]}-{cfg.layers[-1]} batch {cfg.batch_size} "
                                f"(no hidden layer)"),
            "largest_hidden_recomputing_g": hidden_recomputed,
            "largest_conv_network": largest_conv(board),
        })
    return rows


def list_boards_text() -> str:
    """The table ``intrain boards`` prints."""
    rows = boards_table()
    head = (f"{'board':15} {'device':20} {'LUT4':>6} {'FF':>6} {'DSP':>8} {'MACs':>5} "
            f"{'BRAM':>15} {'link':>5} {'default config (est. LUTs)':38} {'largest array':>13}  "
            f"largest network")
    lines = [head]
    for r in rows:
        dsp = f"{r['dsp_blocks']}x{r['macs_per_dsp']}"
        bram = f"{r['bram_blocks']}x{r['bram_kbit'] // r['bram_blocks']}K"
        if r["spram_kbit"]:
            bram += f"+{r['spram_kbit'] // 1024}M"
        default = f"{r['default_config']} ({r['default_luts_estimate']})"
        lines.append(
            f"{r['board']:15} {r['device']:20} {r['luts']:6} {r['ffs']:6} {dsp:>8} "
            f"{r['max_macs']:5} {bram:>15} {r['link_baud'] / 1e6:4g}M {default:38} "
            f"{r['largest_array']:>13}  "
            f"{r['largest_network']}{_recomputed_note(r)}")
    lines.append("")
    for r in rows:
        lines.append(f"{r['board']:15} largest convolutional network: "
                     f"{r['largest_conv_network'] or 'none'}")
    lines.append("")
    lines.append("DSP: blocks x multipliers per block; BRAM: blocks x Kbit (+ Mbit of SPRAM); "
                 "link: the serial "
                 "link's default baud rate. LUT figures are estimates from real builds; `intrain "
                 "build` reports the exact ones. Largest network: the widest hidden layer whose "
                 "memories fit with every gradient stored, and (in parentheses) recomputing the "
                 "gradients that do not fit (recompute_gradients). Largest convolutional "
                 "network: the digits CNN's shape with the most channels whose memories fit.")
    return "\n".join(lines)


def _recomputed_note(row: dict) -> str:
    hidden = row["largest_hidden_recomputing_g"]
    stored = row["largest_network"].split()[0].split("-")
    if len(stored) != 3 or hidden <= int(stored[1]):
        return ""
    return f" ({stored[0]}-{hidden}-{stored[2]} recomputing G)"

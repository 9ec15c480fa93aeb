"""The engine's geometry: everything about an engine that follows from its configuration without
building hardware.

:class:`EngineGeometry` is plain Python, built from a :class:`~intrain.config.Config` (and the
array's DSP mapping): the memory map (every matrix, its shape and element type), memory bits,
host word sizes, the tiles of every array job, the cycle model of a forward pass and of a
training step, the MACs counted, the tensors whose CRC the engine keeps with the order in
which it writes them, and an estimate of the FPGA resources per device family. The engine
(:class:`~intrain.hdl.engine.Engine`), the fit check and
``intrain boards``, the host driver and the benchmarks all read it; nobody builds an engine to
learn its size.

Latencies are declared once, as constants here, and the hardware takes its delays from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from amaranth import Shape, signed, unsigned
from amaranth.lib import data, enum

from intrain.config import Config
from intrain.fault_spec import FaultPlan

from ..log2round import Log2Round
from ..max_abs import MaxAbs
from ..multiplier import dsp_family, product_cycles
from ..shift_quantizer import ShiftQuantizer
from ..single_port import spram_blocks
from ..transpose_memory import SliceMode
from .control import Sequencer
from .update import UpdateLanes

__all__ = ["ConvDims", "EngineGeometry", "HostTarget", "MemorySpec", "Phase", "READ_LATENCY",
           "CRC_TENSOR_KINDS", "bank_blocks", "LINK_BLOCKS", "plan_recompute", "recompute_cost"]

#: Cycles from a memory read request to its data (registered requests, then the block RAM and
#: the slice rotation); engines of more than one lane register every bank's address after its
#: arithmetic too (:attr:`EngineGeometry.read_latency`, one more).
READ_LATENCY = 3
#: Registers of the pool pass between its slices' data and QA: one for the lanes' maxima over
#: the window's rows, one for the windows' maxima (:attr:`EngineGeometry.pool_latency` adds QA's).
POOL_MAX_REGISTERS = 2
#: Cycles of the unpool pass past its reads and their read latency (it writes as its slices
#: arrive).
UNPOOL_LATENCY = 0


def max_log2_cycles() -> int:
    """Cycles from the ``last`` element of a tensor to ``RL2(max |x|)`` of up to 4 lanes, as the
    passes that wait for it count them: the lanes' :class:`MaxAbs`, the register before
    :class:`Log2Round`, :class:`Log2Round` (their declared latencies)."""
    return MaxAbs.LATENCY + 1 + Log2Round.LATENCY


# -- resources per FPGA family -------------------------------------------------------------------
#: Block RAM aspect ratios (depth, data width) that Yosys maps a bank with one read port and one
#: write port to, per family; the block count of a bank is the smallest over these.
BRAM_MODES = {
    # SB_RAM40_4K: 4 Kbit.
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
    # DP16KD: 18 Kbit; 512 x 36 only as a pseudo dual port (one read, one write: our case).
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
    # Gowin SDPB / DPB: 18 Kbit.
    "gowin": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
}
#: What Yosys's memory mapper weighs (the costs in its ``brams.txt`` / ``lutrams.txt`` of each
#: family): a block RAM's cost, and the granularity of its write enables ("byte"; the iCE40's
#: 16-bit write port masks single bits), which lets a bank's last, narrow slice of bits share
#: a block among several addresses. Distributed memory (ECP5 TRELLIS_DPR16X4, Gowin RAM16SDP4;
#: 16 x 4 at cost 4, Gowin's scaled by the width used) is chosen when it costs less than the
#: blocks. Checked against Yosys on 67 bank shapes of the three families (every one exact) and
#: on the builds: ECP5 8x8 default, E2's 80 x 8 banks in LUT RAM, OUT's 80 x 32 in DP16KD;
#: Gowin 2x2, OUT's 60 x 20 banks in shadow RAM; iCE40 1x1, G1's 640 x 19 in 4 blocks.
BLOCK_COST = {"ice40": 64, "ecp5": 128, "gowin": 128}
WRITE_BYTE = {"ice40": 1, "ecp5": 9, "gowin": 9}
#: What a Gowin bank costs in LUT RAM beyond its bits a 16 words, as Yosys weighs it against a
#: block (see :func:`bank_blocks`).
GOWIN_LUTRAM_EXTRA = 35
#: Banks of at most this many bits go to flip-flops (iCE40 has no LUT RAM).
FF_BITS = {"ice40": 64, "ecp5": 64, "gowin": 64}
#: Block RAMs of the host link besides the engine's memories: its frame buffer.
LINK_BLOCKS = 1
#: The LUT model of :meth:`EngineGeometry.estimate_luts` per family, ``(a, b, c, d, e,
#: shape, f)``: ``a`` fixed, ``b`` per lane unit (``shape`` ``"linear"``: a unit a lane;
#: ``"log"``: ``lanes * ceil(log2(lanes))`` units, the slice rotators' muxes), ``c`` per MAC,
#: ``d`` per lane and weight layer past the first (its memories' banks and address arithmetic,
#: its QE), ``e`` per lane and convolution (the conv control, the pool unit, the Z, CH, D and RC
#: memories), ``f`` per doubling of the deepest bank past 1,024 words (wider addresses, counters
#: and tile loops, more blocks behind a read mux; MNIST-size inputs).
#: Fitted to packed builds of the board tops of one tree (iCE40 logic cells, ECP5 TRELLIS_COMB,
#: Gowin LUT4 + ALU; bench/luts.py packs the iCE40 and ECP5 ones, bench/fpga.py builds the
#: rest), every one with its per-phase counters:
#: iCE40 1x1 64-10 4,614, 64-8-10 5,201, 64-8-8-10 5,602, 2x2 64-10 6,950, 64-8-10 8,381,
#: 1x1 1x8x8,1C3,10 5,378 and 1x8x8,2C3,4C3,10 6,680 (the 4x4, about 11,900, grows as linearly);
#: ECP5 2x2 64-10 6,671 and 64-32-32-10 10,363, 8x8 64-256-10 34,822, 8x8
#: 1x8x8,16C3,MP2,32C3,MP2,10 56,723 (12x12 64-256-10: 62,629 on an older tree, 1.7 % above);
#: Gowin 1x1 64-10 4,338 and 64-32-10 5,660, 2x2 64-10 7,376 (its 64-32-10, 8,414 LUT4 and
#: 2,478 ALU after packing, did not place: about 10,000 sites, as estimated; no conv build:
#: ``e`` is the iCE40's times Gowin's layer cost over the iCE40's). ``f`` (with ``a`` again)
#: from the iCE40 1x1 builds without per-phase counters 64-24-10 at batch 8 and 16, 256-32-10
#: at batch 8, 784-32-10 at batch 8 and 16, 784-64-10 at batch 8, 784-96-10 at batch 16
#: (4,825 to 5,822; the estimate without ``f`` fell 17 % short of the last), and the Gowin
#: builds with 784-32-10 at batch 8 (6,258); on ECP5 not fitted (0: its 784-256-10 build is
#: within 4 %).
LUT_MODEL = {
    "ice40": (2380, 2261, 25, 603, 177, "linear", 90),
    "ecp5": (4819, 876, 25, 923, 907, "log", 0),
    "gowin": (1212, 2963, 25, 1322, 388, "linear", 156),
}
#: LUT sites per bit of the per-phase counters (``Config.phase_counters``: four phases, a cycle
#: and a MAC counter each), which every fitted build had: iCE40 1x1 1x8x8,1C3,10 5,378 -> 5,197
#: without them (104 bits).
PHASE_LUTS_PER_BIT = 2
#: LUT sites of the fault pass per bit lane: a 32-bit LFSR's leap network and a comparator.
FAULT_LUTS_PER_BIT = 64


def _family(family: str) -> str:
    if family not in BRAM_MODES:
        raise ValueError(f"FPGA family must be one of {', '.join(BRAM_MODES)}, not {family!r}")
    return family


def bank_blocks(family: str, depth: int, width: int) -> int:
    """Block RAMs one bank of ``depth`` words of ``width`` bits takes on ``family`` (0 for a
    bank small enough for distributed memory or flip-flops), as Yosys maps it: one aspect
    ratio ``d x w`` per bank, ``width // w`` full slices of ``ceil(depth / d)`` blocks, and the
    remaining bits folded, as many addresses per block word as their write-enable bytes allow."""
    _family(family)
    if depth * width <= FF_BITS[family]:
        return 0
    blocks = min(_blocks_in_mode(family, depth, width, d, w) for d, w in BRAM_MODES[family])
    if family == "ice40" and depth * width <= BLOCK_COST[family] * blocks:
        return 0    # flip-flops cost no more than the blocks (Yosys: 4 x 32 bits in FFs)
    if family != "ice40":
        units = -(-depth // 16)   # 16 x 4 distributed RAMs
        # Gowin: Yosys costs LUT RAM by the bits used (``widthscale``), and with what the read
        # port adds a bank goes to LUT RAM up to 90 of them a 16 words and to a block from 96
        # (builds: 60 x 20, 80 x 18 and 512 x 2 bits in LUT RAM, 80 x 20 and 768 x 2 in blocks;
        # Yosys alone: 256 x 5, 128 x 9 in LUT RAM, 512 x 3, 128 x 12, 240 x 7 in blocks).
        lutram = units * width + GOWIN_LUTRAM_EXTRA if family == "gowin" \
            else units * -(-width // 4) * 4
        if lutram < BLOCK_COST[family] * blocks:
            return 0
    return blocks


def _blocks_in_mode(family, depth, width, d, w):
    full, rest = divmod(width, w)
    blocks = full * -(-depth // d)
    if rest:
        byte = WRITE_BYTE[family]
        fold = max(1, w // (-(-rest // byte) * byte))
        blocks += -(-depth // (d * fold))
    return blocks


#: The kinds of tensor whose CRC-32 the engine keeps, in the order of its ``crcs`` port: the
#: stored weights after the update (``W1 .. WL``), the quantized errors (``E1 .. EL``), the output
#: accumulators and the predictions.
CRC_TENSOR_KINDS = ("W", "E", "OUT", "P")


class HostTarget(enum.Enum, shape=3):
    """Which kind of matrix a host access addresses (with its ``layer`` field).

    - ``WEIGHTS``, layer ``l`` in ``1 .. L``: the stored weights ``W_l``, ``n_out x n_in``.
    - ``ACTIVATIONS``, layer ``l`` in ``0 .. L``: ``A_l``, ``batch_size x layers[l]``; ``A_0`` is
      the input, ``A_L`` the output accumulators ``OUT``.
    - ``PREDICTIONS`` (``layer`` ignored): ``argmax(OUT)`` per sample, ``batch_size x 1``.
    - ``LABELS`` (``layer`` ignored): the class of every sample, ``batch_size x 1``.
    - ``ERRORS``, layer ``l`` in ``1 .. L``: ``E_l``, the quantized error at layer ``l``'s output
      of the last training step, ``batch_size x layers[l]``.
    """

    WEIGHTS = 0
    ACTIVATIONS = 1
    PREDICTIONS = 2
    LABELS = 3
    ERRORS = 4


class Phase(enum.Enum, shape=2):
    """The phases of a run that the per-phase counters tell apart.

    - ``FORWARD``: the forward pass of every layer and the argmax pass.
    - ``BACKWARD``: the output error and its QE, every ``R_l = E_l . T_l`` and the QE passes that
      turn it into ``E_{l-1}``.
    - ``GRADIENT``: every ``G_l = E_l^T . A_{l-1}``.
    - ``UPDATE``: the weight update passes.
    """

    FORWARD = 0
    BACKWARD = 1
    GRADIENT = 2
    UPDATE = 3



@dataclass(frozen=True)
class MemorySpec:
    """One matrix in on-chip memory: ``rows x cols`` elements of ``shape``."""

    name: str
    shape: Shape
    rows: int
    cols: int
    #: Only ever accessed in row slices that start at a multiple of the lanes: stored without
    #: rotation (:class:`TransposeMemory` with ``aligned_rows``).
    aligned_rows: bool = False
    #: Rows of zeros' room before (and after) the matrix: a convolution's positions matrix,
    #: read at every kernel tap's shift, starts at row ``row_offset`` of the memory
    #: (:attr:`ConvDims.guard`); the host addresses the matrix without it.
    row_offset: int = 0

    @property
    def logical_rows(self) -> int:
        """Rows of the matrix itself (without the guard rows)."""
        return self.rows - 2 * self.row_offset

    @property
    def width(self) -> int:
        return self.shape.width

    def banks(self, lanes: int) -> tuple[int, int, int]:
        """``(banks, depth, width)`` with ``lanes`` banks."""
        if self.aligned_rows:
            return lanes, self.rows * _ceil(self.cols, lanes), self.width
        return lanes, _ceil(self.rows, lanes) * self.cols, self.width


@dataclass(frozen=True)
class ConvDims:
    """The dimensions of a convolution layer as the engine runs it: ``c_in x h x w`` inputs,
    ``c_out`` channels out, a ``k x k`` kernel (stride 1, SAME zero padding ``p``).

    Activations and errors of a convolution are stored channel-last: one matrix row per
    position ``(b, y, x)`` (row ``b * h * w + y * w + x``), one column per channel, so that the
    input of kernel tap ``(i, j)`` at every position is the same matrix shifted by
    ``(i - p) * w + (j - p)`` rows; lanes that the shift takes off the image read zeros (a
    mask, no padded copy). The weights are stored channel-last too, ``(i, j, c)``
    (:attr:`LayerPlan.stored_columns`)."""

    c_in: int
    h: int
    w: int
    k: int
    c_out: int
    #: The max-pool ``pool x pool`` after the convolution (1: none).
    pool: int = 1

    @property
    def p(self) -> int:
        return (self.k - 1) // 2

    @property
    def hw(self) -> int:
        """Positions of the convolution (its input and its output before the pool)."""
        return self.h * self.w

    @property
    def hp(self) -> int:
        return self.h // self.pool

    @property
    def wp(self) -> int:
        return self.w // self.pool

    @property
    def hwp(self) -> int:
        """Positions of the layer's output (after the pool)."""
        return self.hp * self.wp

    @property
    def taps(self) -> int:
        return self.k * self.k

    @property
    def row_taps(self) -> bool:
        """The gradient takes a kernel row's taps in a column block (one input channel): the
        input at the taps ``(i, 0 .. k - 1)`` of a position is a column slice, consecutive
        positions; otherwise a column block is one tap's channels (a row slice)."""
        return self.c_in == 1 and self.k > 1

    @property
    def guard(self) -> int:
        """The largest shift of a kernel tap, ``p * w + p`` rows: a memory read at every shift
        holds that many rows before and after the matrix."""
        return self.p * self.w + self.p


def max_tree_registers(lanes: int) -> int:
    """Registers in the tree that combines the lanes' maxima beyond the first: one per two more
    levels (0 up to 4 lanes, 1 up to 16, 2 up to 64)."""
    levels = max(1, (lanes - 1).bit_length())
    return (levels - 1) // 2


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class EngineGeometry:
    """Shapes, memory map, cycles and MACs of the engine of ``config`` (see the module).

    Parameters
    ----------
    config : Config
        The network, widths, batch size, array shape and random lanes.
    dsp : str
        The array's product mapping (``"generic"``, ``"ice40"``, ``"ecp5"``, ``"gowin"``): its
        pipeline enters the cycle model.
    """

    def __init__(self, config: Config, dsp: str = "generic"):
        if not isinstance(config, Config):
            raise TypeError(f"Configuration must be a Config, not {config!r}")
        self.config = config
        self.dsp = dsp
        self.plan = config.plan
        # The widths the hardware holds: in APT mode every error as wide as ``apt_max``, and the
        # accumulators and buffers that such errors need.
        self.wide_plan = config.error_plan([config.apt_max] * len(config.plan)) if config.apt \
            else config.plan
        self.rows, self.cols = config.array_rows, config.array_cols
        self.lanes = max(self.rows, self.cols)
        self.n_layers = len(self.plan)
        config.require_engine_layers("the engine")
        #: Per layer, its :class:`ConvDims` (a convolution) or None.
        self.conv_dims = [ConvDims(p.in_shape[0], p.in_shape[1], p.in_shape[2], p.kernel,
                                   p.n_out, p.pool) if p.conv else None for p in self.plan]
        #: The layers (0-based) whose convolution is followed by a max-pool.
        self.pooled = [j for j, d in enumerate(self.conv_dims) if d and d.pool > 1]
        self.has_conv = any(self.conv_dims)

    # -- element shapes ---------------------------------------------------------------------------
    @cached_property
    def weight_shapes(self) -> list[Shape]:
        """Stored weights ``W_1 .. W_L``: as wide as :class:`WeightUpdater`'s ``w``."""
        return [signed(p.w_max.bit_length() + 1) for p in self.plan]

    @cached_property
    def activation_shapes(self) -> list[Shape]:
        """``A_0`` (the input), the hidden ``A_l`` (QA's results lie in ``[0, 2 ** (a-1) - 1]``)
        and ``A_L = OUT`` (raw accumulators)."""
        cfg = self.config
        return ([signed(cfg.input_bits)] + [unsigned(p.bits.a - 1) for p in self.plan[:-1]]
                + [signed(cfg.acc_bits)])

    @cached_property
    def error_shapes(self) -> list[Shape]:
        return [signed(p.bits.e) for p in self.wide_plan]

    @cached_property
    def prediction_shape(self) -> Shape:
        """Predictions and labels: enough for ``n_classes - 1``."""
        return unsigned(max(1, (self.config.layers[-1] - 1).bit_length()))

    @cached_property
    def err_width(self) -> int:
        """The output error ``OUT - label * onehot``."""
        last = self.plan[-1]
        return max(last.acc_bits_forward, last.out_shift + 2) + 1

    @cached_property
    def r_width(self) -> int:
        """``R_l = E_l . T_l`` of every layer but the first (0 for one layer)."""
        return max([p.acc_bits_backward for p in self.wide_plan[1:]], default=0)

    @cached_property
    def g_width(self) -> int:
        return max(p.acc_bits_gradient for p in self.wide_plan)

    @cached_property
    def host_width(self) -> int:
        """Width of the signed host data words: enough for every host-visible memory."""
        return max(s.width + (0 if s.signed else 1)
                   for s in self.weight_shapes + self.activation_shapes + self.error_shapes)

    @cached_property
    def host_read_layout(self) -> data.StructLayout:
        """A host request: ``target`` (:class:`HostTarget`), ``layer``, ``mode``, ``row``,
        ``col``."""
        n = self.n_layers
        names = ([f"W{j}" for j in range(1, n + 1)] + [f"A{j}" for j in range(n)]
                 + ["OUT", "P", "LABELS"] + [f"E{j}" for j in range(1, n + 1)])
        host = [self.memories[name] for name in names]   # the matrices HostTarget addresses
        return data.StructLayout({
            "target": HostTarget,
            "layer": range(self.n_layers + 1),
            "mode": SliceMode,
            "row": range(max(s.logical_rows for s in host)),
            "col": range(max(s.cols for s in host)),
        })

    @cached_property
    def host_data_layout(self) -> data.ArrayLayout:
        """A slice as the host sees it: ``lanes`` values of ``signed(host_width)``."""
        return data.ArrayLayout(signed(self.host_width), self.lanes)

    @cached_property
    def host_write_layout(self) -> data.StructLayout:
        """A host write: the request's fields, ``data`` and ``mask`` (one bit per lane)."""
        fields = dict(self.host_read_layout.members)
        return data.StructLayout({**fields, "data": self.host_data_layout,
                                  "mask": unsigned(self.lanes)})

    # -- memory map -------------------------------------------------------------------------------
    @cached_property
    def memories(self) -> dict[str, MemorySpec]:
        """Every on-chip matrix by name: ``W{l}``, ``A{l}`` (``OUT`` for ``A_L``), ``P``,
        ``LABELS``, ``E{l}``, ``M{l}`` (hidden layers' ReLU and clip masks), ``G{l}`` (except
        the layers of :attr:`recomputed`) and ``R`` (the clip-masked ``R_l`` of the layer being
        trained; only with two or more layers)."""
        plan, batch = self.plan, self.config.batch_size
        specs = []
        for j, p in enumerate(plan):
            specs.append((f"W{j + 1}", self.weight_shapes[j], p.n_out, p.n_in, 0))
        for j in range(self.n_layers):
            specs.append((f"A{j}", self.activation_shapes[j], *self.activation_matrix(j)))
        specs.append(("OUT", self.activation_shapes[-1], batch, plan[-1].n_out, 0))
        specs.append(("P", self.prediction_shape, batch, 1, 0))
        specs.append(("LABELS", self.prediction_shape, batch, 1, 0))
        for j in range(self.n_layers):
            specs.append((f"E{j + 1}", self.error_shapes[j], *self.error_matrix(j)))
        for j in range(self.n_layers - 1):
            specs.append((f"M{j + 1}", unsigned(2), *self.activation_matrix(j + 1)))
        for j, p in enumerate(plan):
            if p.index not in self.recomputed:
                specs.append((f"G{j + 1}", signed(self.wide_plan[j].acc_bits_gradient), p.n_out,
                              p.n_in, 0))
        for name, (rows, cols) in self.r_matrices.items():
            specs.append((name, signed(self.r_width), rows, cols, 0))
        for j in self.pooled:
            d, n = self.conv_dims[j], j + 1
            specs.append((f"Z{n}", signed(plan[j].acc_bits_forward), batch * d.hw, d.c_out, 0))
            specs.append((f"CH{n}", unsigned((d.pool * d.pool - 1).bit_length()),
                          batch * d.hwp, d.c_out, 0))
            specs.append((f"D{n}", self.error_shapes[j], batch * d.hw, d.c_out, d.guard))
        return {name: MemorySpec(name, shape, rows + 2 * guard, cols,
                                 name in self.aligned_memories, guard)
                for name, shape, rows, cols, guard in specs}

    def activation_matrix(self, j: int) -> tuple[int, int, int]:
        """``(rows, cols, guard)`` of ``A_j`` (``j < L``), laid out for its reader, layer
        ``j + 1``: a convolution's positions x channels (:class:`ConvDims`), else ``batch x
        n_in`` (a convolution's output flattened channel-major, as the golden model does)."""
        d, batch = self.conv_dims[j], self.config.batch_size
        if d is not None:
            return batch * d.hw, d.c_in, d.guard
        return batch, self.plan[j].n_in, 0

    def error_matrix(self, j: int) -> tuple[int, int, int]:
        """``(rows, cols, guard)`` of ``E_{j+1}``, the error at layer ``j + 1``'s output: a
        convolution's positions x channels (after its pool: the products then read the error
        routed back to the pool's inputs, ``D{j+1}``), else ``batch x n_out``."""
        d, batch = self.conv_dims[j], self.config.batch_size
        if d is not None and d.pool > 1:   # the products read it unpooled, from D{j+1}
            return batch * d.hwp, d.c_out, 0
        if d is not None:
            return batch * d.hw, d.c_out, d.guard
        return batch, self.plan[j].n_out, 0

    @cached_property
    def r_matrices(self) -> dict[str, tuple[int, int]]:
        """The buffers of ``R_l`` (``l > 1``), the clip-masked error sent back by the layer being
        trained: ``R`` (fully connected layers, ``batch x n_in``) and ``RC`` (convolutions,
        positions x channels), as large as the largest layer that uses each."""
        batch, out = self.config.batch_size, {}
        for p, d in zip(self.plan[1:], self.conv_dims[1:]):
            name, (rows, cols) = ("RC", (batch * d.hw, d.c_in)) if d else ("R", (batch, p.n_in))
            old = out.get(name, (0, 0))
            out[name] = (max(old[0], rows), max(old[1], cols))
        return out

    def r_memory(self, layer: int) -> str:
        """The buffer of ``R_layer`` (``layer`` numbered from 1, ``> 1``)."""
        return "RC" if self.conv_dims[layer - 1] else "R"

    @cached_property
    def aligned_memories(self) -> frozenset[str]:
        """The memories read and written only in row slices at multiples of the lanes: every
        ``G{l}`` (rows of the array's results, ``array_cols`` columns at a time; the update's
        chunks of ``rng_lanes``) and ``R`` (rows of results; the QE pass's slices) when the
        array is as wide as the lanes (``array_cols >= array_rows``) and, for ``G``,
        ``rng_lanes`` is a multiple of the lanes."""
        if self.cols != self.lanes:
            return frozenset()
        # (The QE pass above a convolution reads R a channel's positions at a time.)
        flat_after_conv = any(d is not None for d in self.conv_dims[:-1])
        names = {"R"} & set(self.r_matrices) if not flat_after_conv else set()
        if self.config.rng_lanes % self.lanes == 0:
            names |= {f"G{p.index}" for p in self.plan
                      if p.index not in self.recomputed and not p.conv}
        return frozenset(names)

    def apt_widths(self, layer: int) -> list[int]:
        """The error widths ``kE`` that ``layer`` (numbered from 1) can reach: its starting width
        and, in APT mode, every width that ``apt_step`` grows it to, up to ``apt_max``."""
        cfg = self.config
        widths = [self.plan[layer - 1].bits.e]
        while cfg.apt and widths[-1] < cfg.apt_max:
            widths.append(min(widths[-1] + cfg.apt_step, cfg.apt_max))
        return widths

    @property
    def recomputed(self) -> tuple[int, ...]:
        """The layers whose gradient is computed twice instead of stored
        (:attr:`Config.recompute_gradients`): a first gradient job finds ``max |G_l|`` only, a
        second one (after the layer's backward job and QE pass) feeds the update straight from
        the array, one row of ``array_cols`` weights per row of a tile."""
        return self.config.recompute_gradients

    def memory_banks(self) -> dict[str, tuple[int, int, int]]:
        """Every memory as ``(banks, depth, width)``: ``lanes`` diagonally banked memories of
        ``ceil(rows / lanes) * cols`` words (aligned ones: ``rows * ceil(cols / lanes)``)."""
        return {name: s.banks(self.lanes) for name, s in self.memories.items()}

    def memory_bits(self) -> dict[str, int]:
        """Bits of every memory by name: ``banks * depth * width``."""
        return {name: banks * depth * width
                for name, (banks, depth, width) in self.memory_banks().items()}

    # -- resources ---------------------------------------------------------------------------------
    def memory_blocks(self, family: str) -> dict[str, int]:
        """Block RAMs of every memory on an FPGA ``family`` (``"ice40"``, ``"ecp5"``,
        ``"gowin"``): its banks times :func:`bank_blocks`; and ``CRC``, the tensor CRCs'
        memory of :class:`~.crc.TensorCrc` (one 32-bit word per tensor). The memories of
        :attr:`Config.spram` take none on the iCE40 (:meth:`spram_blocks`)."""
        spram = self.spram_blocks(family)
        blocks = {name: 0 if name in spram else banks * bank_blocks(family, depth, width)
                  for name, (banks, depth, width) in self.memory_banks().items()}
        blocks["CRC"] = bank_blocks(family, len(self.crc_tensors), 32)
        return blocks

    def single_port(self, name: str, dsp: str = "generic") -> str | None:
        """The kind of single-port banks memory ``name`` is built from for an engine of DSP
        mapping ``dsp`` (:class:`~intrain.hdl.single_port.SinglePortBank`): ``"ice40"`` (SPRAM)
        for a memory of :attr:`Config.spram` on the iCE40, ``"generic"`` for one elsewhere,
        ``None`` for a dual-port memory."""
        if name not in self.config.spram:
            return None
        return "ice40" if dsp == "ice40" else "generic"

    def spram_blocks(self, family: str) -> dict[str, int]:
        """``SB_SPRAM256KA`` primitives of every memory of :attr:`Config.spram` on ``family``
        (none but on the iCE40, where they hold those memories instead of block RAM)."""
        if _family(family) != "ice40":
            return {}
        banks = self.memory_banks()
        return {name: banks[name][0] * spram_blocks(*banks[name][1:])
                for name in self.config.spram}

    def estimate_luts(self, family: str) -> int:
        """LUT sites (LUT4s and carry cells) of the engine with its host link on ``family``:
        ``a + b * units + c * MACs + (d * (layers - 1) + e * convolutions) * lanes
        + f * log2(deepest bank / 1024)``
        (:data:`LUT_MODEL`, fitted to builds; most of the logic is per lane: each memory's banks
        with their slice rotators and address arithmetic, the rounders and updaters), less the
        per-phase counters when the config has none, plus the fault pass's comparators when it
        has one."""
        a, b, c, d, e, shape, f = LUT_MODEL[_family(family)]
        cfg, lanes = self.config, self.lanes
        units = lanes * max(1, (lanes - 1).bit_length()) if shape == "log" else lanes
        n_conv = sum(dims is not None for dims in self.conv_dims)
        deepest = max(depth for _, depth, _ in self.memory_banks().values())
        luts = a + b * units + c * cfg.array_rows * cfg.array_cols \
            + (d * (len(self.plan) - 1) + e * n_conv) * lanes \
            + round(f * math.log2(deepest / 1024))
        if not cfg.phase_counters:
            luts -= PHASE_LUTS_PER_BIT * 4 * sum(self.counter_bits)
        if self.fault_plan is not None:   # a 32-bit LFSR and comparator per bit
            luts += FAULT_LUTS_PER_BIT * self.fault_plan.lanes
        return luts

    def resources(self, family: str) -> dict[str, int]:
        """The estimate of an engine with its host link on ``family``: ``luts``
        (:meth:`estimate_luts`), ``dsps`` (the family's DSP primitives for the array's products,
        :meth:`DspFamily.primitives`), ``bram`` (:meth:`memory_blocks` plus
        :data:`LINK_BLOCKS`) and ``spram`` (:meth:`spram_blocks`)."""
        macs = self.config.array_rows * self.config.array_cols
        return {"luts": self.estimate_luts(family),
                "dsps": dsp_family(_family(family)).primitives(macs),
                "bram": sum(self.memory_blocks(family).values()) + LINK_BLOCKS,
                "spram": sum(self.spram_blocks(family).values())}

    # -- the array's jobs -------------------------------------------------------------------------
    def check_batch(self, batch) -> int:
        if not isinstance(batch, int) or isinstance(batch, bool) \
                or not 1 <= batch <= self.config.batch_size:
            raise ValueError(
                f"Batch must be an integer from 1 to {self.config.batch_size}, not {batch!r}")
        return batch

    @property
    def min_train_batch(self) -> int:
        """The fewest samples of a training step (:attr:`Config.min_train_batch`)."""
        return self.config.min_train_batch

    def tiles(self, batch) -> list[int]:
        """Forward tiles of every layer: ``ceil(n_out / R) * ceil(batch / C)``; a convolution's
        columns are its positions, ``ceil(h * w / C)`` blocks per sample."""
        self.check_batch(batch)
        return [_ceil(p.n_out, self.rows) * self._position_blocks(d, batch, self.cols)
                for p, d in zip(self.plan, self.conv_dims)]

    @staticmethod
    def _position_blocks(d, batch, size):
        """Blocks of ``size`` samples, or for a convolution of ``size`` positions of one sample
        (a block never spans two samples)."""
        return _ceil(batch, size) if d is None else batch * _ceil(d.hw, size)

    def array_jobs(self, batch) -> list[list[tuple[int, int]]]:
        """Per layer, last to first, the gradient and backward jobs of a training step as
        ``(tiles, K)`` runs: ``ceil(n_out / R) * ceil(n_in / C)`` tiles of ``K = batch`` and, past
        the first layer, ``ceil(batch / R) * ceil(n_in / C)`` tiles of ``K = n_out``. A
        convolution's gradient has ``k * k * ceil(c_in / C)`` column blocks (one kernel tap
        each; with one input channel ``k * ceil(k / C)``, a kernel row each, see
        :attr:`ConvDims.row_taps`) and ``K = batch * h * w``; its backward job runs over
        position blocks (:meth:`tiles`) and ``ceil(c_in / C)`` column blocks with ``K = k * k *
        c_out``."""
        jobs = []
        for p, d in zip(reversed(self.plan), reversed(self.conv_dims)):
            row_blocks = _ceil(p.n_out, self.rows)
            if d is None:
                job = [(row_blocks * _ceil(p.n_in, self.cols), batch)]
                back = (_ceil(batch, self.rows) * _ceil(p.n_in, self.cols), p.n_out)
            else:
                col_blocks = d.k * _ceil(d.k, self.cols) if d.row_taps \
                    else d.taps * _ceil(d.c_in, self.cols)
                job = [(row_blocks * col_blocks, batch * d.hw)]
                back = (self._position_blocks(d, batch, self.rows) * _ceil(d.c_in, self.cols),
                        d.taps * d.c_out)
            if p.index > 1:
                job.append(back)
            jobs.append(job)
        return jobs

    @property
    def macs(self) -> int:
        return self.rows * self.cols

    def forward_macs(self, batch) -> int:
        """MACs the array performs in a forward pass, padding included: ``R * C`` per beat."""
        return sum(t * p.n_in * self.macs for t, p in zip(self.tiles(batch), self.plan))

    def regrad_tiles(self, layer: int) -> int:
        """Tiles of a gradient job of ``layer`` (numbered from 1): ``ceil(n_out / R) *
        ceil(n_in / C)``, ``K = batch`` beats each."""
        p = self.plan[layer - 1]
        return _ceil(p.n_out, self.rows) * _ceil(p.n_in, self.cols)

    def train_macs(self, batch) -> int:
        """MACs the array performs in a training step, padding included (``mac_cycles``): with
        the second gradient job of every layer in :attr:`recomputed`."""
        return self.forward_macs(batch) + sum(
            t * k * self.macs for job in self.array_jobs(batch) for t, k in job) + sum(
            self.regrad_tiles(n) * batch * self.macs for n in self.recomputed)

    def _layer_macs(self, j: int) -> int:
        """MACs of one sample's product of layer ``j`` (0-based): ``n_in * n_out``, times the
        positions of a convolution."""
        d = self.conv_dims[j]
        return self.plan[j].n_in * self.plan[j].n_out * (1 if d is None else d.hw)

    def useful_macs(self, batch) -> int:
        """MACs of the network itself: ``batch * sum_l n_in * n_out`` (times a convolution's
        positions)."""
        return self.check_batch(batch) * sum(map(self._layer_macs, range(self.n_layers)))

    def useful_train_macs(self, batch) -> int:
        """MACs of the network in a training step: the forward and gradient products of every
        layer and the backward products of every layer but the first."""
        fwd = self.useful_macs(batch)
        return 2 * fwd + batch * sum(map(self._layer_macs, range(1, self.n_layers)))

    # -- cycle model ------------------------------------------------------------------------------
    @property
    def array_latency(self) -> int:
        """Cycles from a beat entering the array to its first result row leaving it."""
        return product_cycles(self.dsp) + 1 + self.cols - 1

    @cached_property
    def fault_plan(self) -> FaultPlan | None:
        """The memory faults of the configuration (:class:`~intrain.fault_spec.FaultPlan`), or
        None without ``bit_error_rate``: the engine then has a fault pass after the update."""
        return FaultPlan.from_config(self.config)

    @property
    def max_wait(self) -> int:
        """Cycles from a tensor's last element to its ``RL2(max |x|)``."""
        return max_log2_cycles() + max_tree_registers(self.lanes)

    @property
    def address_stage(self) -> bool:
        """The memories register every bank's address and data after the address arithmetic
        (:class:`~intrain.hdl.transpose_memory.TransposeMemory`'s ``address_stage``): engines of
        more than one lane, whose banks spread over the device."""
        return self.lanes > 1

    @property
    def result_stage(self) -> int:
        """Registers between the array's output row multiplexer and the engine's write-back: 1
        in engines of more than one lane (whose result rows fan out to every lane's
        quantizers, maxima and memory ports), else 0."""
        return int(self.lanes > 1)

    @property
    def read_latency(self) -> int:
        """Cycles from a memory read request to its data: :data:`READ_LATENCY`, one more with
        :attr:`address_stage`."""
        return READ_LATENCY + self.address_stage

    # The post-processing stages' latencies, from the blocks' declared constants: the engine
    # delays each stage's side signals by them and the cycle model below adds them, so a
    # retimed block changes both.
    @property
    def qa_latency(self) -> int:
        """Cycles of QA on a hidden layer's result rows (:class:`ShiftQuantizer`)."""
        return ShiftQuantizer.LATENCY

    @property
    def qe_latency(self) -> int:
        """Cycles of QE on a pass's slices (:class:`ShiftQuantizer`)."""
        return ShiftQuantizer.LATENCY

    @property
    def update_latency(self) -> int:
        """Cycles from a gradient slice's data to its updated weights (:class:`UpdateLanes`:
        QG's :class:`StochasticRounder`, then the :class:`WeightUpdater`)."""
        return UpdateLanes.cycles()

    @property
    def switch_latency(self) -> int:
        """Cycles from a job's last write to the switch to the next job
        (:attr:`Sequencer.SWITCH_LATENCY`)."""
        return Sequencer.SWITCH_LATENCY

    @property
    def pool_latency(self) -> int:
        """Cycles of the pool pass past its reads and their read latency:
        :data:`POOL_MAX_REGISTERS`, then QA."""
        return POOL_MAX_REGISTERS + self.qa_latency

    @property
    def fifo_depth(self) -> int:
        """Entries of the operand FIFO in front of the array: the round trip from issuing a read
        to taking its beat (``read_latency + 1`` cycles), plus one."""
        return self.read_latency + 2

    @property
    def fault_latency(self) -> int:
        """Cycles from a read of the fault pass to the write of its word (the read, one
        register)."""
        return self.read_latency + 1

    def stream_cycles(self, ks) -> int:
        """Cycles of a stream of tiles of ``ks`` beats from its first read to the cycle that
        writes its last row (the array's schedule with its input always valid, output always
        ready): ``read_latency + 1`` cycles from a read to the array, the schedule, the
        :attr:`result_stage`, 1 to write the row."""
        rows, cols, latency = self.rows, self.cols, self.array_latency
        cycle, lasts, outs, prev_out = 0, [], [], -1
        for n, k in enumerate(ks):
            cycle += k - 1
            if n >= 1:
                cycle = max(cycle, lasts[-1] + cols)
            if n >= 2:
                cycle = max(cycle, outs[n - 2])
            lasts.append(cycle)
            cycle += 1
            prev_out = max(lasts[-1] + latency, prev_out + 1) + rows - 1
            outs.append(prev_out)
        return self.read_latency + 1 + outs[-1] + self.result_stage + 1

    def forward_cycles(self, batch) -> int:
        """Busy cycles of a forward pass of ``batch`` samples (the ``cycles`` counter): every
        layer's stream of tiles (:attr:`qa_latency` more in hidden layers), then the argmax pass
        (one read per class and block of ``lanes`` samples, then the read latency)."""
        switch, total = self.switch_latency, 0
        for j, (n_tiles, p) in enumerate(zip(self.tiles(batch), self.plan)):
            total += self.stream_cycles([p.n_in] * n_tiles) + switch
            if j in self.pooled:   # the stream wrote Z with the array's rows; then the pool pass
                total += self.pool_reads(j, batch) + self.read_latency + self.pool_latency \
                    + switch
            elif not p.last:
                total += self.qa_latency
        return total + _ceil(batch, self.lanes) * self.plan[-1].n_out + self.read_latency \
            + switch

    def train_phase_cycles(self, batch) -> dict[str, int]:
        """Busy cycles of a training step by part: ``forward`` (:meth:`forward_cycles`),
        ``output_error`` (the QE pass of the output error), and per layer ``l`` (last to first)
        ``gradient_backward_l`` (the gradient and backward tiles as one stream), ``error_l`` (the
        QE pass of ``R``, or for layer 1 the wait for ``RL2(max |G|)``) and ``update_l`` (for a
        layer of :attr:`recomputed`, ``regrad_l``: the second gradient job, each row of a tile
        read-modify-written to ``W_l`` ``read_latency + update_latency`` cycles after it leaves
        the array); with memory faults, then ``faults_l`` per layer (last to first: one cycle per
        weight and :attr:`fault_latency`)."""
        cfg, lanes, rl, wait = self.config, self.lanes, self.read_latency, self.max_wait
        qe, up = self.qe_latency, self.update_latency
        # Every part below ends with one job's switch, but a switch into a job that waits for a
        # maximum (the output error's QE pass, R's, the update of layer 1) hides in that wait.
        switch = self.switch_latency
        parts = {"forward": self.forward_cycles(batch) - switch,
                 "output_error": _ceil(batch, lanes) * self.plan[-1].n_out + wait + rl + qe
                 + switch}
        n_sub = _ceil(cfg.rng_lanes, lanes)
        for p, job in zip(reversed(self.plan), self.array_jobs(batch)):
            n = p.index
            if n - 1 in self.pooled:   # the error routed back to the pool's inputs
                parts[f"unpool_{n}"] = self.pool_reads(n - 1, batch) + self.read_latency \
                    + UNPOOL_LATENCY + switch
            parts[f"gradient_backward_{n}"] = self.stream_cycles(
                [k for tiles, k in job for _ in range(tiles)])
            if n > 1:
                parts[f"error_{n}"] = rl + wait + self.error_reads(n, batch) + rl + qe + switch
            else:
                parts[f"error_{n}"] = wait + 1
            if n in self.recomputed:
                parts[f"regrad_{n}"] = self.stream_cycles(
                    [batch] * self.regrad_tiles(n)) + rl + up + switch
            else:
                parts[f"update_{n}"] = p.n_out * _ceil(p.n_in, cfg.rng_lanes) * n_sub + rl + up \
                    + switch
        if self.fault_plan is not None:
            for p in reversed(self.plan):
                parts[f"faults_{p.index}"] = p.n_out * p.n_in + self.fault_latency + switch
        return parts

    def pool_span(self, j: int) -> int:
        """Positions of an image row that one slice of the pool and unpool passes of layer
        ``j`` (0-based) covers: whole windows, ``(lanes // pool) * pool``."""
        return self.lanes // self.conv_dims[j].pool * self.conv_dims[j].pool

    def pool_reads(self, j: int, batch: int) -> int:
        """Slices the pool pass (and the unpool pass) of layer ``j`` (0-based) reads: per
        sample, channel and row of windows, ``ceil(w / span)`` blocks of ``pool`` image rows
        (:meth:`pool_span`)."""
        d = self.conv_dims[j]
        return batch * d.c_out * d.hp * _ceil(d.w, self.pool_span(j)) * d.pool

    def error_reads(self, layer: int, batch: int) -> int:
        """Slices the QE pass of ``R_layer`` reads (``layer > 1``): one per ``lanes`` features of
        a sample (a convolution: of a position); where the layer below is a convolution and
        ``layer`` fully connected, ``lanes`` positions of one channel of one sample (the pass
        writes them as a column slice of the positions x channels ``E_{layer-1}``)."""
        p, d, below = self.plan[layer - 1], self.conv_dims[layer - 1], \
            self.conv_dims[layer - 2]
        if d is not None:
            return batch * d.hw * _ceil(d.c_in, self.lanes)
        if below is not None:
            return batch * below.c_out * _ceil(below.hwp, self.lanes)
        return batch * _ceil(p.n_in, self.lanes)

    def train_cycles(self, batch) -> int:
        """Busy cycles of a training step of ``batch`` samples (the ``cycles`` counter)."""
        return sum(self.train_phase_cycles(batch).values())

    @cached_property
    def counter_bits(self) -> tuple[int, int]:
        """Bits of the run's cycle counters (``cycles`` and each phase's) and of its MAC
        counters (``mac_cycles`` and each phase's): one more than a full training step of
        ``batch_size`` needs (:meth:`train_cycles`, :meth:`train_macs`; every shorter run and
        every phase counts less), so a run of up to twice the modelled length still reads
        right; at most 32, the width of a counter word on the host link."""
        b = self.config.batch_size
        return tuple(min(32, n.bit_length() + 1)
                     for n in (self.train_cycles(b), self.train_macs(b)))

    # -- the host's view ----------------------------------------------------------------------
    def matrix_shape(self, name: str, batch: int) -> tuple[int, int]:
        """``(rows, cols)`` that a run of ``batch`` samples fills of the host-visible matrix
        ``name`` (``W{l}``, ``A0``, ``E{l}``, ``OUT``, ``P``)."""
        spec = self.memories[name]
        if name[0] == "W":
            return spec.rows, spec.cols
        per_sample = spec.logical_rows // self.config.batch_size
        return batch * per_sample, spec.cols

    def engine_matrix(self, name: str, tensor) -> np.ndarray:
        """The golden model's ``tensor`` of name ``name`` (``W{l}``, ``A0``, ``E{l}``, ``OUT``,
        ``P``) as the engine holds it: a convolution's weights in their stored column order
        (:attr:`LayerPlan.stored_columns`), its inputs and errors ``(batch, C, H, W)`` as
        positions x channels (:class:`ConvDims`); everything else as a matrix of one row per
        sample (a flat or a column vector stays as it is)."""
        x = np.asarray(tensor)
        if name[0] == "W":
            cols = self.plan[int(name[1:]) - 1].stored_columns
            return x if cols is None else x[:, list(cols)]
        d = self.conv_dims[0] if name == "A0" else \
            self.conv_dims[int(name[1:]) - 1] if name[0] == "E" else None
        if d is not None:
            c, hw = (d.c_in, d.hw) if name == "A0" else (d.c_out, d.hwp)
            return x.reshape(len(x), c, hw).transpose(0, 2, 1).reshape(-1, c)
        return x if x.ndim < 2 else x.reshape(len(x), -1)

    def golden_weights(self, layer: int, matrix) -> np.ndarray:
        """The inverse of :meth:`engine_matrix` for the weights of ``layer`` (from 1)."""
        cols = self.plan[layer - 1].stored_columns
        matrix = np.asarray(matrix)
        if cols is None:
            return matrix
        out = np.empty_like(matrix)
        out[:, list(cols)] = matrix
        return out

    # -- CRCs -------------------------------------------------------------------------------------
    @cached_property
    def crc_tensors(self) -> list[str]:
        """Names of the tensors whose CRC-32 the engine keeps, in the order of its ``crcs``
        port: ``W1 .. WL``, ``E1 .. EL``, ``OUT``, ``P``."""
        n = self.n_layers
        return ([f"W{j}" for j in range(1, n + 1)] + [f"E{j}" for j in range(1, n + 1)]
                + ["OUT", "P"])

    @property
    def crc_element_bits(self) -> int:
        """Bits of every element in a CRC word: the host width rounded up to whole bytes (the
        element in two's complement, sign- or zero-extended, little-endian)."""
        return 8 * _ceil(self.host_width, 8)

    def crc_layout(self, tensor: str, batch: int) -> list[tuple[int, int, int, int, int]]:
        """The writes the engine makes to ``tensor`` in a run of ``batch`` samples, in order: one
        ``(row0, col0, dr, dc, n)`` per write, whose lanes ``k < n`` hold element
        ``(row0 + k * dr, col0 + k * dc)`` of the matrix and the others 0. These are the words
        the engine feeds its CRC unit: the twin of its write schedule."""
        self.check_batch(batch)
        lanes, rows, cols = self.lanes, self.rows, self.cols
        if tensor == "OUT":
            n_out = self.plan[-1].n_out
            return [(cb, rb + r, 1, 0, min(cols, batch - cb))
                    for rb in range(0, n_out, rows) for cb in range(0, batch, cols)
                    for r in range(min(rows, n_out - rb))]
        if tensor == "P":
            return [(b0, 0, 1, 0, min(lanes, batch - b0)) for b0 in range(0, batch, lanes)]
        kind, layer = tensor[0], int(tensor[1:])
        p = self.plan[layer - 1]
        if kind == "E" and layer == self.n_layers:
            return [(b0, o, 1, 0, min(lanes, batch - b0))
                    for b0 in range(0, batch, lanes) for o in range(p.n_out)]
        d = self.conv_dims[layer - 1]
        if kind == "E" and d is not None and self.conv_dims[layer] is None:
            return [(b * d.hwp + q0, c, 1, 0, min(lanes, d.hwp - q0)) for b in range(batch)
                    for c in range(d.c_out) for q0 in range(0, d.hwp, lanes)]
        if kind == "E":
            n_rows = batch if d is None else batch * d.hwp
            return [(b, f0, 0, 1, min(lanes, p.n_out - f0))
                    for b in range(n_rows) for f0 in range(0, p.n_out, lanes)]
        if kind == "W" and self.fault_plan is not None:   # rewritten by the fault pass
            return [(o, i, 0, 1, 1) for o in range(p.n_out) for i in range(p.n_in)]
        if kind == "W" and layer in self.recomputed:   # rows of the array's tiles
            return [(rb + r, cb, 0, 1, min(cols, p.n_in - cb))
                    for rb in range(0, p.n_out, rows) for cb in range(0, p.n_in, cols)
                    for r in range(min(rows, p.n_out - rb))]
        if kind == "W":
            rng = self.config.rng_lanes
            n_sub = _ceil(rng, lanes)
            return [(o, cb + j * lanes, 0, 1,
                     max(0, min(lanes, rng - j * lanes, p.n_in - cb - j * lanes)))
                    for o in range(p.n_out) for cb in range(0, p.n_in, rng)
                    for j in range(n_sub)]
        raise ValueError(f"no CRC is kept of {tensor!r}")


def recompute_cost(config: Config) -> int:
    """Cycles a training step of ``batch_size`` samples spends on its recomputed gradients
    (:attr:`Config.recompute_gradients`): the step's cycles less those of the same step with
    every gradient stored."""
    if not config.recompute_gradients:
        return 0
    batch = config.batch_size
    return EngineGeometry(config).train_cycles(batch) - EngineGeometry(
        config.with_recompute(())).train_cycles(batch)


def plan_recompute(config: Config, family: str, blocks: int) -> tuple[int, ...] | None:
    """The fewest layers whose gradient to recompute so that the engine's memories (with the
    host link's :data:`LINK_BLOCKS`) fit ``blocks`` block RAMs of ``family``: the layers with the
    largest ``G`` first (fully connected layers: a convolution's gradient is always stored).
    ``()`` if everything fits as it is; None if recomputing every gradient does not make it fit,
    or the configuration cannot recompute (``rng_lanes < array_cols``)."""
    def need(layers):
        geo = EngineGeometry(config.with_recompute(layers))
        return sum(geo.memory_blocks(family).values()) + LINK_BLOCKS

    chosen = tuple(config.recompute_gradients)
    if need(chosen) <= blocks:
        return chosen
    if config.rng_lanes < config.array_cols:
        return None
    g_blocks = EngineGeometry(config.with_recompute(())).memory_blocks(family)
    for n in sorted((p.index for p in config.plan if p.index not in chosen and not p.conv),
                    key=lambda n: -g_blocks[f"G{n}"]):
        chosen = tuple(sorted(chosen + (n,)))
        if need(chosen) <= blocks:
            return chosen
    return None

"""The training engine: every layer's weights, activations and errors in on-chip memories around
one systolic array. It runs the forward pass of a whole network (inference) or a complete training
step; the hardware twin of ``intrain.golden.model.GoldenModel.forward`` and
``GoldenModel.train_step``."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from intrain.config import Config
from intrain.fault_spec import FAULT_LFSR

from .._util import Level, delay, first, nested_count, select
from ..lfsr_bank import LfsrBank
from ..shift_quantizer import ShiftQuantizer, round_shift, saturate
from ..systolic_array import SystolicArray
from ..transpose_memory import SliceMode, TransposeMemory, mul_const
from .apt import ErrorWidths
from .control import Job, Sequencer, State
from .conv import BlockLoop, Taps, inside, lane_positions, layer_const, layer_consts
from .counters import RunCounters
from .crc import TensorCrc
from .geometry import EngineGeometry, HostTarget, Phase
from .global_max import GlobalMaxLog2
from .memory_map import MemoryPorts, Read, Write
from .pool import build_pool_passes
from .update import UpdateLanes

__all__ = ["Engine", "HostTarget", "Phase"]


_PHASE_OF_JOB = {
    Job.FORWARD: Phase.FORWARD, Job.ARGMAX: Phase.FORWARD,
    Job.OUTPUT_ERROR: Phase.BACKWARD, Job.BACKWARD: Phase.BACKWARD, Job.ERROR: Phase.BACKWARD,
    Job.GRADIENT: Phase.GRADIENT, Job.UPDATE: Phase.UPDATE, Job.FAULT: Phase.UPDATE,
    Job.REGRAD: Phase.GRADIENT, Job.POOL: Phase.FORWARD, Job.UNPOOL: Phase.BACKWARD,
}


class Engine(wiring.Component):
    """The forward pass and the complete training step of a network of fully connected and
    convolution layers on one :class:`SystolicArray`, with every matrix in on-chip memory.

    Storage (one :class:`TransposeMemory` each, ``lanes = max(array_rows, array_cols)``; names as
    in :meth:`memory_bits`):

    - ``W{l}`` (``l = 1 .. L``): the stored weights, ``n_out x n_in`` of
      ``signed(w_max.bit_length() + 1)``, the width of :class:`WeightUpdater`'s ``w``.
    - ``A0``: the input, ``batch_size x layers[0]`` of ``signed(input_bits)``.
    - ``A{l}`` (hidden, ``l = 1 .. L - 1``): ``batch_size x layers[l]`` of ``unsigned(a - 1)``
      (QA's results lie in ``[0, 2 ** (a - 1) - 1]``).
    - ``OUT`` (``A_L``): ``batch_size x layers[L]`` of ``signed(acc_bits)``, the raw accumulators.
    - ``P``: ``argmax(OUT)`` of every sample, ``batch_size x 1``; ``LABELS`` the same shape.
    - ``E{l}``: the quantized errors, ``batch_size x layers[l]`` of ``signed(e)``.
    - ``M{l}`` (hidden): the ReLU mask (bit 0, ``acc > 0``) and QA's clip mask (bit 1).
    - ``G{l}``: the gradient ``n_out x n_in`` of ``signed(acc_bits_gradient)``, except for the
      layers of ``config.recompute_gradients`` (:attr:`EngineGeometry.recomputed`).
    - ``R``: ``batch_size x max(layers[1 .. L - 1])``, the clip-masked ``R_l`` of the layer
      being trained, ``signed(max acc_bits_backward)``.

    Arithmetic (SPEC.md section 4). Forward, ``l = 1 .. L``: ``acc_l = T_l . A_{l-1}`` exactly,
    with ``T_l = clip(round(W_l / 2 ** t_shift), t_max)`` computed on the way from the weight
    memory to the array; hidden layers store ``A_l = QA(acc_l)`` (:meth:`ShiftQuantizer.for_qa`)
    with its masks, the last one ``OUT = acc_L``. Then ``P[b] = argmax_o OUT[b][o]``.

    A training step (``train``) goes on without the host: ``err = OUT - label * onehot`` (labels
    from ``LABELS``); ``E_L = QE(err)`` (its ``max |err|`` found during the argmax pass, then a
    second pass with a run-time-shift :class:`ShiftQuantizer`); then for ``l = L .. 1``:
    ``G_l = E_l^T . A_{l-1}`` on the array (its ``max |G|`` tracked while it is written to
    ``G{l}``), for ``l > 1`` ``R_l = E_l . T_l`` with the weights before this layer's update
    (``max |R * clipmask|`` tracked while the masked values are written to ``R``), the QE pass
    ``E_{l-1} = QE(R * clipmask) * relumask`` and the update pass ``W_l = clip(W_l - QG(G_l))``:
    a :class:`StochasticRounder` per updating lane (``min(lanes, rng_lanes)`` of them: fewer
    ``rng_lanes`` make a smaller engine) with the run-time shift ``RL2(max |G|) - lam`` and
    draws from an :class:`LfsrBank` of ``config.lfsr`` and ``config.rng_seeds``, then a
    :class:`WeightUpdater` per updating lane. The update visits rows in order and, in each row,
    chunks of ``rng_lanes`` columns, ``min(lanes, rng_lanes)`` columns per cycle; every lane
    draws once per chunk, as :meth:`Config.draws_per_update` lays out. Every update draws, even
    for an all-zero gradient (then ``dW = 0``). Shifts past the range where the result changes
    are clamped, which leaves every result exact for any ``lam``.

    A layer whose gradient is recomputed has no ``G{l}``: its gradient job only tracks
    ``max |G|``, and after its backward job and QE pass a second gradient job (``REGRAD``) sends
    every row of its tiles, ``C`` weights, straight to ``C`` rounders and updaters: the row
    reads ``W_l``'s row slice as it leaves the array and is written back ``read_latency +
    update_latency`` cycles later (:attr:`EngineGeometry.update_latency`). Every row inside the
    matrix draws once on every lane, lane ``c`` for column ``c``
    (:meth:`Config.recompute_draws`). It costs a gradient job and saves the update pass and the
    ``n_out x n_in`` accumulators.

    Schedule of the array. A job of the array is a sequence of tiles of ``R`` rows by ``C``
    columns; a tile takes ``K`` beats, one per cycle (reads are issued ahead of the array). All
    transposes come from the slices read:

    ======== ========== ========== ========= ============================= ====================
    job      rows       columns    K         a (``R`` values)              b (``C`` values)
    ======== ========== ========== ========= ============================= ====================
    forward  n_out      batch      n_in      ``T`` column slice of ``W``   column slice of A
    gradient n_out      n_in       batch     row slice of ``E_l``          row slice of A
    backward batch      n_in       n_out     column slice of ``E_l``       ``T`` row of ``W``
    ======== ========== ========== ========= ============================= ====================

    Row blocks are outer, column blocks inner. The gradient and backward jobs of a layer run
    back to back as one stream of tiles, so the array never drains between them. Reads are
    issued one beat per cycle: the memories' read latency and the weight conversion feed an
    :attr:`EngineGeometry.fifo_depth`-entry FIFO in front of the array, and a credit counter
    stops issuing only when that FIFO could overflow. The array computes a tile while the
    previous one drains, so it takes one beat per cycle when ``K >= max(R, C)``. Other passes
    (argmax, QE, update) read ``lanes`` elements per cycle.

    Convolution layers (stride 1, SAME padding, an optional max-pool; SPEC.md section 4b) run
    on the same array with positions in place of samples: their activations and errors are
    stored channel-last (a row per position ``(b, y, x)``, a column per channel) after guard
    rows, their weights channel-last too, and every kernel tap is a row shift of the position
    matrix with the lanes that leave the image masked, so no patch matrix is ever stored
    (:mod:`.conv` has the tiles of each product). A pooled convolution writes its raw
    accumulators to ``Z{l}``; a pool pass and, before its gradient job, an unpool pass follow
    (:mod:`.pool`).

    Cycles: :meth:`forward_cycles` and :meth:`train_cycles` give the busy cycles of a run. The
    MACs counted (``mac_cycles``) are ``R * C`` per beat, padding included: :meth:`forward_macs`
    and :meth:`train_macs`.

    Host access, only while ``busy`` is low (``host_write.ready`` and ``host_read.ready`` are low
    while the engine runs): any slice, row or column, of any matrix, addressed by ``target`` and
    ``layer`` (see :class:`HostTarget`), ``mode``, ``row`` and ``col``. Data travel as ``lanes``
    values of ``signed(host_width)``: written values are truncated to the memory's shape (they
    must fit it), read values are sign- or zero-extended. A slice whose first element lies
    outside the matrix, or an invalid ``(target, layer)``, writes nothing and reads as zeros.
    Reads are pipelined (one per cycle, :attr:`read_latency` ``+ 1`` cycles from request to data
    when ``host_read_data`` is ready); a write is visible to every read and every run accepted
    after it.

    Parameters
    ----------
    config : Config
        The network, bit widths, batch size, array shape, random lanes and accumulator width.
    dsp : str
        How the array's products are built: ``"generic"`` (default), ``"ice40"``, ``"ecp5"`` or
        ``"gowin"`` (see :class:`SystolicArray`); the cycle predictions follow its latency.
    host_read_depth : int
        Entries of the FIFO that holds host read answers: the most host reads in flight
        (default: :attr:`EngineGeometry.fifo_depth`, enough for one read per cycle). A host
        that waits for each answer, as the serial link does, needs 1: the FIFO is then a single
        register.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    start : ``In(1)``
        Pulse: run ``batch`` samples (ignored while ``busy``).
    batch : ``In(range(batch_size + 1))``
        Samples in the batch, sampled with ``start``; clamped to ``1 .. batch_size``.
    train : ``In(1)``
        Sampled with ``start``: 1 runs a whole training step, 0 the forward pass only.
    lam : ``In(signed(8))``
        Sampled with ``start``: the learning rate of the step is ``2 ** lam``.
    busy : ``Out(1)``
        The engine runs.
    done : ``Out(1)``
        One-cycle pulse in the cycle after the last busy cycle; every result is in memory then.
    cycles : ``Out(cycle_bits)``
        Busy cycles of the last (or current) run. The counters of a run are as wide as a
        training step of ``batch_size`` needs, and a bit more
        (:attr:`EngineGeometry.counter_bits`: ``cycle_bits``, ``mac_bits``).
    mac_cycles : ``Out(mac_bits)``
        Sum of the array's ``mac_count`` over those cycles. It counts one cycle behind (a
        register cuts the path from the array's stall logic): with ``phase_mac_cycles`` it is
        final in the cycle after ``done``, when the last writes are visible too.
    steps : ``Out(32)``
        Training steps completed since reset.
    phase_cycles, phase_mac_cycles : ``Out(data.ArrayLayout(cycle_bits, 4))``, ``mac_bits``
        ``cycles`` and ``mac_cycles`` of the last run split by :class:`Phase` (indexed by its
        value): every busy cycle counts in the phase of the job being issued (the array may still
        finish the previous job's last tiles meanwhile). Only with ``config.phase_counters``.
    crc_addr : ``In(range(2 * L + 2))``, crc_data : ``Out(32)``
        The CRC-32 of every tensor the last run wrote, numbered in the order of
        :attr:`EngineGeometry.crc_tensors` (``W1 .. WL``, ``E1 .. EL``, ``OUT``, ``P``): the
        words its memories' write ports took, as :meth:`EngineGeometry.crc_layout` lists them
        (:class:`TensorCrc`); a tensor the run did not write keeps its CRC. ``crc_data`` is the
        CRC of the tensor ``crc_addr`` named in the cycle before; final for an address given
        :attr:`TensorCrc.LATENCY` cycles after the last write (five cycles after ``done``) or
        later.
    host_write : ``In(stream.Signature(host_write_layout))``
        Fields ``target``, ``layer``, ``mode``, ``row``, ``col``, ``data`` (``lanes`` values)
        and ``mask`` (lane ``k`` is written if bit ``k`` is set).
    host_read : ``In(stream.Signature(host_read_layout))``
        Fields ``target``, ``layer``, ``mode``, ``row``, ``col``.
    host_read_data : ``Out(stream.Signature(data.ArrayLayout(signed(host_width), lanes)))``
        The slices read, in request order.
    """

    COUNTER_BITS = 32
    """Bits of ``steps`` (the run counters' widths come from the geometry)."""
    REGISTERED_MEMORIES = True
    """Every memory registers its requests before its address arithmetic
    (:class:`TransposeMemory` with ``registered``): the paths from the engine's control to the
    block RAM ports are cut in two, for one more cycle of read latency. Engines of more than one
    lane also register every bank's address after the arithmetic
    (:attr:`EngineGeometry.address_stage`)."""

    def __init__(self, config, *, dsp="generic", host_read_depth=None, src_loc_at=0):
        if not isinstance(config, Config):
            raise TypeError(f"Configuration must be a Config, not {config!r}")
        if host_read_depth is not None and (
                not isinstance(host_read_depth, int) or isinstance(host_read_depth, bool)
                or host_read_depth < 1):
            raise ValueError(f"Host read depth must be a positive integer, not "
                             f"{host_read_depth!r}")
        self._config = config
        self._dsp = SystolicArray.check_dsp(dsp, *[SystolicArray.operand_shape(config)] * 2)
        self._geo = geo = EngineGeometry(config, self._dsp)
        self._host_read_depth = geo.fifo_depth if host_read_depth is None else host_read_depth
        self._plan = config.plan
        self._lanes = geo.lanes
        self._host_read_layout = geo.host_read_layout
        self._host_data_layout = geo.host_data_layout
        self._host_write_layout = geo.host_write_layout
        cycle_bits, mac_bits = geo.counter_bits
        phases = {"phase_cycles": Out(data.ArrayLayout(cycle_bits, len(Phase))),
                  "phase_mac_cycles": Out(data.ArrayLayout(mac_bits, len(Phase)))} \
            if config.phase_counters else {}
        super().__init__({
            "start": In(1),
            "batch": In(range(config.batch_size + 1)),
            "train": In(1),
            "lam": In(signed(8)),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(cycle_bits),
            "mac_cycles": Out(mac_bits),
            "steps": Out(self.COUNTER_BITS),
            **phases,
            "crc_addr": In(range(len(geo.crc_tensors))),
            "crc_data": Out(32),
            "host_write": In(stream.Signature(self._host_write_layout)),
            "host_read": In(stream.Signature(self._host_read_layout)),
            "host_read_data": Out(stream.Signature(self._host_data_layout)),
        }, src_loc_at=src_loc_at + 1)

    # -- configuration ------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def geometry(self) -> EngineGeometry:
        """Shapes, memory map, cycle model and CRC write order (:class:`EngineGeometry`)."""
        return self._geo

    @property
    def read_latency(self) -> int:
        """Cycles from a memory read to its data (:attr:`EngineGeometry.read_latency`)."""
        return self._geo.read_latency

    @property
    def memories(self) -> dict:
        """The :class:`TransposeMemory` of every matrix by name, from the last elaboration
        (a simulator's, once it is built): for checks such as their ``collided`` flags."""
        return dict(getattr(self, "_memories", {}))

    @property
    def port_conflict(self):
        """A simulation check from the last elaboration (None before): set once two stages'
        accesses to one memory port held in the same cycle (:class:`MemoryPorts`)."""
        return getattr(self, "_port_conflict", None)

    @property
    def lanes(self) -> int:
        """Elements per memory slice: ``max(array_rows, array_cols)``."""
        return self._lanes

    @property
    def host_width(self) -> int:
        """Width of the signed host data words: enough for every memory's elements."""
        return self._geo.host_width

    @property
    def host_read_layout(self) -> data.StructLayout:
        return self._host_read_layout

    @property
    def host_write_layout(self) -> data.StructLayout:
        return self._host_write_layout

    @property
    def weight_shapes(self) -> list:
        """Element shapes of ``W_1 .. W_L``."""
        return list(self._geo.weight_shapes)

    @property
    def activation_shapes(self) -> list:
        """Element shapes of ``A_0 .. A_L`` (``A_L`` is ``OUT``)."""
        return list(self._geo.activation_shapes)

    @property
    def prediction_shape(self):
        """Element shape of the predictions ``P``: enough for ``n_classes - 1``."""
        return self._geo.prediction_shape

    # The cycle model and the MACs live in the geometry; these are its figures for this engine.
    def tiles(self, batch) -> list[int]:
        return self._geo.tiles(batch)

    def forward_macs(self, batch) -> int:
        return self._geo.forward_macs(batch)

    def useful_macs(self, batch) -> int:
        return self._geo.useful_macs(batch)

    def train_macs(self, batch) -> int:
        return self._geo.train_macs(batch)

    def forward_cycles(self, batch) -> int:
        return self._geo.forward_cycles(batch)

    def train_cycles(self, batch) -> int:
        return self._geo.train_cycles(batch)

    def memory_bits(self) -> dict[str, int]:
        return self._geo.memory_bits()

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, plan, geo = self._config, self._plan, self._geo
        n_layers = len(plan)
        rows, cols, lanes = cfg.array_rows, cfg.array_cols, self._lanes
        last_layer = n_layers - 1
        n_classes = cfg.layers[-1]
        batch_size = cfg.batch_size
        rl = self.read_latency

        s = SimpleNamespace(
            batch_size=batch_size, cfg=cfg, cols=cols, geo=geo, lanes=lanes, last_layer=last_layer,
            m=m, n_classes=n_classes, n_layers=n_layers, plan=plan, rl=rl, rows=rows,
        )
        self._build_memories(s)

        self._build_control(s)
        self._build_issue(s)
        self._build_results(s)
        self._build_passes(s)
        s.pool_final = s.unpool_final = 0
        if self._geo.pooled:
            s.pool_final, s.unpool_final = build_pool_passes(s, Job.POOL, Job.UNPOOL)
        self._build_update(s)
        self._build_faults(s)
        self._build_host(s)
        self._build_run(s)
        return m

    def _build_memories(self, s):
        """Memories."""
        cfg, lanes, m, n_layers = s.cfg, s.lanes, s.m, s.n_layers
        mem = {}
        for name, spec in self._geo.memories.items():
            mem[name] = m.submodules[f"mem_{name.lower()}"] = TransposeMemory(
                spec.shape, spec.rows, spec.cols, lanes, registered=self.REGISTERED_MEMORIES,
                address_stage=self._geo.address_stage,
                aligned_rows=spec.aligned_rows,
                single_port=self._geo.single_port(name, self._dsp),
                hold_writes=name != "A0")   # only the host writes the input, never in a run
        self._memories = mem
        w_mems = [mem[f"W{j + 1}"] for j in range(n_layers)]
        a_mems = [mem[f"A{j}"] for j in range(n_layers)] + [mem["OUT"]]
        e_mems = [mem[f"E{j + 1}"] for j in range(n_layers)]
        mask_mems = [mem[f"M{j + 1}"] for j in range(n_layers - 1)]
        g_mems = [mem.get(f"G{j + 1}") for j in range(n_layers)]   # None: recomputed
        r_mem_of = {j: mem[self._geo.r_memory(j + 1)] for j in range(1, n_layers)}
        pooled = self._geo.pooled   # their raw accumulators, choices and unpooled errors
        z_mems, ch_mems, d_mems = ({j: mem[f"{kind}{j + 1}"] for j in pooled}
                                   for kind in ("Z", "CH", "D"))
        p_mem, label_mem, out_mem = mem["P"], mem["LABELS"], mem["OUT"]

        array = m.submodules.array = SystolicArray.for_config(cfg, dsp=self._dsp,
                                                              output_always_ready=True)

        s.__dict__.update(
            a_mems=a_mems, array=array, e_mems=e_mems, g_mems=g_mems, label_mem=label_mem,
            mask_mems=mask_mems, mem=mem, out_mem=out_mem, p_mem=p_mem, r_mem_of=r_mem_of,
            w_mems=w_mems, z_mems=z_mems, ch_mems=ch_mems, d_mems=d_mems,
        )

    def _build_control(self, s):
        """The sequencer (:class:`Sequencer`), the layer's sizes, the memories' access lists
        and the array jobs' tile limits."""
        batch_size, m, mem, plan = s.batch_size, s.m, s.mem, s.plan
        seq = m.submodules.control = Sequencer(self._geo, self.COUNTER_BITS)
        state, job, layer, n_batch = seq.state, seq.job, seq.layer, seq.n_batch
        training, lam = seq.training, seq.lam_run
        busy = Signal(name="busy_int")
        m.d.comb += [busy.eq(state != State.IDLE), self.busy.eq(busy)]
        n_in, n_out = seq.n_in, seq.n_out   # registered with the layer
        finished = Signal(name="job_finished")   # the job's last result is written
        m.d.comb += seq.finished.eq(finished)
        # The stages that issue a job's reads each add the condition of its last read (as an
        # expression: a flag set inside their loops' ``m.If`` would be an ``always @*`` block).
        s.issue_ends = []

        # Every memory access of the engine, per memory (:class:`MemoryPorts`).
        ports = MemoryPorts(mem.values())

        max_r = max([batch_size] + [p.n_out for p in plan])
        max_c = max([batch_size] + [p.n_in for p in plan])
        max_k = max([batch_size] + [p.n_in for p in plan] + [p.n_out for p in plan])
        cv = self._conv_constants(s, layer, n_batch) if self._geo.has_conv else None
        if cv is not None:
            max_r, max_c = max(max_r, cv.max_pos), max(max_c, cv.max_pos)
            max_k = max(max_k, cv.max_pos, cv.max_kb)

        def limits(kind, prefix):
            """Rows, columns and K of the tiles of the array job ``kind`` being issued
            (``prefix`` "iss") or written back ("wr"): the sequencer's registers (its
            ``TILE_LIMITS``), or with convolutions, from the layer's constants."""
            if cv is not None:
                return self._conv_limits(s, cv, kind, prefix, max_r, max_c, max_k)
            lim = seq.iss_limits if prefix == "iss" else seq.wr_limits
            return lim.nr, lim.nc, lim.nk

        s.__dict__.update(
            busy=busy, cv=cv, finished=finished, job=job, lam=lam, layer=layer, limits=limits,
            seq=seq, max_c=max_c, max_k=max_k, max_r=max_r, n_batch=n_batch, n_in=n_in, n_out=n_out,
            ports=ports, state=state, training=training,
        )

    def _conv_constants(self, s, layer, n_batch):
        """The convolution constants of the current layer (0 for a fully connected one) and the
        positions of the run's batch, ``n_pos = n_batch * h * w``."""
        m, dims = s.m, self._geo.conv_dims
        cv = layer_consts(
            m, layer, dims, "cv", is_conv=lambda d: 1, h=lambda d: d.h, w=lambda d: d.w,
            hw=lambda d: d.hw, k=lambda d: d.k, p=lambda d: d.p, c_in=lambda d: d.c_in,
            c_out=lambda d: d.c_out, taps=lambda d: d.taps, rt=lambda d: int(d.row_taps),
            kb=lambda d: d.taps * d.c_out, row_step=lambda d: d.w - d.k + 1)
        present = [d for d in dims if d]
        cv.max_pos = s.batch_size * max(d.hw for d in present)
        cv.max_kb = max(d.taps * d.c_out for d in present)
        cv.max_k = max(d.k for d in present)
        cv.max_offset = max(2 * d.guard for d in present)
        cv.max_ch = max(max(d.c_in, d.c_out) for d in present)
        cv.n_pos = Signal(range(cv.max_pos + 1), name="cv_n_pos")
        m.d.comb += cv.n_pos.eq(select(layer, [(j, mul_const(n_batch, d.hw))
                                                for j, d in enumerate(dims) if d]))
        return cv

    def _conv_limits(self, s, cv, kind, prefix, max_r, max_c, max_k):
        """The blocks of an array job in an engine with convolutions: rows and columns as
        ``majors x minors`` (:class:`BlockLoop`), K, and the channels of a beat's tap."""
        m, n_batch, n_in, n_out = s.m, s.n_batch, s.n_in, s.n_out
        lim = SimpleNamespace(
            r_maj=Signal(range(s.batch_size + 1), name=f"{prefix}_r_major"),
            r_min=Signal(range(max_r + 1), name=f"{prefix}_r_minor"),
            c_maj=Signal(range(max(s.batch_size, max(d.taps for d in cv.dims if d)) + 1),
                         name=f"{prefix}_c_major"),
            c_min=Signal(range(max_c + 1), name=f"{prefix}_c_minor"),
            nk=Signal(range(max_k + 1), name=f"{prefix}_k"),
            n_ch=Signal(range(cv.max_ch + 1), name=f"{prefix}_channels"))
        fwd = kind == Job.FORWARD
        grad = (kind == Job.GRADIENT) | (kind == Job.REGRAD)
        c = cv.is_conv
        m.d.comb += [
            lim.r_maj.eq(Mux(c & ~fwd & ~grad, n_batch, 1)),
            lim.r_min.eq(Mux(fwd | grad, n_out, Mux(c, cv.hw, n_batch))),
            lim.c_maj.eq(Mux(c & fwd, n_batch, Mux(c & grad, Mux(cv.rt, cv.k, cv.taps), 1))),
            lim.c_min.eq(Mux(fwd, Mux(c, cv.hw, n_batch),
                             Mux(c, Mux(cv.rt & grad, cv.k, cv.c_in), n_in))),
            lim.nk.eq(Mux(fwd, n_in, Mux(grad, Mux(c, cv.n_pos, n_batch),
                                         Mux(c, cv.kb, n_out)))),
            lim.n_ch.eq(Mux(fwd, cv.c_in, cv.c_out)),
        ]
        return lim

    def _build_issue(self, s):
        """Issue: one beat (a read of two memories) per cycle, while credits last."""
        a_mems = s.a_mems
        array = s.array
        cols = s.cols
        e_mems = s.e_mems
        job = s.job
        layer = s.layer
        limits = s.limits
        m = s.m
        max_c = s.max_c
        max_k = s.max_k
        max_r = s.max_r
        n_layers = s.n_layers
        plan = s.plan
        ports = s.ports
        rl = s.rl
        rows = s.rows
        state = s.state
        w_mems = s.w_mems
        lim = limits(job, "iss")
        iss_k = Signal(range(max_k), name="iss_k")
        outstanding = Signal(range(self._geo.fifo_depth + 1), name="outstanding")
        issue = Signal(name="issue")
        pop = Signal(name="pop")
        array_job = (job == Job.FORWARD) | (job == Job.GRADIENT) | (job == Job.BACKWARD) \
            | (job == Job.REGRAD)
        # A recomputed gradient's rows are rounded with RL2(max |G|): wait for it (the results
        # side drives the gate).
        regrad_ready = Signal(init=1, name="regrad_ready")
        m.d.comb += issue.eq((state == State.ISSUE) & array_job
                             & (outstanding < self._geo.fifo_depth) & regrad_ready)
        m.d.sync += outstanding.eq(outstanding + issue - pop)

        if s.cv is None:
            i_nr, i_nc, i_nk = lim
            iss_r = Signal(range(max_r + rows), name="iss_r0")
            iss_c = Signal(range(max_c + cols), name="iss_c0")
            # After the job's last beat the sequencer turns a gradient job into the layer's
            # backward job, or drains.
            s.issue_ends.append(nested_count(m, issue, [
                Level(iss_k, 1, iss_k == i_nk - 1), Level(iss_c, cols, iss_c + cols >= i_nc),
                Level(iss_r, rows, iss_r + rows >= i_nr)]))
            s.loop_resets = [iss_k.eq(0), iss_r.eq(0), iss_c.eq(0)]
            masks = None
        else:
            i_nk = lim.nk
            iss_r, iss_c, masks, conv_at = self._conv_issue(s, lim, issue, iss_k)

        for j in range(n_layers):
            on = issue & (layer == j)
            grad = (job == Job.GRADIENT) | (job == Job.REGRAD)
            if s.cv is not None and s.cv.dims[j] is not None:
                self._conv_reads(s, j, on, grad, iss_k, conv_at)
                continue
            ports.read(w_mems[j], on & (job == Job.FORWARD), SliceMode.COLUMN, iss_r, iss_k)
            ports.read(w_mems[j], on & (job == Job.BACKWARD), SliceMode.ROW, iss_k, iss_c)
            ports.read(a_mems[j], on & (job == Job.FORWARD), SliceMode.COLUMN, iss_c, iss_k)
            ports.read(a_mems[j], on & grad, SliceMode.ROW, iss_k, iss_c)
            ports.read(e_mems[j], on & grad, SliceMode.ROW, iss_k, iss_r)
            ports.read(e_mems[j], on & (job == Job.BACKWARD), SliceMode.COLUMN, iss_r, iss_k)

        # The beat's flags follow the reads through the memories' read stages: ``s2`` comes
        # with the data.
        fields = {"valid": 1, "first": 1, "last": 1, "kind": Job}
        if masks is not None:   # the lanes of a convolution's operands that leave the image
            fields.update(a_mask=rows, b_mask=cols)
        s1 = Signal(data.StructLayout(fields), name="rd_s1")
        m.d.sync += [
            s1.valid.eq(issue), s1.first.eq(iss_k == 0), s1.last.eq(iss_k == i_nk - 1),
            s1.kind.eq(job),
        ]
        if masks is not None:
            m.d.sync += [s1.a_mask.eq(masks[0]), s1.b_mask.eq(masks[1])]
        s2 = delay(m, s1, rl - 1, "rd_s")

        # Operands of the beat, by job, into the FIFO.
        beat_layout = array.i.payload.shape()
        beat = Signal(beat_layout, name="beat")
        m.d.comb += [beat.first.eq(s2.first), beat.last.eq(s2.last)]
        beat_a = [[] for _ in range(rows)]
        beat_b = [[] for _ in range(cols)]
        for j, p in enumerate(plan):
            w_data = w_mems[j].read_data.payload
            a_data = a_mems[j].read_data.payload
            e_data = s.d_mems.get(j, e_mems[j]).read_data.payload   # a pool: D

            def to_t(w, p=p):
                return saturate(round_shift(w, p.t_shift), p.t_max)

            on = layer == j
            fwd = on & (s2.kind == Job.FORWARD)
            grad = on & ((s2.kind == Job.GRADIENT) | (s2.kind == Job.REGRAD))
            bwd = on & (s2.kind == Job.BACKWARD)
            for r in range(rows):
                beat_a[r] += [(fwd, to_t(w_data[r])), (grad | bwd, e_data[r])]
            for c in range(cols):
                beat_b[c] += [(fwd | grad, a_data[c]), (bwd, to_t(w_data[c]))]
        if masks is None:
            m.d.comb += [beat.a[r].eq(first(beat_a[r])) for r in range(rows)]
            m.d.comb += [beat.b[c].eq(first(beat_b[c])) for c in range(cols)]
        else:
            m.d.comb += [beat.a[r].eq(Mux(s2.a_mask[r], first(beat_a[r]), 0))
                         for r in range(rows)]
            m.d.comb += [beat.b[c].eq(Mux(s2.b_mask[c], first(beat_b[c]), 0))
                         for c in range(cols)]
        fifo = m.submodules.operand_fifo = SyncFIFO(width=beat_layout.size,
                                                    depth=self._geo.fifo_depth)
        m.d.comb += [
            fifo.w_data.eq(beat.as_value()),
            fifo.w_en.eq(s2.valid),
            array.i.valid.eq(fifo.r_rdy),
            array.i.payload.eq(fifo.r_data),
            fifo.r_en.eq(array.i.ready),
            pop.eq(fifo.r_rdy & array.i.ready),
        ]

        s.__dict__.update(
            iss_c=iss_c, iss_k=iss_k, iss_r=iss_r, regrad_ready=regrad_ready,
        )

    def _conv_issue(self, s, lim, issue, iss_k):
        """The issue side's blocks in an engine with convolutions: the loops over K and the
        tiles' row and column blocks, the kernel taps, and the lanes of the beat's operands that
        stay on the image (``(a_mask, b_mask)``)."""
        m, cv, job, layer, rows, cols = s.m, s.cv, s.job, s.layer, s.rows, s.cols
        ir = BlockLoop(m, "iss_r", rows, s.batch_size, s.max_r)
        max_major = max([s.batch_size] + [d.taps for d in cv.dims if d])
        ic = BlockLoop(m, "iss_c", cols, max_major, s.max_c)
        # Each lane's position in the image (before the loops' statements: they follow them).
        col_pos = lane_positions(m, cv.dims, layer, ic, cols, "iss_cp")
        row_pos = lane_positions(m, cv.dims, layer, ir, rows, "iss_rp")
        max_base = max(p.n_in for p in s.plan)
        ktap = Taps(m, "iss_kt", cv.max_k, cv.max_offset, max_base, cv.max_ch)
        ctap = Taps(m, "iss_ct", cv.max_k, cv.max_offset, max_base)
        w_max = max(d.w for d in cv.dims if d)
        h_max = max(d.h for d in cv.dims if d)
        kx = Signal(range(w_max), name="iss_kx")
        ky = Signal(range(h_max), name="iss_ky")
        with m.If(issue):
            with m.If(iss_k == lim.nk - 1):
                m.d.sync += [iss_k.eq(0), *ktap.reset(), kx.eq(0), ky.eq(0)]

                def next_rows():
                    m.d.sync += ctap.reset()
                    ir.advance(m, lim.r_maj, lim.r_min, lambda: None)

                with m.If(ic.minor_end(lim.c_min) & ~ic.major_end(lim.c_maj)):
                    with m.If(cv.rt):   # a gradient column block per kernel row
                        m.d.sync += [ctap.i.eq(ctap.i + 1), ctap.offg.eq(ctap.offg + cv.w)]
                    with m.Else():
                        ctap.next_tap(m, cv.k, cv.row_step, cv.c_in)
                ic.advance(m, lim.c_maj, lim.c_min, next_rows)
            with m.Else():
                m.d.sync += iss_k.eq(iss_k + 1)
                ktap.next_beat(m, lim.n_ch, cv.k, cv.row_step, cv.c_in)
                with m.If(kx + 1 >= cv.w):
                    m.d.sync += [kx.eq(0), ky.eq(Mux(ky + 1 >= cv.h, 0, ky + 1))]
                with m.Else():
                    m.d.sync += kx.eq(kx + 1)
        s.loop_resets = [iss_k.eq(0), *ir.reset(), *ic.reset(), *ktap.reset(), *ctap.reset(),
                         kx.eq(0), ky.eq(0)]
        s.issue_ends.append(issue & (iss_k == lim.nk - 1) & ic.minor_end(lim.c_min)
                            & ic.major_end(lim.c_maj) & ir.minor_end(lim.r_min)
                            & ir.major_end(lim.r_maj))

        # Lanes on the image: forward, each column's position shifted by the tap; backward,
        # each row's position shifted back; gradient, the beat's position shifted by the
        # column block's tap (every lane alike).
        conv_job = cv.is_conv
        fwd = conv_job & (job == Job.FORWARD)
        bwd = conv_job & (job == Job.BACKWARD)
        grad = conv_job & ((job == Job.GRADIENT) | (job == Job.REGRAD))
        # (A layer of one input channel takes a kernel row's taps in a column block: lane c
        # is tap ``j = minor + c`` of the row.)
        grad_y = inside(ky + ctap.i, cv.p, cv.h + cv.p)
        grad_ok = grad_y & inside(kx + ctap.j, cv.p, cv.w + cv.p)
        a_mask, b_mask = Signal(rows, name="iss_a_mask"), Signal(cols, name="iss_b_mask")
        for c, (v, y, x) in enumerate(col_pos):
            on = v & inside(y + ktap.i, cv.p, cv.h + cv.p) & inside(x + ktap.j, cv.p, cv.w + cv.p)
            row_ok = grad_y & inside(kx + ic.minor + c, cv.p, cv.w + cv.p)
            m.d.comb += b_mask[c].eq(Mux(fwd, on, Mux(grad, Mux(cv.rt, row_ok, grad_ok), 1)))
        for r, (v, y, x) in enumerate(row_pos):
            on = v & inside(y + cv.p, ktap.i, cv.h + ktap.i) \
                & inside(x + cv.p, ktap.j, cv.w + ktap.j)
            m.d.comb += a_mask[r].eq(Mux(bwd, on, 1))
        at = SimpleNamespace(ir=ir, ic=ic, ktap=ktap, ctap=ctap)
        return ir.flat, ic.flat, (a_mask, b_mask), at

    def _conv_reads(self, s, j, on, grad, iss_k, at):
        """The reads of a beat of convolution layer ``j`` (0-based): the memories hold ``guard``
        rows before the position matrices, and a tap's row shift plus the guard is ``offg``."""
        d, job = s.cv.dims[j], s.job
        guard = d.guard
        w_mem, a_mem, e_mem = s.w_mems[j], s.a_mems[j], s.d_mems.get(j, s.e_mems[j])
        fwd, bwd = on & (job == Job.FORWARD), on & (job == Job.BACKWARD)
        s.ports.read(w_mem, fwd, SliceMode.COLUMN, at.ir.flat, iss_k)
        s.ports.read(w_mem, bwd, SliceMode.ROW, at.ktap.ch, at.ktap.base + at.ic.flat)
        s.ports.read(a_mem, fwd, SliceMode.COLUMN, at.ic.flat + at.ktap.offg, at.ktap.ch)
        if d.row_taps:
            s.ports.read(a_mem, on & grad, SliceMode.COLUMN, iss_k + at.ctap.offg + at.ic.minor, 0)
        else:
            s.ports.read(a_mem, on & grad, SliceMode.ROW, iss_k + at.ctap.offg, at.ic.minor)
        s.ports.read(e_mem, on & grad, SliceMode.ROW, iss_k + guard, at.ir.flat)
        s.ports.read(e_mem, bwd, SliceMode.COLUMN, at.ir.flat + 2 * guard - at.ktap.offg,
                     at.ktap.ch)

    def _array_rows(self, s):
        """``(valid, payload)`` of the array's result rows, through a register with
        :attr:`EngineGeometry.result_stage` (the row multiplexer's output, before it fans out to
        the quantizers, the maxima and the memories' write ports)."""
        array, m = s.array, s.m
        m.d.comb += array.o.ready.eq(1)
        if not self._geo.result_stage:
            return array.o.valid, array.o.payload
        valid = Signal(name="array_rows_valid")
        payload = Signal.like(array.o.payload, name="array_rows")
        m.d.sync += [valid.eq(array.o.valid), payload.eq(array.o.payload)]
        return valid, payload

    def _activation_write(self, s, j, dq):
        """``(mode, row, col)`` of the write of a forward result row of layer ``j`` (0-based, not
        the last) to ``A_{j+1}``: a column slice of the samples (or a convolution's positions
        when the next layer is one too, after its guard rows), or, from a convolution to a
        fully connected layer, a row slice of one sample's flat output (channel-major)."""
        dims = s.cv.dims if s.cv is not None else [None] * s.n_layers
        d, d_next = dims[j], dims[j + 1]
        if d_next is not None:
            return SliceMode.COLUMN, dq.c + d_next.guard, dq.r
        if d is not None:
            return SliceMode.ROW, dq.cmaj, mul_const(dq.r, d.hw) + dq.cmin
        return SliceMode.COLUMN, dq.c, dq.r

    def _result_tiles(self, s, lim, out_valid, out, ev):
        """The tile of each result row: ``ev``'s row, columns and flags; returns the registers
        of the tile's first row and column."""
        m, rows, cols = s.m, s.rows, s.cols
        w_nr, w_nc, _ = lim
        wr_r = Signal(range(s.max_r + rows), name="wr_r0")
        wr_c = Signal(range(s.max_c + cols), name="wr_c0")
        end_c = Signal(name="wr_end_c")
        end_r = Signal(name="wr_end_r")
        # Rows of the matrix left from the tile's first, registered every cycle so that the
        # array's row index meets one short compare (not the job's limits, an adder and a
        # compare). It lags a new tile by one cycle, when only its row 0 is out, and row 0 of a
        # tile is always in the matrix: the stale count (the tile before's, >= 1) says so too.
        rows_left = Signal(signed(max(len(w_nr), len(wr_r)) + 1), name="wr_rows_left")
        m.d.sync += rows_left.eq(w_nr - wr_r)
        m.d.comb += [
            end_c.eq(wr_c + cols >= w_nc),
            end_r.eq(wr_r + rows >= w_nr),
            ev.r.eq(wr_r + out.row),
            ev.valid.eq(out_valid & (out.row < rows_left)),
            ev.c.eq(wr_c),
            ev.final.eq(nested_count(m, out_valid & out.last,
                                     [Level(wr_c, cols, end_c), Level(wr_r, rows, end_r)])),
        ]
        m.d.comb += [ev.mask[c].eq(wr_c + c < w_nc) for c in range(cols)]
        s.wr_resets = [wr_r.eq(0), wr_c.eq(0)]
        return wr_r, wr_c

    def _conv_result_tiles(self, s, lim, out_valid, out, ev):
        """:meth:`_result_tiles` in an engine with convolutions: rows and columns as
        :class:`BlockLoop`."""
        m, rows, cols = s.m, s.rows, s.cols
        max_major = max([s.batch_size] + [d.taps for d in s.cv.dims if d])
        wr = BlockLoop(m, "wr_r", rows, s.batch_size, s.max_r)
        wc = BlockLoop(m, "wr_c", cols, max_major, s.max_c)
        rows_left = Signal(signed(len(lim.r_min) + 1), name="wr_rows_left")
        m.d.sync += rows_left.eq(lim.r_min - wr.minor)
        end_c = wc.minor_end(lim.c_min) & wc.major_end(lim.c_maj)
        end_r = wr.minor_end(lim.r_min) & wr.major_end(lim.r_maj)
        m.d.comb += [
            ev.r.eq(wr.flat + out.row),
            ev.valid.eq(out_valid & (out.row < rows_left)),
            ev.c.eq(wc.flat),
            ev.cmaj.eq(wc.major),
            ev.cmin.eq(wc.minor),
            ev.final.eq(out_valid & out.last & end_c & end_r),
        ]
        m.d.comb += [ev.mask[c].eq(wc.minor + c < lim.c_min) for c in range(cols)]
        with m.If(out_valid & out.last):
            wc.advance(m, lim.c_maj, lim.c_min,
                       lambda: wr.advance(m, lim.r_maj, lim.r_min, lambda: None))
        s.wr_resets = [*wr.reset(), *wc.reset()]
        return wr.flat, wc.flat

    def _build_results(self, s):
        """Results of the array: one row of a tile per cycle."""
        a_mems, cols, g_mems, geo = s.a_mems, s.cols, s.g_mems, s.geo
        lanes, last_layer, layer, limits, m = s.lanes, s.last_layer, s.layer, s.limits, s.m
        mask_mems = s.mask_mems
        max_c, max_r, n_layers, out_mem, plan = s.max_c, s.max_r, s.n_layers, s.out_mem, s.plan
        ports, rl, rows = s.ports, s.rl, s.rows
        out_valid, out = self._array_rows(s)
        wr_kind = s.seq.wr_kind
        fields = {"out": 1, "valid": 1, "r": range(max_r + rows), "c": range(max_c + cols),
                  "mask": lanes, "final": 1, "kind": Job}
        if s.cv is not None:   # a convolution's column block: the sample and its first position
            fields.update(cmaj=range(s.batch_size + 1), cmin=range(max_c + cols))
        row_event = data.StructLayout(fields)
        ev = Signal(row_event, name="wr_ev")
        m.d.comb += [ev.out.eq(out_valid), ev.kind.eq(wr_kind)]

        # The last row of the job's tiles (the sequencer turns a gradient stream's kind into
        # BACKWARD).
        m.d.comb += s.seq.wr_end.eq(ev.final)
        if s.cv is None:
            wr_r, wr_c = self._result_tiles(s, limits(wr_kind, "wr"), out_valid, out, ev)
        else:
            wr_r, wr_c = self._conv_result_tiles(s, limits(wr_kind, "wr"), out_valid, out, ev)
        d1 = Signal(row_event, name="wr_d1")
        m.d.sync += d1.eq(ev)
        qa_lat = geo.qa_latency
        dq = delay(m, d1, qa_lat - 1, "wr_dq")   # with QA's results
        relu = Signal(cols, name="relu")
        m.d.comb += [relu[c].eq(out.values[c] > 0) for c in range(cols)]
        relu_q = delay(m, relu, qa_lat, "relu")

        # Forward: QA, one set of ``cols`` quantizers per distinct QA of the hidden layers.
        groups = {}
        for p in plan[:-1]:
            key = (p.qa_shift, p.bits.a, p.acc_bits_forward)
            if key not in groups:
                qs = []
                for c in range(cols):
                    q = ShiftQuantizer.for_qa(p)
                    m.submodules[f"qa_{len(groups)}_{c}"] = q
                    m.d.comb += [
                        q.i.valid.eq(out_valid),
                        q.i.payload.eq(out.values[c]),
                        q.o.ready.eq(1),
                    ]
                    qs.append(q)
                groups[key] = qs
        quantized = [groups[(p.qa_shift, p.bits.a, p.acc_bits_forward)] for p in plan[:-1]]
        for j in range(n_layers):
            fwd = layer == j
            if j == last_layer or j in s.z_mems:   # the raw accumulators: OUT, or Z to pool
                ports.write(out_mem if j == last_layer else s.z_mems[j],
                            fwd & ev.valid & (ev.kind == Job.FORWARD), SliceMode.COLUMN, ev.c,
                            ev.r, ev.mask, [out.values[c] for c in range(cols)])
            else:
                cond = fwd & dq.valid & (dq.kind == Job.FORWARD)
                qs = quantized[j]
                at = self._activation_write(s, j, dq)
                ports.write(a_mems[j + 1], cond, *at, dq.mask, [q.o.payload.value for q in qs])
                ports.write(mask_mems[j], cond, *at, dq.mask,
                            [Cat(relu_q[c], qs[c].o.payload.mask) for c in range(cols)])

        # The array's row, one cycle later (with ``d1``): the maxima of G and R start from
        # registers, away from the row's address arithmetic.
        out1 = Signal(data.ArrayLayout(signed(max(geo.g_width, geo.r_width)), cols),
                      name="out_values_1")
        m.d.sync += [out1[c].eq(out.values[c]) for c in range(cols)]

        # Gradient: rows of G written as they leave the array; max |G| on the way (from ``d1``).
        # One unit finds both max |err| (in the argmax pass, used by the output error's QE) and
        # max |G| (used by the update): the first is spent before the gradient job starts.
        g_max = m.submodules.g_max = GlobalMaxLog2(max(geo.g_width, geo.err_width), lanes)
        err_max = g_max
        is_g = ev.kind == Job.GRADIENT
        is_g1 = d1.kind == Job.GRADIENT
        for j in range(n_layers):
            if g_mems[j] is not None:
                ports.write(g_mems[j], (layer == j) & ev.valid & is_g, SliceMode.ROW, ev.r, ev.c,
                            ev.mask, [out.values[c] for c in range(cols)])
        m.d.comb += s.regrad_ready.eq((s.job != Job.REGRAD) | g_max.done)

        # Backward: R times the clip mask of the layer below, read while the row waits ``rl``
        # cycles (``dm`` is the row's event then).
        # (from ``dq`` while QA is no longer than the read: the registers are shared)
        dm = delay(m, dq, rl - qa_lat, "wr_d") if qa_lat <= rl else delay(m, d1, rl - 1, "wr_d")
        r_max = None   # no R with one layer
        if n_layers > 1:
            r_max = m.submodules.r_max = GlobalMaxLog2(geo.r_width, lanes)
            values = Signal(data.ArrayLayout(signed(geo.r_width), cols), name="r_values")
            m.d.comb += [values[c].eq(out1[c]) for c in range(cols)]
            values2 = delay(m, values, rl - 1, "r_values")
            is_r = dm.kind == Job.BACKWARD
            clip2 = Signal(cols, name="clip2")
            for j in range(1, n_layers):
                guard = self._geo.memories[f"M{j}"].row_offset
                ports.read(mask_mems[j - 1], (layer == j) & ev.valid & (ev.kind == Job.BACKWARD),
                           SliceMode.ROW, ev.r + guard if guard else ev.r, ev.c)
            m.d.comb += [clip2[c].eq(select(layer, [
                (j, mask_mems[j - 1].read_data.payload[c][1]) for j in range(1, n_layers)]))
                for c in range(cols)]
            masked = [Mux(dm.valid & dm.mask[c] & clip2[c], values2[c], 0) for c in range(cols)]
            m.d.comb += [
                r_max.valid.eq(dm.out & is_r),
                r_max.last.eq(dm.final & is_r),
                *[r_max.values[c].eq(masked[c]) for c in range(cols)],
            ]
            for j in range(1, n_layers):
                ports.write(s.r_mem_of[j], dm.valid & is_r & (layer == j), SliceMode.ROW, dm.r,
                            dm.c, dm.mask, masked)

        s.__dict__.update(
            d1=d1, dq=dq, dm=dm, err_max=err_max, ev=ev, g_max=g_max, is_g1=is_g1, out1=out1,
            r_max=r_max, wr_c=wr_c, wr_kind=wr_kind, wr_r=wr_r,
        )

    def _build_passes(self, s):
        """Passes over OUT and R: argmax, QE of the output error, QE of R."""
        cols = s.cols
        d1 = s.d1
        err_max = s.err_max
        g_max = s.g_max
        geo = s.geo
        is_g1 = s.is_g1
        job = s.job
        label_mem = s.label_mem
        lanes = s.lanes
        m = s.m
        n_batch = s.n_batch
        n_layers = s.n_layers
        out1 = s.out1
        out_mem = s.out_mem
        plan = s.plan
        r_max = s.r_max
        ports = s.ports
        rl = s.rl
        state = s.state
        on_out = (job == Job.ARGMAX) | (job == Job.OUTPUT_ERROR)
        gate = Signal(name="ps_gate")
        gates = [(Job.ARGMAX, 1), (Job.OUTPUT_ERROR, err_max.done)]
        if n_layers > 1:
            gates.append((Job.ERROR, r_max.done))
        m.d.comb += gate.eq(select(job, gates))
        ps_issue = Signal(name="ps_issue")
        m.d.comb += ps_issue.eq((state == State.ISSUE) & gate)
        if s.cv is None:
            ps, n_inner = self._pass_loop(s, on_out, ps_issue)
        else:
            ps, n_inner = self._conv_pass_loop(s, on_out, ps_issue)
        ports.read(out_mem, ps_issue & on_out, SliceMode.COLUMN, ps.row, ps.col)
        ports.read(label_mem, ps_issue & on_out, SliceMode.COLUMN, ps.row, 0)
        m.d.comb += [
            ps.kind.eq(job),
            ps.valid.eq(ps_issue & (on_out | (job == Job.ERROR))),
        ]
        ps2 = delay(m, ps, rl, "ps")   # with the data read
        qe_lat = geo.qe_latency
        psq = delay(m, ps2, qe_lat, "ps")   # with QE's results
        lane_ok2 = Signal(lanes, name="ps_lane_ok2")
        m.d.comb += [lane_ok2[k].eq(Mux(on_out, ps2.row + k < n_batch, ps2.col + k < n_inner))
                     for k in range(lanes)]
        lane_okq = delay(m, lane_ok2, qe_lat, "ps_lane_ok")

        # The output error ``OUT - label * onehot``; its max |err| during the argmax pass.
        label = plan[-1].label
        err = Signal(data.ArrayLayout(signed(geo.err_width), lanes), name="err")
        for k in range(lanes):
            value = out_mem.read_data.payload[k]
            hit = label_mem.read_data.payload[k] == ps2.col
            m.d.comb += err[k].eq(value - Mux(hit, label, 0))
        in_argmax = job == Job.ARGMAX
        m.d.comb += [
            g_max.valid.eq(Mux(in_argmax, ps2.valid, d1.out & is_g1)),
            g_max.last.eq(Mux(in_argmax, ps2.final, d1.final & is_g1)),
            *[g_max.values[k].eq(Mux(in_argmax, Mux(lane_ok2[k], err[k], 0),
                                     Mux(d1.valid & d1.mask[k], out1[k], 0)
                                     if k < cols else 0))
              for k in range(lanes)],
        ]

        s.__dict__.update(lane_ok2=lane_ok2, ps2=ps2)
        self._build_argmax(s)

        self._build_qe(s, err, on_out, psq, lane_okq)
        ps_finished = Mux(job == Job.ARGMAX, ps2.final, psq.final)

        s.__dict__.update(
            ps_finished=ps_finished,
        )

    def _pass_loop(self, s, on_out, ps_issue):
        """The slices of the passes over OUT (column slices: ``lanes`` samples of one class,
        classes inner) and R (row slices: ``lanes`` features of one sample, features inner), as
        the flags ``ps`` of the read issued (its ``valid`` and ``kind`` left to drive)."""
        m, lanes, n_batch, n_in = s.m, s.lanes, s.n_batch, s.n_in
        ps_row = Signal(range(s.batch_size + lanes), name="ps_row")
        ps_col = Signal(range(max(max(s.cfg.layers), s.n_classes) + lanes), name="ps_col")
        inner_end = Signal(name="ps_inner_end")
        outer_end = Signal(name="ps_outer_end")
        m.d.comb += [
            inner_end.eq(Mux(on_out, ps_col + 1 >= s.n_classes, ps_col + lanes >= n_in)),
            outer_end.eq(Mux(on_out, ps_row + lanes >= n_batch, ps_row + 1 >= n_batch)),
        ]
        s.issue_ends.append(nested_count(m, ps_issue, [
            Level(ps_col, Mux(on_out, 1, lanes), inner_end),
            Level(ps_row, Mux(on_out, lanes, 1), outer_end)]))
        if s.n_layers > 1:
            on_r = ps_issue & (s.job == Job.ERROR)
            s.ports.read(s.r_mem_of[1], on_r, SliceMode.ROW, ps_row, ps_col)
            for j in range(1, s.n_layers):
                s.ports.read(s.mask_mems[j - 1], on_r & (s.layer == j), SliceMode.ROW, ps_row,
                             ps_col)
        # ``kind``: the job that issued the read. Writes follow it, not the current job: the
        # argmax pass's last reads arrive after its job has ended.
        ps = Signal(data.StructLayout({"valid": 1, "row": range(s.batch_size + lanes),
                                       "col": ps_col.shape(), "final": 1, "kind": Job}),
                    name="ps_0")
        m.d.comb += [ps.row.eq(ps_row), ps.col.eq(ps_col),
                     ps.final.eq(ps.valid & inner_end & outer_end)]
        return ps, n_in

    def _conv_pass_loop(self, s, on_out, ps_issue):
        """:meth:`_pass_loop` in an engine with convolutions. The QE pass of a convolution's
        ``R`` reads row slices of its positions x channels (positions outer); that of a fully
        connected layer above a convolution reads, per sample and channel, the channel's
        positions ``lanes`` at a time (``mid`` the channel), which become a column slice of the
        positions x channels ``E`` below."""
        m, lanes, n_batch, cv, layer = s.m, s.lanes, s.n_batch, s.cv, s.layer
        dims, plan = cv.dims, s.plan
        below = [None] + [dims[j - 1] if dims[j] is None else None for j in range(1, s.n_layers)]
        n_inner = layer_const(m, layer, [dims[j].c_in if dims[j] else below[j].hwp if below[j]
                                         else p.n_in for j, p in enumerate(plan)], "ps_inner")
        n_mid = layer_const(m, layer, [below[j].c_out if below[j] else 1
                                       for j in range(s.n_layers)], "ps_mid_n")
        hw_below = layer_const(m, layer, [below[j].hwp if below[j] else 0
                                          for j in range(s.n_layers)], "ps_hw_below")
        max_rows = max(s.batch_size, cv.max_pos)
        ps_row = Signal(range(max_rows + lanes), name="ps_row")
        ps_col = Signal(range(max([s.n_classes] + [p.n_in for p in plan]) + lanes), name="ps_col")
        ps_mid = Signal(range(max(cv.max_ch, 1) + 1), name="ps_mid")
        ps_mbase = Signal(range(max(p.n_in for p in plan) + 1), name="ps_mbase")
        ps_pbase = Signal(range(cv.max_pos + 1), name="ps_pbase")
        inner_end = Mux(on_out, ps_col + 1 >= s.n_classes, ps_col + lanes >= n_inner)
        mid_end = on_out | (ps_mid + 1 >= n_mid)
        outer_end = Mux(on_out, ps_row + lanes >= n_batch,
                        ps_row + 1 >= Mux(cv.is_conv, cv.n_pos, n_batch))
        s.issue_ends.append(nested_count(m, ps_issue, [
            Level(ps_col, Mux(on_out, 1, lanes), inner_end),
            Level(ps_mid, 1, mid_end, ((ps_mbase, hw_below),)),
            Level(ps_row, Mux(on_out, lanes, 1), outer_end, ((ps_pbase, hw_below),))]))
        on_r = ps_issue & (s.job == Job.ERROR)
        for j in range(1, s.n_layers):
            on = on_r & (layer == j)
            guard = s.geo.memories[f"M{j}"].row_offset
            s.ports.read(s.r_mem_of[j], on, SliceMode.ROW, ps_row, ps_mbase + ps_col)
            s.ports.read(s.mask_mems[j - 1], on, SliceMode.ROW,
                         ps_row + guard if guard else ps_row, ps_mbase + ps_col)
        ps = Signal(data.StructLayout({
            "valid": 1, "row": ps_row.shape(), "col": ps_col.shape(), "final": 1, "kind": Job,
            "mid": ps_mid.shape(), "pbase": ps_pbase.shape()}), name="ps_0")
        m.d.comb += [ps.row.eq(ps_row), ps.col.eq(ps_col), ps.mid.eq(ps_mid),
                     ps.pbase.eq(ps_pbase),
                     ps.final.eq(ps.valid & inner_end & mid_end & outer_end)]
        return ps, n_inner

    def _error_write(self, s, j, psq):
        """``(mode, row, col)`` of the QE pass's write of ``E_j`` (``j`` from 1, below layer
        ``j + 1``) from the slice flags ``psq``."""
        dims = s.cv.dims if s.cv is not None else [None] * s.n_layers
        guard = s.geo.memories[f"E{j}"].row_offset
        if dims[j] is not None:
            return SliceMode.ROW, psq.row + guard, psq.col
        if dims[j - 1] is not None:
            return SliceMode.COLUMN, psq.pbase + psq.col + guard, psq.mid
        return SliceMode.ROW, psq.row, psq.col

    def _build_qe(self, s, err, on_out, psq, lane_okq):
        """QE of the output error (OUTPUT_ERROR) and of ``R`` (ERROR): a run-time-shift quantizer
        per lane and error width. In APT mode, one per width a layer can reach, chosen by the
        layer's width in force (:class:`ErrorWidths`, which also measures every pass)."""
        cfg, geo, job, lanes, layer, m = s.cfg, s.geo, s.job, s.lanes, s.layer, s.m
        n_layers, plan, ps2 = s.n_layers, s.plan, s.ps2
        qe_width = max(geo.err_width, geo.r_width)
        x = Signal(data.ArrayLayout(signed(qe_width), lanes), name="qe_in")
        for k in range(lanes):
            r_k = select(layer, [(j, r.read_data.payload[k]) for j, r in s.r_mem_of.items()]) \
                if len({id(r) for r in s.r_mem_of.values()}) > 1 \
                else s.r_mem_of[1].read_data.payload[k] if n_layers > 1 else None
            m.d.comb += x[k].eq(Mux(on_out, err[k], r_k) if n_layers > 1 else err[k])
        # RL2(max |x|) of the pass, registered: it is final when the pass's first read is
        # issued (the pass waits for its max finder) and its first data arrive ``rl`` cycles
        # later; the quantizers' shift then starts from a flip-flop (on the iCE40 the job
        # register's choice of the maximum, the shift and the rounding sum were one path).
        rl2 = Mux(on_out, s.err_max.rl2, s.r_max.rl2) if n_layers > 1 else s.err_max.rl2
        k_run = Signal.like(rl2, name="qe_rl2")
        m.d.sync += k_run.eq(rl2)
        relu_in = Signal(lanes, name="qe_relu")   # the ReLU mask of E_{l-1}, with R
        if n_layers > 1:
            m.d.comb += [relu_in[k].eq(select(layer, [
                (j, s.mask_mems[j - 1].read_data.payload[k][0]) for j in range(1, n_layers)]))
                for k in range(lanes)]
        relu_q = delay(m, relu_in, geo.qe_latency, "qe_relu")
        widths = sorted({w for p in plan for w in geo.apt_widths(p.index)})
        outs = {}
        for w in widths:
            p = cfg.error_plan([w] * n_layers)[0]
            outs[w] = []
            for k in range(lanes):
                q = m.submodules[f"qe_{w}_{k}"] = ShiftQuantizer.for_qe(p, qe_width)
                m.d.comb += [
                    q.i.valid.eq(ps2.valid & (job != Job.ARGMAX)),
                    q.i.payload.eq(x[k]),
                    q.shift.eq(k_run - (w - 1)),
                    q.o.ready.eq(1),
                ]
                outs[w].append(q.o.payload.value)
        if cfg.apt:
            apt, width = self._build_apt(s, x, relu_in, k_run, on_out)
            chosen = [select(width, [(w, outs[w][k]) for w in widths]) for k in range(lanes)]
            outs = {w: chosen for w in widths}
            qe_q = psq.valid & (psq.kind != Job.ARGMAX)
            is_out_q = psq.kind == Job.OUTPUT_ERROR
            m.d.comb += [
                apt.e_valid.eq(qe_q),
                *[apt.e[k].eq(Mux(is_out_q | relu_q[k], chosen[k], 0)) for k in range(lanes)],
                apt.e_mask.eq(lane_okq),
                apt.end.eq(qe_q & psq.final),
                apt.layer.eq(Mux(is_out_q, n_layers - 1, layer - 1)),
            ]
        s.ports.write(s.e_mems[-1], psq.valid & (psq.kind == Job.OUTPUT_ERROR), SliceMode.COLUMN,
                      psq.row, psq.col, lane_okq, outs[plan[-1].bits.e])
        for j in range(1, n_layers):
            qs = outs[plan[j - 1].bits.e]
            s.ports.write(s.e_mems[j - 1], psq.valid & (psq.kind == Job.ERROR) & (layer == j),
                          *self._error_write(s, j, psq), lane_okq,
                          [Mux(relu_q[k], qs[k], 0) for k in range(lanes)])

    def _build_apt(self, s, x, relu_in, k_run, on_out):
        """APT mode: the :class:`ErrorWidths` of every layer and the width in force for the QE
        pass (the last layer's for the output error, else the layer below ``layer``); the pass's
        wide tensor and shift go in here, its quantized errors in :meth:`_build_qe`."""
        cfg, layer, lanes, m, n_layers, ps2 = s.cfg, s.layer, s.lanes, s.m, s.n_layers, s.ps2
        starts = [p.bits.e for p in s.plan]
        qe_width = len(x[0])
        apt = m.submodules.apt = ErrorWidths(
            starts, cfg.apt_step, cfg.apt_max, cfg.apt_threshold, lanes=lanes,
            x_width=qe_width, e_width=cfg.apt_max, count=cfg.batch_size * max(cfg.layers),
            shifts=(-(cfg.apt_max - 1), qe_width - (min(starts) - 1)))
        width = Signal(range(cfg.apt_max + 1), name="qe_width_now")
        m.d.comb += [
            width.eq(Mux(on_out, apt.widths[n_layers - 1], select(
                layer, [(j, apt.widths[j - 1]) for j in range(1, n_layers)]))),
            apt.x_valid.eq(ps2.valid & (ps2.kind != Job.ARGMAX)),
            *[apt.x[k].eq(x[k]) for k in range(lanes)],
            *[apt.x_mask[k].eq(s.lane_ok2[k] & (on_out | relu_in[k])) for k in range(lanes)],
            apt.shift.eq(k_run - (width - 1)),
        ]
        return apt, width

    def _build_argmax(self, s):
        """Argmax: the running maximum of every lane, classes in order (the first index wins)."""
        cfg, geo, job, lanes, m = s.cfg, s.geo, s.job, s.lanes, s.m
        lane_ok2, n_classes, out_mem, p_mem, ps2 = s.lane_ok2, s.n_classes, s.out_mem, s.p_mem, \
            s.ps2
        ports = s.ports
        best = [Signal(signed(cfg.acc_bits), name=f"am_best_{k}") for k in range(lanes)]
        best_class = [Signal(geo.prediction_shape, name=f"am_best_class_{k}") for k in range(lanes)]
        p_data = []
        argmax = ps2.valid & (job == Job.ARGMAX)
        for k in range(lanes):
            value = out_mem.read_data.payload[k]
            take = Signal(name=f"am_take_{k}")
            m.d.comb += take.eq((ps2.col == 0) | (value > best[k]))
            with m.If(argmax & take):
                m.d.sync += [best[k].eq(value), best_class[k].eq(ps2.col)]
            p_data.append(Mux(take, ps2.col, best_class[k]))
        ports.write(p_mem, argmax & (ps2.col == n_classes - 1), SliceMode.COLUMN, ps2.row, 0,
                    lane_ok2, p_data)

    def _build_update(self, s):
        """Update: W = clip(W - QG(G)), row slices of chunks of rng_lanes columns."""
        cfg = s.cfg
        g_max = s.g_max
        g_mems = s.g_mems
        geo = s.geo
        job = s.job
        lam = s.lam
        lanes = s.lanes
        layer = s.layer
        m = s.m
        n_in = s.n_in
        n_layers = s.n_layers
        n_out = s.n_out
        plan = s.plan
        ports = s.ports
        rl = s.rl
        state = s.state
        w_mems = s.w_mems
        ports = s.ports
        rng_lanes = cfg.rng_lanes
        lfsr = m.submodules.lfsr = LfsrBank.from_config(cfg)
        m.d.comb += lfsr.load.valid.eq(0)
        n_sub = -(-rng_lanes // lanes)
        d_bits = cfg.lfsr.draw_bits
        up_o = Signal(range(max(p.n_out for p in plan)), name="up_o")
        up_cb = Signal(range(max(p.n_in for p in plan) + rng_lanes), name="up_chunk")
        up_j = Signal(range(n_sub), name="up_sub")
        up_issue = Signal(name="up_issue")
        m.d.comb += up_issue.eq((state == State.ISSUE) & (job == Job.UPDATE) & g_max.done)
        up_final = Signal(name="up_final")
        m.d.comb += up_final.eq(nested_count(m, up_issue, [
            Level(up_j, 1, up_j == n_sub - 1), Level(up_cb, rng_lanes, up_cb + rng_lanes >= n_in),
            Level(up_o, 1, up_o + 1 >= n_out)]))
        s.issue_ends.append(up_final)
        up_i = Signal.like(up_cb, name="up_i0")
        m.d.comb += up_i.eq(up_cb + mul_const(up_j, lanes))
        up_layout = data.StructLayout({"valid": 1, "row": up_o.shape(), "col": up_i.shape(),
                                       "mask": lanes, "final": 1, "sub": up_j.shape()})
        up = Signal(up_layout, name="up_0")
        m.d.comb += [up.valid.eq(up_issue), up.row.eq(up_o), up.col.eq(up_i),
                     up.final.eq(up_final), up.sub.eq(up_j)]
        for k in range(lanes):
            subs = [sub for sub in range(n_sub) if sub * lanes + k < rng_lanes]
            m.d.comb += up.mask[k].eq(select(up_j, [(sub, up_i + k < n_in) for sub in subs]))
        for j in range(n_layers):
            if g_mems[j] is not None:
                on = up_issue & (layer == j)
                ports.read(w_mems[j], on, SliceMode.ROW, up_o, up_i)
                ports.read(g_mems[j], on, SliceMode.ROW, up_o, up_i)
        up2 = delay(m, up, rl, "up")   # with the data read
        rg = self._build_regrad(s)
        # The draws are taken when the data arrive, ``rl`` cycles after the read: the bank only
        # advances on a draw, so its words come in the same order as if taken at the read, and
        # no register carries them meanwhile.
        words2 = Signal(data.ArrayLayout(unsigned(d_bits), lanes), name="up_words")
        m.d.comb += lfsr.o.ready.eq((up2.valid & (up2.sub == n_sub - 1)) | rg.active)
        for k in range(lanes):
            subs = [sub for sub in range(n_sub) if sub * lanes + k < rng_lanes]
            word = select(up2.sub, [(sub, lfsr.o.payload[sub * lanes + k]) for sub in subs])
            if k < len(rg.g):   # a recomputed row: lane k rounds column k
                word = Mux(rg.active, lfsr.o.payload[k], word)
            m.d.comb += words2[k].eq(word)
        g_in = Signal(data.ArrayLayout(signed(geo.g_width), lanes), name="up_g")
        w_in = Signal(data.ArrayLayout(w_mems[0].shape if n_layers == 1
                                       else signed(max(s.width for s in geo.weight_shapes)),
                                       lanes), name="up_w")
        for k in range(lanes):
            g_k = select(layer, [(j, g_mems[j].read_data.payload[k])
                                 for j in range(n_layers) if g_mems[j] is not None])
            m.d.comb += [
                g_in[k].eq(Mux(rg.active, rg.g[k], g_k) if k < len(rg.g) else g_k),
                w_in[k].eq(select(layer, [(j, w_mems[j].read_data.payload[k])
                                           for j in range(n_layers)])),
            ]
        # Lanes ``k >= rng_lanes`` never update (their mask bit is 0): no rounder, no updater.
        up_lanes = min(lanes, rng_lanes)
        unit = m.submodules.update = UpdateLanes(
            up_lanes, geo.g_width, d_bits, len(w_in[0]), plan, len(g_max.rl2))
        m.d.comb += [
            unit.valid.eq(up2.valid | rg.active),
            unit.rl2.eq(g_max.rl2),
            unit.lam.eq(lam),
            *[unit.g[k].eq(g_in[k]) for k in range(up_lanes)],
            *[unit.u[k].eq(words2[k]) for k in range(up_lanes)],
            *[unit.w[k].eq(w_in[k]) for k in range(up_lanes)],
        ]
        up_wr = delay(m, up2, geo.update_latency, "up")   # with the updated weights
        for j, p in enumerate(plan):
            outs = unit.w_new[unit.format_of(p)]
            if g_mems[j] is None:
                ports.write(w_mems[j], rg.wr.valid & (rg.wr.kind == Job.REGRAD) & (layer == j),
                            SliceMode.ROW, rg.wr.r, rg.wr.c, rg.wr.mask, outs)
            else:
                ports.write(w_mems[j], up_wr.valid & (job == Job.UPDATE) & (layer == j),
                            SliceMode.ROW, up_wr.row, up_wr.col, up_wr.mask, outs)

        s.__dict__.update(
            up_wr=up_wr, regrad_final=rg.wr.final & (rg.wr.kind == Job.REGRAD),
        )

    def _build_regrad(self, s):
        """The rows of a recomputed gradient (a REGRAD job) on their way to the update: each
        valid row ``(o, c0 .. c0 + C - 1)`` of a tile reads ``W_l``'s row slice as it leaves the
        array (``ev``) and meets its data ``rl`` cycles later (``dm``), with one draw of every
        lane (lane ``c`` for column ``c``). Returns ``active`` (a row enters the rounders),
        ``g`` (its ``C`` values) and ``wr`` (its flags when the updated row is written)."""
        m, rl = s.m, s.rl
        if not self._geo.recomputed:
            return SimpleNamespace(active=Const(0), g=[], wr=s.dm)
        for j in range(s.n_layers):
            if s.g_mems[j] is None:
                s.ports.read(s.w_mems[j], s.ev.valid & (s.ev.kind == Job.REGRAD) & (s.layer == j),
                             SliceMode.ROW, s.ev.r, s.ev.c)
        g_row = delay(m, s.out1, rl - 1, "regrad_g")   # ``out.values`` delayed ``rl``
        active = Signal(name="regrad_active")
        m.d.comb += active.eq(s.dm.valid & (s.dm.kind == Job.REGRAD))
        wr = delay(m, s.dm, s.geo.update_latency, "regrad")   # the rounder's and the updater's
        return SimpleNamespace(active=active, g=[g_row[c] for c in range(s.cols)], wr=wr)

    def _build_faults(self, s):
        """Memory faults (``bit_error_rate``, :mod:`intrain.fault_spec`): after the last update,
        every stored weight word, layers from the last to the first, row by row and column by
        column, one word per cycle: read, XOR with the bits whose draw is at most the threshold
        (lane ``k`` of a :data:`FAULT_LFSR` bank decides bit ``k``), write back."""
        plan = s.geo.fault_plan
        s.fault_final, s.fault_first = Const(0), Const(0)
        if plan is None:
            return
        job, layer, m, n_in, n_out, rl, state = s.job, s.layer, s.m, s.n_in, s.n_out, s.rl, \
            s.state
        bank = m.submodules.fault_lfsr = LfsrBank(FAULT_LFSR, plan.seeds)
        m.d.comb += bank.load.valid.eq(0)
        f_o = Signal(range(max(p.n_out for p in s.plan)), name="fault_o")
        f_i = Signal(range(max(p.n_in for p in s.plan)), name="fault_i")
        issue = Signal(name="fault_issue")
        m.d.comb += issue.eq((state == State.ISSUE) & (job == Job.FAULT))
        last = nested_count(m, issue, [Level(f_i, 1, f_i + 1 >= n_in),
                                       Level(f_o, 1, f_o + 1 >= n_out)])
        s.issue_ends.append(last)
        for j in range(s.n_layers):
            s.ports.read(s.w_mems[j], issue & (layer == j), SliceMode.ROW, f_o, f_i)
        flags = data.StructLayout({"valid": 1, "row": f_o.shape(), "col": f_i.shape(),
                                   "first": 1, "final": 1})
        f0 = Signal(flags, name="fault_0")
        m.d.comb += [f0.valid.eq(issue), f0.row.eq(f_o), f0.col.eq(f_i),
                     f0.first.eq((f_o == 0) & (f_i == 0)), f0.final.eq(last)]
        f2 = delay(m, f0, rl, "fault")   # with the word read
        m.d.comb += bank.o.ready.eq(f2.valid)
        f3 = delay(m, f2, self._geo.fault_latency - rl, "fault")
        for j, bits in enumerate(plan.word_bits):
            word = s.w_mems[j].read_data.payload[0]
            hit = Cat(*[bank.o.payload[k] <= plan.threshold for k in range(bits)])
            flipped = Signal(signed(bits), name=f"fault_w{j + 1}")
            m.d.sync += flipped.eq(word.as_unsigned() ^ hit)
            s.ports.write(s.w_mems[j], f3.valid & (layer == j), SliceMode.ROW, f3.row, f3.col,
                          Const(1, s.lanes), [flipped])
        s.fault_final, s.fault_first = f3.final, f3.valid & f3.first

    def _build_host(self, s):
        """Host access."""
        a_mems = s.a_mems
        busy = s.busy
        e_mems = s.e_mems
        label_mem = s.label_mem
        lanes = s.lanes
        m = s.m
        mem = s.mem
        n_layers = s.n_layers
        ports = s.ports
        rl = s.rl
        w_mems = s.w_mems
        ports = s.ports
        p_mem = s.p_mem
        host_mems = w_mems + a_mems + [p_mem, label_mem] + e_mems
        # A convolution's position matrices start after their guard rows.
        guards = {id(mem[name]): spec.row_offset for name, spec in self._geo.memories.items()
                  if spec.row_offset}

        def host_select(request, index):
            """The request addresses host memory ``index`` and its first element is inside."""
            target = host_mems[index]
            rows = target.rows - 2 * guards.get(id(target), 0)
            inside = (request.row < rows) & (request.col < target.cols)
            if target is p_mem:
                return (request.target == HostTarget.PREDICTIONS) & inside
            if target is label_mem:
                return (request.target == HostTarget.LABELS) & inside
            if index < n_layers:
                kind, number = HostTarget.WEIGHTS, index + 1
            elif index < 2 * n_layers + 1:
                kind, number = HostTarget.ACTIVATIONS, index - n_layers
            else:
                kind, number = HostTarget.ERRORS, index - 2 * n_layers - 2
            return (request.target == kind) & (request.layer == number) & inside

        hw = self.host_write.payload
        m.d.comb += self.host_write.ready.eq(~busy)
        hr = self.host_read.payload
        h_depth = self._host_read_depth
        h_outstanding = Signal(range(h_depth + 1), name="host_outstanding")
        h_issue = Signal(name="host_issue")
        h_pop = Signal(name="host_pop")
        m.d.comb += [
            self.host_read.ready.eq(~busy & (h_outstanding < h_depth)),
            h_issue.eq(self.host_read.valid & self.host_read.ready),
        ]
        m.d.sync += h_outstanding.eq(h_outstanding + h_issue - h_pop)
        h_sel = Signal(range(len(host_mems) + 1), name="host_sel")  # past the list: zeros
        m.d.comb += h_sel.eq(first([(host_select(hr, index), index)
                                     for index in range(len(host_mems))], len(host_mems)))

        def host_access(target, host):
            """The host's read and write of ``target`` (``host``: its index in ``host_mems``,
            or None: the host has no access)."""
            if host is None:
                return None, None
            guard = guards.get(id(target), 0)
            read = Read(h_issue & (h_sel == host), hr.mode, hr.row + guard if guard else hr.row,
                        hr.col)
            write = Write(self.host_write.valid & host_select(hw, host), hw.mode,
                          hw.row + guard if guard else hw.row, hw.col, hw.mask,
                          [hw.data[k] for k in range(lanes)])
            return read, write

        for target in mem.values():
            host = next((index for index, h in enumerate(host_mems) if h is target), None)
            ports.connect(m, target, busy, *host_access(target, host))
        ports.build_conflict(m)
        self._port_conflict = ports.conflict

        # Host responses: the memory's slice ``rl`` cycles later, extended, into a FIFO.
        h2_valid = delay(m, h_issue, rl, "host_valid")
        h2_sel = delay(m, h_sel, rl, "host_sel")
        response = Signal(self._host_data_layout, name="host_response")
        m.d.comb += [response[k].eq(select(h2_sel, [(index, target.read_data.payload[k])
                                                     for index, target in enumerate(host_mems)]))
                     for k in range(lanes)]
        h_fifo = m.submodules.host_fifo = SyncFIFO(width=self._host_data_layout.size,
                                                   depth=h_depth)
        m.d.comb += [
            h_fifo.w_data.eq(response.as_value()),
            h_fifo.w_en.eq(h2_valid),
            self.host_read_data.valid.eq(h_fifo.r_rdy),
            self.host_read_data.payload.eq(h_fifo.r_data),
            h_fifo.r_en.eq(self.host_read_data.ready),
            h_pop.eq(h_fifo.r_rdy & self.host_read_data.ready),
        ]


    def _build_crc(self, s, run_start):
        """A CRC of every tensor the run writes: the words its memories' write ports take."""
        busy, geo, lanes, m, mem = s.busy, s.geo, s.lanes, s.m, s.mem
        crc_unit = m.submodules.crc = TensorCrc(
            lanes, geo.crc_element_bits, len(geo.crc_tensors),
            shapes=[mem[name].shape for name in geo.crc_tensors], register_ports=lanes > 1)
        m.d.comb += [
            crc_unit.clear.eq(run_start),
            crc_unit.restart.eq(s.fault_first),
            crc_unit.read_addr.eq(self.crc_addr),
            self.crc_data.eq(crc_unit.read_data),
        ]
        for t, name in enumerate(geo.crc_tensors):
            port, w = crc_unit.port(t), mem[name].write
            m.d.comb += [
                port.valid.eq(busy & w.valid),
                port.mask.eq(w.payload.mask),
                *[port.values[k].eq(w.payload.data[k]) for k in range(lanes)],
            ]

    def _build_counters(self, s, run_start):
        """The cycle and MAC-cycle counters of a run, in all and (``config.phase_counters``) per
        :class:`Phase` (:class:`RunCounters`), cleared when a run starts."""
        m, per_phase = s.m, self._config.phase_counters
        cnt = m.submodules.counters = RunCounters(
            len(self.cycles), len(self.mac_cycles), s.array.mac_count.shape(),
            per_phase=per_phase)
        m.d.comb += [cnt.clear.eq(run_start), cnt.busy.eq(s.busy),
                     cnt.macs.eq(s.array.mac_count),
                     self.cycles.eq(cnt.cycles), self.mac_cycles.eq(cnt.mac_cycles)]
        if per_phase:
            m.d.comb += [
                Value.cast(cnt.phase).eq(select(s.job, [(kind, ph.value)
                                                        for kind, ph in _PHASE_OF_JOB.items()])),
                self.phase_cycles.eq(cnt.phase_cycles),
                self.phase_mac_cycles.eq(cnt.phase_mac_cycles),
            ]

    def _build_run(self, s):
        """The run: the sequencer's inputs (start, the ends of each job's reads and writes),
        the maxima's restarts, the counters and the CRCs."""
        m, seq, job, layer, ev, dm = s.m, s.seq, s.job, s.layer, s.ev, s.dm
        m.d.comb += s.finished.eq(select(job, [
            (Job.FORWARD, Mux((layer == s.last_layer) | seq.layer_pooled, ev.final, s.dq.final)),
            (Job.POOL, s.pool_final),
            (Job.UNPOOL, s.unpool_final),
            (Job.GRADIENT, ev.final & (ev.kind == Job.GRADIENT)),
            (Job.BACKWARD, dm.final & (dm.kind == Job.BACKWARD)),
            (Job.ARGMAX, s.ps_finished),
            (Job.OUTPUT_ERROR, s.ps_finished),
            (Job.ERROR, s.ps_finished),
            (Job.UPDATE, s.up_wr.final),
            (Job.REGRAD, s.regrad_final),
            (Job.FAULT, s.fault_final),
        ]))
        m.d.comb += [
            seq.start.eq(self.start), seq.batch.eq(self.batch), seq.train.eq(self.train),
            seq.lam.eq(self.lam), seq.issue_end.eq(Cat(*s.issue_ends).any()),
            self.done.eq(seq.done), self.steps.eq(seq.steps),
        ]
        run_start = seq.run_start
        with m.If(run_start):
            m.d.sync += [*s.loop_resets, *s.wr_resets]
        self._build_counters(s, run_start)

        # The maxima restart with a run and with every layer's gradient job (the transitions
        # that enter GRADIENT: after the output error and after a layer's update).
        clear_layer = Signal(name="clear_layer_max")
        m.d.comb += [
            clear_layer.eq(run_start | (seq.advance & (
                (job == Job.OUTPUT_ERROR)
                | (((job == Job.UPDATE) | (job == Job.REGRAD)) & (layer != 0))))),
            s.g_max.clear.eq(clear_layer),
        ]
        if s.n_layers > 1:
            m.d.comb += s.r_max.clear.eq(clear_layer)
        self._build_crc(s, run_start)

"""The training engine: every layer's weights and activations in on-chip memories around one
systolic array. This first stage runs the forward pass of a whole network (inference); the
hardware twin of ``intrain.golden.model.GoldenModel.forward``."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from intrain.config import Config

from .shift_quantizer import ShiftQuantizer, round_shift, saturate
from .systolic_array import SystolicArray
from .transpose_memory import SliceMode, TransposeMemory

__all__ = ["Engine", "HostTarget"]


class HostTarget(enum.Enum, shape=2):
    """Which kind of matrix a host access addresses (with its ``layer`` field).

    - ``WEIGHTS``, layer ``l`` in ``1 .. L``: the stored weights ``W_l``, ``n_out x n_in``.
    - ``ACTIVATIONS``, layer ``l`` in ``0 .. L``: ``A_l``, ``batch_size x layers[l]``; ``A_0`` is
      the input, ``A_L`` the output accumulators ``OUT``.
    - ``PREDICTIONS`` (``layer`` ignored): ``argmax(OUT)`` per sample, ``batch_size x 1``.
    """

    WEIGHTS = 0
    ACTIVATIONS = 1
    PREDICTIONS = 2


class _State(enum.Enum, shape=2):
    IDLE = 0
    ISSUE = 1
    DRAIN = 2
    ARGMAX = 3


def _const_mux(m, sel, values, name):
    """A signal that holds ``values[sel]`` (combinational; 0 for ``sel`` past the list)."""
    sig = Signal(range(max(values) + 1), name=name)
    with m.Switch(sel):
        for i, v in enumerate(values):
            with m.Case(i):
                m.d.comb += sig.eq(v)
    return sig


class Engine(wiring.Component):
    """The forward pass of a fully connected network on one :class:`SystolicArray`, with every
    matrix in on-chip memory.

    Storage (one :class:`TransposeMemory` each, ``lanes = max(array_rows, array_cols)``):

    - ``W_l`` (``l = 1 .. L``): the stored weights, ``n_out x n_in`` of
      ``signed(w_max.bit_length() + 1)``, the width of :class:`WeightUpdater`'s ``w``.
    - ``A_0``: the input, ``batch_size x layers[0]`` of ``signed(input_bits)``.
    - ``A_l`` (hidden, ``l = 1 .. L - 1``): ``batch_size x layers[l]`` of ``unsigned(a - 1)``
      (QA's results lie in ``[0, 2 ** (a - 1) - 1]``).
    - ``OUT`` (``A_L``): ``batch_size x layers[L]`` of ``signed(acc_bits)``, the raw accumulators.
    - ``P``: ``argmax(OUT)`` of every sample, ``batch_size x 1``.

    Arithmetic (SPEC.md section 4), for ``l = 1 .. L``: ``acc_l = T_l . A_{l-1}`` exactly, with
    ``T_l = clip(round(W_l / 2 ** t_shift), t_max)`` computed on the way from the weight memory
    to the array (``sign(W)`` where ``|W| > 32`` for ternary weights); hidden layers store
    ``A_l = QA(acc_l)`` (:meth:`ShiftQuantizer.for_qa`: ReLU, round half to even, saturate), the
    last one stores ``OUT = acc_L``. Then ``P[b] = argmax_o OUT[b][o]``, the first index on ties.

    Schedule. The layers run one after the other. Layer ``l`` is cut into tiles of ``R`` output
    neurons by ``C`` samples (the array is ``R x C``): ``ceil(n_out / R) * ceil(batch / C)`` tiles,
    output-neuron blocks outer, sample blocks inner. A tile ``(o0, b0)`` is ``K = n_in`` beats;
    beat ``k`` feeds the column slice ``T[o0 .. o0 + R - 1][k]`` as the array's ``a`` and the
    column slice ``A[b0 .. b0 + C - 1][k]`` of the activations (stored ``A[sample][feature]``) as
    ``b``. Lanes past the matrix edge read as 0, so edge tiles compute zeros. Output row ``r`` of
    a tile is neuron ``o0 + r`` for ``C`` samples: it is quantized (hidden layers: one
    :class:`ShiftQuantizer` per array column and distinct QA) and written as the column slice of
    ``A_l`` at ``(b0, o0 + r)``, lanes past ``batch`` masked, rows past ``n_out`` skipped.

    Reads are issued ahead, one beat (a read of both memories) per cycle: the memories' 2-cycle
    read latency and the weight conversion feed a :attr:`FIFO_DEPTH`-entry FIFO in front of the
    array, and a credit counter stops issuing only when that FIFO could overflow; no ``ready``
    runs combinationally from the array back to the address counters. The array computes a tile
    while the previous one drains, so it takes one beat per cycle when ``n_in >= max(R, C)``.
    A layer starts one cycle after the previous layer's last result is written, so its reads see
    every write. After the last layer, the argmax pass reads ``OUT`` in column slices, ``lanes``
    samples at a time, classes in order, and writes ``P``.

    Cycles: :meth:`forward_cycles` is the number of cycles with ``busy`` high. Without stalls in
    the array (``n_in >= max(R, C)`` in every layer) it is::

        sum_l (N_l + R + C + 3) + 2 * (L - 1) + ceil(batch / lanes) * n_classes + 2

    with ``N_l = ceil(n_out / R) * ceil(batch / C) * n_in`` beats in layer ``l``: 3 cycles from
    issuing the first read to the array taking its beat, ``N_l - 1`` more beats, ``R + C`` from
    the last beat to the last row out of the array (:attr:`SystolicArray.latency` ``+ R - 1``),
    the cycle that writes it, 2 more for QA in hidden layers; then one read of ``OUT`` per class
    and sample block and 2 cycles of read latency. In a layer with ``n_in < max(R, C)`` the array
    stalls as its own schedule requires; :meth:`forward_cycles` computes that case too. The MACs
    counted (``mac_cycles``) are ``R * C`` per beat, padding included: :meth:`forward_macs`.

    Host access, only while ``busy`` is low (``host_write.ready`` and ``host_read.ready`` are low
    while the engine runs): any slice, row or column, of any matrix, addressed by ``target`` and
    ``layer`` (see :class:`HostTarget`), ``mode``, ``row`` and ``col``. Data travel as ``lanes``
    values of ``signed(host_width)``: written values are truncated to the memory's shape (they
    must fit it), read values are sign- or zero-extended. A slice whose first element lies
    outside the matrix, or an invalid ``(target, layer)``, writes nothing and reads as zeros.
    Reads are pipelined (one per cycle, 3 cycles from request to data when ``host_read_data`` is
    ready); a write is visible to every read and every run accepted after it.

    Parameters
    ----------
    config : Config
        The network, bit widths, batch size, array shape and accumulator width.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    start : ``In(1)``
        Pulse: run the forward pass of ``batch`` samples (ignored while ``busy``).
    batch : ``In(range(batch_size + 1))``
        Samples in the batch, sampled with ``start``; clamped to ``1 .. batch_size``.
    busy : ``Out(1)``
        The engine runs.
    done : ``Out(1)``
        One-cycle pulse in the cycle after the last busy cycle; ``OUT``, ``P`` and every ``A_l``
        hold the results then.
    cycles : ``Out(32)``
        Busy cycles of the last (or current) run.
    mac_cycles : ``Out(32)``
        Sum of the array's ``mac_count`` over those cycles.
    host_write : ``In(stream.Signature(host_write_layout))``
        Fields ``target``, ``layer``, ``mode``, ``row``, ``col``, ``data`` (``lanes`` values)
        and ``mask`` (lane ``k`` is written if bit ``k`` is set).
    host_read : ``In(stream.Signature(host_read_layout))``
        Fields ``target``, ``layer``, ``mode``, ``row``, ``col``.
    host_read_data : ``Out(stream.Signature(data.ArrayLayout(signed(host_width), lanes)))``
        The slices read, in request order.
    """

    COUNTER_BITS = 32
    FIFO_DEPTH = 4
    """Entries of the operand FIFO in front of the array: the 3-cycle round trip from issuing a
    read to taking its beat, plus one."""

    def __init__(self, config, *, src_loc_at=0):
        if not isinstance(config, Config):
            raise TypeError(f"Configuration must be a Config, not {config!r}")
        self._config = config
        self._plan = config.plan
        rows, cols = config.array_rows, config.array_cols
        self._lanes = max(rows, cols)
        self._w_shapes = [signed(p.w_max.bit_length() + 1) for p in self._plan]
        self._a_shapes = [signed(config.input_bits)]
        self._a_shapes += [unsigned(p.bits.a - 1) for p in self._plan[:-1]]
        self._a_shapes += [signed(config.acc_bits)]
        self._p_shape = unsigned(max(1, (config.layers[-1] - 1).bit_length()))
        self._host_width = max(s.width + (0 if s.signed else 1)
                               for s in self._w_shapes + self._a_shapes)
        n_layers = len(self._plan)
        self._max_rows = max([config.batch_size] + [p.n_out for p in self._plan])
        self._max_cols = max(config.layers)
        address = {
            "target": HostTarget,
            "layer": range(n_layers + 1),
            "mode": SliceMode,
            "row": range(self._max_rows),
            "col": range(self._max_cols),
        }
        self._host_read_layout = data.StructLayout(address)
        self._host_data_layout = data.ArrayLayout(signed(self._host_width), self._lanes)
        self._host_write_layout = data.StructLayout({
            **address, "data": self._host_data_layout, "mask": unsigned(self._lanes)})
        super().__init__({
            "start": In(1),
            "batch": In(range(config.batch_size + 1)),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(self.COUNTER_BITS),
            "mac_cycles": Out(self.COUNTER_BITS),
            "host_write": In(stream.Signature(self._host_write_layout)),
            "host_read": In(stream.Signature(self._host_read_layout)),
            "host_read_data": Out(stream.Signature(self._host_data_layout)),
        }, src_loc_at=src_loc_at + 1)

    # -- configuration ------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def lanes(self) -> int:
        """Elements per memory slice: ``max(array_rows, array_cols)``."""
        return self._lanes

    @property
    def host_width(self) -> int:
        """Width of the signed host data words: enough for every memory's elements."""
        return self._host_width

    @property
    def host_read_layout(self) -> data.StructLayout:
        return self._host_read_layout

    @property
    def host_write_layout(self) -> data.StructLayout:
        return self._host_write_layout

    @property
    def weight_shapes(self) -> list:
        """Element shapes of ``W_1 .. W_L``."""
        return list(self._w_shapes)

    @property
    def activation_shapes(self) -> list:
        """Element shapes of ``A_0 .. A_L`` (``A_L`` is ``OUT``)."""
        return list(self._a_shapes)

    @property
    def prediction_shape(self):
        """Element shape of the predictions ``P``: enough for ``n_classes - 1``."""
        return self._p_shape

    def _check_batch(self, batch):
        if not isinstance(batch, int) or isinstance(batch, bool) \
                or not 1 <= batch <= self._config.batch_size:
            raise ValueError(
                f"Batch must be an integer from 1 to {self._config.batch_size}, not {batch!r}")
        return batch

    def tiles(self, batch) -> list[int]:
        """Tiles of every layer: ``ceil(n_out / R) * ceil(batch / C)``."""
        self._check_batch(batch)
        rows, cols = self._config.array_rows, self._config.array_cols
        return [-(-p.n_out // rows) * -(-batch // cols) for p in self._plan]

    def forward_macs(self, batch) -> int:
        """MACs the array performs in a forward pass, padding included: ``R * C`` per beat,
        ``sum_l tiles_l * n_in * R * C`` (what ``mac_cycles`` counts)."""
        macs = self._config.array_rows * self._config.array_cols
        return sum(t * p.n_in * macs for t, p in zip(self.tiles(batch), self._plan))

    def useful_macs(self, batch) -> int:
        """MACs of the network itself: ``batch * sum_l n_in * n_out``."""
        return self._check_batch(batch) * sum(p.n_in * p.n_out for p in self._plan)

    def forward_cycles(self, batch) -> int:
        """Busy cycles of a forward pass of ``batch`` samples (the ``cycles`` counter)."""
        rows, cols = self._config.array_rows, self._config.array_cols
        latency = SystolicArray.PIPELINE_CYCLES + cols - 1
        total = 0
        for n_tiles, p in zip(self.tiles(batch), self._plan):
            # The array's input schedule: always valid, output always ready.
            k = p.n_in
            cycle, lasts, outs, prev_out = 0, [], [], -1
            for n in range(n_tiles):
                cycle += k - 1
                if n >= 1:
                    cycle = max(cycle, lasts[-1] + cols)
                if n >= 2:
                    cycle = max(cycle, outs[n - 2])
                lasts.append(cycle)
                cycle += 1
                prev_out = max(lasts[-1] + latency, prev_out + 1) + rows - 1
                outs.append(prev_out)
            # Read issue to array input: 3 cycles; final row to written: 1, QA: 2 more.
            total += 3 + outs[-1] + 1 + (0 if p.last else 2)
        # The argmax pass: one read per class and block of ``lanes`` samples, read latency 2.
        return total + -(-batch // self._lanes) * self._config.layers[-1] + 2

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, plan = self._config, self._plan
        n_layers = len(plan)
        rows, cols, lanes = cfg.array_rows, cfg.array_cols, self._lanes
        last_layer = n_layers - 1

        # -- memories ------------------------------------------------------------------------
        w_mems, a_mems = [], []
        for j, p in enumerate(plan):
            mem = TransposeMemory(self._w_shapes[j], p.n_out, p.n_in, lanes)
            m.submodules[f"w_{j + 1}"] = mem
            w_mems.append(mem)
        for j, width in enumerate(cfg.layers):
            mem = TransposeMemory(self._a_shapes[j], cfg.batch_size, width, lanes)
            m.submodules["out" if j == n_layers else f"a_{j}"] = mem
            a_mems.append(mem)
        p_mem = m.submodules.predictions = TransposeMemory(self._p_shape, cfg.batch_size, 1,
                                                           lanes)
        out_mem = a_mems[-1]
        mems = w_mems + a_mems + [p_mem]

        array = m.submodules.array = SystolicArray.for_config(cfg)

        # -- control ---------------------------------------------------------------------------
        state = Signal(_State, name="state")
        layer = Signal(range(n_layers), name="layer")
        n_batch = Signal(range(cfg.batch_size + 1), name="n_batch")
        busy = Signal(name="busy_int")
        m.d.comb += [busy.eq(state != _State.IDLE), self.busy.eq(busy)]
        n_in = _const_mux(m, layer, [p.n_in for p in plan], "n_in")
        n_out = _const_mux(m, layer, [p.n_out for p in plan], "n_out")

        # -- issue: one beat (a read of both memories) per cycle, while credits last --------------
        iss_k = Signal(range(max(p.n_in for p in plan)), name="iss_k")
        iss_o = Signal(range(max(p.n_out for p in plan) + rows), name="iss_o0")
        iss_b = Signal(range(cfg.batch_size + cols), name="iss_b0")
        outstanding = Signal(range(self.FIFO_DEPTH + 1), name="outstanding")
        issue = Signal(name="issue")
        pop = Signal(name="pop")
        m.d.comb += issue.eq((state == _State.ISSUE) & (outstanding < self.FIFO_DEPTH))
        m.d.sync += outstanding.eq(outstanding + issue - pop)
        with m.If(issue):
            with m.If(iss_k == n_in - 1):
                m.d.sync += iss_k.eq(0)
                with m.If(iss_b + cols >= n_batch):
                    m.d.sync += iss_b.eq(0)
                    with m.If(iss_o + rows >= n_out):
                        m.d.sync += [iss_o.eq(0), state.eq(_State.DRAIN)]
                    with m.Else():
                        m.d.sync += iss_o.eq(iss_o + rows)
                with m.Else():
                    m.d.sync += iss_b.eq(iss_b + cols)
            with m.Else():
                m.d.sync += iss_k.eq(iss_k + 1)

        # The beat's flags follow the reads through the memories' two read stages.
        flags = data.StructLayout({"valid": 1, "first": 1, "last": 1})
        s1, s2 = Signal(flags, name="rd_s1"), Signal(flags, name="rd_s2")
        m.d.sync += [
            s1.valid.eq(issue), s1.first.eq(iss_k == 0), s1.last.eq(iss_k == n_in - 1),
            s2.eq(s1),
        ]

        # Operands: T from W (per layer's constants) and the activations, into the FIFO.
        beat_layout = array.i.payload.shape()
        beat = Signal(beat_layout, name="beat")
        m.d.comb += [beat.first.eq(s2.first), beat.last.eq(s2.last)]
        with m.Switch(layer):
            for j, p in enumerate(plan):
                with m.Case(j):
                    w_data = w_mems[j].read_data.payload
                    a_data = a_mems[j].read_data.payload
                    m.d.comb += [
                        beat.a[r].eq(saturate(round_shift(w_data[r], p.t_shift), p.t_max))
                        for r in range(rows)]
                    m.d.comb += [beat.b[c].eq(a_data[c]) for c in range(cols)]
        fifo = m.submodules.operand_fifo = SyncFIFO(width=beat_layout.size,
                                                    depth=self.FIFO_DEPTH)
        m.d.comb += [
            fifo.w_data.eq(beat.as_value()),
            fifo.w_en.eq(s2.valid),
            array.i.valid.eq(fifo.r_rdy),
            array.i.payload.eq(fifo.r_data),
            fifo.r_en.eq(array.i.ready),
            pop.eq(fifo.r_rdy & array.i.ready),
        ]

        # -- results: QA (hidden layers) and the write-back as column slices --------------------
        m.d.comb += array.o.ready.eq(1)
        wr_o = Signal(range(max(p.n_out for p in plan) + rows), name="wr_o0")
        wr_b = Signal(range(cfg.batch_size + cols), name="wr_b0")
        row_event = data.StructLayout({
            "valid": 1, "col": range(max(p.n_out for p in plan) + rows),
            "row": range(cfg.batch_size + cols), "mask": lanes, "final": 1})
        ev = Signal(row_event, name="wr_ev")
        out = array.o.payload
        end_b = Signal(name="wr_end_b")
        end_o = Signal(name="wr_end_o")
        m.d.comb += [
            end_b.eq(wr_b + cols >= n_batch),
            end_o.eq(wr_o + rows >= n_out),
            ev.col.eq(wr_o + out.row),
            ev.valid.eq(array.o.valid & (wr_o + out.row < n_out)),
            ev.row.eq(wr_b),
            ev.final.eq(array.o.valid & out.last & end_b & end_o),
        ]
        m.d.comb += [ev.mask[c].eq(wr_b + c < n_batch) for c in range(cols)]
        with m.If(array.o.valid & out.last):
            with m.If(end_b):
                m.d.sync += wr_b.eq(0)
                with m.If(end_o):
                    m.d.sync += wr_o.eq(0)
                with m.Else():
                    m.d.sync += wr_o.eq(wr_o + rows)
            with m.Else():
                m.d.sync += wr_b.eq(wr_b + cols)
        d1, d2 = Signal(row_event, name="wr_d1"), Signal(row_event, name="wr_d2")
        m.d.sync += [d1.eq(ev), d2.eq(d1)]

        # One set of ``cols`` quantizers per distinct QA of the hidden layers.
        groups = {}
        for p in plan[:-1]:
            key = (p.qa_shift, p.bits.a, p.acc_bits_forward)
            if key not in groups:
                qs = []
                for c in range(cols):
                    q = ShiftQuantizer.for_qa(p)
                    m.submodules[f"qa_{len(groups)}_{c}"] = q
                    m.d.comb += [
                        q.i.valid.eq(array.o.valid),
                        q.i.payload.eq(out.values[c]),
                        q.o.ready.eq(1),
                    ]
                    qs.append(q)
                groups[key] = qs
        quantized = [groups[(p.qa_shift, p.bits.a, p.acc_bits_forward)] for p in plan[:-1]]

        layer_finished = Signal(name="layer_finished")
        m.d.comb += layer_finished.eq(
            (state == _State.DRAIN)
            & ((layer == last_layer) & ev.final | (layer != last_layer) & d2.final))

        # Engine writes of A_1 .. A_L (A_L is OUT, written without QA).
        engine_write = {}
        for j in range(n_layers):
            mem = a_mems[j + 1]
            if j == last_layer:
                src, values = ev, [out.values[c] for c in range(cols)]
            else:
                src, values = d2, [quantized[j][c].o.payload.value for c in range(cols)]
            engine_write[mem] = [
                mem.write.valid.eq((layer == j) & src.valid),
                mem.write.payload.mode.eq(SliceMode.COLUMN),
                mem.write.payload.row.eq(src.row),
                mem.write.payload.col.eq(src.col),
                mem.write.payload.mask.eq(src.mask),
                *[mem.write.payload.data[c].eq(values[c]) for c in range(cols)],
            ]
        # Engine reads of W_1 .. W_L and A_0 .. A_{L-1}.
        engine_read = {}
        for j in range(n_layers):
            for mem, row in ((w_mems[j], iss_o), (a_mems[j], iss_b)):
                engine_read[mem] = [
                    mem.read.valid.eq(issue & (layer == j)),
                    mem.read.payload.mode.eq(SliceMode.COLUMN),
                    mem.read.payload.row.eq(row),
                    mem.read.payload.col.eq(iss_k),
                ]

        # -- argmax pass: OUT in column slices (``lanes`` samples), classes in order ---------------
        n_classes = cfg.layers[-1]
        am_o = Signal(range(n_classes), name="am_class")
        am_b = Signal(range(cfg.batch_size + lanes), name="am_b0")
        am_issue = Signal(name="am_issue")
        m.d.comb += am_issue.eq(state == _State.ARGMAX)
        with m.If(am_issue):
            with m.If(am_o == n_classes - 1):
                m.d.sync += am_o.eq(0)
                with m.If(am_b + lanes >= n_batch):
                    m.d.sync += [am_b.eq(0), state.eq(_State.DRAIN)]
                with m.Else():
                    m.d.sync += am_b.eq(am_b + lanes)
            with m.Else():
                m.d.sync += am_o.eq(am_o + 1)
        engine_read[out_mem] = [
            out_mem.read.valid.eq(am_issue),
            out_mem.read.payload.mode.eq(SliceMode.COLUMN),
            out_mem.read.payload.row.eq(am_b),
            out_mem.read.payload.col.eq(am_o),
        ]
        am_flags = data.StructLayout({"valid": 1, "index": range(n_classes),
                                      "row": range(cfg.batch_size + lanes), "final": 1})
        am1, am2 = Signal(am_flags, name="am_s1"), Signal(am_flags, name="am_s2")
        m.d.sync += [
            am1.valid.eq(am_issue),
            am1.index.eq(am_o),
            am1.row.eq(am_b),
            am1.final.eq(am_issue & (am_o == n_classes - 1) & (am_b + lanes >= n_batch)),
            am2.eq(am1),
        ]
        am_finished = Signal(name="am_finished")
        m.d.comb += am_finished.eq(am2.final)
        best = [Signal(signed(cfg.acc_bits), name=f"am_best_{k}") for k in range(lanes)]
        best_class = [Signal(self._p_shape, name=f"am_best_class_{k}") for k in range(lanes)]
        engine_write[p_mem] = [
            p_mem.write.valid.eq(am2.valid & (am2.index == n_classes - 1)),
            p_mem.write.payload.mode.eq(SliceMode.COLUMN),
            p_mem.write.payload.row.eq(am2.row),
            p_mem.write.payload.col.eq(0),
        ]
        for k in range(lanes):
            value = out_mem.read_data.payload[k]
            take = Signal(name=f"am_take_{k}")
            m.d.comb += take.eq((am2.index == 0) | (value > best[k]))
            with m.If(am2.valid & take):
                m.d.sync += [best[k].eq(value), best_class[k].eq(am2.index)]
            engine_write[p_mem] += [
                p_mem.write.payload.mask[k].eq(am2.row + k < n_batch),
                p_mem.write.payload.data[k].eq(Mux(take, am2.index, best_class[k])),
            ]

        # -- host access ---------------------------------------------------------------------
        def host_select(request, index):
            """The request addresses memory ``index`` and its first element is inside."""
            mem = mems[index]
            inside = (request.row < mem.rows) & (request.col < mem.cols)
            if mem is p_mem:
                return (request.target == HostTarget.PREDICTIONS) & inside
            if index < n_layers:
                target, number = HostTarget.WEIGHTS, index + 1
            else:
                target, number = HostTarget.ACTIVATIONS, index - n_layers
            return (request.target == target) & (request.layer == number) & inside

        hw = self.host_write.payload
        m.d.comb += self.host_write.ready.eq(~busy)
        hr = self.host_read.payload
        h_outstanding = Signal(range(self.FIFO_DEPTH + 1), name="host_outstanding")
        h_issue = Signal(name="host_issue")
        h_pop = Signal(name="host_pop")
        m.d.comb += [
            self.host_read.ready.eq(~busy & (h_outstanding < self.FIFO_DEPTH)),
            h_issue.eq(self.host_read.valid & self.host_read.ready),
        ]
        m.d.sync += h_outstanding.eq(h_outstanding + h_issue - h_pop)
        h_sel = Signal(range(len(mems) + 1), name="host_sel")  # len(mems): no memory, zeros
        m.d.comb += h_sel.eq(len(mems))
        for index in reversed(range(len(mems))):
            with m.If(host_select(hr, index)):
                m.d.comb += h_sel.eq(index)

        for index, mem in enumerate(mems):
            with m.If(busy):
                m.d.comb += engine_write.get(mem, [])
                m.d.comb += engine_read.get(mem, [])
            with m.Else():
                m.d.comb += [
                    mem.write.valid.eq(self.host_write.valid & host_select(hw, index)),
                    mem.write.payload.mode.eq(hw.mode),
                    mem.write.payload.row.eq(hw.row),
                    mem.write.payload.col.eq(hw.col),
                    mem.write.payload.mask.eq(hw.mask),
                    *[mem.write.payload.data[k].eq(hw.data[k]) for k in range(lanes)],
                    mem.read.valid.eq(h_issue & (h_sel == index)),
                    mem.read.payload.mode.eq(hr.mode),
                    mem.read.payload.row.eq(hr.row),
                    mem.read.payload.col.eq(hr.col),
                ]
            m.d.comb += mem.read_data.ready.eq(1)

        # Host responses: the memory's slice two cycles later, extended, into a FIFO.
        h1_valid, h2_valid = Signal(name="host_s1_valid"), Signal(name="host_s2_valid")
        h1_sel, h2_sel = Signal.like(h_sel, name="host_s1_sel"), Signal.like(h_sel,
                                                                              name="host_s2_sel")
        m.d.sync += [h1_valid.eq(h_issue), h1_sel.eq(h_sel), h2_valid.eq(h1_valid),
                     h2_sel.eq(h1_sel)]
        response = Signal(self._host_data_layout, name="host_response")
        with m.Switch(h2_sel):
            for index, mem in enumerate(mems):
                with m.Case(index):
                    m.d.comb += [response[k].eq(mem.read_data.payload[k]) for k in range(lanes)]
        h_fifo = m.submodules.host_fifo = SyncFIFO(width=self._host_data_layout.size,
                                                   depth=self.FIFO_DEPTH)
        m.d.comb += [
            h_fifo.w_data.eq(response.as_value()),
            h_fifo.w_en.eq(h2_valid),
            self.host_read_data.valid.eq(h_fifo.r_rdy),
            self.host_read_data.payload.eq(h_fifo.r_data),
            h_fifo.r_en.eq(self.host_read_data.ready),
            h_pop.eq(h_fifo.r_rdy & self.host_read_data.ready),
        ]

        # -- the run: start, layers, done; counters -------------------------------------------
        m.d.sync += self.done.eq(0)
        with m.If(busy):
            m.d.sync += [
                self.cycles.eq(self.cycles + 1),
                self.mac_cycles.eq(self.mac_cycles + array.mac_count),
            ]
        with m.Switch(state):
            with m.Case(_State.IDLE):
                with m.If(self.start):
                    m.d.sync += [
                        state.eq(_State.ISSUE),
                        layer.eq(0),
                        n_batch.eq(self.batch),
                        iss_k.eq(0), iss_o.eq(0), iss_b.eq(0), wr_o.eq(0), wr_b.eq(0),
                        self.cycles.eq(0),
                        self.mac_cycles.eq(0),
                    ]
                    with m.If(self.batch == 0):
                        m.d.sync += n_batch.eq(1)
                    with m.If(self.batch > cfg.batch_size):
                        m.d.sync += n_batch.eq(cfg.batch_size)
            with m.Case(_State.DRAIN):
                # Every beat of a layer (or every read of the argmax pass) has been issued; wait
                # for its last write.
                with m.If(layer_finished):
                    with m.If(layer == last_layer):
                        m.d.sync += state.eq(_State.ARGMAX)
                    with m.Else():
                        m.d.sync += [state.eq(_State.ISSUE), layer.eq(layer + 1)]
                with m.If(am_finished):
                    m.d.sync += [state.eq(_State.IDLE), self.done.eq(1)]
        return m

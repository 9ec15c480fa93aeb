"""The engine behind a UART: the top of a board's design, which a host trains through the framed
protocol of :mod:`intrain.link_spec`."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from intrain import link_spec as proto
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.link_spec import Command, Status

from ._util import first
from .engine import Engine, HostTarget
from .transpose_memory import SliceMode, mul_const
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["HostLink", "make_engine"]


def make_engine(config: Config, dsp: str = "generic") -> Engine:
    """The engine behind the link: ``Engine(config, dsp=dsp)`` with room for one host read in
    flight (the link waits for each answer before it asks for the next)."""
    return Engine(config, dsp=dsp, host_read_depth=1)


def _one_hot(sel, values):
    """``values[k]`` for the one bit ``k`` set in ``sel``: an OR of ANDs (two values per LUT4
    and an OR tree, cheaper than a tree of 2:1 multiplexers)."""
    terms = [Value.cast(v) & sel[k].replicate(len(Value.cast(v))) for k, v in enumerate(values)]
    result = terms[0]
    for t in terms[1:]:
        result = result | t
    return result


class HostLink(wiring.Component):
    """An :class:`Engine` driven over a UART by the protocol of :mod:`intrain.link_spec`.

    A request frame goes byte by byte from :class:`UartRx` through a receiver that checks the
    header, stores the payload in a buffer memory of ``max_payload`` bytes and runs the CRC
    over it. Only once the whole frame is in and its CRC, length and command are right does it
    execute: ``WRITE`` words go from the buffer to ``host_write``, ``READ`` requests to
    ``host_read`` one at a time (each answer word leaves through :class:`UartTx` before the next
    request), ``RUN`` pulses ``start``. ``WRITE_ROWS`` expands bare values into ``host_write``
    words in the same register that ``WRITE`` words pass through: its request is loaded as the
    word's address fields and checked, then each value is sign-extended into the top lane while
    the lanes below shift down a lane (two cycles per byte, one per masked-off lane of a short
    slice), the slice is written, and ``col`` (or, at a row's end, ``row``) steps on in place.
    Every frame gets an answer frame (OK with data, or an
    error code). One CRC unit (``amaranth.lib.crc``, :data:`~intrain.link_spec.CRC`)
    serves both directions (a request is answered only after it has been received). Bytes that
    arrive while a frame executes or is answered are dropped; the host waits for each answer.

    Parameters
    ----------
    config : Config
        The engine's configuration.
    clk_freq : int
        Clock frequency in Hz (the UART's divisor is ``clk_freq // baud``).
    baud : int
        Bits per second of the UART.
    dsp : str
        The engine's arithmetic (passed on to the engine when it offers a choice).
    max_payload : int
        Bytes of the request buffer: the largest ``WRITE``, ``WRITE_ROWS`` or ``READ`` payload.
    timeout : int, optional
        Clock cycles of silence that end a frame as ``TRUNCATED`` (default: 20 ms).

    Members
    -------
    rx : ``In(1)``
        Serial data from the host.
    tx : ``Out(1)``
        Serial data to the host.
    busy : ``Out(1)``
        The engine runs.
    error : ``Out(1)``
        The last answer was an error.
    """

    def __init__(self, config: Config, *, clk_freq: int, baud: int = 1_000_000,
                 dsp: str = "generic", max_payload: int = 512, timeout: int | None = None,
                 src_loc_at=0):
        if not isinstance(config, Config):
            raise TypeError(f"Configuration must be a Config, not {config!r}")
        self._divisor = uart_divisor(clk_freq, baud)
        self._engine = make_engine(config, dsp)
        # The link elaborates the engine; an unused link is warned about on its own.
        self._engine._MustUse__silence = True
        self._info = proto.BoardInfo.for_engine(self._engine, max_payload=max_payload,
                                                clk_freq=clk_freq)
        info = self._info
        if isinstance(max_payload, bool) or not isinstance(max_payload, int) \
                or not max(info.write_bytes, info.request_bytes, proto.RUN_BYTES) \
                <= max_payload <= 0xFFFF:
            raise ConfigError(f"max_payload must hold a write word ({info.write_bytes} bytes) "
                              f"and be at most 65535, not {max_payload!r}")
        if (max_payload // info.request_bytes) * info.data_bytes > 0xFFFF:
            raise ConfigError(f"max_payload {max_payload} allows READ answers over 65535 bytes")
        if timeout is None:
            timeout = max(clk_freq // 50, 20 * self._divisor)
        if isinstance(timeout, bool) or not isinstance(timeout, int) \
                or timeout < 2 * 10 * self._divisor:
            raise ConfigError(f"the timeout must be at least two bytes' time "
                              f"({20 * self._divisor} cycles), not {timeout!r}")
        self._timeout = timeout
        self._max_payload = max_payload
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "busy": Out(1),
            "error": Out(1),
        }, src_loc_at=src_loc_at + 1)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def info(self) -> proto.BoardInfo:
        """What ``INFO`` answers."""
        return self._info

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        eng = m.submodules.engine = self._engine
        rxu = m.submodules.uart_rx = UartRx(self._divisor)
        txu = m.submodules.uart_tx = UartTx(self._divisor)
        m.d.comb += [rxu.rx.eq(self.rx), self.tx.eq(txu.tx), self.busy.eq(eng.busy),
                     rxu.o.ready.eq(1)]
        s = self._signals(m, eng, rxu, txu)
        self._engine_inputs(m, s)
        self._answer_words(m, s)
        with m.FSM():
            self._receiving(m, s)
            self._checking(m, s)
            self._executing(m, s)
            self._writing_rows(m, s)
            self._answering(m, s)
        return m

    # -- the parts of elaborate ------------------------------------------------------------------
    def _signals(self, m, eng, rxu, txu) -> SimpleNamespace:
        """The frame buffer, the CRC unit, the inter-byte timer and the registers that the
        states share."""
        info = self._info
        mem = m.submodules.buffer = Memory(shape=8, depth=self._max_payload, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())

        wb, rb, db = info.write_bytes, info.request_bytes, info.data_bytes
        in_bytes = max(wb, rb, proto.RUN_BYTES)
        out_bytes = max(db, 4)

        # Lengths: a request's at most max_payload once its header is checked; an answer's at
        # most the longest READ answer, the counters or INFO.
        max_answer = max((self._max_payload // rb) * db, 4 * 11, proto.INFO_BYTES)
        s = SimpleNamespace(
            eng=eng, txu=txu, got=rxu.o.valid, byte=rxu.o.payload, wr=wr, rd=rd,
            wb=wb, rb=rb, db=db, in_bytes=in_bytes,
            length=Signal(range(self._max_payload + 1), name="length"),
            len_lo=Signal(8, name="len_lo"),
            command=Signal(8, name="command"),
            status=Signal(3, name="status"),
            ptr=Signal(range(self._max_payload + 1), name="ptr"),
            crc_unit=None,
        )
        s.crc_unit = m.submodules.crc = proto.CRC.create()
        s.crc = s.crc_unit.crc
        s.crc_in = Signal(8, name="crc_in")
        s.crc_en = Signal(name="crc_en")
        s.crc_start = Signal(name="crc_start")
        s.timer = Signal(range(self._timeout + 1), name="timer")
        s.quiet = s.timer == self._timeout
        s.wmod = Signal(range(max(wb, 2)), name="wmod")
        s.rmod = Signal(range(max(rb, 2)), name="rmod")
        s.resp_len = Signal(range(max_answer + 1), name="resp_len")
        s.tx_left = Signal(range(max_answer + 1), name="tx_left")
        s.ptr_next = Signal(range(self._max_payload + 2), name="ptr_next")
        s.in_sh = Signal(8 * in_bytes, name="in_sh")
        s.load_left = Signal(range(in_bytes + 1), name="load_left")
        s.sh = Signal(8 * out_bytes, name="sh")
        s.byte_left = Signal(range(out_bytes + 1), name="byte_left")
        s.tx_byte = Signal(8, name="tx_byte")
        self._rows_signals(s)

        m.d.comb += [wr.addr.eq(s.ptr), wr.data.eq(s.byte), rd.addr.eq(s.ptr),
                     s.ptr_next.eq(s.ptr + 1)]
        m.d.comb += [s.crc_unit.data.eq(s.crc_in), s.crc_unit.valid.eq(s.crc_en),
                     s.crc_unit.start.eq(s.crc_start)]
        with m.If(s.got):
            m.d.sync += s.timer.eq(0)
        with m.Elif(~s.quiet):
            m.d.sync += s.timer.eq(s.timer + 1)
        return s

    def _rows_signals(self, s) -> None:
        """What ``WRITE_ROWS`` adds: the value's width and its bytes so far, the payload's bytes
        modulo the value's (counted on the way in), the lanes filled in the slice, the values
        left in the row, and the host_write word in ``in_sh`` as its layout."""
        eng = self._engine
        s.vb = self._info.value_bytes
        s.pmod = Signal(range(s.vb), name="pmod") if s.vb > 1 else None
        s.vbyte = Signal(range(s.vb), name="vbyte") if s.vb > 1 else None
        s.vbuf = Signal(8 * (s.vb - 1), name="vbuf")
        s.lane = Signal(range(max(eng.lanes, 2)), name="lane")
        # The input matrix as the engine holds it (a convolution's: positions x channels).
        a0 = eng.geometry.memories["A0"]
        s.n_in, s.in_rows = a0.cols, a0.logical_rows
        s.left = Signal(range(s.n_in + 1), name="left")
        layout = eng.host_write_layout
        s.hw = data.View(layout, s.in_sh[8 * (s.in_bytes - s.wb):][:layout.size])

    def _engine_inputs(self, m, s) -> None:
        """The engine's side: words from the top of the input shift register."""
        eng, top = s.eng, 8 * s.in_bytes
        run_fields = s.in_sh[top - 8 * proto.RUN_BYTES:]
        s.batch, s.lam, s.flags = run_fields[:16], run_fields[16:24], run_fields[24:32]
        m.d.comb += [
            eng.host_write.payload.eq(s.in_sh[top - 8 * s.wb:][:eng.host_write_layout.size]),
            eng.host_read.payload.eq(s.in_sh[top - 8 * s.rb:][:eng.host_read_layout.size]),
            eng.batch.eq(s.batch),
            eng.lam.eq(s.lam),
            eng.train.eq(s.flags[0]),
        ]

    def _answer_words(self, m, s) -> None:
        """Answer words other than READ data: the counters (0 .. 10), the engine's tensor CRCs,
        then INFO (chosen by the one-hot ``s.word``; ``s.words`` is the choice's select bits
        and values); and the answer's length."""
        eng, command, status = s.eng, s.command, s.status
        # A RUN's answer leaves the UART a word at a time, long after the CRCs settle
        # (TensorCrc.LATENCY cycles after the last write).
        counters = [eng.cycles, eng.mac_cycles, eng.steps]
        if eng.config.phase_counters:
            counters += [eng.phase_cycles[k] for k in range(4)]
            counters += [eng.phase_mac_cycles[k] for k in range(4)]
        else:   # the protocol's counter words stay, as zeros
            counters += [Const(0, 32)] * 8
        s.n_counters = n_counters = len(counters) + len(eng.geometry.crc_tensors)
        info = [Const(w, 32) for w in self._info.words()]
        s.word = Signal(n_counters + len(info), name="word")  # one-hot: the word FETCH loads next
        # The CRCs come from the engine's CRC memory, addressed by the word's place among them
        # (``word`` settles long before FETCH, which waits for the UART).
        crc_words = s.word[len(counters):n_counters]
        m.d.comb += eng.crc_addr.eq(first([(crc_words[t], t) for t in range(len(crc_words))]))
        s.words = (Cat(s.word[:len(counters)], crc_words.any(), s.word[n_counters:]),
                   counters + [eng.crc_data] + info)

        # The length of the answer, from the status and the command: the words asked for by a
        # READ (counted while the request came in), INFO, the counters of RUN (unless told not
        # to wait) and COUNTERS; nothing for an error, WRITE, or RUN without waiting.
        s.ans_len = Signal.like(s.resp_len, name="ans_len")
        m.d.comb += s.ans_len.eq(Mux(status != Status.OK, 0, first([
            (command == Command.READ, s.resp_len),
            (command == Command.INFO, proto.INFO_BYTES),
            (command == Command.COUNTERS, 4 * n_counters),
            ((command == Command.RUN) & ~s.flags[1], 4 * n_counters),
        ])))
        m.d.comb += s.txu.i.payload.eq(s.tx_byte)

    # -- state helpers ---------------------------------------------------------------------------
    @staticmethod
    def _answer(m, s, code) -> None:
        m.d.sync += s.status.eq(code)
        m.next = "RESPOND"

    def _receive(self, m, s, state_next, action=()) -> None:
        """A header or CRC byte: into the CRC, then ``state_next``; silence truncates."""
        m.d.comb += s.crc_in.eq(s.byte)
        with m.If(s.got):
            m.d.comb += s.crc_en.eq(1)
            m.d.sync += list(action)
            m.next = state_next
        with m.Elif(s.quiet):
            self._answer(m, s, Status.TRUNCATED)

    @staticmethod
    def _send(m, s, value, state_next, update_crc=True):
        """``value`` to the UART (and the CRC), then ``state_next``; the UART's ready."""
        txu = s.txu
        m.d.comb += [s.tx_byte.eq(value), txu.i.valid.eq(1), s.crc_in.eq(s.tx_byte)]
        with m.If(txu.i.ready):
            if update_crc:
                m.d.comb += s.crc_en.eq(1)
            m.next = state_next
        return txu.i.ready

    # -- the states ------------------------------------------------------------------------------
    def _receiving(self, m, s) -> None:
        """A request frame into the buffer, its CRC computed on the way."""
        got, byte, length, ptr = s.got, s.byte, s.length, s.ptr
        wb, rb = s.wb, s.rb
        with m.State("IDLE"):
            with m.If(got):
                m.d.comb += s.crc_start.eq(1)
                with m.If(byte == proto.SYNC):
                    m.next = "LEN0"
                with m.Else():
                    m.d.sync += s.status.eq(Status.BAD_SYNC)
                    m.next = "DISCARD"
        with m.State("LEN0"):
            self._receive(m, s, "LEN1", [s.len_lo.eq(byte)])
        with m.State("LEN1"):
            self._receive(m, s, "CMD", [length.eq(Cat(s.len_lo, byte))])
            with m.If(got & (Cat(s.len_lo, byte) > self._max_payload)):
                m.d.sync += s.status.eq(Status.BAD_LENGTH)
                m.next = "DISCARD"
        with m.State("CMD"):
            self._receive(m, s, "CRC0", [s.command.eq(byte), ptr.eq(0), s.wmod.eq(0),
                                         s.rmod.eq(0), s.resp_len.eq(0)]
                          + ([s.pmod.eq(0)] if s.pmod is not None else []))
            with m.If(got & (length != 0)):
                m.next = "PAYLOAD"
        with m.State("PAYLOAD"):
            self._receive(m, s, "PAYLOAD", [ptr.eq(s.ptr_next),
                                            s.wmod.eq(Mux(s.wmod == wb - 1, 0, s.wmod + 1)),
                                            s.rmod.eq(Mux(s.rmod == rb - 1, 0, s.rmod + 1))])
            m.d.comb += s.wr.en.eq(got)
            if s.pmod is not None:
                with m.If(got):
                    m.d.sync += s.pmod.eq(Mux(s.pmod == s.vb - 1, 0, s.pmod + 1))
            with m.If(got):
                with m.If(s.rmod == rb - 1):
                    m.d.sync += s.resp_len.eq(s.resp_len + s.db)
                with m.If(s.ptr_next == length):
                    m.next = "CRC0"
        with m.State("CRC0"):
            self._receive(m, s, "CRC1")
        with m.State("CRC1"):
            self._receive(m, s, "CHECK")
        with m.State("DISCARD"):
            with m.If(s.quiet):
                self._answer(m, s, s.status)

    def _checking(self, m, s) -> None:
        """A whole frame in: its CRC, length and command checked before anything happens."""
        eng, command, length = s.eng, s.command, s.length

        def answer(code):
            self._answer(m, s, code)

        with m.State("CHECK"):
            m.d.sync += [s.ptr.eq(0), s.load_left.eq(Mux(command == Command.RUN,
                                                         proto.RUN_BYTES, s.wb))]
            with m.If(~s.crc_unit.match_detected):
                answer(Status.BAD_CRC)
            with m.Elif(command == Command.INFO):
                with m.If(length != 0):
                    answer(Status.BAD_LENGTH)
                with m.Else():
                    m.d.sync += s.word.eq(1 << s.n_counters)
                    answer(Status.OK)
            with m.Elif(command == Command.WRITE):
                with m.If(s.wmod != 0):
                    answer(Status.BAD_LENGTH)
                with m.Elif(eng.busy):
                    answer(Status.BUSY)
                with m.Elif(length == 0):
                    answer(Status.OK)
                with m.Else():
                    m.next = "LOAD"
            with m.Elif(command == Command.WRITE_ROWS):
                # At least one value after the request, and whole values.
                partial = (s.pmod != s.rb % s.vb) if s.pmod is not None else 0
                with m.If((length <= s.rb) | partial):
                    answer(Status.BAD_LENGTH)
                with m.Elif(eng.busy):
                    answer(Status.BUSY)
                with m.Else():
                    m.next = "LOAD"
            with m.Elif(command == Command.READ):
                with m.If(s.rmod != 0):
                    answer(Status.BAD_LENGTH)
                with m.Elif(eng.busy):
                    answer(Status.BUSY)
                with m.Else():
                    answer(Status.OK)
            with m.Elif(command == Command.RUN):
                with m.If(length != proto.RUN_BYTES):
                    answer(Status.BAD_LENGTH)
                with m.Elif(eng.busy):
                    answer(Status.BUSY)
                with m.Else():
                    m.next = "LOAD"
            with m.Elif(command == Command.COUNTERS):
                with m.If(length != 0):
                    answer(Status.BAD_LENGTH)
                with m.Else():
                    m.next = "WAIT"
            with m.Else():
                answer(Status.UNKNOWN_COMMAND)

    def _executing(self, m, s) -> None:
        """``WRITE`` words to the engine, ``RUN`` started and waited for."""
        eng, command = s.eng, s.command
        # A word (or the RUN arguments) from the buffer into in_sh, a byte per two cycles:
        # the read port gives mem[ptr] a cycle after LOAD.
        with m.State("LOAD"):
            m.next = "LOAD_DATA"
        with m.State("LOAD_DATA"):
            m.d.sync += [s.in_sh.eq(Cat(s.in_sh[8:], s.rd.data)), s.ptr.eq(s.ptr_next),
                         s.load_left.eq(s.load_left - 1)]
            with m.If(s.load_left == 1):
                with m.If(command == Command.WRITE):
                    m.next = "WRITE"
                with m.Elif(command == Command.WRITE_ROWS):
                    m.next = "ROWS_ROOM"
                with m.Elif(command == Command.READ):
                    m.next = "REQUEST"
                with m.Else():
                    m.next = "START"
            with m.Else():
                m.next = "LOAD"
        with m.State("WRITE"):
            m.d.comb += eng.host_write.valid.eq(1)
            m.d.sync += s.load_left.eq(s.wb)
            with m.If(eng.host_write.ready):
                with m.If(s.ptr == s.length):
                    self._answer(m, s, Status.OK)
                with m.Else():
                    m.next = "LOAD"
        with m.State("START"):
            with m.If((s.batch == 0) | (s.batch > eng.config.batch_size)):
                self._answer(m, s, Status.BAD_ARGUMENT)
            with m.Else():
                m.d.comb += eng.start.eq(1)
                with m.If(s.flags[1]):
                    self._answer(m, s, Status.OK)
                with m.Else():
                    m.next = "STARTED"
        with m.State("STARTED"):  # busy rises the cycle after start
            m.next = "WAIT"
        with m.State("WAIT"):
            with m.If(~eng.busy):
                m.d.sync += s.word.eq(1)
                self._answer(m, s, Status.OK)

    def _writing_rows(self, m, s) -> None:
        """``WRITE_ROWS``: its request, loaded by LOAD as the bottom of a host_write word in
        ``in_sh``, checked; then the values into the word's lanes and the slices written."""
        eng, hw, lanes, width = s.eng, s.hw, s.eng.lanes, s.eng.host_width
        is_labels = hw.target == HostTarget.LABELS
        cols = Mux(is_labels, 1, s.n_in)
        # The values must end inside the matrix: length <= request + rows left * row bytes,
        # the bound registered a state before its compare (shifts and adders, no multiplier).
        batch = s.in_rows   # the rows of the input (batch_size, or a convolution's positions)
        if batch == eng.config.batch_size:
            n_rows = batch
        else:
            n_rows = Signal(range(batch + 1), name="rows_matrix")
            m.d.comb += n_rows.eq(Mux(is_labels, eng.config.batch_size, batch))
        row_in, room = Signal(name="rows_row_in"), Signal(
            range(s.rb + batch * s.n_in * s.vb + 1), name="rows_room")
        rows_left = Signal(range(batch + 1), name="rows_left")
        m.d.comb += rows_left.eq(Mux(hw.row <= n_rows, n_rows - hw.row, 0))
        with m.State("ROWS_ROOM"):
            m.d.sync += [row_in.eq(hw.row <= n_rows),
                         room.eq(s.rb + Mux(is_labels, mul_const(rows_left, s.vb),
                                            mul_const(rows_left, s.n_in * s.vb)))]
            m.next = "ROWS_CHECK"
        with m.State("ROWS_CHECK"):
            with m.If(((hw.target == HostTarget.ACTIVATIONS) | is_labels) & (hw.layer == 0)
                      & (hw.mode == SliceMode.ROW) & (hw.col == 0) & row_in
                      & (s.length <= room)):
                m.d.sync += [s.ptr.eq(s.rb), s.lane.eq(0), s.left.eq(cols)]
                m.next = "ROWS_LOAD"
            with m.Else():
                self._answer(m, s, Status.BAD_ARGUMENT)
        with m.State("ROWS_LOAD"):  # the read port gives mem[ptr] a cycle later
            m.next = "ROWS_DATA"
        with m.State("ROWS_DATA"):
            m.d.sync += s.ptr.eq(s.ptr_next)
            value = Cat(s.vbuf, s.rd.data)
            ext = Cat(value, value[-1].replicate(max(0, width - len(value))))[:width]
            if s.vbyte is None:
                self._take_value(m, s, ext)
            else:   # a value's bytes before its last go into vbuf
                whole = s.vbyte == s.vb - 1
                m.d.sync += s.vbyte.eq(Mux(whole, 0, s.vbyte + 1))
                with m.If(whole):
                    self._take_value(m, s, ext)
                with m.Else():
                    m.d.sync += s.vbuf.eq(Cat(s.vbuf[8:], s.rd.data))
                    m.next = "ROWS_LOAD"
        if lanes > 1:
            with m.State("ROWS_PAD"):  # the lanes past the row's end or the last value
                self._shift_lane(m, s, 0, 0)
                with m.If(s.lane == lanes - 1):
                    m.next = "ROWS_WRITE"
        with m.State("ROWS_WRITE"):
            m.d.comb += eng.host_write.valid.eq(1)
            with m.If(eng.host_write.ready):
                m.d.sync += s.lane.eq(0)
                with m.If(s.left == 0):
                    m.d.sync += [hw.col.eq(0), hw.row.eq(hw.row + 1), s.left.eq(cols)]
                with m.Else():
                    m.d.sync += hw.col.eq(hw.col + lanes)
                with m.If(s.ptr == s.length):
                    self._answer(m, s, Status.OK)
                with m.Else():
                    m.next = "ROWS_LOAD"

    def _take_value(self, m, s, value) -> None:
        """A whole value into the top lane; the slice written when its lanes are full, padded
        when its row or the values end first, else the next value."""
        lanes = s.eng.lanes
        self._shift_lane(m, s, value, 1)
        m.d.sync += s.left.eq(s.left - 1)
        with m.If(s.lane == lanes - 1):
            m.next = "ROWS_WRITE"
        if lanes > 1:
            with m.Elif((s.left == 1) | (s.ptr_next == s.length)):
                m.next = "ROWS_PAD"
        with m.Else():
            m.next = "ROWS_LOAD"

    @staticmethod
    def _shift_lane(m, s, value, mask_bit) -> None:
        """The word's lanes down by one, ``value`` into the top lane and ``mask_bit`` into the
        top bit of its mask; the lane counted."""
        width = s.eng.host_width
        lanes_bits, mask = s.hw.data.as_value(), s.hw.mask
        m.d.sync += [lanes_bits.eq(Cat(lanes_bits[width:], value)),
                     mask.eq(Cat(mask[1:], mask_bit)), s.lane.eq(s.lane + 1)]

    def _answering(self, m, s) -> None:
        """The answer frame: header, the words (READ data from the engine, one request at a
        time, or the counters and INFO), CRC."""
        eng, txu, status = s.eng, s.txu, s.status
        with m.State("RESPOND"):
            m.d.comb += [s.tx_byte.eq(proto.SYNC), txu.i.valid.eq(1)]
            with m.If(txu.i.ready):
                m.d.comb += s.crc_start.eq(1)
                m.d.sync += [s.tx_left.eq(s.ans_len), self.error.eq(status != Status.OK)]
                m.next = "T_LEN0"
        with m.State("T_LEN0"):
            self._send(m, s, s.ans_len[:8], "T_LEN1")
        with m.State("T_LEN1"):
            self._send(m, s, s.ans_len >> 8, "T_STATUS")
        with m.State("T_STATUS"):
            ready = self._send(m, s, proto.RESPONSE | status, "FETCH")
            with m.If(ready & (s.tx_left == 0)):
                m.next = "T_CRC0"
        with m.State("FETCH"):
            with m.If((s.command == Command.READ) & (status == Status.OK)):
                m.d.sync += s.load_left.eq(s.rb)
                m.next = "LOAD"
            with m.Else():
                m.d.sync += [s.sh.eq(_one_hot(*s.words)), s.word.eq(s.word << 1),
                             s.byte_left.eq(4)]
                m.next = "T_BYTES"
        with m.State("REQUEST"):
            m.d.comb += eng.host_read.valid.eq(1)
            with m.If(eng.host_read.ready):
                m.next = "READ_DATA"
        with m.State("READ_DATA"):
            m.d.comb += eng.host_read_data.ready.eq(1)
            with m.If(eng.host_read_data.valid):
                m.d.sync += [s.sh.eq(eng.host_read_data.payload), s.byte_left.eq(s.db)]
                m.next = "T_BYTES"
        with m.State("T_BYTES"):
            ready = self._send(m, s, s.sh[:8], "T_BYTES")
            with m.If(ready):
                m.d.sync += [s.sh.eq(s.sh >> 8), s.tx_left.eq(s.tx_left - 1),
                             s.byte_left.eq(s.byte_left - 1)]
                with m.If(s.tx_left == 1):
                    m.next = "T_CRC0"
                with m.Elif(s.byte_left == 1):
                    m.next = "FETCH"
        with m.State("T_CRC0"):
            self._send(m, s, s.crc[8:], "T_CRC1", update_crc=False)
        with m.State("T_CRC1"):
            self._send(m, s, s.crc[:8], "IDLE", update_crc=False)

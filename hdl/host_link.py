"""The engine behind a UART: the top of a board's design, which a host trains through the framed
protocol of :mod:`intrain.link_spec`."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from intrain import link_spec as proto
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.link_spec import Command, Status

from .engine import Engine
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["HostLink", "make_engine"]


def make_engine(config: Config, dsp: str = "generic") -> Engine:
    """The engine behind the link: ``Engine(config, dsp=dsp)`` with room for one host read in
    flight (the link waits for each answer before it asks for the next)."""
    return Engine(config, dsp=dsp, host_read_depth=1)


def _first(pairs, default=0):
    """The value of the first ``(condition, value)`` whose condition holds: a ``Mux`` chain."""
    result = default
    for cond, value in reversed(pairs):
        result = Mux(cond, value, result)
    return result


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
    request), ``RUN`` pulses ``start``. Every frame gets an answer frame (OK with data, or an
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
        Bytes of the request buffer: the largest ``WRITE`` or ``READ`` payload.
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
        info = self._info
        eng = m.submodules.engine = self._engine
        rxu = m.submodules.uart_rx = UartRx(self._divisor)
        txu = m.submodules.uart_tx = UartTx(self._divisor)
        m.d.comb += [rxu.rx.eq(self.rx), self.tx.eq(txu.tx), self.busy.eq(eng.busy),
                     rxu.o.ready.eq(1)]
        got, byte = rxu.o.valid, rxu.o.payload

        mem = m.submodules.buffer = Memory(shape=8, depth=self._max_payload, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())

        wb, rb, db = info.write_bytes, info.request_bytes, info.data_bytes
        in_bytes = max(wb, rb, proto.RUN_BYTES)
        out_bytes = max(db, 4)

        # Lengths: a request's at most max_payload once its header is checked; an answer's at
        # most the longest READ answer, the counters or INFO.
        max_answer = max((self._max_payload // rb) * db, 4 * 11, proto.INFO_BYTES)
        length = Signal(range(self._max_payload + 1))
        len_lo = Signal(8)
        command = Signal(8)
        status = Signal(3)
        ptr = Signal(range(self._max_payload + 1))
        crc_unit = m.submodules.crc = proto.CRC.create()
        crc = crc_unit.crc
        crc_in = Signal(8)
        crc_en = Signal()
        crc_start = Signal()
        timer = Signal(range(self._timeout + 1))
        quiet = timer == self._timeout
        wmod = Signal(range(max(wb, 2)))
        rmod = Signal(range(max(rb, 2)))
        resp_len = Signal(range(max_answer + 1))
        tx_left = Signal(range(max_answer + 1))
        ptr_next = Signal(range(self._max_payload + 2))
        in_sh = Signal(8 * in_bytes)
        load_left = Signal(range(in_bytes + 1))
        sh = Signal(8 * out_bytes)
        byte_left = Signal(range(out_bytes + 1))
        tx_byte = Signal(8)

        m.d.comb += [wr.addr.eq(ptr), wr.data.eq(byte), rd.addr.eq(ptr), ptr_next.eq(ptr + 1)]
        m.d.comb += [crc_unit.data.eq(crc_in), crc_unit.valid.eq(crc_en),
                     crc_unit.start.eq(crc_start)]
        with m.If(got):
            m.d.sync += timer.eq(0)
        with m.Elif(~quiet):
            m.d.sync += timer.eq(timer + 1)

        # The engine's side: words from the top of the input shift register.
        top = 8 * in_bytes
        run_fields = in_sh[top - 8 * proto.RUN_BYTES:]
        batch, lam, flags = run_fields[:16], run_fields[16:24], run_fields[24:32]
        m.d.comb += [
            eng.host_write.payload.eq(in_sh[top - 8 * wb:][:eng.host_write_layout.size]),
            eng.host_read.payload.eq(in_sh[top - 8 * rb:][:eng.host_read_layout.size]),
            eng.batch.eq(batch),
            eng.lam.eq(lam),
            eng.train.eq(flags[0]),
        ]

        # Answer words other than READ data: the counters (0 .. 10), the engine's tensor CRCs,
        # then INFO. A RUN's answer leaves the UART a word at a time, long after the CRCs settle
        # (TensorCrc.LATENCY cycles after the last write).
        counters = [eng.cycles, eng.mac_cycles, eng.steps]
        counters += [eng.phase_cycles[k] for k in range(4)]
        counters += [eng.phase_mac_cycles[k] for k in range(4)]
        counters += [eng.crcs[k] for k in range(len(eng.geometry.crc_tensors))]
        n_counters = len(counters)
        words = counters + [Const(w, 32) for w in info.words()]
        word = Signal(len(words))  # one-hot: the word FETCH loads next

        # The length of the answer, from the status and the command: the words asked for by a
        # READ (counted while the request came in), INFO, the counters of RUN (unless told not
        # to wait) and COUNTERS; nothing for an error, WRITE, or RUN without waiting.
        ans_len = Signal.like(resp_len)
        m.d.comb += ans_len.eq(Mux(status != Status.OK, 0, _first([
            (command == Command.READ, resp_len),
            (command == Command.INFO, proto.INFO_BYTES),
            (command == Command.COUNTERS, 4 * n_counters),
            ((command == Command.RUN) & ~flags[1], 4 * n_counters),
        ])))

        def answer(code):
            m.d.sync += status.eq(code)
            m.next = "RESPOND"

        def receive(state_next, action=()):
            """A header or CRC byte: into the CRC, then ``state_next``; silence truncates."""
            m.d.comb += crc_in.eq(byte)
            with m.If(got):
                m.d.comb += crc_en.eq(1)
                m.d.sync += list(action)
                m.next = state_next
            with m.Elif(quiet):
                answer(Status.TRUNCATED)

        def send(value, state_next, update_crc=True):
            m.d.comb += [tx_byte.eq(value), txu.i.valid.eq(1), crc_in.eq(tx_byte)]
            with m.If(txu.i.ready):
                if update_crc:
                    m.d.comb += crc_en.eq(1)
                m.next = state_next
            return txu.i.ready

        m.d.comb += txu.i.payload.eq(tx_byte)

        with m.FSM():
            # -- receiving ----------------------------------------------------------------------
            with m.State("IDLE"):
                with m.If(got):
                    m.d.comb += crc_start.eq(1)
                    with m.If(byte == proto.SYNC):
                        m.next = "LEN0"
                    with m.Else():
                        m.d.sync += status.eq(Status.BAD_SYNC)
                        m.next = "DISCARD"
            with m.State("LEN0"):
                receive("LEN1", [len_lo.eq(byte)])
            with m.State("LEN1"):
                receive("CMD", [length.eq(Cat(len_lo, byte))])
                with m.If(got & (Cat(len_lo, byte) > self._max_payload)):
                    m.d.sync += status.eq(Status.BAD_LENGTH)
                    m.next = "DISCARD"
            with m.State("CMD"):
                receive("CRC0", [command.eq(byte), ptr.eq(0), wmod.eq(0), rmod.eq(0),
                                 resp_len.eq(0)])
                with m.If(got & (length != 0)):
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receive("PAYLOAD", [ptr.eq(ptr_next),
                                    wmod.eq(Mux(wmod == wb - 1, 0, wmod + 1)),
                                    rmod.eq(Mux(rmod == rb - 1, 0, rmod + 1))])
                m.d.comb += wr.en.eq(got)
                with m.If(got):
                    with m.If(rmod == rb - 1):
                        m.d.sync += resp_len.eq(resp_len + db)
                    with m.If(ptr_next == length):
                        m.next = "CRC0"
            with m.State("CRC0"):
                receive("CRC1")
            with m.State("CRC1"):
                receive("CHECK")
            with m.State("DISCARD"):
                with m.If(quiet):
                    answer(status)

            # -- executing ----------------------------------------------------------------------
            with m.State("CHECK"):
                m.d.sync += [ptr.eq(0), load_left.eq(Mux(command == Command.RUN,
                                                         proto.RUN_BYTES, wb))]
                with m.If(~crc_unit.match_detected):
                    answer(Status.BAD_CRC)
                with m.Elif(command == Command.INFO):
                    with m.If(length != 0):
                        answer(Status.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += word.eq(1 << n_counters)
                        answer(Status.OK)
                with m.Elif(command == Command.WRITE):
                    with m.If(wmod != 0):
                        answer(Status.BAD_LENGTH)
                    with m.Elif(eng.busy):
                        answer(Status.BUSY)
                    with m.Elif(length == 0):
                        answer(Status.OK)
                    with m.Else():
                        m.next = "LOAD"
                with m.Elif(command == Command.READ):
                    with m.If(rmod != 0):
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
            # A word (or the RUN arguments) from the buffer into in_sh, a byte per two cycles:
            # the read port gives mem[ptr] a cycle after LOAD.
            with m.State("LOAD"):
                m.next = "LOAD_DATA"
            with m.State("LOAD_DATA"):
                m.d.sync += [in_sh.eq(Cat(in_sh[8:], rd.data)), ptr.eq(ptr_next),
                             load_left.eq(load_left - 1)]
                with m.If(load_left == 1):
                    with m.If(command == Command.WRITE):
                        m.next = "WRITE"
                    with m.Elif(command == Command.READ):
                        m.next = "REQUEST"
                    with m.Else():
                        m.next = "START"
                with m.Else():
                    m.next = "LOAD"
            with m.State("WRITE"):
                m.d.comb += eng.host_write.valid.eq(1)
                m.d.sync += load_left.eq(wb)
                with m.If(eng.host_write.ready):
                    with m.If(ptr == length):
                        answer(Status.OK)
                    with m.Else():
                        m.next = "LOAD"
            with m.State("START"):
                with m.If((batch == 0) | (batch > eng.config.batch_size)):
                    answer(Status.BAD_ARGUMENT)
                with m.Else():
                    m.d.comb += eng.start.eq(1)
                    with m.If(flags[1]):
                        answer(Status.OK)
                    with m.Else():
                        m.next = "STARTED"
            with m.State("STARTED"):  # busy rises the cycle after start
                m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(~eng.busy):
                    m.d.sync += word.eq(1)
                    answer(Status.OK)

            # -- answering ----------------------------------------------------------------------
            with m.State("RESPOND"):
                m.d.comb += [tx_byte.eq(proto.SYNC), txu.i.valid.eq(1)]
                with m.If(txu.i.ready):
                    m.d.comb += crc_start.eq(1)
                    m.d.sync += [tx_left.eq(ans_len), self.error.eq(status != Status.OK)]
                    m.next = "T_LEN0"
            with m.State("T_LEN0"):
                send(ans_len[:8], "T_LEN1")
            with m.State("T_LEN1"):
                send(ans_len >> 8, "T_STATUS")
            with m.State("T_STATUS"):
                ready = send(proto.RESPONSE | status, "FETCH")
                with m.If(ready & (tx_left == 0)):
                    m.next = "T_CRC0"
            with m.State("FETCH"):
                with m.If((command == Command.READ) & (status == Status.OK)):
                    m.d.sync += load_left.eq(rb)
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += [sh.eq(_one_hot(word, words)), word.eq(word << 1),
                                 byte_left.eq(4)]
                    m.next = "T_BYTES"
            with m.State("REQUEST"):
                m.d.comb += eng.host_read.valid.eq(1)
                with m.If(eng.host_read.ready):
                    m.next = "READ_DATA"
            with m.State("READ_DATA"):
                m.d.comb += eng.host_read_data.ready.eq(1)
                with m.If(eng.host_read_data.valid):
                    m.d.sync += [sh.eq(eng.host_read_data.payload), byte_left.eq(db)]
                    m.next = "T_BYTES"
            with m.State("T_BYTES"):
                ready = send(sh[:8], "T_BYTES")
                with m.If(ready):
                    m.d.sync += [sh.eq(sh >> 8), tx_left.eq(tx_left - 1),
                                 byte_left.eq(byte_left - 1)]
                    with m.If(tx_left == 1):
                        m.next = "T_CRC0"
                    with m.Elif(byte_left == 1):
                        m.next = "FETCH"
            with m.State("T_CRC0"):
                send(crc[8:], "T_CRC1", update_crc=False)
            with m.State("T_CRC1"):
                send(crc[:8], "IDLE", update_crc=False)
        return m

"""The engine's sequencer: which job runs on which layer, from the start of a run to its end."""

from __future__ import annotations

import contextlib

from amaranth import Module, Mux, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from .._util import delay, select

__all__ = ["Job", "Sequencer", "State"]


class State(enum.Enum, shape=2):
    IDLE = 0
    ISSUE = 1   # the job's stage issues its reads
    DRAIN = 2   # every read is issued; the job's last write is awaited


class Job(enum.Enum, shape=4):
    FORWARD = 0
    GRADIENT = 1
    BACKWARD = 2
    ARGMAX = 3
    OUTPUT_ERROR = 4
    ERROR = 5
    UPDATE = 6
    FAULT = 7
    REGRAD = 8   # a recomputed gradient job: its rows go straight into the update
    POOL = 9     # a pooled convolution's pool pass (after its forward job)
    UNPOOL = 10  # its error routed back to the pool's inputs (before its gradient job)


#: The write-back's kind set when a job is entered (the kind of results it then expects); the
#: other jobs leave it. A gradient job's write-back turns to BACKWARD itself (``wr_end``).
WRITE_KIND_ON_ENTRY = {Job.FORWARD: Job.FORWARD, Job.GRADIENT: Job.GRADIENT,
                       Job.UNPOOL: Job.GRADIENT, Job.UPDATE: Job.REGRAD, Job.REGRAD: Job.REGRAD}


#: The tiles of an array job of each kind: ``(rows, columns, K)`` from the layer's ``n_in`` and
#: ``n_out`` and the run's batch (the table in :class:`Engine`'s documentation).
TILE_LIMITS = {
    Job.FORWARD: lambda n_in, n_out, n_batch: (n_out, n_batch, n_in),
    Job.GRADIENT: lambda n_in, n_out, n_batch: (n_out, n_in, n_batch),
    Job.REGRAD: lambda n_in, n_out, n_batch: (n_out, n_in, n_batch),
    Job.BACKWARD: lambda n_in, n_out, n_batch: (n_batch, n_in, n_out),
}


class Sequencer(wiring.Component):
    """The jobs of a run, as a transition table (:meth:`transitions`).

    A run (``start`` while idle) samples ``batch`` (0 runs 1 sample, more than ``batch_size``
    runs ``batch_size``), ``train`` and ``lam``, and starts the forward job of layer 0. Each job
    is issued (``ISSUE``) until its stage reports its last read (``issue_end``), then drained
    (``DRAIN``) until its last write (``finished``, registered first: the next job starts
    :attr:`SWITCH_LATENCY` cycles after it); the table then picks the next job and
    layer, or ends the run (``done`` for one cycle; a training step also counts ``steps``). A
    gradient job of a layer above the first is followed, in the same stream of tiles, by the
    layer's backward job: its ``issue_end`` turns the job into BACKWARD without a drain, and the
    write-back's ``wr_end`` turns ``wr_kind`` the same way when its last gradient row is written.

    Parameters
    ----------
    geometry : EngineGeometry
        The layers, the batch size, the pooled and recomputed layers and the fault pass.

    Members
    -------
    start, batch, train, lam : ``In``
        The run's request (as the engine's ports).
    issue_end : ``In(1)``
        The job's last read is issued this cycle.
    finished : ``In(1)``
        The job's last result is written this cycle.
    wr_end : ``In(1)``
        The write-back's job's last tile is written this cycle.
    state : ``Out(State)``
    job : ``Out(Job)``
    layer : ``Out(range(n_layers))``
    n_in, n_out : ``Out``
        The layer's sizes, registered with ``layer`` (set with it when a job starts, so that
        the stages' limits start from flip-flops rather than a multiplexer of ``layer``).
    iss_limits, wr_limits : ``Out(data.StructLayout({"nr", "nc", "nk"}))``
        The tiles' rows, columns and K (:data:`TILE_LIMITS`) of the array job being issued
        and of the one being written back (``wr_kind``), registered: loaded with the job, and
        turned to the backward job's with it.
    wr_kind : ``Out(Job)``
        The kind of results the write-back expects.
    n_batch, training, lam_run : ``Out``
        The run's samples, mode and learning-rate exponent.
    regrad, layer_pooled, below_pooled : ``Out(1)``
        The layer's gradient is recomputed; the layer's convolution is pooled; the layer
        below's is (combinational, from ``layer``).
    run_start : ``Out(1)``
        A run starts this cycle (combinational).
    advance : ``Out(1)``
        A job ends this cycle (combinational: ``DRAIN`` and the registered ``finished``).
    done : ``Out(1)``
        The run ended (one cycle after its last job).
    steps : ``Out(steps_bits)``
        Training steps completed since reset.
    """

    #: Cycles from a job's last write (``finished``) to the cycle that switches to the next job:
    #: the end is registered, so that the write-back's compares and the next job's limits and
    #: state are not one path. The cycle model adds it per job.
    SWITCH_LATENCY = 1

    def __init__(self, geometry, steps_bits):
        cfg = geometry.config
        self._n_layers = len(cfg.plan)
        self._n_in = [p.n_in for p in cfg.plan]
        self._n_out = [p.n_out for p in cfg.plan]
        self._batch_size = cfg.batch_size
        self._pooled = sorted(geometry.pooled)
        self._recomputed = sorted(geometry.recomputed)
        self._faults = geometry.fault_plan is not None
        bs = cfg.batch_size
        limits = data.StructLayout({
            "nr": range(max([bs] + self._n_out) + 1), "nc": range(max([bs] + self._n_in) + 1),
            "nk": range(max([bs] + self._n_in + self._n_out) + 1)})
        super().__init__({
            "start": In(1),
            "batch": In(range(cfg.batch_size + 1)),
            "train": In(1),
            "lam": In(signed(8)),
            "issue_end": In(1),
            "finished": In(1),
            "wr_end": In(1),
            "state": Out(State),
            "job": Out(Job),
            "layer": Out(range(self._n_layers)),
            "n_in": Out(range(max(self._n_in) + 1)),
            "n_out": Out(range(max(self._n_out) + 1)),
            "iss_limits": Out(limits),
            "wr_limits": Out(limits),
            "wr_kind": Out(Job),
            "n_batch": Out(range(cfg.batch_size + 1)),
            "training": Out(1),
            "lam_run": Out(signed(8)),
            "regrad": Out(1),
            "layer_pooled": Out(1),
            "below_pooled": Out(1),
            "run_start": Out(1),
            "advance": Out(1),
            "done": Out(1),
            "steps": Out(steps_bits),
        })

    def transitions(self):
        """Per job, the rules tried in order when it ends: ``(condition, next job, layer)``
        with ``next job`` None for the end of the run and ``layer`` ``"same"``, ``"up"``,
        ``"down"`` or ``"last"``."""
        layer, first = self.layer, self.layer == 0
        last = self.layer == self._n_layers - 1
        end_of_step = [(1, Job.FAULT, "last")] if self._faults else [(1, None, "same")]
        return {
            Job.FORWARD: [(last, Job.ARGMAX, "same"), (self.layer_pooled, Job.POOL, "same"),
                          (1, Job.FORWARD, "up")],
            Job.POOL: [(1, Job.FORWARD, "up")],
            Job.ARGMAX: [(self.training, Job.OUTPUT_ERROR, "same"), (1, None, "same")],
            Job.OUTPUT_ERROR: [(1, Job.GRADIENT, "last")],
            Job.UNPOOL: [(1, Job.GRADIENT, "same")],
            Job.GRADIENT: [(self.regrad, Job.REGRAD, "same"), (1, Job.UPDATE, "same")],
            Job.ERROR: [(self.regrad, Job.REGRAD, "same"), (1, Job.UPDATE, "same")],
            Job.BACKWARD: [(1, Job.ERROR, "same")],
            Job.UPDATE: [(~first & self.below_pooled, Job.UNPOOL, "down"),
                         (~first, Job.GRADIENT, "down"), *end_of_step],
            Job.REGRAD: [(~first & self.below_pooled, Job.UNPOOL, "down"),
                         (~first, Job.GRADIENT, "down"), *end_of_step],
            **({Job.FAULT: [(layer != 0, Job.FAULT, "down"), (1, None, "same")]}
               if self._faults else {}),
        }

    def elaborate(self, platform):
        m = Module()
        state, job, layer = self.state, self.job, self.layer
        finished = delay(m, self.finished, self.SWITCH_LATENCY, "finished")
        m.d.comb += [
            self.regrad.eq(select(layer, [(j - 1, 1) for j in self._recomputed])),
            self.layer_pooled.eq(select(layer, [(j, 1) for j in self._pooled])),
            self.below_pooled.eq(select(layer, [(j + 1, 1) for j in self._pooled])),
            self.run_start.eq((state == State.IDLE) & self.start),
            self.advance.eq((state == State.DRAIN) & finished),
        ]
        m.d.sync += self.done.eq(0)
        backward = (Job.BACKWARD, self.n_in, self.n_out, self.n_batch)
        with m.If(self.wr_end & (self.wr_kind == Job.GRADIENT) & (layer != 0)):
            m.d.sync += [self.wr_kind.eq(Job.BACKWARD), *_load(self.wr_limits, *backward)]
        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(self.start):
                    n_batch = Mux(self.batch == 0, 1,
                                  Mux(self.batch > self._batch_size, self._batch_size, self.batch))
                    self._enter(m, Job.FORWARD, "first", n_batch)
                    m.d.sync += [self.training.eq(self.train), self.lam_run.eq(self.lam),
                                 self.n_batch.eq(n_batch)]
            with m.Case(State.ISSUE):
                with m.If(self.issue_end):
                    with m.If((job == Job.GRADIENT) & (layer != 0)):
                        m.d.sync += [job.eq(Job.BACKWARD), *_load(self.iss_limits, *backward)]
                    with m.Else():
                        m.d.sync += state.eq(State.DRAIN)
            with m.Case(State.DRAIN):
                with m.If(finished):
                    self._next_job(m)
        return m

    def _layer_of(self, where):
        return {"up": self.layer + 1, "down": self.layer - 1, "last": self._n_layers - 1,
                "first": 0}[where]

    def _size_of(self, sizes, where):
        """``sizes`` of the layer ``where`` (a multiplexer of the current layer, or a constant)."""
        if where == "last":
            return sizes[-1]
        if where == "first":
            return sizes[0]
        shift = 1 if where == "up" else -1
        return select(self.layer, [(j, sizes[j + shift]) for j in range(len(sizes))
                                   if 0 <= j + shift < len(sizes)])

    def _next_job(self, m):
        """The transition table at the end of a job."""
        with m.Switch(self.job):
            for kind, rules in self.transitions().items():
                with m.Case(kind):
                    self._apply_rules(m, kind, rules)

    def _apply_rules(self, m, kind, rules):
        """``m.If``/``m.Elif`` per rule; the last, which always applies, as ``m.Else`` (or
        alone), so that no case of the Verilog is a constant."""
        *guarded, (_, last_next, last_where) = rules
        for n, (cond, nxt, where) in enumerate(guarded):
            with (m.If(cond) if n == 0 else m.Elif(cond)):
                self._follow(m, kind, nxt, where)
        with (m.Else() if guarded else contextlib.nullcontext()):
            self._follow(m, kind, last_next, last_where)

    def _follow(self, m, kind, nxt, where):
        """Statements of one rule: the next job, or the end of the run."""
        if nxt is None:
            m.d.sync += [self.state.eq(State.IDLE), self.done.eq(1)]
            if kind is not Job.ARGMAX:   # the end of a training step
                m.d.sync += self.steps.eq(self.steps + 1)
        else:
            self._enter(m, nxt, where)

    def _enter(self, m, kind, where, n_batch=None):
        """Statements that start job ``kind`` on the layer ``where`` (``"same"``, ``"up"``,
        ``"down"``, ``"last"`` or ``"first"``): its sizes, and the limits of its tiles and of
        the write-back's (``n_batch``: the run's, where the run starts)."""
        m.d.sync += [self.state.eq(State.ISSUE), self.job.eq(kind)]
        n_in, n_out = self.n_in, self.n_out
        if where != "same":
            n_in, n_out = self._size_of(self._n_in, where), self._size_of(self._n_out, where)
            m.d.sync += [self.layer.eq(self._layer_of(where)), self.n_in.eq(n_in),
                         self.n_out.eq(n_out)]
        n_batch = self.n_batch if n_batch is None else n_batch
        if kind in TILE_LIMITS:
            m.d.sync += _load(self.iss_limits, kind, n_in, n_out, n_batch)
        if kind in WRITE_KIND_ON_ENTRY:
            wr_kind = WRITE_KIND_ON_ENTRY[kind]
            m.d.sync += self.wr_kind.eq(wr_kind)
            if wr_kind in TILE_LIMITS:
                m.d.sync += _load(self.wr_limits, wr_kind, n_in, n_out, n_batch)


def _load(limits, kind, n_in, n_out, n_batch) -> list:
    """Statements that set ``limits`` to the tiles of an array job ``kind``."""
    nr, nc, nk = TILE_LIMITS[kind](n_in, n_out, n_batch)
    return [limits.nr.eq(nr), limits.nc.eq(nc), limits.nk.eq(nk)]

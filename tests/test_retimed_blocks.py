# amaranth: UnusedElaboratable=no
"""Latency is data: each post-processing block declares its latency (``LATENCY``), the engine
delays its side signals by it and the cycle model adds it. A block retimed here (one more
register on its output stream, and its constant raised by one) must leave the engine bit-exact
against the golden model with the cycle counts the geometry predicts, with no other edit."""

from __future__ import annotations

import pytest
from amaranth import Module
from amaranth.lib import wiring
from engine_helpers import train_checked

from intrain.config import Config
from intrain.hdl.engine import EngineGeometry
from intrain.hdl.log2round import Log2Round
from intrain.hdl.max_abs import MaxAbs
from intrain.hdl.shift_quantizer import ShiftQuantizer
from intrain.hdl.stochastic_rounder import StochasticRounder
from intrain.hdl.weight_updater import WeightUpdater

BLOCKS = {cls.__name__: cls
          for cls in (ShiftQuantizer, StochasticRounder, WeightUpdater, MaxAbs, Log2Round)}


def _twin(component):
    """A component of the same class and parameters as ``component``, with ports of its own."""
    twin = object.__new__(type(component))
    members = component.signature.members
    twin.__dict__.update({k: v for k, v in component.__dict__.items()
                          if k not in members and k != "_Component__signature"})
    wiring.Component.__init__(twin, component.signature)
    twin._retimed_inner = True
    return twin


def retime(monkeypatch, cls):
    """Give every ``cls`` one more register after its output stream and ``LATENCY + 1``."""
    elaborate = cls.elaborate

    def retimed(self, platform):
        if getattr(self, "_retimed_inner", False):
            return elaborate(self, platform)
        m = Module()
        inner = m.submodules.inner = _twin(self)
        for name in self.signature.members:
            if name not in ("i", "o"):   # a run-time shift: with the element, as before
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [inner.i.valid.eq(self.i.valid), inner.i.payload.eq(self.i.payload),
                     self.i.ready.eq(inner.i.ready), inner.o.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(inner.o.valid), self.o.payload.eq(inner.o.payload)]
        return m

    monkeypatch.setattr(cls, "elaborate", retimed)
    monkeypatch.setattr(cls, "LATENCY", cls.LATENCY + 1)


# Three layers with the first gradient recomputed: QA, both QE passes, the update pass and the
# REGRAD job's updates, two maxima; 3 lanes.
MLP = Config(layers=(7, 5, 4, 3), array_rows=2, array_cols=3, batch_size=4, rng_lanes=4,
             recompute_gradients=(1,), seed=3)
# A convolution, a 2x2 max pool (its QA) and the classifier.
CONV = Config(layers="1x4x6,3C3,MP2,4", array_rows=2, array_cols=4, batch_size=2, rng_lanes=4)


def check_retimed(config, batches):
    dut, trainer, runs = train_checked(config, len(batches), batches=batches)
    assert trainer.checked_steps == len(batches)   # every tensor's CRC, then read back
    for batch, counters in runs:
        assert counters["cycles"] == dut.geometry.train_cycles(batch)
        assert counters["mac_cycles"] == dut.geometry.train_macs(batch)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_retimed_block_keeps_the_engine_bit_exact_and_its_cycle_model_right(monkeypatch, name):
    before = EngineGeometry(MLP).train_cycles(MLP.batch_size)
    retime(monkeypatch, BLOCKS[name])
    after = EngineGeometry(MLP).train_cycles(MLP.batch_size)
    assert after > before   # the model counted the block's new latency
    check_retimed(MLP, [MLP.batch_size, 3])


def test_retimed_quantizers_keep_the_pool_pass_bit_exact(monkeypatch):
    for cls in BLOCKS.values():
        retime(monkeypatch, cls)
    check_retimed(CONV, [CONV.batch_size, 1])


def test_a_block_retimed_without_its_constant_breaks_the_step(monkeypatch):
    """The check above can fail: the same register without the constant is caught."""
    retime(monkeypatch, WeightUpdater)
    monkeypatch.setattr(WeightUpdater, "LATENCY", WeightUpdater.LATENCY - 1)
    with pytest.raises(Exception, match="CRC|differ|expected"):
        check_retimed(MLP, [MLP.batch_size])

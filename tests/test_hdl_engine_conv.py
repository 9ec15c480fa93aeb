# amaranth: UnusedElaboratable=no
"""Engine: convolution layers against the golden model. Training steps run through the host
driver and the checked trainer that users run (:class:`CheckedTrainer`), with every tensor read
back and compared element by element after every step (``check_every=1``) as well as by CRC;
the cycle and MAC counters equal the geometry's cycle model."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import random_batch, train_checked

from intrain.config import Config, LayerPlan
from intrain.errors import ConfigError
from intrain.golden.model import GoldenModel
from intrain.hdl.engine import EngineGeometry

CONFIGS = {
    # kernel 3, c_in = 1, conv then FC, batch > 1, array wider than an image row
    "k3_cin1": Config(layers="1x4x4,3C3,4", array_rows=2, array_cols=3, batch_size=2,
                      rng_lanes=4),
    # kernel 1 (no padding), c_in > 1 from the input, batch 1
    "k1_cin2": Config(layers="2x3x3,3C1,2", array_rows=2, array_cols=2, batch_size=1,
                      rng_lanes=2),
    # kernel 5 with two convolutions (conv into conv: transposed conv to a c_in > 1 layer)
    "k5_conv_conv": Config(layers="1x5x5,2C5,3C3,3", array_rows=3, array_cols=2,
                           batch_size=2, rng_lanes=3),
    # conv, conv, FC, FC on a square array (rows = cols) and a kernel of 3
    "k3_deep": Config(layers="2x4x3,4C3,2C3,5,3", array_rows=2, array_cols=2, batch_size=3,
                      rng_lanes=2),
    # a 2x2 pool into the classifier (image rows wider than a slice: 6 positions, 4 lanes)
    "k3_pool_fc": Config(layers="1x4x6,3C3,MP2,4", array_rows=2, array_cols=4, batch_size=2,
                         rng_lanes=4),
    # a 3x3 pool (slices of 3 lanes: one window each); a one-channel convolution after a pool
    # (its gradient by kernel rows reads the pooled positions)
    "k3_pool3": Config(layers="1x6x6,2C3,MP3,3", array_rows=3, array_cols=3, batch_size=2,
                       rng_lanes=3),
    "k3_pool_row_taps": Config(layers="1x4x4,1C3,MP2,2C3,3", array_rows=2, array_cols=3,
                               batch_size=2, rng_lanes=3),
    # pool into a convolution, then a pool into the classifier (conv, pool, conv, pool, FC)
    "k3_pool_conv_pool": Config(layers="2x4x4,3C3,MP2,4C1,MP2,3", array_rows=3, array_cols=3,
                                batch_size=2, rng_lanes=3),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_conv_training_steps_match_golden_in_every_element(name):
    config = CONFIGS[name]
    batches = [config.batch_size, 1, config.batch_size]
    dut, trainer, runs = train_checked(config, len(batches), batches=batches)
    assert trainer.checked_steps == len(batches)
    n = len(config.plan)
    assert trainer.checks["readback_tensors"] == len(batches) * (2 * n + 2)
    for batch, counters in runs:
        assert counters["cycles"] == dut.geometry.train_cycles(batch)
        assert counters["mac_cycles"] == dut.geometry.train_macs(batch)


def test_conv_weights_change_and_the_draws_follow_the_stored_order(monkeypatch):
    """A layer with c_in > 1 stores its weights channel-last and the golden model rounds each
    weight with the draw of its stored column: the engine's steps above match it, the weights
    move, and the other order gives other weights (so the check above would catch it)."""
    config = CONFIGS["k1_cin2"]
    _, trainer, _ = train_checked(config, 2)
    start = GoldenModel(config).weights
    assert any((w != w0).any() for w, w0 in zip(trainer.golden.weights, start))
    deep = CONFIGS["k3_deep"].plan[1]
    assert deep.stored_columns[:4] == (0, 9, 18, 27)
    assert sorted(deep.stored_columns) == list(range(deep.n_in))

    def trained(cfg):
        model, rng = GoldenModel(cfg), np.random.default_rng(7)
        for _ in range(3):
            a0, labels = random_batch(cfg, rng, cfg.batch_size)
            model.train_step(a0, labels, lam=0)
        return model.weights

    ours = trained(CONFIGS["k3_deep"])
    monkeypatch.setattr(LayerPlan, "stored_columns", property(lambda self: None))
    other = trained(CONFIGS["k3_deep"])
    assert (ours[1] != other[1]).any()


def test_a_pool_wider_than_the_slices_gets_a_clear_error():
    with pytest.raises(ConfigError, match="the 2x2 max-pool of layer 1 needs an array of at "
                                          "least 2 rows or columns"):
        EngineGeometry(Config(layers="1x4x4,2C3,MP2,3", array_rows=1, array_cols=1,
                              batch_size=2))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_conv_element_is_in_exactly_one_crc_word(name):
    geo = EngineGeometry(CONFIGS[name])
    for batch in sorted({1, geo.config.batch_size}):
        for tensor in geo.crc_tensors:
            rows, cols = geo.matrix_shape(tensor, batch)
            seen = np.zeros((rows, cols), dtype=int)
            for r0, c0, dr, dc, n in geo.crc_layout(tensor, batch):
                for k in range(n):
                    seen[r0 + k * dr, c0 + k * dc] += 1
            assert (seen == 1).all(), (tensor, batch)

"""The configuration object: defaults, derived constants, validation messages, files."""

import json

import pytest

from intrain.config import Bits, Config
from intrain.errors import ConfigError


def test_default_plan_matches_the_spec_constants():
    c = Config()
    p1, p2 = c.plan
    # alpha = Shift(0.75 / sqrt(3/64)) = 2**round(log2 3.46) = 4; for n_in = 256: 8.
    assert (p1.alpha_log2, p2.alpha_log2) == (2, 3)
    # s_l = (kW - 1) + log2(alpha) for ternary weights; real acc value = acc * 2**-(7 + s_l).
    assert (p1.qa_shift, p2.qa_shift) == (3, 4)
    assert (p1.out_shift, p2.out_shift) == (10, 11)
    assert p2.label == 2**11
    assert (p1.w_max, p1.t_max, p1.t_shift, p1.a_max, p1.e_max) == (64, 1, 6, 127, 127)
    assert p2.last and not p1.last
    assert p1.init_limit == 0.75


def test_full_int8_and_paper_clip():
    c = Config(bits="8-8-8-8")
    p = c.plan[0]
    assert (p.t_shift, p.t_max, p.w_max, p.alpha_log2, p.qa_shift) == (0, 127, 127, 0, 7)
    assert Config(weight_clip="paper").plan[0].w_max == 127


def test_per_layer_bits_and_parsing():
    c = Config(layers=(8, 4, 2), bits=("2-8-8-8", "8-8-8-8"))
    assert [str(b) for b in c.bits] == ["2-8-8-8", "8-8-8-8"]
    assert c.plan[1].in_bits == 8
    assert Bits.parse("3-6-10-5") == Bits(3, 6, 10, 5)


def test_accumulator_widths_grow_with_fan_in_and_batch():
    small = Config(layers=(64, 10), batch_size=1).plan[0]
    big = Config(layers=(4096, 10), batch_size=512).plan[0]
    assert big.acc_bits_forward > small.acc_bits_forward
    assert big.acc_bits_gradient > small.acc_bits_gradient
    # 127 * 127 * 512 = 8,258,048 < 2**23: 23 bits of magnitude plus a sign.
    assert big.acc_bits_gradient == 24


@pytest.mark.parametrize("kwargs, match", [
    (dict(layers=(64,)), "layers must list at least two"),
    (dict(layers=(64, 0, 10)), r"layers\[1\] must be an integer from 1 to 65536, not 0"),
    (dict(bits="2-8-8"), "bits must look like W-A-G-E"),
    (dict(bits="1-8-8-8"), "bits.w must be an integer from 2 to 8, not 1"),
    (dict(bits="4-8-3-8"), "bits.g must be an integer from 4 to 16, not 3"),
    (dict(bits=("2-8-8-8",) * 3), "one W-A-G-E per weight layer"),
    (dict(batch_size=0), "batch_size must be an integer from 1 to 4096, not 0"),
    (dict(epochs=-1), "epochs must be an integer from 1 to 100000"),
    (dict(lr_schedule=((1, 0),)), "lr_schedule must start at epoch 0"),
    (dict(lr_schedule=((0, 0), (5, -1), (5, -2))), "lr_schedule epochs must increase"),
    (dict(lr_schedule=((0, 40),)), r"lr_schedule\[0\].lam must be an integer from -16 to 16"),
    (dict(lr_schedule="abc"), "lr schedule must look like"),
    (dict(weight_clip="both"), "weight_clip must be 'code' or 'paper'"),
    (dict(rng_lanes=0), "rng_lanes must be an integer from 1 to 4096"),
    (dict(rng_lanes=2, rng_seeds=(1, 0)), r"rng_seeds\[1\] must be an integer from 1 to"),
    (dict(rng_lanes=2, rng_seeds=(5, 5)), "rng_seeds must be distinct"),
    (dict(rng_lanes=2, rng_seeds=(5,)), "one seed per lane"),
    (dict(layers=(4096, 4096, 10), batch_size=4096, acc_bits=24), "acc_bits must be at least"),
    (dict(array_rows=0), "array_rows must be an integer from 1 to 256"),
    (dict(seed=-1), "seed must be an integer from 0"),
    (dict(recompute_gradients=(3,)), r"recompute_gradients\[0\] must be an integer from 1 to 2"),
    (dict(recompute_gradients=(1, 1)), "names a layer twice"),
    (dict(phase_counters="no"), "phase_counters must be true or false"),
    (dict(recompute_gradients="1"), "must be a list of layer numbers"),
    (dict(recompute_gradients=(1,), rng_lanes=4), "needs rng_lanes >= array_cols"),
    (dict(layers="1x8x8,4C3,10", recompute_gradients=(1,)), "layer 1 is a convolution"),
    (dict(spram="W1,A0"), "spram: 'W1,A0' is not a memory"),
    (dict(spram=("G1",)), "choose from A0, W1, W2"),
    (dict(spram=("W1",)), r"needs its layer's gradient recomputed \(recompute_gradients"),
    (dict(spram=("W1",), recompute_gradients=(1,)), "needs a 1x1 array and a batch of at least"),
    (dict(spram=("W1",), recompute_gradients=(1,), array_rows=1, array_cols=1, batch_size=1),
     "needs a 1x1 array and a batch of at least 2"),
    (dict(spram=("W1",), recompute_gradients=(1,), array_rows=1, array_cols=1,
          bit_error_rate=1e-6), "cannot take memory faults"),
    (dict(spram=("A0", "A0")), "names a memory twice"),
    (dict(spram=(1,)), "spram must be a list of memory names"),
    (dict(layers="1x8x8,4C3,10", spram=("A0",)), "A0 of a convolution"),
])
def test_invalid_values_name_the_field_and_the_range(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Config(**kwargs)


def test_string_forms_of_layers_and_schedule():
    c = Config(layers="64,32,10", lr_schedule="0:1,10:0")
    assert c.layers == (64, 32, 10) and c.lr_schedule == ((0, 1), (10, 0))
    assert [c.lam_at(e) for e in (0, 9, 10, 99)] == [1, 1, 0, 0]
    assert Config(lr_schedule="-2").lr_schedule == ((0, -2),)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_and_load_give_the_same_config(tmp_path, suffix):
    c = Config(layers=(10, 7, 3), bits=("8-8-8-8", "2-8-8-8"), batch_size=5, seed=11,
               lr_schedule=((0, 1), (3, -1)), weight_clip="paper", rng_lanes=3)
    path = tmp_path / f"c{suffix}"
    c.save(path)
    back = Config.load(path)
    assert back == c
    assert back.to_dict() == c.to_dict()


def test_derived_seeds_are_saved_and_a_new_seed_derives_new_ones():
    c = Config(seed=3)
    assert c.to_dict()["rng_seeds"] == list(c.rng_seeds)
    assert c.replace(seed=4).rng_seeds != c.rng_seeds
    assert c.replace(epochs=2).rng_seeds == c.rng_seeds


def test_bad_config_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("layers = [64, 10\n")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        Config.load(bad)
    unknown = tmp_path / "u.json"
    unknown.write_text(json.dumps({"layers": [4, 2], "speed": 3}))
    with pytest.raises(ConfigError, match="unknown configuration field.*speed"):
        Config.load(unknown)
    wrong = tmp_path / "w.json"
    wrong.write_text(json.dumps({"batch_size": "many"}))
    with pytest.raises(ConfigError, match="w.json: batch_size must be an integer"):
        Config.load(wrong)
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="must end in .toml or .json"):
        Config().save(tmp_path / "c.yaml")


def test_lane_layout_counts_draws_per_row_chunk():
    c = Config(layers=(10, 4, 3), rng_lanes=4)
    # 10 inputs in chunks of 4 lanes: 3 chunks per row, 4 rows.
    assert c.draws_per_update(c.plan[0]) == 12
    assert c.draws_per_update(c.plan[1]) == 3


def test_recomputed_layers_draw_once_per_row_of_an_array_tile():
    c = Config(layers=(10, 5, 3), array_rows=2, array_cols=4, rng_lanes=4,
               recompute_gradients=[2, 1])
    assert c.recompute_gradients == (1, 2)
    # Rows of 2-row tiles, 3 column blocks of 4: each row of a tile draws once.
    assert c.draws_per_update(c.plan[0]) == 5 * 3
    index = c.recompute_draws(c.plan[0])
    assert index.shape == (5, 3)
    assert sorted(index.ravel()) == list(range(15))      # every draw used once
    assert index[:2].tolist() == [[0, 2, 4], [1, 3, 5]]   # tile (rows 0-1, cols 0-3), then 4-7
    assert index[4].tolist() == [12, 13, 14]             # the last row block has one row
    again = Config.from_dict(c.to_dict())
    assert again == c and again.to_dict()["recompute_gradients"] == [1, 2]
    assert "recompute_gradients" not in Config().to_dict()


def test_spram_round_trips_and_follows_the_recomputed_layers():
    c = Config(layers=(10, 5, 3), array_rows=1, array_cols=1, batch_size=4,
               recompute_gradients=[1], spram=["W1", "A0"])
    assert c.spram == ("W1", "A0")
    assert Config.from_dict(c.to_dict()) == c and c.to_dict()["spram"] == ["W1", "A0"]
    assert "spram" not in Config().to_dict()
    # Storing the gradient again takes its weights out of single-port RAM, not the input.
    assert c.with_recompute(()).spram == ("A0",)
    assert c.with_recompute((1, 2)).spram == ("W1", "A0")


# ------------------------------------------------------------------------------------------------
# Convolutional networks in the WAGE notation
def test_wage_notation_gives_conv_pool_and_fc_layers():
    c = Config(layers="1x28x28, 32c5,MP2,64C5,mp2,512,10")
    assert c.layers == ("1x28x28", "32C5", "MP2", "64C5", "MP2", 512, 10)
    assert c.has_conv and c.input_shape == (1, 28, 28) and c.n_inputs == 784
    conv1, conv2, fc1, fc2 = c.plan
    # SPEC 4b: a convolution's weights are c_out rows of c_in * k * k.
    assert (conv1.n_in, conv1.n_out, conv1.kernel, conv1.pool) == (25, 32, 5, 2)
    assert (conv2.n_in, conv2.in_shape, conv2.out_shape) == (800, (32, 14, 14), (64, 7, 7))
    assert (fc1.n_in, fc1.conv, fc1.out_shape) == (64 * 7 * 7, False, (512,))
    assert (fc2.n_in, fc2.n_out) == (512, 10)
    # alpha from n_in = c_in*k*k: 3 * 25 / 16 -> Shift(sqrt 4.69) = 2; 3 * 800 / 16 -> 16.
    assert (conv1.alpha_log2, conv2.alpha_log2) == (1, 4)
    assert c.draws_per_update(conv2) == 64 * 100
    # A convolutional network's default schedule starts one step lower.
    assert c.lr_schedule == ((0, 1), (30, 0), (50, -1), (65, -2), (75, -3))
    assert Config().lr_schedule == ((0, 2), (30, 1), (50, 0), (65, -1))
    assert Config(layers="1x8x8,4C3,10", lr_schedule="0").lr_schedule == ((0, 0),)
    assert c.n_weights == 32 * 25 + 64 * 800 + 3136 * 512 + 512 * 10


def test_conv_accumulator_widths_count_kernel_and_positions():
    c = Config(layers="3x8x8,4C3,MP2,10", batch_size=16)
    p = c.plan[0]
    assert p.acc_bits_forward == (27 * 127).bit_length() + 1
    assert p.acc_bits_backward == (4 * 9 * 127).bit_length() + 1
    # One nonzero error per pool window: 16 samples x 4 x 4 windows.
    assert p.acc_bits_gradient == (16 * 16 * 127 * 127).bit_length() + 1


def test_fully_connected_networks_keep_plain_sizes():
    c = Config(layers="1x8x8,256,10")  # an input shape without a convolution
    assert c.layers == (64, 256, 10) and not c.has_conv and c.input_shape is None
    assert c.plan == Config(layers=(64, 256, 10)).plan and c.n_inputs == 64
    assert Config(layers=["64", "32", 10]).layers == (64, 32, 10)


@pytest.mark.parametrize("layers, match", [
    ("1x8x8,16C4,10", r"16C4 \(item 2\): the kernel must be odd"),
    ("1x8x8,16C3,MP3,10", r"MP3 \(item 3\): a 3x3 pool does not divide the 8x8 output of 16C3"),
    ("1x8x8,MP2,10", r"MP2 \(item 2\): a max-pool must follow a convolution"),
    ("1x8x8,4C3,MP2,MP2,10", r"MP2 \(item 4\): a max-pool must follow a convolution"),
    ("1x8x8,4C3,MP1,10", "a max-pool must be at least 2x2"),
    ("64,16C3,10", r"16C3 \(item 2\): a convolution needs images"),
    ("1x8x8,32,4C3,10", r"4C3 \(item 3\): a convolution needs images"),
    ("64,1x8x8,10", r"1x8x8 \(item 2\): the input shape must come first"),
    ("16C3,10", "the first item must be the input"),
    ("1x8x8,4C3", "the last layer must be fully connected"),
    ("1x8x8,0C3,10", r"layers\[1\] \(0C3\) must be an integer from 1"),
    ("1x8x8,3Q3,10", "not '3Q3'"),
])
def test_bad_network_specs_name_the_layer(layers, match):
    with pytest.raises(ConfigError, match=match):
        Config(layers=layers)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_conv_networks_save_and_load(tmp_path, suffix):
    c = Config(layers="1x8x8,16C3,MP2,32C3,MP2,10", bits=("8-8-8-8", "2-8-8-8", "2-8-8-8"))
    path = tmp_path / f"c{suffix}"
    c.save(path)
    assert Config.load(path) == c
    assert c.to_dict()["layers"] == ["1x8x8", "16C3", "MP2", "32C3", "MP2", 10]
    # The notation as one string works in a file too.
    data = {**c.to_dict(), "layers": "1x8x8,16C3,MP2,32C3,MP2,10"}
    path.write_text(json.dumps(data) if suffix == ".json" else
                    path.read_text().replace('["1x8x8", "16C3", "MP2", "32C3", "MP2", 10]',
                                             f'"{data["layers"]}"'))
    assert data["layers"] in path.read_text() and Config.load(path) == c


def test_hardware_refuses_a_pool_wider_than_the_array_in_one_sentence():
    Config().require_engine_layers("the engine")
    Config(layers="1x8x8,4C3,MP2,10").require_engine_layers("the engine")
    with pytest.raises(ConfigError, match="the engine: the 2x2 max-pool of layer 1 needs an "
                                          "array of at least 2 rows or columns"):
        Config(layers="1x8x8,4C3,MP2,10", array_rows=1,
               array_cols=1).require_engine_layers("the engine")


def test_phase_counters_are_a_hardware_field_written_only_when_off():
    from intrain.link_spec import config_hash

    off = Config(phase_counters=False)
    assert "phase_counters" not in Config().to_dict()
    assert Config.from_dict(off.to_dict()) == off and off.to_dict()["phase_counters"] is False
    assert config_hash(off) != config_hash(Config())


def test_bits_text_gives_every_layer_in_order_unless_they_agree():
    assert Config().bits_text == "2-8-8-8"
    mixed = Config(layers="1x8x8,1C3,10", bits=("8-8-8-8", "2-8-8-8"))
    assert mixed.bits_text == "8-8-8-8,2-8-8-8"


def test_replacing_the_layers_keeps_one_width_for_all_layers():
    cfg = Config(layers=(64, 24, 10), bits="2-8-8-8")
    assert cfg.replace(layers=(64, 10)).bits == (Bits.parse("2-8-8-8"),)
    assert cfg.replace(layers=(64, 8, 8, 10)).bits == (Bits.parse("2-8-8-8"),) * 3
    mixed = Config(layers=(64, 24, 10), bits=("8-8-8-8", "2-8-8-8"))
    with pytest.raises(ConfigError, match="one W-A-G-E per weight layer"):
        mixed.replace(layers=(64, 10))
    assert mixed.replace(layers=(64, 10), bits="2-8-8-8").bits == (Bits.parse("2-8-8-8"),)

# amaranth: UnusedElaboratable=no
"""Engine: complete training steps against ``GoldenModel.train_step``. After every step, every
element of every stored weight ``W{l}``, every quantized error ``E{l}``, ``OUT`` and the
predictions read through the host ports equal the golden trace; several steps run back to back
with the weights kept on chip and the random lanes going on. The counters agree with the
engine's own formulas (:meth:`Engine.train_cycles`, :meth:`Engine.train_macs`)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment
from engine_helpers import (
    ERRORS,
    LABELS,
    A,
    P,
    W,
    random_inputs,
    random_weights,
    read_matrix,
    run_engine,
    simulate,
    write_matrix,
)

from intrain.config import Config
from intrain.golden.model import GoldenModel, init_weights
from intrain.hdl.engine import Engine, Phase
from intrain.host.crc import expected_crcs


def train_on_engine(config, weights, steps, *, infer_after=False):
    """Load ``weights``, run every ``(a0, labels, lam)`` of ``steps`` as a training step and read
    back the results of each; optionally a forward pass of the last inputs at the end."""
    dut = Engine(config)
    n = len(config.plan)
    results = []

    async def testbench(ctx):
        for layer, w in enumerate(weights, start=1):
            await write_matrix(ctx, dut, W, layer, w)
        for a0, labels, lam in steps:
            batch = len(a0)
            await write_matrix(ctx, dut, A, 0, a0)
            await write_matrix(ctx, dut, LABELS, 0, np.asarray(labels)[:, None])
            got = {"counters": await run_engine(ctx, dut, batch, train=True, lam=lam)}
            for layer, p in enumerate(config.plan, start=1):
                got[f"W{layer}"] = await read_matrix(ctx, dut, W, layer, p.n_out, p.n_in)
                got[f"E{layer}"] = await read_matrix(ctx, dut, ERRORS, layer, batch, p.n_out)
            got["out"] = await read_matrix(ctx, dut, A, n, batch, config.layers[-1])
            got["pred"] = (await read_matrix(ctx, dut, P, 0, batch, 1))[:, 0]
            got["labels"] = (await read_matrix(ctx, dut, LABELS, 0, batch, 1))[:, 0]
            results.append(got)
        if infer_after:
            a0 = steps[-1][0]
            got = {"counters": await run_engine(ctx, dut, len(a0), train=False)}
            got["out"] = await read_matrix(ctx, dut, A, n, len(a0), config.layers[-1])
            got["pred"] = (await read_matrix(ctx, dut, P, 0, len(a0), 1))[:, 0]
            results.append(got)

    simulate(dut, testbench)
    return dut, results


def check_counters(dut, counters, batch, steps):
    rows, cols = dut.config.array_rows, dut.config.array_cols
    assert counters["steps"] == steps
    assert counters["cycles"] == dut.train_cycles(batch)
    assert counters["mac_cycles"] == dut.train_macs(batch)
    assert sum(counters["phase_cycles"]) == counters["cycles"]
    assert sum(counters["phase_mac_cycles"]) == counters["mac_cycles"]
    regrad = sum(dut.geometry.regrad_tiles(n) * batch * rows * cols   # second gradient jobs
                 for n in dut.config.recompute_gradients)
    assert dut.useful_macs(batch) * 3 + regrad > counters["mac_cycles"] - dut.forward_macs(batch)
    assert counters["mac_cycles"] <= rows * cols * counters["cycles"]
    for ph in Phase:
        assert counters["phase_mac_cycles"][ph.value] <= rows * cols * \
            counters["phase_cycles"][ph.value]
        if ph is Phase.FORWARD or ph is Phase.GRADIENT \
                or ph is Phase.BACKWARD and len(dut.config.plan) > 1:
            assert counters["phase_mac_cycles"][ph.value] > 0
    assert counters["phase_mac_cycles"][Phase.UPDATE.value] == 0
    if len(dut.config.recompute_gradients) < len(dut.config.plan):
        assert counters["phase_cycles"][Phase.UPDATE.value] > 0


def check_against_golden(config, weights, steps, *, infer_after=False):
    dut, results = train_on_engine(config, weights, steps, infer_after=infer_after)
    golden = GoldenModel(config, [np.array(w) for w in weights])
    n = len(config.plan)
    for number, ((a0, labels, lam), got) in enumerate(zip(steps, results), start=1):
        trace = golden.train_step(a0, labels, lam, record=True).trace
        where = f"step {number} (batch {len(a0)}, lam {lam})"
        for layer in range(1, n + 1):
            assert np.array_equal(got[f"W{layer}"], trace[f"W{layer}"]), f"W{layer}, {where}"
            assert np.array_equal(got[f"E{layer}"], trace[f"E{layer}"]), f"E{layer}, {where}"
        assert np.array_equal(got["out"], trace["out"]), f"OUT, {where}"
        assert np.array_equal(got["pred"], np.argmax(trace["out"], axis=1)), f"P, {where}"
        assert np.array_equal(got["labels"], labels)
        check_counters(dut, got["counters"], len(a0), number)
        tensors = {"OUT": trace["out"], "P": np.argmax(trace["out"], axis=1),
                   **{f"{k}{j}": trace[f"{k}{j}"] for k in "WE" for j in range(1, n + 1)}}
        want = expected_crcs(dut.geometry, tensors, len(a0))
        assert got["counters"]["crcs"] == [want[t] for t in dut.geometry.crc_tensors], where
    if infer_after:
        got = results[-1]
        a0 = steps[-1][0]
        assert np.array_equal(got["out"], golden.forward(a0))
        assert np.array_equal(got["pred"], golden.predict(a0))
        assert got["counters"]["cycles"] == dut.forward_cycles(len(a0))
        assert got["counters"]["steps"] == len(steps)
    return dut, golden, results


def make_steps(config, rng, batches, lams):
    return [(random_inputs(config, rng, b), rng.integers(0, config.layers[-1], b), lam)
            for b, lam in zip(batches, lams)]


# -- training steps against the golden model -----------------------------------------------------
CASES = {
    # name: (layers, bits, array rows, cols, batch_size, weights, batches, lams)
    "7-5-3_2x3_ternary": ((7, 5, 3), "2-8-8-8", 2, 3, 5, "init", (5, 1, 2, 5), (0, 3, -2, 1)),
    "10-9-4-3_3x2_int8": ((10, 9, 4, 3), "8-8-8-8", 3, 2, 5, "random", (5, 1, 3),
                          (0, -3, 24)),
    "10-9-4-3_4x4_ternary": ((10, 9, 4, 3), "2-8-8-8", 4, 4, 6, "random", (6, 2, 6),
                             (2, -12, 30)),
    "12-3-5_4x4_narrow_hidden": ((12, 3, 5), "2-8-8-8", 4, 4, 6, "init", (6, 3), (-1, 40)),
    "6-3_2x2_one_layer": ((6, 3), "2-8-8-8", 2, 2, 4, "init", (4, 3), (0, 2)),
    # 5 lanes: the lanes' maxima meet in a tree with one more register (a longer wait).
    "9-6-4_5x2_five_lanes": ((9, 6, 4), "2-8-8-8", 5, 2, 7, "random", (7, 3), (1, -2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_steps_match_golden_in_every_element(name):
    layers, bits, rows, cols, batch_size, init, batches, lams = CASES[name]
    config = Config(layers=layers, bits=bits, array_rows=rows, array_cols=cols,
                    batch_size=batch_size, seed=len(name))
    rng = np.random.default_rng(len(name))
    weights = init_weights(config) if init == "init" else random_weights(config, rng)
    steps = make_steps(config, rng, batches, lams)
    _, golden, results = check_against_golden(config, weights, steps, infer_after=True)
    # The steps changed the weights: the comparison is not between untouched memories.
    assert any(not np.array_equal(g, w) for g, w in zip(golden.weights, weights))
    assert any(r.get("E1") is not None and r["E1"].any() for r in results)
    assert any(r.get(f"E{len(layers) - 1}") is not None and r[f"E{len(layers) - 1}"].any()
               for r in results)


RECOMPUTE = {
    # name: (layers, bits, rows, cols, batch_size, recompute_gradients, batches, lams)
    "7-5-3_2x3_both": ((7, 5, 3), "2-8-8-8", 2, 3, 5, (1, 2), (5, 3, 5), (0, 3, -2)),
    "10-9-4-3_4x4_all": ((10, 9, 4, 3), "8-8-8-8", 4, 4, 6, (1, 2, 3), (6, 4), (1, -3)),
    "9-6-4_5x2_first": ((9, 6, 4), "2-8-8-8", 5, 2, 7, (1,), (7, 5), (2, 0)),
    "6-3_1x1_one_layer": ((6, 3), "2-8-8-8", 1, 1, 3, (1,), (3, 2), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(RECOMPUTE))
def test_recomputed_gradients_match_golden_in_every_element(name):
    """``recompute_gradients``: the layer's G is computed twice (its maximum, then straight into
    the update, with no G memory); the weights, errors, CRCs and cycle counts agree with the
    golden model and the geometry in every step, mixed with layers whose G is stored."""
    layers, bits, rows, cols, batch_size, recompute, batches, lams = RECOMPUTE[name]
    config = Config(layers=layers, bits=bits, array_rows=rows, array_cols=cols,
                    batch_size=batch_size, seed=len(name), recompute_gradients=recompute)
    dut = Engine(config)
    assert not any(f"G{n}" in dut.memory_bits() for n in recompute)
    rng = np.random.default_rng(len(name))
    weights = random_weights(config, rng)
    steps = make_steps(config, rng, batches, lams)
    _, golden, _ = check_against_golden(config, weights, steps, infer_after=True)
    assert any(not np.array_equal(g, w) for g, w in zip(golden.weights, weights))


SPRAM = {
    # name: (layers, bits, batch_size, spram, batches, lams). One lane: a REGRAD row is read
    # every ``batch`` cycles and written back ``read_latency + update_latency`` = 8 cycles
    # later, so with a batch of 2, 4 or 8 every write meets a read and waits in the bank's hold
    # register.
    "9-5-3_W1_A0_batch4": ((9, 5, 3), "2-8-8-8", 4, ("W1", "A0"), (4, 2, 3, 4), (0, 3, -2, 1)),
    "7-4-3_both_W_batch3": ((7, 4, 3), "2-8-8-8", 3, ("W1", "W2"), (3, 2, 3), (1, 0, 2)),
}


@pytest.mark.parametrize("name", sorted(SPRAM))
def test_single_port_memories_match_golden_in_every_element(name):
    """``spram``: the input and the weights of recomputed layers in single-port banks (one access
    a cycle, a write that meets a read held a cycle); every element, CRC and cycle count agrees
    with the golden model and the geometry, and no bank loses a write or reads a held word
    (:func:`simulate` checks each memory's ``collided``)."""
    layers, bits, batch_size, spram, batches, lams = SPRAM[name]
    config = Config(layers=layers, bits=bits, array_rows=1, array_cols=1, rng_lanes=1,
                    batch_size=batch_size, seed=len(name),
                    recompute_gradients=[int(n[1:]) for n in spram if n[0] == "W"], spram=spram)
    dut = Engine(config)
    Fragment.get(dut, None)   # builds its memories
    assert {n for n, mem in dut.memories.items() if mem.single_port == "generic"} == set(spram)
    rng = np.random.default_rng(len(name))
    weights = random_weights(config, rng)
    steps = make_steps(config, rng, batches, lams)
    check_against_golden(config, weights, steps, infer_after=True)


APT = {
    # name: (layers, bits, rows, cols, batch_size, apt_threshold, apt_step, batches, lams)
    # A threshold of 0 grows every layer at every step it can: 4, 8, 12, 16 bits.
    "7-5-3_2x3_every_step": ((7, 5, 3), "2-8-8-4", 2, 3, 5, (0, 1), 4, (5, 5, 3, 5), (0, 3, -2, 1)),
    # The default threshold: layers grow at different steps, to different widths.
    "10-9-4-3_4x4_default": ((10, 9, 4, 3), "2-8-8-4", 4, 4, 6, (43, 2048), 4,
                             (6, 6, 4, 6, 6), (0, 3, -2, 1, 0)),
    "6-3_1x1_odd_step": ((6, 3), "2-8-8-6", 1, 1, 3, (43, 2048), 3, (3, 3, 1, 3, 3),
                         (0, 3, -2, 1, 0)),
}


@pytest.mark.parametrize("name", sorted(APT))
def test_apt_widths_grow_on_the_engine_as_in_the_golden_model(name):
    """APT mode: the engine measures every QE pass (``S``, ``S^``), grows each layer's error
    width as the golden model does, and quantizes the next steps' errors at the new widths;
    every element, CRC and cycle count of every step agrees."""
    layers, bits, rows, cols, batch_size, threshold, step, batches, lams = APT[name]
    config = Config(layers=layers, bits=bits, array_rows=rows, array_cols=cols,
                    batch_size=batch_size, seed=3, apt=True, apt_threshold=threshold,
                    apt_step=step, acc_bits=40)
    rng = np.random.default_rng(1)
    weights = random_weights(config, rng)
    steps = make_steps(config, rng, batches, lams)
    _, golden, results = check_against_golden(config, weights, steps, infer_after=True)
    start = [b.e for b in config.bits]
    assert golden.apt.events and list(golden.error_widths) != start   # widths changed
    # Errors wider than the starting width reached the engine's memories.
    assert any(np.abs(r[f"E{j}"]).max() > 2 ** (start[j - 1] - 1) for r in results[:-1]
               for j in range(1, len(layers)))


@pytest.mark.parametrize("rate", [0.02, 0.3])
def test_memory_faults_match_golden_in_every_element(rate):
    """``bit_error_rate``: the fault pass flips the same bits of the stored weights as the golden
    model, step after step (every element and every CRC compared; the cycle counter follows the
    geometry's fault pass). Layers of two word widths (ternary 2-bit weights stored in 8 bits,
    and 8-bit weights), rows that are not a multiple of the lanes."""
    for bits in ("2-8-8-8", ("8-8-8-8", "2-8-8-8")):
        config = Config(layers=(7, 5, 3), bits=bits, array_rows=2, array_cols=3, batch_size=4,
                        bit_error_rate=rate, seed=9)
        rng = np.random.default_rng(9)
        weights = init_weights(config)
        steps = make_steps(config, rng, (4, 2, 4), (0, 3, 1))
        _, golden, results = check_against_golden(config, weights, steps, infer_after=True)
        assert golden.faults.flips > 0
        # The faults did something the update alone would not: words beyond the clip.
        clip = [p.w_max for p in config.plan]
        assert any(np.abs(r[f"W{j + 1}"]).max() > clip[j] for r in results[:-1]
                   for j in range(2)) or rate < 0.1


def test_zero_output_weights_give_zero_hidden_errors_and_the_draws_go_on():
    """``W_2 = 0``: OUT = 0, so E_2 = QE(-label * onehot) is not zero, but R_2, the hidden error
    E_1 and the gradient G_1 are all zero (dW = 0, its draws still taken) while W_2 learns. The
    next steps, with the weights learnt since, agree with the golden model too."""
    config = Config(layers=(6, 4, 3), bits="2-8-8-8", array_rows=2, array_cols=2, batch_size=4,
                    rng_lanes=3, seed=5)
    rng = np.random.default_rng(5)
    weights = [init_weights(config)[0], np.zeros((3, 4), dtype=np.int64)]
    steps = make_steps(config, rng, (4, 4, 3), (0, 5, 1))
    _, _, results = check_against_golden(config, weights, steps)
    first = results[0]
    assert not first["out"].any()
    assert not first["E1"].any() and first["E2"].any()
    assert np.array_equal(first["W1"], weights[0]) and first["W2"].any()


def test_inputs_of_zero_give_a_zero_first_gradient():
    """A_0 = 0: G_1 = E_1^T . A_0 is all zero, so W_1 does not change (every draw taken). Fewer
    random lanes (2) than memory lanes (3)."""
    config = Config(layers=(5, 4, 2), bits="8-8-8-8", array_rows=2, array_cols=3, batch_size=3,
                    rng_lanes=2, seed=2)
    rng = np.random.default_rng(2)
    weights = random_weights(config, rng)
    steps = [(np.zeros((3, 5), dtype=np.int64), np.array([0, 1, 1]), 4)]
    steps += make_steps(config, rng, (3,), (2,))
    _, _, results = check_against_golden(config, weights, steps)
    assert np.array_equal(results[0]["W1"], weights[0])


# -- counters and formulas -----------------------------------------------------------------------
def test_default_step_utilization():
    """The default configuration (64-256-10, batch 64, 8 x 8 array): busy MAC-cycles of a
    training step over 64 x its cycles, from the formulas that the simulations above check
    cycle for cycle. The array does 43520 beats in a step of 48229 cycles (90.2 %)."""
    dut = Engine(Config())
    cycles, macs = dut.train_cycles(64), dut.train_macs(64)
    assert macs == 64 * (20480 + 4096 + 2560 + 16384)
    beats = macs // 64
    extra = cycles - beats
    # Passes at 8 elements per cycle: output error 80, QE of R 2048, updates 320 + 2048.
    assert 80 + 2048 + 320 + 2048 < extra < 80 + 2048 + 320 + 2048 + 400
    assert macs / (64 * cycles) >= 0.80
    assert dut.train_cycles(64) > dut.forward_cycles(64)


def test_memory_bits_follow_the_geometry():
    config = Config(layers=(6, 5, 3), bits="2-8-8-8", array_rows=2, array_cols=3, batch_size=4)
    dut = Engine(config)
    bits = dut.memory_bits()
    lanes = 3
    p1, p2 = config.plan

    def size(rows, cols, width):
        return lanes * -(-rows // lanes) * cols * width

    assert bits == {
        "W1": size(5, 6, 8), "W2": size(3, 5, 8),
        "A0": size(4, 6, 8), "A1": size(4, 5, 7), "OUT": size(4, 3, 32),
        "P": size(4, 1, 2), "LABELS": size(4, 1, 2),
        "E1": size(4, 5, 8), "E2": size(4, 3, 8), "M1": size(4, 5, 2),
        "G1": size(5, 6, p1.acc_bits_gradient), "G2": size(3, 5, p2.acc_bits_gradient),
        # R is read and written only in row slices at multiples of the 3 lanes: no rotation,
        # ``rows * ceil(cols / lanes)`` words per bank.
        "R": lanes * 4 * -(-5 // lanes) * p2.acc_bits_backward,
    }
    assert dut.geometry.aligned_memories == {"R"}


def test_train_formulas_count_every_job():
    config = Config(layers=(6, 5, 3), array_rows=2, array_cols=3, batch_size=4)
    dut = Engine(config)
    # Forward 6 * (6 * 6 + 4 * 5), gradients 3 * 2 * 4 + 2 * 2 * 4, backward 2 * 2 * 3.
    assert dut.train_macs(4) == 6 * (6 * 6 + 4 * 5 + 3 * 2 * 4 + 2 * 2 * 4 + 2 * 2 * 3)
    assert dut.train_cycles(4) > dut.forward_cycles(4) + 5 * 6 + 3 * 5
    with pytest.raises(ValueError, match="Batch must be an integer from 1 to 4"):
        dut.train_macs(5)
    with pytest.raises(ValueError, match="Batch must be an integer from 1 to 4"):
        dut.train_cycles(0)


@pytest.mark.slow
def test_default_step_on_the_simulator():
    """One training step of the default configuration, simulated: every weight and error equals
    the golden model's and the counters equal the formulas (several minutes)."""
    config = Config()
    rng = np.random.default_rng(0)
    steps = make_steps(config, rng, (64,), (2,))
    dut, _, results = check_against_golden(config, init_weights(config), steps)
    counters = results[0]["counters"]
    assert counters["mac_cycles"] / (64 * counters["cycles"]) >= 0.80


@pytest.mark.parametrize("config", [
    Config(),
    Config(layers=(6, 5, 3), array_rows=2, array_cols=3, batch_size=4),
    Config(layers=(64, 10), array_rows=1, array_cols=1, batch_size=16),
], ids=["default", "2x3", "1x1"])
def test_counter_ports_are_as_wide_as_a_step_needs_and_one_bit_more(config):
    """The run counters: a training step of ``batch_size`` counts below half their range (a
    run of up to twice the model's length reads right), and they are no wider than that."""
    dut = Engine(config)
    cycle_bits, mac_bits = dut.geometry.counter_bits
    b = config.batch_size
    for bits, need in ((cycle_bits, dut.train_cycles(b)), (mac_bits, dut.train_macs(b))):
        assert 2 * need < 1 << bits <= 4 * need or bits == 32
    assert len(dut.cycles) == len(dut.phase_cycles[0]) == cycle_bits
    assert len(dut.mac_cycles) == len(dut.phase_mac_cycles[0]) == mac_bits
    assert len(dut.steps) == 32

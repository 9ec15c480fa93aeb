# amaranth: UnusedElaboratable=no
"""The engine's sequencer on its own: the jobs of a run in order, with each job's reads ending
and its writes finishing a few cycles after it starts, against the order the engine's
documentation and the golden model's step give (forward layers, argmax, the output error,
then per layer from the last: gradient, backward, error, update; pools and unpools around
pooled convolutions; the fault pass after the step)."""

from __future__ import annotations

from amaranth.sim import Simulator

from intrain.config import Config
from intrain.hdl.engine import EngineGeometry
from intrain.hdl.engine.control import Job, Sequencer, State

F, G, B, AM, OE, E, U, FA, RG, PL, UP = (
    Job.FORWARD, Job.GRADIENT, Job.BACKWARD, Job.ARGMAX, Job.OUTPUT_ERROR, Job.ERROR,
    Job.UPDATE, Job.FAULT, Job.REGRAD, Job.POOL, Job.UNPOOL)


def run_jobs(config, *, train, batch, limit=500):
    """The ``(job, layer)`` of every job of one run, the write-back's kind when each starts, the
    sampled batch and the step counter after it."""
    dut = Sequencer(EngineGeometry(config), 8)
    out = {}

    async def testbench(ctx):
        ctx.set(dut.batch, batch)
        ctx.set(dut.train, train)
        ctx.set(dut.lam, -3)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        jobs, kinds, prev, since = [], [], None, 0
        for _ in range(limit):
            key = (ctx.get(dut.state), ctx.get(dut.job), ctx.get(dut.layer))
            if key[0] == State.IDLE:
                break
            if key != prev:
                since = 0
                if key[0] == State.ISSUE:
                    jobs.append(key[1:])
                    kinds.append(ctx.get(dut.wr_kind))
                p = config.plan[key[2]]   # the layer's sizes come with it
                assert (ctx.get(dut.n_in), ctx.get(dut.n_out)) == (p.n_in, p.n_out), key
            # A job's reads end 2 cycles after it starts, its writes 3 cycles into its drain.
            ctx.set(dut.issue_end, key[0] == State.ISSUE and since == 2)
            ctx.set(dut.finished, key[0] == State.DRAIN and since == 3)
            await ctx.tick()
            prev, since = key, since + 1
        else:
            raise AssertionError("the run did not end")
        out.update(jobs=jobs, kinds=kinds, n_batch=ctx.get(dut.n_batch),
                   steps=ctx.get(dut.steps), lam=ctx.get(dut.lam_run),
                   training=ctx.get(dut.training))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return out


def test_a_training_step_runs_every_job_in_order():
    config = Config(layers=(7, 5, 4, 3), batch_size=4)
    out = run_jobs(config, train=1, batch=3)
    assert out["jobs"] == [(F, 0), (F, 1), (F, 2), (AM, 2), (OE, 2),
                           (G, 2), (B, 2), (E, 2), (U, 2),
                           (G, 1), (B, 1), (E, 1), (U, 1),
                           (G, 0), (U, 0)]
    # The write-back expects forward rows, then gradients, then the update's REGRAD kind.
    assert out["kinds"][:5] == [F] * 5 and out["kinds"][5] == G and out["kinds"][8] == RG
    assert (out["n_batch"], out["steps"], out["lam"], out["training"]) == (3, 1, -3, 1)


def test_inference_ends_after_the_argmax_without_a_step():
    out = run_jobs(Config(layers=(7, 5, 3), batch_size=4), train=0, batch=7)
    assert out["jobs"] == [(F, 0), (F, 1), (AM, 1)]
    assert (out["n_batch"], out["steps"]) == (4, 0)   # more than batch_size: batch_size


def test_recomputed_gradients_and_the_fault_pass():
    config = Config(layers=(7, 5, 3), batch_size=4, recompute_gradients=(1,),
                    bit_error_rate=0.01)
    out = run_jobs(config, train=1, batch=0)
    assert out["jobs"] == [(F, 0), (F, 1), (AM, 1), (OE, 1), (G, 1), (B, 1), (E, 1), (U, 1),
                           (G, 0), (RG, 0), (FA, 1), (FA, 0)]
    assert (out["n_batch"], out["steps"]) == (1, 1)   # a batch of 0 runs one sample


def test_pooled_convolutions_pool_after_forward_and_unpool_before_gradient():
    config = Config(layers="1x4x6,3C3,MP2,4", array_rows=2, array_cols=4, batch_size=2)
    out = run_jobs(config, train=1, batch=2)
    assert out["jobs"] == [(F, 0), (PL, 0), (F, 1), (AM, 1), (OE, 1), (G, 1), (B, 1), (E, 1),
                           (U, 1), (UP, 0), (G, 0), (U, 0)]


def test_every_job_has_a_rule_that_always_applies():
    config = Config(layers="1x4x6,3C3,MP2,4", array_rows=2, array_cols=4, batch_size=2,
                    bit_error_rate=0.01)
    table = Sequencer(EngineGeometry(config), 8).transitions()
    assert set(table) == set(Job)
    for job, rules in table.items():
        cond = rules[-1][0]
        assert isinstance(cond, int) and cond == 1, job

"""``intrain sweep``: specs and their points, and small sweeps on a 2-worker Dask LocalCluster
(golden training runs, one small iCE40 build, a failing point, resume, a scheduler address).

The build is the small iCEBreaker bitstream of ``test_build_flow.py`` (the board's top level
with the PLL and UART around a stand-in for the host link), so the whole module takes seconds.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import pytest

from intrain.boards.registry import BOARDS
from intrain.cli import main
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.sweep import expand, load_spec, pareto
from intrain.sweep_run import COLUMNS, SweepResult, open_client, run_sweep, summary_text
from intrain.train import RTL_EPOCHS

TINY = Config(layers=(8, 4), batch_size=2, array_rows=1, array_cols=1, acc_bits=16,
              rng_lanes=1)


# -- specs ------------------------------------------------------------------------------------
def test_spec_file_expands_to_the_product_of_its_axes(tmp_path):
    TINY.save(tmp_path / "base.toml")
    (tmp_path / "s.toml").write_text(
        'job = "both"\nboard = ["icebreaker", "tang-nano-9k"]\nlayers = [[8, 4], "8,6,4"]\n'
        'array = "1x1"\nbits = ["2-8-8-8", "4-8-8-8"]\nseed = [1, 2]\nconfig = "base.toml"\n'
        '[train]\nsteps = 3\nfloat = false\n')
    points = expand(load_spec(tmp_path / "s.toml"))
    assert len(points) == 2 * 2 * 2 * 2
    assert [p.index for p in points] == list(range(16))
    first, last = points[0], points[-1]
    assert (first.board, first.layers, first.bits, first.seed) == ("icebreaker", "8-4",
                                                                   "2-8-8-8", 1)
    assert (last.board, last.layers, last.bits, last.seed) == ("tang-nano-9k", "8-6-4",
                                                               "4-8-8-8", 2)
    assert all(p.jobs == ("build", "train") for p in points)
    assert all(p.config.acc_bits == 16 and p.config.batch_size == 2 for p in points)
    assert first.train.steps == 3 and not first.train.float_baseline
    # Seeds and boards change the build, not the training run.
    assert points[0].train_key() == points[1].train_key() == points[8].train_key()
    assert len({p.build_key() for p in points}) == 16


def test_a_point_without_config_starts_from_the_boards_default():
    (p,) = expand({"board": "tang-nano-9k", "layers": "64,24,10"})
    assert p.jobs == ("build",)
    default = BOARDS["tang-nano-9k"].default_config
    assert p.config.layers == (64, 24, 10) and p.config.batch_size == default.batch_size
    assert (p.config.array_rows, p.config.array_cols) == (default.array_rows, default.array_cols)
    assert p.target_mhz() == 54.0
    (t,) = expand({"train": {"backend": "rtl", "sim": "icarus"}})
    assert t.jobs == ("train",) and t.config == Config(epochs=RTL_EPOCHS)


@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "unknown board 'nope'"),
    (["--board", "icebreaker", "--array", "2by2"], "array must be ROWSxCOLS"),
    (["--board", "icebreaker", "--layers", "64,x,10"], "layers must be sizes"),
    (["--board", "icebreaker", "--clock", "fast"], "clock must be a number"),
    (["--board", "icebreaker", "--batch-size", "4096"],
     "sweep point 0 (board icebreaker, batch 4096): acc_bits must be at least"),
    (["--job", "build"], "needs at least one board"),
    (["--job", "train", "--seed", "1", "2"], "seed applies to builds only"),
    (["--sim", "icarus"], "sim needs the rtl backend"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "leave it out with --scheduler"),
    (["missing.toml"], "cannot read sweep spec missing.toml"),
    (["--steps", "1", "--scheduler", "nonsense://x"],
     "cannot reach the Dask scheduler at nonsense://x"),
])
def test_bad_specs_end_in_one_line(args, message, capsys, tmp_path):
    assert main(["sweep", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("intrain: error: ") and "\n" not in err
    assert message in err


def test_unknown_keys_of_a_spec_file_are_named(tmp_path):
    (tmp_path / "s.toml").write_text('boards = ["icebreaker"]\n[train]\nepoch = 2\n')
    with pytest.raises(ConfigError, match="unknown key.*boards"):
        load_spec(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text('[train]\nepoch = 2\n')
    with pytest.raises(ConfigError, match=r"unknown key.*\[train\]: epoch"):
        load_spec(tmp_path / "s.toml")


def test_pareto_front_keeps_the_undominated_points():
    rows = [{"point": 0, "lut": 100, "effective_gops": 1.0},
            {"point": 1, "lut": 200, "effective_gops": 3.0},
            {"point": 2, "lut": 300, "effective_gops": 2.0},   # dominated by 1
            {"point": 3, "lut": 100, "effective_gops": 0.5},   # dominated by 0
            {"point": 4, "lut": 400, "effective_gops": 4.0},
            {"point": 5, "lut": None, "effective_gops": 9.0}]
    assert pareto(rows) == {0, 1, 4}


def test_summary_gives_best_and_median_fmax_over_seeds():
    base = {"board": "ulx3s-85f", "layers": "64-256-10", "array": "8x8", "bits": "2-8-8-8",
            "batch": 64, "clock_mhz": 50.0, "lut": 1, "effective_gops": None,
            "test_accuracy": None, "status": "done", "macs": 64}
    fmax = [51.0, 55.5, 49.0, 53.0]
    rows = [{**base, "point": n, "seed": n + 1, "fmax_mhz": f} for n, f in enumerate(fmax)]
    text = summary_text(SweepResult(rows=rows, records={}, keys={}))
    assert ("ulx3s-85f 64-256-10 8x8 2-8-8-8 batch 64 at 50 MHz, 4 seeds: best Fmax 55.50 MHz "
            "(seed 2), median 52.00 MHz") in text


# -- sweeps on a cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster of the sweep's own making, closed after the module."""
    with open_client(workers=2, quiet=True) as c:
        assert len(c.scheduler_info(n_workers=-1)["workers"]) == 2
        yield c


def _small_sweep(tmp):
    """Points 0-1: an iCEBreaker build that runs and one that does not fit; points 2-5: golden
    training runs, the last of a network the data set cannot feed."""
    TINY.save(tmp / "tiny.toml")
    builds = expand({"board": "icebreaker", "config": str(tmp / "tiny.toml"), "clock": 30,
                     "array": ["1x1", "8x8"]})
    trains = expand({"layers": ["64,10", "64,16,10", "32,10"], "bits": ["2-8-8-8", "4-8-8-8"],
                     "batch": 16, "train": {"steps": 3}})
    trains = [t for t in trains if t.layers != "32-10" or t.bits == "2-8-8-8"]
    return builds + [dataclasses.replace(t, index=2 + n) for n, t in enumerate(trains)]


@pytest.fixture(scope="module")
def small_sweep(client, tmp_path_factory):
    from test_build_flow import EchoLink

    out = tmp_path_factory.mktemp("sweep")
    points = _small_sweep(out)
    result = run_sweep(points, out / "run", client, progress=False,
                       build_options={"link": EchoLink})
    return points, result, out / "run"


def test_small_sweep_builds_trains_and_records_failures(small_sweep):
    points, result, out = small_sweep
    rows = {r["point"]: r for r in result.rows}
    assert sorted(rows) == [p.index for p in points] == list(range(7))
    assert result.ran == 7 and result.failed == 2 and result.resumed == 0
    build = rows[0]
    assert build["status"] == "done" and build["board"] == "icebreaker"
    report = json.loads(open(build["build_report"]).read())
    assert build["lut"] == report["utilization"]["lut"]["used"] > 0
    assert build["fmax_mhz"] == report["fmax_mhz"] > 0 and build["clock_mhz"] == 30.0
    step = report["training_step"]
    assert build["effective_gops"] == pytest.approx(
        2 * step["mac_cycles"] / step["cycles"] * build["fmax_mhz"] / 1000, abs=1e-3)
    assert build["pareto"] is True
    assert rows[1]["status"] == "failed" and "does not fit the iCEBreaker" in rows[1]["error"]
    assert rows[1]["error"].startswith("build: ") and rows[1]["lut"] is None
    trained = [rows[n] for n in range(2, 6)]
    assert all(r["status"] == "done" and r["steps"] == 3 for r in trained)
    assert [r["bits"] for r in trained] == ["2-8-8-8", "4-8-8-8"] * 2
    assert all(0 < r["test_accuracy"] <= 1 and r["backend"] == "golden" for r in trained)
    assert rows[6]["status"] == "failed" and "first layer must have 64 inputs" in rows[6]["error"]


def test_table_is_the_same_in_json_and_csv(small_sweep):
    _, result, out = small_sweep
    table = json.loads((out / "sweep.json").read_text())
    assert table["points"] == table["finished"] == 7 and table["rows"] == result.rows
    with open(out / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    for r, j in zip(rows, table["rows"]):
        assert r == {k: "" if v is None else str(v) for k, v in j.items()}


def test_rerun_skips_points_whose_report_exists(small_sweep, client, tmp_path):
    points, first, out = small_sweep
    shutil.copytree(out, tmp_path / "run")
    reports = sorted((tmp_path / "run" / "reports").glob("*.json"))
    assert len(reports) == 5   # the failed points left none
    stamps = {p: p.stat().st_mtime_ns for p in reports}
    from test_build_flow import EchoLink

    again = run_sweep(points, tmp_path / "run", client, progress=False,
                      build_options={"link": EchoLink})
    assert again.resumed == 5 and again.ran == 2 and again.failed == 2   # failures run again
    assert [r["status"] for r in again.rows] == ["resumed", "failed"] + ["resumed"] * 4 + [
        "failed"]
    assert {p: p.stat().st_mtime_ns for p in reports} == stamps
    keep = ("lut", "fmax_mhz", "test_accuracy", "effective_gops")
    assert [[r[k] for k in keep] for r in again.rows] == [[r[k] for k in keep]
                                                         for r in first.rows]
    trained = [p for p in reports if "64-16-10-4-8-8-8" in p.name]
    trained[0].unlink()
    third = run_sweep(points[2:6], tmp_path / "run", client, progress=False)
    assert third.ran == 1 and third.resumed == 3
    assert [r["status"] for r in third.rows] == ["resumed"] * 3 + ["done"]


def test_scheduler_address_runs_the_sweep_on_that_cluster(client, tmp_path, capsys):
    address = client.scheduler.address
    args = ["sweep", "--scheduler", address, "--layers", "64,10", "--bits", "2-8-8-8",
            "3-8-8-8", "--steps", "2", "--no-float", "--out", str(tmp_path), "--no-plot"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"2 workers on {address}" in captured.err
    rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["done", "done"]
    keys = {p.stem for p in (tmp_path / "reports").glob("*.json")}
    ran = client.run_on_scheduler(lambda dask_scheduler: {
        t[0] for t in dask_scheduler.transition_log})
    assert len(keys) == 2 and keys <= ran
    assert "2 points: 2 done" in captured.out


def test_cli_writes_table_and_plots(client, tmp_path, capsys):
    args = ["sweep", "--scheduler", client.scheduler.address, "--layers", "64,10", "--steps",
            "2", "--out", str(tmp_path), "-q"]
    assert main(args) == 0
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "sweep.csv").is_file()

"""The `intrain` command: a short training run end to end, repeatability, and user errors."""

import json
import subprocess
import sys

import pytest

from intrain.cli import main

QUICK = ["train", "-q", "--epochs", "2", "--layers", "64,32,10", "--batch-size", "16", "--lr", "1"]


def test_train_writes_report_plot_and_config(tmp_path, capsys):
    report, plot, cfg = tmp_path / "r.json", tmp_path / "p.png", tmp_path / "c.toml"
    assert main([*QUICK, "--report", str(report), "--plot", str(plot),
                 "--save-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "float32" in out
    r = json.loads(report.read_text())
    for key in ("test_accuracy", "float_test_accuracy", "train_seconds", "samples_per_second",
                "epochs", "config", "history"):
        assert key in r, key
    assert r["epochs"] == 2 and len(r["history"]) == 2
    assert r["config"]["layers"] == [64, 32, 10]
    assert 0.5 < r["test_accuracy"] <= 1 and 0.5 < r["float_test_accuracy"] <= 1
    assert r["samples_per_second"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "layers = [64, 32, 10]" in cfg.read_text()


def test_a_saved_config_repeats_the_run_exactly(tmp_path):
    cfg, r1, r2 = tmp_path / "c.json", tmp_path / "1.json", tmp_path / "2.json"
    assert main([*QUICK, "--no-float", "--seed", "5", "--save-config", str(cfg),
                 "--report", str(r1)]) == 0
    assert main(["train", "-q", "--no-float", "--config", str(cfg), "--report", str(r2)]) == 0
    h1 = json.loads(r1.read_text())["history"]
    h2 = json.loads(r2.read_text())["history"]
    assert [h["test_accuracy"] for h in h1] == [h["test_accuracy"] for h in h2]
    assert [h["train_loss"] for h in h1] == [h["train_loss"] for h in h2]


@pytest.mark.parametrize("args, message", [
    (["--layers", "64,abc,10"], "layers must be integers separated by commas"),
    (["--layers", "32,10"], "first layer must have 64 inputs"),
    (["--layers", "64,16,5"], "last layer must have at least 10 outputs"),
    (["--bits", "2-8-8"], "bits must look like W-A-G-E"),
    (["--batch-size", "0"], "batch_size must be an integer from 1 to 4096"),
    (["--lr", "0:x"], "lr schedule must look like"),
    (["--data", "nowhere/at/all"], "nowhere/at/all"),
    (["--report", "r.txt"], "--report file must end in .json"),
    (["--config", "missing.toml"], "cannot read config file"),
    (["--waves", "w.vcd"], "--waves needs --backend rtl"),
    (["--sim", "icarus"], "--sim needs --backend rtl"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--array", "8by8"], "--array must be ROWSxCOLS"),
    (["--array", "0x8"], "array_rows"),
    (["--backend", "rtl", "--sim", "icarus", "--waves", "w.vcd"],
     "icarus writes .fst waveforms, not w.vcd"),
    (["--board", "ulx3s-85f"], "--board needs --backend board"),
    (["--port", "/dev/ttyUSB0"], "--port needs --backend board"),
    (["--backend", "board", "--port", "/dev/null"], "--backend board needs --board NAME"),
    (["--backend", "board", "--board", "nosuchboard", "--port", "/dev/null"], "nosuchboard"),
    (["--backend", "board", "--board", "ulx3s-85f", "--port", "/dev/null", "--layers",
      "64,32,10"], "would change"),
    (["--backend", "board", "--board", "icebreaker", "--port", "/nonexistent/tty"],
     "/nonexistent/tty"),
    (["--backend", "board", "--board", "ulx3s", "--port", "/dev/null", "--baud", "4000000"],
     "FT231X carries at most 3,000,000 baud"),
    (["--layers", "1x28x28,4C3,10"], "digits holds 1x8x8 images, not the network's input"),
    (["--layers", "1x8x8,4C4,MP2,10"], "4C4 (item 2): the kernel must be odd"),
    (["--layers", "1x8x8,4C3,MP3,10"], "MP3 (item 3): a 3x3 pool does not divide"),
    (["--backend", "rtl", "--array", "1x1", "--layers", "1x8x8,4C3,MP2,10"],
     "--backend rtl: the 2x2 max-pool of layer 1 needs an array of at least 2 rows or columns"),
])
def test_user_mistakes_end_in_one_error_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-q", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error:") and message in err
    assert "Traceback" not in err


def test_a_conv_network_trains_reports_and_repeats_from_its_saved_config(tmp_path, capsys):
    r1, r2, cfg = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "c.toml"
    assert main(["train", "-q", "--layers", "1x8x8,4C3,MP2,6C3,10", "--epochs", "1",
                 "--batch-size", "32", "--report", str(r1), "--save-config", str(cfg)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    r = json.loads(r1.read_text())
    assert r["config"]["layers"] == ["1x8x8", "4C3", "MP2", "6C3", 10]
    assert 0 < r["test_accuracy"] <= 1 and 0.5 < r["float_test_accuracy"] <= 1
    assert main(["train", "-q", "--no-float", "--config", str(cfg), "--report", str(r2)]) == 0
    assert json.loads(r2.read_text())["history"][0]["train_loss"] == r["history"][0]["train_loss"]


def test_lenet5_trains_on_an_mnist_folder(tmp_path, capsys):
    from test_data import make_idx_dir

    make_idx_dir(tmp_path, n_train=12, n_test=5, rows=28, cols=28)
    report = tmp_path / "r.json"
    assert main(["train", "-q", "--data", str(tmp_path), "--layers",
                 "1x28x28,32C5,MP2,64C5,MP2,512,10", "--steps", "2", "--batch-size", "6",
                 "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["steps"] == 2 and r["config"]["layers"][0] == "1x28x28"
    assert r["float_test_accuracy"] is not None


@pytest.mark.parametrize("command", [
    ["build", "--board", "icebreaker", "--config", "conv.toml"],
    ["generate", "engine", "--set", "layers=1x8x8,4C3,MP2,10", "--set", "array_rows=1",
     "--set", "array_cols=1"],
])
def test_hardware_commands_refuse_a_pool_wider_than_the_array_in_one_line(
        command, capsys, tmp_path, monkeypatch):
    from intrain.config import Config

    monkeypatch.chdir(tmp_path)
    Config(layers="1x8x8,4C3,MP2,10", array_rows=1, array_cols=1).save(tmp_path / "conv.toml")
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error:") and "needs an array of at least 2" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "intrain", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--layers" in out and "--report" in out and "--backend" in out


def test_steps_stop_the_run_and_the_report_round_trips(tmp_path):
    from intrain.train import TrainReport

    report = tmp_path / "r.json"
    assert main([*QUICK, "--no-float", "--steps", "5", "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["steps"] == 5 and r["samples_trained"] == 5 * 16 and r["epochs"] == 1
    back = TrainReport.from_dict(r)
    assert back.to_dict() == r


def test_boards_lists_every_board_with_its_resources(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("icebreaker", "ulx3s-85f", "orangecrab-85f", "tang-nano-9k"):
        assert name in out
    assert main(["boards", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["board"] for r in rows} >= {"icebreaker", "ulx3s-85f", "orangecrab-85f",
                                         "tang-nano-9k"}


@pytest.mark.parametrize("args, message", [
    (["--board", "nosuchboard"], "nosuchboard"),
    (["--board", "icebreaker", "--config", "missing.toml"], "cannot read config file"),
    (["--board", "icebreaker", "--config", "big.toml"], "shrink"),
])
def test_build_refuses_bad_input_in_one_line(args, message, capsys, tmp_path, monkeypatch):
    from intrain.config import Config

    monkeypatch.chdir(tmp_path)
    Config(array_rows=16, array_cols=16).save(tmp_path / "big.toml")
    assert main(["build", "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error:") and message in err, err
    assert "Traceback" not in err

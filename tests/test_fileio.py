"""Output files are written whole or not at all: reports, saved configs and plots."""

from __future__ import annotations

import json
import os

import pytest

from intrain.cli import main
from intrain.config import Config
from intrain.fileio import replacing, write_text

QUICK = ["train", "-q", "--epochs", "1", "--layers", "64,16,10", "--no-float"]


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("the disk is full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_whole_write_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "c.toml"
    write_text(path, "seed = 1\n")
    mask = os.umask(0)
    os.umask(mask)
    assert path.read_text() == "seed = 1\n"
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_folder_that_cannot_take_the_file_is_named(tmp_path):
    with pytest.raises(OSError) as e:
        write_text(tmp_path / "no" / "such" / "r.json", "{}")
    assert e.value.filename == str(tmp_path / "no" / "such" / "r.json")
    (tmp_path / "r.json").mkdir()
    with pytest.raises(OSError) as e:
        write_text(tmp_path / "r.json", "{}")
    assert e.value.filename == str(tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_the_command_line_never_leaves_a_partial_output(tmp_path, monkeypatch, capsys):
    report, plot, cfg = tmp_path / "r.json", tmp_path / "p.png", tmp_path / "c.json"
    for path in (report, plot, cfg):
        path.write_text("old")
    import matplotlib.figure

    def broken_savefig(self, f, **kw):
        f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    assert main([*QUICK, "--report", str(report), "--plot", str(plot),
                 "--save-config", str(cfg)]) == 130
    assert "history" in json.loads(report.read_text())  # written whole before the plot
    assert Config.load(cfg).layers == (64, 16, 10)
    assert plot.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "p.png", "r.json"]
    folder = tmp_path / "d.json"
    folder.mkdir()
    assert main([*QUICK, "--report", str(folder)]) == 2  # a folder: one line, its name
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"intrain: error: {folder}: Is a directory" and not any(folder.iterdir())

"""``intrain program`` without a board: openFPGALoader's command line for every board, the
default bitstream, and the one-line errors (no cable, another board, a missing library), with a
fake openFPGALoader on PATH and, where it starts, the real one with nothing plugged in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from intrain.boards.program import (
    BITSTREAM_SUFFIX,
    ProgramError,
    default_bitstream,
    detect_args,
    loader_command,
    program_args,
    program_board,
)
from intrain.boards.registry import BOARDS, get_board
from intrain.cli import main

# What openFPGALoader 1.1 prints with no probe plugged in (its ftdi and DFU back ends).
NO_FTDI = ("unable to open ftdi device: -3 (device not found)\n"
           "JTAG init failed with: unable to open ftdi device\n")
NO_DFU = "Open file : DONE\nParse file DONE\nOpen device 1209:5af0 Not found\n"
DETECT = ("index 0:\n\tidcode 0x{idcode:08x}\n\tmanufacturer lattice\n\tfamily ECP5\n"
          "\tmodel  {model}\n\tirlength 8\n")

FAKE = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_OFL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
key = "DETECT" if "--detect" in args else "PROGRAM"
sys.stdout.write(os.environ.get(f"FAKE_OFL_{key}_OUT", ""))
sys.exit(int(os.environ.get(f"FAKE_OFL_{key}_RC", "0")))
"""


@pytest.fixture
def fake_loader(tmp_path, monkeypatch):
    """A fake openFPGALoader first on PATH; returns the list of the argument lists it got."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "openFPGALoader"
    exe.write_text(f"#!{sys.executable}\n{FAKE}")
    exe.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.write_text("")
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_OFL_LOG", str(log))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()]
    return calls


def _bitstream(tmp_path, name):
    path = tmp_path / f"top{BITSTREAM_SUFFIX[BOARDS[name].family]}"
    path.write_bytes(b"\xff\x00")
    return path


# -- the command lines --------------------------------------------------------------------------

@pytest.mark.parametrize("name, sram, flash", [
    ("icebreaker", ["-b", "ice40_generic", "-m"], ["-b", "ice40_generic", "-f"]),
    ("ulx3s-85f", ["-b", "ulx3s", "-m"], ["-b", "ulx3s", "-f"]),
    ("orangecrab-85f", None, ["-b", "orangeCrab", "-f"]),
    ("tang-nano-9k", ["-b", "tangnano9k", "-m"], ["-b", "tangnano9k", "-f"]),
])
def test_command_line_per_board(name, sram, flash):
    board = BOARDS[name]
    assert program_args(board, "x", flash=True) == [*flash, "x"]
    if sram is None:
        with pytest.raises(ProgramError, match="pass --flash, or --cable NAME"):
            program_args(board, "x")
    else:
        assert program_args(board, "x") == [*sram, "x"]
    # A cable replaces the board's own port.
    assert program_args(board, "x", cable="dirtyJtag") == ["-c", "dirtyJtag", "-m", "x"]


def test_boards_reached_over_jtag_are_detected_first():
    assert detect_args(BOARDS["icebreaker"]) is None                # iCE40: SPI
    assert detect_args(BOARDS["ulx3s-85f"], flash=True) == ["-b", "ulx3s", "--detect"]
    assert detect_args(BOARDS["tang-nano-9k"]) == ["-b", "tangnano9k", "--detect"]
    assert detect_args(BOARDS["orangecrab-85f"], flash=True) is None  # DFU
    assert detect_args(BOARDS["orangecrab-85f"], cable="ft232") == ["-c", "ft232", "--detect"]


def test_default_bitstream_is_the_last_build(tmp_path):
    board = get_board("ulx3s")
    with pytest.raises(ProgramError, match="intrain build --board ulx3s-85f"):
        default_bitstream(board, tmp_path)
    folder = tmp_path / board.name
    folder.mkdir()
    plain = _bitstream(folder, board.name)
    assert default_bitstream(board, tmp_path) == plain
    other = folder / "named.bit"
    other.write_bytes(b"\x00")
    (folder / "report.json").write_text(json.dumps({"bitstream": str(other)}))
    assert default_bitstream(board, tmp_path) == other


def test_a_bitstream_of_another_family_is_refused(tmp_path, fake_loader):
    fs = _bitstream(tmp_path, "tang-nano-9k")
    with pytest.raises(ProgramError, match=r"not a ULX3S-85F bitstream \(ecp5: \.bit\)"):
        program_board(BOARDS["ulx3s-85f"], fs, echo=False)
    assert fake_loader() == []


# -- runs of a fake openFPGALoader --------------------------------------------------------------

@pytest.mark.parametrize("flash", [False, True])
def test_program_detects_then_loads(tmp_path, fake_loader, monkeypatch, flash):
    monkeypatch.setenv("FAKE_OFL_DETECT_OUT", DETECT.format(idcode=0x41113043, model="LFE5U-85"))
    bit = _bitstream(tmp_path, "ulx3s-85f")
    r = program_board(BOARDS["ulx3s-85f"], bit, flash=flash, echo=False)
    mode = "-f" if flash else "-m"
    assert fake_loader() == [["-b", "ulx3s", "--detect"], ["-b", "ulx3s", mode, str(bit)]]
    assert r["detected"] == ["LFE5U-85"] and r["target"] == ("flash" if flash else "sram")


def test_another_board_is_refused_before_loading(tmp_path, fake_loader, monkeypatch):
    monkeypatch.setenv("FAKE_OFL_DETECT_OUT", DETECT.format(idcode=0x41111043, model="LFE5U-25"))
    with pytest.raises(ProgramError, match="reaches LFE5U-25, not ULX3S-85F's LFE5U-85F"):
        program_board(BOARDS["ulx3s-85f"], _bitstream(tmp_path, "ulx3s-85f"), echo=False)
    assert fake_loader() == [["-b", "ulx3s", "--detect"]]


def test_an_empty_chain_is_refused(tmp_path, fake_loader, monkeypatch):
    with pytest.raises(ProgramError, match="no FPGA openFPGALoader knows is on its JTAG chain"):
        program_board(BOARDS["tang-nano-9k"], _bitstream(tmp_path, "tang-nano-9k"), echo=False)


@pytest.mark.parametrize("name, output, found", [
    ("icebreaker", NO_FTDI, "found no FT2232H (SPI) (unable to open ftdi device"),
    ("orangecrab-85f", NO_DFU, ("found no DFU bootloader (Open device 1209:5af0 Not found); "
                                "is the board plugged in (with its button held")),
])
def test_no_probe_is_one_line_saying_what_was_found(tmp_path, fake_loader, monkeypatch, name,
                                                    output, found):
    monkeypatch.setenv("FAKE_OFL_PROGRAM_OUT", output)
    monkeypatch.setenv("FAKE_OFL_PROGRAM_RC", "1")
    with pytest.raises(ProgramError) as e:
        program_board(BOARDS[name], _bitstream(tmp_path, name), flash=True, echo=False)
    assert found in str(e.value) and "\n" not in str(e.value)


def test_a_missing_library_says_what_to_install(tmp_path, fake_loader, monkeypatch):
    monkeypatch.setenv("FAKE_OFL_PROGRAM_OUT", "openFPGALoader: error while loading shared "
                       "libraries: libftdi1.so.2: cannot open shared object file\n")
    monkeypatch.setenv("FAKE_OFL_PROGRAM_RC", "127")
    with pytest.raises(ProgramError, match="libftdi1.so.2 is missing .*apt-get install"):
        program_board(BOARDS["icebreaker"], _bitstream(tmp_path, "icebreaker"), echo=False)


def test_another_failure_shows_its_last_error_line(tmp_path, fake_loader, monkeypatch):
    monkeypatch.setenv("FAKE_OFL_PROGRAM_OUT", "Open file DONE\nError: bitstream too large\n")
    monkeypatch.setenv("FAKE_OFL_PROGRAM_RC", "1")
    with pytest.raises(ProgramError, match=r"-b ice40_generic failed \(exit status 1\): Error: "
                                           "bitstream too large"):
        program_board(BOARDS["icebreaker"], _bitstream(tmp_path, "icebreaker"), echo=False)


# -- nothing plugged in, through the command line -------------------------------------------------

def _real_loader_starts() -> bool:
    exe = loader_command()
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "--Version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.parametrize("name", ["ulx3s-85f", "tang-nano-9k"])
def test_no_cable_is_one_error_line(tmp_path, monkeypatch, capsys, request, name):
    """The real openFPGALoader where it starts (no board is plugged into the test machine),
    else a fake one with its output."""
    if not _real_loader_starts():
        request.getfixturevalue("fake_loader")
        monkeypatch.setenv("FAKE_OFL_DETECT_OUT", NO_FTDI)
        monkeypatch.setenv("FAKE_OFL_DETECT_RC", "1")
    bit = _bitstream(tmp_path, name)
    assert main(["program", "--board", name, "--bitstream", str(bit)]) == 2
    err = capsys.readouterr().err
    board = BOARDS[name]
    assert err.startswith(f"intrain: error: no {board.title} found: openFPGALoader -b "
                          f"{board.programmer.sram} found no {board.programmer.probe}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_program_without_a_build_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["program", "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intrain: error: no bitstream of iCEBreaker in "
                          f"{Path('build') / 'icebreaker'}")
    assert err.count("\n") == 1


def test_program_through_the_command_line(tmp_path, fake_loader, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_OFL_DETECT_OUT", DETECT.format(idcode=0x41113043, model="LFE5U-85"))
    monkeypatch.setenv("FAKE_OFL_PROGRAM_OUT", "Loading: [====] 100.00%\nDone\n")
    folder = tmp_path / "builds" / "ulx3s-85f"
    folder.mkdir(parents=True)
    bit = _bitstream(folder, "ulx3s-85f")
    assert main(["program", "--board", "ulx3s", "--build-dir", str(tmp_path / "builds"),
                 "--flash"]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(rf"ULX3S-85F \(LFE5U-85\): {re.escape(str(bit))} written to its flash "
                        r"in \d+\.\d s\n", out), out
    assert "Loading: [====] 100.00%" in err            # openFPGALoader's own progress
    assert fake_loader()[-1] == ["-b", "ulx3s", "-f", str(bit)]


def test_without_openfpgaloader_says_what_to_install(tmp_path, monkeypatch):
    from intrain.boards import program

    monkeypatch.setattr(program, "loader_command", lambda: None)
    with pytest.raises(ProgramError, match=r'pip install "intrain\[program\]"'):
        program_board(BOARDS["icebreaker"], _bitstream(tmp_path, "icebreaker"), echo=False)

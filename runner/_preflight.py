"""Pre-flight checks of media files against a model's `x-media` limits.

Two steps, kept apart so the decisions stay pure:

* `probe_image` / `probe_media` read only what a header tells (Pillow without
  `load()`, PyAV without decoding) into a frozen `MediaInfo`; an unreadable
  file raises `MediaUnreadable` with a plain sentence.
* `problems(info, limits)` compares a `MediaInfo` with the `x-media` limits of
  a field (`runner._models.media_limits`) and returns one sentence per broken
  limit, naming the number and the limit.

`check_local_file` joins the two for a path; `check_url` does what can be done
for a remote URL without downloading it (reachability, content type, size).

Limit keys (all optional but `kind`): kind image|video|audio, formats,
min_side, max_side, min_short_side, max_long_side, min_aspect, max_aspect
(width / height), max_bytes, min_duration, max_duration, min_fps_exclusive,
no_alpha.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
from PIL import Image, UnidentifiedImageError

from ._models import LIST_MEDIA, SINGLE_MEDIA, media_limits, media_scheme

#: MIME types a server may answer for each format (lower case)
FORMAT_MIME: dict[str, tuple[str, ...]] = {
    "JPEG": ("image/jpeg", "image/jpg", "image/pjpeg"),
    "PNG": ("image/png",),
    "WEBP": ("image/webp",),
    "BMP": ("image/bmp", "image/x-bmp", "image/x-ms-bmp"),
    "MP4": ("video/mp4",),
    "MOV": ("video/quicktime",),
    "WAV": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "MP3": ("audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"),
}
#: content types that say nothing about the file; object storage often serves these
_GENERIC_MIME = ("application/octet-stream", "binary/octet-stream", "")

#: seconds allowed for one URL check
URL_TIMEOUT = 15.0

_KIND_NOUN = {"image": "image", "video": "video", "audio": "audio file"}


class MediaUnreadable(ValueError):
    """A media file cannot be read as the kind of media it should be; the message says why."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a media file's header tells about it."""

    kind: str  #: "image", "video" or "audio"
    format: str  #: upper case: JPEG, PNG, WEBP, BMP, GIF, MP4, MOV, WAV, MP3, ...
    size: int  #: bytes on disk
    width: int | None = None
    height: int | None = None
    duration: float | None = None  #: seconds
    fps: float | None = None
    has_alpha: bool = False
    codec: str | None = None  #: codec of the first video (or audio) stream, e.g. "h264"


# --- probing (reads headers only) ------------------------------------------

def probe_image(path: Path) -> MediaInfo:
    """The header facts of an image. Raises MediaUnreadable, OSError for a missing file."""
    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: the limits speak instead
            with Image.open(path) as img:
                width, height = img.size
                fmt = (img.format or "unknown").upper()
                alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise MediaUnreadable(f"{path.name} is not a readable image ({_reason(exc)})") from exc
    return MediaInfo("image", fmt, size, width, height, has_alpha=alpha)


def probe_media(path: Path, kind: str = "video") -> MediaInfo:
    """The header facts of a video (`kind="video"`) or audio file. Raises MediaUnreadable, OSError."""
    size = path.stat().st_size
    noun = _KIND_NOUN.get(kind, kind)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise MediaUnreadable(f"{path.name} is an image, not a {noun}")
            fmt = _container_format(container.format.name, path)
            duration = container.duration / av.time_base if container.duration else None
            if kind == "video":
                if not container.streams.video:
                    raise MediaUnreadable(f"{path.name} has no video stream")
                stream = container.streams.video[0]
                ctx = stream.codec_context
                rate = stream.average_rate or stream.guessed_rate
                if duration is None and stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
                return MediaInfo(
                    "video", fmt, size, ctx.width or None, ctx.height or None, duration,
                    float(rate) if rate else None, codec=ctx.name,
                )
            if not container.streams.audio:
                raise MediaUnreadable(f"{path.name} has no audio stream")
            return MediaInfo("audio", fmt, size, duration=duration, codec=container.streams.audio[0].codec_context.name)
    except av.FFmpegError as exc:
        raise MediaUnreadable(f"{path.name} is not a readable {noun} ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.split(":")[0].strip().rstrip(".").lower() or type(exc).__name__


def _container_format(name: str, path: Path) -> str:
    """FFmpeg's demuxer name as a user-facing format; MP4 and MOV share a demuxer, the ftyp brand tells them apart."""
    first = name.split(",")[0]
    if first == "mov":
        with open(path, "rb") as fh:
            head = fh.read(12)
        if head[4:8] == b"ftyp":
            return "MOV" if head[8:12] == b"qt  " else "MP4"
        return "MOV"  # old QuickTime files start with moov/mdat/wide, not ftyp
    return {"matroska": "MKV", "mpegts": "TS"}.get(first, first.upper())


# --- decisions (pure) -------------------------------------------------------

def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def _mb(size: float) -> str:
    return f"{_num(size / (1024 * 1024))} MB"


def _aspect_text(value: Any) -> str:
    """0.4 -> '1:2.5', 2.5 -> '2.5:1'."""
    value = float(value)
    return f"{_num(value)}:1" if value >= 1 else f"1:{_num(1 / value)}"


def _fmt_list(formats: list[str]) -> str:
    return ", ".join(formats[:-1]) + f" or {formats[-1]}" if len(formats) > 1 else "".join(formats)


def problems(info: MediaInfo, limits: Mapping[str, Any]) -> list[str]:
    """One plain sentence per limit of `limits` that `info` breaks; empty when it fits."""
    noun = _KIND_NOUN.get(info.kind, info.kind)
    found: list[str] = []
    formats = [str(f).upper() for f in limits.get("formats", ())]
    if formats and info.format not in formats:
        found.append(f"{noun} format is {info.format}; it must be {_fmt_list(formats)}")
    if info.width and info.height:
        w, h = info.width, info.height
        dims = f"{noun} is {w}x{h} px"
        if "min_side" in limits and min(w, h) < limits["min_side"]:
            found.append(f"{dims}; both sides must be at least {limits['min_side']} px")
        if "max_side" in limits and max(w, h) > limits["max_side"]:
            found.append(f"{dims}; both sides must be at most {limits['max_side']} px")
        if "min_short_side" in limits and min(w, h) < limits["min_short_side"]:
            found.append(f"{dims}; the short side must be at least {limits['min_short_side']} px")
        if "max_long_side" in limits and max(w, h) > limits["max_long_side"]:
            found.append(f"{dims}; the long side must be at most {limits['max_long_side']} px")
        # exact arithmetic: 750x300 is exactly 2.5:1 and must pass
        ratio = Fraction(w, h)
        low, high = limits.get("min_aspect"), limits.get("max_aspect")
        if (low is not None and ratio < Fraction(str(low))) or (high is not None and ratio > Fraction(str(high))):
            bounds = (
                f"between {_aspect_text(low)} and {_aspect_text(high)}" if low is not None and high is not None
                else f"at least {_aspect_text(low)}" if low is not None else f"at most {_aspect_text(high)}"
            )
            found.append(f"{noun} aspect ratio is {_aspect_text(float(ratio))} ({w}x{h} px); it must be {bounds}")
    if limits.get("no_alpha") and info.has_alpha:
        found.append(f"{noun} has transparency (an alpha channel), which is not accepted; save it without alpha")
    if info.duration is not None:
        if "min_duration" in limits and info.duration < limits["min_duration"]:
            found.append(f"{noun} is {_num(info.duration)} s long; it must be at least {_num(limits['min_duration'])} s")
        if "max_duration" in limits and info.duration > limits["max_duration"]:
            found.append(f"{noun} is {_num(info.duration)} s long; it must be at most {_num(limits['max_duration'])} s")
    elif info.kind in ("video", "audio") and ("min_duration" in limits or "max_duration" in limits):
        found.append(f"{noun} duration cannot be read from its header")
    if "min_fps_exclusive" in limits:
        floor = limits["min_fps_exclusive"]
        if info.fps is None:
            found.append(f"{noun} frame rate cannot be read from its header; it must be above {_num(floor)} fps")
        elif info.fps <= floor:
            found.append(f"{noun} is {_num(info.fps)} fps; it must be above {_num(floor)} fps")
    if "max_bytes" in limits and info.size > limits["max_bytes"]:
        found.append(
            f"file is {_mb(info.size)} ({info.size:,} bytes); the limit is {_mb(limits['max_bytes'])} "
            f"({limits['max_bytes']:,} bytes)"
        )
    return found


# --- local files ------------------------------------------------------------

def probe(path: Path, kind: str) -> MediaInfo:
    """`probe_image` or `probe_media` by `kind`. Raises MediaUnreadable, OSError."""
    return probe_image(path) if kind == "image" else probe_media(path, kind)


def check_local_file(path: Path, limits: Mapping[str, Any]) -> list[str]:
    """Plain sentences, one per limit the file at `path` breaks; empty when it fits.

    Reads headers only. A missing, unreadable or corrupt file is one sentence,
    never an exception.
    """
    path = Path(path)
    kind = str(limits.get("kind", "image"))
    if not path.exists():
        return [f"file not found: {path}"]
    if not path.is_file():
        return [f"{path} is not a file"]
    try:
        info = probe(path, kind)
    except MediaUnreadable as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"{path.name} cannot be read ({exc.strerror or exc})"]
    return problems(info, limits)


# --- remote URLs ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UrlFacts:
    """What a server said about a URL without sending its body."""

    status: int
    content_type: str  #: lower case, without parameters; "" when absent
    size: int | None  #: bytes, when the server told


def url_problems(facts: UrlFacts, limits: Mapping[str, Any]) -> list[str]:
    """Sentences for what `facts` show to be wrong for a media field with `limits`."""
    if facts.status >= 400:
        return [f"URL answered HTTP {facts.status}; the file must be publicly readable"]
    kind = str(limits.get("kind", "image"))
    noun = _KIND_NOUN.get(kind, kind)
    found: list[str] = []
    formats = [str(f).upper() for f in limits.get("formats", ())]
    allowed = {m for f in formats for m in FORMAT_MIME.get(f, ())}
    if facts.content_type not in _GENERIC_MIME and allowed and facts.content_type not in allowed:
        found.append(f"URL serves {facts.content_type}, not a {_fmt_list(formats)} {noun}")
    if facts.size is not None and "max_bytes" in limits and facts.size > limits["max_bytes"]:
        found.append(
            f"file is {_mb(facts.size)} ({facts.size:,} bytes); the limit is {_mb(limits['max_bytes'])} "
            f"({limits['max_bytes']:,} bytes)"
        )
    return found


def _facts(response: aiohttp.ClientResponse) -> UrlFacts:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    size: int | None = None
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        size = int(total) if total.isdigit() else None
    elif response.status == 200 and (length := response.headers.get("Content-Length", "")).isdigit():
        size = int(length)
    return UrlFacts(response.status, content_type, size)


async def check_url(session: aiohttp.ClientSession, url: str, limits: Mapping[str, Any]) -> list[str]:
    """Sentences for what is wrong with a remote media URL: unreachable, wrong type, too big.

    A HEAD request first; when the server refuses HEAD (any 4xx/5xx), a GET for
    the first byte only. `oss://` URLs live in DashScope's own storage and are
    not checked; schemes other than http and https are refused. Never raises
    for network failures: they become a sentence.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "oss":
        return []
    if scheme not in ("http", "https"):
        return [f"URL scheme '{scheme}' is not supported; use http, https or oss"]
    timeout = aiohttp.ClientTimeout(total=URL_TIMEOUT)
    # This is the one place outside the API client that talks HTTP: it reports
    # network failures as sentences rather than as ApiError, so it maps them here.
    try:
        async with session.head(url, allow_redirects=True, timeout=timeout) as response:
            facts = _facts(response)
        if facts.status >= 400:
            headers = {"Range": "bytes=0-0"}
            async with session.get(url, headers=headers, allow_redirects=True, timeout=timeout) as response:
                facts = _facts(response)
    except asyncio.TimeoutError:
        return [f"URL did not answer within {_num(URL_TIMEOUT)} s"]
    except (aiohttp.ClientError, OSError, UnicodeError) as exc:  # UnicodeError: a host name idna refuses
        return [f"URL could not be reached ({type(exc).__name__}: {exc})"]
    return url_problems(facts, limits)


# --- every remote media of a set of jobs --------------------------------------

def remote_media(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, URL) of each http(s) media reference among a job's friendly fields."""
    found: list[tuple[str, str]] = []
    for name in (*SINGLE_MEDIA, *LIST_MEDIA):
        value = fields.get(name)
        refs = [(name, value)] if name in SINGLE_MEDIA else [(f"{name}[{i}]", v) for i, v in enumerate(value or ())]
        found.extend((path, ref) for path, ref in refs if isinstance(ref, str) and media_scheme(ref) in ("http", "https"))
    return found


async def check_remote_media(jobs: Iterable[Any], *, concurrency: int = 8) -> list[str]:
    """One line per problem of the remote media of `jobs` (as `runner._manifest.Job`): "where: job NAME: field: sentence".

    Each distinct (URL, model, field) is checked once, at most `concurrency` at
    a time. This sends requests to the media hosts (never to the API): it is
    what ``--check-urls`` turns on.
    """
    semaphore = asyncio.Semaphore(concurrency)
    checked: dict[tuple[str, str, str], asyncio.Task[list[str]]] = {}
    wanted: list[tuple[Any, str, tuple[str, str, str]]] = []
    async with aiohttp.ClientSession() as session:

        async def one(url: str, limits: Mapping[str, Any]) -> list[str]:
            async with semaphore:
                return await check_url(session, url, limits)

        async with asyncio.TaskGroup() as group:
            for job in jobs:
                for path, url in remote_media(job.fields):
                    field = path.split("[")[0]
                    limits = media_limits(job.model, field) or {}
                    key = (url, job.model, field)
                    if key not in checked:
                        checked[key] = group.create_task(one(url, limits))
                    wanted.append((job, path, key))
    lines: list[str] = []
    for job, path, key in wanted:
        where = f"{job.source}:{job.line}: " if getattr(job, "source", "") else ""
        lines.extend(f"{where}job {job.name}: {path}: {sentence}" for sentence in checked[key].result())
    return lines

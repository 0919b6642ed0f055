"""Real result videos: small H.264 MP4s of a given length and aspect ratio, made once each.

Encoding is CPU work (a 15 s clip takes ~0.2 s), so the server runs `mp4` in a
worker thread; the cache is process-wide and guarded by one lock per shape,
so concurrent downloads of the same shape encode it once.
"""

from __future__ import annotations

import io
import threading

import av
from PIL import Image, ImageDraw

from ._tasks import frame_size

FPS = 24

_cache: dict[tuple[int, str, int], bytes] = {}
_locks: dict[tuple[int, str, int], threading.Lock] = {}
_guard = threading.Lock()


def encode(seconds: int, width: int, height: int, fps: int = FPS) -> bytes:
    """An MP4 (H.264, yuv420p, libx264 ultrafast) of exactly `seconds * fps` frames."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        bar = max(4, width // 20)
        for index in range(seconds * fps):
            image = Image.new("RGB", (width, height), (24, 28, 48))
            x = (index * 3) % width
            ImageDraw.Draw(image).rectangle((x, 0, x + bar, height), fill=(250, 190, 20))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def mp4(seconds: int, ratio: str, sr: int) -> bytes:
    """The cached MP4 for (seconds, ratio, resolution tier); encoded on first use."""
    key = (seconds, ratio, sr)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _cache:
            width, height = frame_size(ratio, sr)
            _cache[key] = encode(seconds, width, height)
        return _cache[key]


def probe_image(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image, or None when Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable upload is just "unknown"
        return None


def probe_video(data: bytes) -> tuple[float, int, int] | None:
    """(seconds, width, height) of a video, or None when PyAV cannot read it."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            if container.duration is not None:
                seconds = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                return None  # no duration anywhere: unreadable as far as we are concerned
            return seconds, stream.codec_context.width, stream.codec_context.height
    except Exception:  # noqa: BLE001
        return None

"""Tiny synthetic media for the tests: images (Pillow), videos and audio (PyAV).

Everything is generated in the test's tmp_path; nothing is downloaded. Keep
sizes small: a 64x64, 1-second clip encodes in a few milliseconds.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import av
from PIL import Image


def image(path: Path, width: int, height: int, *, mode: str = "RGB", fmt: str | None = None, **save) -> Path:
    """An image of width x height saved at `path` (format from `fmt`, else the suffix)."""
    color = (90, 140, 200, 128)[: len(mode)] if mode in ("RGB", "RGBA") else 128
    Image.new(mode, (width, height), color).save(path, format=fmt, **save)
    return path


def pad_to(path: Path, size: int) -> Path:
    """Grow a file to exactly `size` bytes with trailing zeros (readers ignore them)."""
    current = path.stat().st_size
    assert current <= size, f"{path.name} is already {current} bytes"
    with open(path, "ab") as fh:
        fh.write(b"\0" * (size - current))
    return path


def video(
    path: Path,
    width: int = 64,
    height: int = 64,
    seconds: float = 1.0,
    *,
    fps: int = 24,
    codec: str = "libx264",
    faststart: bool = False,
) -> Path:
    """A clip of `seconds` (rounded to whole frames) at `fps`, in the container the suffix names."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), ((i * 7) % 256, 64, 128)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A mono 16-bit sine tone of exactly `seconds` (to the sample)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        count = round(seconds * rate)
        out.writeframes(b"".join(struct.pack("<h", int(4000 * math.sin(i / 5))) for i in range(count)))
    return path


def mp3(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A silent mono MP3 of about `seconds` (the encoder pads to whole frames)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        done, step = 0, 1152
        while done < seconds * rate:
            frame = av.AudioFrame(format=stream.format.name, layout="mono", samples=step)
            for plane in frame.planes:
                plane.update(b"\0" * plane.buffer_size)
            frame.sample_rate, frame.pts = rate, done
            done += step
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut a file to `fraction` of its bytes, as an interrupted download would leave it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path

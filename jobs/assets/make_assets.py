"""Regenerate the small demo assets in this folder: `python jobs/assets/make_assets.py`.

The images and clips are synthetic (gradients and moving bars) so the demo and
the tests never depend on downloaded media.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import av
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def gradient(width: int, height: int, hue: int) -> Image.Image:
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (horizontal, vertical, Image.new("L", (width, height), hue)))


def clip(path: Path, width: int, height: int, seconds: float, fps: int = 24) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        for i in range(int(seconds * fps)):
            img = Image.new("RGB", (width, height), (20, 20, 40))
            x = (i * 4) % width
            ImageDraw.Draw(img).rectangle((x, 0, x + 16, height), fill=(255, 200, 0))
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def tone(path: Path, seconds: float, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def main() -> None:
    gradient(640, 960, 40).save(HERE / "portrait.png")  # happyhorse-1.0-i2v first frame
    gradient(512, 512, 120).save(HERE / "ref-hero.png", optimize=True)  # r2v / video-edit references
    gradient(600, 450, 200).convert("RGB").save(HERE / "ref-prop.jpg", quality=80)
    gradient(480, 270, 10).save(HERE / "wan-first.png")  # wan2.7-i2v first and last frames
    gradient(480, 270, 250).save(HERE / "wan-last.png")
    clip(HERE / "edit-input.mp4", 568, 320, 4.0)  # happyhorse-1.0-video-edit input
    clip(HERE / "continue.mp4", 320, 240, 3.0)  # wan2.7-i2v first_clip
    tone(HERE / "speech.wav", 3.0)  # wan2.7-i2v driving_audio


if __name__ == "__main__":
    main()

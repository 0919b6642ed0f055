"""Pre-flight of local media files: every x-media limit, at its edges."""

from __future__ import annotations

from pathlib import Path

import pytest

import media_factory as mf
from runner._models import media_limits
from runner._preflight import check_local_file, probe_image, probe_media

I2V = media_limits("happyhorse-1.0-i2v", "first_frame")
R2V = media_limits("happyhorse-1.0-r2v", "reference_images")
EDIT = media_limits("happyhorse-1.0-video-edit", "video")
WAN_FRAME = media_limits("wan2.7-i2v", "first_frame")
WAN_CLIP = media_limits("wan2.7-i2v", "first_clip")
WAN_AUDIO = media_limits("wan2.7-i2v", "driving_audio")


# --- images -----------------------------------------------------------------

def test_image_at_min_side_passes(tmp_path: Path) -> None:
    """A 300x400 first frame meets happyhorse-i2v's 300 px minimum exactly."""
    assert check_local_file(mf.image(tmp_path / "a.png", 300, 400), I2V) == []


def test_image_one_pixel_under_min_side_fails_with_numbers(tmp_path: Path) -> None:
    """A 299x400 first frame is refused with its size and the limit in the sentence."""
    assert check_local_file(mf.image(tmp_path / "a.png", 299, 400), I2V) == [
        "image is 299x400 px; both sides must be at least 300 px"
    ]


def test_image_at_max_side_passes_and_one_over_fails(tmp_path: Path) -> None:
    """wan2.7 accepts a side of exactly 8000 px and refuses 8001."""
    assert check_local_file(mf.image(tmp_path / "a.png", 8000, 1000, fmt="PNG", compress_level=1), WAN_FRAME) == []
    assert check_local_file(mf.image(tmp_path / "b.png", 8001, 1001, compress_level=1), WAN_FRAME) == [
        "image is 8001x1001 px; both sides must be at most 8000 px"
    ]


def test_short_side_at_minimum_passes_and_below_fails(tmp_path: Path) -> None:
    """r2v reference images need a short side of at least 400 px: 400 passes, 399 fails."""
    assert check_local_file(mf.image(tmp_path / "a.jpg", 900, 400), R2V) == []
    assert check_local_file(mf.image(tmp_path / "b.jpg", 399, 900), R2V) == [
        "image is 399x900 px; the short side must be at least 400 px"
    ]


@pytest.mark.parametrize(("size", "ok"), [((750, 300), True), ((751, 300), False), ((300, 750), True), ((300, 751), False)])
def test_aspect_ratio_edges(tmp_path: Path, size: tuple[int, int], ok: bool) -> None:
    """Exactly 2.5:1 and 1:2.5 pass; one pixel further fails."""
    found = check_local_file(mf.image(tmp_path / "a.png", *size), I2V)
    assert (found == []) is ok
    if not ok:
        assert found[0].startswith(f"image aspect ratio is ") and "must be between 1:2.5 and 2.5:1" in found[0]


def test_wide_aspect_sentence_names_the_ratio(tmp_path: Path) -> None:
    """The aspect sentence gives the file's ratio and size."""
    assert check_local_file(mf.image(tmp_path / "a.png", 900, 300), I2V) == [
        "image aspect ratio is 3:1 (900x300 px); it must be between 1:2.5 and 2.5:1"
    ]


def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    """A GIF named .png is refused as a GIF; a PNG named .jpg is accepted."""
    gif = mf.image(tmp_path / "fake.png", 400, 400, mode="P", fmt="GIF")
    assert check_local_file(gif, I2V) == ["image format is GIF; it must be JPEG, PNG or WEBP"]
    png = mf.image(tmp_path / "real.jpg", 400, 400, fmt="PNG")
    assert check_local_file(png, I2V) == []


def test_bmp_allowed_only_where_listed(tmp_path: Path) -> None:
    """BMP is fine for wan2.7 frames but not for happyhorse-i2v."""
    bmp = mf.image(tmp_path / "a.bmp", 400, 400)
    assert check_local_file(bmp, WAN_FRAME) == []
    assert check_local_file(bmp, I2V) == ["image format is BMP; it must be JPEG, PNG or WEBP"]


def test_file_exactly_at_max_bytes_passes_one_byte_more_fails(tmp_path: Path) -> None:
    """A file of exactly max_bytes passes; max_bytes + 1 is refused with both sizes."""
    limits = {**I2V, "max_bytes": 5000}
    assert check_local_file(mf.pad_to(mf.image(tmp_path / "a.png", 400, 400), 5000), limits) == []
    assert check_local_file(mf.pad_to(mf.image(tmp_path / "b.png", 400, 400), 5001), limits) == [
        "file is 0 MB (5,001 bytes); the limit is 0 MB (5,000 bytes)"
    ]


def test_real_max_bytes_sentence_in_megabytes(tmp_path: Path) -> None:
    """Over happyhorse's 10 MB image limit, the sentence speaks in MB."""
    big = mf.pad_to(mf.image(tmp_path / "a.png", 400, 400), 10 * 1024 * 1024 + 524288)
    assert check_local_file(big, I2V) == ["file is 10.5 MB (11,010,048 bytes); the limit is 10 MB (10,485,760 bytes)"]


def test_alpha_refused_only_where_no_alpha(tmp_path: Path) -> None:
    """An RGBA PNG is refused for wan2.7 (no_alpha) and accepted for happyhorse-i2v."""
    rgba = mf.image(tmp_path / "a.png", 400, 400, mode="RGBA")
    assert check_local_file(rgba, WAN_FRAME) == [
        "image has transparency (an alpha channel), which is not accepted; save it without alpha"
    ]
    assert check_local_file(rgba, I2V) == []
    assert check_local_file(mf.image(tmp_path / "b.png", 400, 400), WAN_FRAME) == []


def test_palette_png_with_transparency_counts_as_alpha(tmp_path: Path) -> None:
    """A palette PNG with a transparent colour is refused where alpha is."""
    path = mf.image(tmp_path / "a.png", 400, 400, mode="P", transparency=0)
    assert probe_image(path).has_alpha
    assert len(check_local_file(path, WAN_FRAME)) == 1


def test_several_violations_all_reported(tmp_path: Path) -> None:
    """A small, too-wide GIF gets one sentence per broken limit."""
    found = check_local_file(mf.image(tmp_path / "a.gif", 800, 100, mode="P"), I2V)
    assert len(found) == 3
    assert found[0].startswith("image format is GIF")


def test_corrupt_image_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    """Random bytes named .png give one readable sentence."""
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image at all" * 10)
    found = check_local_file(path, I2V)
    assert len(found) == 1 and found[0].startswith("broken.png is not a readable image")


def test_missing_file_is_a_sentence(tmp_path: Path) -> None:
    """A path that does not exist is reported, not raised."""
    assert check_local_file(tmp_path / "nope.png", I2V) == [f"file not found: {tmp_path / 'nope.png'}"]


def test_directory_is_a_sentence(tmp_path: Path) -> None:
    """A directory given as a media file is reported."""
    assert check_local_file(tmp_path, I2V) == [f"{tmp_path} is not a file"]


def test_image_probe_reads_header_only(tmp_path: Path) -> None:
    """A PNG with its pixel data cut off still probes (only the header is read)."""
    path = mf.truncate(mf.image(tmp_path / "a.png", 2000, 2000, mode="RGB"), 0.3)
    assert probe_image(path).width == 2000


# --- videos -----------------------------------------------------------------

def test_video_within_limits_passes(tmp_path: Path) -> None:
    """A 3 s, 24 fps, 568x320 MP4 fits video-edit (3 s and 320 px are the minimums)."""
    assert check_local_file(mf.video(tmp_path / "a.mp4", 568, 320, 3.0), EDIT) == []


def test_video_too_short_fails(tmp_path: Path) -> None:
    """A clip under 3 s is refused for video-edit with its length."""
    found = check_local_file(mf.video(tmp_path / "a.mp4", 568, 320, 2.5), EDIT)
    assert found == ["video is 2.5 s long; it must be at least 3 s"]


def test_video_too_long_fails(tmp_path: Path) -> None:
    """wan2.7 first_clip allows 10 s: exactly 10 passes, 10.5 fails."""
    assert check_local_file(mf.video(tmp_path / "a.mp4", 240, 240, 10.0, fps=4), WAN_CLIP) == []
    assert check_local_file(mf.video(tmp_path / "b.mp4", 240, 240, 10.5, fps=4), WAN_CLIP) == [
        "video is 10.5 s long; it must be at most 10 s"
    ]


def test_video_fps_must_be_above_floor(tmp_path: Path) -> None:
    """video-edit needs more than 8 fps: 8 fails, 9 passes."""
    assert check_local_file(mf.video(tmp_path / "a.mp4", 568, 320, 3.0, fps=8), EDIT) == [
        "video is 8 fps; it must be above 8 fps"
    ]
    assert check_local_file(mf.video(tmp_path / "b.mp4", 568, 320, 3.0, fps=9), EDIT) == []


def test_video_short_and_long_side_limits(tmp_path: Path) -> None:
    """video-edit: a 318 px short side and a 2176 px long side are refused."""
    assert check_local_file(mf.video(tmp_path / "a.mp4", 560, 318, 3.0, fps=9), EDIT) == [
        "video is 560x318 px; the short side must be at least 320 px"
    ]
    long_side = mf.video(tmp_path / "b.mp4", 2176, 1088, 3.0, fps=9)
    assert check_local_file(long_side, EDIT) == ["video is 2176x1088 px; the long side must be at most 2160 px"]


def test_video_aspect_ratio_refused(tmp_path: Path) -> None:
    """A 3:1 clip breaks video-edit's 2.5:1 limit."""
    found = check_local_file(mf.video(tmp_path / "a.mp4", 960, 320, 3.0, fps=9), EDIT)
    assert found == ["video aspect ratio is 3:1 (960x320 px); it must be between 1:2.5 and 2.5:1"]


def test_mov_is_told_apart_from_mp4(tmp_path: Path) -> None:
    """A QuickTime file is MOV even when named .mp4; a limit of MP4 only refuses it."""
    mov = mf.video(tmp_path / "a.mov", 64, 64, 1.0)
    named_mp4 = tmp_path / "b.mp4"
    mov.rename(named_mp4)
    assert probe_media(named_mp4).format == "MOV"
    assert check_local_file(named_mp4, {"kind": "video", "formats": ["MP4"]}) == ["video format is MOV; it must be MP4"]
    assert probe_media(mf.video(tmp_path / "c.mp4", 64, 64, 1.0)).format == "MP4"


def test_video_in_other_container_refused(tmp_path: Path) -> None:
    """A Matroska file is refused by format, whatever its name."""
    path = mf.video(tmp_path / "a.mkv", 320, 320, 3.0, fps=9)
    named = path.rename(tmp_path / "a.mp4")
    assert check_local_file(named, EDIT) == ["video format is MKV; it must be MP4 or MOV"]


def test_video_size_limit(tmp_path: Path) -> None:
    """A clip over max_bytes is refused by size."""
    path = mf.video(tmp_path / "a.mp4", 64, 64, 1.0)
    size = path.stat().st_size
    assert check_local_file(path, {"kind": "video", "max_bytes": size}) == []
    assert check_local_file(path, {"kind": "video", "max_bytes": size - 1})[0].startswith("file is ")


def test_image_given_where_video_expected(tmp_path: Path) -> None:
    """A PNG in a video field is one sentence saying it is an image."""
    assert check_local_file(mf.image(tmp_path / "a.png", 64, 64), EDIT) == ["a.png is an image, not a video"]


def test_audio_given_where_video_expected(tmp_path: Path) -> None:
    """A WAV in a video field has no video stream."""
    assert check_local_file(mf.wav(tmp_path / "a.wav", 3.0), EDIT) == ["a.wav has no video stream"]


def test_corrupt_video_is_a_sentence(tmp_path: Path) -> None:
    """An MP4 cut in half before its index is one readable sentence."""
    path = mf.truncate(mf.video(tmp_path / "cut.mp4", 64, 64, 1.0), 0.5)
    found = check_local_file(path, EDIT)
    assert len(found) == 1 and found[0].startswith("cut.mp4 is not a readable video")


# --- audio ------------------------------------------------------------------

def test_wav_duration_edges(tmp_path: Path) -> None:
    """driving_audio: exactly 2 s and 30 s pass; 1.99 s and 30.01 s fail."""
    assert check_local_file(mf.wav(tmp_path / "a.wav", 2.0), WAN_AUDIO) == []
    assert check_local_file(mf.wav(tmp_path / "b.wav", 30.0, rate=400), WAN_AUDIO) == []
    assert check_local_file(mf.wav(tmp_path / "c.wav", 1.99), WAN_AUDIO) == [
        "audio file is 1.99 s long; it must be at least 2 s"
    ]
    assert check_local_file(mf.wav(tmp_path / "d.wav", 30.01, rate=400), WAN_AUDIO) == [
        "audio file is 30.01 s long; it must be at most 30 s"
    ]


def test_mp3_accepted(tmp_path: Path) -> None:
    """A 3 s MP3 fits driving_audio."""
    assert check_local_file(mf.mp3(tmp_path / "a.mp3", 3.0), WAN_AUDIO) == []


def test_audio_format_from_content(tmp_path: Path) -> None:
    """An MP3 named .wav is still an MP3; a list of WAV only refuses it."""
    path = mf.mp3(tmp_path / "a.mp3", 3.0).rename(tmp_path / "a.wav")
    assert check_local_file(path, {"kind": "audio", "formats": ["WAV"]}) == ["audio file format is MP3; it must be WAV"]


def test_audio_size_limit(tmp_path: Path) -> None:
    """driving_audio over 15 MB is refused by size."""
    path = mf.pad_to(mf.wav(tmp_path / "a.wav", 2.0), 15 * 1024 * 1024 + 1)
    found = check_local_file(path, WAN_AUDIO)
    assert found == ["file is 15 MB (15,728,641 bytes); the limit is 15 MB (15,728,640 bytes)"]


def test_text_file_as_audio_is_a_sentence(tmp_path: Path) -> None:
    """A text file in an audio field is reported as unreadable."""
    path = tmp_path / "notes.wav"
    path.write_text("hello\n" * 50)
    found = check_local_file(path, WAN_AUDIO)
    assert len(found) == 1 and "notes.wav" in found[0]


def test_demo_assets_pass_their_fields() -> None:
    """Every asset shipped in jobs/assets fits the field it is used for."""
    assets = Path(__file__).resolve().parent.parent / "jobs" / "assets"
    pairs = [
        ("portrait.png", I2V), ("ref-hero.png", R2V), ("ref-prop.jpg", R2V), ("edit-input.mp4", EDIT),
        ("wan-first.png", WAN_FRAME), ("wan-last.png", WAN_FRAME), ("continue.mp4", WAN_CLIP),
        ("speech.wav", WAN_AUDIO),
    ]
    for name, limits in pairs:
        assert check_local_file(assets / name, limits) == [], name

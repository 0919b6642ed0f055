"""Verification of downloaded result videos: codec, duration, aspect ratio, truncation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import media_factory as mf
from runner._models import build_body
from runner._verify import Expected, aspect_matches, duration_matches, expected_output, parse_ratio, verify_video


@dataclass
class Job:
    body: dict[str, Any]
    local_media: dict[str, Path] = field(default_factory=dict)


@dataclass
class Task:
    usage: dict[str, Any]


def _t2v(**fields: Any) -> Job:
    return Job(build_body({"model": "happyhorse-1.0-t2v", "prompt": "a fox", **fields}))


# --- pure parts -------------------------------------------------------------

def test_parse_ratio() -> None:
    """'16:9' is 16/9; malformed or zero ratios are None."""
    assert parse_ratio("16:9") == pytest.approx(16 / 9)
    assert parse_ratio("1:1") == 1.0
    assert parse_ratio("wide") is None and parse_ratio("0:1") is None and parse_ratio("1:2:3") is None


def test_duration_tolerance_edges() -> None:
    """5 s allows 4.5..5.5; 15 s allows 13.5..16.5."""
    assert duration_matches(4.5, 5) and duration_matches(5.5, 5) and not duration_matches(4.49, 5)
    assert duration_matches(13.5, 15) and not duration_matches(13.4, 15)


def test_aspect_tolerance_allows_even_rounding_only() -> None:
    """160x90 and 90x136 (rounded 2:3) match; 160x100 does not match 16:9."""
    assert aspect_matches(160, 90, 16 / 9)
    assert aspect_matches(90, 136, 640 / 960)
    assert not aspect_matches(160, 100, 16 / 9)
    assert not aspect_matches(90, 160, 16 / 9)


# --- expected output -----------------------------------------------------------

def test_expected_from_parameters_and_defaults() -> None:
    """t2v: duration and ratio from the request, else the schema defaults (5 s, 16:9)."""
    assert expected_output(_t2v(duration=8, ratio="9:16")) == Expected(8.0, pytest.approx(9 / 16))
    assert expected_output(_t2v()) == Expected(5.0, pytest.approx(16 / 9))


def test_expected_aspect_follows_local_first_frame(tmp_path: Path) -> None:
    """i2v: the aspect is the local first frame's (640x960 -> 2:3), duration the parameter."""
    img = mf.image(tmp_path / "p.png", 640, 960)
    job = Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": str(img), "duration": 3}), {"first_frame": img})
    assert expected_output(job) == Expected(3.0, pytest.approx(2 / 3))


def test_expected_aspect_unknown_for_remote_first_frame() -> None:
    """i2v with a remote first frame: the aspect cannot be told, so it is None."""
    job = Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": "https://x/a.png"}))
    assert expected_output(job) == Expected(5.0, None)


def test_expected_for_wan_continuation_uses_first_clip(tmp_path: Path) -> None:
    """wan2.7 with only a first clip takes the clip's aspect."""
    clip = mf.video(tmp_path / "c.mp4", 96, 64, 1.0)
    job = Job(build_body({"model": "wan2.7-i2v", "first_clip": str(clip), "duration": 4}), {"first_clip": clip})
    assert expected_output(job) == Expected(4.0, pytest.approx(1.5))


def test_expected_for_video_edit_follows_input_capped_at_15(tmp_path: Path) -> None:
    """video-edit: output length is the input's, capped at 15 s, and its aspect is the input's."""
    short = mf.video(tmp_path / "s.mp4", 96, 64, 4.0, fps=2)
    long = mf.video(tmp_path / "l.mp4", 64, 96, 20.0, fps=2)

    def job(path: Path) -> Job:
        return Job(build_body({"model": "happyhorse-1.0-video-edit", "prompt": "p", "video": str(path)}), {"video": path})

    assert expected_output(job(short)) == Expected(4.0, pytest.approx(1.5))
    assert expected_output(job(long)) == Expected(15.0, pytest.approx(2 / 3))


def test_expected_for_video_edit_with_remote_input_is_unknown() -> None:
    """video-edit with a remote input video: neither duration nor aspect is known."""
    job = Job(build_body({"model": "happyhorse-1.0-video-edit", "prompt": "p", "video": "https://x/v.mp4"}))
    assert expected_output(job) == Expected(None, None)


# --- verify_video -------------------------------------------------------------

def test_good_video_passes(tmp_path: Path) -> None:
    """A 5 s H.264 160x90 clip is what a default t2v job asked for."""
    assert verify_video(mf.video(tmp_path / "v.mp4", 160, 90, 5.0, fps=4), _t2v(), None) is None


def test_wrong_duration_rejected(tmp_path: Path) -> None:
    """A 3 s clip for a 5 s request is rejected with both numbers."""
    reason = verify_video(mf.video(tmp_path / "v.mp4", 160, 90, 3.0, fps=4), _t2v(), None)
    assert reason == "truncated: only 3.00 s of video where 5 s was expected"


def test_too_long_rejected(tmp_path: Path) -> None:
    """A 7 s clip for a 5 s request is rejected."""
    reason = verify_video(mf.video(tmp_path / "v.mp4", 160, 90, 7.0, fps=4), _t2v(), None)
    assert reason == "too long: 7.00 s of video where 5 s was expected"


def test_duration_edge_within_tolerance_passes(tmp_path: Path) -> None:
    """4.5 s for a 5 s request is inside the 0.5 s tolerance."""
    assert verify_video(mf.video(tmp_path / "v.mp4", 160, 90, 4.5, fps=4), _t2v(), None) is None


def test_truncated_download_rejected_though_header_claims_full_length(tmp_path: Path) -> None:
    """A faststart MP4 cut short keeps its full-length index, but its frames stop early: rejected."""
    path = mf.truncate(mf.video(tmp_path / "v.mp4", 160, 90, 5.0, fps=8, faststart=True), 0.4)
    reason = verify_video(path, _t2v(), None)
    assert reason is not None and reason.startswith("truncated: only")


def test_truncated_without_index_rejected(tmp_path: Path) -> None:
    """An MP4 cut before its index is not a readable video."""
    path = mf.truncate(mf.video(tmp_path / "v.mp4", 160, 90, 5.0, fps=4), 0.5)
    assert verify_video(path, _t2v(), None).startswith("the file is not a readable video")


def test_wrong_aspect_rejected(tmp_path: Path) -> None:
    """A square video for a 16:9 request is rejected with both aspects."""
    reason = verify_video(mf.video(tmp_path / "v.mp4", 96, 96, 5.0, fps=4), _t2v(), None)
    assert reason == "the video is 96x96 (aspect 1.000); the request implies an aspect of 1.778"


def test_non_h264_rejected(tmp_path: Path) -> None:
    """An MPEG-4 Part 2 video is rejected by codec."""
    path = mf.video(tmp_path / "v.mp4", 160, 90, 5.0, fps=4, codec="mpeg4")
    assert verify_video(path, _t2v(), None) == "the video is encoded as mpeg4, not H.264"


def test_not_a_video_rejected(tmp_path: Path) -> None:
    """An HTML error page saved as .mp4 and an audio file are both rejected with a reason."""
    page = tmp_path / "v.mp4"
    page.write_text("<html><body>AccessDenied</body></html>")
    assert verify_video(page, _t2v(), None).startswith("the file is not a readable video")
    assert verify_video(mf.wav(tmp_path / "a.wav", 5.0), _t2v(), None) == "the file has no video stream"


def test_missing_file_rejected(tmp_path: Path) -> None:
    """A path with no file gives a reason, not an exception."""
    assert verify_video(tmp_path / "none.mp4", _t2v(), None) == "the file is missing"


def test_usage_duration_used_when_job_cannot_tell(tmp_path: Path) -> None:
    """video-edit with a remote input: the task's usage output_video_duration is the yardstick."""
    job = Job(build_body({"model": "happyhorse-1.0-video-edit", "prompt": "p", "video": "https://x/v.mp4"}))
    path = mf.video(tmp_path / "v.mp4", 96, 64, 4.0, fps=4)
    assert verify_video(path, job, Task({"output_video_duration": 4.0})) is None
    assert verify_video(path, job, {"usage": {"output_video_duration": 8}}) == (
        "truncated: only 4.00 s of video where 8 s was expected"
    )
    assert verify_video(path, job, None) is None


def test_first_frame_aspect_checked(tmp_path: Path) -> None:
    """i2v from a 2:3 portrait: a 90x136 result passes, a 160x90 one is rejected."""
    img = mf.image(tmp_path / "p.png", 640, 960)
    job = Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": str(img), "duration": 3}), {"first_frame": img})
    assert verify_video(mf.video(tmp_path / "a.mp4", 90, 136, 3.0, fps=4), job, None) is None
    assert verify_video(mf.video(tmp_path / "b.mp4", 160, 90, 3.0, fps=4), job, None) is not None

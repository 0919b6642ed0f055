"""Verification of real simulator output: good videos pass, wrong-duration ones are rejected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import media_factory as mf
from runner._client import DashScopeClient, TaskInfo
from runner._models import build_body
from runner._sim import Faults, SimConfig, Simulator
from runner._upload import Uploader
from runner._verify import verify_video

KEY = "sk-verify-test"


@dataclass
class Job:
    body: dict[str, Any]
    local_media: dict[str, Path] = field(default_factory=dict)


class _MemoryJournal:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}

    def find_upload(self, content_hash: str, model: str, now: float) -> str | None:
        return self.rows.get((content_hash, model))

    def record_upload(self, content_hash: str, model: str, url: str, expires_at: float) -> None:
        self.rows[(content_hash, model)] = url


async def _generate(sim: Simulator, client: DashScopeClient, job: Job, dest: Path) -> tuple[Path, TaskInfo]:
    """Upload, create, jump the simulated clock past generation, download."""
    body, header = await Uploader(client, _MemoryJournal()).resolve(job)
    created = await client.create(body, oss_resolve=header)
    sim.clock.advance(3600)
    task = await client.query(created.task_id)
    assert task.status == "SUCCEEDED", task
    got = await client.download(task.video_url, dest)
    return got.path, task


def _config(**faults: Any) -> SimConfig:
    return SimConfig(api_key=KEY, submit_rps=0, query_rps=0, faults=Faults(**faults))


async def test_simulator_videos_pass_for_each_kind_of_request(tmp_path: Path) -> None:
    """t2v (9:16, 4 s), i2v from a portrait, and video-edit from a local clip all verify."""
    portrait = mf.image(tmp_path / "p.png", 640, 960)
    clip = mf.video(tmp_path / "in.mp4", 568, 320, 4.0, fps=12)
    jobs = [
        Job(build_body({"model": "happyhorse-1.0-t2v", "prompt": "a fox", "ratio": "9:16", "duration": 4,
                        "resolution": "720P"})),
        Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": str(portrait), "duration": 3}),
            {"first_frame": portrait}),
        Job(build_body({"model": "happyhorse-1.0-video-edit", "prompt": "make it snow", "video": str(clip)}),
            {"video": clip}),
    ]
    async with Simulator(_config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        for i, job in enumerate(jobs):
            path, task = await _generate(sim, client, job, tmp_path / f"out{i}.mp4")
            assert verify_video(path, job, task) is None, job.body["model"]


async def test_wrong_duration_video_from_simulator_rejected(tmp_path: Path) -> None:
    """The simulator's wrong_duration fault (usage still claims the asked length) is caught."""
    job = Job(build_body({"model": "happyhorse-1.0-t2v", "prompt": "a fox", "duration": 5}))
    async with Simulator(_config(wrong_duration_rate=1.0)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        path, task = await _generate(sim, client, job, tmp_path / "out.mp4")
    reason = verify_video(path, job, task)
    assert reason == "too long: 7.00 s of video where 5 s was expected"


async def test_wrong_duration_caught_from_usage_when_job_cannot_tell(tmp_path: Path) -> None:
    """video-edit from a remote clip: the usage duration is the yardstick, and a wrong video fails it."""
    job = Job(build_body({"model": "happyhorse-1.0-video-edit", "prompt": "p", "video": "https://example.com/in.mp4"}))
    async with Simulator(_config(wrong_duration_rate=1.0)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        path, task = await _generate(sim, client, job, tmp_path / "out.mp4")
    assert verify_video(path, job, task) == "too long: 7.00 s of video where 5 s was expected"

"""Uploads end to end against the simulator: one upload per file and model, reused by a re-run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import media_factory as mf
from runner._client import DashScopeClient
from runner._models import build_body
from runner._retry import RetryPolicy
from runner._sim import Faults, SimConfig, Simulator
from runner._upload import Uploader

journal_mod = pytest.importorskip("runner._journal")

KEY = "sk-media-test"


@dataclass
class Job:
    body: dict[str, Any]
    local_media: dict[str, Path]


def _job(img: Path, prompt: str) -> Job:
    return Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": str(img), "prompt": prompt}), {"first_frame": img})


async def test_two_jobs_and_a_rerun_upload_a_shared_file_once(tmp_path: Path) -> None:
    """Two jobs sharing a first frame cause one storage upload; a re-run with the same journal causes none."""
    img = mf.image(tmp_path / "portrait.png", 640, 960)
    async with Simulator(SimConfig(api_key=KEY, time_scale=1000, submit_rps=0, query_rps=0)) as sim:
        async with DashScopeClient(sim.base_url, KEY) as client:
            with journal_mod.Journal.open(tmp_path / "out") as journal:
                uploader = Uploader(client, journal)
                first, header = await uploader.resolve(_job(img, "one"))
                second, _ = await uploader.resolve(_job(img, "two"))
                assert sim.count("upload") == 1
                url = first["input"]["media"][0]["url"]
                assert url == second["input"]["media"][0]["url"] and url.startswith("oss://") and header
                assert url.removeprefix("oss://") in sim.objects
                created = await client.create(first, oss_resolve=header)
                assert created.task_id
            with journal_mod.Journal.open(tmp_path / "out") as journal:  # the re-run
                again, _ = await Uploader(client, journal).resolve(_job(img, "one"))
    assert sim.count("upload") == 1 and sim.count("policy") == 1
    assert again["input"]["media"][0]["url"] == url


async def test_upload_retried_after_storage_error(tmp_path: Path) -> None:
    """A storage 500 on the first upload is retried and the second attempt is stored."""
    async def no_sleep(_: float) -> None:
        return None

    img = mf.image(tmp_path / "a.png", 400, 400)
    faults = Faults(error_rate=1.0, error_on=("upload",))
    async with Simulator(SimConfig(api_key=KEY, faults=faults)) as sim:
        async with DashScopeClient(sim.base_url, KEY) as client:
            uploader = Uploader(client, _MemoryJournal(), policy=RetryPolicy(attempts=3, base=0), sleep=no_sleep)

            async def policy_healing_storage(model: str) -> Any:
                if sim.count("upload") >= 1:  # storage recovers after its first failed upload
                    sim.set_faults(Faults())
                return await DashScopeClient.upload_policy(client, model)

            client.upload_policy = policy_healing_storage  # type: ignore[method-assign]
            body, _ = await uploader.resolve(_job(img, "p"))
    assert sim.count("upload", 500) == 1 and sim.count("upload", 200) == 1
    assert body["input"]["media"][0]["url"].startswith("oss://")


class _MemoryJournal:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[str, float]] = {}

    def find_upload(self, content_hash: str, model: str, now: float) -> str | None:
        row = self.rows.get((content_hash, model))
        return row[0] if row and row[1] > now else None

    def record_upload(self, content_hash: str, model: str, url: str, expires_at: float) -> None:
        self.rows[(content_hash, model)] = (url, expires_at)

"""Uploads of local media: oss:// substitution, reuse by content hash, coalescing, retries."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import media_factory as mf
from runner._errors import RequestRejected, TransientError
from runner._models import build_body
from runner._retry import RetryPolicy
from runner._upload import Uploader, needs_oss_resolve, replace_media, upload_expiry

NO_WAIT = RetryPolicy(attempts=3, base=0.0, jitter=0.0)


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Policy:
    expire_in_seconds: int | None = 172800


class FakeClient:
    """Counts policies and uploads; can fail the first N uploads or hold them at a gate."""

    def __init__(self, *, fail_first: int = 0, gate: asyncio.Event | None = None, expire: int | None = 172800) -> None:
        self.policies: list[str] = []
        self.uploads: list[Path] = []
        self.fail_first = fail_first
        self.gate = gate
        self.expire = expire
        self.active = 0
        self.max_active = 0

    async def upload_policy(self, model: str) -> Policy:
        self.policies.append(model)
        return Policy(self.expire)

    async def upload(self, policy: Policy, path: Path) -> str:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            self.uploads.append(path)
            if len(self.uploads) <= self.fail_first:
                raise TransientError("storage 503", status=503)
            return f"oss://dir/{len(self.uploads)}-{path.name}"
        finally:
            self.active -= 1


@dataclass
class FakeJournal:
    rows: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def find_upload(self, content_hash: str, model: str, now: float) -> str | None:
        row = self.rows.get((content_hash, model))
        return row[0] if row and row[1] > now else None

    def record_upload(self, content_hash: str, model: str, url: str, expires_at: float) -> None:
        self.rows[(content_hash, model)] = (url, expires_at)


@dataclass
class Job:
    body: dict[str, Any]
    local_media: dict[str, Path]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _i2v_job(path: Path, model: str = "happyhorse-1.0-i2v") -> Job:
    body = build_body({"model": model, "first_frame": str(path), "prompt": "waves"})
    return Job(body, {"first_frame": path})


def _r2v_job(paths: list[Path]) -> Job:
    body = build_body({"model": "happyhorse-1.0-r2v", "prompt": "character1 and character2",
                       "reference_images": ["https://example.com/keep.png", *map(str, paths)]})
    return Job(body, {f"reference_images[{i + 1}]": p for i, p in enumerate(paths)})


# --- pure parts -------------------------------------------------------------

def test_replace_media_sets_single_and_indexed_fields() -> None:
    """first_frame and reference_images[i] address the right media entries; the input is not changed."""
    body = build_body({"model": "happyhorse-1.0-video-edit", "prompt": "p", "video": "v.mp4",
                       "reference_images": ["a.png", "b.png"]})
    out = replace_media(body, {"video": "oss://v", "reference_images[1]": "oss://b"})
    assert out["input"]["media"] == [
        {"type": "video", "url": "oss://v"},
        {"type": "reference_image", "url": "a.png"},
        {"type": "reference_image", "url": "oss://b"},
    ]
    assert body["input"]["media"][0]["url"] == "v.mp4"


def test_replace_media_unknown_field_path_raises() -> None:
    """A field path with no media entry in the body is a bug, reported as ValueError."""
    body = build_body({"model": "happyhorse-1.0-i2v", "first_frame": "a.png"})
    with pytest.raises(ValueError, match=r"reference_images\[0\]"):
        replace_media(body, {"reference_images[0]": "oss://x"})


def test_needs_oss_resolve_only_for_oss_media() -> None:
    """The resolve header is needed when any media URL is oss://, including ones written by the user."""
    assert not needs_oss_resolve(build_body({"model": "happyhorse-1.0-t2v", "prompt": "p"}))
    assert not needs_oss_resolve(build_body({"model": "happyhorse-1.0-i2v", "first_frame": "https://x/a.png"}))
    assert needs_oss_resolve(build_body({"model": "happyhorse-1.0-i2v", "first_frame": "oss://d/a.png"}))


def test_upload_expiry_keeps_a_safety_margin() -> None:
    """A 48 h upload is reused for 47 h; a 10-minute one for 5 minutes; an unknown one for 30 minutes."""
    assert upload_expiry(0.0, 172800) == 172800 - 3600
    assert upload_expiry(100.0, 600) == 400.0
    assert upload_expiry(0.0, None) == 1800.0


# --- the uploader -------------------------------------------------------------

async def test_resolve_replaces_local_path_with_oss_url(tmp_path: Path) -> None:
    """A local first frame is uploaded and the body carries its oss:// URL and needs the header."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    client, journal = FakeClient(), FakeJournal()
    body, header = await Uploader(client, journal).resolve(_i2v_job(img))
    assert body["input"]["media"] == [{"type": "first_frame", "url": "oss://dir/1-a.png"}]
    assert header is True
    assert client.policies == ["happyhorse-1.0-i2v"]


async def test_job_without_local_media_sends_nothing(tmp_path: Path) -> None:
    """A job with only remote media is returned unchanged, with no uploads and no header."""
    client = FakeClient()
    job = Job(build_body({"model": "happyhorse-1.0-i2v", "first_frame": "https://x/a.png"}), {})
    body, header = await Uploader(client, FakeJournal()).resolve(job)
    assert body == job.body and header is False and client.uploads == []


async def test_same_file_in_two_jobs_uploaded_once(tmp_path: Path) -> None:
    """A second job with the same file (even under another name) reuses the first upload."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    copy = tmp_path / "copy.png"
    copy.write_bytes(img.read_bytes())
    client = FakeClient()
    uploader = Uploader(client, FakeJournal())
    first, _ = await uploader.resolve(_i2v_job(img))
    second, _ = await uploader.resolve(_i2v_job(copy))
    assert len(client.uploads) == 1
    assert first["input"]["media"] == second["input"]["media"]
    assert (uploader.uploaded, uploader.reused) == (1, 1)


async def test_rerun_reuses_upload_from_journal(tmp_path: Path) -> None:
    """A new uploader (a re-run) with the same journal sends no bytes for a live upload."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    journal = FakeJournal()
    await Uploader(FakeClient(), journal).resolve(_i2v_job(img))
    client = FakeClient()
    body, header = await Uploader(client, journal).resolve(_i2v_job(img))
    assert client.uploads == [] and client.policies == []
    assert body["input"]["media"][0]["url"] == "oss://dir/1-a.png" and header


async def test_expired_upload_is_sent_again(tmp_path: Path) -> None:
    """Once the clock passes an upload's expiry (less the margin), the file is uploaded again."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    clock, journal = Clock(), FakeJournal()
    client = FakeClient(expire=600)
    uploader = Uploader(client, journal, clock=clock)
    await uploader.resolve(_i2v_job(img))
    clock.now += 299
    await uploader.resolve(_i2v_job(img))
    assert len(client.uploads) == 1
    clock.now += 2
    await uploader.resolve(_i2v_job(img))
    assert len(client.uploads) == 2


async def test_upload_is_per_model(tmp_path: Path) -> None:
    """The same file for two models is uploaded under each model's policy."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    client = FakeClient()
    uploader = Uploader(client, FakeJournal())
    await uploader.resolve(_i2v_job(img))
    await uploader.resolve(_i2v_job(img, model="wan2.7-i2v"))
    assert client.policies == ["happyhorse-1.0-i2v", "wan2.7-i2v"]


async def test_changed_file_is_uploaded_again(tmp_path: Path) -> None:
    """Editing the file in place changes its hash, so it is not mistaken for the old upload."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    client = FakeClient()
    uploader = Uploader(client, FakeJournal())
    await uploader.resolve(_i2v_job(img))
    mf.image(img, 500, 400)
    await uploader.resolve(_i2v_job(img))
    assert len(client.uploads) == 2


async def test_concurrent_jobs_sharing_a_file_coalesce(tmp_path: Path) -> None:
    """Twenty jobs resolving one file at once cause a single upload and all get its URL."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    gate = asyncio.Event()
    client = FakeClient(gate=gate)
    uploader = Uploader(client, FakeJournal())
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(uploader.resolve(_i2v_job(img))) for _ in range(20)]
        for _ in range(20):
            await asyncio.sleep(0)
        gate.set()
    urls = {t.result()[0]["input"]["media"][0]["url"] for t in tasks}
    assert urls == {"oss://dir/1-a.png"} and len(client.uploads) == 1


async def test_uploads_limited_by_concurrency(tmp_path: Path) -> None:
    """Six distinct files with concurrency 2 never have more than two uploads in flight."""
    paths = [mf.image(tmp_path / f"{i}.png", 400 + i, 400) for i in range(6)]
    client = FakeClient()
    uploader = Uploader(client, FakeJournal(), concurrency=2)
    body, _ = await uploader.resolve(_r2v_job(paths))
    assert client.max_active == 2 and len(client.uploads) == 6
    urls = [m["url"] for m in body["input"]["media"]]
    assert urls[0] == "https://example.com/keep.png"
    assert all(u.startswith("oss://") for u in urls[1:]) and len(set(urls)) == 7


async def test_reference_order_is_kept(tmp_path: Path) -> None:
    """reference_images[1] gets the URL of its own file, not another's."""
    a, b = mf.image(tmp_path / "a.png", 400, 400), mf.image(tmp_path / "b.png", 410, 400)
    body, _ = await Uploader(FakeClient(), FakeJournal()).resolve(_r2v_job([a, b]))
    assert [m["url"].split("-", 1)[1] for m in body["input"]["media"][1:]] == ["a.png", "b.png"]


async def test_transient_upload_failure_retried(tmp_path: Path) -> None:
    """A storage 503 is retried with a fresh policy and then succeeds."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    client = FakeClient(fail_first=2)
    body, _ = await Uploader(client, FakeJournal(), policy=NO_WAIT, sleep=_no_sleep).resolve(_i2v_job(img))
    assert len(client.uploads) == 3 and len(client.policies) == 3
    assert body["input"]["media"][0]["url"] == "oss://dir/3-a.png"


async def test_exhausted_retries_raise_the_api_error_and_record_nothing(tmp_path: Path) -> None:
    """After the last attempt the job gets the TransientError itself (not a group) and no upload is recorded."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    journal = FakeJournal()
    uploader = Uploader(FakeClient(fail_first=10), journal, policy=NO_WAIT, sleep=_no_sleep)
    with pytest.raises(TransientError):
        await uploader.resolve(_i2v_job(img))
    assert journal.rows == {}


async def test_waiters_get_the_leaders_failure(tmp_path: Path) -> None:
    """Jobs waiting on a shared upload that fails all fail with the same error, without uploading again."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    gate = asyncio.Event()
    client = FakeClient(fail_first=10, gate=gate)
    uploader = Uploader(client, FakeJournal(), policy=RetryPolicy(attempts=1), sleep=_no_sleep)
    jobs = [asyncio.create_task(uploader.resolve(_i2v_job(img))) for _ in range(3)]
    while client.active == 0:
        await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in results)
    assert len(client.uploads) == 1


async def test_cancelled_leader_hands_over_to_a_waiter(tmp_path: Path) -> None:
    """If the job uploading a shared file is cancelled, a waiting job uploads it instead of failing."""
    img = mf.image(tmp_path / "a.png", 400, 400)
    gate = asyncio.Event()
    client = FakeClient(gate=gate)
    uploader = Uploader(client, FakeJournal())
    leader = asyncio.create_task(uploader.resolve(_i2v_job(img)))
    while client.active == 0:
        await asyncio.sleep(0)
    follower = asyncio.create_task(uploader.resolve(_i2v_job(img)))
    for _ in range(5):
        await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    gate.set()
    body, _ = await follower
    assert body["input"]["media"][0]["url"].startswith("oss://")


async def test_unreadable_file_is_request_rejected(tmp_path: Path) -> None:
    """A local file that vanished before upload fails the job with RequestRejected (LocalFile)."""
    with pytest.raises(RequestRejected) as caught:
        await Uploader(FakeClient(), FakeJournal()).resolve(_i2v_job(tmp_path / "gone.png"))
    assert caught.value.code == "LocalFile"


async def test_async_journal_methods_supported(tmp_path: Path) -> None:
    """A journal whose find_upload/record_upload are coroutines works the same."""

    class AsyncJournal(FakeJournal):
        async def find_upload(self, *a: Any) -> str | None:  # type: ignore[override]
            return FakeJournal.find_upload(self, *a)

        async def record_upload(self, *a: Any) -> None:  # type: ignore[override]
            FakeJournal.record_upload(self, *a)

    img = mf.image(tmp_path / "a.png", 400, 400)
    client, journal = FakeClient(), AsyncJournal()
    await Uploader(client, journal).resolve(_i2v_job(img))
    await Uploader(client, journal).resolve(_i2v_job(img))
    assert len(client.uploads) == 1 and len(journal.rows) == 1

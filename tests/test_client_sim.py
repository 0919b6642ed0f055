"""DashScopeClient end to end against the built-in simulator (runner._sim)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import av
import pytest

from runner._client import DashScopeClient, Exchange
from runner._errors import AccountError, RequestRejected, Throttled, TransientError, UrlExpired
from runner._retry import RetryPolicy, retry_call
from runner._runlog import RunLog
from runner._sim import Faults, SimConfig, Simulator

KEY = "sk-sim-e2e-4c1d9b77aa01"
T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse on a beach"},
       "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 3}}


def config(**kwargs) -> SimConfig:
    return SimConfig(api_key=KEY, time_scale=1.0, submit_rps=0, query_rps=0, **kwargs)


async def test_create_query_download_round_trip(tmp_path):
    """Create a task, see it finish, download a real H.264 MP4 whose checksum matches."""
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        task = await client.create(T2V)
        assert task.status == "PENDING" and sim.count("create") == 1
        sim.clock.advance(3600)
        done = await client.query(task.task_id)
        assert done.status == "SUCCEEDED" and done.video_url
        assert done.submit_time and done.end_time and done.usage
        got = await client.download(done.video_url, tmp_path / "t2v.mp4")
    data = got.path.read_bytes()
    assert got.size == len(data) and got.sha256 == hashlib.sha256(data).hexdigest()
    with av.open(str(got.path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


async def test_upload_then_create_with_oss_media(tmp_path):
    """A local image is uploaded under a fresh policy and an i2v create referring to oss:// is accepted."""
    image = "jobs/assets/portrait.png"
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        policy = await client.upload_policy("happyhorse-1.0-i2v")
        url = await client.upload(policy, image)
        assert url.removeprefix("oss://") in sim.objects
        body = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": url}]},
                "parameters": {"resolution": "720P", "duration": 3}}
        task = await client.create(body, oss_resolve=True)
        assert task.task_id in sim.tasks


async def test_wrong_key_is_an_account_error():
    """The simulator refuses a wrong key; the client raises AccountError (exit 5)."""
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, "sk-wrong") as client:
        with pytest.raises(AccountError) as info:
            await client.create(T2V)
    assert info.value.exit_code == 5


async def test_invalid_parameters_are_rejected_with_the_server_code():
    """A body the model refuses is a RequestRejected carrying the server's code."""
    bad = {**T2V, "parameters": {"duration": 99}}
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        with pytest.raises(RequestRejected) as info:
            await client.create(bad)
    assert info.value.status == 400 and info.value.code


async def test_arrearage_stops_submissions():
    """An account in arrears answers creates with an AccountError."""
    faults = Faults(account_error="Arrearage", account_error_after=0)
    async with Simulator(config(faults=faults)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        with pytest.raises(AccountError, match="Arrearage"):
            await client.create(T2V)


async def test_rate_quota_is_throttled():
    """Past the submit quota the simulator answers 429 and the client raises Throttled."""
    cfg = SimConfig(api_key=KEY, time_scale=1.0, submit_rps=2, query_rps=0)
    async with Simulator(cfg) as sim, DashScopeClient(sim.base_url, KEY) as client:
        with pytest.raises(Throttled) as info:
            for _ in range(5):
                await client.create(T2V)
    assert info.value.status == 429 and info.value.reached_server


async def test_dropped_create_is_not_retried_and_dropped_query_is():
    """A dropped create is raised at once (it may exist); a dropped query is retried to success."""
    faults = Faults(drop_rate=1.0, drop_on=("create",))
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    async with Simulator(config(faults=faults)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        with pytest.raises(TransientError) as info:
            await retry_call(lambda: client.create(T2V), policy=RetryPolicy(), is_create=True, sleep=no_sleep)
        assert info.value.reached_server is True
        assert sim.count("create") == 1 and slept == []

        sim.set_faults(Faults())
        task = await client.create(T2V)
        # the first query is dropped; the fault is lifted before the retry
        sim.set_faults(Faults(drop_rate=1.0, drop_on=("query",)))
        got = await retry_call(lambda: client.query(task.task_id), policy=RetryPolicy(), sleep=no_sleep,
                               on_retry=lambda *_: sim.set_faults(Faults()))
        assert got.task_id == task.task_id
        # (aiohttp itself resends a GET once when a kept-alive connection drops; a POST never)
        assert sim.count("query", None) >= 1 and sim.count("query", 200) == 1 and len(slept) == 1


async def test_truncated_download_is_transient_and_leaves_nothing(tmp_path):
    """The simulator's truncation fault gives a TransientError and no file at all."""
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        task = await client.create(T2V)
        sim.clock.advance(3600)
        done = await client.query(task.task_id)
        sim.set_faults(Faults(truncate_rate=1.0))
        with pytest.raises(TransientError):
            await client.download(done.video_url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_expired_video_url_raises_url_expired(tmp_path):
    """After the URL's lifetime storage answers 403 and the client raises UrlExpired."""
    async with Simulator(config(url_ttl=60)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        task = await client.create(T2V)
        sim.clock.advance(3600)
        done = await client.query(task.task_id)
        sim.clock.advance(120)
        with pytest.raises(UrlExpired):
            await client.download(done.video_url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_list_and_cancel(tmp_path):
    """list_tasks finds the tasks just created; a PENDING task can be cancelled."""
    async with Simulator(config(concurrency=1)) as sim, DashScopeClient(sim.base_url, KEY) as client:
        first = await client.create(T2V)
        second = await client.create(T2V)
        now = datetime.now(timezone.utc)
        tasks, total = await client.list_tasks(start_time=now - timedelta(hours=1),
                                               end_time=now + timedelta(hours=1), model=T2V["model"])
        assert {t.task_id for t in tasks} >= {first.task_id, second.task_id} and total >= 2
        await client.cancel(second.task_id)
        assert (await client.query(second.task_id)).status == "CANCELED"


async def test_run_log_of_a_whole_exchange_holds_no_key(tmp_path):
    """Logging every exchange of create, query, download and a refusal to a RunLog never writes the key."""
    log = RunLog(tmp_path / "logs", KEY)
    record = lambda ex: log.exchange("job-1", ex)  # noqa: E731
    async with Simulator(config()) as sim, DashScopeClient(sim.base_url, KEY) as client:
        task = await client.create(T2V, log=record)
        sim.clock.advance(3600)
        done = await client.query(task.task_id, log=record)
        await client.download(done.video_url, tmp_path / "v.mp4", log=record)
        with pytest.raises(RequestRejected):
            await client.create({**T2V, "parameters": {"duration": 99}}, log=record)
    log.close()
    text = (tmp_path / "logs" / "job-1.jsonl").read_text()
    assert len(text.splitlines()) == 4
    assert KEY not in text and "Bearer ***" in text


def test_exchange_type_is_frozen():
    """Exchange values cannot be altered after the fact."""
    ex = Exchange(at=0.0, method="GET", url="u", request_headers={}, request_body=None, status=200,
                  response_body=None, error=None, elapsed=0.0)
    with pytest.raises(AttributeError):
        ex.status = 500  # type: ignore[misc]

"""The official `dashscope` SDK, pointed at the simulator, works unchanged.

The SDK is synchronous (requests); its calls run in a thread so the simulator
keeps serving on the event loop.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from pathlib import Path

import pytest

from runner._sim import SimClock

dashscope = pytest.importorskip("dashscope")
from dashscope import VideoSynthesis  # noqa: E402

KEY = "sk-sdk-test"
ASSETS = Path(__file__).resolve().parent.parent / "jobs" / "assets"


@pytest.fixture
async def sdk_sim(start_simulator, manual_time, monkeypatch):
    """A frozen-clock simulator with concurrency 1, and the SDK's base URL pointed at it."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), api_key=KEY, concurrency=1)
    monkeypatch.setattr(dashscope, "base_http_api_url", sim.base_url)
    return sim


async def test_sdk_create_fetch_cancel_wait_and_list_t2v(sdk_sim):
    """VideoSynthesis.async_call, fetch, cancel, wait and list work against the simulator for happyhorse-1.0-t2v."""
    sim = sdk_sim

    def call(**kw):
        return VideoSynthesis.async_call(model="happyhorse-1.0-t2v", api_key=KEY, **kw)

    first = await asyncio.to_thread(call, prompt="a horse galloping", resolution="720P", duration=5)
    second = await asyncio.to_thread(call, prompt="a second horse", ratio="9:16", duration=3)
    assert first.status_code == HTTPStatus.OK, first
    assert first.output.task_status == "PENDING" and first.output.task_id and first.request_id
    body = sim.requests[0]
    assert (body.kind, body.status) == ("create", 200)
    sim.clock.advance(1.0)

    fetched = await asyncio.to_thread(VideoSynthesis.fetch, first, api_key=KEY)
    assert fetched.status_code == HTTPStatus.OK and fetched.output.task_status == "RUNNING"
    pending = await asyncio.to_thread(VideoSynthesis.fetch, second.output.task_id, api_key=KEY)
    assert pending.output.task_status == "PENDING"  # concurrency 1: waiting for the first

    canceled = await asyncio.to_thread(VideoSynthesis.cancel, second, api_key=KEY)
    assert canceled.status_code == HTTPStatus.OK
    refused = await asyncio.to_thread(VideoSynthesis.cancel, first, api_key=KEY)
    assert refused.status_code == HTTPStatus.BAD_REQUEST and refused.code == "UnsupportedOperation"

    sim.clock.advance(500.0)
    result = await asyncio.to_thread(VideoSynthesis.wait, first, api_key=KEY)
    assert result.status_code == HTTPStatus.OK
    assert result.output.task_status == "SUCCEEDED"
    assert result.output.video_url.startswith(sim.origin)
    assert result.usage.duration == 5 and result.usage.SR == 720
    gone = await asyncio.to_thread(VideoSynthesis.fetch, second, api_key=KEY)
    assert gone.output.task_status == "CANCELED"

    listed = await asyncio.to_thread(VideoSynthesis.list, api_key=KEY, model_name="happyhorse-1.0-t2v")
    assert listed.status_code == HTTPStatus.OK
    assert {row["task_id"]: row["status"] for row in listed.output["data"]} == {
        first.output.task_id: "SUCCEEDED", second.output.task_id: "CANCELED"}
    assert sim.count("create") == 2 and sim.count("cancel") == 2 and sim.count("list") == 1


async def test_sdk_wait_on_a_real_clock_simulator(start_simulator, monkeypatch):
    """With the real clock sped up a million times, VideoSynthesis.wait gets SUCCEEDED (and never sleeps its 1 s)."""
    sim = await start_simulator(api_key=KEY, time_scale=1_000_000.0)
    monkeypatch.setattr(dashscope, "base_http_api_url", sim.base_url)
    created = await asyncio.to_thread(
        VideoSynthesis.async_call, model="happyhorse-1.0-t2v", prompt="p", duration=3, resolution="720P", api_key=KEY)
    result = await asyncio.to_thread(VideoSynthesis.wait, created, api_key=KEY)
    assert result.output.task_status == "SUCCEEDED"
    assert sim.count("query", 200) == 1


async def test_sdk_rejects_bad_parameters_with_invalid_parameter(sdk_sim):
    """An out-of-range duration comes back to the SDK as 400 InvalidParameter naming the field."""
    response = await asyncio.to_thread(
        VideoSynthesis.async_call, model="happyhorse-1.0-t2v", prompt="p", duration=30, api_key=KEY)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.code == "InvalidParameter" and "parameters.duration" in response.message


async def test_sdk_wrong_key_is_invalid_api_key(sdk_sim):
    """The SDK sees 401 InvalidApiKey for a wrong key."""
    response = await asyncio.to_thread(
        VideoSynthesis.async_call, model="happyhorse-1.0-t2v", prompt="p", api_key="sk-wrong")
    assert response.status_code == HTTPStatus.UNAUTHORIZED and response.code == "InvalidApiKey"


async def test_sdk_uploads_a_local_first_frame_and_resolves_it(sdk_sim):
    """A local first frame goes through getPolicy + storage upload and an oss:// URL with the resolve header."""
    sim = sdk_sim
    media = [{"type": "first_frame", "url": str(ASSETS / "portrait.png")}]
    created = await asyncio.to_thread(
        VideoSynthesis.async_call, model="happyhorse-1.0-i2v", media=media, duration=3, api_key=KEY)
    assert created.status_code == HTTPStatus.OK, created
    assert sim.count("policy", 200) == 1 and sim.count("upload", 200) == 1
    (key,) = sim.objects
    assert key.endswith("/portrait.png")
    sim.clock.advance(1000.0)
    result = await asyncio.to_thread(VideoSynthesis.fetch, created, api_key=KEY)
    assert result.output.task_status == "SUCCEEDED" and result.usage.ratio == "2:3"

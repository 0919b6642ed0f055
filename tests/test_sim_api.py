"""The simulator's API surface: auth, async header, validation, life cycle, cancel, list, quotas."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from runner._sim import SimClock, Simulator
from runner._sim._tasks import generation_seconds

KEY = "sk-test"
T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse on a beach"},
       "parameters": {"resolution": "720P", "duration": 5}}
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def headers(key: str = KEY, *, async_header: bool = True) -> dict[str, str]:
    result = {"Authorization": f"Bearer {key}"}
    if async_header:
        result["X-DashScope-Async"] = "enable"
    return result


async def create(http: aiohttp.ClientSession, sim: Simulator, body: Any = T2V, **kw: Any) -> tuple[int, dict]:
    hdrs = kw.pop("hdrs", None) or headers()
    url = sim.base_url + "/services/aigc/video-generation/video-synthesis"
    async with http.post(url, json=body, headers=hdrs) as response:
        return response.status, await response.json()


async def query(http: aiohttp.ClientSession, sim: Simulator, task_id: str, key: str = KEY) -> tuple[int, dict]:
    async with http.get(f"{sim.base_url}/tasks/{task_id}", headers=headers(key, async_header=False)) as response:
        return response.status, await response.json()


async def cancel(http: aiohttp.ClientSession, sim: Simulator, task_id: str) -> tuple[int, dict]:
    async with http.post(f"{sim.base_url}/tasks/{task_id}/cancel", headers=headers(async_header=False)) as response:
        return response.status, await response.json()


async def listing(http: aiohttp.ClientSession, sim: Simulator, **params: Any) -> tuple[int, dict]:
    async with http.get(f"{sim.base_url}/tasks", params=params, headers=headers(async_header=False)) as response:
        return response.status, await response.json()


@pytest.fixture
async def frozen(start_simulator, manual_time):
    """A simulator whose real and simulated clocks move only when the test moves them."""
    return await start_simulator(clock=SimClock(1.0, real=manual_time))


# --- authentication and headers --------------------------------------------------

async def test_create_with_wrong_key_is_401_invalid_api_key(simulator, http):
    """A wrong bearer key is refused with 401 InvalidApiKey and no task is made."""
    status, body = await create(http, simulator, hdrs=headers("sk-wrong"))
    assert (status, body["code"]) == (401, "InvalidApiKey")
    assert simulator.tasks == {}


async def test_query_without_authorization_is_401(simulator, http):
    """Queries need the key too."""
    async with http.get(f"{simulator.base_url}/tasks/x") as response:
        assert response.status == 401
        assert (await response.json())["code"] == "InvalidApiKey"


async def test_create_without_async_header_is_refused_as_synchronous(simulator, http):
    """Without X-DashScope-Async: enable the create fails like the real service."""
    status, body = await create(http, simulator, hdrs=headers(async_header=False))
    assert status == 400
    assert "current user api does not support synchronous calls" in body["message"]


async def test_base_url_is_loopback_api_v1(simulator):
    """base_url is http://127.0.0.1:PORT/api/v1 on the bound port."""
    assert simulator.base_url == f"http://127.0.0.1:{simulator.port}/api/v1"
    assert simulator.port > 0


# --- validation ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**T2V, "parameters": {"duration": 20}}, "parameters.duration"),
        ({**T2V, "parameters": {"resolution": "4K"}}, "parameters.resolution"),
        ({"model": "happyhorse-1.0-t2v", "input": {}}, "input.prompt"),
        ({"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": "https://x/a.png"}]},
          "parameters": {"ratio": "16:9"}}, "parameters.ratio"),
        ({"model": "happyhorse-1.0-i2v", "input": {"prompt": "p"}}, "input.media"),
        ({"model": "happyhorse-1.0-t2v", "input": {"prompt": "x" * 5001}}, "input.prompt"),
    ],
)
async def test_invalid_body_is_400_invalid_parameter_naming_the_field(simulator, http, body, field):
    """Schema violations answer 400 InvalidParameter and the message names the API field."""
    status, answer = await create(http, simulator, body)
    assert (status, answer["code"]) == (400, "InvalidParameter")
    assert field in answer["message"]
    assert simulator.count("create", 400) == 1


async def test_unknown_model_has_its_own_code(simulator, http):
    """An unknown model id answers 400 ModelNotFound, not InvalidParameter."""
    status, answer = await create(http, simulator, {**T2V, "model": "happyhorse-9-t2v"})
    assert (status, answer["code"]) == (400, "ModelNotFound")


async def test_local_path_media_is_refused(simulator, http):
    """A media url without http/https/oss scheme cannot be fetched by the service."""
    body = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": "pics/a.png"}]}}
    status, answer = await create(http, simulator, body)
    assert status == 400 and "input.media[0].url" in answer["message"]


async def test_sdk_extend_prompt_flag_and_nulls_are_ignored(simulator, http):
    """The SDK's input.extend_prompt and input.function, and null values, do not make a body invalid."""
    body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "p", "extend_prompt": True, "function": "video-synthesis",
                                                     "negative_prompt": None},
            "parameters": {"seed": None}}
    status, _ = await create(http, simulator, body)
    assert status == 200


async def test_non_json_body_is_400(simulator, http):
    """A body that is not JSON is an InvalidParameter."""
    url = simulator.base_url + "/services/aigc/video-generation/video-synthesis"
    async with http.post(url, data=b"{nope", headers=headers()) as response:
        assert response.status == 400


# --- life cycle ------------------------------------------------------------------------

async def test_task_goes_pending_running_succeeded_on_the_sim_clock(frozen, http):
    """A 5 s 720P t2v task is PENDING, then RUNNING, then SUCCEEDED after about 80 simulated seconds."""
    status, created = await create(http, frozen)
    assert status == 200
    assert created["output"]["task_status"] == "PENDING" and created["request_id"]
    task_id = created["output"]["task_id"]
    assert (await query(http, frozen, task_id))[1]["output"]["task_status"] == "PENDING"
    frozen.clock.advance(1.0)
    running = (await query(http, frozen, task_id))[1]["output"]
    assert running["task_status"] == "RUNNING" and STAMP.match(running["scheduled_time"])
    frozen.clock.advance(60.0)
    assert (await query(http, frozen, task_id))[1]["output"]["task_status"] == "RUNNING"
    frozen.clock.advance(40.0)
    done = await query(http, frozen, task_id)
    output, used = done[1]["output"], done[1]["usage"]
    assert output["task_status"] == "SUCCEEDED"
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert STAMP.match(output[key]), key
    assert output["submit_time"] <= output["scheduled_time"] < output["end_time"]
    assert output["orig_prompt"] == "a horse on a beach"
    assert output["video_url"].startswith(frozen.origin + "/oss/") and "Expires=" in output["video_url"]
    assert used == {"duration": 5, "output_video_duration": 5, "input_video_duration": 0,
                    "SR": 720, "ratio": "16:9", "video_count": 1}


def test_generation_time_is_about_80s_and_grows_with_duration_and_resolution():
    """5 s 720P takes ~80 s; longer and higher-resolution videos take longer."""
    base = generation_seconds(5, 720)
    assert 72 <= base <= 88
    assert generation_seconds(10, 720) > base
    assert generation_seconds(5, 1080) > base
    assert generation_seconds(15, 1080) > generation_seconds(10, 1080)


async def test_end_time_reflects_the_generation_time(frozen, http):
    """end_time - scheduled_time is the generation time of the task's duration and resolution."""
    _, created = await create(http, frozen, {**T2V, "parameters": {"duration": 10, "resolution": "1080P"}})
    frozen.clock.advance(10_000)
    task = frozen.tasks[created["output"]["task_id"]]
    assert task.end_at - task.scheduled_at == pytest.approx(task.generation_seconds)
    assert task.generation_seconds > generation_seconds(5, 720) * 2


async def test_unknown_task_id_is_200_unknown(simulator, http):
    """A task id the service never issued answers 200 with task_status UNKNOWN."""
    status, body = await query(http, simulator, "no-such-task")
    assert status == 200 and body["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


async def test_task_older_than_task_ttl_is_unknown(frozen, http):
    """After task_ttl simulated seconds a task id answers UNKNOWN."""
    _, created = await create(http, frozen)
    task_id = created["output"]["task_id"]
    frozen.clock.advance(86_000)
    assert (await query(http, frozen, task_id))[1]["output"]["task_status"] == "SUCCEEDED"
    frozen.clock.advance(401)
    assert (await query(http, frozen, task_id))[1]["output"]["task_status"] == "UNKNOWN"


async def test_concurrency_quota_keeps_extra_tasks_pending(start_simulator, manual_time, http):
    """With concurrency 2 the third task waits PENDING until one of the first two ends."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), concurrency=2)
    ids = [(await create(http, sim))[1]["output"]["task_id"] for _ in range(3)]
    sim.clock.advance(1.0)
    assert [sim.status(i) for i in ids] == ["RUNNING", "RUNNING", "PENDING"]
    first_end = min(sim.tasks[i].end_at for i in ids[:2])
    sim.clock.advance(first_end - sim.clock.now() + 0.1)
    assert sim.status(ids[2]) == "RUNNING"
    assert sim.tasks[ids[2]].scheduled_at >= first_end


async def test_tasks_finish_in_real_time_scaled_by_time_scale(start_simulator, http):
    """At time_scale 2000 a ~80 s task is done within a fraction of a real second."""
    import asyncio

    sim = await start_simulator(time_scale=2000.0)
    _, created = await create(http, sim)
    task_id = created["output"]["task_id"]
    for _ in range(100):
        if (await query(http, sim, task_id))[1]["output"]["task_status"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.01)
    assert sim.status(task_id) == "SUCCEEDED"


# --- cancel -----------------------------------------------------------------------------

async def test_cancel_pending_task_makes_it_canceled_and_frees_its_place(start_simulator, manual_time, http):
    """A PENDING task can be cancelled; it never runs, and the queue moves past it."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), concurrency=1)
    ids = [(await create(http, sim))[1]["output"]["task_id"] for _ in range(3)]
    sim.clock.advance(1.0)
    status, body = await cancel(http, sim, ids[1])
    assert status == 200 and "request_id" in body
    assert (await query(http, sim, ids[1]))[1]["output"]["task_status"] == "CANCELED"
    sim.clock.advance(sim.tasks[ids[0]].end_at - sim.clock.now() + 0.1)
    assert sim.status(ids[2]) == "RUNNING" and sim.tasks[ids[1]].scheduled_at is None


async def test_cancel_running_task_is_refused(frozen, http):
    """Only PENDING tasks can be cancelled; a RUNNING one answers 400 UnsupportedOperation."""
    _, created = await create(http, frozen)
    frozen.clock.advance(5.0)
    status, body = await cancel(http, frozen, created["output"]["task_id"])
    assert (status, body["code"]) == (400, "UnsupportedOperation")
    assert "PENDING" in body["message"]
    assert frozen.status(created["output"]["task_id"]) == "RUNNING"


async def test_cancel_unknown_task_is_400(simulator, http):
    """Cancelling a task id that does not exist is refused."""
    status, _ = await cancel(http, simulator, "nope")
    assert status == 400


# --- list -------------------------------------------------------------------------------

async def test_list_filters_by_model_and_status_and_pages(frozen, http):
    """GET /tasks lists newest first, filters by model_name and status, and pages."""
    t2v = [(await create(http, frozen))[1]["output"]["task_id"] for _ in range(3)]
    frozen.clock.advance(1.0)
    wan = {"model": "wan2.7-i2v", "input": {"media": [{"type": "first_frame", "url": "https://e.com/a.png"}]}}
    wan_id = (await create(http, frozen, wan))[1]["output"]["task_id"]
    status, page = await listing(http, frozen, page_no=1, page_size=2)
    assert status == 200
    assert page["total"] == 4 and page["total_page"] == 2 and page["page_no"] == 1 and page["page_size"] == 2
    assert [row["task_id"] for row in page["data"]] == [wan_id, t2v[2]]
    _, only_t2v = await listing(http, frozen, model_name="happyhorse-1.0-t2v", page_size=10)
    assert sorted(row["task_id"] for row in only_t2v["data"]) == sorted(t2v)
    _, pending = await listing(http, frozen, status="PENDING")
    assert [row["task_id"] for row in pending["data"]] == [wan_id]
    assert {"task_id", "status", "model_name", "gmt_create", "request_id"} <= set(pending["data"][0])


async def test_list_time_window_uses_compact_timestamps(frozen, http):
    """start_time/end_time (YYYYMMDDhhmmss, service zone) bound the listed tasks by submit time."""
    first = (await create(http, frozen))[1]["output"]["task_id"]
    frozen.clock.advance(3600)
    second = (await create(http, frozen))[1]["output"]["task_id"]
    cut = frozen.clock.wall() - 1800
    from datetime import datetime

    text = datetime.fromtimestamp(cut, frozen.clock.tz).strftime("%Y%m%d%H%M%S")
    _, before = await listing(http, frozen, end_time=text)
    _, after = await listing(http, frozen, start_time=text)
    assert [r["task_id"] for r in before["data"]] == [first]
    assert [r["task_id"] for r in after["data"]] == [second]


async def test_list_bad_page_size_is_400(simulator, http):
    """page_size outside 1..100 is refused."""
    status, _ = await listing(http, simulator, page_size=0)
    assert status == 400


# --- quotas -----------------------------------------------------------------------------

async def test_submit_quota_is_per_real_second(start_simulator, manual_time, http):
    """Beyond submit_rps creates in one real second answer 429 Throttling.RateQuota; the next second is free."""
    sim = await start_simulator(clock=SimClock(1000.0, real=manual_time), submit_rps=3)
    answers = [await create(http, sim) for _ in range(5)]
    assert [s for s, _ in answers] == [200, 200, 200, 429, 429]
    assert answers[3][1]["code"] == "Throttling.RateQuota"
    assert len(sim.tasks) == 3
    manual_time.advance(0.5)
    assert (await create(http, sim))[0] == 429
    manual_time.advance(0.6)
    assert (await create(http, sim))[0] == 200


async def test_query_quota_is_separate_from_submit_quota(start_simulator, manual_time, http):
    """Queries have their own window: a full submit window does not throttle queries, and vice versa."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), submit_rps=1, query_rps=2)
    assert (await create(http, sim))[0] == 200
    assert (await create(http, sim))[0] == 429
    statuses = [(await query(http, sim, "x"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert sim.count("query", 429) == 1 and sim.count("create", 429) == 1


async def test_quota_ignores_simulated_time(start_simulator, manual_time, http):
    """Jumping the simulated clock does not refill a rate window; only real time does."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), submit_rps=1)
    assert (await create(http, sim))[0] == 200
    sim.clock.advance(3600)
    assert (await create(http, sim))[0] == 429


# --- request log ---------------------------------------------------------------------------

async def test_request_log_counts_every_request_by_kind_and_status(simulator, http):
    """sim.requests records kind, method, path, status and task id of every request."""
    _, created = await create(http, simulator)
    task_id = created["output"]["task_id"]
    await query(http, simulator, task_id)
    await query(http, simulator, task_id)
    await create(http, simulator, hdrs=headers("bad"))
    await listing(http, simulator)
    assert simulator.count("create") == 2
    assert simulator.count("create", 200) == 1 and simulator.count("create", 401) == 1
    assert simulator.count("query") == 2 and simulator.count("list") == 1
    first = simulator.requests[0]
    assert (first.kind, first.method, first.status, first.task_id) == ("create", "POST", 200, task_id)
    assert first.path.endswith("/video-synthesis")
    assert simulator.requests[1].task_id == task_id


def test_config_repr_hides_the_key():
    """A SimConfig printed in a log or a traceback does not show the accepted key."""
    from runner._sim import SimConfig

    assert "sk-secret-123" not in repr(SimConfig(api_key="sk-secret-123"))

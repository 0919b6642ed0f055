"""Injected faults: failed tasks, 5xx, dropped connections, 429 bursts, slow and truncated
downloads, wrong-length videos and account errors, each deterministic with the seed."""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
import av
import pytest

from runner._sim import FAILURES, Faults, SimClock, Simulator
from runner._sim._faults import roll

KEY = "sk-test"
API = {"Authorization": f"Bearer {KEY}"}
CREATE = {**API, "X-DashScope-Async": "enable"}
T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "p"}, "parameters": {"duration": 3, "resolution": "720P"}}


async def create(http: aiohttp.ClientSession, sim: Simulator) -> tuple[int, dict]:
    url = sim.base_url + "/services/aigc/video-generation/video-synthesis"
    async with http.post(url, json=T2V, headers=CREATE) as response:
        return response.status, await response.json()


async def query(http: aiohttp.ClientSession, sim: Simulator, task_id: str) -> tuple[int, dict]:
    async with http.get(f"{sim.base_url}/tasks/{task_id}", headers=API) as response:
        return response.status, await response.json()


async def done_url(http: aiohttp.ClientSession, sim: Simulator) -> str:
    """A fresh video URL of a finished 3 s task (downloads go through the fault stage)."""
    _, created = await create(http, sim)
    sim.clock.advance(3600)
    return (await query(http, sim, created["output"]["task_id"]))[1]["output"]["video_url"]


async def sim_with(start_simulator: Any, manual_time: Any, **faults: Any) -> Simulator:
    return await start_simulator(clock=SimClock(1.0, real=manual_time), submit_rps=0, query_rps=0,
                                 concurrency=0, faults=Faults(**faults))


# --- task failures ----------------------------------------------------------------------

async def test_failed_task_carries_code_and_message(start_simulator, manual_time, http):
    """With fail_rate 1 every task ends FAILED with one of the configured codes and its message."""
    sim = await sim_with(start_simulator, manual_time, fail_rate=1.0)
    _, created = await create(http, sim)
    sim.clock.advance(3600)
    output = (await query(http, sim, created["output"]["task_id"]))[1]
    assert output["output"]["task_status"] == "FAILED"
    assert output["output"]["code"] in ("InternalError.Algo", "DataInspectionFailed")
    assert output["output"]["message"] == FAILURES[output["output"]["code"]]
    assert "video_url" not in output["output"] and "end_time" in output["output"]


async def test_fail_codes_can_be_narrowed(start_simulator, manual_time, http):
    """fail_codes=("DataInspectionFailed",) makes every failure non-retryable content refusal."""
    sim = await sim_with(start_simulator, manual_time, fail_rate=1.0, fail_codes=("DataInspectionFailed",))
    ids = [(await create(http, sim))[1]["output"]["task_id"] for _ in range(4)]
    sim.clock.advance(3600)
    assert {sim.tasks[i].failure[0] for i in ids} == {"DataInspectionFailed"}


async def test_task_faults_are_deterministic_with_the_seed(start_simulator, manual_time, http):
    """The same seed fails the same tasks with the same codes; a different seed fails others."""
    async def outcome(seed: int) -> list[str]:
        sim = await start_simulator(clock=SimClock(1.0, real=manual_time), submit_rps=0, seed=seed,
                                    faults=Faults(fail_rate=0.4))
        ids = [(await create(http, sim))[1]["output"]["task_id"] for _ in range(30)]
        sim.clock.advance(100_000)
        return [sim.tasks[i].failure[0] if sim.tasks[i].failure else "ok" for i in ids]

    first, again, other = await outcome(7), await outcome(7), await outcome(8)
    assert first == again and first != other
    assert 5 <= sum(o != "ok" for o in first) <= 20
    assert {"InternalError.Algo", "DataInspectionFailed"} <= set(first)


def test_roll_hits_about_the_rate():
    """roll() hits roughly `rate` of all indices, never at 0 and always at 1."""
    hits = sum(roll(3, "x", n, 0.25) for n in range(4000))
    assert 900 <= hits <= 1100
    assert not any(roll(3, "x", n, 0.0) for n in range(100)) and all(roll(3, "x", n, 1.0) for n in range(100))


# --- request faults ---------------------------------------------------------------------

async def test_5xx_only_on_the_selected_kind(start_simulator, manual_time, http):
    """error_on=("query",) answers queries 500 InternalError while creates succeed."""
    sim = await sim_with(start_simulator, manual_time, error_rate=1.0, error_on=("query",))
    status, created = await create(http, sim)
    assert status == 200
    status, body = await query(http, sim, created["output"]["task_id"])
    assert (status, body["code"]) == (500, "InternalError")
    assert sim.count("query", 500) == 1


async def test_5xx_on_create_creates_nothing(start_simulator, manual_time, http):
    """An injected 500 on create is answered before any task exists."""
    sim = await sim_with(start_simulator, manual_time, error_rate=1.0, error_on=("create",))
    assert (await create(http, sim))[0] == 500
    assert sim.tasks == {}


async def test_dropped_create_has_created_the_task(start_simulator, manual_time, http):
    """A dropped create closes the socket unanswered, yet the task exists (and is listed)."""
    sim = await sim_with(start_simulator, manual_time, drop_rate=1.0, drop_on=("create",))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, sim)
    assert len(sim.tasks) == 1
    record = sim.requests[-1]
    assert (record.kind, record.status, record.task_id) == ("create", None, next(iter(sim.tasks)))
    assert sim.count("create", None) == 1
    async with http.get(f"{sim.base_url}/tasks", headers=API) as response:
        assert (await response.json())["total"] == 1


async def test_dropped_query_and_download(start_simulator, manual_time, http):
    """drop_on=("query", "download") closes those connections; creates are untouched."""
    sim = await sim_with(start_simulator, manual_time)
    url = await done_url(http, sim)
    sim.set_faults(Faults(drop_rate=1.0, drop_on=("query", "download")))
    assert (await create(http, sim))[0] == 200
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await query(http, sim, "x")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(url) as response:
            await response.read()
    # aiohttp re-sends an idempotent request once after a disconnect, so each kind may show two drops
    assert 1 <= sim.count("query", None) <= 2 and 1 <= sim.count("download", None) <= 2
    assert sim.count("query", 200) == 1 and sim.count("download", 200) == 0


async def test_429_burst_lasts_throttle_burst_requests(start_simulator, manual_time, http):
    """A started burst answers throttle_burst consecutive requests of that kind with 429 Throttling.RateQuota."""
    sim = await sim_with(start_simulator, manual_time, throttle_rate=1.0, throttle_burst=3, throttle_on=("query",))
    first = await query(http, sim, "x")
    assert (first[0], first[1]["code"]) == (429, "Throttling.RateQuota")
    sim.set_faults(Faults(throttle_rate=0.0, throttle_burst=3, throttle_on=("query",)))  # no new bursts
    statuses = [(await query(http, sim, "x"))[0] for _ in range(4)]
    assert statuses == [429, 429, 200, 200]
    assert (await create(http, sim))[0] == 200


async def test_truncated_download_announces_full_length_and_closes_early(start_simulator, manual_time, http):
    """truncate_rate 1: Content-Length is the whole file but the connection closes half-way."""
    sim = await sim_with(start_simulator, manual_time)
    url = await done_url(http, sim)
    async with http.head(url) as response:
        full = int(response.headers["Content-Length"])
    sim.set_faults(Faults(truncate_rate=1.0))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(url) as response:
            assert int(response.headers["Content-Length"]) == full
            await response.read()
    assert sim.count("download", 200) == 2


async def test_slow_download_is_paced_in_real_time(start_simulator, manual_time, http):
    """slow_rate 1 sends at slow_bytes_per_second (real time), and the bytes are all correct."""
    sim = await sim_with(start_simulator, manual_time)
    url = await done_url(http, sim)
    async with http.get(url) as response:
        reference = await response.read()
    rate = len(reference) / 0.15  # the whole file in ~0.15 s
    sim.set_faults(Faults(slow_rate=1.0, slow_bytes_per_second=rate))
    started = time.perf_counter()
    async with http.get(url) as response:
        data = await response.read()
    assert data == reference
    assert time.perf_counter() - started >= 0.1


async def test_wrong_duration_video_differs_but_usage_does_not(start_simulator, manual_time, http):
    """wrong_duration_rate 1: usage says 3 s, the MP4 lasts 5 s."""
    sim = await sim_with(start_simulator, manual_time, wrong_duration_rate=1.0)
    _, created = await create(http, sim)
    sim.clock.advance(3600)
    answer = (await query(http, sim, created["output"]["task_id"]))[1]
    assert answer["usage"]["duration"] == 3
    async with http.get(answer["output"]["video_url"]) as response:
        data = await response.read()
    with av.open(io.BytesIO(data)) as container:
        assert container.duration / av.time_base == pytest.approx(5.0, abs=0.05)


# --- account faults -----------------------------------------------------------------------

async def test_arrearage_after_n_creates(start_simulator, manual_time, http):
    """account_error Arrearage refuses creates after the first N with 400 and the service's message."""
    sim = await sim_with(start_simulator, manual_time, account_error="Arrearage", account_error_after=2)
    answers = [await create(http, sim) for _ in range(3)]
    assert [s for s, _ in answers] == [200, 200, 400]
    assert answers[2][1]["code"] == "Arrearage"
    assert answers[2][1]["message"] == "Access denied, please make sure your account is in good standing."
    assert len(sim.tasks) == 2


async def test_allocation_quota_is_429(start_simulator, manual_time, http):
    """account_error Throttling.AllocationQuota answers 429 with that code."""
    sim = await sim_with(start_simulator, manual_time, account_error="Throttling.AllocationQuota")
    status, body = await create(http, sim)
    assert (status, body["code"]) == (429, "Throttling.AllocationQuota")


@pytest.mark.parametrize(
    "bad",
    [{"fail_rate": 1.5}, {"error_on": ("creat",)}, {"fail_codes": ("Oops",)}, {"account_error": "Broke"},
     {"throttle_burst": 0}],
)
def test_impossible_faults_are_refused(bad):
    """Rates outside [0, 1], unknown kinds, codes or account errors raise ValueError."""
    with pytest.raises(ValueError):
        Faults(**bad)

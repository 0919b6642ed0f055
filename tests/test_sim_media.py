"""Result videos and uploads: real MP4s under expiring signed URLs, HEAD/Range, the OSS upload flow."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from runner._sim import SimClock, Simulator, _mp4

KEY = "sk-test"
ASSETS = Path(__file__).resolve().parent.parent / "jobs" / "assets"
API = {"Authorization": f"Bearer {KEY}"}
CREATE = {**API, "X-DashScope-Async": "enable"}


def probe(data: bytes) -> tuple[float, int, int, str, float]:
    """(seconds, width, height, codec, fps) of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return (container.duration / av.time_base, stream.codec_context.width, stream.codec_context.height,
                stream.codec_context.name, float(stream.average_rate))


async def create(http: aiohttp.ClientSession, sim: Simulator, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    url = sim.base_url + "/services/aigc/video-generation/video-synthesis"
    async with http.post(url, json=body, headers=headers or CREATE) as response:
        return response.status, await response.json()


async def finished(http: aiohttp.ClientSession, sim: Simulator, body: dict, headers: dict | None = None) -> dict:
    """Create a task, jump past its generation, and return the query answer."""
    status, created = await create(http, sim, body, headers)
    assert status == 200, created
    sim.clock.advance(3600)
    async with http.get(f"{sim.base_url}/tasks/{created['output']['task_id']}", headers=API) as response:
        answer = await response.json()
    assert answer["output"]["task_status"] == "SUCCEEDED", answer
    return answer


async def fetch(http: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, bytes, Any]:
    async with http.get(url, **kw) as response:
        return response.status, await response.read(), response.headers


async def upload(http: aiohttp.ClientSession, sim: Simulator, path: Path, model: str = "happyhorse-1.0-i2v") -> str:
    """The SDK's upload flow by hand: policy, multipart POST; returns the oss:// URL."""
    params = {"action": "getPolicy", "model": model}
    async with http.get(f"{sim.base_url}/uploads", params=params, headers=API) as response:
        assert response.status == 200
        policy = (await response.json())["output"]
    key = f"{policy['upload_dir']}/{path.name}"
    form = aiohttp.FormData()
    for name, value in (("OSSAccessKeyId", policy["oss_access_key_id"]), ("Signature", policy["signature"]),
                        ("policy", policy["policy"]), ("key", key), ("x-oss-object-acl", policy["x_oss_object_acl"]),
                        ("x-oss-forbid-overwrite", policy["x_oss_forbid_overwrite"]),
                        ("success_action_status", "200"), ("x-oss-content-type", "application/octet-stream")):
        form.add_field(name, value)
    form.add_field("file", path.read_bytes(), filename=path.name)
    async with http.post(policy["upload_host"], data=form) as response:
        assert response.status == 200, await response.text()
    return "oss://" + key


T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "p"}, "parameters": {"duration": 4, "ratio": "9:16", "resolution": "720P"}}


@pytest.fixture
async def frozen(start_simulator, manual_time):
    return await start_simulator(clock=SimClock(1.0, real=manual_time))


# --- the videos -----------------------------------------------------------------------

async def test_video_is_h264_mp4_of_requested_duration_ratio_and_24fps(frozen, http):
    """The downloaded MP4 is H.264, 24 fps, lasts the requested 4 s and is 9:16 with a small frame."""
    answer = await finished(http, frozen, T2V)
    status, data, headers = await fetch(http, answer["output"]["video_url"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    seconds, width, height, codec, fps = probe(data)
    assert codec == "h264" and fps == 24
    assert seconds == pytest.approx(4.0, abs=0.05)
    assert width / height == pytest.approx(9 / 16, rel=0.03)
    assert 90 <= min(width, height) <= 180


async def test_1080p_frames_are_larger_than_720p(frozen, http):
    """The resolution tier shows in the frame size (still small)."""
    small = probe((await fetch(http, (await finished(http, frozen, T2V))["output"]["video_url"]))[1])
    body = {**T2V, "parameters": {**T2V["parameters"], "resolution": "1080P"}}
    large = probe((await fetch(http, (await finished(http, frozen, body))["output"]["video_url"]))[1])
    assert large[1] > small[1] and large[2] > small[2] <= 180


def test_encodings_are_cached_per_shape(monkeypatch):
    """mp4() encodes a (duration, ratio, SR) once and serves the same bytes afterwards."""
    calls: list[tuple] = []
    real = _mp4.encode

    def counting(*args: Any) -> bytes:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(_mp4, "encode", counting)
    key = (3, "7:5", 720)  # a shape no other test asks for
    first = _mp4.mp4(*key)
    assert _mp4.mp4(*key) is first
    assert len(calls) == 1


async def test_each_query_signs_a_fresh_url_valid_for_url_ttl(start_simulator, manual_time, http):
    """A URL expires url_ttl simulated seconds after the query that returned it (403 OSS XML); a re-query gives a fresh one."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), url_ttl=600.0)
    answer = await finished(http, sim, T2V)
    task_id = answer["output"]["task_id"]
    old_url = answer["output"]["video_url"]
    sim.clock.advance(599)
    assert (await fetch(http, old_url))[0] == 200
    sim.clock.advance(2)
    status, body, headers = await fetch(http, old_url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"expired" in body
    assert "xml" in headers["Content-Type"]
    async with http.get(f"{sim.base_url}/tasks/{task_id}", headers=API) as response:
        new_url = (await response.json())["output"]["video_url"]
    assert new_url != old_url
    assert (await fetch(http, new_url))[0] == 200


async def test_tampered_url_is_403(frozen, http):
    """Changing Expires without a matching signature is refused."""
    url = (await finished(http, frozen, T2V))["output"]["video_url"]
    status, body, _ = await fetch(http, url.replace("Expires=", "Expires=9"))
    assert status == 403 and b"SignatureDoesNotMatch" in body


async def test_non_ascii_digit_in_expires_is_403(frozen, http):
    """An Expires that str.isdigit() accepts but int() does not ("²") is refused, not a 500."""
    url = (await finished(http, frozen, T2V))["output"]["video_url"]
    expires = url.split("Expires=", 1)[1].split("&", 1)[0]
    status, body, _ = await fetch(http, url.replace(expires, "%C2%B2"))
    assert status == 403 and b"SignatureDoesNotMatch" in body


async def test_head_gives_length_without_body(frozen, http):
    """HEAD answers 200 with the full Content-Length and no body."""
    url = (await finished(http, frozen, T2V))["output"]["video_url"]
    full = (await fetch(http, url))[1]
    async with http.head(url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == len(full)
        assert response.headers["Accept-Ranges"] == "bytes"
        assert await response.read() == b""
    assert frozen.count("download") == 2


async def test_range_requests_return_206_with_the_slice(frozen, http):
    """Range: bytes=a-b and suffix ranges answer 206 with Content-Range; a range past the end 416."""
    url = (await finished(http, frozen, T2V))["output"]["video_url"]
    full = (await fetch(http, url))[1]
    status, part, headers = await fetch(http, url, headers={"Range": "bytes=100-199"})
    assert status == 206 and part == full[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(full)}"
    status, tail, _ = await fetch(http, url, headers={"Range": "bytes=-50"})
    assert status == 206 and tail == full[-50:]
    status, rest, _ = await fetch(http, url, headers={"Range": f"bytes={len(full) - 10}-"})
    assert status == 206 and rest == full[-10:]
    assert (await fetch(http, url, headers={"Range": f"bytes={len(full) + 5}-"}))[0] == 416


async def test_concurrent_downloads_of_one_shape_encode_once(frozen, http, monkeypatch):
    """Ten simultaneous downloads of a new shape share one encoding."""
    calls: list[tuple] = []
    real = _mp4.encode
    monkeypatch.setattr(_mp4, "encode", lambda *a: calls.append(a) or real(*a))
    body = {**T2V, "parameters": {"duration": 3, "ratio": "3:4", "resolution": "1080P"}}
    url = (await finished(http, frozen, body))["output"]["video_url"]
    _mp4._cache.pop((3, "3:4", 1080), None)
    results = await asyncio.gather(*(fetch(http, url) for _ in range(10)))
    assert {len(r[1]) for r in results} == {len(results[0][1])} and len(calls) == 1


# --- uploads and oss:// media --------------------------------------------------------------

async def test_upload_stores_the_file_under_its_key(simulator, http):
    """getPolicy + multipart POST stores the bytes; the policy names an upload_host on the same server."""
    url = await upload(http, simulator, ASSETS / "portrait.png")
    assert simulator.objects[url.removeprefix("oss://")].data == (ASSETS / "portrait.png").read_bytes()
    assert simulator.count("policy", 200) == 1 and simulator.count("upload", 200) == 1


async def test_policy_requires_the_key(simulator, http):
    """The upload policy endpoint is authenticated like the rest of the API."""
    async with http.get(f"{simulator.base_url}/uploads", params={"action": "getPolicy", "model": "wan2.7-i2v"}) as r:
        assert r.status == 401


async def test_upload_with_forged_signature_or_foreign_key_is_403(simulator, http):
    """Storage refuses a form whose signature it did not issue, or a key outside upload_dir."""
    params = {"action": "getPolicy", "model": "happyhorse-1.0-i2v"}
    async with http.get(f"{simulator.base_url}/uploads", params=params, headers=API) as response:
        policy = (await response.json())["output"]

    def form(signature: str, key: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        for name, value in (("OSSAccessKeyId", policy["oss_access_key_id"]), ("Signature", signature),
                            ("policy", policy["policy"]), ("key", key), ("success_action_status", "200")):
            data.add_field(name, value)
        data.add_field("file", b"abc", filename="a.png")
        return data

    async with http.post(policy["upload_host"], data=form("forged", policy["upload_dir"] + "/a.png")) as r:
        assert r.status == 403 and b"SignatureDoesNotMatch" in await r.read()
    async with http.post(policy["upload_host"], data=form(policy["signature"], "elsewhere/a.png")) as r:
        assert r.status == 403
    assert simulator.objects == {}


async def test_oss_media_needs_the_resolve_header(simulator, http):
    """An oss:// URL without X-DashScope-OssResourceResolve: enable is 400 InvalidParameter."""
    url = await upload(http, simulator, ASSETS / "portrait.png")
    body = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": url}]}}
    status, answer = await create(http, simulator, body)
    assert (status, answer["code"]) == (400, "InvalidParameter") and "OssResourceResolve" in answer["message"]
    status, _ = await create(http, simulator, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"})
    assert status == 200


async def test_oss_media_that_was_never_uploaded_is_400(simulator, http):
    """An oss:// object the storage does not hold is refused even with the header."""
    body = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": "oss://nope/a.png"}]}}
    status, answer = await create(http, simulator, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"})
    assert status == 400 and "does not exist" in answer["message"]


async def test_i2v_ratio_follows_the_uploaded_first_frame(frozen, http):
    """happyhorse-1.0-i2v from a 640x960 upload reports ratio 2:3 and makes a 2:3 video."""
    url = await upload(http, frozen, ASSETS / "portrait.png")
    body = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": url}]},
            "parameters": {"duration": 3}}
    answer = await finished(http, frozen, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"})
    assert answer["usage"]["ratio"] == "2:3" and answer["usage"]["duration"] == 3
    _, width, height = probe((await fetch(http, answer["output"]["video_url"]))[1])[:3]
    assert width / height == pytest.approx(2 / 3, rel=0.03)


async def test_wan_ratio_follows_first_frame_and_url_media_default_to_16_9(frozen, http):
    """wan2.7-i2v reads an uploaded first frame; a remote http first frame gives 16:9."""
    url = await upload(http, frozen, ASSETS / "wan-first.png", "wan2.7-i2v")
    wan = {"model": "wan2.7-i2v", "input": {"media": [{"type": "first_frame", "url": url}]}, "parameters": {"duration": 2}}
    uploaded = await finished(http, frozen, wan, {**CREATE, "X-DashScope-OssResourceResolve": "enable"})
    assert uploaded["usage"]["ratio"] == "16:9"  # 480x270
    square = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": "https://e.com/a.png"}]}}
    remote = await finished(http, frozen, square)
    assert remote["usage"]["ratio"] == "16:9"


async def test_video_edit_output_follows_the_uploaded_input_video(frozen, http):
    """video-edit of the 4 s 568x320 asset lasts 4 s with its ratio, and reports the input length."""
    url = await upload(http, frozen, ASSETS / "edit-input.mp4", "happyhorse-1.0-video-edit")
    body = {"model": "happyhorse-1.0-video-edit", "input": {"prompt": "snow", "media": [{"type": "video", "url": url}]}}
    answer = await finished(http, frozen, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"})
    used = answer["usage"]
    assert (used["duration"], used["output_video_duration"], used["input_video_duration"]) == (4, 4, 4)
    assert used["ratio"] == "71:40"
    seconds, width, height = probe((await fetch(http, answer["output"]["video_url"]))[1])[:3]
    assert seconds == pytest.approx(4.0, abs=0.05) and width / height == pytest.approx(568 / 320, rel=0.03)


async def test_video_edit_output_is_capped_at_15_seconds(frozen, http, tmp_path):
    """An input video longer than 15 s yields a 15 s output; usage keeps the input length."""
    long_clip = tmp_path / "long.mp4"
    long_clip.write_bytes(_mp4.encode(17, 64, 36, fps=8))
    url = await upload(http, frozen, long_clip, "happyhorse-1.0-video-edit")
    body = {"model": "happyhorse-1.0-video-edit", "input": {"prompt": "p", "media": [{"type": "video", "url": url}]}}
    used = (await finished(http, frozen, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"}))["usage"]
    assert (used["output_video_duration"], used["input_video_duration"]) == (15, 17)


async def test_video_edit_of_a_remote_url_assumes_the_configured_length(start_simulator, manual_time, http):
    """For an http input video the simulator cannot read, assume_video_seconds is the input length."""
    sim = await start_simulator(clock=SimClock(1.0, real=manual_time), assume_video_seconds=7.0)
    body = {"model": "happyhorse-1.0-video-edit",
            "input": {"prompt": "p", "media": [{"type": "video", "url": "https://e.com/in.mp4"}]}}
    used = (await finished(http, sim, body))["usage"]
    assert (used["duration"], used["input_video_duration"], used["ratio"]) == (7, 7, "16:9")


async def test_wan_first_clip_output_follows_the_clip_ratio(frozen, http):
    """wan2.7-i2v continuing an uploaded 320x240 clip reports 4:3 and keeps the requested duration."""
    url = await upload(http, frozen, ASSETS / "continue.mp4", "wan2.7-i2v")
    body = {"model": "wan2.7-i2v", "input": {"media": [{"type": "first_clip", "url": url}]}, "parameters": {"duration": 4}}
    used = (await finished(http, frozen, body, {**CREATE, "X-DashScope-OssResourceResolve": "enable"}))["usage"]
    assert (used["ratio"], used["duration"], used["input_video_duration"]) == ("4:3", 4, 0)

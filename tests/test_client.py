"""DashScopeClient against a tiny local aiohttp server: requests, parsing, error mapping, redaction."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner._client import DashScopeClient, Exchange, UploadPolicy, error_from_response
from runner._errors import (
    AccountError,
    ApiError,
    RequestRejected,
    Throttled,
    TransientError,
    UsageError,
)

KEY = "sk-test-5e1f0c9a7b3d4e2f8a6c"
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


@asynccontextmanager
async def serve(*routes: web.RouteDef):
    """Serve `routes` on 127.0.0.1; yield (base_url, list of received requests' info)."""
    seen: list[dict] = []

    @web.middleware
    async def record(request, handler):
        # multipart bodies are left for the handler to parse
        body = b"" if request.content_type.startswith("multipart/") else await request.read()
        seen.append({"method": request.method, "path": request.path, "query": dict(request.query),
                     "headers": dict(request.headers), "body": body})
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/api/v1")), seen
    finally:
        await server.close()


def json_answer(status: int, body: dict, headers: dict | None = None):
    async def handler(request):
        return web.json_response(body, status=status, headers=headers)
    return handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CREATED = {"request_id": "req-1", "output": {"task_id": "task-1", "task_status": "PENDING"}}
BODY = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {"duration": 5}}


async def test_create_sends_async_header_key_and_body_and_parses_the_task():
    """create() POSTs the body with the async header and bearer key, and returns the PENDING task."""
    async with serve(web.post(CREATE, json_answer(200, CREATED))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            task = await client.create(BODY)
    assert task.task_id == "task-1" and task.status == "PENDING" and task.request_id == "req-1"
    (req,) = seen
    assert req["headers"]["X-DashScope-Async"] == "enable"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "X-DashScope-OssResourceResolve" not in req["headers"]
    assert json.loads(req["body"]) == BODY


async def test_create_with_oss_resolve_adds_the_resolve_header():
    """oss_resolve=True adds X-DashScope-OssResourceResolve: enable."""
    async with serve(web.post(CREATE, json_answer(200, CREATED))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            await client.create(BODY, oss_resolve=True)
    assert seen[0]["headers"]["X-DashScope-OssResourceResolve"] == "enable"


async def test_query_parses_a_finished_task():
    """query() returns status, video URL, usage and the three timestamps."""
    answer = {
        "request_id": "req-2",
        "output": {"task_id": "t-9", "task_status": "SUCCEEDED", "video_url": "https://oss/x.mp4?Expires=1",
                   "submit_time": "2026-01-01 12:00:00.000", "scheduled_time": "2026-01-01 12:00:00.100",
                   "end_time": "2026-01-01 12:01:20.000"},
        "usage": {"duration": 5, "SR": 720, "video_count": 1},
    }
    async with serve(web.get("/api/v1/tasks/t-9", json_answer(200, answer))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            task = await client.query("t-9")
    assert task.status == "SUCCEEDED"
    assert task.video_url == "https://oss/x.mp4?Expires=1"
    assert task.usage["duration"] == 5
    assert (task.submit_time, task.end_time) == ("2026-01-01 12:00:00.000", "2026-01-01 12:01:20.000")
    assert seen[0]["method"] == "GET"


async def test_query_of_a_failed_task_carries_its_code_and_message():
    """A FAILED task's output.code and output.message reach TaskInfo."""
    answer = {"request_id": "r", "output": {"task_id": "t", "task_status": "FAILED",
                                            "code": "DataInspectionFailed", "message": "unsafe"}}
    async with serve(web.get("/api/v1/tasks/t", json_answer(200, answer))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            task = await client.query("t")
    assert (task.status, task.code, task.message) == ("FAILED", "DataInspectionFailed", "unsafe")


async def test_cancel_posts_to_the_cancel_path():
    """cancel() POSTs /tasks/{id}/cancel."""
    async with serve(web.post("/api/v1/tasks/t-3/cancel", json_answer(200, {"request_id": "r"}))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            assert await client.cancel("t-3") is None
    assert (seen[0]["method"], seen[0]["path"]) == ("POST", "/api/v1/tasks/t-3/cancel")


async def test_task_ids_cannot_change_the_path():
    """A task id with a slash is refused before anything is sent; other characters are quoted."""
    async with serve(web.get("/api/v1/tasks/{tid}", json_answer(200, {"output": {"task_id": "x", "task_status": "RUNNING"}}))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(RequestRejected):
                await client.query("../uploads")
            await client.query("a?b#c")
    assert len(seen) == 1
    assert seen[0]["path"] == "/api/v1/tasks/a?b#c" and seen[0]["query"] == {}


async def test_list_tasks_sends_the_window_and_filters_and_reads_the_page():
    """list_tasks() formats times as YYYYMMDDhhmmss and returns (tasks, total)."""
    answer = {"request_id": "r", "data": [{"task_id": "a", "task_status": "RUNNING"},
                                          {"task_id": "b", "status": "SUCCEEDED"}],
              "total": 7, "page_no": 1, "page_size": 2}
    async with serve(web.get("/api/v1/tasks", json_answer(200, answer))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            tasks, total = await client.list_tasks(
                start_time=datetime(2026, 1, 2, 3, 4, 5), end_time=datetime(2026, 1, 3, 0, 0, 0),
                model="happyhorse-1.0-t2v", status="RUNNING", page_no=1, page_size=2)
    assert [(t.task_id, t.status) for t in tasks] == [("a", "RUNNING"), ("b", "SUCCEEDED")]
    assert total == 7
    assert seen[0]["query"] == {"start_time": "20260102030405", "end_time": "20260103000000",
                                "model_name": "happyhorse-1.0-t2v", "status": "RUNNING",
                                "page_no": "1", "page_size": "2"}


@pytest.mark.parametrize(
    ("status", "code", "headers", "kind"),
    [
        (400, "InvalidParameter", None, RequestRejected),
        (400, "Arrearage", None, AccountError),
        (401, "InvalidApiKey", None, AccountError),
        (403, "AccessDenied", None, AccountError),
        (429, "Throttling.AllocationQuota", None, AccountError),
        (429, "Throttling.RateQuota", {"Retry-After": "3"}, Throttled),
        (500, "InternalError", None, TransientError),
        (503, "ServiceUnavailable", None, TransientError),
    ],
)
async def test_http_errors_map_onto_the_exception_tree(status, code, headers, kind):
    """Each API error status/code becomes the right runner error, carrying code, message and request id."""
    body = {"request_id": "req-e", "code": code, "message": f"{code} happened"}
    async with serve(web.post(CREATE, json_answer(status, body, headers))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(kind) as info:
                await client.create(BODY)
    err = info.value
    assert type(err) is kind
    assert (err.status, err.code, err.request_id) == (status, code, "req-e")
    assert code in str(err) and f"{code} happened" in str(err)


async def test_throttled_carries_retry_after_from_the_header():
    """A 429 RateQuota's Retry-After header becomes Throttled.retry_after, and the server was reached."""
    body = {"request_id": "r", "code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}
    async with serve(web.post(CREATE, json_answer(429, body, {"Retry-After": "3"}))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(Throttled) as info:
                await client.create(BODY)
    assert info.value.retry_after == 3.0


async def test_list_tasks_converts_aware_times_to_beijing_time():
    """An aware UTC datetime is sent as the same instant in UTC+8."""
    answer = {"request_id": "r", "data": [], "total": 0}
    async with serve(web.get("/api/v1/tasks", json_answer(200, answer))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            tasks, total = await client.list_tasks(
                start_time=datetime(2026, 1, 2, 20, 0, 0, tzinfo=timezone.utc),
                end_time=datetime(2026, 1, 2, 21, 30, 0, tzinfo=timezone.utc))
    assert (tasks, total) == ([], 0)
    assert (seen[0]["query"]["start_time"], seen[0]["query"]["end_time"]) == ("20260103040000", "20260103053000")


def test_retry_after_may_be_an_http_date_or_missing():
    """Retry-After as an HTTP-date gives a non-negative delay; no header gives None."""
    past = error_from_response(429, {"code": "Throttling"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(past, Throttled) and past.retry_after == 0.0
    assert error_from_response(429, {"code": "Throttling"}, {}).retry_after is None


def test_non_json_error_bodies_still_make_a_message():
    """A 502 from a proxy with an HTML body is a TransientError naming the status."""
    err = error_from_response(502, "<html>Bad Gateway</html>", {})
    assert isinstance(err, TransientError) and "502" in str(err)


async def test_server_error_means_the_server_was_reached():
    """A 500 is transient and reached_server is True: a create must not be repeated."""
    async with serve(web.post(CREATE, json_answer(500, {"code": "InternalError", "message": "x"}))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(TransientError) as info:
                await client.create(BODY)
    assert info.value.reached_server is True


async def test_connection_refused_means_the_request_never_left():
    """Connection refused is transient with reached_server False (safe to repeat a create)."""
    async with DashScopeClient(f"http://127.0.0.1:{free_port()}/api/v1", KEY) as client:
        with pytest.raises(TransientError) as info:
            await client.create(BODY)
    assert info.value.reached_server is False


async def test_dropped_connection_after_sending_means_the_server_was_reached():
    """The server closing the connection mid-request is transient with reached_server True."""
    async def drop(request):
        request.transport.close()
        return web.Response()

    async with serve(web.post(CREATE, drop)) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(TransientError) as info:
                await client.create(BODY)
    assert info.value.reached_server is True
    assert not isinstance(info.value, Throttled)


async def test_timeout_is_transient_and_the_server_was_reached():
    """An answer that never comes ends in a TransientError (reached_server True) after the timeout."""
    never = asyncio.Event()

    async def hang(request):
        await never.wait()
        return web.Response()

    async with serve(web.get("/api/v1/tasks/t", hang)) as (base, _):
        async with DashScopeClient(base, KEY, timeout=0.05) as client:
            with pytest.raises(TransientError, match="timed out") as info:
                await client.query("t")
    assert info.value.reached_server is True


async def test_a_200_without_task_id_is_a_malformed_answer():
    """A create answer with no task id raises ApiError, not a TaskInfo with an empty id."""
    async with serve(web.post(CREATE, json_answer(200, {"request_id": "r", "output": {}}))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(ApiError) as info:
                await client.create(BODY)
    assert info.value.code == "MalformedResponse"


async def test_redirects_are_not_followed_with_the_key():
    """A redirect from the API is not followed (the bearer key must not travel elsewhere)."""
    async def redirect(request):
        raise web.HTTPFound("/elsewhere")

    async with serve(web.get("/api/v1/tasks/t", redirect), web.get("/elsewhere", json_answer(200, {}))) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(ApiError):
                await client.query("t")
    assert [r["path"] for r in seen] == ["/api/v1/tasks/t"]


def test_base_url_must_be_http():
    """A non-http base URL is a usage error."""
    with pytest.raises(UsageError):
        DashScopeClient("ftp://example.com/api/v1", KEY)


@pytest.mark.parametrize("base", ["http://[::1/api/v1", "http://a..b/api/v1", f"http://{'a' * 70}.com/api/v1"])
def test_a_base_url_that_cannot_be_parsed_or_resolved_is_a_usage_error(base):
    """A malformed base URL or host name is a UsageError at once, not a ValueError at the first request."""
    with pytest.raises(UsageError, match="not a valid URL"):
        DashScopeClient(base, KEY)


def test_client_repr_hides_the_key():
    """repr(client) never shows the key."""
    assert KEY not in repr(DashScopeClient("http://127.0.0.1:1/api/v1", KEY))


# ------------------------------------------------------------------ redaction


async def test_exchanges_never_contain_the_key():
    """Every logged Exchange (success and failure) has 'Bearer ***' and no trace of the key, even if the server echoes it."""
    echo = {"request_id": "r", "output": {"task_id": "t", "task_status": "PENDING", "note": f"you sent {KEY}"}}
    err = {"request_id": "r", "code": "InvalidApiKey", "message": f"bad key {KEY}"}
    exchanges: list[Exchange] = []
    async with serve(web.post(CREATE, json_answer(200, echo)),
                     web.get("/api/v1/tasks/{tid}", json_answer(401, err))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            await client.create({**BODY, "input": {"prompt": f"oops {KEY}"}}, log=exchanges.append)
            with pytest.raises(AccountError) as info:
                await client.query(f"t{KEY}", log=exchanges.append)
    assert len(exchanges) == 2
    for ex in exchanges:
        assert ex.request_headers["Authorization"] == "Bearer ***"
        assert KEY not in repr(ex)
    assert exchanges[0].status == 200 and exchanges[0].error is None
    assert exchanges[1].status == 401 and "InvalidApiKey" in exchanges[1].error
    assert KEY not in str(info.value)


async def test_failed_connection_is_logged_with_no_status():
    """A refused connection still produces one Exchange, with status None and the error text."""
    exchanges: list[Exchange] = []
    async with DashScopeClient(f"http://127.0.0.1:{free_port()}/api/v1", KEY) as client:
        with pytest.raises(TransientError):
            await client.query("t", log=exchanges.append)
    (ex,) = exchanges
    assert ex.status is None and "could not connect" in ex.error and ex.elapsed >= 0


# ------------------------------------------------------------------ uploads

POLICY_ANSWER = {
    "request_id": "r",
    "output": {
        "policy": "eyJleHBpcmF0aW9uIjoi", "signature": "sig-abc", "upload_dir": "dashscope-instant/abc/2026",
        "upload_host": "", "expire_in_seconds": 300, "max_file_size_mb": 1,
        "oss_access_key_id": "LTAI-test", "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true",
    },
}


async def test_upload_policy_then_upload_stores_the_file_without_the_key(tmp_path):
    """The policy is fetched with the key; the multipart upload carries the policy fields, not the key; returns oss://key."""
    stored: dict = {}

    async def storage(request):
        form = await request.post()
        stored.update({k: v for k, v in form.items() if k != "file"})
        stored["file"] = form["file"].file.read()
        stored["filename"] = form["file"].filename
        stored["headers"] = dict(request.headers)
        return web.Response(status=200)

    async def policy(request):
        answer = json.loads(json.dumps(POLICY_ANSWER))
        answer["output"]["upload_host"] = str(request.url.with_path("/storage").with_query(None))
        return web.json_response(answer)

    src = tmp_path / "my portrait (1).png"
    src.write_bytes(b"\x89PNG fake bytes")
    exchanges: list[Exchange] = []
    async with serve(web.get("/api/v1/uploads", policy), web.post("/storage", storage)) as (base, seen):
        async with DashScopeClient(base, KEY) as client:
            pol = await client.upload_policy("happyhorse-1.0-i2v")
            url = await client.upload(pol, src, log=exchanges.append)
            url2 = await client.upload(pol, src)
    assert isinstance(pol, UploadPolicy) and pol.expire_in_seconds == 300 and pol.max_file_size_mb == 1
    assert seen[0]["query"] == {"action": "getPolicy", "model": "happyhorse-1.0-i2v"}
    assert seen[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert url.startswith("oss://dashscope-instant/abc/2026/") and url.endswith(".png")
    assert url != url2, "two uploads of one file get distinct keys"
    assert " " not in url and "(" not in url
    assert stored["key"] == url2.removeprefix("oss://")  # the last upload
    assert stored["OSSAccessKeyId"] == "LTAI-test" and stored["Signature"] == "sig-abc"
    assert stored["success_action_status"] == "200" and stored["x-oss-content-type"] == "image/png"
    assert stored["file"] == b"\x89PNG fake bytes"
    assert "Authorization" not in stored["headers"]
    (ex,) = exchanges
    assert ex.request_body["file"] == {"name": src.name, "size": len(b"\x89PNG fake bytes")}
    assert "fake bytes" not in repr(ex) and "sig-abc" not in repr(ex)


async def test_upload_refused_by_storage_is_rejected_with_its_code(tmp_path):
    """Storage's XML 403 becomes RequestRejected with the OSS error code."""
    async def storage(request):
        await request.read()
        return web.Response(status=403, text="<Error><Code>AccessDenied</Code><Message>Policy expired.</Message></Error>")

    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    async with serve(web.post("/storage", storage)) as (base, _):
        pol = UploadPolicy(upload_host=base.replace("/api/v1", "/storage"), upload_dir="d", oss_access_key_id="k",
                           signature="s", policy="p", x_oss_object_acl="private", x_oss_forbid_overwrite="true",
                           expire_in_seconds=300, max_file_size_mb=10)
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(RequestRejected, match="Policy expired") as info:
                await client.upload(pol, src)
    assert info.value.code == "AccessDenied"


async def test_upload_larger_than_the_policy_allows_is_refused_before_sending(tmp_path):
    """A file over max_file_size_mb is rejected without a request."""
    src = tmp_path / "big.mp4"
    src.write_bytes(b"\0" * (1024 * 1024 + 1))
    pol = UploadPolicy(upload_host="http://127.0.0.1:1/never", upload_dir="d", oss_access_key_id="k",
                       signature="s", policy="p", x_oss_object_acl="private", x_oss_forbid_overwrite="true",
                       expire_in_seconds=300, max_file_size_mb=1)
    async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
        with pytest.raises(RequestRejected) as info:
            await client.upload(pol, src)
    assert info.value.code == "FileTooLarge"


async def test_upload_of_a_file_that_cannot_be_opened_is_rejected_as_local_file(tmp_path):
    """A path that stats but cannot be opened (here a folder) is RequestRejected (LocalFile), not an OSError."""
    pol = UploadPolicy(upload_host="http://127.0.0.1:1/never", upload_dir="d", oss_access_key_id="k",
                       signature="s", policy="p", x_oss_object_acl="private", x_oss_forbid_overwrite="true",
                       expire_in_seconds=300, max_file_size_mb=1)
    async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
        with pytest.raises(RequestRejected) as info:
            await client.upload(pol, tmp_path)
    assert info.value.code == "LocalFile" and "cannot read" in str(info.value)


async def test_upload_policy_answer_missing_fields_is_malformed():
    """A policy answer without upload_host is an ApiError, not a KeyError."""
    async with serve(web.get("/api/v1/uploads", json_answer(200, {"output": {"policy": "p"}}))) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            with pytest.raises(ApiError, match="upload_host"):
                await client.upload_policy("m")


async def test_a_cancelled_request_is_still_logged():
    """Cancelling a create in flight logs an Exchange marked cancelled (the task may exist) and re-raises."""
    arrived = asyncio.Event()
    never = asyncio.Event()

    async def hang(request):
        arrived.set()
        await never.wait()
        return web.Response()

    exchanges: list[Exchange] = []
    async with serve(web.post(CREATE, hang)) as (base, _):
        async with DashScopeClient(base, KEY) as client:
            task = asyncio.create_task(client.create(BODY, log=exchanges.append))
            await arrived.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        never.set()
    (ex,) = exchanges
    assert ex.error == "cancelled" and ex.status is None and ex.request_body == BODY


def test_an_error_code_that_is_not_a_string_still_makes_the_error():
    """A numeric or structured `code` in an error answer is used as text, not a TypeError."""
    err = error_from_response(400, {"code": 123, "message": "bad"}, {})
    assert isinstance(err, RequestRejected) and err.code == "123" and str(err) == "123: bad (HTTP 400)"
    assert isinstance(error_from_response(500, {"code": ["x"]}, {}), TransientError)


def test_a_retry_after_that_is_not_a_finite_number_is_ignored():
    """Retry-After "inf" or "nan" gives no delay from the server, not an endless wait."""
    for value in ("inf", "1e400", "nan", "-inf"):
        assert error_from_response(429, {"code": "Throttling"}, {"Retry-After": value}).retry_after is None

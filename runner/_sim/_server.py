"""The DashScope simulator: an aiohttp server that speaks the video-synthesis API.

Routes (all under one port):

* ``POST /api/v1/services/aigc/video-generation/video-synthesis`` - create a task
* ``GET  /api/v1/tasks/{task_id}`` - query; ``POST .../cancel`` - cancel
* ``GET  /api/v1/tasks`` - list
* ``GET  /api/v1/uploads?action=getPolicy&model=M`` - upload policy
* ``POST /oss-upload`` - the storage upload (multipart form, as the SDK sends it)
* ``GET|HEAD /oss/{task_id}.mp4?Expires=..&OSSAccessKeyId=..&Signature=..`` - result videos

Every request is appended to `Simulator.requests` before it is answered.
Decisions (life cycle, faults, rendering) live in `_tasks` and `_faults`; this
module only reads requests and writes answers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .._models import MODEL_IDS, MODEL_TABLE, UnknownModel, check_request, defaults, media_scheme
from . import _mp4
from ._clock import SimClock
from ._faults import ACCOUNT_ERRORS, FAILURES, Faults, pick, roll, uniform
from ._tasks import (
    PENDING,
    SUCCEEDED,
    UNKNOWN,
    Scheduler,
    Task,
    generation_seconds,
    list_item,
    query_output,
    ratio_text,
    usage,
)

API = "/api/v1"
CREATE_PATH = f"{API}/services/aigc/video-generation/video-synthesis"
UPLOAD_PATH = "/oss-upload"
DOWNLOAD_PREFIX = "/oss/"
ACCESS_KEY_ID = "LTAI5tSimulatorKey"
#: input keys the SDK always sends (a deprecated flag, its function name); the service ignores them
IGNORED_INPUT = ("extend_prompt", "function")
RATE_MESSAGE = "Requests rate limit exceeded, please try again later."
INTERNAL_MESSAGE = "An internal error has occured, please try again later or contact service support."
#: where each model row's output ratio is read from: (media type, is a video), first present wins
RATIO_SOURCES: dict[str, tuple[tuple[str, bool], ...]] = {
    "first_frame": (("first_frame", False), ("first_clip", True)),
    "first_clip": (("first_clip", True),),
    "input_video": (("video", True),),
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulated account and service behave."""

    #: the only key the service accepts (`Authorization: Bearer <key>`)
    api_key: str = field(default="sk-sim", repr=False)
    #: simulated seconds per real second
    time_scale: float = 1.0
    #: create requests accepted per real second (sliding 1 s window); 0 for no limit
    submit_rps: float = 20.0
    #: query, list and cancel requests accepted per real second; 0 for no limit
    query_rps: float = 20.0
    #: tasks generating at once; later ones stay PENDING (None or 0: no limit)
    concurrency: int | None = 5
    #: simulated seconds a video URL stays valid after the query that returned it
    url_ttl: float = 86400.0
    #: simulated seconds after submission that a task id answers UNKNOWN
    task_ttl: float = 86400.0
    #: seed of every fault decision
    seed: int = 0
    faults: Faults = Faults()
    host: str = "127.0.0.1"
    #: 0 picks a free port
    port: int = 0
    #: the length assumed for an input video the simulator cannot read (an http URL)
    assume_video_seconds: float = 5.0
    #: the zone of reported timestamps and list filters (Beijing, like the service)
    utc_offset_hours: float = 8.0
    max_upload_mb: int = 100

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {self.time_scale}")
        if self.submit_rps < 0 or self.query_rps < 0:
            raise ValueError("submit_rps and query_rps must be >= 0 (0: no limit)")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator received and how it answered."""

    #: create, query, cancel, list, policy, upload or download
    kind: str
    method: str
    path: str
    #: HTTP status sent, or None when the connection was dropped without an answer
    status: int | None
    task_id: str | None
    #: simulated seconds when it arrived
    at: float


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A file uploaded to the simulated storage."""

    data: bytes
    content_type: str


@dataclass(slots=True)
class _Kind:
    """Per request kind: how many reached the fault stage, and any 429 burst in progress."""

    seen: int = 0
    burst_left: int = 0


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What the gate decided for one request: a refusal to send, a drop, or neither."""

    refusal: web.Response | None = None
    drop: bool = False
    #: the request's index among requests of its kind that reached the fault stage
    n: int = -1


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"request_id": str(uuid.uuid4()), "code": code, "message": message}
    return web.json_response(body, status=status)


def _oss_error(status: int, code: str, message: str) -> web.Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{uuid.uuid4().hex.upper()[:24]}</RequestId>\n"
        "  <HostId>simulator.oss-cn-beijing.aliyuncs.com</HostId>\n</Error>\n"
    )
    return web.Response(status=status, text=xml, content_type="application/xml")


def _clean(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as the service reads it: SDK-only input flags and nulls left out."""
    cleaned = dict(body)
    if isinstance(body.get("input"), Mapping):
        cleaned["input"] = {
            k: v for k, v in body["input"].items() if v is not None and k not in IGNORED_INPUT
        }
    if isinstance(body.get("parameters"), Mapping):
        cleaned["parameters"] = {k: v for k, v in body["parameters"].items() if v is not None}
    return cleaned


class Simulator:
    """A DashScope-compatible server on 127.0.0.1 (see the module docstring for routes).

    Use as ``async with Simulator(SimConfig(...)) as sim:`` or ``await
    sim.start()`` / ``await sim.stop()``. `clock` may be injected (tests step
    real and simulated time by hand).
    """

    def __init__(self, config: SimConfig | None = None, *, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or SimClock(self.config.time_scale, utc_offset_hours=self.config.utc_offset_hours)
        self.faults = self.config.faults
        #: every request received, in arrival order
        self.requests: list[RequestRecord] = []
        self.port: int | None = None
        self._tasks: dict[str, Task] = {}
        self._scheduler = Scheduler(self.config.concurrency)
        self._windows: dict[str, deque[float]] = {"submit": deque(), "query": deque()}
        self._kinds: dict[str, _Kind] = {}
        self._accepted_creates = 0
        self._objects: dict[str, StoredObject] = {}
        self._policies: dict[str, str] = {}  # signature -> upload_dir
        self._secret = secrets.token_bytes(16)
        self._runner: web.AppRunner | None = None

    # --- life cycle --------------------------------------------------------

    async def start(self) -> Simulator:
        """Bind and serve; `base_url` is valid afterwards. Raises OSError when the address cannot be bound."""
        app = web.Application(client_max_size=(self.config.max_upload_mb + 1) * 1024 * 1024)
        app.router.add_post(CREATE_PATH, self._create)
        app.router.add_get(f"{API}/tasks", self._list)
        app.router.add_get(f"{API}/tasks/{{task_id}}", self._query)
        app.router.add_post(f"{API}/tasks/{{task_id}}/cancel", self._cancel)
        app.router.add_get(f"{API}/uploads", self._policy)
        app.router.add_post(UPLOAD_PATH, self._upload)
        app.router.add_get(f"{DOWNLOAD_PREFIX}{{name}}", self._download)  # HEAD too
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await self.stop()  # the runner is set up; do not leave it behind when binding fails
            raise
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Close the listening socket and every open connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- what tests look at ---------------------------------------------------

    @property
    def origin(self) -> str:
        """"http://127.0.0.1:PORT"."""
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL a client uses: "http://127.0.0.1:PORT/api/v1"."""
        return self.origin + API

    @property
    def tasks(self) -> dict[str, Task]:
        """task_id -> task, brought up to date with the clock."""
        self._scheduler.advance(self.clock.now())
        return self._tasks

    @property
    def objects(self) -> Mapping[str, StoredObject]:
        """Uploaded files by storage key (the part after ``oss://``)."""
        return self._objects

    def status(self, task_id: str) -> str:
        """The status a query of `task_id` would answer now."""
        task = self.tasks.get(task_id)
        return UNKNOWN if task is None else task.status(self.clock.now(), self.config.task_ttl)

    def count(self, kind: str, status: int | None | str = "any") -> int:
        """How many requests of `kind` arrived (only those answered `status`, if given;
        ``status=None`` counts dropped connections)."""
        return sum(1 for r in self.requests if r.kind == kind and (status == "any" or r.status == status))

    def set_faults(self, faults: Faults) -> None:
        """Change the injected faults from now on."""
        self.faults = faults

    # --- shared gates ----------------------------------------------------------

    def _log(self, kind: str, request: web.Request, status: int | None, task_id: str | None = None) -> None:
        self.requests.append(RequestRecord(kind, request.method, request.path, status, task_id, self.clock.now()))

    def _reply(self, kind: str, request: web.Request, response: web.Response, task_id: str | None = None) -> web.Response:
        self._log(kind, request, response.status, task_id)
        return response

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self.config.api_key}"
        return hmac.compare_digest(given.encode(), expected.encode())

    def _admit(self, quota: str) -> bool:
        """Count a request against a per-real-second quota; False when it is full."""
        rps = self.config.submit_rps if quota == "submit" else self.config.query_rps
        if not rps:
            return True
        window, now = self._windows[quota], self.clock.real()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= rps:
            return False
        window.append(now)
        return True


    def _gate(self, kind: str, request: web.Request, quota: str | None) -> _Verdict:
        """Authentication, account faults, quotas, then request faults, in that order."""
        if not self._authorized(request):
            return _Verdict(_error(401, "InvalidApiKey", "Invalid API-key provided."))
        faults = self.faults
        if kind == "create" and faults.account_error and self._accepted_creates >= faults.account_error_after:
            status, message = ACCOUNT_ERRORS[faults.account_error]
            return _Verdict(_error(status, faults.account_error, message))
        if quota is not None and not self._admit(quota):
            return _Verdict(_error(429, "Throttling.RateQuota", RATE_MESSAGE))
        return self._request_faults(kind, api=True)

    def _request_faults(self, kind: str, *, api: bool) -> _Verdict:
        """The injected 429 bursts, 5xx answers and dropped connections for this request."""
        faults, seed = self.faults, self.config.seed
        state = self._kinds.setdefault(kind, _Kind())
        n = state.seen
        state.seen += 1
        if kind in faults.throttle_on:
            if state.burst_left == 0 and roll(seed, f"throttle:{kind}", n, faults.throttle_rate):
                state.burst_left = faults.throttle_burst
            if state.burst_left > 0:
                state.burst_left -= 1
                if api:
                    return _Verdict(_error(429, "Throttling.RateQuota", RATE_MESSAGE), n=n)
                return _Verdict(_oss_error(503, "SlowDown", "Please reduce your request rate."), n=n)
        if kind in faults.error_on and roll(seed, f"error:{kind}", n, faults.error_rate):
            if api:
                return _Verdict(_error(500, "InternalError", INTERNAL_MESSAGE), n=n)
            return _Verdict(_oss_error(500, "InternalError", "We encountered an internal error. Please try again."), n=n)
        drop = kind in faults.drop_on and roll(seed, f"drop:{kind}", n, faults.drop_rate)
        return _Verdict(drop=drop, n=n)

    def _dropped(self, kind: str, request: web.Request, task_id: str | None = None) -> web.Response:
        """Close the connection without an answer (the response returned is never sent)."""
        self._log(kind, request, None, task_id)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)

    # --- create -----------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        kind = "create"
        verdict = self._gate(kind, request, "submit")
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal)
        if request.headers.get("X-DashScope-Async", "").lower() != "enable":
            sync_refusal = _error(400, "AccessDenied", "current user api does not support synchronous calls")
            return self._reply(kind, request, sync_refusal)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._reply(kind, request, _error(400, "InvalidParameter", "The request body is not valid JSON."))
        if not isinstance(body, dict):
            return self._reply(kind, request, _error(400, "InvalidParameter", "The request body must be a JSON object."))
        body = _clean(body)
        try:
            problems = check_request(body)
        except UnknownModel as exc:
            return self._reply(kind, request, _error(400, "ModelNotFound", f"Model not exist: {exc}"))
        if problems:
            message = "; ".join(f"{p.field}: {p.message}" for p in problems)
            return self._reply(kind, request, _error(400, "InvalidParameter", message))
        media, refusal = self._resolve_media(body, request)
        if refusal is not None:
            return self._reply(kind, request, refusal)
        task = await self._new_task(body, media)
        if verdict.drop:  # the task exists; the client never hears of it
            return self._dropped(kind, request, task.task_id)
        answer = {"request_id": task.request_id, "output": {"task_id": task.task_id, "task_status": PENDING}}
        return self._reply(kind, request, web.json_response(answer), task.task_id)

    def _resolve_media(
        self, body: Mapping[str, Any], request: web.Request
    ) -> tuple[dict[str, str | StoredObject], web.Response | None]:
        """The first media of each type (oss objects resolved, other URLs kept), or a 400."""
        resolve = request.headers.get("X-DashScope-OssResourceResolve", "").lower() == "enable"
        found: dict[str, str | StoredObject] = {}
        for index, item in enumerate(body["input"].get("media", [])):
            url, where = item["url"], f"input.media[{index}].url"
            scheme = media_scheme(url)
            if scheme not in ("http", "https", "oss"):
                message = f"{where}: {url!r} is not a URL the service can download (http, https or oss)"
                return found, _error(400, "InvalidParameter", message)
            value: str | StoredObject = url
            if scheme == "oss":
                if not resolve:
                    message = f"{where}: an oss:// URL needs the header X-DashScope-OssResourceResolve: enable"
                    return found, _error(400, "InvalidParameter", message)
                stored = self._objects.get(url[len("oss://"):])
                if stored is None:
                    return found, _error(400, "InvalidParameter", f"{where}: the object {url} does not exist")
                value = stored
            found.setdefault(item["type"], value)
        return found, None

    async def _new_task(self, body: Mapping[str, Any], media: Mapping[str, str | StoredObject]) -> Task:
        model = body["model"]
        row = MODEL_TABLE[model]
        params = {**defaults(model), **body.get("parameters", {})}
        sr = int(str(params.get("resolution", "1080P")).rstrip("Pp"))
        input_seconds = 0
        if row.duration_from == "input_video":
            video = await self._probe(media.get("video"), video=True)
            seconds = video[0] if video else self.config.assume_video_seconds
            input_seconds = max(1, round(seconds))
            duration = min(input_seconds, row.max_output_seconds)
        else:
            duration = int(params.get("duration", 5))
        ratio = str(params.get("ratio", "16:9"))
        if row.ratio_from != "parameter":
            ratio = await self._media_ratio(RATIO_SOURCES.get(row.ratio_from, ()), media)
        seq, seed, faults = len(self._tasks), self.config.seed, self.faults
        failure = None
        if roll(seed, "fail", seq, faults.fail_rate):
            code = pick(seed, "fail-code", seq, faults.fail_codes)
            failure = (code, FAILURES[code])
        video_seconds = duration
        if failure is None and roll(seed, "wrong_duration", seq, faults.wrong_duration_rate):
            video_seconds = duration + 2 if duration < 10 else duration - 2
        task = Task(
            task_id=str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
            model=model,
            seq=seq,
            submit_at=self.clock.now(),
            generation_seconds=generation_seconds(duration, sr, uniform(seed, "generation", seq)),
            prompt=body["input"].get("prompt"),
            duration=duration,
            input_video_duration=input_seconds,
            sr=sr,
            ratio=ratio,
            video_seconds=video_seconds,
            failure=failure,
        )
        self._tasks[task.task_id] = task
        self._scheduler.add(task)
        self._accepted_creates += 1
        return task

    async def _media_ratio(self, sources: tuple[tuple[str, bool], ...], media: Mapping[str, str | StoredObject]) -> str:
        """The aspect ratio of the first present source medium; 16:9 when it cannot be read."""
        for media_type, is_video in sources:
            if media_type in media:
                probed = await self._probe(media[media_type], video=is_video)
                return ratio_text(int(probed[-2]), int(probed[-1])) if probed else "16:9"
        return "16:9"

    async def _probe(self, value: str | StoredObject | None, *, video: bool) -> tuple[Any, ...] | None:
        """Dimensions (and length) of an uploaded file; None for URLs the simulator cannot read."""
        if not isinstance(value, StoredObject):
            return None
        probe = _mp4.probe_video if video else _mp4.probe_image
        return await asyncio.to_thread(probe, value.data)

    # --- query, cancel, list -------------------------------------------------------

    async def _query(self, request: web.Request) -> web.StreamResponse:
        kind, task_id = "query", request.match_info["task_id"]
        verdict = self._gate(kind, request, "query")
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal, task_id)
        if verdict.drop:
            return self._dropped(kind, request, task_id)
        now = self.clock.now()
        self._scheduler.advance(now)
        task = self._tasks.get(task_id)
        answer: dict[str, Any] = {"request_id": str(uuid.uuid4())}
        if task is None:
            answer["output"] = {"task_id": task_id, "task_status": UNKNOWN}
        else:
            status = task.status(now, self.config.task_ttl)
            url = self._sign(task, now) if status == SUCCEEDED else None
            answer["output"] = query_output(task, status, self.clock.stamp, url)
            if status == SUCCEEDED:
                answer["usage"] = usage(task)
        return self._reply(kind, request, web.json_response(answer), task_id)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        kind, task_id = "cancel", request.match_info["task_id"]
        verdict = self._gate(kind, request, "query")
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal, task_id)
        if verdict.drop:
            return self._dropped(kind, request, task_id)
        now = self.clock.now()
        task = self._tasks.get(task_id)
        if task is None or task.status(now, self.config.task_ttl) == UNKNOWN:
            refusal = _error(400, "InvalidParameter", f"The task {task_id} does not exist or has expired.")
            return self._reply(kind, request, refusal, task_id)
        if not self._scheduler.cancel(task, now):
            message = "Failed to cancel the task, please confirm if the task is in PENDING status."
            return self._reply(kind, request, _error(400, "UnsupportedOperation", message), task_id)
        return self._reply(kind, request, web.json_response({"request_id": str(uuid.uuid4())}), task_id)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        kind = "list"
        verdict = self._gate(kind, request, "query")
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal)
        if verdict.drop:
            return self._dropped(kind, request)
        query, now = request.query, self.clock.now()
        try:
            page_no = int(query.get("page_no", 1))
            page_size = int(query.get("page_size", 10))
            start = self.clock.parse_compact(query["start_time"]) if "start_time" in query else now - 86400.0
            # end_time has whole-second precision: include everything within that second
            end = self.clock.parse_compact(query["end_time"]) + 1.0 if "end_time" in query else math.inf
        except ValueError as exc:
            return self._reply(kind, request, _error(400, "InvalidParameter", f"bad list parameter: {exc}"))
        if page_no < 1 or not 1 <= page_size <= 100:
            refusal = _error(400, "InvalidParameter", "page_no must be at least 1 and page_size between 1 and 100")
            return self._reply(kind, request, refusal)
        self._scheduler.advance(now)
        model, wanted = query.get("model_name"), query.get("status")
        rows = []
        for task in sorted(self._tasks.values(), key=lambda t: t.seq, reverse=True):
            status = task.status(now, self.config.task_ttl)
            if status == UNKNOWN or not start <= task.submit_at < end:
                continue
            if (model and task.model != model) or (wanted and status != wanted):
                continue
            rows.append(list_item(task, status, self.clock.wall))
        first = (page_no - 1) * page_size
        answer = {
            "request_id": str(uuid.uuid4()),
            "data": rows[first:first + page_size],
            "total": len(rows),
            "total_page": math.ceil(len(rows) / page_size),
            "page_no": page_no,
            "page_size": page_size,
        }
        return self._reply(kind, request, web.json_response(answer))

    # --- uploads -------------------------------------------------------------------

    def _policy_signature(self, policy: str) -> str:
        return base64.b64encode(hmac.new(self._secret, policy.encode(), hashlib.sha1).digest()).decode()

    async def _policy(self, request: web.Request) -> web.StreamResponse:
        kind = "policy"
        verdict = self._gate(kind, request, None)
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal)
        if verdict.drop:
            return self._dropped(kind, request)
        model = request.query.get("model", "")
        if request.query.get("action") != "getPolicy" or not model:
            refusal = _error(400, "InvalidParameter", "action=getPolicy and model are required")
            return self._reply(kind, request, refusal)
        if model not in MODEL_IDS:
            return self._reply(kind, request, _error(400, "ModelNotFound", f"Model not exist: {model}"))
        wall = self.clock.wall()
        day = datetime.fromtimestamp(wall, self.clock.tz).strftime("%Y-%m-%d")
        upload_dir = f"dashscope-instant/{secrets.token_hex(16)}/{day}/{uuid.uuid4()}"
        limit = self.config.max_upload_mb * 1024 * 1024
        policy = base64.b64encode(json.dumps({
            "expiration": datetime.fromtimestamp(wall + 300, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [["content-length-range", 0, limit], ["starts-with", "$key", upload_dir]],
        }).encode()).decode()
        signature = self._policy_signature(policy)
        self._policies[signature] = upload_dir
        output = {
            "policy": policy,
            "signature": signature,
            "upload_dir": upload_dir,
            "upload_host": self.origin + UPLOAD_PATH,
            "expire_in_seconds": 300,
            "max_file_size_mb": self.config.max_upload_mb,
            "capacity_limit_mb": 999999999,
            "oss_access_key_id": ACCESS_KEY_ID,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }
        return self._reply(kind, request, web.json_response({"request_id": str(uuid.uuid4()), "output": output}))

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        kind = "upload"
        verdict = self._request_faults(kind, api=False)
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal)
        if verdict.drop:
            return self._dropped(kind, request)
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            refusal = _oss_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
            return self._reply(kind, request, refusal)
        signature, key = str(form.get("Signature", "")), str(form.get("key", ""))
        policy = str(form.get("policy", ""))
        upload_dir = self._policies.get(signature)
        if (
            upload_dir is None
            or form.get("OSSAccessKeyId") != ACCESS_KEY_ID
            or not hmac.compare_digest(self._policy_signature(policy), signature)
        ):
            refusal = _oss_error(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
            return self._reply(kind, request, refusal)
        if not key.startswith(upload_dir + "/") or key == upload_dir + "/":
            condition = f'["starts-with", "$key", "{upload_dir}"]'
            refusal = _oss_error(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}")
            return self._reply(kind, request, refusal)
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            message = "The body of your POST request is not well-formed multipart/form-data."
            refusal = _oss_error(400, "InvalidArgument", message)
            return self._reply(kind, request, refusal)
        if key in self._objects and str(form.get("x-oss-forbid-overwrite", "false")).lower() == "true":
            message = "The object you specified already exists and can not be overwritten."
            refusal = _oss_error(409, "FileAlreadyExists", message)
            return self._reply(kind, request, refusal)
        data = upload.file.read()
        content_type = str(form.get("x-oss-content-type") or upload.content_type or "application/octet-stream")
        self._objects[key] = StoredObject(data, content_type)
        status = str(form.get("success_action_status", "204"))
        return self._reply(kind, request, web.Response(status=int(status) if status in ("200", "201") else 204))

    # --- downloads -----------------------------------------------------------------

    def _url_signature(self, task_id: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"{task_id}\n{expires}".encode(), hashlib.sha1).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _sign(self, task: Task, now: float) -> str:
        """A fresh video URL for `task`, valid `url_ttl` simulated seconds from `now`."""
        expires = math.ceil(self.clock.wall(now + self.config.url_ttl))
        signature = self._url_signature(task.task_id, expires)
        return (
            f"{self.origin}{DOWNLOAD_PREFIX}{task.task_id}.mp4"
            f"?Expires={expires}&OSSAccessKeyId={ACCESS_KEY_ID}&Signature={signature}"
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        kind, name = "download", request.match_info["name"]
        task_id = name.removesuffix(".mp4")
        expires_text = request.query.get("Expires", "")
        expires = int(expires_text) if expires_text.isdecimal() else -1  # isdigit() also takes "²"
        if not hmac.compare_digest(request.query.get("Signature", ""), self._url_signature(task_id, expires)):
            refusal = _oss_error(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
            return self._reply(kind, request, refusal, task_id)
        if self.clock.wall() > expires:
            return self._reply(kind, request, _oss_error(403, "AccessDenied", "Request has expired."), task_id)
        task = self._tasks.get(task_id)
        if task is None or not name.endswith(".mp4"):
            return self._reply(kind, request, _oss_error(404, "NoSuchKey", "The specified key does not exist."), task_id)
        verdict = self._request_faults(kind, api=False)
        if verdict.refusal is not None:
            return self._reply(kind, request, verdict.refusal, task_id)
        if verdict.drop:
            return self._dropped(kind, request, task_id)
        data = await asyncio.to_thread(_mp4.mp4, task.video_seconds, task.ratio, task.sr)
        return await self._send_video(request, task_id, data, verdict.n)

    async def _send_video(self, request: web.Request, task_id: str, data: bytes, n: int) -> web.StreamResponse:
        """Answer a GET or HEAD for `data`, honouring Range and the slow/truncate faults."""
        kind, faults, seed = "download", self.faults, self.config.seed
        headers = {"Accept-Ranges": "bytes", "ETag": '"' + hashlib.md5(data).hexdigest().upper() + '"'}  # noqa: S324
        try:
            span = request.http_range
            start, stop, _ = span.indices(len(data))
        except ValueError:
            start = stop = 0
        if start >= stop:
            unsatisfiable = _oss_error(416, "InvalidRange", "The requested range is not satisfiable.")
            unsatisfiable.headers["Content-Range"] = f"bytes */{len(data)}"
            return self._reply(kind, request, unsatisfiable, task_id)
        status = 200
        if request.headers.get("Range"):
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        body = data[start:stop]
        if request.method == "HEAD":
            head = web.Response(status=status, body=body, content_type="video/mp4", headers=headers)
            return self._reply(kind, request, head, task_id)  # aiohttp sends the headers only
        truncate = roll(seed, "truncate", n, faults.truncate_rate)
        slow = roll(seed, "slow", n, faults.slow_rate)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = "video/mp4"
        response.content_length = len(body)  # the full length, even when about to truncate
        self._log(kind, request, status, task_id)
        send = body[: len(body) // 2] if truncate else body
        # a slow download trickles about ten pieces a second, each waiting its share before it goes
        chunk = max(512, int(faults.slow_bytes_per_second / 10)) if slow else 64 * 1024
        try:
            await response.prepare(request)
            for offset in range(0, len(send), chunk):
                piece = send[offset:offset + chunk]
                if slow:
                    await asyncio.sleep(len(piece) / faults.slow_bytes_per_second)
                await response.write(piece)
            if truncate:
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away; nothing to answer
        return response

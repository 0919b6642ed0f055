"""The DashScope HTTP client: one attempt per call, every outside error mapped once.

This is the only module that maps `aiohttp.ClientError` onto the exception tree
(`runner._preflight.check_url`, which talks to media hosts, turns such failures
into sentences instead). Each method makes ONE
request and either returns parsed data or raises from `runner._errors`:

* HTTP 400 (and other 4xx)  -> `RequestRejected`, with the server's code and message
* HTTP 401/403, account codes (`Arrearage`, `InvalidApiKey`, `AccessDenied`,
  `Throttling.AllocationQuota`, ...) -> `AccountError`
* HTTP 429                  -> `Throttled` (`retry_after` from the Retry-After header)
* HTTP 5xx, timeouts, dropped connections -> `TransientError`; `reached_server` is
  False only when the request provably never left (connect/DNS/TLS failure)
* storage 403 on a result video -> `UrlExpired`; other download failures ->
  `DownloadError`, except truncation and drops, which are `TransientError`

Retrying is the caller's business (`runner._retry`).

Every request and answer can be reported to a `log` callback as an `Exchange`
whose headers carry ``Authorization: Bearer ***`` and whose URL, bodies and error
text have the API key scrubbed out. Storage requests (upload, download) never
carry the key at all; upload file bytes are never logged, only name and size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import mimetypes
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiofiles
import aiofiles.os
import aiohttp
from yarl import URL

from ._errors import (
    AccountError,
    ApiError,
    DownloadError,
    RequestRejected,
    Throttled,
    TransientError,
    UrlExpired,
    UsageError,
)

__all__ = [
    "ACCOUNT_CODES",
    "DashScopeClient",
    "Downloaded",
    "Exchange",
    "Log",
    "TaskInfo",
    "UploadPolicy",
    "error_from_response",
    "parse_task",
    "redact",
]

#: error codes that mean the account, not the request, is the problem
ACCOUNT_CODES = frozenset(
    {
        "Arrearage",
        "InvalidApiKey",
        "AccessDenied",
        "AccessDenied.Unpurchased",
        "Model.AccessDenied",
        "Workspace.AccessDenied",
        "Throttling.AllocationQuota",
        "AllocationQuota.FreeTierOnly",
    }
)

REDACTED = "***"
#: the zone DashScope reads list filter times in (Beijing)
SERVICE_TZ = timezone(timedelta(hours=8))
_BODY_TEXT_LIMIT = 4096
_CHUNK = 1 << 16
_CREATE_PATH = ("services", "aigc", "video-generation", "video-synthesis")
# aiohttp >= 3.10 tells a connect timeout apart from a read timeout
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(aiohttp, "ConnectionTimeoutError", None),) if t is not None
)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer (or failure), already redacted: safe to write anywhere."""

    #: wall-clock time the request started (seconds since the epoch)
    at: float
    method: str
    url: str
    request_headers: dict
    request_body: Any
    #: HTTP status, None when no answer arrived
    status: int | None
    response_body: Any
    #: what went wrong, None on a 2xx answer
    error: str | None
    #: seconds from sending to the end of the answer (or the failure)
    elapsed: float


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task as the create, query or list answer described it."""

    task_id: str
    #: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or UNKNOWN
    status: str
    video_url: str | None
    #: failure code and message of a FAILED task
    code: str | None
    message: str | None
    usage: dict
    submit_time: str | None
    scheduled_time: str | None
    end_time: str | None
    request_id: str | None
    raw: dict = field(repr=False)


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """A temporary-storage upload policy from `GET /uploads?action=getPolicy`."""

    upload_host: str
    upload_dir: str
    oss_access_key_id: str
    signature: str
    policy: str
    x_oss_object_acl: str
    x_oss_forbid_overwrite: str
    expire_in_seconds: int | None
    max_file_size_mb: float | None


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A result video saved completely at `path`."""

    path: Path
    size: int
    sha256: str


Log = Callable[[Exchange], None]


# --------------------------------------------------------------------------- pure helpers


def redact(value: Any, secret: str | None) -> Any:
    """`value` with every occurrence of `secret` in its strings replaced by ``***``.

    Walks dicts, lists and tuples; other values come back unchanged.
    """
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, dict):
        return {redact(k, secret): redact(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secret) for v in value]
    return value


def _redact_headers(headers: Mapping[str, str], secret: str | None) -> dict:
    out = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            out[name] = f"Bearer {REDACTED}"
        else:
            out[name] = redact(str(value), secret)
    return out


def _parse_body(text: str) -> Any:
    """JSON when the body is JSON, else the text itself (shortened)."""
    try:
        return json.loads(text)
    except ValueError:
        return text[:_BODY_TEXT_LIMIT]


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf" would stall the limiter for good; "nan" is no delay at all
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def error_from_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> ApiError:
    """The `ApiError` for a non-2xx API answer, its message from the server's code and message."""
    body = payload if isinstance(payload, dict) else {}
    # a proxy or a faulty server may send a number or an object as the code
    code = str(body["code"]) if body.get("code") else None
    message = body.get("message") or (payload if isinstance(payload, str) and payload else None)
    request_id = body.get("request_id")
    text = f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")
    text = f"{text} (HTTP {status}" + (f", request {request_id})" if request_id else ")")
    kwargs: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    if status in (401, 403) or (code in ACCOUNT_CODES) or (code or "").startswith("AccessDenied"):
        return AccountError(text, **kwargs)
    if status == 429:
        after = _retry_after((headers or {}).get("Retry-After"))
        return Throttled(text, retry_after=after, **kwargs)
    if status >= 500 or status == 408:
        return TransientError(text, **kwargs)
    return RequestRejected(text, **kwargs)


def _output(body: Mapping[str, Any], fallback: dict[str, Any]) -> dict[str, Any]:
    """`body["output"]` when it is a JSON object, else `fallback`."""
    output = body.get("output")
    return output if isinstance(output, dict) else fallback


def parse_task(payload: Any) -> TaskInfo:
    """A `TaskInfo` from a create or query answer (``{"output": {...}, "usage": ...}``).

    Raises `ApiError` (code ``MalformedResponse``) when no task id is in it.
    """
    body = payload if isinstance(payload, dict) else {}
    output = _output(body, body)
    task_id = output.get("task_id")
    if not task_id:
        raise ApiError(
            "the API answered without a task id",
            code="MalformedResponse",
            request_id=body.get("request_id"),
        )
    usage = body.get("usage")
    return TaskInfo(
        task_id=str(task_id),
        status=str(output.get("task_status") or output.get("status") or "UNKNOWN"),
        video_url=output.get("video_url"),
        code=output.get("code"),
        message=output.get("message"),
        usage=usage if isinstance(usage, dict) else {},
        submit_time=output.get("submit_time"),
        scheduled_time=output.get("scheduled_time"),
        end_time=output.get("end_time"),
        request_id=body.get("request_id") or output.get("request_id"),
        raw=body,
    )


def _upload_policy(payload: Any) -> UploadPolicy:
    body = payload if isinstance(payload, dict) else {}
    out = _output(body, {})
    try:
        return UploadPolicy(
            upload_host=str(out["upload_host"]),
            upload_dir=str(out["upload_dir"]).rstrip("/"),
            oss_access_key_id=str(out["oss_access_key_id"]),
            signature=str(out["signature"]),
            policy=str(out["policy"]),
            x_oss_object_acl=str(out.get("x_oss_object_acl", "private")),
            x_oss_forbid_overwrite=str(out.get("x_oss_forbid_overwrite", "true")),
            expire_in_seconds=_int_or_none(out.get("expire_in_seconds")),
            max_file_size_mb=_float_or_none(out.get("max_file_size_mb")),
        )
    except KeyError as exc:
        raise ApiError(
            f"the upload policy answer lacks {exc.args[0]!r}",
            code="MalformedResponse",
            request_id=body.get("request_id"),
        ) from None


def _service_time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(SERVICE_TZ)
    return moment.strftime("%Y%m%d%H%M%S")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _object_name(path: Path) -> str:
    """A storage-safe, unique file name that still shows where it came from."""
    stem = _UNSAFE.sub("_", path.stem).strip("._") or "file"
    suffix = _UNSAFE.sub("", path.suffix.lower())
    return f"{uuid.uuid4().hex[:16]}-{stem[:60]}{suffix}"


def _storage_error(status: int, text: str) -> ApiError:
    """Errors from the storage upload host, which speaks XML (``<Code>``, ``<Message>``)."""
    code_m = re.search(r"<Code>([^<]*)</Code>", text)
    msg_m = re.search(r"<Message>([^<]*)</Message>", text)
    code = code_m.group(1) if code_m else None
    message = msg_m.group(1) if msg_m else (text[:200] or f"HTTP {status}")
    what = f"upload to storage failed: {code + ': ' if code else ''}{message} (HTTP {status})"
    if status >= 500 or status in (408, 429):
        return TransientError(what, status=status, code=code)
    return RequestRejected(what, status=status, code=code)


def _connection_error(exc: BaseException, what: str) -> ApiError | UsageError:
    """Map an aiohttp/timeout failure onto the runner's errors (the one place that does)."""
    if isinstance(exc, aiohttp.InvalidURL):
        return UsageError(f"{what}: invalid URL {exc}")
    # Connect-phase failures: nothing was sent, so even a create may be repeated.
    if isinstance(exc, (aiohttp.ClientConnectorError, *_CONNECT_TIMEOUT)):
        return TransientError(f"{what}: could not connect ({exc.__class__.__name__}: {exc})",
                              reached_server=False)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TransientError(f"{what}: timed out waiting for the answer")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransientError(f"{what}: the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransientError(f"{what}: the answer was cut short ({exc})")
    return TransientError(f"{what}: {exc.__class__.__name__}: {exc}")


# --------------------------------------------------------------------------- the client


class DashScopeClient:
    """Speaks DashScope's video-synthesis API and its temporary storage; one attempt per call.

    Use as ``async with DashScopeClient(base_url, api_key) as client: ...``. A
    `session` passed in is used and left open; otherwise the client opens its own
    and closes it in `aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 60.0,
    ) -> None:
        try:
            self._base = URL(base_url.rstrip("/") + "/")
            # the resolver encodes the host this way; an empty label would fail at the first request
            (self._base.host or "").encode("idna")
        except ValueError:  # UnicodeError is one
            raise UsageError(f"the API base URL is not a valid URL: {base_url!r}") from None
        if self._base.scheme not in ("http", "https"):
            raise UsageError(f"the API base URL must be http or https, not {base_url!r}")
        self._key = api_key
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Storage transfers may take long; only stalls count against them.
        self._transfer_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=timeout
        )

    def __repr__(self) -> str:
        return f"DashScopeClient({str(self._base)!r}, api_key={REDACTED!r})"

    async def __aenter__(self) -> DashScopeClient:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    # ------------------------------------------------------------------ API calls

    async def create(
        self, body: dict, *, oss_resolve: bool = False, log: Log | None = None
    ) -> TaskInfo:
        """Submit one video-synthesis task; returns it as created (usually PENDING).

        `oss_resolve` adds ``X-DashScope-OssResourceResolve: enable`` for bodies that
        refer to uploaded ``oss://`` media. Raises per the module's mapping; a
        `TransientError` with `reached_server` True means the task MAY exist.
        """
        headers = {"X-DashScope-Async": "enable"}
        if oss_resolve:
            headers["X-DashScope-OssResourceResolve"] = "enable"
        payload = await self._api("POST", _CREATE_PATH, json_body=body, headers=headers, log=log)
        return parse_task(payload)

    async def query(self, task_id: str, *, log: Log | None = None) -> TaskInfo:
        """The task's current state (`GET /tasks/{task_id}`)."""
        payload = await self._api("GET", self._task_path(task_id), log=log)
        return parse_task(payload)

    async def cancel(self, task_id: str, *, log: Log | None = None) -> None:
        """Cancel a PENDING task; the server rejects (`RequestRejected`) other states."""
        await self._api("POST", (*self._task_path(task_id), "cancel"), log=log)

    async def list_tasks(
        self,
        *,
        start_time: datetime,
        end_time: datetime,
        model: str | None = None,
        status: str | None = None,
        page_no: int = 1,
        page_size: int = 100,
        log: Log | None = None,
    ) -> tuple[list[TaskInfo], int]:
        """One page of the account's tasks created between the two times: ``(tasks, total)``.

        Times are sent as the server expects them, ``YYYYMMDDhhmmss`` in Beijing time:
        aware datetimes are converted, naive ones are taken to be Beijing time already.
        """
        params: dict[str, str] = {
            "start_time": _service_time(start_time),
            "end_time": _service_time(end_time),
            "page_no": str(page_no),
            "page_size": str(page_size),
        }
        if model:
            params["model_name"] = model
        if status:
            params["status"] = status
        payload = await self._api("GET", ("tasks",), params=params, log=log)
        body = payload if isinstance(payload, dict) else {}
        holder = _output(body, body)
        items = holder.get("data") or holder.get("tasks") or []
        tasks = [parse_task(item) for item in items if isinstance(item, dict) and item.get("task_id")]
        total = _int_or_none(holder.get("total"))
        return tasks, total if total is not None else len(tasks)

    async def upload_policy(self, model: str, *, log: Log | None = None) -> UploadPolicy:
        """A temporary-storage upload policy for `model`'s media."""
        payload = await self._api(
            "GET", ("uploads",), params={"action": "getPolicy", "model": model}, log=log
        )
        return _upload_policy(payload)

    async def upload(
        self,
        policy: UploadPolicy,
        path: Path,
        *,
        content_type: str | None = None,
        log: Log | None = None,
    ) -> str:
        """Upload a local file under `policy`; returns its ``oss://<key>`` URL.

        The key is ``upload_dir/<unique safe name>``, so two files with the same name
        never collide. The bearer key is not sent to storage. Raises
        `RequestRejected` when the file is larger than the policy allows or storage
        refuses it, `TransientError` for storage 5xx and connection failures.
        """
        path = Path(path)
        try:
            size = (await aiofiles.os.stat(path)).st_size
        except OSError as exc:
            raise RequestRejected.local_file(path, exc) from None
        if policy.max_file_size_mb is not None and size > policy.max_file_size_mb * 1024 * 1024:
            raise RequestRejected(
                f"{path.name} is {size / 1048576:.1f} MB; storage takes at most "
                f"{policy.max_file_size_mb:g} MB",
                code="FileTooLarge",
            )
        key = f"{policy.upload_dir}/{_object_name(path)}"
        ctype = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        fields = {
            "OSSAccessKeyId": policy.oss_access_key_id,
            "Signature": policy.signature,
            "policy": policy.policy,
            "key": key,
            "x-oss-object-acl": policy.x_oss_object_acl,
            "x-oss-forbid-overwrite": policy.x_oss_forbid_overwrite,
            "success_action_status": "200",
            "x-oss-content-type": ctype,
        }
        logged_body = {**fields, "Signature": REDACTED, "policy": REDACTED,
                       "file": {"name": path.name, "size": size}}
        session = self._ensure_session()
        started, t0 = time.time(), time.monotonic()
        status: int | None = None
        answer: Any = None
        error: str | None = None
        try:
            with open(path, "rb") as handle:
                form = aiohttp.FormData()
                for name, value in fields.items():
                    form.add_field(name, value)
                # aiohttp streams the file object, reading it in an executor.
                form.add_field("file", handle, filename=path.name, content_type=ctype)
                async with session.post(
                    policy.upload_host,
                    data=form,
                    headers={"Accept": "application/json"},
                    timeout=self._transfer_timeout,
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    text = await resp.text(errors="replace")
                    answer = _parse_body(text) if text else None
            if status != 200:
                failure: Exception = _storage_error(status, text)
                error = str(failure)
                raise failure
            return f"oss://{key}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            mapped = _connection_error(exc, f"upload of {path.name}")
            error = str(mapped)
            raise mapped from exc
        except OSError as exc:  # our side: the file could not be opened or read after all
            failure = RequestRejected.local_file(path, exc)
            error = str(failure)
            raise failure from exc
        except asyncio.CancelledError:
            error = "cancelled"
            raise
        finally:
            self._emit(log, started, t0, "POST", policy.upload_host, {}, logged_body,
                       status, answer, error)

    async def download(self, url: str, dest: Path, *, log: Log | None = None) -> Downloaded:
        """Stream a result video to `dest`, atomically: it appears only when complete.

        Writes ``.<name>.part`` beside `dest`, checks Content-Length, computes the
        SHA-256 on the way, fsyncs, then renames. On any failure or cancellation
        the partial file is removed. Raises `DownloadError` for non-http(s) URLs,
        refusals and local write failures, `UrlExpired` for storage 403, `TransientError` for 5xx, 429,
        truncated bodies and dropped connections.
        """
        try:
            scheme = URL(url).scheme
        except (ValueError, TypeError):
            raise DownloadError(f"the video URL is not a valid URL: {str(url)[:200]!r}") from None
        if scheme not in ("http", "https"):
            raise DownloadError(f"refusing to download a {scheme or 'schemeless'!s} URL; only http and https")
        dest = Path(dest)
        part = dest.with_name(f".{dest.name}.part")
        session = self._ensure_session()
        started, t0 = time.time(), time.monotonic()
        status: int | None = None
        size = 0
        digest = hashlib.sha256()
        error: str | None = None
        try:
            await aiofiles.os.makedirs(dest.parent, exist_ok=True)
            async with session.get(url, timeout=self._transfer_timeout) as resp:
                status = resp.status
                if status != 200:
                    raise self._download_refusal(status, await resp.text(errors="replace"))
                expected = resp.content_length
                async with aiofiles.open(part, "wb") as out:
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        await out.write(chunk)
                    await out.flush()
                    await asyncio.to_thread(os.fsync, out.fileno())
            if expected is not None and size != expected:
                raise TransientError(
                    f"download cut short: {size} of {expected} bytes arrived"
                )
            await aiofiles.os.replace(part, dest)
            await asyncio.to_thread(_fsync_dir, dest.parent)
            return Downloaded(path=dest, size=size, sha256=digest.hexdigest())
        except BaseException as exc:
            mapped: BaseException | None = None
            if isinstance(exc, (aiohttp.InvalidURL, UnicodeError)):  # a URL the server handed out, not ours
                mapped = DownloadError(f"the video URL cannot be fetched: {exc}")
            elif isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
                mapped = _connection_error(exc, "download")
            elif isinstance(exc, OSError):  # our side: disk full, no permission, not a folder
                mapped = DownloadError(f"could not write {dest}: {exc.strerror or exc}")
            error = "cancelled" if isinstance(exc, asyncio.CancelledError) else str(mapped or exc)
            # synchronous on purpose: nothing may interrupt the cleanup
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
            if mapped is not None:
                raise mapped from exc
            raise
        finally:
            self._emit(log, started, t0, "GET", url, {}, None, status,
                       {"bytes": size, "sha256": digest.hexdigest()} if error is None else None,
                       error)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _download_refusal(status: int, text: str) -> Exception:
        if status == 403:
            return UrlExpired("storage refused the video URL (HTTP 403): it has expired")
        if status >= 500 or status in (408, 429):
            return TransientError(f"storage answered HTTP {status}", status=status)
        return DownloadError(f"storage answered HTTP {status}: {text[:200]}")

    @staticmethod
    def _task_path(task_id: str) -> tuple[str, ...]:
        if not task_id or "/" in task_id or task_id in (".", ".."):
            raise RequestRejected(f"not a task id: {task_id!r}", code="InvalidTaskId")
        return ("tasks", task_id)

    async def _api(
        self,
        method: str,
        path: tuple[str, ...],
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        log: Log | None = None,
    ) -> Any:
        """One authenticated API request; the parsed 2xx body, or the mapped error."""
        url = self._base
        for segment in path:
            url = url / segment  # quoted: a task id cannot smuggle in a query or a path
        if params:
            url = url.update_query(params)
        request_headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        if json_body is not None:
            request_headers["Content-Type"] = "application/json"
        request_headers.update(headers or {})
        session = self._ensure_session()
        started, t0 = time.time(), time.monotonic()
        status: int | None = None
        payload: Any = None
        error: str | None = None
        try:
            async with session.request(
                method,
                url,
                json=json_body,
                headers=request_headers,
                timeout=self._timeout,
                # never follow a redirect carrying the bearer key
                allow_redirects=False,
            ) as resp:
                status = resp.status
                text = await resp.text(errors="replace")
                payload = _parse_body(text) if text else None
                response_headers = resp.headers
            if not 200 <= status < 300:
                failure = error_from_response(status, redact(payload, self._key), response_headers)
                error = redact(str(failure), self._key)
                raise failure
            return payload
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            mapped = _connection_error(exc, f"{method} {url.path}")
            error = redact(str(mapped), self._key)
            raise mapped from exc
        except asyncio.CancelledError:
            error = "cancelled"
            raise
        finally:
            self._emit(log, started, t0, method, str(url), request_headers, json_body,
                       status, payload, error)

    def _emit(
        self,
        log: Log | None,
        started: float,
        t0: float,
        method: str,
        url: str,
        headers: Mapping[str, str],
        request_body: Any,
        status: int | None,
        response_body: Any,
        error: str | None,
    ) -> None:
        if log is None:
            return
        key = self._key
        log(
            Exchange(
                at=started,
                method=method,
                url=redact(url, key),
                request_headers=_redact_headers(headers, key),
                request_body=redact(request_body, key),
                status=status,
                response_body=redact(response_body, key),
                error=redact(error, key),
                elapsed=time.monotonic() - t0,
            )
        )


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

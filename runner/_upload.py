"""Upload a job's local media to DashScope's temporary storage, once per file and model.

A job's `local_media` maps a friendly field path (``first_frame``,
``reference_images[1]``) to a local file. `Uploader.resolve` swaps each of
those for an ``oss://`` URL in a copy of the job's create body:

* every file is known by its content (sha256) and the model it is for, since
  an upload policy is issued per model;
* the journal remembers each upload until shortly before it expires
  (`find_upload` / `record_upload`), so a re-run, or another job using the same
  file, reuses it instead of sending the bytes again;
* jobs resolving the same (file, model) at the same time share one upload;
* uploads run under the uploader's own semaphore, each retried by
  `runner._retry.retry_call` (a fresh policy per attempt, so an expired
  policy is never reused).

The pure parts (`replace_media`, `needs_oss_resolve`, `upload_expiry`) are
separate from the I/O in `Uploader`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ._errors import RequestRejected
from ._models import LIST_MEDIA, SINGLE_MEDIA
from ._retry import RetryPolicy, retry_call

__all__ = ["Uploader", "needs_oss_resolve", "replace_media", "upload_expiry", "file_sha256"]

#: an upload is not reused in its last hour (or last half, for short-lived ones):
#: a task may wait PENDING a while before the service fetches its media
SAFETY_MARGIN = 3600.0
#: lifetime assumed when a policy does not state `expire_in_seconds`
DEFAULT_LIFETIME = 3600.0

T = TypeVar("T")

_FIELD_PATH = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?$")


class _Client(Protocol):
    async def upload_policy(self, model: str) -> Any: ...
    async def upload(self, policy: Any, path: Path) -> str: ...


class _UploadJournal(Protocol):
    # plain or async methods: the uploader awaits what is awaitable
    def find_upload(self, content_hash: str, model: str, now: float) -> str | None | Awaitable[str | None]: ...
    def record_upload(self, content_hash: str, model: str, url: str, expires_at: float) -> None | Awaitable[None]: ...


class _Job(Protocol):
    @property
    def body(self) -> Mapping[str, Any]: ...
    @property
    def local_media(self) -> Mapping[str, Path]: ...


# --- pure decisions -----------------------------------------------------------

def upload_expiry(now: float, expire_in_seconds: float | None) -> float:
    """When a fresh upload stops being reused: its lifetime less a safety margin."""
    lifetime = DEFAULT_LIFETIME if expire_in_seconds is None else float(expire_in_seconds)
    return now + lifetime - min(SAFETY_MARGIN, lifetime / 2)


def replace_media(body: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a create body with the media at each field path set to its URL.

    ``first_frame`` names the ``input.media`` entry of type first_frame;
    ``reference_images[1]`` the second entry of type reference_image. Raises
    ValueError for a field path the body has no entry for.
    """
    out = copy.deepcopy(dict(body))
    media = out.get("input", {}).get("media", [])
    for field_path, url in urls.items():
        match = _FIELD_PATH.match(field_path)
        field, index = (match.group(1), match.group(2)) if match else (field_path, None)
        media_type = SINGLE_MEDIA.get(field) if index is None else LIST_MEDIA.get(field)
        entries = [m for m in media if m.get("type") == media_type] if media_type else []
        position = int(index) if index is not None else 0
        if position >= len(entries):
            raise ValueError(f"the request body has no media for {field_path}")
        entries[position]["url"] = url
    return out


def needs_oss_resolve(body: Mapping[str, Any]) -> bool:
    """Whether a create body refers to temporary storage (then it needs the resolve header)."""
    media = body.get("input", {}).get("media", [])
    return any(str(m.get("url", "")).startswith("oss://") for m in media)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's content.

    Raises RequestRejected (code ``LocalFile``), as the client does for a file it cannot read.
    """
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise RequestRejected.local_file(path, exc) from exc


async def _maybe_await(value: T | Awaitable[T]) -> T:
    return await value if inspect.isawaitable(value) else value


class _LeaderGone(Exception):
    """The job uploading a shared file was cancelled; a waiting job takes over."""


# --- the uploader -------------------------------------------------------------

class Uploader:
    """Resolves jobs' local media to ``oss://`` URLs, uploading each (file, model) at most once.

    `client` provides ``upload_policy(model)`` and ``upload(policy, path) ->
    "oss://..."``; `journal` provides ``find_upload`` / ``record_upload`` (plain
    or async methods). `clock` gives the wall time used for upload expiry.
    """

    def __init__(
        self,
        client: _Client,
        journal: _UploadJournal,
        *,
        concurrency: int = 4,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._journal = journal
        self._semaphore = asyncio.Semaphore(concurrency)
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._inflight: dict[tuple[str, str], asyncio.Future[tuple[str, bool]]] = {}
        # (path, size, mtime_ns) -> sha256: a file shared by thousands of jobs is hashed once
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._hashing: dict[tuple[str, int, int], asyncio.Future[str]] = {}
        #: files actually sent to storage, for the run summary
        self.uploaded = 0
        #: local media resolved from an earlier or a concurrent upload
        self.reused = 0

    async def resolve(self, job: _Job) -> tuple[dict[str, Any], bool]:
        """`job.body` with every local media replaced by its ``oss://`` URL, and whether
        the create request needs ``X-DashScope-OssResourceResolve: enable``.

        The job's files are uploaded concurrently. Raises RequestRejected
        (code ``LocalFile``) for an unreadable file, and the client's ApiError
        once retries are exhausted.
        """
        source = job.body  # may be built on each access: read it once
        model = str(source["model"])
        items = list(job.local_media.items())
        if not items:
            return copy.deepcopy(dict(source)), needs_oss_resolve(source)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._url_for(Path(path), model)) for _, path in items]
        except BaseExceptionGroup as failed:
            # the engine handles one ApiError per job, not a group of them
            raise failed.exceptions[0]  # noqa: B904 - the group adds nothing but nesting
        body = replace_media(source, {field: task.result() for (field, _), task in zip(items, tasks)})
        return body, needs_oss_resolve(body)

    async def _shared(self, table: dict[Any, asyncio.Future[Any]], key: Any, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `work` once for everyone asking for `key` at the same time: (its result, whether we ran it).

        The first caller leads and does the work; later callers wait on its
        future. A leader's failure is everyone's failure (its retries are spent);
        a cancelled leader hands over to the next waiter instead.
        """
        while (shared := table.get(key)) is not None:
            try:
                # shield: a cancelled waiter must not cancel the leader's work
                return await asyncio.shield(shared), False
            except _LeaderGone:
                continue
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        table[key] = future
        try:
            result = await work()
        except asyncio.CancelledError:
            future.set_exception(_LeaderGone())
            future.exception()  # mark retrieved: there may be no waiter
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            future.set_result(result)
            return result, True
        finally:
            del table[key]

    async def _hash(self, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise RequestRejected.local_file(path, exc) from exc
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in self._hashes:
            digest, _ = await self._shared(self._hashing, key, lambda: asyncio.to_thread(file_sha256, path))
            self._hashes[key] = digest
        return self._hashes[key]

    async def _url_for(self, path: Path, model: str) -> str:
        digest = await self._hash(path)

        async def lookup_or_upload() -> tuple[str, bool]:
            known = await _maybe_await(self._journal.find_upload(digest, model, self._clock()))
            if known:
                return str(known), False
            return await self._upload(path, model, digest), True

        (url, sent), led = await self._shared(self._inflight, (digest, model), lookup_or_upload)
        if not (led and sent):
            self.reused += 1
        return url

    async def _upload(self, path: Path, model: str, digest: str) -> str:
        async def attempt() -> tuple[str, float]:
            async with self._semaphore:
                issued = self._clock()  # the lifetime counts from the policy, not from our finish
                policy = await self._client.upload_policy(model)
                url = await self._client.upload(policy, path)
            return url, upload_expiry(issued, getattr(policy, "expire_in_seconds", None))

        url, expires_at = await retry_call(attempt, policy=self._policy, sleep=self._sleep)
        self.uploaded += 1
        await _maybe_await(self._journal.record_upload(digest, model, url, expires_at))
        return url

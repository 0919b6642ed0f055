"""DashScopeClient.download: atomic, checksummed, and never a partial final file."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner._client import DashScopeClient, Exchange
from runner._errors import DownloadError, TransientError, UrlExpired

KEY = "sk-test-download-77aa55cc"
VIDEO = bytes(range(256)) * 1024  # 256 KiB, several chunks


class Storage:
    """A local stand-in for object storage; remembers the headers it was sent."""

    def __init__(self, app: web.Application) -> None:
        self.server = TestServer(app, host="127.0.0.1")
        self.headers: list[dict] = []

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


async def start(**handlers) -> Storage:
    app = web.Application()
    storage: Storage
    for path, handler in handlers.items():
        app.router.add_get(f"/{path}", handler)

    @web.middleware
    async def record(request, handler):
        storage.headers.append(dict(request.headers))
        return await handler(request)

    app.middlewares.append(record)
    storage = Storage(app)
    await storage.server.start_server()
    return storage


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def full(request):
    return web.Response(body=VIDEO, content_type="video/mp4")


async def test_download_saves_the_file_with_size_and_sha256(tmp_path):
    """A complete download lands at dest with the right bytes, size and SHA-256, and no temp file."""
    storage = await start(**{"v.mp4": full})
    exchanges: list[Exchange] = []
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            got = await client.download(storage.url("/v.mp4?Expires=1&Signature=x"),
                                        tmp_path / "out" / "job.mp4", log=exchanges.append)
    finally:
        await storage.server.close()
    dest = tmp_path / "out" / "job.mp4"
    assert got.path == dest and got.size == len(VIDEO)
    assert got.sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path / "out") == ["job.mp4"]
    (ex,) = exchanges
    assert ex.status == 200 and ex.response_body == {"bytes": len(VIDEO), "sha256": got.sha256}


async def test_download_never_sends_the_api_key_to_storage(tmp_path):
    """The storage request carries no Authorization header."""
    storage = await start(**{"v.mp4": full})
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            await client.download(storage.url("/v.mp4"), tmp_path / "a.mp4")
    finally:
        await storage.server.close()
    assert "Authorization" not in storage.headers[0]
    assert KEY not in repr(storage.headers)


@pytest.mark.parametrize("url", ["oss://bucket/v.mp4", "file:///etc/passwd", "ftp://h/v.mp4", "v.mp4"])
async def test_download_refuses_non_http_urls(tmp_path, url):
    """Only http and https URLs are fetched; anything else is a DownloadError before any I/O."""
    async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
        with pytest.raises(DownloadError, match="only http and https"):
            await client.download(url, tmp_path / "x.mp4")
    assert leftovers(tmp_path) == []


async def test_storage_403_means_the_url_expired(tmp_path):
    """Storage 403 raises UrlExpired (a DownloadError) and leaves nothing behind."""
    async def expired(request):
        return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")

    storage = await start(**{"v.mp4": expired})
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            with pytest.raises(UrlExpired):
                await client.download(storage.url("/v.mp4"), tmp_path / "a.mp4")
    finally:
        await storage.server.close()
    assert issubclass(UrlExpired, DownloadError)
    assert leftovers(tmp_path) == []


async def test_storage_404_is_a_download_error_and_5xx_is_transient(tmp_path):
    """404 is a final DownloadError; 503 is a retryable TransientError."""
    async def missing(request):
        return web.Response(status=404, text="NoSuchKey")

    async def busy(request):
        return web.Response(status=503)

    storage = await start(**{"gone.mp4": missing, "busy.mp4": busy})
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            with pytest.raises(DownloadError) as info:
                await client.download(storage.url("/gone.mp4"), tmp_path / "a.mp4")
            assert not isinstance(info.value, UrlExpired)
            with pytest.raises(TransientError):
                await client.download(storage.url("/busy.mp4"), tmp_path / "b.mp4")
    finally:
        await storage.server.close()
    assert leftovers(tmp_path) == []


async def test_truncated_body_is_transient_and_leaves_no_file(tmp_path):
    """Content-Length promises more than arrives before the drop: TransientError, no final file, no temp file."""
    async def truncated(request):
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = len(VIDEO)
        await resp.prepare(request)
        await resp.write(VIDEO[: len(VIDEO) // 2])
        request.transport.close()
        return resp

    storage = await start(**{"v.mp4": truncated})
    exchanges: list[Exchange] = []
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            with pytest.raises(TransientError) as info:
                await client.download(storage.url("/v.mp4"), tmp_path / "a.mp4", log=exchanges.append)
    finally:
        await storage.server.close()
    assert info.value.reached_server is True
    assert leftovers(tmp_path) == []
    assert exchanges[0].error and exchanges[0].response_body is None


async def test_cancelled_download_removes_the_partial_file(tmp_path):
    """Cancelling mid-stream removes the .part file and never creates dest."""
    first_chunk_sent = asyncio.Event()
    never = asyncio.Event()

    async def slow(request):
        resp = web.StreamResponse()
        resp.content_length = len(VIDEO)
        await resp.prepare(request)
        await resp.write(VIDEO[:65536])
        first_chunk_sent.set()
        await never.wait()
        return resp

    storage = await start(**{"v.mp4": slow})
    part = tmp_path / ".a.mp4.part"
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            task = asyncio.create_task(client.download(storage.url("/v.mp4"), tmp_path / "a.mp4"))
            await first_chunk_sent.wait()
            for _ in range(400):  # the temp file is created through a worker thread
                if part.exists():
                    break
                await asyncio.sleep(0.005)
            assert part.exists(), "the download should be writing its temporary file"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        never.set()
        await storage.server.close()
    assert leftovers(tmp_path) == []


async def test_download_replaces_an_existing_file_only_when_complete(tmp_path):
    """A failed re-download leaves the earlier complete file untouched."""
    async def busy(request):
        return web.Response(status=500)

    dest = tmp_path / "a.mp4"
    dest.write_bytes(b"earlier video")
    storage = await start(**{"v.mp4": busy})
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            with pytest.raises(TransientError):
                await client.download(storage.url("/v.mp4"), dest)
    finally:
        await storage.server.close()
    assert dest.read_bytes() == b"earlier video"
    assert leftovers(tmp_path) == ["a.mp4"]


async def test_a_destination_that_cannot_be_written_is_a_download_error(tmp_path):
    """A local write failure (here: the folder is a file) is a DownloadError, not a bare OSError."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    storage = await start(**{"v.mp4": full})
    try:
        async with DashScopeClient("http://127.0.0.1:1/api/v1", KEY) as client:
            with pytest.raises(DownloadError, match="could not write"):
                await client.download(storage.url("/v.mp4"), blocker / "a.mp4")
    finally:
        await storage.server.close()
    assert leftovers(tmp_path) == ["not-a-folder"]


@pytest.mark.parametrize("url", ["http://[::1/x.mp4", "http://a..b/x.mp4"])
async def test_a_malformed_video_url_is_a_download_error(tmp_path, url):
    """A broken URL from the server fails that download (and only that job), never a traceback."""
    async with DashScopeClient("http://127.0.0.1:9/api/v1", "sk-x") as client:
        with pytest.raises(DownloadError):
            await client.download(url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []

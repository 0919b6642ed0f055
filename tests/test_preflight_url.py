"""Pre-flight of remote media URLs: a HEAD (or a one-byte GET) against a local server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner._models import media_limits
from runner._preflight import check_remote_media, check_url, remote_media

I2V = media_limits("happyhorse-1.0-i2v", "first_frame")
SEEN = web.AppKey("seen", Counter)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000


async def _png(request: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="image/png")


async def _head_refused(request: web.Request) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=405)
    assert request.headers.get("Range") == "bytes=0-0"
    return web.Response(
        status=206, body=PNG[:1], content_type="image/png",
        headers={"Content-Range": f"bytes 0-0/{11 * 1024 * 1024}"},
    )


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>a gallery page</html>", content_type="text/html")


async def _octet(request: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="application/octet-stream")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"\0" * (I2V["max_bytes"] + 1), content_type="image/jpeg")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/img.png")


@pytest.fixture
async def server():
    seen: Counter[str] = Counter()

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        seen[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app[SEEN] = seen
    app.router.add_get("/img.png", _png)
    app.router.add_route("*", "/nohead.png", _head_refused)
    app.router.add_get("/page", _html)
    app.router.add_get("/octet", _octet)
    app.router.add_get("/big.jpg", _big)
    app.router.add_get("/moved", _redirect)
    async with TestServer(app, host="127.0.0.1") as srv:
        async with aiohttp.ClientSession() as session:
            yield srv, session


async def test_reachable_image_passes(server) -> None:
    """A PNG served with its type and a small size has no problems."""
    srv, session = server
    assert await check_url(session, str(srv.make_url("/img.png")), I2V) == []


async def test_redirect_followed(server) -> None:
    """A redirect to a good image is followed."""
    srv, session = server
    assert await check_url(session, str(srv.make_url("/moved")), I2V) == []


async def test_head_refused_falls_back_to_ranged_get(server) -> None:
    """When HEAD is refused, a one-byte GET finds the size from Content-Range."""
    srv, session = server
    found = await check_url(session, str(srv.make_url("/nohead.png")), I2V)
    assert found == ["file is 11 MB (11,534,336 bytes); the limit is 10 MB (10,485,760 bytes)"]


async def test_missing_file_reported_with_status(server) -> None:
    """A 404 becomes a sentence with the status."""
    srv, session = server
    found = await check_url(session, str(srv.make_url("/gone.png")), I2V)
    assert found == ["URL answered HTTP 404; the file must be publicly readable"]


async def test_web_page_instead_of_image_refused(server) -> None:
    """A URL serving HTML (a page, not the file) is refused by content type."""
    srv, session = server
    found = await check_url(session, str(srv.make_url("/page")), I2V)
    assert found == ["URL serves text/html, not a JPEG, PNG or WEBP image"]


async def test_generic_content_type_not_held_against_url(server) -> None:
    """application/octet-stream says nothing about the file, so it passes."""
    srv, session = server
    assert await check_url(session, str(srv.make_url("/octet")), I2V) == []


async def test_oversized_remote_file_refused(server) -> None:
    """A Content-Length one byte over max_bytes is refused."""
    srv, session = server
    found = await check_url(session, str(srv.make_url("/big.jpg")), I2V)
    assert found == ["file is 10 MB (10,485,761 bytes); the limit is 10 MB (10,485,760 bytes)"]


async def test_unreachable_host_is_a_sentence() -> None:
    """A refused connection is reported, not raised."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        found = await check_url(session, f"http://127.0.0.1:{port}/a.png", I2V)
    assert len(found) == 1 and found[0].startswith("URL could not be reached")


async def test_host_name_that_cannot_be_resolved_is_a_sentence() -> None:
    """A host with an empty label (a..b), which getaddrinfo refuses with UnicodeError, is reported, not raised."""
    async with aiohttp.ClientSession() as session:
        found = await check_url(session, "http://a..b/a.png", I2V)
    assert len(found) == 1 and found[0].startswith("URL could not be reached")


async def test_oss_urls_not_checked_and_other_schemes_refused() -> None:
    """oss:// lives in DashScope storage (nothing to check); ftp:// is refused without a request."""
    async with aiohttp.ClientSession() as session:
        assert await check_url(session, "oss://dashscope/x.png", I2V) == []
        assert await check_url(session, "ftp://example.com/x.png", I2V) == [
            "URL scheme 'ftp' is not supported; use http, https or oss"
        ]


async def test_remote_media_lists_only_http_references() -> None:
    """remote_media finds http(s) media in single and list fields, skipping local paths and oss://."""
    fields = {"model": "happyhorse-1.0-r2v", "prompt": "p",
              "reference_images": ["a.png", "https://h/b.png", "oss://d/c.png", "http://h/d.jpg"]}
    assert remote_media(fields) == [("reference_images[1]", "https://h/b.png"), ("reference_images[3]", "http://h/d.jpg")]
    assert remote_media({"first_frame": "HTTPS://h/x.png"}) == [("first_frame", "HTTPS://h/x.png")]


@dataclass
class _Job:
    name: str
    model: str
    fields: dict[str, Any]
    source: str = "jobs.yaml"
    line: int = 1


async def test_check_remote_media_reports_per_job_and_checks_each_url_once(server) -> None:
    """Two jobs sharing a bad URL each get the problem, with file and line, from a single request."""
    srv, _ = server
    page = str(srv.make_url("/page"))
    good = str(srv.make_url("/img.png"))
    jobs = [
        _Job("a", "happyhorse-1.0-i2v", {"first_frame": page}, line=3),
        _Job("b", "happyhorse-1.0-i2v", {"first_frame": page}, line=7),
        _Job("c", "happyhorse-1.0-i2v", {"first_frame": good}, line=9),
    ]
    lines = await check_remote_media(jobs)
    assert lines == [
        "jobs.yaml:3: job a: first_frame: URL serves text/html, not a JPEG, PNG or WEBP image",
        "jobs.yaml:7: job b: first_frame: URL serves text/html, not a JPEG, PNG or WEBP image",
    ]
    assert srv.app[SEEN] == Counter({"/page": 1, "/img.png": 1})


async def test_validate_check_urls_flag_reports_bad_remote_media(server, tmp_path) -> None:
    """`validate --check-urls` exits 2 naming the job and the URL problem; without the flag it sends nothing and passes."""
    srv, _ = server
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "campaign: urls\njobs:\n  - name: remote\n    model: happyhorse-1.0-i2v\n"
        f"    first_frame: {srv.make_url('/gone.png')}\n    prompt: hi\n"
    )

    async def validate(*extra: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runner", "validate", str(manifest), *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        return proc.returncode, err.decode()

    before = srv.app[SEEN]["/gone.png"]
    code, err = await validate()
    assert code == 0 and srv.app[SEEN]["/gone.png"] == before
    code, err = await validate("--check-urls")
    assert code == 2
    assert "job remote: first_frame: URL answered HTTP 404; the file must be publicly readable" in err


async def test_run_check_urls_stops_before_anything_is_sent(server, tmp_path) -> None:
    """`run --check-urls` with an unreachable first frame exits 2 before a single API request."""
    srv, _ = server
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "campaign: urls\nbase_url: http://127.0.0.1:9/api/v1\njobs:\n  - name: remote\n"
        f"    model: happyhorse-1.0-i2v\n    first_frame: {srv.make_url('/gone.png')}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", "run", str(manifest), "--check-urls", "--output", str(tmp_path / "out"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "DASHSCOPE_API_KEY": "sk-x"},
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "job remote: first_frame: URL answered HTTP 404" in err.decode()
    assert not (tmp_path / "out").exists()

"""The playground's routes and files, without a browser: what is served, with which headers, and that the page is
self-contained (no CDN, no external font) and shipped as package data. The browser tests are in
tests/integration/test_playground.py."""

from __future__ import annotations

import asyncio
import re
import sys
from fnmatch import fnmatch
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vtts import config as cfg
from vtts.frontend.playground import PAGE, STATIC_FILES, setup_playground_routes
from vtts.frontend.state import CONFIG

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "frontend" / "static"


def _app(playground: bool, max_input_chars: int = 4096) -> web.Application:
    app = web.Application()
    app[CONFIG] = cfg.parse({"server": {"playground": playground, "max_input_chars": max_input_chars}})
    setup_playground_routes(app)
    return app


async def _get(app: web.Application, path: str) -> tuple[int, dict[str, str], bytes]:
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(path, allow_redirects=False)
        return resp.status, dict(resp.headers), await resp.read()


def test_the_playground_is_on_by_default_and_can_be_turned_off() -> None:
    assert cfg.load().server.playground is True
    assert cfg.parse({"server": {"playground": False}}).server.playground is False


def test_root_redirects_and_the_page_comes_with_a_strict_policy() -> None:
    app = _app(True, max_input_chars=1234)
    status, headers, _ = asyncio.run(_get(app, "/"))
    assert status == 302 and headers["Location"] == "/playground"
    status, headers, body = asyncio.run(_get(_app(True), "/playground"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert b"<title>vTTS playground</title>" in body
    status, headers, body = asyncio.run(_get(_app(True, max_input_chars=1234), "/playground/config.json"))
    assert status == 200 and b'"max_input_chars": 1234' in body
    status, headers, _ = asyncio.run(_get(_app(True), "/playground/static/playground.js"))
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


def test_only_the_pages_own_files_are_served() -> None:
    for path in ("/playground/static/../playground.py", "/playground/static/%2e%2e%2fplayground.py",
                 "/playground/static/other.js", "/playground/static/"):
        assert asyncio.run(_get(_app(True), path))[0] == 404, path


def test_disabled_means_no_routes() -> None:
    app = _app(False)
    assert not list(app.router.routes())
    assert asyncio.run(_get(app, "/playground"))[0] == 404


def test_every_static_file_is_served_and_shipped_as_package_data() -> None:
    on_disk = {p.name for p in STATIC.iterdir()}
    assert on_disk == {PAGE, *STATIC_FILES}
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in on_disk:
        assert any(fnmatch(f"static/{name}", p) for p in patterns["vtts.frontend"]), name


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """It must work on a machine with no internet: no CDN, no web font, no external URL at all."""
    page = (STATIC / PAGE).read_text()
    assert set(re.findall(r'(?:src|href)="(/[^"]*)"', page)) == {f"/playground/static/{n}" for n in STATIC_FILES}
    for name in (PAGE, *STATIC_FILES):
        text = (STATIC / name).read_text().replace("http://www.w3.org/2000/svg", "")  # a namespace, not a fetch
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), name

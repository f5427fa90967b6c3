"""The web playground: one static page (HTML, JS, CSS shipped as package data) served by the frontend.

``GET /playground`` is the page, ``GET /`` redirects to it, ``GET /playground/static/{name}`` its script and
style sheet, ``GET /playground/config.json`` the few server settings the page needs (the input limit). The
page itself calls the public API like any client (``/v1/...``, ``/metrics``, ``/admin/models``), so it has no
routes of its own beyond these and no access the API does not already give. With ``server.playground =
false`` none of these routes exist (404). No build step, no CDN, no external font: the page works offline.
"""

from __future__ import annotations

import logging
from importlib import resources

from aiohttp import web

from vtts import __version__

from .state import CONFIG

log = logging.getLogger("vtts.frontend.playground")

#: the files the page is made of, with their content types; nothing else is served from the folder
STATIC_FILES = {
    "playground.js": "text/javascript",
    "playground.css": "text/css",
}
PAGE = "playground.html"
#: the page loads only its own script and style, talks only to its own origin, and is never framed
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

PLAYGROUND_FILES = web.AppKey("playground_files", dict)


def _read(name: str) -> bytes:
    return resources.files("vtts.frontend").joinpath("static", name).read_bytes()


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/playground")


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=request.app[PLAYGROUND_FILES][PAGE], content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(body=request.app[PLAYGROUND_FILES][name], content_type=STATIC_FILES[name],
                        charset="utf-8", headers=SECURITY_HEADERS)


async def _config(request: web.Request) -> web.Response:
    server = request.app[CONFIG].server
    return web.json_response({"max_input_chars": server.max_input_chars, "version": __version__},
                             headers={"Cache-Control": "no-cache"})


async def _announce(app: web.Application) -> None:
    server = app[CONFIG].server
    host = f"[{server.host}]" if ":" in server.host else server.host
    log.info("playground at http://%s:%d/playground", host, server.port)


def setup_playground_routes(app: web.Application) -> None:
    """Register the playground's routes, unless ``server.playground`` is false (then they are 404s)."""
    if not app[CONFIG].server.playground:
        return
    app[PLAYGROUND_FILES] = {name: _read(name) for name in (PAGE, *STATIC_FILES)}
    app.router.add_get("/", _root)
    app.router.add_get("/playground", _page)
    app.router.add_get("/playground/config.json", _config)
    app.router.add_get("/playground/static/{name}", _static)
    app.on_startup.append(_announce)

"""Admin routes: list, load, unload and hot-swap models. The supervisor carries them out; this module
checks access and turns its answers into HTTP.

Access: with ``server.admin_keys`` (or $VTTS_ADMIN_KEY) set, a matching bearer key is required; with none
set, only clients on the loopback interface are admitted, and only when their ``Host`` names the loopback
and their ``Origin`` (if any) is on it too: a web page the operator visits can make the browser send
requests to 127.0.0.1 (DNS rebinding), but not with those headers.

Entries are validated here (bounds, names), before they reach the supervisor. Entries that start arbitrary
code (a ``python`` interpreter, a plugin ``engine = "module:Class"``) need the admin key or the config's
``admin_python_allowlist`` / ``admin_engine_allowlist``; what the config file's own entries name is trusted.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from vtts import protocol as P
from vtts.config import ConfigError, ModelConfig, parse_model

from .auth import bearer_token, key_matches
from .body import read_json
from .control import SupervisorUnavailable, Unencodable
from .errors import APIError
from .state import CONFIG, CONTROL, POOL

#: how long an admin call waits beyond the operation's own timeout
ANSWER_MARGIN_S = 10.0


def check_admin_access(request: web.Request) -> None:
    """Raise 401/403 unless the caller may use /admin routes."""
    keys = request.app[CONFIG].server.admin_keys
    if keys:
        if not key_matches(bearer_token(request), keys):
            raise APIError(401, "admin routes need the admin key as 'Authorization: Bearer KEY'",
                           code="invalid_admin_key")
        return
    try:
        loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise APIError(403, "admin routes are open to loopback clients only until an admin key is configured",
                       code="admin_forbidden")
    if not is_loopback_host(request.headers.get("Host", "")):
        raise APIError(403, "without an admin key, admin requests must name a loopback Host (localhost, 127.0.0.1)",
                       code="admin_forbidden")
    origin = request.headers.get("Origin")
    if origin is not None and not is_loopback_host(urlsplit(origin).netloc):
        raise APIError(403, "without an admin key, admin requests from a web page must come from a loopback origin",
                       code="admin_forbidden")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``127.x.y.z`` and ``[::1]``, with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else ""
    else:
        name = host.rpartition(":")[0] if ":" in host else host
    if name.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def checked_entry(request: web.Request, data: dict) -> ModelConfig:
    """The model entry, validated here (so a bad one is a 400 before it is sent anywhere), and allowed to
    start what it names: an interpreter or a plugin engine needs the admin key or the config's allowlist."""
    config = request.app[CONFIG]
    server = config.server
    try:
        entry = parse_model(data, max_replicas=server.max_replicas)
    except ConfigError as exc:
        raise APIError(400, str(exc), code="invalid_model") from None
    if server.admin_keys:
        return entry
    # what the config file itself names is trusted
    pythons = {*server.admin_python_allowlist, *(m.python for m in config.models)}
    engines = {*server.admin_engine_allowlist, *(m.engine for m in config.models)}
    if entry.python and entry.python not in pythons:
        raise APIError(403, f"'python' = {entry.python!r} needs the admin key or server.admin_python_allowlist",
                       param="python", code="admin_key_required")
    if ":" in entry.engine and entry.engine not in engines:
        raise APIError(403, f"the plugin engine {entry.engine!r} needs the admin key or "
                       "server.admin_engine_allowlist", param="engine", code="admin_key_required")
    return entry


async def _call(request: web.Request, op: str, model: str = "", entry: dict | None = None,
                wait: float = 0.0) -> web.Response:
    check_admin_access(request)
    server = request.app[CONFIG].server
    timeout = (wait or max(server.load_timeout_s, server.drain_timeout_s)) + ANSWER_MARGIN_S
    try:
        reply = await request.app[CONTROL].request(op, model, entry, timeout=timeout)
    except SupervisorUnavailable as exc:
        raise APIError(503, str(exc), code="supervisor_unavailable", retry_after=1) from None
    except Unencodable as exc:
        raise APIError(400, str(exc), code="invalid_model") from None
    if not reply.ok:
        raise APIError(reply.status, reply.message, code=reply.code, param="model" if reply.status == 404 else None)
    if model:
        view = next((m for m in reply.models if m["id"] == model), None)
        return web.json_response({"object": "model_state", **(view or {"id": model})})
    return web.json_response({"object": "list", "data": reply.models})


async def _entry_body(request: web.Request) -> dict:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise APIError(400, "body must be a JSON object: a model entry, or {\"id\": ...}", code="invalid_type")
    return body


async def list_models(request: web.Request) -> web.Response:
    check_admin_access(request)
    return await _call(request, "list", wait=5.0)


async def load_model(request: web.Request) -> web.Response:
    check_admin_access(request)
    body = await _entry_body(request)
    model = body.get("id")
    if not isinstance(model, str) or not model:
        raise APIError(400, "'id' is required", param="id", code="missing_required_parameter")
    entry = body if set(body) - {"id"} else None
    if entry is not None:
        checked_entry(request, entry)
    return await _call(request, "load", model, entry)


async def unload_model(request: web.Request) -> web.Response:
    check_admin_access(request)
    return await _call(request, "unload", request.match_info["model_id"])


async def swap_model(request: web.Request) -> web.Response:
    check_admin_access(request)
    body = await _entry_body(request)
    model = request.match_info["model_id"]
    checked_entry(request, {"id": model, **body})
    return await _call(request, "swap", model, body)


async def reload_lexicon(request: web.Request) -> web.Response:
    """Re-read the model's lexicon files in every ready worker, without a restart."""
    check_admin_access(request)
    model = request.match_info["model_id"]
    workers = request.app[POOL].ready_workers(model)
    if not workers:
        raise APIError(404, f"no ready worker of model {model!r}", param="model", code="model_not_ready")
    results = {}
    for worker in workers:
        reply = await request.app[POOL].control(worker, "reload_lexicon")
        if not isinstance(reply, P.ControlReply) or not reply.ok:
            message = reply.message if isinstance(reply, (P.ControlReply, P.Error)) else "no answer"
            raise APIError(400 if isinstance(reply, P.ControlReply) else 503,
                           f"{worker.id}: {message}", code="lexicon_reload_failed")
        results[worker.id] = reply.result
    return web.json_response({"object": "lexicon_reload", "model": model, "workers": results})


def setup_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/models", list_models)
    app.router.add_post("/admin/models", load_model)
    app.router.add_delete("/admin/models/{model_id}", unload_model)
    app.router.add_put("/admin/models/{model_id}", swap_model)
    app.router.add_post("/admin/models/{model_id}/lexicon/reload", reload_lexicon)

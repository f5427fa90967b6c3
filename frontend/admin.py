"""Admin routes: list, load, unload and hot-swap models. The supervisor carries them out; this module
checks access and turns its answers into HTTP.

Access: with ``server.admin_keys`` (or $VTTS_ADMIN_KEY) set, a matching bearer key is required; with none
set, only clients on the loopback interface are admitted.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from vtts import protocol as P

from .body import read_json
from .control import SupervisorUnavailable
from .errors import APIError
from .state import CONFIG, CONTROL, POOL

#: how long an admin call waits beyond the operation's own timeout
ANSWER_MARGIN_S = 10.0


def check_admin_access(request: web.Request) -> None:
    """Raise 401/403 unless the caller may use /admin routes."""
    keys = request.app[CONFIG].server.admin_keys
    if keys:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
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


async def _call(request: web.Request, op: str, model: str = "", entry: dict | None = None,
                wait: float = 0.0) -> web.Response:
    check_admin_access(request)
    server = request.app[CONFIG].server
    timeout = (wait or max(server.load_timeout_s, server.drain_timeout_s)) + ANSWER_MARGIN_S
    try:
        reply = await request.app[CONTROL].request(op, model, entry, timeout=timeout)
    except SupervisorUnavailable as exc:
        raise APIError(503, str(exc), code="supervisor_unavailable", retry_after=1) from None
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
    return await _call(request, "load", model, entry)


async def unload_model(request: web.Request) -> web.Response:
    check_admin_access(request)
    return await _call(request, "unload", request.match_info["model_id"])


async def swap_model(request: web.Request) -> web.Response:
    check_admin_access(request)
    body = await _entry_body(request)
    return await _call(request, "swap", request.match_info["model_id"], body)


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

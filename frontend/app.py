"""The aiohttp application: routes, auth, error shape. Speech itself lives in :mod:`.speech`."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from vtts import __version__
from vtts.config import Config

from .admin import setup_admin_routes
from .body import MAX_BODY_BYTES, expect_within_limit
from .catalog import Catalog
from .control import SupervisorLink, SupervisorUnavailable
from .errors import APIError
from .metrics import Metrics
from .playground import setup_playground_routes
from .pool import WorkerPool
from .speech import create_speech
from .state import CATALOG, CONFIG, CONTROL, EXECUTOR, METRICS, POOL, STARTED_AT
from .text_routes import setup_text_routes

log = logging.getLogger("vtts.frontend")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves in OpenAI's error shape; nothing escapes as an HTML page or a bare 500."""
    try:
        return await handler(request)
    except APIError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status)
        message = {404: f"Unknown route: {request.method} {request.path}",
                   405: f"Method {request.method} is not allowed on {request.path}"}.get(exc.status, exc.reason)
        error = APIError(exc.status, message, code=code)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = APIError(500, "internal server error", code="internal_error")
    if error.status >= 500 and not error.counted:  # server errors count on every route, model or not
        request.app[METRICS].requests.labels("", str(error.status)).inc()
    return error.response()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer keys on every /v1 route when keys are configured; /health, /ready, /metrics stay open."""
    keys = request.app[CONFIG].server.api_keys
    if keys and request.path.startswith("/v1"):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        # surrogateescape: aiohttp decodes header bytes that are not UTF-8 that way; they then match no key
        if not any(hmac.compare_digest(token.encode("utf-8", "surrogateescape"), k.encode()) for k in keys):
            raise APIError(
                401,
                "Incorrect API key provided." if token else "Missing API key: send 'Authorization: Bearer KEY'.",
                code="invalid_api_key",
            )
    return await handler(request)


async def list_models(request: web.Request) -> web.Response:
    created = int(request.app[STARTED_AT])
    data = [{"id": name, "object": "model", "created": created, "owned_by": "vtts", "root": target}
            for name, target in request.app[CATALOG].model_names().items()]
    return web.json_response({"object": "list", "data": data})


async def list_voices(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    data = []
    for m in catalog.entries().values():
        for v in catalog.voices(m.id):
            data.append({"id": v["id"], "object": "voice", "model": m.id, "language": v.get("language"),
                         "sample_rate": v.get("sample_rate"), "description": v.get("description", "")})
    return web.json_response({"object": "list", "data": data})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


async def ready(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    models = {}
    try:
        await request.app[CONTROL].request("list", timeout=1.0)
    except SupervisorUnavailable:
        pass  # answer from the last known states
    states = {m["id"]: m for m in request.app[CONTROL].models}
    for m in request.app[CATALOG].entries().values():
        if not m.preload and m.id not in states:
            continue
        view = states.get(m.id, {})
        if view.get("state") == "unloaded":
            continue  # on-demand or unloaded by an admin: not required for readiness
        workers = pool.workers_of(m.id)
        models[m.id] = {
            "ready": sum(w.ready for w in workers),
            "replicas": m.replicas,
            "states": sorted(w.status.state for w in workers),
            "errors": [w.status.error for w in workers if w.status.error] + (
                [view["last_error"]] if view.get("last_error") else []),
            "state": view.get("state", "unknown"),
        }
    ok = all(v["ready"] > 0 for v in models.values())
    return web.json_response({"ready": ok, "models": models}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Prometheus-Format": "0.0.4"})


def build_app(config: Config, endpoint: str, control: str) -> web.Application:
    """The frontend app; the worker pool and the supervisor link start and stop with it."""
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[POOL] = WorkerPool(endpoint, config.server.heartbeat_timeout_s, on_status=app[METRICS].on_status,
                           max_buffered_bytes=config.server.max_buffered_bytes)
    app[CONTROL] = SupervisorLink(control, app[POOL].ctx)
    app[CATALOG] = Catalog(config, app[POOL], app[CONTROL])
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vtts-encode")
    app[STARTED_AT] = time.time()

    async def lifecycle(app: web.Application):
        await app[POOL].start()
        app[CONTROL].start()
        try:
            await app[CONTROL].request("list", timeout=2.0)  # learn models added at run time
        except SupervisorUnavailable:
            log.warning("the supervisor did not answer; serving the configured models")
        yield
        await app[CONTROL].close()
        await app[POOL].close()
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/audio/speech", create_speech, expect_handler=expect_within_limit)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/audio/voices", list_voices)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    setup_admin_routes(app)
    setup_text_routes(app)
    setup_playground_routes(app)
    return app

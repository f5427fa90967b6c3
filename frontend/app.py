"""The aiohttp application: routes, auth, error shape. Speech itself lives in :mod:`.speech`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from vtts import __version__
from vtts import protocol as P
from vtts.config import Config

from .admin import setup_admin_routes
from .admission import StreamAdmission
from .auth import bearer_token, key_matches
from .body import MAX_BODY_BYTES, expect_within_limit
from .catalog import Catalog
from .control import SupervisorLink, SupervisorUnavailable
from .errors import APIError
from .metrics import Metrics
from .playground import setup_playground_routes
from .pool import GONE, WorkerPool
from .speech import create_speech
from .state import ADMISSION, API_KEY, CATALOG, CONFIG, CONTROL, EXECUTOR, METRICS, POOL, STARTED_AT
from .text_routes import setup_text_routes
from .voices import custom_voices, setup_voice_routes
from .ws import SESSIONS, WS_PATH, protocol_key, shutdown_sessions, speech_stream

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
        token = bearer_token(request)
        if not token and request.path == WS_PATH:  # browsers cannot set headers on a WebSocket
            token = request.query.get("api_key", "") or protocol_key(request)
        if not key_matches(token, keys):
            raise APIError(
                401,
                "Incorrect API key provided." if token else "Missing API key: send 'Authorization: Bearer KEY'.",
                code="invalid_api_key",
            )
        request[API_KEY] = token  # custom voices belong to the key (frontend/voices.py owner)
    return await handler(request)


async def list_models(request: web.Request) -> web.Response:
    created = int(request.app[STARTED_AT])
    data = [{"id": name, "object": "model", "created": created, "owned_by": "vtts", "root": target}
            for name, target in request.app[CATALOG].model_names().items()]
    return web.json_response({"object": "list", "data": data})


async def retrieve_model(request: web.Request) -> web.Response:
    """The SDK's ``models.retrieve``; 404 in OpenAI's shape for a name that routes nowhere."""
    name = request.match_info["model"]
    target = request.app[CATALOG].model_names().get(name)
    if target is None:
        raise APIError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
    return web.json_response({"id": name, "object": "model", "created": int(request.app[STARTED_AT]),
                              "owned_by": "vtts", "root": target})


async def list_audio_models(request: web.Request) -> web.Response:
    """Open WebUI's model list: ``{"models": [{"id"}, ...]}``."""
    return web.json_response({"models": [{"id": name, "name": name} for name in request.app[CATALOG].model_names()]})


async def list_voices(request: web.Request) -> web.Response:
    """Per model, OpenAI-style ``data``; ``voices`` is what Open WebUI reads (``{id: name}``). The caller's
    custom voices follow the built-in ones (``object`` "audio.voice", with the models that can speak them)."""
    catalog = request.app[CATALOG]
    data = []
    voices: dict[str, dict[str, str]] = {}
    for m in catalog.entries().values():
        for v in catalog.voices(m.id):
            data.append({"id": v["id"], "object": "voice", "model": m.id, "language": v.get("language"),
                         "sample_rate": v.get("sample_rate"), "description": v.get("description", "")})
            voices.setdefault(v["id"], {"id": v["id"], "name": v.get("name") or v["id"]})
    for v in await custom_voices(request):
        data.append(v)
        voices.setdefault(v["id"], {"id": v["id"], "name": v["name"]})
    return web.json_response({"object": "list", "data": data, "voices": list(voices.values())})


#: headers a browser script may read from an answer
CORS_EXPOSE = "X-Request-Id, X-Sample-Rate, Retry-After, x-should-retry"
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


def _allowed_origin(request: web.Request) -> str | None:
    origins = request.app[CONFIG].server.cors_origins
    origin = request.headers.get("Origin")
    if not origins or not origin:
        return None
    return origin if "*" in origins or origin in origins else None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer browsers' preflight ``OPTIONS`` for allowed origins (before auth: a preflight carries no key);
    the allow headers on every other answer are added by :func:`cors_headers`."""
    origin = _allowed_origin(request)
    if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers",
                                                                "Authorization, Content-Type"),
            "Access-Control-Max-Age": "600",
        })
    return await handler(request)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: streamed answers get their headers here too, before the first byte."""
    origin = _allowed_origin(request)
    if origin is None or response.status == 101:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    response.headers.add("Vary", "Origin")


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
    app = web.Application(middlewares=[cors_middleware, error_middleware, auth_middleware],
                          client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(cors_headers)
    app[SESSIONS] = set()
    app.on_shutdown.append(shutdown_sessions)
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[ADMISSION] = admission = StreamAdmission(config.server.stream_headroom)

    def on_status(st: P.Status) -> None:
        app[METRICS].on_status(st)
        if st.state == GONE:
            admission.forget(st.worker_id)

    app[POOL] = WorkerPool(endpoint, config.server.heartbeat_timeout_s, on_status=on_status,
                           max_buffered_bytes=config.server.max_buffered_bytes, on_done=admission.record)
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
    app.router.add_get(WS_PATH, speech_stream)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", retrieve_model)
    app.router.add_get("/v1/audio/models", list_audio_models)
    app.router.add_get("/v1/audio/voices", list_voices)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    setup_admin_routes(app)
    setup_text_routes(app)
    setup_playground_routes(app)
    setup_voice_routes(app)
    return app

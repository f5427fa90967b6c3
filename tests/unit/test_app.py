"""The error middleware: every 500 it answers is counted in vtts_requests_total (issue 12 #12)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vtts.frontend.app import error_middleware
from vtts.frontend.errors import APIError
from vtts.frontend.metrics import Metrics
from vtts.frontend.state import METRICS


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def _counted(request: web.Request) -> web.Response:
    exc = APIError(503, "no worker", code="model_not_ready")
    request.app[METRICS].requests.labels("m", "503").inc()  # as create_speech does for its refusals
    exc.counted = True
    raise exc


def _count(metrics: Metrics, model: str, status: str) -> float:
    return metrics.registry.get_sample_value("vtts_requests_total", {"model": model, "status": status}) or 0.0


def test_unhandled_errors_are_counted_once() -> None:
    async def run() -> Metrics:
        app = web.Application(middlewares=[error_middleware])
        app[METRICS] = metrics = Metrics()
        app.router.add_get("/boom", _boom)
        app.router.add_get("/counted", _counted)
        async with TestClient(TestServer(app)) as client:
            for _ in range(3):
                r = await client.get("/boom")
                assert r.status == 500 and (await r.json())["error"]["code"] == "internal_error"
            assert (await client.get("/counted")).status == 503
            assert (await client.get("/missing")).status == 404
        return metrics

    metrics = asyncio.run(run())
    assert _count(metrics, "", "500") == 3
    assert _count(metrics, "m", "503") == 1 and _count(metrics, "", "503") == 0
    assert _count(metrics, "", "404") == 0  # client errors outside speech stay uncounted, as before

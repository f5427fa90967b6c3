"""Typed keys for what the frontend app holds, shared by its handlers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from vtts.config import Config

from .admission import StreamAdmission
from .catalog import Catalog
from .control import SupervisorLink
from .metrics import Metrics
from .pool import WorkerPool

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", WorkerPool)
CATALOG = web.AppKey("catalog", Catalog)
METRICS = web.AppKey("metrics", Metrics)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
STARTED_AT = web.AppKey("started_at", float)
CONTROL = web.AppKey("control", SupervisorLink)
#: the API key the auth middleware accepted for this request (custom voices belong to it)
API_KEY = web.RequestKey("api_key", str)
ADMISSION = web.AppKey("admission", StreamAdmission)

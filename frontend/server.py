"""The frontend process: serve the app until SIGTERM or until the supervisor that started it is gone.

Client connections are bounded here (:class:`ConnectionGuard`): aiohttp parses and serves them, but has no
deadline for a request head or body and no connection cap, so a few hundred silent sockets could hold every
descriptor. The guard sits between the listening socket and aiohttp's protocol and closes connections that
miss ``header_timeout_s``, ``body_timeout_s`` or ``keepalive_timeout_s``; past ``max_connections`` it closes
the longest-idle connection that has no request running to admit the new one, and if every connection is
busy, answers the new one 503 and closes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from aiohttp import web

from vtts import config as cfg

from .app import Handler, build_app
from .errors import APIError

log = logging.getLogger("vtts.frontend")

#: the kernel's send buffer per client connection. Left alone, Linux grows it up to tcp_wmem's maximum (4 MiB)
#: for a client that does not read: memory outside every bound of ours, and seconds of audio produced for
#: nobody before ``write_timeout_s`` or ``max_buffered_bytes`` can notice. 256 KiB still carries seconds of
#: audio in flight on a slow link.
SEND_BUFFER_BYTES = 256 * 1024


class _Conn:
    """One client connection as the guard sees it."""

    def __init__(self, transport: asyncio.Transport, now: float) -> None:
        self.transport = transport
        self.fresh = True  # no request served yet: its first head is due within header_timeout_s
        self.idle_since = now
        self.head_since: float | None = None  # first byte of a request head not yet handed to a handler
        self.request: web.Request | None = None  # the request whose handler runs
        self.body_deadline = 0.0


class _GuardedProtocol(asyncio.Protocol):
    """Forwards the transport's events to aiohttp's protocol, telling the guard what it sees."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.conn: _Conn | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn = self.guard.admit(transport)  # type: ignore[arg-type]
        if self.conn is not None:
            self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is None:
            return
        if self.conn.request is None and self.conn.head_since is None:
            self.conn.head_since = time.monotonic()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.conn is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.guard.conns.pop(self.conn.transport, None)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class ConnectionGuard:
    """Deadlines and a cap for client connections (see the module docstring)."""

    def __init__(self, server: cfg.ServerConfig) -> None:
        self.header_timeout_s = server.header_timeout_s
        self.body_timeout_s = server.body_timeout_s
        self.keepalive_timeout_s = server.keepalive_timeout_s
        self.max_connections = server.max_connections
        #: open connections, oldest first
        self.conns: dict[asyncio.Transport, _Conn] = {}

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping aiohttp's (``make``)."""
        return lambda: _GuardedProtocol(self, make())

    def admit(self, transport: asyncio.Transport) -> _Conn | None:
        """Register a new connection, making room if the cap is reached; None if it was refused."""
        now = time.monotonic()
        if len(self.conns) >= self.max_connections:
            idle = [c for c in self.conns.values() if c.request is None]
            if not idle:
                log.warning("%d connections, all busy: refusing a new one", len(self.conns))
                _refuse(transport)
                return None
            oldest = min(idle, key=lambda c: c.head_since or c.idle_since)
            self.conns.pop(oldest.transport, None)
            oldest.transport.close()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        conn = self.conns[transport] = _Conn(transport, now)
        return conn

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection busy while its handler runs; the body deadline starts with the handler."""
        conn = self.conns.get(request.transport)  # type: ignore[arg-type]
        if conn is None:
            return await handler(request)
        conn.request, conn.head_since = request, None
        conn.body_deadline = time.monotonic() + self.body_timeout_s
        try:
            return await handler(request)
        finally:
            conn.request, conn.fresh, conn.idle_since = None, False, time.monotonic()

    def sweep(self) -> None:
        """Close every connection past its deadline."""
        now = time.monotonic()
        for conn in list(self.conns.values()):
            if conn.request is not None:
                late = now > conn.body_deadline and not conn.request.content.is_eof()
                why = "its request body did not arrive in time"
            elif conn.head_since is not None:
                late = now - conn.head_since > self.header_timeout_s
                why = "its request head did not arrive in time"
            else:
                late = now - conn.idle_since > (self.header_timeout_s if conn.fresh else self.keepalive_timeout_s)
                why = "it was idle"
            if late:
                log.debug("closing a connection: %s", why)
                self.conns.pop(conn.transport, None)
                conn.transport.close()

    async def run(self) -> None:
        """Sweep a few times per shortest timeout, for as long as the server runs."""
        period = min(1.0, max(0.05, min(self.header_timeout_s, self.body_timeout_s, self.keepalive_timeout_s) / 4))
        while True:
            await asyncio.sleep(period)
            self.sweep()


def _refuse(transport: asyncio.Transport) -> None:
    """A fast 503 for a connection over the cap (written before its request is read: best effort)."""
    body = json.dumps(APIError(503, "too many open connections; retry shortly", code="too_many_connections")
                      .body()).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    transport.write(head.encode() + body)
    transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections pass through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner, host, port, reuse_address=True)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner, which stops it at cleanup
        assert self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.factory(self._runner.server), self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address,
        )


async def serve(config: cfg.Config, endpoint: str, control: str, parent_pid: int | None) -> None:
    app = build_app(config, endpoint, control)
    guard = ConnectionGuard(config.server)
    app.middlewares.insert(0, guard.middleware)
    # handler_cancellation: a client that goes away cancels its handler at once, so its worker request is
    # cancelled at the next step instead of after the next chunk
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                           lingering_time=min(10.0, config.server.body_timeout_s))
    await runner.setup()
    site = GuardedSite(runner, config.server.host, config.server.port, guard)
    await site.start()
    sweeper = asyncio.create_task(guard.run())
    log.info("frontend listening on http://%s:%d", config.server.host, config.server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: a closed terminal, a clean stop
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                if parent_pid and os.getppid() != parent_pid:
                    log.warning("supervisor is gone; exiting")
                    break
    finally:
        sweeper.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """``python -m vtts.frontend --config FILE.json --endpoint ipc://...``"""
    ap = argparse.ArgumentParser(prog="vtts-frontend")
    ap.add_argument("--config", required=True, help="resolved config as JSON (written by the supervisor)")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--control", required=True, help="the supervisor's control endpoint")
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        config = cfg.parse(json.load(f))
    logging.basicConfig(level=config.server.log_level.upper(),
                        format="%(asctime)s frontend %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config, args.endpoint, args.control, args.parent_pid or None))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s", config.server.host, config.server.port, exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

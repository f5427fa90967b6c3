"""The frontend's link to the supervisor's control socket: admin operations and on-demand loading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any

import zmq
import zmq.asyncio

from vtts import protocol as P

log = logging.getLogger("vtts.frontend.control")


class SupervisorUnavailable(Exception):
    """The supervisor did not answer in time."""


class Unencodable(ValueError):
    """The request holds values the wire format cannot carry (a lone surrogate, an integer past 64 bits)."""


class SupervisorLink:
    """Request/reply over a DEALER socket; replies are matched to requests by id."""

    def __init__(self, endpoint: str, ctx: zmq.asyncio.Context) -> None:
        self.endpoint = endpoint
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, f"frontend-{os.getpid()}".encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self._pending: dict[str, asyncio.Future[P.AdminReply]] = {}
        self._task: asyncio.Task | None = None
        #: the latest model list the supervisor reported
        self.models: list[dict[str, Any]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._recv_loop())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sock.close(linger=0)

    async def request(self, op: str, model: str = "", entry: dict[str, Any] | None = None,
                      timeout: float = 10.0) -> P.AdminReply:
        msg = P.Admin(uuid.uuid4().hex, op, model, entry or {})
        try:
            frame = P.encode(msg)
        except (ValueError, OverflowError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
            raise Unencodable(f"the request cannot be sent to the supervisor: {exc}") from None
        fut: asyncio.Future[P.AdminReply] = asyncio.get_running_loop().create_future()
        self._pending[msg.id] = fut
        try:
            await self.sock.send(frame)
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise SupervisorUnavailable(f"the supervisor did not answer {op!r} within {timeout:.0f} s") from None
        finally:
            self._pending.pop(msg.id, None)

    async def _recv_loop(self) -> None:
        while True:
            frame = await self.sock.recv()
            msg = P.decode_or_log(frame, log, "the supervisor")
            if isinstance(msg, P.AdminReply):
                self.models = msg.models
                fut = self._pending.get(msg.id)
                if fut is not None and not fut.done():
                    fut.set_result(msg)

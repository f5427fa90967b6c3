"""The frontend process: serve the app until SIGTERM or until the supervisor that started it is gone."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from aiohttp import web

from vtts import config as cfg

from .app import build_app

log = logging.getLogger("vtts.frontend")


async def serve(config: cfg.Config, endpoint: str, control: str, parent_pid: int | None) -> None:
    app = build_app(config, endpoint, control)
    # handler_cancellation: a client that goes away cancels its handler at once, so its worker request is
    # cancelled at the next step instead of after the next chunk
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port, reuse_address=True)
    await site.start()
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

"""Admission by streaming capacity through a real server: past what the replica can keep smooth, a new
stream is refused at once with 429 and Retry-After instead of slowing the streams already admitted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.integration.conftest import start_server
from tests.integration.test_load_control import LONG, metric


def test_a_stream_past_the_replicas_smooth_capacity_gets_429(tmp_path: Path) -> None:
    # a headroom this small lets the one replica keep exactly one stream (each replica counts for one at least)
    (tmp_path / "vtts.toml").write_text(
        '[server]\nstream_headroom = 0.001\n'
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\noptions = { warmup = false }\n'
    )
    srv = start_server(["--config", str(tmp_path / "vtts.toml")], tmp_path)
    body = {"model": "joe", "voice": "alloy", "response_format": "pcm"}

    async def run() -> tuple[list[int], int, dict[str, str], dict, int, int]:
        async with aiohttp.ClientSession() as s:
            url = srv.url + "/v1/audio/speech"
            learnt = []
            for _ in range(3):  # the replica's speed is measured from its first finished requests
                async with s.post(url, json={**body, "input": "Hello there."}) as r:
                    await r.read()
                    learnt.append(r.status)
            async with s.post(url, json={**body, "input": LONG}) as long:
                await long.content.readany()  # streaming: the replica holds one committed stream
                async with s.post(url, json={**body, "input": "One more."}) as refused:
                    refused_status, refused_headers = refused.status, dict(refused.headers)
                    refused_body = json.loads(await refused.read())
                await long.read()
                long_status = long.status
            async with s.post(url, json={**body, "input": "Room again."}) as after:
                await after.read()
                return learnt, refused_status, refused_headers, refused_body, long_status, after.status

    try:
        learnt, status, headers, err, long_status, after = asyncio.run(run())
        assert learnt == [200, 200, 200]
        assert status == 429 and float(headers["Retry-After"]) > 0
        assert err["error"]["code"] == "rate_limit_exceeded"
        assert long_status == 200 and after == 200  # the admitted stream finished; then there was room again
        assert metric(srv, "vtts_rejected_total", reason="stream_capacity") == 1
    finally:
        _, left = srv.stop()
        assert not left

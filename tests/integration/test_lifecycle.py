"""API keys, start-up from a model path, and shutdown without orphans, each on its own process tree."""

from __future__ import annotations

import json
import time
import urllib.request

import openai
import pytest

from tests.integration.conftest import start_server


def test_api_keys_guard_v1_routes_but_not_health(tmp_path) -> None:
    srv = start_server(["--api-key", "sekret"], tmp_path)
    try:
        status, body = srv.get("/v1/models")
        assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
        status, _ = srv.get("/v1/models", {"Authorization": "Bearer wrong"})
        assert status == 401
        status, _ = srv.get("/v1/models", {"Authorization": "Bearer sekret"})
        assert status == 200
        assert srv.get("/health")[0] == 200
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.url + "/v1", api_key="bad", max_retries=0).audio.speech.create(
                model="tts-1", voice="alloy", input="hi"
            )
        good = openai.OpenAI(base_url=srv.url + "/v1", api_key="sekret", max_retries=0)
        assert good.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="wav").content
    finally:
        took, left = srv.stop()
    assert not left


def test_api_key_from_environment(tmp_path) -> None:
    srv = start_server([], tmp_path, env={"VTTS_API_KEY": "envkey"})
    try:
        assert srv.get("/v1/models")[0] == 401
        assert srv.get("/v1/models", {"Authorization": "Bearer envkey"})[0] == 200
    finally:
        srv.stop()


def test_sigterm_stops_every_process_quickly(tmp_path) -> None:
    srv = start_server(["--replicas", "2"], tmp_path)
    deadline = time.monotonic() + 30
    while json.loads(srv.get("/ready")[1])["models"]["piper-joe"]["ready"] < 2:
        assert time.monotonic() < deadline, "second replica never became ready"
        time.sleep(0.1)
    # one request in flight while we stop: it is allowed to finish or be cut, but nothing may linger
    req = urllib.request.Request(
        srv.url + "/v1/audio/speech",
        data=json.dumps({"model": "tts-1", "voice": "alloy", "input": "Goodbye. " * 20}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read(10)
        took, left = srv.stop()
    assert took < 15.0
    assert not left, f"orphans: {left}"

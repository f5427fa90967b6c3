"""What real clients read besides ``POST /v1/audio/speech`` (issue 18): the SDK's ``models.retrieve``, Open WebUI's
``/audio/models`` and ``voices`` lists, OpenAI model names from config, the 401 type, ``x-should-retry: false``
where a retry only adds load, and CORS for browser clients."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from tests.integration.conftest import Server, start_server

ORIGIN = "https://app.example"
CONFIG = f"""
[server]
api_keys = ["k"]
cors_origins = ["{ORIGIN}"]
openai_model_aliases = ["tts-1", "house-voice"]
cpu_memory_budget_mb = 3000
load_timeout_s = 10.0

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
# no warm-up at load (about 1 s of the start on 2 cores): the memory refusal below comes from memory_mb
options = {{ warmup = false }}

[[models]]
id = "huge"
engine = "piper"
model = "en_US-joe-medium"
preload = false
memory_mb = 100000
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("reads")
    (tmp / "vtts.toml").write_text(CONFIG)
    server = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield server
    server.stop()


def refusals(srv: Server, model: str) -> float:
    text = srv.get("/metrics")[1].decode()
    prefix = f'vtts_requests_total{{model="{model}",status="503"}}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def request(srv: Server, method: str, path: str, headers: dict[str, str] | None = None,
            body: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_sdk_models_retrieve_and_default_aliases(server: Server) -> None:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        for name in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "piper-joe"):
            model = client.models.retrieve(name)
            assert (model.id, model.object, model.owned_by) == (name, "model", "vtts")
        assert {m.id for m in client.models.list()} >= {"gpt-4o-mini-tts-2025-12-15", "piper-joe"}
        speech = client.audio.speech.create(model="gpt-4o-mini-tts-2025-12-15", voice="alloy", input="Hi.",
                                            response_format="pcm")
        assert len(speech.content) > 1000
        with pytest.raises(openai.NotFoundError) as err:
            client.models.retrieve("whisper-9")
    body = err.value.body
    assert body["code"] == "model_not_found" and body["type"] == "invalid_request_error"
    status, headers, _ = request(server, "GET", "/v1/models", {"Origin": ORIGIN})
    assert status == 200 and "access-control-allow-origin" not in headers  # no CORS unless configured


def test_open_webui_reads_models_and_voices(server: Server) -> None:
    status, _, raw = request(server, "GET", "/v1/audio/models")
    assert status == 200
    assert {"tts-1", "piper-joe"} <= {m["id"] for m in json.loads(raw)["models"]}
    status, _, raw = request(server, "GET", "/v1/audio/voices")
    data = json.loads(raw)
    assert {voice["id"]: voice["name"] for voice in data["voices"]} == {"en_US-joe-medium": "en_US-joe-medium"}
    assert data["data"][0]["id"] == "en_US-joe-medium" and data["object"] == "list"  # kept


def test_model_aliases_come_from_config(srv: Server) -> None:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="k", max_retries=0) as client:
        assert {m.id for m in client.models.list()} == {"tts-1", "house-voice", "joe", "huge"}
        assert client.models.retrieve("house-voice").id == "house-voice"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4o-mini-tts")


def test_401_is_openai_shaped_and_typed(srv: Server) -> None:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as err:
            client.models.list()
    assert err.value.status_code == 401
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["code"] == "invalid_api_key"


def test_insufficient_memory_is_not_retried_by_the_sdk(srv: Server) -> None:
    """The SDK retries 5xx twice unless told not to; a model that cannot fit must not cost three loads."""
    before = refusals(srv, "huge")
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="k", max_retries=2) as client:
        with pytest.raises(openai.InternalServerError) as err:
            client.audio.speech.create(model="huge", voice="alloy", input="Too big.")
    assert err.value.status_code == 503 and err.value.body["code"] == "insufficient_memory"
    assert err.value.response.headers["x-should-retry"] == "false"
    assert refusals(srv, "huge") == before + 1


def test_cors_preflight_and_exposed_headers(srv: Server) -> None:
    status, headers, _ = request(srv, "OPTIONS", "/v1/audio/speech", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 204  # answered before auth: a preflight carries no key
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-allow-headers"] == "authorization, content-type"
    status, headers, body = request(srv, "POST", "/v1/audio/speech", {"Origin": ORIGIN, "Authorization": "Bearer k"},
                                    {"model": "tts-1", "voice": "alloy", "input": "Hi.", "response_format": "pcm"})
    assert status == 200 and body
    assert headers["access-control-allow-origin"] == ORIGIN
    assert {"x-request-id", "x-sample-rate"} <= {h.strip().lower() for h in
                                                 headers["access-control-expose-headers"].split(",")}
    status, headers, _ = request(srv, "GET", "/v1/models", {"Origin": ORIGIN})
    assert status == 401 and headers["access-control-allow-origin"] == ORIGIN  # errors are readable too
    status, headers, _ = request(srv, "OPTIONS", "/v1/audio/speech", {
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in headers

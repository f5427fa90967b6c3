"""Every request's work is bounded, through a real server (issue 12, findings 3, 4, 8, 10, 12, 13):
``max_audio_seconds`` checked on the normalized text before synthesis, SSML breaks capped, inputs the text
frontend used to choke on (private-use characters, absurd break times, backtracking markdown) answered fast
with a 2xx or a 400, a language the voice cannot read refused, and a bad lexicon file named by path and line
only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import Server, start_server

SPEECH = {"model": "tts-1", "voice": "alloy", "response_format": "pcm"}


def post(server: Server, path: str, body: dict, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def error(body: bytes) -> dict:
    return json.loads(body)["error"]


def test_two_hundred_breaks_are_refused_not_synthesized(server: Server) -> None:
    """200 breaks of 10 s made 2000 s of silence (91 MB of PCM); the estimate counts every pause."""
    document = "<speak>Hi." + '<break time="10s"/>' * 200 + "</speak>"
    started = time.monotonic()
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": document})
    assert status == 400, body[:200]
    assert error(body)["code"] == "audio_too_long" and error(body)["param"] == "input"
    assert "900 s" in error(body)["message"] and "would make about" in error(body)["message"]
    assert time.monotonic() - started < 10  # refused before synthesis, not after minutes of it


def test_four_thousand_digits_are_bounded(server: Server) -> None:
    """4000 digits made 19 minutes of audio from one request: read digit by digit they are over the limit."""
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": "7" * 4000})
    assert status == 400 and error(body)["code"] == "audio_too_long", body[:200]


@pytest.mark.parametrize("text", [
    f'<speak>a<break time="{"9" * 400}s"/></speak>',  # float('9'*400) is inf: OverflowError, a 500
    '<speak>a<break time="11s"/></speak>',  # one break is at most 10 s
])
def test_absurd_breaks_are_400(server: Server, text: str) -> None:
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": text})
    assert status == 400 and error(body)["code"] == "invalid_ssml", body[:200]


def test_private_use_characters_are_dropped_not_a_500(server: Server) -> None:
    """The frontend's own phoneme marks are Private Use Area-A code points; an input's own were looked up."""
    text = "Hello \U000f0000 there \U000ffffd."
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": text})
    assert status == 200 and len(body) > 4800, body[:200]
    status, body = post(server, "/v1/text/normalize", {"input": text})
    assert status == 200 and json.loads(body)["text"] == "Hello there.", body


def test_a_lone_surrogate_in_ssml_is_a_400_on_the_normalize_route(server: Server) -> None:
    """The SSML parser could not encode "\ud800" (JSON allows it): a 500 naming a codec."""
    status, body = post(server, "/v1/text/normalize", {"input": "<speak>a\ud800</speak>"})
    assert status == 400 and error(body)["param"] == "input", body


def test_backtracking_markdown_is_fast_and_the_loop_stays_free(server: Server) -> None:
    """'|' and 4094 newlines took minutes in the table rule, on the frontend's event loop."""
    started = time.monotonic()
    status, body = post(server, "/v1/text/normalize", {"input": "|" + "\n" * 4094 + "x"}, timeout=20)
    assert status == 200, body[:200]
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": "# Title" + " " * 4000 + "x"}, timeout=20)
    assert status == 200, body[:200]
    assert time.monotonic() - started < 15
    assert server.get("/health")[0] == 200


def test_a_language_the_voice_cannot_read_is_refused(server: Server) -> None:
    """An unknown language silently switched normalization off; the engine now refuses it."""
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": "Bonjour.", "language": "fr"})
    assert status == 400 and error(body)["param"] == "language", body[:200]
    status, body = post(server, "/v1/text/normalize", {"input": "x", "language": "xx"})
    assert status == 400 and error(body)["param"] == "language", body[:200]


def test_configured_limit_speed_and_a_bad_lexicon(tmp_path: Path) -> None:
    """``max_audio_seconds`` from the config file, divided by speed; a model whose lexicon file turns out
    not to be one answers the normalize route 503 naming the path and line, never the file's contents."""
    lexicon = tmp_path / "en.tsv"
    lexicon.write_text("nginx\tengine x\n", encoding="utf-8")
    config = tmp_path / "vtts.toml"
    config.write_text(
        "[server]\nmax_audio_seconds = 5.0\n"
        '[[models]]\nid = "piper-joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        # no warm-up at load (about 1 s of the start on 2 cores): nothing here measures memory
        f'options = {{ lexicon = "{lexicon}", warmup = false }}\n', encoding="utf-8")
    server = start_server(["--config", str(config)], tmp_path)
    try:
        text = "The quick brown fox jumps over the lazy dog. " * 3  # about 9 s estimated at speed 1
        status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": text})
        assert status == 400 and "the limit is 5 s" in error(body)["message"], body[:200]
        status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": text, "speed": 2.0})
        assert status == 200, body[:200]
        lexicon.write_text("root:x:0:0:secret-hash:/root:/bin/bash\n", encoding="utf-8")
        status, body = post(server, "/v1/text/normalize", {"input": "nginx", "model": "piper-joe"})
        assert status == 503 and error(body)["code"] == "lexicon_error", body
        assert f"{lexicon}:1" in error(body)["message"] and b"secret" not in body
    finally:
        server.stop()

"""The text frontend through a real server: SSML and lexicons in /v1/audio/speech, the /v1/text/normalize
debug route, and lexicon files re-read without a restart."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import Server, start_server

SPEECH = {"model": "tts-1", "voice": "alloy", "response_format": "wav"}


def post(server: Server, path: str, body: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def seconds(pcm: bytes) -> float:
    """OpenAI's pcm: 24 kHz, 16-bit mono."""
    return len(pcm) / 48_000


def input_tokens(server: Server, text: str, **extra: object) -> int:
    """The usage the done event reports: phoneme ids, so it changes when the text read changes."""
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": text, "stream_format": "sse",
                                                     "response_format": "pcm", "extra": extra})
    assert status == 200, body
    events = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")]
    return next(e for e in events if e["type"] == "speech.audio.done")["usage"]["input_tokens"]


def test_ssml_breaks_lengthen_the_audio(server: Server) -> None:
    pcm = {**SPEECH, "response_format": "pcm"}
    status, plain = post(server, "/v1/audio/speech", {**pcm, "input": "<speak>Good morning.</speak>"})
    assert status == 200, plain
    status, paused = post(server, "/v1/audio/speech",
                          {**pcm, "input": '<speak>Good <break time="1500ms"/> morning.</speak>'})
    assert status == 200, paused
    # measured 1.77 s, sigma 0.05 over 40 pairs (the break, and "Good" said as a segment of its own): the
    # bounds 1.0 and 2.0 are each over 4 sigma away, so noise cannot fail it, a missing break can
    assert seconds(paused) - seconds(plain) == pytest.approx(1.5, abs=0.5)


@pytest.mark.parametrize(("document", "words"), [
    ("<speak><audio src='x.wav'/></speak>", "<audio> at line 1, column 8"),
    ("<speak>\n<p>unclosed</speak>", "line 2"),
    ('<!DOCTYPE speak [<!ENTITY x "y">]><speak>&x;</speak>', "DOCTYPE"),
])
def test_bad_ssml_is_a_400_naming_the_element_and_position(server: Server, document: str, words: str) -> None:
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": document})
    assert status == 400, body
    error = json.loads(body)["error"]
    assert error["param"] == "input" and words in error["message"]


def test_request_lexicon_and_normalization_switch(server: Server) -> None:
    assert input_tokens(server, "tomato", lexicon={"tomato": "potato salad"}) == input_tokens(server, "potato salad")
    assert input_tokens(server, "It costs $5.") != input_tokens(server, "It costs $5.", normalize=False)
    status, body = post(server, "/v1/audio/speech", {**SPEECH, "input": "hi", "extra": {"lexicon": ["x"]}})
    assert status == 400 and json.loads(body)["error"]["param"] == "extra"


def test_normalize_route(server: Server) -> None:
    status, body = post(server, "/v1/text/normalize", {"input": "Dr. Smith paid €40 on 03/04/2025."})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["language"] == "en"
    assert answer["text"] == "Doctor Smith paid forty euros on March fourth, twenty twenty-five."
    status, body = post(server, "/v1/text/normalize", {"input": "On 03/04/2025.", "locale": "en-GB",
                                                       "model": "tts-1"})
    assert json.loads(body)["text"] == "On the third of April, twenty twenty-five."
    status, body = post(server, "/v1/text/normalize", {"input": "사과 3개"})
    assert json.loads(body)["language"] == "ko" and json.loads(body)["text"] == "사과 세 개"
    status, body = post(server, "/v1/text/normalize", {"input": '<speak>a<break time="1s"/>b</speak>'})
    assert [s["pause_before_ms"] for s in json.loads(body)["segments"]] == [0, 1000]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": ""}, "input"), ({"input": 5}, "input"), ({"input": "x", "colour": 1}, "colour"),
    ({"input": "<speak><video/></speak>"}, "input"), ({"input": "x", "model": "nope"}, "model"),
])
def test_normalize_route_errors(server: Server, body: dict, param: str) -> None:
    status, answer = post(server, "/v1/text/normalize", body)
    assert status in (400, 404), answer
    assert json.loads(answer)["error"]["param"] == param


def test_lexicon_file_is_reread_without_restart(tmp_path: Path) -> None:
    lexicon = tmp_path / "en.tsv"
    lexicon.write_text("nginx\tred tomato\n", encoding="utf-8")
    config = tmp_path / "vtts.toml"
    config.write_text(
        '[[models]]\nid = "piper-joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        # no warm-up at load (about 1 s of the start on 2 cores): nothing here measures memory
        f'options = {{ lexicon = "{lexicon}", warmup = false }}\n', encoding="utf-8")
    server = start_server(["--config", str(config)], tmp_path)
    try:
        with_file = input_tokens(server, "nginx")
        assert with_file == input_tokens(server, "red tomato")
        lexicon.write_text("nginx\tengine ex ex ex\n", encoding="utf-8")
        os.utime(lexicon, (time.time() + 2, time.time() + 2))
        time.sleep(1.2)
        assert input_tokens(server, "nginx") == input_tokens(server, "engine ex ex ex")
        status, body = post(server, "/v1/text/normalize", {"input": "nginx", "model": "piper-joe"})
        assert status == 200 and json.loads(body)["text"] == "engine ex ex ex"
        # an explicit reload through the admin API: counts per worker; a broken file keeps the old entries
        lexicon.write_text("nginx\tred tomato\n", encoding="utf-8")
        status, body = post(server, "/admin/models/piper-joe/lexicon/reload", {})
        assert status == 200, body
        assert json.loads(body)["workers"]["piper-joe-0"]["entries"] == {"en": 1}
        assert input_tokens(server, "nginx") == input_tokens(server, "red tomato")
        lexicon.write_text("no tab on this line\n", encoding="utf-8")
        status, body = post(server, "/admin/models/piper-joe/lexicon/reload", {})
        assert status == 400 and "expected 'word<TAB>pronunciation'" in json.loads(body)["error"]["message"]
        assert input_tokens(server, "nginx") == input_tokens(server, "red tomato")
        status, body = post(server, "/admin/models/nope/lexicon/reload", {})
        assert status == 404
        # a hot swap to another lexicon file: the normalize route's cached frontend follows the new entry
        swapped = tmp_path / "swapped.tsv"
        swapped.write_text("nginx\tswapped engine\n", encoding="utf-8")
        entry = {"engine": "piper", "model": "en_US-joe-medium", "options": {"lexicon": str(swapped)}}
        request = urllib.request.Request(server.url + "/admin/models/piper-joe", data=json.dumps(entry).encode(),
                                         method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=90) as r:
            assert r.status == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, body = post(server, "/v1/text/normalize", {"input": "nginx", "model": "piper-joe"})
            if json.loads(body).get("text") == "swapped engine":
                break
            time.sleep(0.5)
        assert status == 200 and json.loads(body)["text"] == "swapped engine", body
    finally:
        server.stop()

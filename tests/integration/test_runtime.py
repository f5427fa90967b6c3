"""The autoregressive runtime through a real ``vtts serve``: the reference LM engine behind HTTP.

Checks that what the unit tests prove in-process holds across the process boundary: sampling knobs and
``instructions`` travel from the request body to the engine, are validated by it, and a seed reproduces
the audio byte for byte.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Server, start_server

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def lm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("runtime")
    (tmp / "vtts.toml").write_text(
        '[[models]]\nid = "lm"\nengine = "reference-lm"\nmodel = "tiny"\n'
        "options = { max_new_tokens = 24 }\n"
    )
    srv = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield srv
    _, left = srv.stop()
    assert not left


def speak(srv: Server, **body: Any) -> tuple[int, bytes]:
    data = json.dumps({"model": "lm", "voice": "alloy", "input": "Hello there.", "response_format": "pcm",
                       **body}).encode()
    req = urllib.request.Request(srv.url + "/v1/audio/speech", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_a_seed_reproduces_the_audio_and_instructions_reach_the_engine(lm_server: Server) -> None:
    status, first = speak(lm_server, extra={"seed": 11, "temperature": 0.9})
    assert status == 200 and len(first) > 0
    assert speak(lm_server, extra={"seed": 11, "temperature": 0.9}) == (200, first)
    assert speak(lm_server, extra={"seed": 12, "temperature": 0.9})[1] != first
    status, told = speak(lm_server, extra={"seed": 11, "temperature": 0.9}, instructions="Whisper.")
    assert status == 200 and told != first


@pytest.mark.parametrize(("extra", "param"), [({"nope": 1}, "extra.nope"), ({"top_p": 3}, "extra.top_p"),
                                              ({"seed": "x"}, "extra.seed")])
def test_a_knob_the_engine_refuses_is_a_400_naming_it(lm_server: Server, extra: dict[str, Any], param: str) -> None:
    status, body = speak(lm_server, extra=extra)
    assert status == 400
    assert json.loads(body)["error"]["param"] == param

"""Name resolution without a process tree: model names (ids, aliases, OpenAI's names) and voice names
(ids, ``voice_aliases``, OpenAI's voice names) against a config and synthetic worker heartbeats."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vtts import config as cfg
from vtts import protocol as P
from vtts.config import OPENAI_MODELS, OPENAI_VOICES
from vtts.frontend.catalog import Catalog
from vtts.frontend.errors import APIError
from vtts.frontend.pool import WorkerInfo

MODELS = [
    {"id": "piper", "engine": "piper", "model": "x", "aliases": ["joe"],
     "voice_aliases": {"nova": "bob", "narrator": "alice"}},
    {"id": "kokoro", "engine": "kokoro", "model": "y", "aliases": ["kokoro-82m"]},
]


class Pool:
    """What the catalog reads of the pool: each model's workers and the voices they announce."""

    def __init__(self, voices: dict[str, list[str]]) -> None:
        self.workers = {
            model: [WorkerInfo(P.Status(worker_id=f"{model}-0", model=model, pid=0, state="ready",
                                        voices=[{"id": v} for v in ids]))]
            for model, ids in voices.items()
        }

    def workers_of(self, model: str) -> list[WorkerInfo]:
        return self.workers.get(model, [])


class Link:
    """The supervisor link's last model list."""

    def __init__(self, models: list[dict[str, Any]]) -> None:
        self.models = models


def catalog(server: dict[str, Any] | None = None, voices: dict[str, list[str]] | None = None,
            link: Link | None = None) -> Catalog:
    config = cfg.parse({"server": server or {}, "models": MODELS})
    pool = Pool(voices if voices is not None else {"piper": ["alice", "bob"], "kokoro": ["af_heart"]})
    return Catalog(config, pool, link)  # type: ignore[arg-type]


def _refused(call: Any, *args: str) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args)
    return info.value


def test_model_ids_and_aliases_resolve_to_their_model() -> None:
    c = catalog()
    assert [c.resolve_model(n) for n in ("piper", "joe", "kokoro", "kokoro-82m")] == [
        "piper", "piper", "kokoro", "kokoro"]


@pytest.mark.parametrize("name", OPENAI_MODELS)
def test_openai_model_names_resolve_to_the_default_model(name: str) -> None:
    assert catalog().resolve_model(name) == "piper"  # the first model when none is named
    assert catalog({"default_model": "kokoro"}).resolve_model(name) == "kokoro"


def test_openai_model_names_follow_the_configured_list() -> None:
    c = catalog({"openai_model_aliases": ["tts-1"]})
    assert c.resolve_model("tts-1") == "piper"
    error = _refused(c.resolve_model, "tts-1-hd")
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")


def test_an_unknown_model_is_a_404_naming_it() -> None:
    error = _refused(catalog().resolve_model, "Piper")  # names are case-sensitive, as OpenAI's are
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
    assert "'Piper'" in error.message


def test_models_the_supervisor_reports_route_too() -> None:
    """A model added (or swapped) through the admin API is known from the supervisor's list."""
    added = dataclasses.asdict(cfg.parse_model({"id": "added", "engine": "piper", "model": "z",
                                                "aliases": ["extra-name"]}))
    swapped = dataclasses.asdict(cfg.parse_model({**MODELS[0], "aliases": ["joe2"]}))
    c = catalog(link=Link([{"id": "added", "entry": added}, {"id": "piper", "entry": swapped},
                           {"id": "broken", "entry": {"id": "broken", "replicas": -1}}]))
    assert c.resolve_model("extra-name") == "added" and c.resolve_model("joe2") == "piper"
    assert _refused(c.resolve_model, "joe").status == 404  # the swap dropped that alias
    assert _refused(c.resolve_model, "broken").status == 404  # an entry that does not parse is skipped


def test_voice_ids_resolve_to_themselves_and_fold_case() -> None:
    c = catalog()
    assert c.resolve_voice("piper", "alice") == "alice"
    assert c.resolve_voice("piper", "BOB") == "bob"
    assert c.resolve_voice("kokoro", "af_heart") == "af_heart"


def test_voice_aliases_map_to_the_engine_voice() -> None:
    c = catalog()
    assert c.resolve_voice("piper", "nova") == "bob"  # an OpenAI name listed in voice_aliases
    assert c.resolve_voice("piper", "narrator") == "alice"
    assert _refused(c.resolve_voice, "kokoro", "narrator").code == "voice_not_found"  # another model's alias


@pytest.mark.parametrize("name", OPENAI_VOICES)
def test_openai_voice_names_fall_back_to_the_first_voice(name: str) -> None:
    c = catalog()
    assert c.resolve_voice("kokoro", name) == "af_heart"
    assert c.resolve_voice("piper", name) == ("bob" if name == "nova" else "alice")


def test_a_blend_is_passed_to_the_engine_to_validate() -> None:
    assert catalog().resolve_voice("kokoro", "af_heart:0.7+af_bella:0.3") == "af_heart:0.7+af_bella:0.3"


def test_an_unknown_voice_is_a_400_listing_the_voices() -> None:
    error = _refused(catalog().resolve_voice, "piper", "carol")
    assert (error.status, error.code, error.param) == (400, "voice_not_found", "voice")
    assert "alice, bob" in error.message


def test_without_announced_voices_even_openai_names_are_unknown() -> None:
    """No worker has loaded yet: there is no first voice to fall back to."""
    c = catalog(voices={})
    assert c.voices("piper") == []
    assert _refused(c.resolve_voice, "kokoro", "alloy").code == "voice_not_found"

"""``vtts speak``'s engine loading: a one-shot command skips what pays off only over many requests."""

from __future__ import annotations

from typing import Any

import pytest

from vtts import synth
from vtts.config import ModelConfig
from vtts.workers.engines import piper
from vtts.workers.engines.piper import PiperEngine


class Recorder:
    """An engine class that records how it was loaded."""

    one_shot_options: dict[str, Any] = {"warmup": False}
    calls: list[tuple[str, str, dict[str, Any]]] = []

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> str:
        cls.calls.append((model_ref, device, dict(options or {})))
        return "engine"


@pytest.mark.parametrize(("options", "expected"), [
    ({}, {"warmup": False}),
    ({"warmup": True, "intra_op_threads": 1}, {"warmup": True, "intra_op_threads": 1}),  # the entry wins
])
def test_one_shot_options_under_the_entrys_own(monkeypatch: pytest.MonkeyPatch, options: dict, expected: dict) -> None:
    monkeypatch.setattr(synth, "engine_class", lambda name: Recorder)
    Recorder.calls.clear()
    model = ModelConfig(id="m", engine="piper", model="voice", device="cuda:0", options=options)
    assert synth.load_once(model) == "engine" and synth.load_once(model, "cpu") == "engine"
    assert Recorder.calls == [("voice", "cuda:0", expected), ("voice", "cpu", expected)]


def test_piper_one_shot_options_are_options_piper_takes() -> None:
    """A renamed option would make every ``vtts speak`` a load error."""
    assert PiperEngine.one_shot_options.get("warmup") is False
    assert set(PiperEngine.one_shot_options) <= piper.OPTIONS

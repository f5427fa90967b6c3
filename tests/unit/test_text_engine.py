"""The bundled Piper voice through the text frontend: phonemes, breaks and rates reach the audio."""

from pathlib import Path

import numpy as np
import pytest

from vtts.workers.engine import EngineError, SynthesisParams, WorkItem
from vtts.workers.engines.piper import PiperEngine, PiperSegment


@pytest.fixture(scope="module")
def joe() -> PiperEngine:
    try:
        # no warm-up (a max-size synthesis at load, ~1-2 s on 2 cores): these tests read text and durations
        return PiperEngine.load("bundled", options={"warmup": False})
    except Exception as exc:  # the bundled voice or ONNX Runtime missing
        pytest.skip(f"bundled voice unavailable: {exc}")


def _params(joe: PiperEngine, **extra: object) -> SynthesisParams:
    return SynthesisParams(voice=joe.voices()[0].id, extra=dict(extra))


def _seconds(joe: PiperEngine, segment: PiperSegment, params: SynthesisParams) -> float:
    [out] = joe.step([WorkItem("t", 0, segment, params)])
    return out.audio.size / joe.sample_rate


def test_prepare_normalizes(joe: PiperEngine) -> None:
    [segment] = joe.prepare("It costs $5.", _params(joe))
    assert segment.text == "It costs five dollars."
    [raw] = joe.prepare("It costs $5.", _params(joe, normalize=False))
    assert raw.text == "It costs $5."


def test_breaks_become_silence_and_rate_scales_duration(joe: PiperEngine) -> None:
    params = _params(joe)
    [plain] = joe.prepare("A quiet morning.", params)
    [paused] = joe.prepare('<speak>A quiet morning.<break time="2s"/></speak>', params)
    [slow] = joe.prepare('<speak><prosody rate="50%">A quiet morning.</prosody></speak>', params)
    assert isinstance(paused, PiperSegment) and paused.pause_after_s == 2.0 and slow.rate == 0.5
    base = _seconds(joe, plain, params)
    assert _seconds(joe, paused, params) == pytest.approx(base + 2.0, abs=0.4)
    assert _seconds(joe, slow, params) > 1.6 * base
    [out] = joe.step([WorkItem("t", 0, paused, params)])
    assert np.abs(out.audio[-joe.sample_rate:]).max() == 0.0


def test_phonemes_are_spoken_as_given(joe: PiperEngine) -> None:
    params = _params(joe)
    [given] = joe.prepare('<speak><phoneme alphabet="ipa" ph="həlˈoʊ">goodbye</phoneme></speak>', params)
    [hello] = joe.prepare("hello", params)
    assert given.tokens.tolist() == hello.tokens.tolist()


def test_lexicon_option_and_request_entries(tmp_path: Path) -> None:
    path = tmp_path / "lex.tsv"
    path.write_text("nginx\tengine x\n", encoding="utf-8")
    engine = PiperEngine.load("bundled", options={"lexicon": str(path), "warmup": False})
    params = SynthesisParams(voice=engine.voices()[0].id, extra={"lexicon": {"redis": "red iss"}})
    [segment] = engine.prepare("nginx and redis", params)
    assert segment.text == "engine x and red iss"
    assert engine.text_frontend.reload() == {"en": 1}


def test_client_errors(joe: PiperEngine) -> None:
    with pytest.raises(EngineError) as info:
        joe.prepare("<speak><audio/></speak>", _params(joe))
    assert info.value.param == "input" and "<audio>" in info.value.message
    with pytest.raises(EngineError) as info:
        joe.prepare("hi", _params(joe, lexicon="nope"))
    assert info.value.param == "extra"

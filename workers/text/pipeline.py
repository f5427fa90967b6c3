"""The text frontend every engine runs before its own phonemizer or tokenizer.

input (plain text or an SSML document) → spans → per span: lexicon (written-form keys) → normalization →
lexicon (word keys) → sentence and clause segmentation → :class:`TextSegment` list, each with its pause
before/after and its speaking rate. Phonemes the author or the lexicon gave (IPA) travel as
:class:`Piece` objects, so an engine that takes phonemes says them and any other reads the fallback words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vtts.workers.engine import EngineError

from . import normalize_en, normalize_ja, normalize_ko, normalize_zh, ssml
from .language_detect import detect_language as detect_text_language
from .lexicon import Lexicon, LexiconSet, request_lexicon
from .say_as import say_as
from .script_detect import detect_language
from .segment import FIRST_SEGMENT_MODES, base_language, split_segments

#: language → normalizer(text, locale); languages without one pass through unchanged
NORMALIZERS: dict[str, Callable[[str, str | None], str]] = {
    "en": normalize_en.normalize,
    "ko": normalize_ko.normalize,
    "zh": normalize_zh.normalize,
    "ja": normalize_ja.normalize,
}
#: phonemes hide in the text as code points of Supplementary Private Use Area-A while it is normalized
#: and segmented: no rule matches them and no segmenter splits them
_MARK_BASE = 0xF0000
_MARK_LIMIT = 0xFFFFD
_MARK = re.compile("[\U000f0000-\U000ffffd]")
#: a lone UTF-16 surrogate (JSON "\ud800", sent by clients that cut a string inside an emoji): not text
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACE = re.compile(r"\s+")
_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")
_SPACE_BEFORE_MARK = re.compile(r"(?<!\s)\s+(?=[,.;:!?](?:\s|$))")
#: speaking rate of the audio-length estimate, in characters per second of normal speech: letters (and IPA)
#: about 15 (150 words a minute), syllable scripts (Hangul, kana, Han: one character a syllable) about 7.
#: Rough on purpose: it only has to tell a request of minutes from one of hours.
CHARS_PER_SECOND, SYLLABLES_PER_SECOND = 15.0, 7.0
_SYLLABLE = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def normalize(text: str, language: str = "en", locale: str | None = None) -> str:
    """Written text → spoken text in ``language`` ("en", "en-GB", "ko"...); other languages unchanged."""
    normalizer = NORMALIZERS.get(base_language(language))
    return normalizer(text, locale or (language if "-" in language else None)) if normalizer else text


@dataclass(frozen=True)
class Piece:
    """Part of a segment: words, or phonemes (``ipa``) with the words they stand for as ``text``."""

    text: str
    ipa: str | None = None


@dataclass
class TextSegment:
    """One segment ready for an engine's phonemizer: its pieces, language, speaking-rate factor and the
    silence (ms) to put before and after it."""

    pieces: list[Piece]
    language: str
    rate: float = 1.0
    pause_before_ms: int = 0
    pause_after_ms: int = 0

    @property
    def text(self) -> str:
        """The words (the fallback words where phonemes were given)."""
        return _SPACE.sub(" ", " ".join(p.text for p in self.pieces if p.text)).strip()

    @property
    def has_phonemes(self) -> bool:
        return any(p.ipa is not None for p in self.pieces)


@dataclass
class _Marks:
    """The phoneme pieces of one request, indexed by their mark character."""

    pieces: list[Piece] = field(default_factory=list)

    def add(self, ipa: str, text: str) -> str:
        if len(self.pieces) >= _MARK_LIMIT - _MARK_BASE:
            raise EngineError("too many phoneme entries in one input", param="input")
        self.pieces.append(Piece(text=text, ipa=ipa))
        return f" {chr(_MARK_BASE + len(self.pieces) - 1)} "

    def split(self, text: str) -> list[Piece]:
        """A segment's text → word pieces and phoneme pieces, in order (a mark this request did not make,
        from a lexicon's text, is dropped)."""
        pieces: list[Piece] = []
        start = 0
        for m in _MARK.finditer(text):
            if text[start:m.start()].strip():
                pieces.append(Piece(text[start:m.start()].strip()))
            if ord(m.group(0)) - _MARK_BASE < len(self.pieces):
                pieces.append(self.pieces[ord(m.group(0)) - _MARK_BASE])
            start = m.end()
        if text[start:].strip():
            pieces.append(Piece(text[start:].strip()))
        return pieces


#: model options and request ``extra`` fields the text frontend reads: lexicon files, date locale,
#: normalization on/off, how the first segment is cut
TEXT_OPTIONS = ("lexicon", "locale", "normalize", "first_segment")


@dataclass(frozen=True)
class RequestText:
    """The text options one request asked for in ``extra`` (validated)."""

    normalize: bool = True
    locale: str | None = None
    lexicon: Lexicon = field(default_factory=Lexicon)
    #: "phrase", "clause" or "sentence" (None: the engine's setting)
    first_segment: str | None = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any] | None) -> RequestText:
        """Read ``normalize`` (bool), ``locale`` (str), ``lexicon`` (object) and ``first_segment``
        ("phrase", "clause", "sentence"); EngineError(param="extra")."""
        extra = extra or {}
        value = extra.get("normalize", True)
        if not isinstance(value, bool):
            raise EngineError("'extra.normalize' must be true or false", param="extra")
        locale = extra.get("locale")
        if locale is not None and (not isinstance(locale, str) or not _LOCALE.fullmatch(locale)):
            raise EngineError("'extra.locale' must be a language tag such as 'en-GB'", param="extra")
        try:
            lexicon = request_lexicon(extra.get("lexicon"))
        except ValueError as exc:
            raise EngineError(str(exc), param="extra") from None
        first = extra.get("first_segment")
        if first is not None and first not in FIRST_SEGMENT_MODES:
            raise EngineError(f"'extra.first_segment' must be one of {', '.join(map(repr, FIRST_SEGMENT_MODES))}",
                              param="extra")
        return cls(value, locale, lexicon, first)


class TextFrontend:
    """One engine's text frontend: its default language, locale, lexicon files and segment limits.

    ``multilingual``: detect the language when a request names none, from the script, and for Latin-script
    text with a language model (:mod:`.language_detect`), among ``languages`` (the model's declared ones)
    when given; unsure, it is the engine's language. A monolingual voice always reads its own language.
    ``phonemes``: the engine can take IPA pieces; without it the pieces' words are read instead.
    """

    def __init__(self, language: str = "en", *, locale: str | None = None, lexicons: LexiconSet | None = None,
                 normalize: bool = True, multilingual: bool = False, phonemes: bool = True,
                 languages: Sequence[str] | None = None, max_chars: int = 400, first_max_chars: int = 100,
                 first_segment: str = "phrase") -> None:
        if first_segment not in FIRST_SEGMENT_MODES:
            raise ValueError(f"first_segment must be one of {', '.join(FIRST_SEGMENT_MODES)}")
        self.language = base_language(language) or "en"
        self.locale = locale or (language if "-" in language else None)
        self.lexicons = lexicons or LexiconSet(None, self.language)
        self.normalize_enabled = normalize
        self.multilingual = multilingual
        self.languages = [base_language(lang) for lang in languages] if languages else None
        self.phonemes = phonemes
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars
        self.first_segment = first_segment

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, language: str, **kwargs: Any) -> TextFrontend:
        """Build from a model's options: ``lexicon`` (path or {lang: path}), ``locale``, ``normalize``,
        ``first_segment``."""
        options = options or {}
        try:
            lexicons = LexiconSet(options.get("lexicon"), base_language(language) or "en")
        except (OSError, ValueError) as exc:
            raise ValueError(f"lexicon: {exc}") from exc
        first = options.get("first_segment", "phrase")
        if first not in FIRST_SEGMENT_MODES:
            raise ValueError(f"first_segment: expected one of {', '.join(FIRST_SEGMENT_MODES)}, got {first!r}")
        return cls(language, locale=options.get("locale"), lexicons=lexicons,
                   normalize=bool(options.get("normalize", True)), first_segment=first, **kwargs)

    def reload(self) -> dict[str, int]:
        """Re-read the lexicon files now (the admin route's hook); entries per language."""
        return self.lexicons.reload()

    def language_for(self, text: str, requested: str | None) -> str:
        """The language to read ``text`` in: the request's, else the script's (multilingual engines),
        else the engine's."""
        if requested:
            return base_language(requested) or self.language
        if self.multilingual:
            guess = detect_text_language(text, self.languages)
            if guess:
                return guess
            return self.language if self.languages else detect_language(text, self.language)
        return self.language

    def normalize(self, text: str, language: str | None = None, locale: str | None = None) -> str:
        """Plain text → spoken text with this frontend's lexicon (phonemes shown as /ipa/): for
        ``vtts normalize`` and the debug route."""
        segments = self.process(text, language=language, extra={"locale": locale} if locale else None,
                                first_max_chars=0)
        return " ".join(" ".join(f"/{p.ipa}/" if p.ipa is not None else p.text for p in s.pieces)
                        for s in segments)

    def process(self, text: str, *, language: str | None = None, extra: Mapping[str, Any] | None = None,
                max_chars: int | None = None, first_max_chars: int | None = None, speed: float = 1.0,
                max_audio_s: float = 0.0, gap_s: float = 0.0, first_max_tokens: int = 0,
                count_tokens: Callable[[str], int] | None = None) -> list[TextSegment]:
        """Text or SSML → segments. EngineError (param "input" or "extra") for what the client got wrong, and
        (code "audio_too_long") when ``max_audio_s`` > 0 and the estimated audio at ``speed`` (with ``gap_s``
        of silence between segments) is longer: checked before any synthesis, so one request cannot make
        hours of audio.

        The first segment is cut short (its synthesis time is the time to first audio): to
        ``first_max_chars`` characters, then, with ``count_tokens``, at clause marks to ``first_max_tokens``
        of the engine's own units (e.g. Kokoro's phonemes; phonemes given as IPA are not counted)."""
        request = RequestText.from_extra(extra)
        surrogate = _SURROGATE.search(text)
        if surrogate:
            raise EngineError(f"'input' has a lone surrogate (U+{ord(surrogate.group(0)):04X}) at character "
                              f"{surrogate.start()}: not valid Unicode text", param="input")
        # the marks below are code points of Private Use Area-A: an input's own have no reading, drop them
        text = _MARK.sub(" ", text)
        spans = ssml.parse(text) if ssml.is_ssml(text) else [ssml.Span(text=text)]
        lang = self.language_for(" ".join(s.text for s in spans), language)
        locale = request.locale or (self.locale if lang == self.language else None)
        lexicon = self.lexicons.get(lang).merged(request.lexicon)
        marks = _Marks()
        max_chars = max_chars or self.max_chars
        first = self.first_max_chars if first_max_chars is None else first_max_chars
        count = None if count_tokens is None else (lambda piece: count_tokens(_MARK.sub(" ", piece)))
        segments: list[TextSegment] = []
        pause = 0
        blocks, trailing = _blocks(spans)
        for block, rate, pause_before in blocks:
            pause += pause_before
            words = "".join(self._span_text(s, lang, locale, lexicon, marks, request.normalize) for s in block)
            words = _SPACE_BEFORE_MARK.sub("", words)
            for piece in split_segments(words, max_chars, first if not segments else 0, lang,
                                        request.first_segment or self.first_segment, first_max_tokens, count):
                pieces = marks.split(piece)
                if not pieces:
                    continue
                segments.append(TextSegment(pieces, lang, rate, pause_before_ms=pause))
                pause = 0
        pause += trailing
        if segments and pause:
            segments[-1].pause_after_ms += pause
        if max_audio_s > 0:
            check_audio_length(segments, speed, max_audio_s, gap_s)
        return segments

    def _span_text(self, span: ssml.Span, lang: str, locale: str | None, lexicon: Lexicon, marks: _Marks,
                   normalize_on: bool) -> str:
        """One span's spoken text, phonemes replaced by marks; keeps the span's outer spacing so words
        of neighbouring spans stay apart."""
        lead = " " if span.text[:1].isspace() else ""
        trail = " " if span.text[-1:].isspace() else ""
        if span.ipa is not None:
            return " " + (marks.add(span.ipa, span.text) if self.phonemes else span.text) + " "
        if span.say_as is not None:
            kind, fmt, _ = span.say_as
            return lead + say_as(span.text, kind, fmt, lang, locale) + " " + trail

        def ipa(phonemes: str, word: str) -> str:
            return marks.add(phonemes, word) if self.phonemes else word

        text = lexicon.apply(span.text, "written", ipa) if lexicon else span.text
        if normalize_on and self.normalize_enabled:
            text = normalize(text, lang, locale)
        if lexicon:
            text = lexicon.apply(text, "spoken", ipa)
        return lead + text + trail


def estimate_seconds(segments: list[TextSegment], speed: float = 1.0, gap_s: float = 0.0) -> float:
    """Seconds of audio ``segments`` will make at ``speed``: their characters at a normal speaking rate
    (divided by each segment's SSML rate), their pauses, and ``gap_s`` between segments, all divided by
    ``speed`` (pauses scale with speed too: speed is a playback-rate multiplier)."""
    total = 0.0
    for i, segment in enumerate(segments):
        chars = "".join(p.ipa if p.ipa is not None else p.text for p in segment.pieces)
        syllables = len(_SYLLABLE.findall(chars))
        speech = ((len(chars) - syllables) / CHARS_PER_SECOND + syllables / SYLLABLES_PER_SECOND) / segment.rate
        total += speech + (segment.pause_before_ms + segment.pause_after_ms) / 1000 + (gap_s if i else 0.0)
    return total / speed


def check_audio_length(segments: list[TextSegment], speed: float, limit_s: float, gap_s: float = 0.0) -> None:
    """EngineError ``audio_too_long`` (param "input") when the estimated audio is over ``limit_s``."""
    estimate = estimate_seconds(segments, speed, gap_s)
    if estimate > limit_s:
        raise EngineError(f"the input would make about {estimate:.0f} s of audio (pauses included, at speed "
                          f"{speed:g}); the limit is {limit_s:g} s", param="input", code="audio_too_long")


def _blocks(spans: list[ssml.Span]) -> tuple[list[tuple[list[ssml.Span], float, int]], int]:
    """Group spans into runs that can share segments: a break, a sentence/paragraph edge or a change of
    rate starts a new run. Returns [(spans, rate, pause before in ms)] and the pause after the last run."""
    blocks: list[tuple[list[ssml.Span], float, int]] = []
    current: list[ssml.Span] = []
    rate = 1.0
    pause = 0
    for span in spans:
        if span.break_ms or (not span.text and span.ipa is None and span.say_as is None):
            if current:
                blocks.append((current, rate, pause))
                current, pause = [], 0
            pause += span.break_ms
            continue
        if current and (span.boundary or span.rate != rate):
            blocks.append((current, rate, pause))
            current, pause = [], 0
        if not current:
            rate = span.rate
        current.append(span)
    if current:
        blocks.append((current, rate, pause))
        pause = 0
    return blocks, pause

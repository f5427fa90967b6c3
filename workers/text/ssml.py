"""SSML input (a ``<speak>`` document) → a flat list of spans the text frontend turns into segments.

Supported: ``speak``, ``p``, ``s``, ``break`` (time | strength), ``prosody`` (rate; pitch and volume are
ignored and logged once), ``say-as`` (characters, spell-out, cardinal, number, ordinal, digits, date,
time, telephone), ``sub`` (alias), ``phoneme`` (alphabet="ipa"); ``emphasis``, ``mark`` and ``lang`` are
accepted and their content read plainly. Anything else, and malformed XML, raises :class:`SSMLError`
naming the element and its line and column.

Parsing is safe by construction: the stdlib's expat with no DTD allowed at all (so no entity
declarations, no external entities, no network, no "billion laughs"), a nesting limit, and the request's
own size limit upstream.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from xml.parsers import expat

from vtts.workers.engine import EngineError

log = logging.getLogger(__name__)

MAX_DEPTH = 32
#: longest single pause, in milliseconds: SSML's own longest (x-strong) is about a second, so ten is ample
#: for any reading, and every pause also counts towards the request's ``max_audio_seconds``
MAX_BREAK_MS = 10_000
BREAK_STRENGTHS = {"none": 0, "x-weak": 100, "weak": 250, "medium": 400, "strong": 700, "x-strong": 1000}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
MIN_RATE, MAX_RATE = 0.25, 4.0
SAY_AS = frozenset({"characters", "spell-out", "cardinal", "number", "ordinal", "digits", "date", "time",
                    "telephone", "verbatim"})
_PLAIN_CONTAINERS = frozenset({"emphasis", "mark", "lang", "speak", "p", "s", "prosody"})
_IGNORED_ONCE: set[str] = set()


class SSMLError(EngineError):
    """Malformed or unsupported SSML: the client's fault, a 400 naming the element and where it is."""

    def __init__(self, message: str) -> None:
        super().__init__(f"SSML: {message}", param="input", code="invalid_ssml")


@dataclass(frozen=True)
class Span:
    """One run of the document.

    ``text``: words to read (normalized later), or the fallback words of a ``phoneme``; ``ipa``: phonemes to
    say instead; ``say_as``: (interpret-as, format, detail) for text the frontend converts itself;
    ``break_ms``: a pause (such a span has no text); ``boundary``: a sentence or paragraph edge before it;
    ``rate``: speaking-rate factor (1 = normal)."""

    text: str = ""
    ipa: str | None = None
    say_as: tuple[str, str, str] | None = None
    break_ms: int = 0
    boundary: bool = False
    rate: float = 1.0


@dataclass
class _Frame:
    name: str
    rate: float
    collect: list[str] | None = None  # say-as, sub, phoneme gather their own text
    attrs: dict[str, str] = field(default_factory=dict)


def is_ssml(text: str) -> bool:
    """Whether ``text`` is an SSML document: its root is ``<speak``, after an optional XML declaration
    (a DOCTYPE also counts, so that the parser rejects it rather than the voice reading it out)."""
    head = text.lstrip()
    if head.startswith(("<?xml", "<!DOCTYPE")):
        return "<speak" in head
    return head.startswith("<speak") and head[6:7] in {">", " ", "\t", "\n", "\r", "/"}


def _ignored(what: str) -> None:
    """Log an unsupported-but-harmless feature once per process, not per request."""
    if what not in _IGNORED_ONCE:
        _IGNORED_ONCE.add(what)
        log.warning("SSML %s is not supported by this engine and is ignored", what)


def parse_time(value: str) -> int:
    """"500ms", "1.5s", "2s" → milliseconds; ValueError otherwise. Absurd lengths ("9…9s", which float
    reads as infinity) come back as a huge finite number for the caller's limit to reject."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
    if not m:
        raise ValueError(value)
    amount = float(m.group(1))
    return round(min(amount * (1000 if m.group(2) == "s" else 1), 2.0**53))


def parse_rate(value: str) -> float:
    """"slow", "150%", "+20%", "-10%", "1.2" → a factor; ValueError otherwise."""
    value = value.strip().lower()
    if value in RATE_WORDS:
        return RATE_WORDS[value]
    m = re.fullmatch(r"([+-])?(\d+(?:\.\d+)?)(%)?", value)
    if not m:
        raise ValueError(value)
    number = float(m.group(2))
    if m.group(3):
        factor = 1 + (number / 100 if m.group(1) == "+" else -number / 100) if m.group(1) else number / 100
    else:
        factor = 1 + number if m.group(1) == "+" else 1 - number if m.group(1) == "-" else number
    if factor <= 0:
        raise ValueError(value)
    return factor


class _Parser:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.stack: list[_Frame] = []
        self.pending_boundary = False
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._entity
        self.parser.ExternalEntityRefHandler = self._external
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text

    # -- errors ------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"line {self.parser.CurrentLineNumber}, column {self.parser.CurrentColumnNumber + 1}"

    def _fail(self, message: str) -> None:
        raise SSMLError(f"{message} at {self._where()}")

    def _doctype(self, *args: object) -> None:
        self._fail("a DOCTYPE is not allowed")

    def _entity(self, *args: object) -> None:
        self._fail("entity declarations are not allowed")

    def _external(self, *args: object) -> int:
        self._fail("external entities are not allowed")
        return 0

    # -- elements ----------------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        return self.stack[-1].rate if self.stack else 1.0

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self._fail(f"<{name}> nests deeper than {MAX_DEPTH} elements")
        if not self.stack and name != "speak":
            self._fail(f"the root element must be <speak>, not <{name}>")
        if self.stack and self.stack[-1].collect is not None:
            self._fail(f"<{name}> is not allowed inside <{self.stack[-1].name}>")
        handler = getattr(self, "_start_" + name.replace("-", "_"), None)
        if handler is None and name not in _PLAIN_CONTAINERS:
            self._fail(f"unsupported element <{name}>")
        frame = _Frame(name, self.rate, attrs=dict(attrs))
        if handler is not None:
            handler(frame, attrs)
        elif name in {"emphasis", "mark", "lang"}:
            _ignored(f"<{name}>")
        self.stack.append(frame)

    def _end(self, name: str) -> None:
        frame = self.stack.pop()
        handler = getattr(self, "_end_" + name.replace("-", "_"), None)
        if handler is not None:
            handler(frame)

    def _text(self, data: str) -> None:
        if not self.stack:
            return
        frame = self.stack[-1]
        if frame.collect is not None:
            frame.collect.append(data)
        elif frame.name == "break":
            if data.strip():
                self._fail("<break> must be empty")
        elif data:
            self._add(Span(text=data, rate=frame.rate))

    def _add(self, span: Span) -> None:
        if self.pending_boundary:
            span = replace(span, boundary=True)
            self.pending_boundary = False
        self.spans.append(span)

    def _start_p(self, frame: _Frame, attrs: dict[str, str]) -> None:
        self.pending_boundary = True

    _start_s = _start_p

    def _end_p(self, frame: _Frame) -> None:
        self.pending_boundary = True

    _end_s = _end_p

    def _start_break(self, frame: _Frame, attrs: dict[str, str]) -> None:
        if "time" in attrs:
            shown = attrs["time"] if len(attrs["time"]) <= 20 else attrs["time"][:20] + "…"
            try:
                ms = parse_time(attrs["time"])
            except ValueError:
                self._fail(f"<break time={shown!r}> is not a duration like '500ms' or '1.5s'")
            if ms > MAX_BREAK_MS:
                self._fail(f"<break time={shown!r}> is longer than {MAX_BREAK_MS // 1000}s")
        else:
            strength = attrs.get("strength", "medium")
            if strength not in BREAK_STRENGTHS:
                self._fail(f"<break strength={strength!r}> is not one of {', '.join(BREAK_STRENGTHS)}")
            ms = BREAK_STRENGTHS[strength]
        self.spans.append(Span(break_ms=ms, rate=self.rate))

    def _start_prosody(self, frame: _Frame, attrs: dict[str, str]) -> None:
        for other in sorted(set(attrs) - {"rate"}):
            _ignored(f"<prosody {other}>")
        if "rate" in attrs:
            try:
                rate = parse_rate(attrs["rate"])
            except ValueError:
                self._fail(f"<prosody rate={attrs['rate']!r}> is not a rate (x-slow..x-fast, 150%, +20%, 1.2)")
            frame.rate = min(MAX_RATE, max(MIN_RATE, self.rate * rate))

    def _start_say_as(self, frame: _Frame, attrs: dict[str, str]) -> None:
        kind = attrs.get("interpret-as", "")
        if kind not in SAY_AS:
            self._fail(f"<say-as interpret-as={kind!r}> is not one of {', '.join(sorted(SAY_AS))}")
        frame.collect = []

    def _end_say_as(self, frame: _Frame) -> None:
        text = "".join(frame.collect or [])
        a = frame.attrs
        self._add(Span(text=text, say_as=(a["interpret-as"], a.get("format", ""), a.get("detail", "")),
                       rate=frame.rate))

    def _start_sub(self, frame: _Frame, attrs: dict[str, str]) -> None:
        if not attrs.get("alias", "").strip():
            self._fail("<sub> needs an alias attribute")
        frame.collect = []

    def _end_sub(self, frame: _Frame) -> None:
        self._add(Span(text=" " + frame.attrs["alias"] + " ", rate=frame.rate))

    def _start_phoneme(self, frame: _Frame, attrs: dict[str, str]) -> None:
        alphabet = attrs.get("alphabet", "ipa")
        if alphabet != "ipa":
            self._fail(f"<phoneme alphabet={alphabet!r}> is not supported (use alphabet=\"ipa\")")
        if not attrs.get("ph", "").strip():
            self._fail("<phoneme> needs a ph attribute")
        frame.collect = []

    def _end_phoneme(self, frame: _Frame) -> None:
        self._add(Span(text="".join(frame.collect or []).strip(), ipa=frame.attrs["ph"].strip(), rate=frame.rate))

    def parse(self, document: str) -> list[Span]:
        try:
            self.parser.Parse(document, True)
        except expat.ExpatError as exc:
            reason = expat.errors.messages.get(exc.code, str(exc))
            raise SSMLError(f"malformed XML ({reason}) at line {exc.lineno}, column {exc.offset + 1}") from None
        return self.spans


def parse(document: str) -> list[Span]:
    """The spans of an SSML document, in reading order; :class:`SSMLError` for bad or unsupported markup."""
    return _Parser().parse(document)

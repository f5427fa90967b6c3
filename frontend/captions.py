"""Word timings as captions: character offsets into the client's text, and ``json``, ``srt`` and ``vtt`` answers.

Engines time the words they spoke (``extra.timestamps``) and name them as the client wrote them; the
frontend finds each word in the request's ``input`` (in order, within a short window, so a word the text
frontend rewrote — a number read aloud — is skipped rather than matched far ahead) and adds
``char_start``/``char_end``, so a player can highlight the original text. Cues group the words as subtitles
do: at most ``MAX_CUE_CHARS`` characters and ``MAX_CUE_S`` seconds, and a cue ends after a sentence's end.
SRT and WebVTT files are written by the ``srt`` and ``webvtt-py`` libraries.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

import srt
import webvtt

#: the formats answered with captions instead of an audio stream (vTTS extensions)
CAPTION_FORMATS = ("json", "srt", "vtt")
#: a caption's length, as subtitle guidelines have it (two lines of about 42 characters at most)
MAX_CUE_CHARS = 84
MAX_CUE_S = 6.0
#: how far ahead of the last matched word the next one is looked for, in characters
SEARCH_WINDOW = 200
SENTENCE_ENDS = (".", "!", "?", "…", "。", "！", "？")
#: what may follow a sentence's mark inside the same word: closing quotes and brackets
CLOSING = "\"'”’»)]」』）"


def _casefolded(text: str) -> str:
    """``text`` lower-cased character by character, keeping every index (``str.lower`` can lengthen a
    string: 'İ' becomes two characters)."""
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)


@dataclass
class OffsetFinder:
    """Adds ``char_start``/``char_end`` (into ``text``) to word timings as they arrive, in order."""

    text: str
    cursor: int = 0
    _folded: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._folded = _casefolded(self.text)

    def add(self, words: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for word in words:
            word = dict(word)
            name = str(word.get("word", ""))
            if name:
                end = min(len(self.text), self.cursor + SEARCH_WINDOW + len(name))
                at = self.text.find(name, self.cursor, end)
                if at < 0:
                    at = self._folded.find(_casefolded(name), self.cursor, end)
                if at >= 0:
                    word["char_start"], word["char_end"] = at, at + len(name)
                    self.cursor = at + len(name)
            out.append(word)
        return out


@dataclass
class Cue:
    start: float
    end: float
    text: str


def cues(words: list[dict[str, Any]], text: str, duration: float) -> list[Cue]:
    """Subtitle cues from timed words; without any (an engine that cannot time words), one cue with the
    whole text over the whole audio.

    A cue ends after a sentence: a word whose name ends with its mark, or (engines that strip punctuation,
    as Piper and Kokoro do) a mark in the client's text between two found words. Cues show the client's
    text between their boundaries (its punctuation, its digits: "$42", not "forty two dollars"); a cue
    whose place in the text is unknown (no word of it found, or SSML input) shows the words as named."""
    if not words:
        whole = " ".join(text.split())
        return [Cue(0.0, duration, whole)] if whole else []
    groups: list[list[dict[str, Any]]] = [[]]
    #: where each group's text begins in ``text`` (None: unknown)
    begins: list[int | None] = [0]
    prev_end: int | None = None

    def close(begin_next: int | None) -> None:
        if groups[-1]:
            groups.append([])
            begins.append(begin_next)

    for word in words:
        start = word.get("char_start")
        if start is not None and prev_end is not None and prev_end <= start:
            mark = _sentence_mark(text, prev_end, start)
            if mark is not None:
                close(_after_punctuation(text, mark))
        current = groups[-1]
        if current:
            text_len = sum(len(str(w["word"])) + 1 for w in current) + len(str(word["word"]))
            if text_len > MAX_CUE_CHARS or float(word["end"]) - float(current[0]["start"]) > MAX_CUE_S:
                close(start)
        groups[-1].append(word)
        if start is not None:
            prev_end = word["char_end"]
        if str(word.get("word", "")).rstrip(CLOSING).endswith(SENTENCE_ENDS):
            close(_after_punctuation(text, prev_end) if start is not None else None)
    if not groups[-1]:
        groups.pop()
        begins.pop()
    marked_up = text.lstrip().startswith("<")
    out = []
    for i, group in enumerate(groups):
        begin, end = begins[i], begins[i + 1] if i + 1 < len(begins) else len(text)
        shown = " ".join(text[begin:end].split()) if None not in (begin, end) and begin < end else ""
        if marked_up or not shown:
            shown = " ".join(str(w["word"]) for w in group)
        out.append(Cue(float(group[0]["start"]), float(group[-1]["end"]), shown))
    return out


def _sentence_mark(text: str, start: int, end: int) -> int | None:
    """The index of the last sentence-ending mark in ``text[start:end]``, if any."""
    found = max(text.rfind(mark, start, end) for mark in SENTENCE_ENDS)
    return found if found >= 0 else None


def _after_punctuation(text: str, end: int) -> int:
    """The index after the punctuation that follows ``end`` ("world." → after the period, '"Hi!"' → after
    the quote), up to the next space or word."""
    while end < len(text) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return end


def _delta(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=max(0.0, round(seconds, 3)))


def to_srt(items: list[Cue]) -> str:
    return srt.compose([srt.Subtitle(i, _delta(c.start), _delta(c.end), c.text) for i, c in enumerate(items, 1)],
                       reindex=False)


def to_vtt(items: list[Cue]) -> str:
    def stamp(seconds: float) -> str:
        return srt.timedelta_to_srt_timestamp(_delta(seconds)).replace(",", ".")

    return webvtt.WebVTT(captions=[webvtt.Caption(stamp(c.start), stamp(c.end), c.text) for c in items]).content


def caption_body(fmt: str, words: list[dict[str, Any]], text: str, duration: float, audio: bytes = b"",
                 audio_format: str = "mp3") -> tuple[bytes, str]:
    """(body, content type) of a ``json``, ``srt`` or ``vtt`` answer."""
    if fmt == "json":
        body = {"audio": base64.b64encode(audio).decode("ascii"), "format": audio_format,
                "duration": round(duration, 3), "words": words}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), "application/json"
    items = cues(words, text, duration)
    if fmt == "srt":
        return to_srt(items).encode(), "application/x-subrip; charset=utf-8"
    return to_vtt(items).encode(), "text/vtt; charset=utf-8"

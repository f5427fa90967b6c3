"""Supertonic's text side: languages per model version, normalization, and unicode ids.

Supertonic has no phonemizer: the graphs read one id per character, looked up by code point in
``unicode_indexer.json`` (``-1`` = the model never saw it). The text must be normalized the way the model's
training text was, or the voice mispronounces it, so :func:`normalize` follows the reference package's
preprocessing rule for rule (NFKD, emoji removal, symbol folding, spacing, a closing period). Multilingual
models (2 and 3) read the language as tags around the text: ``<ko>…</ko>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from ..engine import EngineError

#: language codes each model version was trained on; version 3 adds "na" for text of an unknown language
LANGUAGES: dict[int, tuple[str, ...]] = {
    1: ("en",),
    2: ("en", "ko", "es", "pt", "fr"),
    3: ("en", "ko", "ja", "ar", "bg", "cs", "da", "de", "el", "es", "et", "fi", "fr", "hi", "hr", "hu", "id",
        "it", "lt", "lv", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "tr", "uk", "vi", "na"),
}
#: languages whose characters carry more speech each, so their segments are kept shorter (as upstream does)
DENSE_LANGUAGES = frozenset({"ko", "ja"})

_EMOJI = re.compile(
    "[\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f700-\U0001f77f\U0001f780-\U0001f7ff"
    "\U0001f800-\U0001f8ff\U0001f900-\U0001f9ff\U0001fa00-\U0001fa6f\U0001fa70-\U0001faff\u2600-\u26ff"
    "\u2700-\u27bf\U0001f1e6-\U0001f1ff]+"
)
#: one character -> its replacement (dashes to "-", curly quotes to straight ones, brackets and bars to space);
#: a ``None`` deletes the character
_FOLD = str.maketrans({
    "\u2013": "-", "\u2011": "-", "\u2014": "-", "\u00af": " ", "_": " ",
    "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00b4": "'", "`": "'",
    "[": " ", "]": " ", "|": " ", "/": " ", "#": " ", "\u2192": " ", "\u2190": " ",
    "\u2665": None, "\u2606": None, "\u2661": None, "\u00a9": None, "\\": None,
})
_EXPRESSIONS = (("@", " at "), ("e.g.,", "for example, "), ("i.e.,", "that is, "))
_SPACE_BEFORE_MARK = re.compile(r" ([,.!?;:'])")
_REPEATED_QUOTE = re.compile(r"([\"'`])\1+")
_SPACES = re.compile(r"\s+")
_CLOSED = re.compile(r"[.!?;:,'\")\]}\u2026\u3002\u300d\u300f\u3011\u3009\u300b\u203a\u00bb]$")


def normalize(text: str) -> str:
    """The text as the model was trained to read it (before language tags)."""
    text = unicodedata.normalize("NFKD", text)
    text = _EMOJI.sub("", text).translate(_FOLD)
    for old, new in _EXPRESSIONS:
        text = text.replace(old, new)
    text = _SPACE_BEFORE_MARK.sub(r"\1", text)
    text = _REPEATED_QUOTE.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    if not _CLOSED.search(text):
        text += "."
    return text


def tagged(text: str, language: str | None) -> str:
    """Normalized text, wrapped in ``<lang>`` tags for multilingual models (``language`` None: version 1)."""
    body = normalize(text)
    return body if language is None else f"<{language}>{body}</{language}>"


def language_code(requested: str | None, default: str, version: int) -> str:
    """The model's code for a request's language ("en-US", "EN" and "en_us" all mean "en"); EngineError
    naming the language and the supported ones when the model was not trained on it."""
    code = (requested or default).strip().replace("_", "-").split("-")[0].lower()
    supported = LANGUAGES[version]
    if code not in supported:
        raise EngineError(
            f"language {requested or default!r} is not supported by Supertonic {version}; "
            f"supported: {', '.join(supported)}",
            param="language", code="unsupported_language",
        )
    return code


class Indexer:
    """``unicode_indexer.json``: code point -> model id."""

    def __init__(self, table: Sequence[int]) -> None:
        self.table = np.asarray(table, dtype=np.int64)

    def covers(self, char: str) -> bool:
        cp = ord(char)
        return cp < self.table.size and self.table[cp] >= 0

    def ids(self, text: str, original: str) -> np.ndarray:
        """Ids of already tagged ``text``; EngineError naming the characters of ``original`` (the client's
        text) that the model cannot read, rather than speaking around them."""
        bad = {c for c in text if not self.covers(c)}
        if bad:
            culprits = sorted({c for c in original if bad & set(normalize(c))} or bad)
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in culprits[:10])
            raise EngineError(f"the model cannot read these characters: {shown}", param="input",
                              code="unsupported_character")
        return self.table[np.fromiter((ord(c) for c in text), dtype=np.int64, count=len(text))]

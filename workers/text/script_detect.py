"""Guess a text's language from its writing system, for multilingual engines given no language.

Scripts settle most cases without a model: Hangul is Korean, kana is Japanese (Japanese text mixes kana
into its kanji; Chinese has none), Han without kana is Chinese. Latin text is the caller's default
(English unless told otherwise): telling English from French needs more than the script.
"""

from __future__ import annotations

#: (first code point, last code point, script)
_RANGES = (
    (0x0041, 0x005A, "latin"), (0x0061, 0x007A, "latin"), (0x00C0, 0x024F, "latin"),
    (0x0370, 0x03FF, "greek"), (0x0400, 0x04FF, "cyrillic"), (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0900, 0x097F, "devanagari"), (0x0E00, 0x0E7F, "thai"),
    (0x1100, 0x11FF, "hangul"), (0x3040, 0x309F, "kana"), (0x30A0, 0x30FF, "kana"), (0x3130, 0x318F, "hangul"),
    (0x31F0, 0x31FF, "kana"), (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"), (0xAC00, 0xD7AF, "hangul"),
    (0xF900, 0xFAFF, "han"), (0xFF66, 0xFF9F, "kana"),
)
_LANGUAGE_OF_SCRIPT = {"hangul": "ko", "kana": "ja", "han": "zh", "cyrillic": "ru", "greek": "el",
                       "hebrew": "he", "arabic": "ar", "devanagari": "hi", "thai": "th"}


def script_of(char: str) -> str | None:
    """The script of one character, or None for digits, punctuation and symbols."""
    code = ord(char)
    if code < 0x41:
        return None
    for low, high, script in _RANGES:
        if low <= code <= high:
            return script
    return None


def script_counts(text: str) -> dict[str, int]:
    """How many letters of each script ``text`` holds."""
    counts: dict[str, int] = {}
    for char in text:
        script = script_of(char)
        if script:
            counts[script] = counts.get(script, 0) + 1
    return counts


def detect_language(text: str, default: str = "en") -> str:
    """"ko", "ja", "zh", "ru", ... from the dominant script; ``default`` for Latin text or none at all."""
    counts = script_counts(text)
    if not counts:
        return default
    if counts.get("kana"):
        cjk = counts.get("kana", 0) + counts.get("han", 0)
        if cjk >= counts.get("hangul", 0) and cjk >= counts.get("latin", 0) / 4:
            return "ja"
    script = max(counts, key=lambda s: counts[s] * (1 if s == "latin" else 2))  # one CJK sign ~ two letters
    return _LANGUAGE_OF_SCRIPT.get(script, default)

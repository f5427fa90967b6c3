"""SSML ``<say-as>``: the author says how to read a piece of text, per language.

English and Korean have readings for every ``interpret-as`` value; other languages read the text as
written until they get rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import normalize_en, normalize_ko, numbers_en, numbers_ko
from .segment import base_language

_PARTS = re.compile(r"\d+")


def _spell_en(text: str) -> str:
    """"abc1" → "A-B-C-one": letters as capitals joined by hyphens (so a phonemizer names each letter
    instead of reading a word, and "A" is not the article), digits as words."""
    tokens = []
    for char in text:
        if char.isdigit():
            tokens.append(numbers_en.DIGIT_WORDS[char])
        elif char.isalpha():
            tokens.append(char.upper())
    return "-".join(tokens)


def _spell_ko(text: str) -> str:
    out = []
    for char in text:
        if char.isdigit():
            out.append(numbers_ko.SINO_DIGITS[int(char)])
        elif char.upper() in normalize_ko.LATIN_NAMES:
            out.append(normalize_ko.LATIN_NAMES[char.upper()])
        elif not char.isspace():
            out.append(char)
    return " ".join(out)


def _date_parts(text: str, fmt: str, month_first: bool) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) from digits in ``text`` read by an SSML date format ("mdy", "dmy", "ymd", "md"...)."""
    numbers = [int(p) for p in _PARTS.findall(text)]
    fields = fmt or ("ymd" if _PARTS.findall(text)[:1] and len(_PARTS.findall(text)[0]) == 4
                     else "mdy" if month_first else "dmy")
    fields = fields[: len(numbers)]
    values = dict(zip(fields, numbers, strict=False))
    return values.get("y"), values.get("m"), values.get("d")


def _telephone(text: str, say_digits: Callable[[str], str]) -> str:
    groups = _PARTS.findall(text)
    return ("plus " if text.lstrip().startswith("+") else "") + ", ".join(say_digits(g) for g in groups)


def say_as_en(text: str, kind: str, fmt: str, locale: str | None) -> str:
    text = text.strip()
    plain = text.replace(",", "")
    if kind in {"characters", "spell-out", "verbatim"}:
        return _spell_en(text)
    if kind in {"cardinal", "number"} and re.fullmatch(r"-?\d+(?:\.\d+)?", plain):
        return ("minus " if plain.startswith("-") else "") + normalize_en.say_number(plain.lstrip("-"))
    if kind == "ordinal" and re.fullmatch(r"\d+(?:st|nd|rd|th)?", plain):
        return numbers_en.ordinal(int(re.sub(r"\D", "", plain)))
    if kind == "digits":
        return numbers_en.digits(text)
    if kind == "telephone":
        return _telephone(text, numbers_en.digits)
    if kind == "date":
        loc = normalize_en.EnglishLocale.parse(locale)
        y, m, d = _date_parts(text, fmt, loc.month_first)
        month_first = fmt.index("m") < fmt.index("d") if "m" in fmt and "d" in fmt else loc.month_first
        if m and 1 <= m <= 12 and (d is None or 1 <= d <= 31):
            return normalize_en.say_date(m, d, y, month_first)
        if y and not m and not d:
            return numbers_en.year(y)
    return normalize_en.normalize(text, locale)


def say_as_ko(text: str, kind: str, fmt: str) -> str:
    text = text.strip()
    plain = text.replace(",", "")
    if kind in {"characters", "spell-out", "verbatim"}:
        return _spell_ko(text)
    if kind in {"cardinal", "number"} and re.fullmatch(r"-?\d+(?:\.\d+)?", plain):
        return ("마이너스 " if plain.startswith("-") else "") + normalize_ko.say(plain.lstrip("-"))
    if kind == "ordinal" and plain.isdigit():
        return "첫 번째" if plain == "1" else f"{numbers_ko.native(int(plain))} 번째"
    if kind == "digits":
        return numbers_ko.sino_digits(text, zero="영")
    if kind == "telephone":
        return _telephone(text, numbers_ko.sino_digits)
    if kind == "date":
        y, m, d = _date_parts(text, fmt or "ymd", False)
        parts = [f"{numbers_ko.sino(y)} 년" if y else "", numbers_ko.month(m) if m else "",
                 f"{numbers_ko.sino(d)} 일" if d else ""]
        return " ".join(p for p in parts if p)
    return normalize_ko.normalize(text)


def say_as(text: str, kind: str, fmt: str, language: str, locale: str | None = None) -> str:
    """The spoken form of ``text`` under ``<say-as interpret-as=kind format=fmt>`` in ``language``."""
    lang = base_language(language)
    if lang == "en":
        return say_as_en(text, kind, fmt, locale)
    if lang == "ko":
        return say_as_ko(text, kind, fmt)
    return text

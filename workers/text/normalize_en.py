"""English written form → spoken form.

Rules run as ordered regular-expression passes, most specific first, because later rules would misread
what earlier ones recognise: an e-mail address before its dots become "dot", a phone number before its
groups become cardinals, a date before "03/04" becomes a fraction, money and units before bare numbers.
Each pass is one C-level scan, so the whole costs a few microseconds per character.

The locale decides what differs between English-speaking regions: whether "03/04/2025" is March 4th
(en-US, en-CA, en-PH) or 3 April (others).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import abbreviations_en, units_en
from .markup import clean
from .numbers_en import ONES, cardinal, decade, decimal, digits, fraction, house_number, number, ordinal, year

MONTHS = "January February March April May June July August September October November December".split()
_MONTH_KEYS = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
#: regions that write the month first in numeric dates
MONTH_FIRST_REGIONS = frozenset({"US", "CA", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "UM", "VI"})


@dataclass(frozen=True)
class EnglishLocale:
    """What the locale changes: numeric date order."""

    month_first: bool = True

    @classmethod
    def parse(cls, locale: str | None) -> EnglishLocale:
        """"en-GB" → day first; "en-US", "en" or None → month first."""
        region = (locale or "").replace("_", "-").partition("-")[2].upper()
        return cls(month_first=not region or region in MONTH_FIRST_REGIONS)


NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_NUM_RE = re.compile(rf"^(?:{NUM})$")
# any case: "jan", "JAN", "Sept." are all month names before or after a day number
_MONTH = (r"(?P<month>(?i:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?))")
#: lower-case month names that are also common words: a date only with a year or an ordinal day
_WORD_MONTHS = frozenset({"may", "mar", "march", "jan", "jun", "dec", "sat"})


def say_number(text: str) -> str:
    """Any written number: "1,234" cardinal, "3.5" decimal, "007" digit by digit."""
    return decimal(text) if "." in text else number(text)


def _is_one(text: str) -> bool:
    return text.replace(",", "") == "1"


def _keeps_period(match: re.Match[str]) -> bool:
    """Whether a match that swallowed a final period also ended the sentence (the period must stay)."""
    rest = match.string[match.end():]
    return match.group(0).endswith(".") and (not rest.strip() or rest[:1] in " \n" and rest.lstrip()[:1].isupper())


# --------------------------------------------------------------------------- web addresses

_EMAIL = re.compile(r"(?<![\w.+&-])[\w.+&-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?:/[\w./-]*\w)?(?<!\.)")
_URL = re.compile(
    r"(?<![\w@/])(?:(?:https?|ftp|file)://|www\.)[^\s<>\"']+?(?=[.,;:!?)\]]*(?:\s|$))"
    r"|(?<![\w@/.-])[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|io|ai|dev|gov|edu|app|info|co"
    r"|uk|us|de|fr|jp|kr|cn|eu|ca|au|me|tv|ly)(?:/[^\s<>\"']*?)?(?=[.,;:!?)\]]*(?:\s|$))"
)
_WEB_SYMBOLS = {".": " dot ", "/": " slash ", "-": " dash ", "_": " underscore ", "@": " at ", ":": " colon ",
                "?": " question mark ", "=": " equals ", "&": " ampersand ", "#": " hash ", "+": " plus ",
                "~": " tilde ", "%": " percent "}
_WEB_TOKEN = re.compile(r"[./\-_@:?=&#+~%]|\d+|[^./\-_@:?=&#+~%\d]+")


def say_web(address: str) -> str:
    """Speak an address symbol by symbol, digits one by one, as people read them out."""
    out = []
    for token in _WEB_TOKEN.findall(address):
        if token in _WEB_SYMBOLS:
            out.append(_WEB_SYMBOLS[token])
        elif token.isdigit():
            out.append(" " + digits(token) + " ")
        elif token.lower() == "www":
            out.append("W-W-W")
        else:
            out.append(token)
    return re.sub(r" +", " ", "".join(out)).strip()


def _url(match: re.Match[str]) -> str:
    return say_web(re.sub(r"^(?:https?|ftp|file)://", "", match.group(0)).rstrip("/"))


# --------------------------------------------------------------------------- phone numbers and codes

_PHONE = re.compile(
    r"(?<![\w+/.-])(?:(?P<plus>\+)(?P<cc>\d{1,3})[\s.-]?)?(?:(?P<one>1)[\s.-])?"
    r"(?:\((?P<area>\d{2,4})\)[\s-]?|(?P<area2>\d{3})[\s.-])(?P<a>\d{3})[\s.-](?P<b>\d{4})(?:-(?P<ext>\d{1,5}))?"
    r"(?:,?\s?(?:x|ext\.?|extension)\s?(?P<xt>\d{1,5}))?(?![\w-])"
    r"|(?<![\w+])\+(?P<icc>\d{1,3})(?:\s?\(0\)\s?|[\s.-])(?P<rest>\d{1,5}(?:[\s.-]\d{1,5}){1,4})(?![\w-])"
    r"|(?<![\w+/.,-])(?P<l1>\d{3})-(?P<l2>\d{4})(?![\w-])"
    r"|(?<![\w+/.,-])(?P<s1>\d{3})-(?P<s2>\d{2})-(?P<s3>\d{4})(?![\w-])"  # US social security number
)
_IP = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_CODE_WORDS = re.compile(r"\b((?i:code|pin|zip|account|acct|card|extension|ext|flight|serial|order|ticket|"
                         r"tracking|confirmation|booking|reference|ref|seat|room|gate|suite)|ID)"
                         r"(\.?:?\s+(?:is\s+|number\s+|no\.\s*)?#?)"
                         # digits; an airline-style prefix and digits ("UA 857"); letters and digits mixed
                         r"(\d{3,}|[A-Z]{1,3}-?\s?\d{1,5}[A-Z]?|(?=[A-Z0-9]*\d)[A-Z][A-Z0-9]{1,11})\b")
_HASH_NUMBER = re.compile(r"(?<![\w&])#(?=\d)")


def _phone(match: re.Match[str]) -> str:
    """Digit by digit, a comma pause per group: "(555) 123-4567" → "five five five, one two three, ..."."""
    if match.group("icc"):  # "+44 (0)20 ...": the trunk zero in brackets is not dialled from abroad
        groups = [match.group("icc")] + re.split(r"[\s.-]", match.group("rest").strip(" .-"))
        return "plus " + ", ".join(digits(g) for g in groups if g)
    groups = [match.group(k) for k in ("cc", "one", "area", "area2", "a", "b", "ext", "l1", "l2", "s1", "s2", "s3")
              if match.group(k)]
    spoken = ("plus " if match.group("plus") else "") + ", ".join(digits(g) for g in groups)
    return spoken + (f", extension {digits(match.group('xt'))}" if match.group("xt") else "")


def _code(match: re.Match[str]) -> str:
    """A code after the word that names it, character by character: "flight BA2490" → "B-A two four nine zero"."""
    parts = re.findall(r"\d+|[A-Z]+", match.group(3))
    spoken = " ".join(digits(p) if p.isdigit() else "-".join(p) for p in parts)
    return f"{match.group(1)}{match.group(2).rstrip('#').replace(':', '')}{spoken}"


# --------------------------------------------------------------------------- dates and times


def _month_number(name: str) -> int:
    return _MONTH_KEYS[name[:3].lower()]


def _full_year(text: str) -> int:
    value = int(text)
    if len(text) == 2:
        value += 2000 if value < 50 else 1900
    return value


def say_date(month: int, day: int | None, year_: int | str | None, month_first: bool) -> str:
    """"January fifth, twenty twenty-six" (month first) or "the fifth of January, twenty twenty-six"."""
    name = MONTHS[month - 1]
    if day is None:
        text = name
    elif month_first:
        text = f"{name} {ordinal(day)}"
    else:
        text = f"the {ordinal(day)} of {name}"
    if year_ is None:
        return text
    return f"{text}, {year_ if isinstance(year_, str) else year(year_)}"


def short_year(text: str) -> str:
    """A two-digit year as written: "98" → "ninety-eight", "05" → "oh five", "00" → "two thousand"."""
    value = int(text)
    if value == 0:
        return year(2000)
    return f"oh {ONES[value]}" if value < 10 else cardinal(value)


_ISO_DATE = re.compile(r"(?<![\w.,/-])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})\b(?![-/]\d|\.\d)")
_NUMERIC_DATE = re.compile(r"(?<![\d/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/-]|\.\d)")
_NAMED_DATE = re.compile(
    rf"\b{_MONTH}\.?(?:\s+|-)(?P<day>\d{{1,2}})(?P<suffix>st|nd|rd|th)?\b(?!:|\.\d)"
    rf"(?:(?:,\s*|\s+|-)(?P<year>\d{{4}})\b)?"
)
_DAY_FIRST_DATE = re.compile(
    rf"(?:\bthe\s+)?\b(?P<day>\d{{1,2}})(?P<suffix>st|nd|rd|th)?(?:\s+|-)(?:of\s+)?{_MONTH}\b\.?"
    rf"(?:(?:,\s*|\s+|-)(?P<year>\d{{4}})\b)?"
)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\.?,?\s+(?P<year>\d{{4}})\b")


def _iso_date(match: re.Match[str], loc: EnglishLocale) -> str:
    y, m, d = (int(g) for g in match.group(1, 3, 4))
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return match.group(0)
    return say_date(m, d, y, loc.month_first)


def _numeric_date(match: re.Match[str], loc: EnglishLocale) -> str:
    a, sep, b, y = match.groups()
    spoken_year: int | str = _full_year(y) if len(y) == 4 or y == "00" else short_year(y)
    first, second = int(a), int(b)
    month_first = loc.month_first
    if first > 12 >= second:
        month_first = False
    elif second > 12 >= first:
        month_first = True
    month, day = (first, second) if month_first else (second, first)
    if not (1 <= month <= 12 and 1 <= day <= 31) or (sep == "." and len(y) == 2):
        return match.group(0)
    return say_date(month, day, spoken_year, month_first)


def _named_date(match: re.Match[str], day_first: bool) -> str:
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return match.group(0)
    if match.group("month") in _WORD_MONTHS and not (match.group("year") or match.group("suffix")):
        return match.group(0)
    y = match.group("year")
    spoken = say_date(_month_number(match.group("month")), day, int(y) if y else None, not day_first)
    return spoken + ("." if _keeps_period(match) else "")


#: time zones said letter by letter after a time ("5 pm EST", "11:30 GMT", "1:59 p.m. e.s.t.")
TIME_ZONES = ("EST EDT CST CDT MST MDT PST PDT AKST AKDT HST GMT UTC BST CET CEST EET EEST IST JST KST "
              "AEST AEDT ACST AWST NZST NZDT SGT HKT ET CT MT PT").split()
_ZONE = ("(?:\\s?(?P<tz>(?i:" + "|".join(r"\.?".join(z) for z in sorted(TIME_ZONES, key=len, reverse=True))
         + r")\.?)(?![A-Za-z]))?")
_TIME_AMPM = re.compile(r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s?(?P<ap>[AaPp])\.?\s?[Mm]"
                        r"(?![A-Za-z])\.?" + _ZONE)
_TIME_24 = re.compile(r"(?<![\d:.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?![\d:]|\.\d)" + _ZONE)
#: "9-5pm", "4:00 am - 8:12 pm": a dash between two times is "to"
_TIME_RANGE_START = re.compile(r"(?<![\w.:-])(\d{1,2}(?::\d\d)?)\s?[-–]\s?(?=\d{1,2}(?::\d\d)?\s?[AaPp]\.?\s?[Mm]\b)")
_TIME_RANGE = re.compile(r"(?<=[AP]-M)((?: [A-Z](?:-[A-Z])+\b(?!-))?)\s?[-–]\s?(?=\w)")
_RATIO = re.compile(r"(?<![\w:.])(\d+):(\d+)(?![\w:]|\.\d)")


def _minutes(m: int) -> str:
    return f"oh {cardinal(m)}" if m < 10 else cardinal(m)


def _time_ampm(match: re.Match[str]) -> str:
    h = int(match.group("h"))
    m = int(match.group("m") or 0)
    if not (0 < h <= 12 and m < 60):
        return match.group(0)
    spoken = cardinal(h) + (f" {_minutes(m)}" if m else "")
    if match.group("s"):
        spoken += (" o'clock" if not m else "") + f" and {cardinal(int(match.group('s')))} seconds"
    spoken += " A-M" if match.group("ap") in "Aa" else " P-M"
    return spoken + _zone(match) + ("." if _keeps_period(match) and not match.group("tz") else "")


def _zone(match: re.Match[str]) -> str:
    zone = match.group("tz")
    if not zone:
        return ""
    return " " + "-".join(zone.replace(".", "").upper()) + ("." if zone.endswith(".") and _keeps_period(match) else "")


def _time_24(match: re.Match[str]) -> str:
    h, m = int(match.group("h")), int(match.group("m"))
    if match.group("s"):  # a clock read to the second: "fourteen hours ten minutes and thirty seconds"
        return (f"{cardinal(h)} {'hour' if h == 1 else 'hours'} {cardinal(m)} {'minute' if m == 1 else 'minutes'}"
                f" and {cardinal(int(match.group('s')))} seconds") + _zone(match)
    if m == 0:
        spoken = f"{cardinal(h)} o'clock" if 0 < h <= 12 else f"{cardinal(h)} hundred"
    else:
        spoken = f"{cardinal(h)} {_minutes(m)}" if h else f"zero {_minutes(m)}"
    return spoken + _zone(match)


# --------------------------------------------------------------------------- money

#: currency -> (one, many, cent one, cent many); None cents: no minor unit in speech
CURRENCIES: dict[str, tuple[str, str, str | None, str | None]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "US$": ("US dollar", "US dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", None, None),
    "₩": ("won", "won", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
    "USD": ("dollar", "dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "JPY": ("yen", "yen", None, None),
    "KRW": ("won", "won", None, None),
}
MAGNITUDES = {
    "k": "thousand", "K": "thousand", "thousand": "thousand", "m": "million", "M": "million", "mn": "million",
    "million": "million", "b": "billion", "B": "billion", "bn": "billion", "billion": "billion",
    "t": "trillion", "T": "trillion", "tn": "trillion", "trillion": "trillion",
}
_MAG = r"(?:\s?(?P<magw>thousand|million|billion|trillion)\b|\s?(?P<mag>bn|mn|tn|[kKmMbBtT])\b)?"
#: a price per something: "$350/yr", "$4/kg", "€2 per hour"
_PER = r"(?:\s?/\s?(?P<per>[A-Za-z]+))?"
_MONEY_BEFORE = re.compile(
    rf"(?<![\w$€£¥₩₹])(?P<neg>-)?(?P<cur>(?:US\$|[$€£¥₩₹]|USD|EUR|GBP|JPY|KRW)\s?)"
    rf"(?P<a>{NUM})(?:\s?(?:-|–|to)\s?(?P<cur2>US\$|[$€£¥₩₹])?(?P<b>{NUM}))?{_MAG}{_PER}"
)
_MONEY_AFTER = re.compile(rf"(?<![\w.])(?P<a>{NUM})\s?(?P<cur>[€£¥₩]|USD|EUR|GBP|JPY|KRW)(?!\w)")
_CENTS = re.compile(rf"(?<![\w.])(?P<a>{NUM})\s?¢")


def say_money(amount: str, currency: str, magnitude: str | None = None) -> str:
    """"5.50", "$" → "five dollars and fifty cents"; with a magnitude: "two point five million dollars"."""
    one, many, cent_one, cent_many = CURRENCIES[currency.strip()]
    if magnitude:
        return f"{say_number(amount)} {MAGNITUDES[magnitude]} {many}"
    whole, _, frac = amount.replace(",", "").partition(".")
    if len(frac) > 2 and not frac[2:].strip("0"):  # "$20.500" is $20.50
        frac = frac[:2]
    if frac and (cent_one is None or len(frac) > 2):
        return f"{decimal(amount)} {many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    whole_n = int(whole or 0)
    parts = []
    if whole_n or not cents:
        parts.append(f"{number(whole or '0')} {one if whole_n == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {cent_one if cents == 1 else cent_many}")
    return " and ".join(parts)


def _money_before(match: re.Match[str]) -> str:
    cur, a, b = match.group("cur"), match.group("a"), match.group("b")
    mag = match.group("magw") or match.group("mag")
    if b and "." in a and not mag:  # "$50.00-$100.00": both amounts in full
        spoken = f"{say_money(a, cur)} to {say_money(b, cur)}"
    else:
        spoken = f"{say_number(a)} to {say_money(b, cur, mag)}" if b else say_money(a, cur, mag)
    per = match.group("per")
    if per:
        word = units_en.per(per)
        spoken += f" per {word}" if word else f"/{per}"
    return ("minus " if match.group("neg") else "") + spoken


# --------------------------------------------------------------------------- units

#: unit -> (singular, plural): the table of units_en (SI prefixes, powers); composites "A/B" come on top
UNITS = units_en.UNITS
_UNIT = re.compile(rf"(?<![\w.$€£¥₩₹])(?P<neg>[-–])?(?P<a>{NUM})(?:\s?(?:-|–|to)\s?(?P<b>{NUM}))?"
                   rf"(?:\s(?P<mag>thousand|million|billion|trillion))?"
                   rf"\s?(?P<unit>{units_en.UNIT_PATTERN})(?![\w²³/])\.?")
#: a number then a closing double quote with no opening one before it: inches ('a 12" pizza')
_INCHES = re.compile(rf"(?<![\w.])({NUM})(?:\"|″|”)(?!\w)")
_FEET_INCHES = re.compile(r"\b(\d{1,2})(?:'\s?|\s?ft\.?\s)(\d{1,2})(?:\"|''|”|\s?in\b(?:\.(?=\s+[a-z]))?)")


def _unit(match: re.Match[str]) -> str:
    unit, a, b = match.group("unit"), match.group("a"), match.group("b")
    if unit == "°" and match.string[match.end():match.end() + 1].isalpha():
        return match.group(0)
    one, many = units_en.lookup(unit) or (unit, unit)
    spoken = f"{say_number(a)} to {say_number(b)}" if b else say_number(a)
    if match.group("mag"):
        spoken += " " + match.group("mag")
    if match.group("neg"):
        spoken = "minus " + spoken
    spoken += " " + (one if _is_one(b or a) and not match.group("mag") else many)
    return spoken + ("." if _keeps_period(match) else "")


def _inches(match: re.Match[str]) -> str:
    if match.string.count('"', 0, match.start()) % 2:  # the quote closes one opened before
        return match.group(0)
    return f"{say_number(match.group(1))} {'inch' if _is_one(match.group(1)) else 'inches'}"


def _feet_inches(match: re.Match[str]) -> str:
    feet, inches = int(match.group(1)), int(match.group(2))
    return (f"{cardinal(feet)} {'foot' if feet == 1 else 'feet'} "
            f"{cardinal(inches)} {'inch' if inches == 1 else 'inches'}")


# --------------------------------------------------------------------------- plain numbers

_MULTIPLY = re.compile(rf"(?<![\w.])({NUM})\s?([x×])\s?({NUM})(?:\s?(?P<unit>{units_en.UNIT_PATTERN}))?(?!\w|\.\d)")
_STAR = re.compile(rf"(?<![\w.])({NUM})\s?\*\s?({NUM})(?!\w|\.\d)")
#: a minus between numbers of an equation ("1-2=5")
_EQUATION_MINUS = re.compile(rf"(?<![\w.-])({NUM})\s?-\s?({NUM})(?=\s?=)")
_TIMES = re.compile(rf"(?<![\w.])({NUM})x(?![\w])")
_ORDINAL = re.compile(r"\b(\d{1,3}(?:,\d{3})*|\d+)(st|nd|rd|th)\b")
_DECADE_RANGE = re.compile(r"(?<![\w'’])(\d{4}s)\s?[-–]\s?(?=\d{4}s\b)")
_DECADE = re.compile(r"(?<![\w'’])['’]?(\d{2}|1\d{3}|20\d{2})['’]?s\b")
_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5),
           "⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8)}
_VULGAR_RE = re.compile(r"(?:(?<!\d)(\d+)\s?)?([" + "".join(_VULGAR) + "])")
_MIXED_FRACTION = re.compile(r"(?<![\w/.])(\d+) (\d+)/(\d+)(?![\w/])")
_FRACTION = re.compile(r"(?<![\w/.])(\d+)/(\d+)(?i:st|nd|rd|th)?(?![\w/]|\.\d)")
_FRACTION_TH = re.compile(r"(?<![\w/.])(\d+)/(\d+)(?i:st|nd|rd|th)\b")
_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+){2,})(?!\w|\.\d)")
_RANGE = re.compile(rf"(?<![\w.-])({NUM})\s?[-–]\s?({NUM})(?![\w-]|\.\d)")
_NEGATIVE = re.compile(rf"(?<![\w.])[-–]({NUM})(?![\w])")
_YEAR_WORDS = (r"in|since|by|from|until|till|of|year|circa|c\.|before|after|during|early|late|mid|spring|summer|"
               r"autumn|fall|winter|around|through|to|and|or|between|" + "|".join(MONTHS))
_YEAR_CONTEXT = re.compile(rf"\b(?:{_YEAR_WORDS}),? $", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\w.,$-])(1[1-9]\d\d|20\d\d)(?!\d|,\d|\.\d)(?!\s?(?:%|percent))")
#: a house number before a street name is said in pairs: "1428 Elm St." → "fourteen twenty-eight Elm Street"
_HOUSE_NUMBER = re.compile(
    r"\b(\d{3,4})(?= (?:[NSEW]\.? |North |South |East |West )?(?:[A-Z][a-z]+ |\d+(?:st|nd|rd|th) )+"
    r"(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Way|Ct|Court|Pl|Place|Hwy|Highway|Pkwy|Parkway)"
    r"\b)")
_YEAR_ERA = re.compile(r"\b(\d{1,4})\s?(BC|AD|BCE|CE|B\.C\.?|A\.D\.?)(?=\W|$)")
#: fiscal quarters: "2Q22", "3Q2024" → "the second quarter of twenty twenty-two"
_QUARTER = re.compile(r"\b([1-4])Q(\d{2}|\d{4})\b")
_NUMBER = re.compile(NUM)
_ALNUM = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])([A-Za-z\d]+)\b")


def _ordinal(match: re.Match[str]) -> str:
    """"21st" → "twenty-first"; a suffix that does not fit the number ("4rd") is read as written letters."""
    n = int(match.group(1).replace(",", ""))
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    if match.group(2) != suffix:
        return f"{number(match.group(1))} {match.group(2)}"
    return ordinal(n)


def _multiply(match: re.Match[str]) -> str:
    """"2x8" → "two by eight", "25 x 7 m" → "twenty-five by seven meters", "3 × 4" → "three times four"."""
    spoken = f"{say_number(match.group(1))} {'times' if match.group(2) == '×' else 'by'} {say_number(match.group(3))}"
    unit = match.group("unit")
    if unit:
        names = units_en.lookup(unit)
        spoken += " " + (names[0] if _is_one(match.group(3)) else names[1]) if names else " " + unit
    return spoken


def _decade(match: re.Match[str]) -> str:
    value = int(match.group(1))
    return decade(value) if value % 10 == 0 else match.group(0)


def _and_fraction(num: int, den: int) -> str:
    """"and a half", "and three quarters"."""
    spoken = fraction(num, den)
    return "a " + spoken.split(" ", 1)[1] if num == 1 and " over " not in spoken else spoken


def _vulgar(match: re.Match[str]) -> str:
    num, den = _VULGAR[match.group(2)]
    if match.group(1):
        return f"{number(match.group(1))} and {_and_fraction(num, den)}"
    return fraction(num, den)


def _fraction(match: re.Match[str]) -> str:
    num, den = int(match.group(1)), int(match.group(2))
    if (num, den) == (24, 7):
        return "twenty-four seven"
    return fraction(num, den)


def _is_yearish(text: str) -> bool:
    return text.isdigit() and len(text) == 4 and 1100 <= int(text) <= 2099


def _range(match: re.Match[str]) -> str:
    a, b = match.groups()
    if _is_yearish(a) and (_is_yearish(b) or (len(b) == 2 and b.isdigit())):  # "1960-80": the years
        return f"{year(int(a))} to {year(int(b)) if len(b) == 4 else number(b)}"
    return f"{say_number(a)} to {say_number(b)}"


def _year(match: re.Match[str]) -> str:
    """Four digits read as a year after a word that introduces one ("in 1984", "since 2010"), at the start,
    or before a sentence mark; otherwise as a number ("1984 people")."""
    start, end = match.span()
    after = match.string[end:end + 1]
    if start == 0 or after in ".,;:!?)" or _YEAR_CONTEXT.search(match.string, max(0, start - 12), start):
        return year(int(match.group(1)))
    return match.group(0)


def _alnum(match: re.Match[str]) -> str:
    """Mixed letter-digit tokens: "MP3" → "MP three", "B2B" → "B two B"; codes with many parts are
    spelled, and long digit runs go digit by digit."""
    parts = re.findall(r"\d+|[A-Za-z]+", match.group(1))
    if len(parts) > 4:
        return " ".join(digits(p) if p.isdigit() else "-".join(p.upper()) for p in parts)
    spoken = []
    for p in parts:
        if p.isdigit():
            spoken.append(digits(p) if len(p) > 3 or p.startswith("0") else cardinal(int(p)))
        else:  # a short capital run is letters ("BA2490", "A7X"), spelled; a longer or lower-case one a word
            spoken.append("-".join(p) if p.isupper() and len(p) <= 3 else p)
    return " ".join(spoken)


# --------------------------------------------------------------------------- cheap checks that skip passes

_URL_HINT = re.compile(r"://|www\.|\.(?:com|org|net|io|ai|dev|gov|edu|app|info|co|uk|us|de|fr|jp|kr|cn|eu|ca|au|me|tv"
                       r"|ly)\b")
_DIGITS3 = re.compile(r"\d\d\d")
_MONTH_HINT = re.compile(r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)", re.IGNORECASE)
_CURRENCY_HINT = re.compile(r"[$€£¥₩₹¢]|USD|EUR|GBP|JPY|KRW")
_TIMES_HINT = re.compile(r"\d ?[x×]")
_ALNUM_HINT = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")


# --------------------------------------------------------------------------- symbols

_SYMBOLS = [
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=\w)\+\+"), " plus plus"),
    (re.compile(r"\s*\+\s*(?=[\w(])"), " plus "),
    (re.compile(r"\s+=\s+|(?<=\w)=(?=\w)"), " equals "),
    (re.compile(r"\s*×\s*"), " times "),
    # "15 cm x 20 cm": after units are read, an "x" between a unit and a number is "by"
    (re.compile(r"\b(" + "|".join(sorted({w for names in UNITS.values() for w in (names[0].split()[-1],
                                                                                 names[1].split()[-1])}))
                + r") x (?=(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen"
                r"|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|point)\b)"), r"\1 by "),
    (re.compile(r"\s*÷\s*"), " divided by "),
    (re.compile(r"\s*±\s*"), " plus or minus "),
    (re.compile(r"(?<![\w])~\s?(?=\w)"), "about "),
    (re.compile(r"(?<![\w&])#(?=[A-Za-z])"), "hashtag "),
    (re.compile(r"(?<=\s)@(?=\s)"), "at"),
    (re.compile(r"(?<![\w.])@(?=\w)"), "at "),
    (re.compile(r"\s*(?:->|→)\s*"), " to "),
    (re.compile(r"\s+<\s+"), " less than "),
    (re.compile(r"\s+>\s+"), " greater than "),
    (re.compile(r"\s*%(?=\w)"), " percent "),
    (re.compile(r"\s*%"), " percent"),
    # a currency sign with no amount, a lone hash or at sign: their names
    (re.compile(r"\s*\$\s*"), " dollar "), (re.compile(r"\s*€\s*"), " euro "), (re.compile(r"\s*£\s*"), " pound "),
    (re.compile(r"\s*¥\s*"), " yen "), (re.compile(r"\s*₩\s*"), " won "), (re.compile(r"\s*₹\s*"), " rupee "),
    (re.compile(r"\b([A-G])#"), r"\1 sharp"), (re.compile(r"\s*#\s*"), " hash "), (re.compile(r"\s*@\s*"), " at "),
    (re.compile(r"§\s*"), "section "),
    (re.compile(r"\s*©\s*"), " copyright "),
    (re.compile(r"[®™]"), ""),
    # "and/or", "he/she": the alternatives said one after the other; other words: the slash is said
    (re.compile(r"\b(and|either|he|his|him|s)/(or|she|her|he)\b", re.IGNORECASE), r"\1 \2"),
    (re.compile(r"(?<=[A-Za-z])\s?/\s?(?=[A-Za-z])|(?:^|(?<=\s))/(?=\s|$|[^\w\s])"), " slash "),
    (re.compile(r"[*_^|\\]+"), " "),
    (re.compile(r"\s*°"), " degrees"),
]
_MULTI_SPACE = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_MARK = re.compile(r" +([,.;:!?])(?=\s|$)")


def _symbols(text: str) -> str:
    for pattern, spoken in _SYMBOLS:
        text = pattern.sub(spoken, text)
    text = _MULTI_SPACE.sub(" ", text)
    return _SPACE_BEFORE_MARK.sub(r"\1", text).strip()


# --------------------------------------------------------------------------- the pipeline


def normalize(text: str, locale: str | None = None) -> str:
    """English written text → what a person reads aloud. ``locale`` like "en-GB" sets the date order."""
    loc = EnglishLocale.parse(locale)
    text = clean(text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: say_web(m.group(0)), text)
    if _URL_HINT.search(text):
        text = _URL.sub(_url, text)
    if not any(c.isdigit() for c in text):
        return _symbols(abbreviations_en.expand(text))
    if _DIGITS3.search(text):
        text = _PHONE.sub(_phone, text)
    text = _CODE_WORDS.sub(_code, text)
    if "." in text:
        text = _IP.sub(lambda m: " dot ".join(digits(g) for g in m.groups()), text)
    text = _HASH_NUMBER.sub("number ", text)
    text = _ISO_DATE.sub(lambda m: _iso_date(m, loc), text)
    text = _NUMERIC_DATE.sub(lambda m: _numeric_date(m, loc), text)
    if _MONTH_HINT.search(text):
        text = _NAMED_DATE.sub(lambda m: _named_date(m, False), text)
        text = _DAY_FIRST_DATE.sub(lambda m: _named_date(m, True), text)
        text = _MONTH_YEAR.sub(lambda m: f"{MONTHS[_month_number(m.group('month')) - 1]} "
                                         f"{year(int(m.group('year')))}", text)
    text = _QUARTER.sub(lambda m: f"the {ordinal(int(m.group(1)))} quarter of "
                              f"{short_year(m.group(2)) if len(m.group(2)) == 2 else year(int(m.group(2)))}", text)
    text = _TIME_RANGE_START.sub(r"\1 to ", text)
    text = _TIME_AMPM.sub(_time_ampm, text)
    if ":" in text:
        text = _TIME_24.sub(_time_24, text)
        text = _RATIO.sub(lambda m: f"{number(m.group(1))} to {number(m.group(2))}", text)
    if "-M" in text:
        text = _TIME_RANGE.sub(r"\1 to ", text)
    if _CURRENCY_HINT.search(text):
        text = _MONEY_BEFORE.sub(_money_before, text)
        text = _MONEY_AFTER.sub(lambda m: say_money(m.group("a"), m.group("cur")), text)
        text = _CENTS.sub(lambda m: f"{say_number(m.group('a'))} {'cent' if _is_one(m.group('a')) else 'cents'}",
                          text)
    text = _FEET_INCHES.sub(_feet_inches, text)
    if '"' in text or "″" in text or "”" in text:
        text = _INCHES.sub(_inches, text)
    if _TIMES_HINT.search(text):
        text = _MULTIPLY.sub(_multiply, text)
        text = _TIMES.sub(lambda m: f"{say_number(m.group(1))} times", text)
    if "*" in text:
        text = _STAR.sub(lambda m: f"{say_number(m.group(1))} times {say_number(m.group(2))}", text)
    text = _UNIT.sub(_unit, text)
    text = _HOUSE_NUMBER.sub(lambda m: house_number(m.group(1)), abbreviations_en.addresses(text))
    text = abbreviations_en.expand(text)
    text = _YEAR_ERA.sub(lambda m: f"{year(int(m.group(1)))} {'-'.join(m.group(2).replace('.', ''))}", text)
    text = _VERSION.sub(lambda m: " point ".join(number(p) for p in m.group(1).split(".")), text)
    if "/" in text:
        text = _FRACTION_TH.sub(_fraction, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = _DECADE_RANGE.sub(r"\1 to ", text)
    text = _DECADE.sub(_decade, text)
    text = _VULGAR_RE.sub(_vulgar, text)
    text = _MIXED_FRACTION.sub(lambda m: f"{number(m.group(1))} and "
                                         f"{_and_fraction(int(m.group(2)), int(m.group(3)))}", text)
    if "/" in text:
        text = _FRACTION.sub(_fraction, text)
    if "=" in text:
        text = _EQUATION_MINUS.sub(lambda m: f"{say_number(m.group(1))} minus {say_number(m.group(2))}", text)
    text = _RANGE.sub(_range, text)
    text = _NEGATIVE.sub(lambda m: "minus " + say_number(m.group(1)), text)
    text = _YEAR.sub(_year, text)
    if _ALNUM_HINT.search(text):
        text = _ALNUM.sub(_alnum, text)
    text = _NUMBER.sub(lambda m: say_number(m.group(0)), text)
    return _symbols(text)


def is_number(text: str) -> bool:
    """Whether ``text`` is a written number this module reads ("1,234", "3.5", ".5")."""
    return bool(_NUM_RE.match(text))

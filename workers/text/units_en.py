"""English unit symbols: a table built from base units and the SI prefixes each takes, plus powers ("km²",
"m2") and composites ("km/h", "mg/kg", "m/s²").

Built rather than listed so that every prefixed form reads the same way ("µs", "ns", "kPa" come with "s" and
"Pa"), and looked up case-insensitively only where the lower-case spelling names one unit ("KG" is kg, but
"mb" could be MB or Mb and is left alone).
"""

from __future__ import annotations

import re

#: prefix symbol -> word
PREFIXES = {"P": "peta", "T": "tera", "G": "giga", "M": "mega", "k": "kilo", "K": "kilo", "h": "hecto",
            "d": "deci", "c": "centi", "m": "milli", "µ": "micro", "μ": "micro", "u": "micro", "n": "nano"}
#: base symbol -> (singular, plural, prefixes it takes; "" none)
BASE: dict[str, tuple[str, str, str]] = {
    "m": ("meter", "meters", "kcmµμun"), "g": ("gram", "grams", "kmµμu"), "s": ("second", "seconds", "mµμun"),
    "L": ("liter", "liters", "mcd"), "W": ("watt", "watts", "kMGTm"), "V": ("volt", "volts", "km"),
    "A": ("amp", "amps", "mkµμ"), "Hz": ("hertz", "hertz", "kMGT"), "B": ("byte", "bytes", "kKMGTP"),
    "b": ("bit", "bits", "kKMGT"), "bps": ("bit per second", "bits per second", "kKMGT"),
    "Pa": ("pascal", "pascals", "khM"), "J": ("joule", "joules", "kM"), "N": ("newton", "newtons", "k"),
    "Ω": ("ohm", "ohms", "kM"), "cal": ("calorie", "calories", "k"), "Wh": ("watt hour", "watt hours", "kMGT"),
    "Ah": ("amp hour", "amp hours", "m"), "eV": ("electronvolt", "electronvolts", "kMG"),
    "mol": ("mole", "moles", "mµμn"), "bar": ("bar", "bars", "m"), "t": ("tonne", "tonnes", ""),
}
#: symbols never read alone after a number: they are words or labels there ("5 A" is a grade, "80 s" a decade,
#: "2 t", "3 b", "4 N") — they read as units only with a prefix or inside a composite
NOT_ALONE = frozenset({"s", "A", "B", "b", "N", "t", "J", "bar", "mol", "T", "h"})
#: units that take no prefix
PLAIN: dict[str, tuple[str, str]] = {
    "ft": ("foot", "feet"), "yd": ("yard", "yards"), "mi": ("mile", "miles"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"), "gal": ("gallon", "gallons"),
    "qt": ("quart", "quarts"), "fl oz": ("fluid ounce", "fluid ounces"), "fl. oz.": ("fluid ounce", "fluid ounces"),
    "tsp": ("teaspoon", "teaspoons"), "tbsp": ("tablespoon", "tablespoons"), "Tbsp": ("tablespoon", "tablespoons"),
    "tbs": ("tablespoon", "tablespoons"), "doz": ("dozen", "dozen"), "pkg": ("package", "packages"),
    "mph": ("mile per hour", "miles per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mpg": ("mile per gallon", "miles per gallon"), "sec": ("second", "seconds"), "secs": ("second", "seconds"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"), "wk": ("week", "weeks"), "yr": ("year", "years"),
    "yrs": ("year", "years"), "mo": ("month", "months"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℃": ("degree Celsius", "degrees Celsius"), "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "° C": ("degree Celsius", "degrees Celsius"), "° F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"), "dB": ("decibel", "decibels"),
    "bpm": ("beat per minute", "beats per minute"), "rpm": ("revolution per minute", "revolutions per minute"),
    "px": ("pixel", "pixels"), "ha": ("hectare", "hectares"), "fps": ("frame per second", "frames per second"),
    "dpi": ("dot per inch", "dots per inch"), "ppi": ("pixel per inch", "pixels per inch"),
    "psi": ("pound per square inch", "pounds per square inch"), "mAh": ("milliamp hour", "milliamp hours"),
    "cc": ("cubic centimeter", "cubic centimeters"),
    "%": ("percent", "percent"), "ppm": ("part per million", "parts per million"),
    "sq ft": ("square foot", "square feet"), "sq mi": ("square mile", "square miles"),
    "cu ft": ("cubic foot", "cubic feet"),
}
#: the lengths that take powers: "m²"/"m2" square, "m³"/"m3" cubic
LENGTHS = ("m", "km", "cm", "mm", "ft", "mi", "yd")
#: what can follow "/" in a composite ("km/h", "$/kg", "mg/kg"): any unit, plus these
PER_ONLY: dict[str, str] = {"d": "day", "in": "inch", "day": "day", "week": "week", "month": "month", "year": "year",
                            "hour": "hour", "ea": "each", "person": "person", "night": "night", "unit": "unit",
                            "sq ft": "square foot"}

UNITS: dict[str, tuple[str, str]] = {}
for _sym, (_one, _many, _prefixes) in BASE.items():
    if _sym not in NOT_ALONE:
        UNITS[_sym] = (_one, _many)
    for _p in _prefixes:
        UNITS.setdefault(_p + _sym, (PREFIXES[_p] + _one, PREFIXES[_p] + _many))
UNITS.update(PLAIN)
UNITS["l"] = ("liter", "liters")
for _sym in LENGTHS:
    _one, _many = UNITS[_sym]
    for _marks, _word in ((("²", "2"), "square"), (("³", "3"), "cubic")):
        for _mark in _marks:
            UNITS[_sym + _mark] = (f"{_word} {_one}", f"{_word} {_many}")
#: every unit that may stand in a composite's denominator (singular), including the alone-forbidden ones
_DENOMINATORS: dict[str, str] = {**{k: v[0] for k, v in UNITS.items()}, "s": "second", "t": "tonne", "A": "amp",
                                 "N": "newton", "J": "joule", "mol": "mole", "s²": "second squared",
                                 "s2": "second squared", **PER_ONLY}
#: case-insensitive fallback: a lower-case spelling that names exactly one unit ("KG", "Mbps" written "mbps")
_LOWER: dict[str, str] = {}
for _key in list(UNITS):
    if len(_key) >= 2 and _key.isalpha():
        _LOWER[_key.lower()] = _key if _key.lower() not in _LOWER else ""
#: lower-case spellings that are also words, names or codes in capitals ("MA", "MI", "HR", "PB")
_NO_FALLBACK = frozenset({"ah", "ma", "mo", "pa", "ka", "ha", "hr", "ms", "mi", "ns", "nm", "pb", "ev", "kn", "mv"})
LOWER = {k: v for k, v in _LOWER.items() if v and k not in _NO_FALLBACK}


def _alternation(keys: object) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))  # type: ignore[arg-type]


#: a unit expression: a composite "A/B" first, then a plain unit, then the lower-case fallback
UNIT_PATTERN = (rf"(?:(?:{_alternation(UNITS)})\s?/\s?(?:{_alternation(_DENOMINATORS)})"
                rf"|{_alternation(UNITS)}|(?i:{_alternation(LOWER)}))")


def lookup(symbol: str) -> tuple[str, str] | None:
    """(singular, plural) for a unit symbol or a composite "A/B" → ("A per B", "As per B")."""
    if symbol in UNITS:
        return UNITS[symbol]
    if symbol.lower() in LOWER:
        return UNITS[LOWER[symbol.lower()]]
    top, slash, bottom = symbol.partition("/")
    if slash:
        head, per = lookup(top.strip()), _DENOMINATORS.get(bottom.strip())
        if head and per:
            return f"{head[0]} per {per}", f"{head[1]} per {per}"
    return None


def per(symbol: str) -> str | None:
    """The word after "per" for a denominator symbol ("yr" → "year", "kg" → "kilogram")."""
    return _DENOMINATORS.get(symbol)

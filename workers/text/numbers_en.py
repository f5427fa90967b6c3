"""English number words: cardinals, ordinals, years, decimals, fractions, digit strings.

Hand-written rather than ``num2words``: that package took ~180 µs per number here (the budget is a few µs
per character) and writes British "and" and commas ("one thousand, two hundred and thirty-four"), and the
commas become audible clause pauses in the voice.
"""

from __future__ import annotations

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion", "sextillion")
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
    "twelve": "twelfth",
}
DIGIT_WORDS = dict(zip("0123456789", ONES[:10], strict=True))
#: longest digit string read as a number; longer ones are read digit by digit (ids, codes)
MAX_CARDINAL_DIGITS = 15


def _below_thousand(n: int) -> str:
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(f"{ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(TENS[tens] + (f"-{ONES[ones]}" if ones else ""))
    elif rest or not hundreds:
        words.append(ONES[rest])
    return " ".join(words)


def cardinal(n: int) -> str:
    """``1234`` → "one thousand two hundred thirty-four" (US style: no "and", no commas)."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return _below_thousand(n)
    if n >= 1000 ** len(SCALES):
        return digits(str(n))
    parts = []
    scale = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            parts.append(_below_thousand(group) + (f" {SCALES[scale]}" if scale else ""))
        scale += 1
    return " ".join(reversed(parts))


def ordinal_word(word: str) -> str:
    """The ordinal of a cardinal's last word: "twenty-one" → "twenty-first"."""
    head, sep, last = word.rpartition("-") if "-" in word.rsplit(" ", 1)[-1] else ("", "", word)
    if not sep:
        head, sep, last = word.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def ordinal(n: int) -> str:
    """``21`` → "twenty-first"."""
    return ordinal_word(cardinal(n))


def digits(text: str, zero: str = "zero") -> str:
    """Digit by digit: "0042" → "zero zero four two" (phone numbers, codes, long ids)."""
    return " ".join(zero if d == "0" else DIGIT_WORDS[d] for d in text if d in DIGIT_WORDS)


def year(n: int) -> str:
    """Years as people say them: 1905 "nineteen oh five", 2000 "two thousand", 2008 "two thousand eight",
    2026 "twenty twenty-six", 1900 "nineteen hundred"."""
    if n < 1000 or n >= 10000:
        return cardinal(n)
    high, low = divmod(n, 100)
    if n % 1000 < 10 and high % 10 == 0:  # 2000-2009, 1000-1009
        return cardinal(n)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def house_number(text: str) -> str:
    """House numbers in pairs, as addresses are said: "1428" → "fourteen twenty-eight", "708" → "seven oh eight",
    "1200" → "twelve hundred"; other lengths as a number."""
    if not text.isdigit() or len(text) not in (3, 4) or text.startswith("0"):
        return number(text)
    high, low = int(text[:-2]), int(text[-2:])
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {cardinal(low) if low >= 10 else 'oh ' + ONES[low]}"


def plural_word(word: str) -> str:
    """Plural of a number word: "twenty" → "twenties", "six" → "sixes" (decades: "the nineteen sixties")."""
    if word.endswith("y"):
        return word[:-1] + "ies"
    if word.endswith(("x", "s")):
        return word + "es"
    return word + "s"


def decade(n: int) -> str:
    """1990 → "nineteen nineties", 2000 → "two thousands", 80 → "eighties"."""
    return plural_word(year(n) if n >= 100 else cardinal(n))


def decimal(text: str) -> str:
    """"3.14" → "three point one four"; ".5" → "point five"; "1,234.5" → "one thousand ... point five"."""
    whole, _, frac = text.replace(",", "").partition(".")
    head = number(whole) if whole else ""
    tail = " point " + digits(frac) if frac else ""
    return (head + tail).strip()


def number(text: str) -> str:
    """A digit string with optional thousands commas; very long ones or leading zeros read digit by digit."""
    plain = text.replace(",", "")
    if not plain.isdigit():
        return text
    grouped = "," in text and not plain.startswith("0") and len(plain) <= 3 * len(SCALES)
    if not grouped and (len(plain) > MAX_CARDINAL_DIGITS or (len(plain) > 1 and plain.startswith("0"))):
        return digits(plain)
    return cardinal(int(plain))


def fraction(numerator: int, denominator: int) -> str:
    """3/4 → "three quarters", 1/2 → "one half", 5/8 → "five eighths", 7/250 → "seven over two hundred fifty"."""
    if denominator == 0 or denominator > 100 or (denominator > 20 and denominator % 10):
        return f"{cardinal(numerator)} over {cardinal(denominator)}"
    if denominator == 1:
        return cardinal(numerator)
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal(denominator) + ("" if numerator == 1 else "s")
    return f"{cardinal(numerator)} {name}"

"""English abbreviations, titles, initialisms and roman numerals, expanded by context.

Context matters where one spelling has two readings: "St. Louis" is Saint but "Main St." is Street,
"Dr. Lee" is Doctor but "Elm Dr." is Drive, "No. 5" is number but "No." alone is the word no, "Henry VIII"
is "the eighth" but "World War II" is "two" and "XXI century" is "twenty-first".
"""

from __future__ import annotations

import re

from .numbers_en import cardinal, digits, ordinal

#: titles read before a name (with or without the period: "Dr Smith" is British usage)
TITLES = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor", "Gen": "General",
    "Col": "Colonel", "Lt": "Lieutenant", "Capt": "Captain", "Sgt": "Sergeant", "Cpl": "Corporal",
    "Maj": "Major", "Adm": "Admiral", "Gov": "Governor", "Sen": "Senator", "Rep": "Representative",
    "Rev": "Reverend", "Hon": "Honorable", "Pres": "President", "Fr": "Father", "Mt": "Mount", "Ft": "Fort",
    "Supt": "Superintendent", "Insp": "Inspector", "Det": "Detective", "Cmdr": "Commander",
}
#: abbreviations that need their period; the value is what is said
WITH_PERIOD = {
    "approx": "approximately", "ext": "extension", "Rm": "Room", "rm": "room", "Apt": "Apartment",
    "apt": "apartment", "Ave": "Avenue", "Blvd": "Boulevard", "Rd": "Road", "Ln": "Lane", "Hwy": "Highway",
    "Sq": "Square", "Bldg": "Building", "Dept": "Department", "dept": "department", "Univ": "University",
    "Inc": "Incorporated", "Ltd": "Limited", "Corp": "Corporation", "Co": "Company", "Bros": "Brothers",
    "etc": "et cetera", "vs": "versus", "Jr": "Junior", "Sr": "Senior", "est": "established",
    "Est": "Established", "govt": "government", "Govt": "Government", "intl": "international",
    "misc": "miscellaneous", "Misc": "Miscellaneous", "tel": "telephone", "Tel": "Telephone",
    "temp": "temperature", "max": "maximum", "Max": "Maximum", "Mon": "Monday", "Tue": "Tuesday",
    "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday", "Thur": "Thursday", "Thurs": "Thursday",
    "Fri": "Friday", "Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Jun": "June",
    "Jul": "July", "Aug": "August", "Sep": "September", "Sept": "September", "Oct": "October",
    "Nov": "November", "Dec": "December", "dist": "district", "Mtn": "Mountain", "Pkwy": "Parkway",
    "Ste": "Suite", "Assn": "Association", "Assoc": "Associates", "Gov't": "Government", "yr": "year",
    "yrs": "years", "hrs": "hours", "mins": "minutes", "secs": "seconds", "wk": "week", "wks": "weeks",
    # cooking: measures written without a number, and recipe words
    "tsp": "teaspoon", "tbsp": "tablespoon", "Tbsp": "tablespoon", "pkg": "package", "doz": "dozen",
    "qty": "quantity", "Qty": "Quantity", "ea": "each", "oz": "ounce", "lb": "pound",
    # documents and letters
    "incl": "including", "excl": "excluding", "esp": "especially", "orig": "original", "encl": "enclosure",
    "Encl": "Enclosure", "attn": "attention", "Attn": "Attention", "ibid": "ibidem", "Ibid": "Ibidem",
    "ed": "edition", "eds": "editors", "Eds": "Editors", "trans": "translated by", "repr": "reprinted",
    "rev": "revised", "supp": "supplement", "Supp": "Supplement", "bk": "book", "Bk": "Book",
}
#: abbreviations that never end a sentence: a capitalized word after them is a name ("vs. Chelsea")
_NEVER_FINAL = frozenset({"vs", "approx", "ext", "Rm", "rm", "Apt", "apt", "tel", "Tel", "Ste", "Mon", "Tue", "Tues",
                          "Wed", "Thu", "Thur", "Thurs", "Fri"})
#: abbreviations read as words only when a number follows ("No. 5", "p. 12", "vol. 3")
BEFORE_NUMBER = {
    "No": "number", "no": "number", "Nos": "numbers", "nos": "numbers", "Vol": "volume", "vol": "volume",
    "Ch": "chapter", "ch": "chapter", "Fig": "figure", "fig": "figure", "p": "page", "pp": "pages",
    "Pg": "page", "pg": "page", "Art": "article", "art": "article", "Sec": "section", "sec": "section",
    "Ex": "example", "Eq": "equation", "eq": "equation", "Op": "opus", "Tab": "table",
    # documents: sections, paragraphs, lines, columns, appendices, parts, plural forms
    "Para": "paragraph", "para": "paragraph", "Paras": "paragraphs", "paras": "paragraphs", "Sect": "section",
    "sect": "section", "Secs": "sections", "secs": "sections", "App": "appendix", "Ref": "reference",
    "ref": "reference", "Col": "column", "col": "column", "Pt": "part", "pt": "part", "Vols": "volumes",
    "vols": "volumes", "Chs": "chapters", "chs": "chapters", "Figs": "figures", "figs": "figures",
    "Eqs": "equations", "eqs": "equations", "Thm": "theorem", "Def": "definition", "ll": "lines", "l": "line",
    "Ed": "edition", "ed": "edition", "Rev": "revision", "Sch": "schedule", "Cl": "clause", "cl": "clause",
}
#: street types written without their period at the end of an address line ("Arques Ave", "1st st")
STREET_TYPES = {"ave": "Avenue", "blvd": "Boulevard", "rd": "Road", "ln": "Lane", "hwy": "Highway", "pkwy": "Parkway",
                "ct": "Court", "pl": "Place", "st": "Street", "cir": "Circle", "ter": "Terrace",
                "expy": "Expressway", "fwy": "Freeway"}
#: compass directions between a house number and a street name ("708 N 1st St")
DIRECTIONS = {"N": "North", "S": "South", "E": "East", "W": "West", "NE": "Northeast", "NW": "Northwest",
              "SE": "Southeast", "SW": "Southwest"}
#: US states and territories by postal code: named when a ZIP code follows ("Santa, FL, 95051")
STATES = dict(zip(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR "
    "PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR".split(),
    ["Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware", "Florida",
     "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky", "Louisiana", "Maine",
     "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska",
     "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio",
     "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas",
     "Utah", "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming", "District of Columbia",
     "Puerto Rico"], strict=True))
#: multi-part abbreviations, matched case-insensitively
DOTTED = {"e.g.": "for example", "i.e.": "that is", "a.k.a.": "also known as", "cf.": "compare",
          "w/o": "without", "w/": "with", "et al.": "et al", "viz.": "namely", "ph.d.": "P-H-D"}
_DAY_END = {"Sat": "Saturday", "Sun": "Sunday"}

#: words after which a roman numeral is a plain number ("World War II", "Chapter IV", "Super Bowl LVII")
COUNT_WORDS = frozenset(
    "war chapter part volume vol book act scene phase type class level section article title bowl episode "
    "round stage grade series mark mk apollo gemini rocky final fantasy star wars vatican council "
    "appendix psalm canto figure table rule step plate number generation tier".split()
)
#: capitalized words that start a sentence rather than name a person or place ("Main St. Then we ...")
_SENTENCE_STARTERS = frozenset(
    "the then it he she we they i this that there a an in on at but and so if when turn go our my your".split()
)
_ROMAN = re.compile(r"^M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
#: valid roman numerals that are usually something else after a name ("Washington DC", "Ann CD")
_ROMAN_NOT_AFTER_NAME = frozenset({"DC", "CD", "MD", "CV", "MC", "DL", "LI", "MI", "DI", "CI", "XL", "MM", "CC",
                                   "LL", "MIX", "DIV", "CIV", "MCM", "DIX", "LID", "MID", "VI"})
_REGNAL_WORDS = frozenset("king queen pope emperor empress tsar czar louis henry george edward elizabeth charles "
                          "william richard james john mary philip pius leo gregory benedict paul".split())

#: titles British usage writes without the period ("Dr Smith"); others need it ("Gen Z" is no general)
_BARE_TITLES = ("Mrs", "Mr", "Ms", "Dr")
_TITLE_RE = re.compile(r"\b(?:(" + "|".join(sorted(TITLES, key=len, reverse=True)) + r")\.|("
                       + "|".join(_BARE_TITLES) + r"))(?= +[A-Z])|\b(Mrs|Mr|Ms)\.(?= +\w)")
# the word before is taken only from its start ((?<!\S)): tried inside a long word, "\S+" rescans it (quadratic)
_ST_DR_RE = re.compile(r"((?<!\S)\S+ +)?\b(St|Dr)\b(\.?)( +\S+)?")
_WITH_PERIOD_RE = re.compile(r"(?<![\w.])(" + "|".join(sorted(map(re.escape, WITH_PERIOD), key=len, reverse=True))
                             + r")\.(?=(\s+\S|\s*$|[,;:)]))")
_DAY_END_RE = re.compile(r"\b(Sat|Sun)\.(?=,? *(\d|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec))")
_BEFORE_NUMBER_RE = re.compile(r"(?<![\w.])(" + "|".join(sorted(BEFORE_NUMBER, key=len, reverse=True))
                               + r")\. ?(?=#?\d)")
_DOTTED_RE = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(DOTTED, key=len, reverse=True))
                        + r")(?=\W|$)", re.IGNORECASE)
_INITIALISM_RE = re.compile(r"(?<![\w.])((?:[A-Za-z]\.){2,})(?=(\s+\S|\s*$|[,;:)'’]))")
_INITIALISM_HINT = re.compile(r"[A-Za-z]\.[A-Za-z]\.")
_ROMAN_RE = re.compile(r"(?<![\w'])([A-Z][\w'’-]*)( +)([IVXLCDM]+)\b(?!['’.]\w)")
_DIRECTION_RE = re.compile(r"\b(\d{1,6}) (" + "|".join(DIRECTIONS) + r")\.? (?=[A-Z0-9])")
_STREET_RE = re.compile(r"(?<=[A-Za-z0-9] )(?i:(" + "|".join(STREET_TYPES) + r"))\b\.?(?=\s*(?:,|$|\n))")
_STATE_ZIP_RE = re.compile(r", (" + "|".join(STATES) + r"),? (\d{5})(?:-(\d{4}))?\b")
#: spaced initials before a surname: "C. S. Lewis", "J. R. R. Tolkien"
_SPACED_INITIALS_RE = re.compile(r"(?<![\w.])((?:[A-Z]\. ){1,3}[A-Z]\.)(?= [A-Z][a-z])")
_CENTURY_RE = re.compile(r"\b([IVXLC]+)(?:th|st|nd|rd)?( +)((?i:century|centuries|millennium))\b")


def _keeps_period(text: str, end: int) -> bool:
    """Whether an expanded abbreviation also ended its sentence: the period stays before a capitalized
    word or the end of the text ("... in the U.S. Then" keeps it; "etc., and" does not)."""
    rest = text[end:].lstrip(" ")
    return not rest or rest[0] == "\n" or (rest[0].isupper() and end < len(text) and text[end] in " \n")


def _street_or_saint(match: re.Match[str]) -> str:
    """St. / Dr.: before a name it is a title (St. Louis, Hello Dr. Lee); after a capitalized word or a
    number, and not before a name, it names a road (Main St., 5th St., Elm Dr. Then ...)."""
    before, word, dot, after = match.group(1) or "", match.group(2), match.group(3), match.group(4) or ""
    prev = before.strip().rstrip(",")
    nxt = after.strip()
    follows_name = bool(prev) and (prev[0].isupper() or prev[0].isdigit()) and prev[-1] not in ".:;!?"
    next_is_name = bool(nxt) and nxt[0].isupper() and nxt.strip(",.;:!?").lower() not in _SENTENCE_STARTERS
    if next_is_name and not (prev[:1].isdigit() and dot):
        spoken = {"St": "Saint", "Dr": "Doctor"}[word]
    elif follows_name and (dot or not nxt or not nxt[0].isupper()):
        spoken = {"St": "Street", "Dr": "Drive"}[word]
        if dot and _keeps_period(match.string, match.end(3)):
            spoken += "."
    else:
        return match.group(0)  # "Dr." alone: leave it (a word, a sentence end)
    return before + spoken + after


def _with_period(match: re.Match[str]) -> str:
    spoken = WITH_PERIOD[match.group(1)]
    if match.group(1) in _NEVER_FINAL:
        return spoken
    return spoken + "." if _keeps_period(match.string, match.end()) else spoken


def _dotted(match: re.Match[str]) -> str:
    spoken = DOTTED[match.group(1).lower()]
    if match.group(1).endswith(".") and _keeps_period(match.string, match.end()):
        spoken += "."
    return spoken


def _initialism(match: re.Match[str]) -> str:
    """"U.S." → "U-S" (hyphens make espeak-style phonemizers spell letters, not read a word)."""
    letters = match.group(1).replace(".", "").upper()
    spoken = "-".join(letters)
    return spoken + "." if _keeps_period(match.string, match.end()) else spoken


def roman_value(numeral: str) -> int | None:
    """The value of a strict roman numeral ("XIV" → 14); None for anything else ("IIII", "ABC")."""
    if not numeral or not _ROMAN.match(numeral):
        return None
    total = 0
    for i, char in enumerate(numeral):
        value = _ROMAN_VALUES[char]
        nxt = _ROMAN_VALUES[numeral[i + 1]] if i + 1 < len(numeral) else 0
        total += -value if value < nxt else value
    return total


def _roman_after_word(match: re.Match[str]) -> str:
    word, space, numeral = match.groups()
    value = roman_value(numeral)
    if value is None:
        return match.group(0)
    key = word.lower().rstrip("'’s")
    if key in COUNT_WORDS or word.lower() in COUNT_WORDS:
        return f"{word}{space}{cardinal(value)}"
    if word.isupper() or numeral in _ROMAN_NOT_AFTER_NAME or len(word) < 2:
        return match.group(0)
    if numeral == "I" and key not in _REGNAL_WORDS:
        return match.group(0)
    if set(numeral) - set("IVX") and key not in _REGNAL_WORDS:
        return match.group(0)
    return f"{word}{space}the {ordinal(value)}"


def _century(match: re.Match[str]) -> str:
    value = roman_value(match.group(1))
    if value is None:
        return match.group(0)
    return f"{ordinal(value)}{match.group(2)}{match.group(3)}"


def _street(match: re.Match[str]) -> str:
    """"Arques Ave" → Avenue, "1st st" → Street: only right after a name or a number, at a line's end or comma."""
    before = match.string[:match.start()].rstrip().rsplit(" ", 1)[-1]
    if not (before[:1].isupper() or before[:1].isdigit()):
        return match.group(0)
    if match.group(1).isupper() and not before.isupper():  # "the Ata ST": capitals in mixed text are a name
        return match.group(0)
    ends = match.group(0).endswith(".") and _keeps_period(match.string, match.end())
    return STREET_TYPES[match.group(1).lower()] + ("." if ends else "")


def addresses(text: str) -> str:
    """Street directions and types, and a state with its ZIP code (the ZIP digit by digit)."""
    text = _DIRECTION_RE.sub(lambda m: f"{m.group(1)} {DIRECTIONS[m.group(2)]} ", text)
    text = _STREET_RE.sub(_street, text)
    return _STATE_ZIP_RE.sub(lambda m: f", {STATES[m.group(1)]}, {digits(m.group(2))}"
                                       + (f", {digits(m.group(3))}" if m.group(3) else ""), text)


def expand(text: str) -> str:
    """Expand titles, abbreviations, dotted initialisms and roman numerals in ``text``."""
    if any(c.isdigit() for c in text):
        text = addresses(text)
    if ". " in text:
        text = _SPACED_INITIALS_RE.sub(lambda m: "-".join(m.group(1).replace(".", "").split()), text)
    text = _DOTTED_RE.sub(_dotted, text)
    text = _BEFORE_NUMBER_RE.sub(lambda m: BEFORE_NUMBER[m.group(1)] + " ", text)
    if "St" in text or "Dr" in text:
        text = _ST_DR_RE.sub(_street_or_saint, text)
    text = _TITLE_RE.sub(lambda m: TITLES[m.group(1) or m.group(2) or m.group(3)], text)
    text = _DAY_END_RE.sub(lambda m: _DAY_END[m.group(1)], text)
    text = _WITH_PERIOD_RE.sub(_with_period, text)
    if _INITIALISM_HINT.search(text):
        text = _INITIALISM_RE.sub(_initialism, text)
    text = _CENTURY_RE.sub(_century, text)
    text = _ROMAN_RE.sub(_roman_after_word, text)
    return text

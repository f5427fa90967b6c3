"""Japanese written form → spoken form, numbers in kanji.

Numbers become kanji numerals (kanjize, a small maintained converter) that a Japanese G2P reads with the
counter's sound changes (三百 さんびゃく, 一本 いっぽん): that is why the output stays in kanji rather than kana.
The rules here pick what surrounds a number: dates (2024/01/30, era abbreviations R.4 → 令和四年, the weekday in
brackets (水) → 水曜日), ranges with 〜 (から), clock times (10:30 → 十時三十分), money after a currency sign
(¥1,000 → 千円), percentages, units with SI prefixes, fractions (1/2 → 二分の一, √ → ルート), negative numbers
(マイナス) and decimals (二十五点三). A numeral that would spell another word for a dictionary-based G2P
(五分 ごぶ, 十分 じゅうぶん) stays in digits.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .markup import clean
from .unit_table import prefixed_units

#: integers longer than this are codes or ids, read digit by digit
MAX_CARDINAL_DIGITS = 20
DIGITS = "〇一二三四五六七八九"
NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
CURRENCIES = {"¥": "円", "￥": "円", "$": "ドル", "US$": "米ドル", "€": "ユーロ", "£": "ポンド", "₩": "ウォン",
              "元": "元"}
ERAS = {"R": "令和", "H": "平成", "S": "昭和", "T": "大正", "M": "明治"}
WEEKDAYS = "月火水木金土日"
HOLIDAYS = {"祝": "祝日", "休": "休日", "振": "振替休日"}
PREFIXES = {"k": "キロ", "M": "メガ", "G": "ギガ", "T": "テラ", "m": "ミリ", "c": "センチ", "μ": "マイクロ",
            "µ": "マイクロ", "u": "マイクロ", "n": "ナノ", "h": "ヘクト"}
#: units that take SI prefixes; bare=False: only with a prefix
BASE_UNITS: dict[str, tuple[str, bool]] = {
    "m": ("メートル", True), "g": ("グラム", True), "L": ("リットル", True), "l": ("リットル", False),
    "W": ("ワット", True), "V": ("ボルト", True), "A": ("アンペア", False), "Hz": ("ヘルツ", True),
    "B": ("バイト", False), "Pa": ("パスカル", False), "Wh": ("ワット時", True), "s": ("秒", True),
    "J": ("ジュール", False), "cal": ("カロリー", True),
}
OTHER_UNITS = {"°C": "度", "℃": "度", "°F": "華氏度", "°": "度", "h": "時間", "min": "分", "ms": "ミリ秒",
               "mL": "ミリリットル", "t": "トン", "ha": "ヘクタール", "dB": "デシベル", "KB": "キロバイト",
               "ft": "フィート", "mi": "マイル", "lb": "ポンド", "oz": "オンス", "mph": "マイル毎時", "cc": "シーシー"}
_PER = {"h": "時", "s": "秒", "min": "分"}
#: a kanji numeral that, with the character after it, spells a word of its own which dictionary-based
#: Japanese G2Ps (pyopenjtalk / MeCab, as Kokoro and GPT-SoVITS use) read as that word: 五分 ごぶ (not ごふん),
#: 十分 じゅうぶん, 十二分 じゅうにぶん, 八頭 やつがしら, 千歳 ちとせ, 百足 むかで. There the number stays in Arabic
#: digits, which every Japanese G2P reads as a number (5分 ごふん). 分の (a fraction) is not one of them.
LEXICAL_TRAPS = {"二": "分", "五": "分", "八": "分頭", "九": "分頭", "十": "分", "十二": "分", "千": "歳頭",
                 "百": "足"}
#: numerals read as names (十三 じゅうそう, 九十九 つくも) when no counter follows them
NAME_TRAPS = ("十三", "九十九")
#: 頃 after a clock hour in kanji is read ころ by those G2Ps: written ごろ, as it is said
_HOUR_GORO = re.compile("(?<=[〇零一二三四五六七八九十]時)頃")


UNITS = prefixed_units(BASE_UNITS, PREFIXES, OTHER_UNITS)
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_UNIT_EXPR = rf"(?:{_UNIT_ALT})(?:[²³]|\^[23])?(?:/(?:{_UNIT_ALT}))?"
_FULLWIDTH = str.maketrans("０１２３４５６７８９％＄．／：", "0123456789%$./:")
_CJK = "\u3400-\u9fff々"
#: a Japanese phone number (0 then groups joined by hyphens): digit by digit, the hyphen said as の
_PHONE = re.compile(r"(?<![\d-])(0\d{1,4}|\d{3,4})-(\d{1,4})-(\d{3,4})(?![\d-])")
_VERSION = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])")
_ERA_DATE = re.compile(r"(?<![A-Za-z])([RHSTM])\.?\s?(\d{1,2})[./](\d{1,2})[./](\d{1,2})(?![\d.])")
_ERA_YEAR = re.compile(r"(?<![A-Za-z])([RHSTM])\.\s?(\d{1,2})(?![\d./])")
_NUMERIC_DATE = re.compile(r"(?<![\d./:-])(\d{4})([/.-])(\d{1,2})\2(\d{1,2})(?![\d./:-])")
_WEEKDAY = re.compile(rf"[(（]([{WEEKDAYS}])?(?:[・･、]?([祝休振]))?[)）]")
_MONTH_DAY = re.compile(rf"(?<![\d./])(\d{{1,2}})/(\d{{1,2}})(?=\s?[(（][{WEEKDAYS}祝休振])")
_RANGE = re.compile(rf"(?<=[\d{_CJK})）%])\s?[〜～]\s?(?=[\d{_CJK}])|(?<=[\d{_CJK})）%])\s?~\s?(?=\d)")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])")
_CURRENCY = re.compile(rf"(US\$|[¥￥$€£₩])\s?(-)?({NUM})([万億兆]?)")
_PERCENT = re.compile(rf"(?<![\d.])({NUM})\s?%")
_MIXED = re.compile(r"(?<![\d./])(\d+)[ と](?=√?\d+/√?\d+)")
_FRACTION = re.compile(r"(?<![\d./])(√)?(\d+)/(√)?(\d+)(?![\d/]|\.\d)")
_UNIT = re.compile(rf"(?<![\d.])({NUM})\s?({_UNIT_EXPR})(?![A-Za-z])")
_NEGATIVE = re.compile(rf"(?<![A-Za-z0-9.])-\s?(?=√|{NUM})")
_NUMBER = re.compile(NUM)


@lru_cache(maxsize=1)
def _number2kanji():  # noqa: ANN202
    from kanjize import number2kanji

    return number2kanji


def digits(text: str) -> str:
    """Each digit on its own: "0120" → 〇一二〇."""
    return "".join(DIGITS[int(c)] if c.isdigit() else c for c in text)


def cardinal(text: str) -> str:
    """An integer (commas allowed) in kanji: 1000 → 千, 12345000 → 一千二百三十四万五千 (a thousand that
    leads a 万/億/兆 group is 一千, as it is said: いっせんまん), 0 → 零; a code of more than
    MAX_CARDINAL_DIGITS digits or with a leading zero is read digit by digit."""
    value = text.replace(",", "")
    if len(value) > MAX_CARDINAL_DIGITS or (len(value) > 1 and value.startswith("0")):
        return digits(value)
    if int(value) == 0:
        return "零"
    kanji = _number2kanji()(int(value))
    return re.sub(r"(^|[万億兆京])千(?=[^万億兆京]*[万億兆京])", r"\1一千", kanji)


def say(text: str) -> str:
    """A written number: integers in kanji, decimals with 点 and their digits ("0.5" → 零点五)."""
    whole, _, fraction = text.replace(",", "").partition(".")
    return cardinal(whole) + ("点" + "".join("零" if c == "0" else DIGITS[int(c)] for c in fraction)
                              if fraction else "")


def _trap(kanji: str, after: str) -> bool:
    """Whether ``kanji`` followed by ``after`` would be read as another word (see LEXICAL_TRAPS)."""
    follow = LEXICAL_TRAPS.get(kanji, "")
    if after[:1] and after[0] in follow and not (after[0] == "分" and after[1:2] == "の"):
        return True
    return kanji in NAME_TRAPS and not re.match(rf"[{_CJK}]", after[:1])


def _integer(match: re.Match[str]) -> str:
    spoken = say(match.group(0))
    if "." not in match.group(0) and _trap(spoken, match.string[match.end():match.end() + 2]):
        return match.group(0).replace(",", "")
    return spoken


def _era_date(match: re.Match[str]) -> str:
    era, year, month, day = match.groups()
    return f"{ERAS[era]}{cardinal(year)}年{cardinal(month)}月{cardinal(day)}日"


def _numeric_date(match: re.Match[str]) -> str:
    year, month, day = match.group(1), int(match.group(3)), int(match.group(4))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f"{cardinal(year)}年{cardinal(str(month))}月{cardinal(str(day))}日"


def _month_day(match: re.Match[str]) -> str:
    month, day = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f"{cardinal(str(month))}月{cardinal(str(day))}日"


def _weekday(match: re.Match[str]) -> str:
    day, holiday = match.groups()
    if not day and not holiday:
        return match.group(0)
    return (f"{day}曜日" if day else "") + (HOLIDAYS[holiday] if holiday else "")


def _time(match: re.Match[str]) -> str:
    hour, minute, second = int(match.group(1)), int(match.group(2)), match.group(3)
    if hour > 30 or minute > 59 or (second and int(second) > 59):  # 25時 is after midnight in schedules
        return match.group(0)
    spoken = cardinal(str(hour)) + "時"
    if minute or second:
        after = "分" + match.string[match.end():match.end() + 1]
        spoken += (str(minute) if _trap(cardinal(str(minute)), after) else cardinal(str(minute))) + "分"
    if second and int(second):
        spoken += cardinal(str(int(second))) + "秒"
    return spoken


def _currency(match: re.Match[str]) -> str:
    symbol, sign, amount, magnitude = match.groups()
    return ("マイナス" if sign else "") + say(amount) + magnitude + CURRENCIES[symbol]


def _fraction(match: re.Match[str]) -> str:
    root_top, numerator, root_bottom, denominator = match.groups()
    if int(denominator) == 0:
        return match.group(0)
    top = ("ルート" if root_top else "") + say(numerator)
    return ("ルート" if root_bottom else "") + say(denominator) + "分の" + top


def unit_name(unit: str) -> str:
    """"km" → キロメートル, "m²" → 平方メートル, "km/h" → キロメートル毎時."""
    main, _, per = unit.partition("/")
    power = ""
    if main[-1:] in "²³" or main[-2:] in ("^2", "^3"):
        power = "平方" if main[-1] in "²2" else "立方"
        main = main[:-1] if main[-1] in "²³" else main[:-2]
    name = power + UNITS[main]
    return name + ("毎" + _PER.get(per, UNITS[per]) if per else "")


def _unit(match: re.Match[str]) -> str:
    amount, unit = match.groups()
    if unit in ("km/h", "km/時"):  # speed is said 時速百キロ
        before = match.string[max(0, match.start() - 2):match.start()]
        return ("" if before == "時速" else "時速") + say(amount) + "キロ"
    return say(amount) + unit_name(unit)


def normalize(text: str, locale: str | None = None) -> str:
    """Japanese written text → what a person reads aloud (``locale`` is accepted for symmetry; unused)."""
    text = clean(text).translate(_FULLWIDTH)
    if any(c.isdigit() for c in text):
        text = _numbers(text)
    return _WEEKDAY.sub(_weekday, text).replace("√", "ルート")


def _numbers(text: str) -> str:
    text = _PHONE.sub(lambda m: "の".join(digits(g) for g in m.groups()), text)
    text = _ERA_DATE.sub(_era_date, text)
    text = _ERA_YEAR.sub(lambda m: f"{ERAS[m.group(1)]}{cardinal(m.group(2))}年", text)
    text = _NUMERIC_DATE.sub(_numeric_date, text)
    text = _VERSION.sub(lambda m: "点".join(say(part) for part in m.group(0).split(".")), text)
    text = _MONTH_DAY.sub(_month_day, text)
    text = _RANGE.sub("から", text)
    text = _TIME.sub(_time, text)
    text = _NEGATIVE.sub("マイナス", text)
    text = _CURRENCY.sub(_currency, text)
    text = _PERCENT.sub(lambda m: say(m.group(1)) + "パーセント", text)
    text = _MIXED.sub(lambda m: say(m.group(1)) + "と", text)
    text = _FRACTION.sub(_fraction, text)
    text = _UNIT.sub(_unit, text)
    text = _NUMBER.sub(_integer, text)
    return _HOUR_GORO.sub("ごろ", text)

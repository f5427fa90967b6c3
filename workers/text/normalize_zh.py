"""Chinese (Mandarin) written form → spoken form, in Chinese characters.

Numbers are read by cn2an (the maintained Arabic ↔ Chinese numeral converter, pure Python) and the rules here
pick which reading a number gets from what surrounds it: years digit by digit (二零一五年), dates, clock
times (三点四分), money after a currency sign ($5 → 五美元), units with SI prefixes and composite units
(km/h → 千米每小时), percentages (百分之三十), fractions (五分之一), phone numbers digit by digit, and every
other number as a cardinal (第10 → 第十). 两 replaces 二 where Mandarin says it: before 千/万/亿 at the head of
a group (两千三百) and for a count of two before a measure word (两个, 两点).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .markup import clean
from .unit_table import prefixed_units

#: integers longer than this are codes or ids, read digit by digit (cn2an reads up to 16 digits)
MAX_CARDINAL_DIGITS = 16
DIGITS = "零一二三四五六七八九"
NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
CURRENCIES = {"$": "美元", "US$": "美元", "￥": "人民币", "¥": "人民币", "RMB": "人民币", "€": "欧元", "£": "英镑",
              "₩": "韩元", "HK$": "港元", "NT$": "新台币", "₽": "卢布", "₹": "卢比"}
#: SI prefixes in Chinese (k 千, M 兆, G 吉, m 毫, c 厘, μ 微, n 纳)
PREFIXES = {"k": "千", "K": "千", "M": "兆", "G": "吉", "T": "太", "m": "毫", "c": "厘", "μ": "微", "µ": "微",
            "u": "微", "n": "纳", "p": "皮"}
#: units that take SI prefixes; those marked bare=False are read only with a prefix ("5A级" is a grade, "5mA" is
#: current)
BASE_UNITS: dict[str, tuple[str, bool]] = {
    "m": ("米", True), "g": ("克", True), "s": ("秒", True), "L": ("升", False), "l": ("升", False),
    "W": ("瓦", True), "V": ("伏", True), "A": ("安", False), "Hz": ("赫兹", True), "B": ("字节", False),
    "b": ("比特", False), "Pa": ("帕", True), "J": ("焦", False), "N": ("牛", False), "Wh": ("瓦时", True),
    "Ah": ("安时", False), "bps": ("比特每秒", True), "Ω": ("欧", True), "F": ("法", False),
}
OTHER_UNITS = {
    "°C": "摄氏度", "℃": "摄氏度", "°F": "华氏度", "℉": "华氏度", "°": "度", "h": "小时", "hr": "小时",
    "min": "分钟", "ms": "毫秒", "mL": "毫升", "t": "吨", "mph": "英里每小时", "ft": "英尺", "mi": "英里",
    "yd": "码", "lb": "磅", "lbs": "磅", "oz": "盎司", "ha": "公顷", "dB": "分贝", "rpm": "转每分钟",
    "fps": "帧每秒", "px": "像素", "cc": "毫升", "mmHg": "毫米汞柱", "kcal": "千卡", "cal": "卡",
    "kB": "千字节", "KB": "千字节", "MB": "兆字节", "GB": "吉字节", "TB": "太字节",
}
#: measure words after which a count of two is 两 (两个, 两点), not 二
MEASURE_WORDS = ("个 夜 晚 只 本 张 位 次 点 天 岁 斤 块 条 件 名 辆 家 种 台 部 首 双 杯 碗 瓶 周 倍 份 层 间 年 "
                 "小时 分钟 星期 回 趟 遍 顿 场 支 把 棵 座 根 片 颗 头 匹 对 套 样 句 "
                 "封 节 门 所 架 艘 口 元 万 亿 千 百").split()


#: K is kelvin elsewhere; only KB means kilobyte
UNITS = prefixed_units(BASE_UNITS, PREFIXES, OTHER_UNITS, skip=lambda prefix, unit: prefix == "K" and unit != "B")
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
#: a unit, optionally squared or cubed, optionally "per" another unit (km/h, m/s²)
_UNIT_EXPR = rf"(?:{_UNIT_ALT})(?:[²³]|\^[23])?(?:/(?:{_UNIT_ALT})(?:[²³]|\^[23])?)?"
_SIGN = r"(-|负)?"
#: the Simplified characters the rules and cn2an write, and their Traditional forms
_TRADITIONAL = str.maketrans("两万亿点负摄华兹欧镑韩币卢时钟顷贝转帧吨码纳节号",
                             "兩萬億點負攝華茲歐鎊韓幣盧時鐘頃貝轉幀噸碼納節號")
_FULLWIDTH = str.maketrans("０１２３４５６７８９％＄", "0123456789%$")
_COLON = re.compile(r"(?<=\d)：(?=\d)")
_ERA_SUFFIX = re.compile(r"(?<![\d.])(\d{1,4})(年(?:\d{1,2}月(?:\d{1,2}[日号])?)?)?\s?"
                         r"(a\.?d\.?|b\.?c\.?e?\.?|c\.?e\.?)(?![A-Za-z])", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"(?<![\d.:/·-])(\d{4}|\d{2})([/.·\-])(\d{1,2})\2(\d{1,2})(?![\d.:/·-]|\.\d)")
#: a version or section number: 1.2.3 → 一点二点三
_VERSION = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d-])(0\d{2,3})-(\d{7,8})(?![\d-])")
#: three or more hyphenated groups of 3-4 digits (400-800-8888, 0755-8888-1234): a phone number or a code
_GROUPS = re.compile(r"(?<![\d-])\d{3,4}(?:-\d{3,4}){2,}(?![\d-])")
#: a two-digit generation label: 85后, 00后 (said 八五后, 零零后)
_GENERATION = re.compile(r"(?<![\d.])(\d\d)(?=后)")
_PERCENT_RANGE = re.compile(rf"(?<![\d.])({NUM})%\s?[~～〜—–-]\s?({NUM})%")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])\s?([ap]\.?m\.?(?![A-Za-z]))?", re.IGNORECASE)
_YEAR = re.compile(r"(公元前|公元|纪元|西元|民国)?(?<![\d.])(\d{2,4})(?=年)")
_DAY_HAO = re.compile(r"(\d{1,2}月)(\d{1,2})号")
_CURRENCY = re.compile(rf"(US\$|HK\$|NT\$|RMB|[$￥¥€£₩₽₹])\s?{_SIGN}({NUM})([万亿]?)")
_PERCENT = re.compile(rf"{_SIGN}(?<![\d.])({NUM})\s?([%‰])")
_FRACTION = re.compile(r"(-|负)?(?<![\d./])(\d+)/(\d+)(?![\d/]|\.\d)")
_DIMENSION = re.compile(rf"(?<![\d.])({NUM})\s?[x×*]\s?(?=\d)")
_UNIT = re.compile(rf"{_SIGN}(?<![\d.])({NUM})\s?({_UNIT_EXPR})(?![A-Za-z])")
_RANGE = re.compile(rf"(?<![\d.])({NUM})\s?[~～〜—–-]\s?(?=\d)")
#: a tilde after a date or a unit written in Chinese (3月~5月, 10点～12点) is a range too
_TILDE = re.compile(r"(?<=[\u3400-\u9fff%])\s?[~～〜]\s?(?=\d)")
_NEGATIVE = re.compile(rf"(?<![A-Za-z0-9.])-(?=(?:{NUM}))")
_TWO = re.compile(rf"(?<![\d.第])2(?=(?:{'|'.join(MEASURE_WORDS)}))(?!年级)")
_NUMBER = re.compile(NUM)
#: a short lower-case (or capitalised) Latin word, or letters spaced one by one, inside Chinese text: an
#: initialism (nba, c e o), written upper-case so it is spelled letter by letter
_INITIALISM = re.compile(r"(?<![A-Za-z])(?:[A-Za-z][a-z]{1,2}|[a-z](?: [a-z]){1,3})(?![A-Za-z])")
#: a.m./p.m. after a time already in Chinese ("5点差4分am"): the part of the day goes first
_CLOCK_PERIOD = re.compile(r"(\d{1,2}点(?:差?\d{1,2}分)?(?:\d{1,2}秒)?)\s?([ap])\.?m\.?(?![A-Za-z])", re.IGNORECASE)
_HAN = re.compile(r"[\u3400-\u9fff]")
_LIANG = re.compile(r"(^|[亿万零])二(?=[千万亿])")


@lru_cache(maxsize=1)
def _an2cn():  # noqa: ANN202  cn2an takes ~0.3 s to import: only when Chinese is read
    from cn2an import an2cn

    return an2cn


def digits(text: str) -> str:
    """Each digit on its own: "2015" → 二零一五."""
    return "".join(DIGITS[int(c)] if c.isdigit() else c for c in text)


def cardinal(text: str) -> str:
    """An integer (commas allowed) as a number: "2391" → 两千三百九十一; a leading zero or more than
    MAX_CARDINAL_DIGITS digits makes it a code, read digit by digit."""
    value = text.replace(",", "")
    if len(value) > MAX_CARDINAL_DIGITS or (len(value) > 1 and value.startswith("0")):
        return digits(value)
    return _LIANG.sub(r"\1两", _chinese(int(value)))


def _chinese(value: int) -> str:
    """cn2an's reading, with the 零 it drops when a whole 万 group is zero before a four-digit tail
    (100001000: 一亿零一千, cn2an 0.5.24 says 一亿一千)."""
    low = value % 10**4
    if value >= 10**8 and value // 10**4 % 10**4 == 0 and low >= 1000:
        return _an2cn()(str(value - low), "low") + "零" + _an2cn()(str(low), "low")
    return _an2cn()(str(value), "low")


def say(text: str) -> str:
    """A written number: integers as cardinals, decimals with 点 and their digits ("0.5" → 零点五)."""
    whole, _, fraction = text.replace(",", "").partition(".")
    spoken = cardinal(whole) if not (len(whole) > 1 and whole.startswith("0")) else digits(whole)
    return spoken + ("点" + digits(fraction) if fraction else "")


def _sign(sign: str | None) -> str:
    return "负" if sign else ""


def _era(match: re.Match[str]) -> str:
    year, rest, era = match.group(1), match.group(2) or "年", match.group(3).lower()
    prefix = "公元前" if era.startswith("b") else "公元"
    return prefix + digits(year) + rest


def _numeric_date(match: re.Match[str]) -> str:
    year, month, day = match.group(1), int(match.group(3)), int(match.group(4))
    if not (1 <= month <= 12 and 1 <= day <= 31) or (len(year) == 2 and match.group(2) == "-"):
        return match.group(0)
    return f"{digits(year)}年{cardinal(str(month))}月{cardinal(str(day))}日"


def _phone(match: re.Match[str]) -> str:
    return "，".join(digits(g) for g in match.groups() if g)


def _time(match: re.Match[str]) -> str:
    hour, minute, second, period = int(match.group(1)), int(match.group(2)), match.group(3), match.group(4)
    if hour > 24 or minute > 59 or (second and int(second) > 59):
        return match.group(0)
    spoken = ("两" if hour == 2 else cardinal(str(hour))) + "点"
    if minute or second:
        spoken += cardinal(str(minute)) + "分"
    if second:
        spoken += cardinal(str(int(second))) + "秒"
    if period and hour <= 12:  # Chinese says the part of the day first: 下午三点
        spoken = ("下午" if period[0] in "pP" else "上午") + spoken
    return spoken


def _year(match: re.Match[str]) -> str:
    era, year = match.group(1) or "", match.group(2)
    after = match.string[match.end() + 1:match.end() + 4]
    # 2015年, 2015年底, 1990年代, 05年, 公元前202年, 12年3月 are years, read digit by digit; 12年, 90年代, 3年级
    # and a round 1000年前 (a thousand years ago) are counts
    if era:
        return era + digits(year)
    if after.startswith("级") or (len(year) == 4 and year.endswith("00") and after[:1] in ("前", "来", "间")):
        return say(year)
    if len(year) == 4 or year.startswith("0") or re.match(r"\d{1,2}月", after):
        return digits(year)
    return say(year)


def _currency(match: re.Match[str]) -> str:
    symbol, sign, amount, magnitude = match.groups()
    return _sign(sign) + say(amount) + magnitude + CURRENCIES[symbol]


def _percent(match: re.Match[str]) -> str:
    sign, amount, mark = match.groups()
    return _sign(sign) + ("百分之" if mark == "%" else "千分之") + say(amount)


def _fraction(match: re.Match[str]) -> str:
    sign, numerator, denominator = match.groups()
    if int(denominator) == 0:
        return match.group(0)
    return _sign(sign) + say(denominator) + "分之" + say(numerator)


def unit_name(unit: str) -> str:
    """"km/h" → 千米每小时, "m²" → 平方米, "kWh" → 千瓦时."""
    per = unit.split("/", 1)
    names = []
    for part in per:
        power = ""
        if part[-1:] in "²³" or part[-2:] in ("^2", "^3"):
            power = "平方" if part[-1] in "²2" else "立方"
            part = part[:-1] if part[-1] in "²³" else part[:-2]
        names.append(power + UNITS[part])
    return "每".join(names)


def _unit(match: re.Match[str]) -> str:
    sign, amount, unit = match.groups()
    return _sign(sign) + say(amount) + unit_name(unit)


def _initialism(match: re.Match[str]) -> str:
    before, after = match.string[match.start() - 1:match.start()], match.string[match.end():match.end() + 1]
    if not (_HAN.match(before) or _HAN.match(after)):  # an English phrase inside Chinese is left as written
        return match.group(0)
    return match.group(0).replace(" ", "").upper()


def traditional(locale: str | None) -> bool:
    """Whether ``locale`` writes Traditional characters (zh-TW, zh-HK, zh-MO, zh-Hant)."""
    parts = {p.lower() for p in re.split(r"[-_]", locale or "")[1:]}
    return bool(parts & {"tw", "hk", "mo", "hant"})


def normalize(text: str, locale: str | None = None) -> str:
    """Chinese written text → what a person reads aloud; for a Traditional ``locale`` (zh-TW, zh-HK) the
    characters the rules write are Traditional too (兩千, 萬, 點)."""
    spoken = _normalize(text)
    return spoken.translate(_TRADITIONAL) if traditional(locale) else spoken


def _normalize(text: str) -> str:
    text = clean(text).translate(_FULLWIDTH)
    text = _CLOCK_PERIOD.sub(lambda m: ("下午" if m.group(2) in "pP" else "上午") + m.group(1), text)
    if any(c.isdigit() for c in text):
        text = _numbers(text)
    return _INITIALISM.sub(_initialism, text) if _HAN.search(text) else text


def _numbers(text: str) -> str:
    text = _COLON.sub(":", text)
    text = _ERA_SUFFIX.sub(_era, text)
    text = _NUMERIC_DATE.sub(_numeric_date, text)
    text = _VERSION.sub(lambda m: "点".join(say(part) for part in m.group(0).split(".")), text)
    text = _MOBILE.sub(_phone, text)
    text = _LANDLINE.sub(_phone, text)
    text = _GROUPS.sub(lambda m: "，".join(digits(g) for g in m.group(0).split("-")), text)
    text = _GENERATION.sub(lambda m: digits(m.group(1)), text)
    text = _TIME.sub(_time, text)
    text = _YEAR.sub(_year, text)
    text = _DAY_HAO.sub(r"\1\2日", text)
    text = _CURRENCY.sub(_currency, text)
    text = _PERCENT_RANGE.sub(lambda m: f"百分之{say(m.group(1))}到百分之{say(m.group(2))}", text)
    text = _PERCENT.sub(_percent, text)
    text = _FRACTION.sub(_fraction, text)
    text = _DIMENSION.sub(lambda m: say(m.group(1)) + "乘", text)
    text = _UNIT.sub(_unit, text)
    text = _RANGE.sub(lambda m: say(m.group(1)) + "到", text)
    text = _TILDE.sub("到", text)
    text = _NEGATIVE.sub("负", text)
    text = _TWO.sub("两", text)
    return _NUMBER.sub(lambda m: say(m.group(0)), text)

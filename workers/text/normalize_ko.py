"""Korean written form → spoken form.

The counter after a number picks the number system (개, 명, 살, 시, 마리 ... native; 원, 분, 초, 년, 월, 일,
층 ... Sino-Korean). Dates, times, money, phone numbers and units are recognised before bare numbers, and
Latin-letter abbreviations (KTX, AI) are spelled with the Korean names of the letters.
"""

from __future__ import annotations

import re

from .markup import clean
from .numbers_ko import MAX_SINO_DIGITS, decimal, month, native, number, sino, sino_digits

#: counters read with native numbers below 100 ("세 개", "두 명", "스무 살", "세 시")
NATIVE_COUNTERS = (
    "개 명 살 시 시간 마리 권 잔 병 대 장 벌 켤레 송이 그루 채 곳 가지 달 사람 군데 척 통 줄 쌍 번 번째 배 발 알 "
    "자루 조각 척 끼 판 그릇 접시 봉지 상자 박스 살배기"
).split()
#: counters read with Sino-Korean numbers ("삼 개월", "오천 원", "십 층")
SINO_COUNTERS = (
    "원 분 초 년 월 일 층 호 세 개월 주 주년 인분 회 학년 등 점 번지 위 차 인 년도 학기 페이지 쪽 퍼센트 "
    "도 달러 유로 엔 위안 파운드 킬로 미터 센티 그램 리터 동 호실 부 편 기 대대 기압 박 단계 교시 퍼센트포인트"
).split()
#: after "N번", these nouns make 번 a label (삼 번 출구) instead of a count (세 번)
_LABEL_NOUNS = tuple("출구 버스 선 게이트 방 문제 트랙 채널 홈 국도 타자 환자 테이블 좌석".split())
LATIN_NAMES = dict(zip(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "에이 비 씨 디 이 에프 지 에이치 아이 제이 케이 엘 엠 엔 오 피 큐 알 에스 티 유 브이 더블유 엑스 와이 제트".split(),
    strict=True,
))
UNITS = {
    "km/h": "킬로미터", "km": "킬로미터", "cm": "센티미터", "mm": "밀리미터", "m": "미터", "kg": "킬로그램",
    "mg": "밀리그램", "g": "그램", "ml": "밀리리터", "mL": "밀리리터", "L": "리터", "%": "퍼센트", "°C": "도",
    "℃": "도", "°F": "화씨 도", "°": "도", "GB": "기가바이트", "MB": "메가바이트", "TB": "테라바이트",
    "KB": "킬로바이트", "GHz": "기가헤르츠", "MHz": "메가헤르츠", "Hz": "헤르츠", "kWh": "킬로와트시",
    "kW": "킬로와트", "W": "와트", "V": "볼트", "cc": "씨씨", "평": "평", "l": "리터", "h": "시간", "hr": "시간",
    "min": "분", "s": "초", "sec": "초", "ms": "밀리초", "N": "뉴턴", "kN": "킬로뉴턴", "Pa": "파스칼",
    "kPa": "킬로파스칼", "J": "줄", "kJ": "킬로줄", "kcal": "킬로칼로리", "cal": "칼로리", "mA": "밀리암페어",
    "mAh": "밀리암페어시", "rpm": "분당회전수", "dB": "데시벨", "ha": "헥타르", "t": "톤", "m²": "제곱미터",
    "m2": "제곱미터", "km²": "제곱킬로미터", "m³": "세제곱미터", "m3": "세제곱미터", "μm": "마이크로미터",
    "nm": "나노미터", "μg": "마이크로그램", "Mbps": "메가비피에스", "Gbps": "기가비피에스", "lb": "파운드",
    "oz": "온스", "ft": "피트", "mi": "마일",
}
#: unit names after "퍼" in a composite ("m/s" 미터 퍼 초): the same table
_PER_UNITS = {k: v for k, v in UNITS.items() if k not in ("%", "°", "°C", "℃", "°F")}
#: currency codes before or after an amount ("KRW 5000", "EUR 1,230,000", "NZD 123,456")
CURRENCY_CODES = {
    "KRW": "원", "USD": "달러", "US$": "달러", "EUR": "유로", "JPY": "엔", "CNY": "위안", "RMB": "위안",
    "GBP": "파운드", "NZD": "뉴질랜드 달러", "AUD": "호주 달러", "CAD": "캐나다 달러", "HKD": "홍콩 달러",
    "SGD": "싱가포르 달러", "CHF": "스위스 프랑", "AED": "아랍에미리트 디르함", "INR": "루피", "VND": "동",
    "THB": "바트", "RUB": "루블",
}
#: Latin words read as Korean words, not spelled, in addresses and file names
LATIN_WORDS = {"app": "앱", "com": "컴", "net": "넷", "www": "더블유 더블유 더블유"}
#: file extensions and top-level domains spelled with the Korean names of their letters after "닷"
FILE_EXTENSIONS = ("jpg jpeg png gif bmp webp svg pdf doc docx hwp hwpx xls xlsx ppt pptx txt csv zip rar mp3 mp4 "
                   "wav avi mov mkv html htm json xml py exe").split()
TOP_DOMAINS = "com net org kr co io app ai de fr it jp cn uk us eu edu gov me tv info biz ac go or re".split()
WEEKDAYS = {day: day + "요일" for day in "월화수목금토일"}
#: words after which a digit string is a code read digit by digit ("끝자리 3456", "인증번호 0924")
_CODE_WORDS = ("자리", "번호", "코드", "비밀번호", "암호", "핀")
CURRENCY_SYMBOLS = {"₩": "원", "$": "달러", "€": "유로", "£": "파운드", "¥": "엔"}

NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+(?P<cc>\d{1,3})[\s-]?)?(?:\((?P<area>\d{2,4})\)[\s-]?|(?P<area2>\d{2,4}|(?<=[\s-])\d)[-. ])"
    r"(?P<a>\d{3,4})[-. ](?P<b>\d{4})(?![\d-]|\.\d)"
    r"|(?<![\d-])(?P<c1>1[5-9]\d{2})-(?P<c2>\d{4})(?![\d-])"
)
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?<!\.)")
_DOMAIN = re.compile(r"(?<![\w.@])([A-Za-z0-9-]+)((?:\.[A-Za-z]{2,4})*\.(?:" + "|".join(TOP_DOMAINS) + r"))\b(?![.@])")
_FILE = re.compile(r"(?<=[\w가-힣])\.(" + "|".join(FILE_EXTENSIONS) + r")\b", re.IGNORECASE)
_CODE = re.compile(r"(" + "|".join(_CODE_WORDS) + r")(\s*:?\s*)(\d{2,})(?!\d|[가-힣]|[.,]\d)")
_MDY = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
_WEEKDAY = re.compile(r"\s?\(([월화수목금토일])\)")
_WEEKDAY_RANGE = re.compile(r"\s?\(([월화수목금토일])\s?[〜~～-]\s?([월화수목금토일])\)")
#: a wave dash between dates or numbers: from ... (to)
_FROM = re.compile(r"(?<=[일월년)])\s*[〜～~]\s*(?=\d)")
#: a range of numbers: "1970〜1980년대", "3월10〜15일" (dates: 부터), "5~10개" (counts: 다섯에서 열 개)
_NUMBER_RANGE = re.compile(r"(?<![\d.-])(\d+)\s*(?:[〜～~]|-(?=\d+\s*[가-힣]))\s*(?=\d+\s*([가-힣]*))")
_DATE_UNITS = ("일", "월", "년", "시", "분", "초", "주", "세기")
#: a minus sign before a number (not a hyphen between two)
_MINUS = re.compile(r"(?<![\w.)-])-(?=\d)")
#: fractions: "3/4" 사분의 삼, "√1/2" 이분의 루트 일, with a following unit or particle
_FRACTION = re.compile(r"(?<![\d/])(√)?(\d+)/(\d+)(?![\d/])")
_NEGATIVE_FRACTION = re.compile(r"(?<![\w/-])-(?=√?\d+(?:과|와)?√?\d*/\d)")
_ISO_DATE = re.compile(r"(?<![\d.])(\d{4})[-./]\s?(\d{1,2})[-./]\s?(\d{1,2})(?![\d])\.?")
_TIME = re.compile(r"(?:(오전|오후|새벽|저녁|밤|아침)\s*)?(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])")
_CURRENCY = re.compile(rf"([₩$€£¥])\s?({NUM})(\s?[만억조])?")
_CURRENCY_CODE_AFTER = re.compile(rf"(?<![\d.,])({NUM})\s?(?P<code>{'|'.join(re.escape(c) for c in CURRENCY_CODES)})"
                                  r"(?![A-Za-z])")
_CURRENCY_CODE = re.compile(rf"(?<![A-Za-z])(?P<code>(?i:{'|'.join(re.escape(c) for c in CURRENCY_CODES)}))\s?"
                            rf"(?P<amount>{NUM})(?P<mag>\s?[만억조])?")
# a run of digits is matched from its first digit only ((?<!\d)): tried from every digit, "\d+" rescans the rest
# of the run each time, quadratic in its length
_MAGNITUDE_RE = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s?([십백천]?[만억조]|[백천](?=\s?(?:원|달러|명|개)|\s|$|[^\w]))")
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_PER_ALT = "|".join(re.escape(u) for u in sorted(_PER_UNITS, key=len, reverse=True))
_UNIT = re.compile(rf"(-)?(?<!\d)({NUM})\s?((?:{_UNIT_ALT})(?:/(?:{_PER_ALT}))?)(?![A-Za-z])")
#: a unit right after a spelled-out fraction ("이분의 일kg")
_UNIT_AFTER_WORDS = re.compile(rf"(?<=[가-힣])((?:{_UNIT_ALT})(?:/(?:{_PER_ALT}))?)(?![A-Za-z])")
_NTH = re.compile(r"(?<!\d)(\d+)\s?번째")
_COUNTER = re.compile(
    rf"(?<!\d)({NUM})\s?(" + "|".join(sorted(set(NATIVE_COUNTERS + SINO_COUNTERS), key=len, reverse=True)) + ")"
)
_LATIN = re.compile(r"(?<![A-Za-z])([A-Z]{1,6})(?![A-Za-z])")
_NEGATIVE = re.compile(rf"(?<![\w.])-({NUM})")
_NUMBER = re.compile(NUM)
_NATIVE_SET = frozenset(NATIVE_COUNTERS)


def say(text: str) -> str:
    """A written number in Sino-Korean (decimals with 점)."""
    return decimal(text) if "." in text else number(text)


def _counted(match: re.Match[str]) -> str:
    """A number and its counter; a digit right after ("3월2일") starts a new word."""
    spoken = _counted_words(match)
    return spoken + " " if match.string[match.end():match.end() + 1].isdigit() else spoken


def _counted_words(match: re.Match[str]) -> str:
    amount, counter = match.group(1), match.group(2)
    value = amount.replace(",", "")
    after = match.string[match.end():match.end() + 6].lstrip()
    if len(value) > MAX_SINO_DIGITS:  # an id or a code, not a count
        return f"{say(amount)} {counter}"
    if counter == "월" and value.isdigit():
        return month(int(value))
    use_native = counter in _NATIVE_SET and value.isdigit() and 0 < int(value) < 100
    if counter == "번" and after.startswith(_LABEL_NOUNS):
        use_native = False
    if counter == "대" and value.isdigit() and int(value) % 10 == 0:  # 20대 = one's twenties
        use_native = False
    spoken = native(int(value)) if use_native else say(amount)
    return f"{spoken} {counter}"


def _nth(match: re.Match[str]) -> str:
    if len(match.group(1)) > MAX_SINO_DIGITS:
        return f"{say(match.group(1))} 번째"
    n = int(match.group(1))
    return "첫 번째" if n == 1 else f"{native(n)} 번째"


def _time(match: re.Match[str]) -> str:
    period, h, m, s = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    if h > 24 or m > 59:
        return match.group(0)
    hour = "영" if h == 0 else sino(h) if h == 24 else native(h)
    spoken = (period + " " if period else "") + f"{hour} 시"
    if m:
        spoken += f" {sino(m)} 분"
    if s and int(s):
        spoken += f" {sino(int(s))} 초"
    return spoken


def _iso_date(match: re.Match[str]) -> str:
    y, m, d = (int(g) for g in match.groups())
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return match.group(0)
    return f"{sino(y)} 년 {month(m)} {sino(d)} 일"


def _currency(match: re.Match[str]) -> str:
    symbol, amount, magnitude = match.group(1), match.group(2), (match.group(3) or "").strip()
    spoken = say(amount)
    if magnitude:
        spoken = ("" if amount == "1" and magnitude == "만" else spoken) + magnitude
    return f"{spoken} {CURRENCY_SYMBOLS[symbol]}"


def _magnitude(match: re.Match[str]) -> str:
    """"5천만" → 오천만, "1만" → 만, "1억" → 일억, "2.5억" → 이 점 오억."""
    amount, magnitude = match.group(1), match.group(2)
    if amount == "1" and magnitude[0] in "십백천만":
        return magnitude
    return say(amount) + magnitude


def _phone(match: re.Match[str]) -> str:
    groups = [g for g in match.groups() if g]
    return ", ".join(sino_digits(g) for g in groups)


def unit_name(unit: str) -> str:
    """"kg" → 킬로그램, "m/s" → 미터 퍼 초 (a rate: per)."""
    top, _, bottom = unit.partition("/")
    if bottom and unit != "km/h":
        return f"{UNITS[top]} 퍼 {_PER_UNITS[bottom]}"
    return UNITS[unit] if unit in UNITS else UNITS[top]


def _unit(match: re.Match[str]) -> str:
    sign, amount, unit = match.groups()
    spoken = ("마이너스 " if sign else "") + say(amount) + " " + unit_name(unit)
    if unit == "km/h" and not match.string[:match.start()].rstrip().endswith("시속"):
        spoken = "시속 " + spoken
    return spoken


def _latin(match: re.Match[str]) -> str:
    return "".join(LATIN_NAMES[c] for c in match.group(1))


def spell(word: str) -> str:
    """Latin letters by their Korean names ("kr" 케이알), a few words as words ("app" 앱), digits one by one."""
    if word.lower() in LATIN_WORDS:
        return LATIN_WORDS[word.lower()]
    return "".join(LATIN_NAMES.get(c.upper(), sino_digits(c) if c.isdigit() else c) for c in word)


def _domain(name: str) -> str:
    """"nvidia.co.kr" → nvidia 닷 씨오 닷 케이알: the name as written, the suffixes spelled."""
    first, *rest = name.split(".")
    return " 닷 ".join([first] + [spell(part) for part in rest])


def _email(match: re.Match[str]) -> str:
    return f"{match.group(1)} 골뱅이 {_domain(match.group(2))}"


def has_final(syllable: str) -> bool:
    """Whether a Hangul syllable ends in a consonant (받침): it picks 이/가, 을/를, 은/는, 과/와."""
    return "가" <= syllable <= "힣" and (ord(syllable) - 0xAC00) % 28 != 0


#: particle pairs: (after a consonant, after a vowel)
_PARTICLES = {"이": ("이", "가"), "가": ("이", "가"), "을": ("을", "를"), "를": ("을", "를"), "은": ("은", "는"),
              "는": ("은", "는"), "과": ("과", "와"), "와": ("과", "와")}
_PARTICLE = re.compile(r"^([이가을를은는과와])(?=\s|$|[.,!?])")


def agree(spoken: str, rest: str) -> str:
    """The particle that starts ``rest`` made to agree with how ``spoken`` ends ("오분의 사" + 이 → 가)."""
    match = _PARTICLE.match(rest)
    if not match or not spoken:
        return rest
    pair = _PARTICLES[match.group(1)]
    return pair[0 if has_final(spoken[-1]) else 1] + rest[1:]


def _fraction(text: str) -> str:
    """"3/4" → 사분의 삼, "√1/2" → 이분의 루트 일, and a particle right after agrees with the reading."""
    out, last = [], 0
    for match in _FRACTION.finditer(text):
        root, num, den = match.groups()
        spoken = f"{say(den)}분의 {'루트 ' if root else ''}{say(num)}"
        out.append(text[last:match.start()])
        if match.start() > 1 and text[match.start() - 1] in "과와" and text[match.start() - 2].isdigit():
            out.append(" ")  # "1과1/2": 일과 이분의 일
        out.append(spoken)
        rest = text[match.end():]
        fixed = agree(spoken, rest)
        out.append(fixed[:1] if fixed != rest else "")
        last = match.end() + (1 if fixed != rest else 0)
    out.append(text[last:])
    return "".join(out)


def _phone_groups(match: re.Match[str]) -> str:
    groups = [match.group(k) for k in ("area", "area2", "a", "b", "c1", "c2") if match.group(k)]
    spoken = ", ".join(sino_digits(g) for g in groups)
    return f"플러스 {sino_digits(match.group('cc'))}, {spoken}" if match.group("cc") else spoken


def _currency_code(match: re.Match[str]) -> str:
    name = CURRENCY_CODES[match.group("code").upper()]
    amount, magnitude = match.group("amount"), (match.group("mag") or "").strip()
    spoken = ("" if amount == "1" and magnitude == "만" else say(amount)) + magnitude
    return f"{spoken}{'' if name == '원' else ' '}{name}"


def _number_range(match: re.Match[str]) -> str:
    """The first number of a range, and the word for the dash: 부터 in dates, 에서 in counts (다섯에서 열 개)."""
    first, unit = match.group(1), match.group(2)
    if len(first) > MAX_SINO_DIGITS:
        return match.group(0)
    if unit.startswith(_DATE_UNITS) or not unit:
        return f"{first} 부터 "
    counter = next((c for c in sorted(_NATIVE_SET, key=len, reverse=True) if unit.startswith(c)), None)
    value = int(first)
    spoken = native(value, attributive=False) if counter and 0 < value < 100 else say(first)
    return f"{spoken}에서 "


def _mdy(match: re.Match[str]) -> str:
    """"10/30/2024" (month first) or "30/10/2024" (day first, when the first is over 12): 년 월 일."""
    a, b, y = (int(g) for g in match.groups())
    m, d = (b, a) if a > 12 >= b else (a, b)
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return match.group(0)
    return f"{sino(y)} 년 {month(m)} {sino(d)} 일"


_NUMBER_PARTICLE = re.compile(rf"({NUM})([이가을를은는과와](?=\s|$|[.,!?]))?")


def _number_with_particle(text: str) -> str:
    """Bare numbers in Sino-Korean; a particle written right after one agrees with its reading (3을 삼을, 2를 이를)."""
    def one(match: re.Match[str]) -> str:
        spoken = say(match.group(1))
        particle = match.group(2)
        return spoken + (agree(spoken, particle) if particle else "")

    return _NUMBER_PARTICLE.sub(one, text)


def normalize(text: str, locale: str | None = None) -> str:
    """Korean written text → what a person reads aloud (``locale`` is accepted for symmetry; unused)."""
    text = clean(text)
    if "@" in text:
        text = _EMAIL.sub(_email, text)
    if "." in text:
        text = _FILE.sub(lambda m: " 닷 " + spell(m.group(1)), text)
        text = _DOMAIN.sub(lambda m: _domain(m.group(0)), text)
    if any(c.isdigit() for c in text):
        text = _PHONE.sub(_phone_groups, text)
        text = _CODE.sub(lambda m: m.group(1) + m.group(2) + sino_digits(m.group(3), "영"), text)
        text = _ISO_DATE.sub(_iso_date, text)
        text = _MDY.sub(_mdy, text)
        if "(" in text:
            text = _WEEKDAY_RANGE.sub(lambda m: f" {WEEKDAYS[m.group(1)]}부터 {WEEKDAYS[m.group(2)]}", text)
            text = _WEEKDAY.sub(lambda m: " " + WEEKDAYS[m.group(1)], text)
        text = _FROM.sub(" 부터 ", text)
        text = _NUMBER_RANGE.sub(_number_range, text)
        if "/" in text:
            text = _NEGATIVE_FRACTION.sub("마이너스 ", text)
            text = _fraction(text)
            text = _UNIT_AFTER_WORDS.sub(lambda m: " " + ("킬로미터 퍼 시간" if m.group(1) == "km/h"
                                                          else unit_name(m.group(1))), text)
        text = _CURRENCY_CODE.sub(_currency_code, text)
        text = _CURRENCY_CODE_AFTER.sub(lambda m: f"{say(m.group(1))} {CURRENCY_CODES[m.group('code')]}", text)
        text = _TIME.sub(_time, text)
        text = _CURRENCY.sub(_currency, text)
        text = _MINUS.sub("마이너스 ", text)
        text = _MAGNITUDE_RE.sub(_magnitude, text)
        text = _UNIT.sub(_unit, text)
        text = _NTH.sub(_nth, text)
        text = _COUNTER.sub(_counted, text)
        text = _NEGATIVE.sub(lambda m: "마이너스 " + say(m.group(1)), text)
        text = _number_with_particle(text)
    text = _LATIN.sub(_latin, text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()

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
    "kW": "킬로와트", "W": "와트", "V": "볼트", "cc": "씨씨", "평": "평",
}
CURRENCY_SYMBOLS = {"₩": "원", "$": "달러", "€": "유로", "£": "파운드", "¥": "엔"}

NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PHONE = re.compile(r"(?<![\d-])(0\d{1,2})[-. ](\d{3,4})[-. ](\d{4})(?![\d-])|(?<![\d-])(1[5-9]\d{2})-(\d{4})(?![\d-])")
_ISO_DATE = re.compile(r"\b(\d{4})[-./]\s?(\d{1,2})[-./]\s?(\d{1,2})\b\.?")
_TIME = re.compile(r"(?:(오전|오후|새벽|저녁|밤|아침)\s*)?(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])")
_CURRENCY = re.compile(rf"([₩$€£¥])\s?({NUM})(\s?[만억조])?")
# a run of digits is matched from its first digit only ((?<!\d)): tried from every digit, "\d+" rescans the rest
# of the run each time, quadratic in its length
_MAGNITUDE_RE = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s?([십백천]?[만억조]|[백천](?=\s?(?:원|달러|명|개)|\s|$|[^\w]))")
_UNIT = re.compile(rf"(-)?(?<!\d)({NUM})\s?(" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
                   + r")(?![A-Za-z])")
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
    spoken = (period + " " if period else "") + f"{native(h) if h else '영'} 시"
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


def _unit(match: re.Match[str]) -> str:
    sign, amount, unit = match.groups()
    spoken = ("마이너스 " if sign else "") + say(amount) + " " + UNITS[unit]
    if unit == "km/h" and not match.string[:match.start()].rstrip().endswith("시속"):
        spoken = "시속 " + spoken
    return spoken


def _latin(match: re.Match[str]) -> str:
    return "".join(LATIN_NAMES[c] for c in match.group(1))


def normalize(text: str, locale: str | None = None) -> str:
    """Korean written text → what a person reads aloud (``locale`` is accepted for symmetry; unused)."""
    text = clean(text)
    if any(c.isdigit() for c in text):
        text = _PHONE.sub(_phone, text)
        text = _ISO_DATE.sub(_iso_date, text)
        text = _TIME.sub(_time, text)
        text = _CURRENCY.sub(_currency, text)
        text = _MAGNITUDE_RE.sub(_magnitude, text)
        text = _UNIT.sub(_unit, text)
        text = _NTH.sub(_nth, text)
        text = _COUNTER.sub(_counted, text)
        text = _NEGATIVE.sub(lambda m: "마이너스 " + say(m.group(1)), text)
        text = _NUMBER.sub(lambda m: say(m.group(0)), text)
    text = _LATIN.sub(_latin, text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()

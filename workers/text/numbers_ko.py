"""Korean number words: Sino-Korean (일, 이, 삼 ...) and native Korean (하나, 둘, 셋 ...).

Korean reads a number with one of two systems depending on the counter that follows: "3개" is 세 개 (native)
but "3월" is 삼월 (Sino-Korean). Native numbers exist only below 100; above, Sino-Korean is used.
"""

from __future__ import annotations

SINO_DIGITS = "영일이삼사오육칠팔구"
_SINO_SMALL = ("", "십", "백", "천")
_SINO_LARGE = ("", "만", "억", "조", "경")
_NATIVE_ONES = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")
#: forms used right before a counter ("한 개", "두 명", "스무 살")
_ATTRIBUTIVE = {"하나": "한", "둘": "두", "셋": "세", "넷": "네", "스물": "스무"}
#: months with a sound change: 6월 유월, 10월 시월
MONTH_NAMES = {6: "유월", 10: "시월"}
#: longest digit string read as a number (up to 경, 10^16); longer ones are ids or codes, read digit by
#: digit (and never parsed: Python refuses int() of more than 4300 digits)
MAX_SINO_DIGITS = 20


def _group(n: int) -> str:
    """0–9999 in Sino-Korean; a leading 1 before 십/백/천 is silent (십, 백, 천 — not 일십)."""
    out = []
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if not digit:
            continue
        if power and digit == 1:
            out.append(_SINO_SMALL[power])
        else:
            out.append(SINO_DIGITS[digit] + _SINO_SMALL[power])
    return "".join(out)


def sino(n: int) -> str:
    """Sino-Korean: 2026 → 이천이십육, 10000 → 만, 150000000 → 일억오천만."""
    if n < 0:
        return "마이너스 " + sino(-n)
    if n == 0:
        return "영"
    if n >= 10 ** (4 * len(_SINO_LARGE)):
        return sino_digits(str(n))
    parts = []
    scale = 0
    while n:
        n, group = divmod(n, 10000)
        if group:
            word = _group(group)
            if scale == 1 and group == 1:  # 만, not 일만
                word = ""
            parts.append(word + _SINO_LARGE[scale])
        scale += 1
    return "".join(reversed(parts))


def number(text: str) -> str:
    """A digit string (commas allowed) in Sino-Korean; a longer one than MAX_SINO_DIGITS digit by digit."""
    plain = text.replace(",", "")
    return sino_digits(plain, "영") if len(plain) > MAX_SINO_DIGITS else sino(int(plain))


def sino_digits(text: str, zero: str = "공") -> str:
    """Digit by digit (phone numbers): "010" → 공일공."""
    return "".join(zero if d == "0" else SINO_DIGITS[int(d)] for d in text if d.isdigit())


def native(n: int, attributive: bool = True) -> str:
    """Native Korean for 1–99 ("세", "스무", "스물한"); other values fall back to Sino-Korean.
    ``attributive``: the form used before a counter (한/두/세/네/스무)."""
    if not 0 < n < 100:
        return sino(n)
    tens, ones = divmod(n, 10)
    if ones:
        word = _NATIVE_ONES[ones]
        if attributive:
            word = _ATTRIBUTIVE.get(word, word)
        return _NATIVE_TENS[tens] + word
    word = _NATIVE_TENS[tens]
    return _ATTRIBUTIVE.get(word, word) if attributive else word


def decimal(text: str) -> str:
    """"3.14" → 삼 점 일사."""
    whole, _, frac = text.replace(",", "").partition(".")
    head = number(whole) if whole else "영"
    return f"{head} 점 {''.join(SINO_DIGITS[int(d)] for d in frac)}" if frac else head


def month(n: int) -> str:
    """6 → 유월, 10 → 시월, others Sino-Korean + 월."""
    return MONTH_NAMES.get(n, sino(n) + "월")

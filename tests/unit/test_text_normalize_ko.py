"""The Korean normalizer's output, pinned per rule family."""

import pytest

from tests.deadline import within
from vtts.workers.text.normalize_ko import normalize

CASES = {
    "native counters": [("사과 3개와 학생 20명", "사과 세 개와 학생 스무 명"), ("25살, 21살", "스물다섯 살, 스물한 살"),
                        ("2시간 동안 3마리", "두 시간 동안 세 마리")],
    "sino counters": [("3층, 5분, 10초", "삼 층, 오 분, 십 초"), ("3개월 동안 2주", "삼 개월 동안 이 주"),
                      ("20세", "이십 세")],
    "번 as count and as label": [("3번 출구로 나가서 2번 돌아요", "삼 번 출구로 나가서 두 번 돌아요"),
                                  ("1번째 2번째", "첫 번째 두 번째")],
    "dates": [("2026년 1월 20일", "이천이십육 년 일월 이십 일"), ("6월 10일, 10월 3일", "유월 십 일, 시월 삼 일"),
              ("2026-01-20", "이천이십육 년 일월 이십 일")],
    "times": [("오후 3시 30분", "오후 세 시 삼십 분"), ("14:30에", "열네 시 삼십 분에"),
              ("오전 9:05", "오전 아홉 시 오 분")],
    "currency": [("5,000원", "오천 원"), ("₩15000, $30, €5", "만오천 원, 삼십 달러, 오 유로"),
                 ("1만 원과 3억 5천만 원", "만 원과 삼억 오천만 원")],
    "phone numbers": [("010-1234-5678", "공일공, 일이삼사, 오육칠팔"), ("1588-1234", "일오팔팔, 일이삼사")],
    "units": [("5km, 3.5kg", "오 킬로미터, 삼 점 오 킬로그램"), ("-3°C, 45%", "마이너스 삼 도, 사십오 퍼센트"),
              ("시속 60km/h", "시속 육십 킬로미터")],
    "latin abbreviations": [("KTX와 AI", "케이티엑스와 에이아이")],
    "plain numbers and text": [("3.14와 100", "삼 점 일사와 백"), ("안녕하세요.", "안녕하세요.")],
}


@pytest.mark.parametrize(("written", "spoken"), [case for cases in CASES.values() for case in cases],
                         ids=[f"{family}-{i}" for family, cases in CASES.items() for i in range(len(cases))])
def test_normalize(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_long_digit_strings_are_read_digit_by_digit_in_linear_time() -> None:
    """4096 digits took 5.6 s (four rules rescanned the run from every digit) and a number reading of
    hundreds of 경 groups; over 20 digits it is an id or a code: digit by digit, and fast."""
    with within(2.0, "normalize()"):
        spoken = normalize("1" * 4096)
    assert spoken == "일" * 4096
    assert normalize("번호 12345678901234567890123") == "번호 일이삼사오육칠팔구영일이삼사오육칠팔구영일이삼"
    assert normalize("1" * 5000 + "개")  # past Python's 4300-digit int() limit: no ValueError

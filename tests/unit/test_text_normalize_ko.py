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
    # issue 19: one case per rule family, written here (not taken from the public cases)
    "phone numbers by group, with a country code": [
        ("국제전화 +82 10-9876-5432, 사무실 (02) 345-6789",
         "국제전화 플러스 팔이, 일공, 구팔칠육, 오사삼이, 사무실 공이, 삼사오, 육칠팔구"),
        ("서울 +82-2-123-4567", "서울 플러스 팔이, 이, 일이삼, 사오육칠")],
    "e-mail, domains and file names": [
        ("ceo@example.co.kr 으로, 홈페이지 shop.com", "ceo 골뱅이 example 닷 씨오 닷 케이알 으로, 홈페이지 shop 닷 컴"),
        ("사진.PNG", "사진 닷 피엔지")],
    "codes digit by digit": [("인증번호 4071, 카드 끝자리 9021", "인증번호 사영칠일, 카드 끝자리 구영이일"),
                             ("빈 자리 20개", "빈 자리 스무 개")],
    "month-first dates, weekdays and ranges": [
        ("12/25/2025 공휴일", "이천이십오 년 십이월 이십오 일 공휴일"),
        ("3월2일(월)〜6일(금), 7〜9일(화〜목)",
         "삼월 이 일 월요일 부터 육 일 금요일, 칠 부터 구 일 화요일부터 목요일")],
    "fractions and particle agreement": [
        ("인구의 2/3가 찬성, 참가자의 3/5이 왔다", "인구의 삼분의 이가 찬성, 참가자의 오분의 삼이 왔다"),
        ("1과3/4 컵, √2/3", "일과 사분의 삼 컵, 삼분의 루트 이"), ("사과 2를 더해", "사과 이를 더해")],
    "composite units and more units": [
        ("10m/s, 5kg/m, 7h, 40s, 90N, 3000rpm",
         "십 미터 퍼 초, 오 킬로그램 퍼 미터, 칠 시간, 사십 초, 구십 뉴턴, 삼천 분당회전수"),
        ("1/2kg과 -2/3km", "이분의 일 킬로그램과 마이너스 삼분의 이 킬로미터")],
    "currency codes": [("EUR 500, krw 7000, CNY 80, 100 USD", "오백 유로, 칠천원, 팔십 위안, 백 달러")],
    "count ranges and minus signs": [("5~10개, 3-4명, 기온 -2.5도",
                                      "다섯에서 열 개, 셋에서 네 명, 기온 마이너스 이 점 오 도")],
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

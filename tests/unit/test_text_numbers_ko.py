import pytest

from vtts.workers.text.numbers_ko import decimal, month, native, sino, sino_digits


@pytest.mark.parametrize(("n", "spoken"), [
    (0, "영"), (1, "일"), (10, "십"), (11, "십일"), (20, "이십"), (100, "백"), (1000, "천"), (2026, "이천이십육"),
    (10000, "만"), (15000, "만오천"), (100000000, "일억"), (150000000, "일억오천만"), (-3, "마이너스 삼"),
])
def test_sino(n: int, spoken: str) -> None:
    assert sino(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [
    (1, "한"), (2, "두"), (3, "세"), (4, "네"), (5, "다섯"), (10, "열"), (20, "스무"), (21, "스물한"), (99, "아흔아홉"),
    (100, "백"),
])
def test_native_before_a_counter(n: int, spoken: str) -> None:
    assert native(n) == spoken


def test_native_standalone_and_others() -> None:
    assert native(1, attributive=False) == "하나"
    assert native(20, attributive=False) == "스물"
    assert month(6) == "유월" and month(10) == "시월" and month(3) == "삼월"
    assert decimal("3.14") == "삼 점 일사"
    assert sino_digits("010") == "공일공"

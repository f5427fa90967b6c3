import pytest

from vtts.workers.text.say_as import say_as


@pytest.mark.parametrize(("text", "kind", "fmt", "spoken"), [
    ("abc1", "characters", "", "A-B-C-one"),
    ("NASA", "spell-out", "", "N-A-S-A"),
    ("1,234", "cardinal", "", "one thousand two hundred thirty-four"),
    ("-3.5", "number", "", "minus three point five"),
    ("3", "ordinal", "", "third"),
    ("21st", "ordinal", "", "twenty-first"),
    ("2048", "digits", "", "two zero four eight"),
    ("+1 555 123 4567", "telephone", "", "plus one, five five five, one two three, four five six seven"),
    ("03/04/1990", "date", "mdy", "March fourth, nineteen ninety"),
    ("03/04/1990", "date", "dmy", "the third of April, nineteen ninety"),
    ("2026-01-20", "date", "", "January twentieth, twenty twenty-six"),
    ("1999", "date", "y", "nineteen ninety-nine"),
    ("5:30pm", "time", "hms12", "five thirty P-M"),
])
def test_english(text: str, kind: str, fmt: str, spoken: str) -> None:
    assert say_as(text, kind, fmt, "en") == spoken


@pytest.mark.parametrize(("text", "kind", "fmt", "spoken"), [
    ("KTX", "characters", "", "케이 티 엑스"),
    ("1500", "cardinal", "", "천오백"),
    ("3", "ordinal", "", "세 번째"),
    ("2048", "digits", "", "이영사팔"),
    ("010-1234-5678", "telephone", "", "공일공, 일이삼사, 오육칠팔"),
    ("2026-01-20", "date", "", "이천이십육 년 일월 이십 일"),
    ("14:30", "time", "", "열네 시 삼십 분"),
])
def test_korean(text: str, kind: str, fmt: str, spoken: str) -> None:
    assert say_as(text, kind, fmt, "ko") == spoken


def test_other_languages_read_as_written() -> None:
    assert say_as("42", "cardinal", "", "fr") == "42"

import pytest

from vtts.workers.text.numbers_en import (
    cardinal,
    decade,
    decimal,
    digits,
    fraction,
    house_number,
    number,
    ordinal,
    year,
)


@pytest.mark.parametrize(("n", "spoken"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty-two"), (100, "one hundred"),
    (101, "one hundred one"), (1234, "one thousand two hundred thirty-four"), (1_000_000, "one million"),
    (2_000_500, "two million five hundred"), (-5, "minus five"),
])
def test_cardinal(n: int, spoken: str) -> None:
    assert cardinal(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (12, "twelfth"),
    (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth"), (1003, "one thousand third"),
])
def test_ordinal(n: int, spoken: str) -> None:
    assert ordinal(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [
    (1905, "nineteen oh five"), (1900, "nineteen hundred"), (2000, "two thousand"), (2008, "two thousand eight"),
    (2010, "twenty ten"), (2026, "twenty twenty-six"), (1066, "ten sixty-six"), (999, "nine hundred ninety-nine"),
])
def test_year(n: int, spoken: str) -> None:
    assert year(n) == spoken


def test_decimals_digits_and_long_numbers() -> None:
    assert decimal("3.14") == "three point one four"
    assert decimal(".5") == "point five"
    assert decimal("1,234.5") == "one thousand two hundred thirty-four point five"
    assert digits("0042") == "zero zero four two"
    assert number("007") == "zero zero seven"
    assert number("1,000") == "one thousand"
    assert number("1234567890123456") == digits("1234567890123456")


@pytest.mark.parametrize(("num", "den", "spoken"), [
    (1, 2, "one half"), (3, 2, "three halves"), (1, 4, "one quarter"), (3, 4, "three quarters"),
    (2, 3, "two thirds"), (5, 8, "five eighths"), (7, 250, "seven over two hundred fifty"),
])
def test_fraction(num: int, den: int, spoken: str) -> None:
    assert fraction(num, den) == spoken


def test_decade() -> None:
    assert decade(1990) == "nineteen nineties"
    assert decade(80) == "eighties"
    assert decade(2000) == "two thousands"


def test_house_numbers_are_said_in_pairs() -> None:
    assert house_number("1428") == "fourteen twenty-eight"
    assert house_number("708") == "seven oh eight"
    assert house_number("1200") == "twelve hundred"
    assert house_number("95051") == "ninety-five thousand fifty-one"


def test_grouped_cardinals_past_fifteen_digits() -> None:
    """Thousands commas say the writer meant a quantity: read it (up to sextillions); bare long runs stay digits."""
    assert number("2,000,000,000,000,000,000") == "two quintillion"
    assert number("2000000000000000000") == digits("2000000000000000000")

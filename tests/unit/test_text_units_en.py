"""The English unit table: SI prefixes, powers, composites and the case-insensitive fallback."""

import pytest

from vtts.workers.text.units_en import LOWER, UNITS, lookup, per


@pytest.mark.parametrize(("symbol", "names"), [
    ("µs", ("microsecond", "microseconds")), ("kPa", ("kilopascal", "kilopascals")),
    ("GWh", ("gigawatt hour", "gigawatt hours")), ("km³", ("cubic kilometer", "cubic kilometers")),
    ("m2", ("square meter", "square meters")), ("tbsp", ("tablespoon", "tablespoons")),
    ("mg/kg", ("milligram per kilogram", "milligrams per kilogram")),
    ("m/s²", ("meter per second squared", "meters per second squared")),
    ("KG", ("kilogram", "kilograms")), ("mbps", ("megabit per second", "megabits per second")),
])
def test_lookup(symbol: str, names: tuple[str, str]) -> None:
    assert lookup(symbol) == names


def test_ambiguous_or_wordlike_symbols_are_not_units() -> None:
    """"80 s" is a decade, "5 A" a grade, "in" a word; "mb" could be MB or Mb: none is read as a unit alone."""
    for symbol in ("s", "A", "B", "in", "K"):
        assert symbol not in UNITS
    assert "mb" not in LOWER and "ma" not in LOWER
    assert lookup("xyz") is None and lookup("kg/xyz") is None


def test_per() -> None:
    assert per("yr") == "year" and per("d") == "day" and per("kg") == "kilogram"

"""The shared unit-table builder of the Chinese and Japanese normalizers."""

from __future__ import annotations

from vtts.workers.text import normalize_ja, normalize_zh
from vtts.workers.text.unit_table import prefixed_units

BASE = {"m": ("metre", True), "A": ("amp", False)}
PREFIXES = {"k": "kilo", "K": "kilo", "m": "milli"}


def test_bare_units_prefixes_and_the_given_table_winning() -> None:
    units = prefixed_units(BASE, PREFIXES, {"mm": "millimetre (given)"})
    assert units["m"] == "metre" and units["km"] == "kilometre" and units["Km"] == "kilometre"
    assert "A" not in units and units["mA"] == "milliamp"  # bare=False: only with a prefix
    assert units["mm"] == "millimetre (given)"  # the given entry is not overwritten by the built one


def test_skip_rules_out_pairs() -> None:
    units = prefixed_units(BASE, PREFIXES, {}, skip=lambda prefix, unit: prefix == "K")
    assert "Km" not in units and "KA" not in units and units["km"] == "kilometre"


def test_the_normalizers_tables() -> None:
    assert normalize_zh.UNITS["km"] == "千米" and normalize_zh.UNITS["KB"] == "千字节"
    assert "Km" not in normalize_zh.UNITS and "A" not in normalize_zh.UNITS and normalize_zh.UNITS["mA"] == "毫安"
    assert normalize_ja.UNITS["km"] == "キロメートル" and normalize_ja.UNITS["KB"] == "キロバイト"
    assert "l" not in normalize_ja.UNITS and normalize_ja.UNITS["ml"] == "ミリリットル"

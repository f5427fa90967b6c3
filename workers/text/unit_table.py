"""Unit tables for languages that name a prefixed unit by joining two words (千米, キロメートル): built from
base units and SI prefixes, so every prefixed form reads the same way, rather than listed one by one."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def prefixed_units(base: Mapping[str, tuple[str, bool]], prefixes: Mapping[str, str], other: Mapping[str, str],
                   skip: Callable[[str, str], bool] = lambda prefix, unit: False) -> dict[str, str]:
    """Symbol → spoken name: ``other`` as given (it wins over a built form), then each base unit alone where its
    ``bare`` flag allows (bare=False: read only with a prefix, as "5A级" is a grade but "5mA" a current) and
    with every prefix that ``skip(prefix, unit)`` does not rule out."""
    units = dict(other)
    for unit, (name, bare) in base.items():
        if bare:
            units.setdefault(unit, name)
        for prefix, word in prefixes.items():
            if not skip(prefix, unit):
                units.setdefault(prefix + unit, word + name)
    return units

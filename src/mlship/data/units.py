"""Units a source column can be converted between, and the exact factors that relate them.

Every unit maps onto its dimension's base unit as ``base = value * scale + offset``. Linear units
have no offset; temperatures are the only affine ones. Scales and offsets are exact fractions, so a
conversion reduces to integers (``mm -> m`` is ``/ 1000``, ``C -> F`` is ``(x * 9 + 160) / 5``) and
simple values come out exactly instead of as ``100.00000000000001``.

Money only knows ``cents`` (the minor unit) and ``units`` (the major unit of the same currency):
converting between two currencies needs an exchange rate, which is data, not a unit factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


class UnitError(ValueError):
    """A conversion that cannot be done: an unknown unit or two units of different dimensions."""


@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    scale: Fraction
    offset: Fraction = Fraction(0)


@dataclass(frozen=True)
class Conversion:
    """``converted = value * scale + offset``, both exact."""

    scale: Fraction
    offset: Fraction

    def integers(self) -> tuple[int, int, int]:
        """``(a, b, d)`` with ``converted = (value * a + b) / d``.

        One common denominator keeps every intermediate an integer multiple of the value, so a
        single rounding happens at the final division (``(212 * 5 - 160) / 9`` is exactly 100,
        where ``212 * 5 / 9 - 160 / 9`` is not).
        """
        denominator = math.lcm(self.scale.denominator, self.offset.denominator)
        return (
            self.scale.numerator * (denominator // self.scale.denominator),
            self.offset.numerator * (denominator // self.offset.denominator),
            denominator,
        )


def _linear(dimension: str, factors: dict[str, Fraction]) -> dict[str, Unit]:
    return {name: Unit(name, dimension, scale) for name, scale in factors.items()}


_POUND = Fraction("0.45359237")  # kilograms, by international definition
_CELSIUS_ZERO = Fraction("273.15")  # kelvin
_KIB = 1024

UNITS: dict[str, Unit] = {
    **_linear(
        "length",
        {
            "mm": Fraction(1, 1000),
            "cm": Fraction(1, 100),
            "m": Fraction(1),
            "km": Fraction(1000),
            "in": Fraction("0.0254"),
            "ft": Fraction("0.3048"),
            "mi": Fraction("1609.344"),
        },
    ),
    **_linear(
        "mass",
        {
            "g": Fraction(1, 1000),
            "kg": Fraction(1),
            "lb": _POUND,
            "oz": _POUND / 16,
        },
    ),
    **_linear(
        "time",
        {
            "ms": Fraction(1, 1000),
            "s": Fraction(1),
            "min": Fraction(60),
            "h": Fraction(3600),
            "d": Fraction(86400),
        },
    ),
    **_linear("money", {"cents": Fraction(1, 100), "units": Fraction(1)}),
    **_linear(
        "data",
        {
            "B": Fraction(1),
            "KB": Fraction(1000),
            "MB": Fraction(1000**2),
            "GB": Fraction(1000**3),
            "KiB": Fraction(_KIB),
            "MiB": Fraction(_KIB**2),
            "GiB": Fraction(_KIB**3),
        },
    ),
    "K": Unit("K", "temperature", Fraction(1)),
    "C": Unit("C", "temperature", Fraction(1), _CELSIUS_ZERO),
    "F": Unit("F", "temperature", Fraction(5, 9), _CELSIUS_ZERO - Fraction(32 * 5, 9)),
}


def known_units() -> str:
    """The unit table as ``dimension: unit, unit; ...``, for error messages."""
    by_dimension: dict[str, list[str]] = {}
    for unit in UNITS.values():
        by_dimension.setdefault(unit.dimension, []).append(unit.name)
    return "; ".join(f"{dim}: {', '.join(names)}" for dim, names in by_dimension.items())


def lookup(name: str) -> Unit:
    """The unit called ``name`` (case matters: ``MB`` is not ``mb``, ``min`` is not ``m``)."""
    try:
        return UNITS[name]
    except KeyError:
        raise UnitError(f"unknown unit {name!r}; known units are {known_units()}") from None


def conversion(from_unit: str, to_unit: str) -> Conversion:
    """The exact affine map from ``from_unit`` to ``to_unit``; :class:`UnitError` if there is none.

    Going through the base unit: ``base = x * s1 + o1`` and ``y = (base - o2) / s2``.
    """
    source, target = lookup(from_unit), lookup(to_unit)
    if source.dimension != target.dimension:
        raise UnitError(
            f"cannot convert {from_unit!r} ({source.dimension}) to {to_unit!r} "
            f"({target.dimension}): they measure different things"
        )
    return Conversion(
        scale=source.scale / target.scale,
        offset=(source.offset - target.offset) / target.scale,
    )

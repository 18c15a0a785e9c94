"""Decimal helpers for money: exact units, rounding up to a step, formatting.

Amounts are :class:`decimal.Decimal` everywhere. In the database a reservation is an integer
number of *units* at the currency's scale (10^-8 for every default coin), so equality is exact.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

DEFAULT_SCALE = 8


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """Parse an amount given as text (never a float). Raises ValueError on garbage or non-finite."""
    if isinstance(text, float):  # pragma: no cover - guarded by typing, kept for safety
        raise TypeError("money must not be a float")
    try:
        value = Decimal(text) if not isinstance(text, Decimal) else text
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def round_up(amount: Decimal, step: Decimal) -> Decimal:
    """Round ``amount`` UP to a whole multiple of ``step`` (in the merchant's favour)."""
    if step <= 0:
        raise ValueError("step must be positive")
    steps = (amount / step).to_integral_value(rounding=ROUND_CEILING)
    return (steps * step).quantize(step)


def round_down(amount: Decimal, step: Decimal) -> Decimal:
    """Round ``amount`` DOWN to a whole multiple of ``step``."""
    if step <= 0:
        raise ValueError("step must be positive")
    steps = (amount / step).to_integral_value(rounding=ROUND_FLOOR)
    return (steps * step).quantize(step)


def to_units(amount: Decimal, scale: int = DEFAULT_SCALE) -> int | None:
    """``amount`` as an integer count of 10^-scale, or None when it is not exactly representable.

    An ETH deposit with 12 decimals is not representable at scale 8 and must never be truncated
    into a false exact match.
    """
    scaled = amount.scaleb(scale)
    integral = scaled.to_integral_value()
    if scaled != integral:
        return None
    return int(integral)


def to_units_ceil(amount: Decimal, scale: int = DEFAULT_SCALE) -> int:
    """``amount`` in units, rounded up (for thresholds computed from prices)."""
    return int(amount.scaleb(scale).to_integral_value(rounding=ROUND_CEILING))


def to_units_floor(amount: Decimal, scale: int = DEFAULT_SCALE) -> int:
    """``amount`` in units, rounded down."""
    return int(amount.scaleb(scale).to_integral_value(rounding=ROUND_FLOOR))


def from_units(units: int, scale: int = DEFAULT_SCALE) -> Decimal:
    """Integer units back to a Decimal with exactly ``scale`` decimals."""
    return Decimal(units).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))


def step_units(step: Decimal, scale: int = DEFAULT_SCALE) -> int:
    """A step as units; raises ValueError when the step is finer than the scale."""
    units = to_units(step, scale)
    if units is None or units <= 0:
        raise ValueError(f"step {step} is not a positive multiple of 1e-{scale}")
    return units


def format_amount(amount: Decimal, step: Decimal) -> str:
    """Text of an amount with exactly the step's number of decimals (``29.0037``), always in
    fixed-point: ``str`` would write 0.00000001 as ``1E-8``, which no wallet or QR payload takes."""
    return format(amount.quantize(step), "f")


def format_units(units: int, step: Decimal, scale: int = DEFAULT_SCALE) -> str:
    """Text of a unit amount with the step's number of decimals."""
    return format_amount(from_units(units, scale), step)


def decimals_of(value: Decimal) -> int:
    """Number of decimals in a Decimal's canonical form (``Decimal('1.50')`` -> 2)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)

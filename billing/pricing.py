"""Charge models as small pure functions: price terms in, invoice lines out.

No models, no database, no floats. Every function takes quantities and price
terms and returns a list of :class:`Line`; the billing services turn those into
invoice lines.

Conventions shared by every function here:

- Money and quantities are ``Decimal`` (``int`` is accepted). A ``float``, NaN
  or infinity raises :class:`PricingError`, as does any other bad input.
- Percentages are given in percent: ``Decimal(20)`` means 20 %.
- Arithmetic is exact (``fractions.Fraction``); each line is rounded once, to
  the currency's minor unit (``customers.money.minor_unit_places``) with ROUND_HALF_UP.
  Totals are sums of rounded lines.
- Every line satisfies ``amount == round_money(quantity * unit_price * proration)``.
  Discounts and credits carry a negative ``unit_price`` and so a negative (or
  zero) amount; every other line's amount is zero or positive.
- Nothing to charge, no line: a zero quantity or a zero proration gives ``[]``,
  and so does a modifier that does not apply (a discount on nothing, a minimum
  already met, overage forgiven by grace). The one exception is a tiered charge's
  base price: graduated, volume and graduated percentage charge their first
  tier's flat fee even at zero. A line whose quantity is non-zero is kept even
  when its amount rounds to zero, so metered usage stays visible.
- Tiers cover half-open ranges: tier *i* covers ``(previous up_to, up_to]``,
  so a quantity equal to a tier's ``up_to`` falls in that tier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from enum import StrEnum
from fractions import Fraction

from customers.money import MoneyError, minor_unit_places

__all__ = [
    "Line",
    "LineKind",
    "PricingError",
    "Tier",
    "credit",
    "discount_fixed",
    "discount_percent",
    "flat_fee",
    "graduated",
    "graduated_percentage",
    "included_quota",
    "minimum_charge",
    "minimum_commitment",
    "one_time",
    "package",
    "PercentageTier",
    "per_seat",
    "per_unit",
    "percentage",
    "proration_factor",
    "quota_utilisation_discount",
    "round_money",
    "savings",
    "total",
    "validate_tiers",
    "volume",
]

Number = Decimal | int
Ratio = Decimal | Fraction | int

# Quantity arithmetic (tier slices) must never round silently: trap it instead.
_EXACT = Context(prec=200, traps=[Inexact, Rounded, InvalidOperation])
_ZERO = Decimal(0)
_ONE = Decimal(1)


class PricingError(ValueError):
    """Price terms or quantities that cannot be priced (the message says why)."""


class LineKind(StrEnum):
    CHARGE = "charge"
    DISCOUNT = "discount"
    CREDIT = "credit"
    TRUE_UP = "true_up"
    ONE_TIME = "one_time"


_NEGATIVE_KINDS = frozenset({LineKind.DISCOUNT, LineKind.CREDIT})


@dataclass(frozen=True)
class Line:
    """One priced line.

    ``quantity`` and ``unit_price`` are exact; ``amount`` is
    ``quantity * unit_price * proration`` rounded to the currency's minor unit.
    ``proration`` is the exact fraction of the period billed (1 unless prorated).
    Discount and credit lines have ``amount <= 0``, all others ``amount >= 0``.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    kind: LineKind = LineKind.CHARGE
    proration: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        try:
            kind = LineKind(self.kind)
        except ValueError:
            raise PricingError(
                f"unknown line kind {self.kind!r}; expected one of {[k.value for k in LineKind]}"
            ) from None
        object.__setattr__(self, "kind", kind)
        _require_description(self.description)
        for field in ("quantity", "unit_price", "amount"):
            value = getattr(self, field)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise PricingError(f"line {field} must be a finite Decimal, got {value!r}")
        if not isinstance(self.proration, Fraction) or not 0 <= self.proration <= 1:
            raise PricingError(f"line proration must be a Fraction in [0, 1], got {self.proration!r}")
        if kind in _NEGATIVE_KINDS and self.amount > 0:
            raise PricingError(f"a {kind} line cannot have a positive amount ({self.amount})")
        if kind not in _NEGATIVE_KINDS and self.amount < 0:
            raise PricingError(f"a {kind} line cannot have a negative amount ({self.amount})")


@dataclass(frozen=True)
class Tier:
    """One price tier.

    ``up_to`` is the inclusive upper bound of the tier (``None`` = no bound);
    the tier covers ``(previous tier's up_to, up_to]``. ``unit_price`` and
    ``flat_fee`` are in the currency's major unit and must not be negative.
    """

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            object.__setattr__(self, "up_to", _positive(self.up_to, "tier up_to"))
        object.__setattr__(self, "unit_price", _non_negative(self.unit_price, "tier unit_price"))
        object.__setattr__(self, "flat_fee", _non_negative(self.flat_fee, "tier flat_fee"))


@dataclass(frozen=True)
class PercentageTier:
    """One tier of a graduated percentage charge: a range of the measured amount.

    ``up_to`` is the inclusive upper bound of the tier's amount (``None`` = no bound), as for
    :class:`Tier`; ``rate_percent`` (0..100) is taken of the part of the amount in the tier;
    ``flat_fee`` (>= 0, major unit) is charged once when the amount enters the tier.
    """

    up_to: Decimal | None
    rate_percent: Decimal
    flat_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            object.__setattr__(self, "up_to", _positive(self.up_to, "tier up_to"))
        object.__setattr__(self, "rate_percent", _percent(self.rate_percent, "tier rate_percent"))
        object.__setattr__(self, "flat_fee", _non_negative(self.flat_fee, "tier flat_fee"))


# --- input checks ------------------------------------------------------------


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise PricingError(f"{name} must be a Decimal or int, got {type(value).__name__} {value!r}")
    value = Decimal(value)
    if not value.is_finite():
        raise PricingError(f"{name} must be finite, got {value}")
    return value


def _non_negative(value: object, name: str) -> Decimal:
    value = _decimal(value, name)
    if value < 0:
        raise PricingError(f"{name} must not be negative, got {value}")
    return value


def _positive(value: object, name: str) -> Decimal:
    value = _decimal(value, name)
    if value <= 0:
        raise PricingError(f"{name} must be greater than zero, got {value}")
    return value


def _percent(value: object, name: str) -> Decimal:
    value = _decimal(value, name)
    if not 0 <= value <= 100:
        raise PricingError(f"{name} must be between 0 and 100 percent, got {value}")
    return value


def _ratio(value: object, name: str) -> Fraction:
    if isinstance(value, Fraction):
        ratio = value
    else:
        ratio = Fraction(_decimal(value, name))
    if not 0 <= ratio <= 1:
        raise PricingError(f"{name} must be between 0 and 1, got {ratio}")
    return ratio


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _require_description(description: object) -> None:
    if not isinstance(description, str) or not description.strip():
        raise PricingError("description must be a non-empty string")


def _minor_unit(currency: str) -> tuple[int, int]:
    """(sub_unit, decimal places) for an ISO 4217 code; the places come from ``customers.money``."""
    try:
        places = minor_unit_places(currency)
    except MoneyError as exc:
        raise PricingError(str(exc)) from None
    return 10**places, places


def _rounded(exact: Fraction, currency: str) -> Decimal:
    sub_unit, places = _minor_unit(currency)
    scaled = exact * sub_unit
    magnitude = math.floor(abs(scaled) + Fraction(1, 2))  # half away from zero = ROUND_HALF_UP
    minor_units = magnitude if scaled >= 0 else -magnitude
    return Decimal(minor_units).scaleb(-places, _EXACT)


def _to_decimal(value: Fraction) -> Decimal:
    """A Fraction known to be a terminating decimal (a sum or difference of Decimals)."""
    return _EXACT.divide(Decimal(value.numerator), Decimal(value.denominator))


def _fraction_of(percent: Decimal) -> Decimal:
    """20 (percent) -> Decimal("0.20"), exactly."""
    return percent.scaleb(-2, _EXACT)


def _line(
    description: str,
    *,
    quantity: Decimal,
    unit_price: Decimal,
    currency: str,
    kind: LineKind = LineKind.CHARGE,
    proration: Fraction = Fraction(1),
) -> Line:
    exact = Fraction(quantity) * Fraction(unit_price) * proration
    return Line(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=_rounded(exact, currency),
        kind=kind,
        proration=proration,
    )


# --- basics ------------------------------------------------------------------


def round_money(amount: Decimal | Fraction | int, currency: str) -> Decimal:
    """Round ``amount`` to ``currency``'s minor unit with ROUND_HALF_UP.

    ``amount`` is in the major unit (dollars, kronor, yen). Halves round away
    from zero (``-0.005`` -> ``-0.01``). The result is a Decimal with exactly the
    currency's decimal places (``Decimal("0.00")`` for USD, ``Decimal("0")``
    for JPY). Raises PricingError for floats, non-finite values and unknown
    currency codes.
    """
    if isinstance(amount, Fraction):
        exact = amount
    else:
        exact = Fraction(_decimal(amount, "amount"))
    return _rounded(exact, currency)


def total(lines: Iterable[Line]) -> Decimal:
    """Sum of the lines' (already rounded) amounts; ``Decimal(0)`` for no lines.

    The lines must all be in one currency; this function cannot check that.
    """
    return sum((line.amount for line in lines), _ZERO)


def proration_factor(
    *, period_start: date, period_end: date, active_from: date, active_to: date | None
) -> Fraction:
    """The exact fraction of a billing period during which something was active.

    Days active in the period / days in the period, counting whole calendar days.
    ``period_end`` and ``active_to`` are inclusive (a March period is
    1 March..31 March); ``active_to=None`` means still active. The result is a
    ``Fraction`` in [0, 1]: 1 for the full period, 0 when the active range does
    not overlap the period. Raises PricingError if an end precedes its start or
    if a datetime is given instead of a date.
    """
    for name, value in (
        ("period_start", period_start),
        ("period_end", period_end),
        ("active_from", active_from),
        ("active_to", active_to),
    ):
        if value is None and name == "active_to":
            continue
        if isinstance(value, datetime) or not isinstance(value, date):
            raise PricingError(f"{name} must be a date, got {value!r}")
    if period_end < period_start:
        raise PricingError(f"period_end {period_end} is before period_start {period_start}")
    if active_to is not None and active_to < active_from:
        raise PricingError(f"active_to {active_to} is before active_from {active_from}")
    days_in_period = (period_end - period_start).days + 1
    first = max(period_start, active_from)
    last = period_end if active_to is None else min(period_end, active_to)
    days_active = max(0, (last - first).days + 1)
    return Fraction(days_active, days_in_period)


def savings(*, baseline: Number, optimized: Number) -> Decimal:
    """Verified savings: ``baseline - optimized`` cost, never negative.

    Both costs are non-negative amounts in the same currency. A period where the
    optimized cost exceeds the baseline yields ``Decimal(0)``, not a negative
    saving. Not rounded (it is a measured amount, not a line). Raises
    PricingError for negative or non-Decimal inputs.
    """
    baseline = _non_negative(baseline, "baseline")
    optimized = _non_negative(optimized, "optimized")
    return max(_ZERO, baseline - optimized)


def validate_tiers(tiers: Sequence[Tier | PercentageTier]) -> tuple[Tier | PercentageTier, ...]:
    """Check that tiers are usable and return them as a tuple.

    All tiers are :class:`Tier` or all are :class:`PercentageTier`. There must be at least one
    tier, ``up_to`` must be strictly ascending, and
    only the last tier is unbounded (``up_to=None``): every quantity then falls
    in exactly one tier. Raises PricingError otherwise.
    """
    tiers = tuple(tiers)
    if not tiers:
        raise PricingError("at least one tier is required")
    kind = type(tiers[0]) if isinstance(tiers[0], PercentageTier) else Tier
    for tier in tiers:
        if not isinstance(tier, kind):
            raise PricingError(f"tiers must all be {kind.__name__} instances, got {tier!r}")
    if tiers[-1].up_to is not None:
        raise PricingError("the last tier must be unbounded (up_to=None)")
    bounds = [tier.up_to for tier in tiers[:-1]]
    if any(bound is None for bound in bounds):
        raise PricingError("only the last tier may be unbounded (up_to=None)")
    for lower, upper in zip(bounds, bounds[1:]):
        if upper <= lower:
            raise PricingError(f"tiers must ascend: up_to {upper} follows {lower}")
    return tiers


# --- recurring fees ----------------------------------------------------------


def flat_fee(*, amount: Number, currency: str, description: str, proration: Ratio = 1) -> list[Line]:
    """A flat recurring fee for the period, optionally prorated.

    ``amount`` is the full-period fee (>= 0); ``proration`` is the fraction of the
    period billed, in [0, 1] (see :func:`proration_factor`). Returns one charge
    line of quantity 1 and amount ``round(amount * proration)``; a zero fee still
    gives a line (a $0 plan is shown), a zero proration gives ``[]``.
    Raises PricingError for a negative amount or a proration outside [0, 1].
    """
    _require_description(description)
    amount = _non_negative(amount, "amount")
    proration = _ratio(proration, "proration")
    if proration == 0:
        return []
    return [_line(description, quantity=_ONE, unit_price=amount, currency=currency, proration=proration)]


def per_seat(
    seats: Number, *, unit_price: Number, currency: str, description: str, proration: Ratio = 1
) -> list[Line]:
    """A per-seat recurring fee: ``seats * unit_price * proration``, rounded.

    ``seats`` >= 0 (fractional seats are allowed), ``unit_price`` >= 0 per seat
    per full period, ``proration`` in [0, 1]. One charge line; ``[]`` for zero
    seats or zero proration. Raises PricingError for negative inputs.
    """
    _require_description(description)
    seats = _non_negative(seats, "seats")
    unit_price = _non_negative(unit_price, "unit_price")
    proration = _ratio(proration, "proration")
    if seats == 0 or proration == 0:
        return []
    return [_line(description, quantity=seats, unit_price=unit_price, currency=currency, proration=proration)]


def one_time(*, amount: Number, currency: str, description: str) -> list[Line]:
    """A one-time fee (setup, start package, workshop): one "one_time" line.

    ``amount`` >= 0 in the major unit, rounded to the minor unit. Raises
    PricingError for a negative amount.
    """
    _require_description(description)
    amount = _non_negative(amount, "amount")
    return [_line(description, quantity=_ONE, unit_price=amount, currency=currency, kind=LineKind.ONE_TIME)]


# --- usage -------------------------------------------------------------------


def per_unit(quantity: Number, *, unit_price: Number, currency: str, description: str) -> list[Line]:
    """Usage at a single unit price: ``quantity * unit_price``, rounded.

    ``quantity`` >= 0 (fractional, e.g. 10.5 GB), ``unit_price`` >= 0. One charge
    line, ``[]`` for zero quantity. Raises PricingError for negative inputs.
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    unit_price = _non_negative(unit_price, "unit_price")
    if quantity == 0:
        return []
    return [_line(description, quantity=quantity, unit_price=unit_price, currency=currency)]


def _tier_label(description: str, index: int, lower: Decimal, upper: Decimal | None) -> str:
    if upper is None:
        return f"{description}, tier {index + 1} (above {lower:f})"
    if lower == 0:
        return f"{description}, tier {index + 1} (up to {upper:f})"
    return f"{description}, tier {index + 1} (above {lower:f} up to {upper:f})"


def _tier_flat_fee(label: str, tier: Tier | PercentageTier, currency: str) -> Line:
    return _line(f"{label} flat fee", quantity=_ONE, unit_price=tier.flat_fee, currency=currency)


def _first_tier_fee_at_zero(description: str, tiers: Sequence[Tier | PercentageTier], currency: str) -> list[Line]:
    """The first tier's flat fee charged at quantity zero: the customer has the charge, and its
    first tier is the base price (Lago, Stripe). ``[]`` when the first tier has no flat fee."""
    first = tiers[0]
    if not first.flat_fee:
        return []
    return [_tier_flat_fee(_tier_label(description, 0, _ZERO, first.up_to), first, currency)]


def _tiers_reached(
    quantity: Decimal, tiers: Sequence[Tier | PercentageTier], description: str
) -> Iterator[tuple[str, Decimal, Tier | PercentageTier]]:
    """(label, part of ``quantity`` in the tier, tier) for each tier a positive ``quantity`` reaches,
    lowest first: tier *i* holds ``(previous up_to, up_to]``."""
    lower = _ZERO
    for index, tier in enumerate(tiers):
        if quantity <= lower:
            return
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        yield _tier_label(description, index, lower, tier.up_to), _EXACT.subtract(upper, lower), tier
        if tier.up_to is None:
            return
        lower = tier.up_to


def graduated(quantity: Number, *, tiers: Sequence[Tier], currency: str, description: str) -> list[Line]:
    """Graduated (tiered) pricing: each tier prices only the units that fall in it.

    Tier *i* covers ``(previous up_to, up_to]``. For every tier the quantity
    reaches there is one charge line (units in the tier x the tier's unit price)
    and, if the tier has a non-zero flat fee, a second line for that fee: a
    tier's flat fee is charged once when the tier is entered. Each line is
    rounded on its own; the charge is their sum. At zero quantity the first
    tier's flat fee is still charged (one line, quantity 1: the first tier is
    the base price); zero quantity with no first-tier flat fee gives ``[]``.
    Raises PricingError for a negative quantity or invalid tiers (see
    :func:`validate_tiers`).
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    tiers = validate_tiers(tiers)
    if quantity == 0:
        return _first_tier_fee_at_zero(description, tiers, currency)
    lines: list[Line] = []
    for label, in_tier, tier in _tiers_reached(quantity, tiers, description):
        lines.append(_line(label, quantity=in_tier, unit_price=tier.unit_price, currency=currency))
        if tier.flat_fee:
            lines.append(_tier_flat_fee(label, tier, currency))
    return lines


def volume(quantity: Number, *, tiers: Sequence[Tier], currency: str, description: str) -> list[Line]:
    """Volume pricing: the one tier that contains the total quantity prices all units.

    Tier *i* covers ``(previous up_to, up_to]``, so a quantity equal to a
    boundary uses the lower tier. Returns a charge line of ``quantity x that
    tier's unit price`` plus, if that tier has a non-zero flat fee, a line for the
    fee. At zero quantity the first tier's flat fee is still charged (one line);
    zero quantity with no first-tier flat fee gives ``[]``. Raises PricingError
    for a negative quantity or invalid tiers (see :func:`validate_tiers`).
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    tiers = validate_tiers(tiers)
    if quantity == 0:
        return _first_tier_fee_at_zero(description, tiers, currency)
    lower = _ZERO
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            label = _tier_label(description, index, lower, tier.up_to)
            lines = [_line(label, quantity=quantity, unit_price=tier.unit_price, currency=currency)]
            if tier.flat_fee:
                lines.append(_tier_flat_fee(label, tier, currency))
            return lines
        lower = tier.up_to
    raise AssertionError("validate_tiers guarantees an unbounded last tier")


def graduated_percentage(
    amounts: Sequence[Number], *, tiers: Sequence[PercentageTier], currency: str, description: str
) -> list[Line]:
    """Graduated percentage (payment volume): tiers of the measured amount, each with its own rate.

    ``amounts`` are the period's measured amounts (>= 0, major unit) in the order the events
    arrived; they fill tier 1 up to its ``up_to``, then tier 2, and so on (tier *i* covers
    ``(previous up_to, up_to]`` of the running total). Each tier the running total enters gives
    one line: the part of the amount in the tier x the tier's rate (quantity = that amount,
    unit price = ``rate_percent / 100``, described "<description>, tier 2 (above 1000 up to
    10000) at 2%"), and, if the tier has a non-zero flat fee, a line for
    the fee, charged once for the whole tier (not per event). Because the tiers depend only on
    the running total, pricing the events one by one and pricing their sum give the same lines.
    At a zero total the first tier's flat fee is still charged, as for :func:`graduated`;
    with no first-tier flat fee that is ``[]``. Raises PricingError for a negative amount or
    invalid tiers (see :func:`validate_tiers`).
    """
    _require_description(description)
    measured = [_non_negative(amount, f"amounts[{i}]") for i, amount in enumerate(amounts)]
    tiers = validate_tiers(tiers)
    if not all(isinstance(tier, PercentageTier) for tier in tiers):
        raise PricingError("graduated percentage tiers must be PercentageTier instances")
    amount = _to_decimal(sum((Fraction(value) for value in measured), Fraction(0)))
    if amount == 0:
        return _first_tier_fee_at_zero(description, tiers, currency)
    lines: list[Line] = []
    for label, in_tier, tier in _tiers_reached(amount, tiers, description):
        rate = format(tier.rate_percent.normalize(), "f")
        lines.append(
            _line(f"{label} at {rate}%", quantity=in_tier, unit_price=_fraction_of(tier.rate_percent), currency=currency)
        )
        if tier.flat_fee:
            lines.append(_tier_flat_fee(label, tier, currency))
    return lines


def package(
    quantity: Number,
    *,
    package_size: Number,
    package_price: Number,
    free_units: Number = 0,
    currency: str,
    description: str,
) -> list[Line]:
    """Package pricing: units are sold in blocks of ``package_size``.

    The first ``free_units`` units are free; the rest are billed in whole
    blocks, a partial block counting as a full one (rounded up). One charge line
    with quantity = number of blocks and unit price = ``package_price``; ``[]``
    when no block is billed (zero quantity, or all units free). Raises
    PricingError for a negative quantity, price or free units, or a package size
    that is not greater than zero.
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    package_size = _positive(package_size, "package_size")
    package_price = _non_negative(package_price, "package_price")
    free_units = _non_negative(free_units, "free_units")
    billable = Fraction(quantity) - Fraction(free_units)
    if billable <= 0:
        return []
    blocks = math.ceil(billable / Fraction(package_size))
    return [_line(description, quantity=Decimal(blocks), unit_price=package_price, currency=currency)]


def percentage(
    amounts: Sequence[Number],
    *,
    rate_percent: Number,
    fixed_fee_per_event: Number = 0,
    free_events: int = 0,
    free_amount: Number = 0,
    min_per_event: Number | None = None,
    max_per_event: Number | None = None,
    currency: str,
    description: str,
) -> list[Line]:
    """A percentage of measured amounts (e.g. 20 % of savings), event by event.

    ``amounts`` are the measured amounts (>= 0, major unit) of the period's events, in order.

    Free period: the first events are free while both allowances last, ``free_events`` (the
    first N events) and ``free_amount`` (the first X of measured amount); it ends at whichever
    allowance is used up first (an allowance of 0 is no allowance; with neither there is no
    free period). A free event pays nothing, neither rate nor fixed fee. Every event after the
    free period pays ``rate_percent`` of its amount plus ``fixed_fee_per_event``, including the
    event that crosses the free amount, which pays the rate on its part above the free amount
    (and the whole fixed fee). An event that uses the free amount up exactly is still free.
    Each paying event's fee is then raised to ``min_per_event`` / capped at ``max_per_event``
    when given.

    One rule, whatever settings are present: without a fixed fee, free events or min/max, the
    charge depends only on the sum of the amounts, so pricing the period's total as one amount
    gives the same lines as pricing the events one by one (the billing service relies on it).

    Lines (rounded separately; ``[]`` when no event is charged):

    - the percentage on unclamped events: quantity = their summed amount above the free
      amount, unit price = ``rate_percent / 100`` (omitted when that sum is 0);
    - the fixed fee on unclamped events: quantity = their count (if the fee is non-zero);
    - events raised to the minimum: quantity = count, unit price = ``min_per_event``;
    - events capped at the maximum: quantity = count, unit price = ``max_per_event``.

    Raises PricingError for a negative amount or fee, a rate outside 0..100, or
    ``min_per_event`` above ``max_per_event``.
    """
    _require_description(description)
    rate = _percent(rate_percent, "rate_percent")
    fixed_fee = _non_negative(fixed_fee_per_event, "fixed_fee_per_event")
    free_events = _count(free_events, "free_events")
    allowance = Fraction(_non_negative(free_amount, "free_amount"))
    minimum = None if min_per_event is None else _non_negative(min_per_event, "min_per_event")
    maximum = None if max_per_event is None else _non_negative(max_per_event, "max_per_event")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise PricingError(f"min_per_event {minimum} is above max_per_event {maximum}")
    measured = [_non_negative(amount, f"amounts[{i}]") for i, amount in enumerate(amounts)]

    rate_fraction = Fraction(rate) / 100
    rated_amount = _ZERO
    rated_events = raised_events = capped_events = 0
    counts_events, counts_amount = free_events > 0, allowance > 0
    free = counts_events or counts_amount
    for index, amount in enumerate(measured):
        chargeable = Fraction(amount)
        if free and counts_events and index >= free_events:
            free = False  # the free events ran out first
        if free and counts_amount:
            if allowance == 0:
                free = False  # an earlier event used the free amount up exactly
            else:
                waived = min(allowance, chargeable)
                allowance -= waived
                chargeable -= waived
                free = chargeable == 0  # an event crossing the free amount pays on its part above it
        if free:
            continue
        fee = chargeable * rate_fraction + Fraction(fixed_fee)
        if minimum is not None and fee < minimum:
            raised_events += 1
        elif maximum is not None and fee > maximum:
            capped_events += 1
        else:
            rated_events += 1
            rated_amount = _EXACT.add(rated_amount, _to_decimal(chargeable))

    lines: list[Line] = []
    if rated_amount:
        rate_unit_price = _fraction_of(rate)
        lines.append(_line(description, quantity=rated_amount, unit_price=rate_unit_price, currency=currency))
    if rated_events and fixed_fee:
        lines.append(
            _line(
                f"{description}, fixed fee per event",
                quantity=Decimal(rated_events),
                unit_price=fixed_fee,
                currency=currency,
            )
        )
    if raised_events:
        lines.append(
            _line(
                f"{description}, minimum per event",
                quantity=Decimal(raised_events),
                unit_price=minimum,
                currency=currency,
            )
        )
    if capped_events:
        lines.append(
            _line(
                f"{description}, maximum per event",
                quantity=Decimal(capped_events),
                unit_price=maximum,
                currency=currency,
            )
        )
    return lines


def included_quota(
    quantity: Number,
    *,
    included: Number,
    overage_unit_price: Number,
    grace_percent: Number = 0,
    currency: str,
    description: str,
) -> list[Line]:
    """Overage beyond an included quota (the plan's base fee is a separate flat fee).

    Units above ``included`` are overage, billed at ``overage_unit_price``. If
    the overage is at most ``grace_percent`` of the quota it is forgiven
    entirely; beyond that, all of it is billed (not just the part above the
    grace). Example: 100 included, 1 % grace: 101 units -> ``[]``, 102 units ->
    2 units of overage. One charge line, ``[]`` when there is no billed overage.
    Raises PricingError for negative inputs or a grace outside 0..100.
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    included = _non_negative(included, "included")
    overage_unit_price = _non_negative(overage_unit_price, "overage_unit_price")
    grace_percent = _percent(grace_percent, "grace_percent")
    overage = Fraction(quantity) - Fraction(included)
    if overage <= 0 or overage <= Fraction(included) * Fraction(grace_percent) / 100:
        return []
    return [
        _line(
            description,
            quantity=_EXACT.subtract(quantity, included),
            unit_price=overage_unit_price,
            currency=currency,
        )
    ]


# --- modifiers ---------------------------------------------------------------


def _top_up(lines: Iterable[Line], target: Decimal, currency: str, description: str) -> list[Line]:
    shortfall = Fraction(target) - Fraction(total(lines))
    if shortfall <= 0:
        return []
    return [
        _line(
            description,
            quantity=_ONE,
            unit_price=_to_decimal(shortfall),
            currency=currency,
            kind=LineKind.TRUE_UP,
        )
    ]


def minimum_commitment(
    lines: Sequence[Line], *, minimum: Number, currency: str, description: str
) -> list[Line]:
    """A true-up to a committed minimum spend.

    If the total of ``lines`` (the charges the commitment covers, chosen by the
    caller) is below ``minimum``, returns one "true_up" line of
    ``minimum - total``, rounded; otherwise ``[]``. Raises PricingError for a
    negative minimum.
    """
    _require_description(description)
    minimum = _non_negative(minimum, "minimum")
    return _top_up(lines, minimum, currency, description)


def minimum_charge(lines: Sequence[Line], *, minimum: Number, currency: str, description: str) -> list[Line]:
    """The minimum charge on a non-zero invoice (job API: $1 per month).

    If ``0 < total(lines) < minimum``, returns one "true_up" line bringing the
    total to ``minimum``; a zero (or negative) total is left alone, as is a total
    already at or above the minimum (``[]``). Raises PricingError for a negative
    minimum.
    """
    _require_description(description)
    minimum = _non_negative(minimum, "minimum")
    if total(lines) <= 0:
        return []
    return _top_up(lines, minimum, currency, description)


def _percent_discount_line(description: str, *, base: Decimal, percent: Decimal, currency: str) -> Line:
    # quantity = what is discounted, unit price = -rate: the line reads "250.00 x -0.10".
    unit_price = -_fraction_of(percent)
    return _line(description, quantity=base, unit_price=unit_price, currency=currency, kind=LineKind.DISCOUNT)


def discount_percent(
    lines: Sequence[Line], *, percent: Number, currency: str, description: str
) -> list[Line]:
    """A percentage discount on the total of ``lines``.

    ``percent`` is in 0..100. Returns one "discount" line with quantity = the
    discounted total, unit price = ``-percent / 100`` and amount
    ``-round(total * percent / 100)``; ``[]`` when the total is not positive or
    the percent is zero. Raises PricingError for a percent outside 0..100.
    """
    _require_description(description)
    percent = _percent(percent, "percent")
    base = total(lines)
    if base <= 0 or percent == 0:
        return []
    return [_percent_discount_line(description, base=base, percent=percent, currency=currency)]


def discount_fixed(lines: Sequence[Line], *, amount: Number, currency: str, description: str) -> list[Line]:
    """A fixed-amount discount, never more than the total of ``lines``.

    ``amount`` >= 0 in the major unit. Returns one "discount" line of
    ``-min(amount, total)``, rounded; ``[]`` when the total is not positive or
    the amount is zero. Raises PricingError for a negative amount.
    """
    _require_description(description)
    amount = _non_negative(amount, "amount")
    applied = min(amount, total(lines))
    if applied <= 0:
        return []
    return [_line(description, quantity=_ONE, unit_price=-applied, currency=currency, kind=LineKind.DISCOUNT)]


def quota_utilisation_discount(
    *,
    base_fee: Number,
    used: Number,
    included: Number,
    percent: Number,
    currency: str,
    description: str,
    from_utilisation_percent: Number = 80,
    to_utilisation_percent: Number = 100,
) -> list[Line]:
    """A discount on the base fee for customers who use most of their quota.

    Job API rule: 2 % / 3 % / 4 % off the Starter / Professional / Business base
    fee when ``used`` is 80-100 % of ``included`` (both ends inclusive; using more
    than the quota, even within grace, does not qualify). ``percent`` is the
    plan's discount (0..100); the plan-to-percent table lives with the plans.
    Returns one "discount" line of ``-round(base_fee * percent / 100)`` when
    utilisation qualifies, else ``[]``. Raises PricingError for negative inputs,
    a quota that is not greater than zero, or percents outside 0..100.
    """
    _require_description(description)
    base_fee = _non_negative(base_fee, "base_fee")
    used = _non_negative(used, "used")
    included = _positive(included, "included")
    percent = _percent(percent, "percent")
    low = _non_negative(from_utilisation_percent, "from_utilisation_percent")
    high = _non_negative(to_utilisation_percent, "to_utilisation_percent")
    if low > high:
        raise PricingError(f"from_utilisation_percent {low} is above to_utilisation_percent {high}")
    utilisation_percent = Fraction(used) * 100 / Fraction(included)
    if not low <= utilisation_percent <= high or base_fee == 0 or percent == 0:
        return []
    return [_percent_discount_line(description, base=base_fee, percent=percent, currency=currency)]


def credit(quantity: Number, *, unit_price: Number, currency: str, description: str) -> list[Line]:
    """A credit (e.g. jobs that failed for system reasons, credited 100 %).

    ``quantity`` >= 0 units credited at ``unit_price`` >= 0 each. Returns one
    "credit" line with a negative unit price and amount
    ``-round(quantity * unit_price)``; ``[]`` for zero quantity. Raises
    PricingError for negative inputs.
    """
    _require_description(description)
    quantity = _non_negative(quantity, "quantity")
    unit_price = _non_negative(unit_price, "unit_price")
    if quantity == 0:
        return []
    # Keep a zero price as 0, not -0, so the line reads cleanly.
    credited_price = -unit_price if unit_price else unit_price
    return [
        _line(
            description,
            quantity=quantity,
            unit_price=credited_price,
            currency=currency,
            kind=LineKind.CREDIT,
        )
    ]

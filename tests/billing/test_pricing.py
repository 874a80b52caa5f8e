"""The charge models in billing.pricing: exact hand-computed cases, then properties.

Pure functions only: these tests need neither Django settings nor a database.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from billing.pricing import (
    Line,
    LineKind,
    PercentageTier,
    PricingError,
    Tier,
    credit,
    discount_fixed,
    discount_percent,
    flat_fee,
    graduated,
    graduated_percentage,
    included_quota,
    minimum_charge,
    minimum_commitment,
    one_time,
    package,
    per_seat,
    per_unit,
    percentage,
    proration_factor,
    quota_utilisation_discount,
    round_money,
    savings,
    total,
    validate_tiers,
    volume,
)

USD = "USD"
SEK = "SEK"
JPY = "JPY"

# Job API plans (seed 003): base fee, included jobs, overage price per job, utilisation discount %.
STARTER = {"base_fee": D("29"), "included": D(100), "overage": D("0.50"), "discount_percent": D(2)}
PROFESSIONAL = {"base_fee": D("99"), "included": D(500), "overage": D("0.30"), "discount_percent": D(3)}
BUSINESS = {"base_fee": D("299"), "included": D(2000), "overage": D("0.20"), "discount_percent": D(4)}
GRACE_PERCENT = D(1)

API_TIERS = [
    Tier(up_to=D(100), unit_price=D("0.10")),
    Tier(up_to=D(1000), unit_price=D("0.05")),
    Tier(up_to=None, unit_price=D("0.01")),
]


def amounts(lines):
    return [line.amount for line in lines]


def job_overage(jobs, plan):
    return included_quota(
        D(jobs),
        included=plan["included"],
        overage_unit_price=plan["overage"],
        grace_percent=GRACE_PERCENT,
        currency=USD,
        description="Jobs over quota",
    )


def utilisation_discount(jobs, plan):
    return quota_utilisation_discount(
        base_fee=plan["base_fee"],
        used=D(jobs),
        included=plan["included"],
        percent=plan["discount_percent"],
        currency=USD,
        description="Utilisation discount",
    )


# --- round_money ---------------------------------------------------------------


def test_round_money_rounds_half_up_to_cents():
    assert round_money(D("2.345"), USD) == D("2.35")
    assert round_money(D("2.344"), USD) == D("2.34")


def test_round_money_rounds_negative_halves_away_from_zero():
    assert round_money(D("-0.005"), USD) == D("-0.01")


def test_round_money_keeps_the_currency_decimal_places():
    assert str(round_money(D(5), USD)) == "5.00"
    assert str(round_money(D("5.5"), JPY)) == "6"
    assert str(round_money(D("1.0005"), "KWD")) == "1.001"


def test_round_money_accepts_an_exact_fraction():
    assert round_money(Fraction(1, 3), SEK) == D("0.33")
    assert round_money(Fraction(1, 200), USD) == D("0.01")


def test_round_money_rejects_float():
    with pytest.raises(PricingError, match="Decimal or int"):
        round_money(0.1, USD)


def test_round_money_rejects_unknown_currency():
    with pytest.raises(PricingError, match="Unknown currency"):
        round_money(D(1), "XYZ")


def test_round_money_rejects_nan():
    with pytest.raises(PricingError, match="finite"):
        round_money(D("NaN"), USD)


# --- proration_factor --------------------------------------------------------


def test_proration_full_month_is_one():
    factor = proration_factor(
        period_start=date(2025, 3, 1), period_end=date(2025, 3, 31), active_from=date(2025, 1, 1), active_to=None
    )
    assert factor == 1


def test_proration_counts_start_day_and_period_end_inclusive():
    factor = proration_factor(
        period_start=date(2025, 3, 1), period_end=date(2025, 3, 31), active_from=date(2025, 3, 11), active_to=None
    )
    assert factor == Fraction(21, 31)


def test_proration_counts_active_to_inclusive():
    factor = proration_factor(
        period_start=date(2025, 3, 1),
        period_end=date(2025, 3, 31),
        active_from=date(2024, 6, 1),
        active_to=date(2025, 3, 10),
    )
    assert factor == Fraction(10, 31)


def test_proration_single_day_in_leap_february():
    factor = proration_factor(
        period_start=date(2024, 2, 1),
        period_end=date(2024, 2, 29),
        active_from=date(2024, 2, 29),
        active_to=date(2024, 2, 29),
    )
    assert factor == Fraction(1, 29)


def test_proration_is_zero_when_not_active_in_period():
    factor = proration_factor(
        period_start=date(2025, 3, 1),
        period_end=date(2025, 3, 31),
        active_from=date(2025, 1, 1),
        active_to=date(2025, 2, 28),
    )
    assert factor == 0


def test_proration_rejects_period_end_before_start():
    with pytest.raises(PricingError, match="period_end"):
        proration_factor(
            period_start=date(2025, 3, 31), period_end=date(2025, 3, 1), active_from=date(2025, 3, 1), active_to=None
        )


def test_proration_rejects_active_to_before_active_from():
    with pytest.raises(PricingError, match="active_to"):
        proration_factor(
            period_start=date(2025, 3, 1),
            period_end=date(2025, 3, 31),
            active_from=date(2025, 3, 10),
            active_to=date(2025, 3, 9),
        )


def test_proration_rejects_datetimes():
    with pytest.raises(PricingError, match="must be a date"):
        proration_factor(
            period_start=datetime(2025, 3, 1, 12),
            period_end=date(2025, 3, 31),
            active_from=date(2025, 3, 1),
            active_to=None,
        )


# --- flat_fee, per_seat, one_time ---------------------------------------------


def test_flat_fee_full_period():
    [line] = flat_fee(amount=D(29), currency=USD, description="Starter plan")
    assert (line.quantity, line.unit_price, line.amount, line.kind) == (D(1), D(29), D("29.00"), "charge")


def test_flat_fee_prorated_by_days():
    [line] = flat_fee(amount=D(99), currency=USD, description="Professional plan", proration=Fraction(21, 31))
    assert line.amount == D("67.06")  # 99 * 21 / 31 = 67.0645...
    assert line.proration == Fraction(21, 31)


def test_flat_fee_with_zero_proration_gives_no_line():
    assert flat_fee(amount=D(29), currency=USD, description="Starter plan", proration=0) == []


def test_flat_fee_of_zero_still_gives_a_line():
    [line] = flat_fee(amount=D(0), currency=USD, description="Free plan")
    assert line.amount == D("0.00")


def test_flat_fee_rejects_negative_amount():
    with pytest.raises(PricingError, match="amount must not be negative"):
        flat_fee(amount=D(-1), currency=USD, description="Plan")


def test_flat_fee_rejects_proration_above_one():
    with pytest.raises(PricingError, match="proration"):
        flat_fee(amount=D(29), currency=USD, description="Plan", proration=D("1.5"))


def test_per_seat_sek_subscription():
    [line] = per_seat(D(12), unit_price=D(150), currency=SEK, description="Users")
    assert line.amount == D("1800.00")


def test_per_seat_prorated():
    [line] = per_seat(D(12), unit_price=D(150), currency=SEK, description="Users", proration=Fraction(21, 31))
    assert line.amount == D("1219.35")  # 1800 * 21 / 31 = 1219.354...


def test_per_seat_zero_seats_gives_no_line():
    assert per_seat(D(0), unit_price=D(150), currency=SEK, description="Users") == []


def test_per_seat_rejects_float_seats():
    with pytest.raises(PricingError, match="seats must be a Decimal or int"):
        per_seat(1.5, unit_price=D(150), currency=SEK, description="Users")


def test_one_time_start_package():
    [line] = one_time(amount=D(300000), currency=SEK, description="Start package, 8 weeks")
    assert (line.amount, line.kind) == (D("300000.00"), LineKind.ONE_TIME)


def test_one_time_rejects_negative_amount():
    with pytest.raises(PricingError):
        one_time(amount=D(-5), currency=SEK, description="Workshop")


def test_functions_reject_blank_description():
    with pytest.raises(PricingError, match="description"):
        one_time(amount=D(5), currency=SEK, description="  ")


# --- per_unit ----------------------------------------------------------------


def test_per_unit_fractional_quantity():
    [line] = per_unit(D("10.5"), unit_price=D("0.10"), currency=USD, description="Data GB")
    assert (line.quantity, line.amount) == (D("10.5"), D("1.05"))


def test_per_unit_rounds_half_up():
    [line] = per_unit(D(5), unit_price=D("0.025"), currency=USD, description="Calls")
    assert line.amount == D("0.13")  # 0.125; banker's rounding would give 0.12


def test_per_unit_rounds_to_whole_yen():
    [line] = per_unit(D(3), unit_price=D("333.5"), currency=JPY, description="Calls")
    assert line.amount == D("1001")  # 1000.5


def test_per_unit_zero_quantity_gives_no_line():
    assert per_unit(D(0), unit_price=D("0.10"), currency=USD, description="Calls") == []


def test_per_unit_rejects_negative_quantity():
    with pytest.raises(PricingError, match="quantity must not be negative"):
        per_unit(D(-1), unit_price=D("0.10"), currency=USD, description="Calls")


# --- tiers -------------------------------------------------------------------


def test_graduated_prices_each_tier_separately():
    lines = graduated(D(1500), tiers=API_TIERS, currency=USD, description="API calls")
    assert [line.quantity for line in lines] == [D(100), D(900), D(500)]
    assert amounts(lines) == [D("10.00"), D("45.00"), D("5.00")]
    assert total(lines) == D("60.00")


def test_graduated_quantity_on_a_boundary_stays_in_the_lower_tier():
    lines = graduated(D(100), tiers=API_TIERS, currency=USD, description="API calls")
    assert amounts(lines) == [D("10.00")]


def test_graduated_fractional_quantity_spills_into_next_tier():
    lines = graduated(D("100.5"), tiers=API_TIERS, currency=USD, description="API calls")
    assert amounts(lines) == [D("10.00"), D("0.03")]  # 0.5 * 0.05 = 0.025


def test_graduated_adds_a_flat_fee_line_per_tier_reached():
    tiers = [Tier(up_to=D(10), unit_price=D(0), flat_fee=D(5)), Tier(up_to=None, unit_price=D(1), flat_fee=D(2))]
    lines = graduated(D(15), tiers=tiers, currency=USD, description="Seats")
    assert amounts(lines) == [D("0.00"), D("5.00"), D("5.00"), D("2.00")]
    assert lines[1].description == "Seats, tier 1 (up to 10) flat fee"


def test_graduated_zero_quantity_charges_the_first_tiers_flat_fee():
    tiers = [Tier(up_to=D(10), unit_price=D(1), flat_fee=D(5)), Tier(up_to=None, unit_price=D(1), flat_fee=D(2))]
    [line] = graduated(D(0), tiers=tiers, currency=USD, description="Seats")
    assert (line.description, line.quantity, line.unit_price, line.amount) == (
        "Seats, tier 1 (up to 10) flat fee", D(1), D(5), D("5.00")
    )


def test_graduated_zero_quantity_without_a_first_tier_flat_fee_gives_no_line():
    tiers = [Tier(up_to=D(10), unit_price=D(1)), Tier(up_to=None, unit_price=D(1), flat_fee=D(2))]
    assert graduated(D(0), tiers=tiers, currency=USD, description="Seats") == []


def test_volume_prices_all_units_at_the_tier_containing_the_total():
    [line] = volume(D(1500), tiers=API_TIERS, currency=USD, description="API calls")
    assert (line.quantity, line.unit_price, line.amount) == (D(1500), D("0.01"), D("15.00"))


def test_volume_quantity_on_a_boundary_uses_the_lower_tier():
    [line] = volume(D(1000), tiers=API_TIERS, currency=USD, description="API calls")
    assert line.amount == D("50.00")


def test_volume_fractional_quantity_just_above_a_boundary_uses_the_next_tier():
    [line] = volume(D("1000.5"), tiers=API_TIERS, currency=USD, description="API calls")
    assert line.amount == D("10.01")  # 10.005


def test_volume_adds_the_flat_fee_of_the_tier_used():
    tiers = [
        Tier(up_to=D(100), unit_price=D("0.10"), flat_fee=D(7)),
        Tier(up_to=None, unit_price=D("0.05"), flat_fee=D(20)),
    ]
    lines = volume(D(200), tiers=tiers, currency=USD, description="API calls")
    assert amounts(lines) == [D("10.00"), D("20.00")]


def test_volume_zero_quantity_without_a_first_tier_flat_fee_gives_no_lines():
    assert volume(D(0), tiers=API_TIERS, currency=USD, description="API calls") == []


def test_volume_zero_quantity_charges_the_first_tiers_flat_fee():
    tiers = [
        Tier(up_to=D(100), unit_price=D("0.10"), flat_fee=D(7)),
        Tier(up_to=None, unit_price=D("0.05"), flat_fee=D(20)),
    ]
    [line] = volume(D(0), tiers=tiers, currency=USD, description="API calls")
    assert (line.description, line.amount) == ("API calls, tier 1 (up to 100) flat fee", D("7.00"))


def test_tiers_must_ascend():
    tiers = [Tier(up_to=D(100), unit_price=D(1)), Tier(up_to=D(100), unit_price=D(1)), Tier(None, D(1))]
    with pytest.raises(PricingError, match="ascend"):
        graduated(D(1), tiers=tiers, currency=USD, description="x")


def test_last_tier_must_be_unbounded():
    with pytest.raises(PricingError, match="last tier must be unbounded"):
        volume(D(1), tiers=[Tier(up_to=D(100), unit_price=D(1))], currency=USD, description="x")


def test_only_last_tier_may_be_unbounded():
    with pytest.raises(PricingError, match="only the last tier"):
        validate_tiers([Tier(None, D(1)), Tier(None, D(2))])


def test_tiers_must_not_be_empty():
    with pytest.raises(PricingError, match="at least one tier"):
        validate_tiers([])


def test_tier_rejects_negative_price():
    with pytest.raises(PricingError, match="tier unit_price"):
        Tier(up_to=D(10), unit_price=D("-0.01"))


def test_tier_rejects_zero_upper_bound():
    with pytest.raises(PricingError, match="tier up_to"):
        Tier(up_to=D(0), unit_price=D(1))


# --- package -----------------------------------------------------------------


def test_package_rounds_partial_blocks_up():
    [line] = package(D(250), package_size=D(100), package_price=D(5), currency=USD, description="Calls")
    assert (line.quantity, line.amount) == (D(3), D("15.00"))


def test_package_exact_blocks():
    [line] = package(D(200), package_size=D(100), package_price=D(5), currency=USD, description="Calls")
    assert line.quantity == D(2)


def test_package_free_units_come_first():
    [line] = package(
        D(250), package_size=D(100), package_price=D(5), free_units=D(50), currency=USD, description="Calls"
    )
    assert (line.quantity, line.amount) == (D(2), D("10.00"))


def test_package_all_units_free_gives_no_line():
    lines = package(D(50), package_size=D(100), package_price=D(5), free_units=D(50), currency=USD, description="Calls")
    assert lines == []


def test_package_fractional_block_size():
    [line] = package(D("1.2"), package_size=D("0.5"), package_price=D(1), currency=USD, description="GB")
    assert line.quantity == D(3)  # 2.4 blocks


def test_package_rejects_zero_size():
    with pytest.raises(PricingError, match="package_size must be greater than zero"):
        package(D(1), package_size=D(0), package_price=D(5), currency=USD, description="Calls")


# --- percentage and savings ---------------------------------------------------


def test_savings_is_baseline_minus_optimized():
    assert savings(baseline=D(12000), optimized=D(9000)) == D(3000)


def test_savings_are_never_negative():
    assert savings(baseline=D(9000), optimized=D(12000)) == D(0)


def test_savings_reject_negative_cost():
    with pytest.raises(PricingError, match="optimized"):
        savings(baseline=D(10), optimized=D(-1))


def test_percentage_twenty_percent_of_savings():
    monthly_savings = savings(baseline=D(12000), optimized=D(9000))
    [line] = percentage([monthly_savings], rate_percent=D(20), currency=USD, description="20% of savings")
    assert (line.quantity, line.unit_price, line.amount) == (D(3000), D("0.20"), D("600.00"))


def test_mid_tier_is_twenty_percent_of_savings_plus_platform_fee():
    monthly_savings = savings(baseline=D(60000), optimized=D(45000))
    lines = percentage([monthly_savings], rate_percent=D(20), currency=USD, description="20% of savings")
    lines += flat_fee(amount=D(500), currency=USD, description="Platform fee, Mid")
    assert total(lines) == D("3500.00")


def test_percentage_sums_events_before_rounding_the_line():
    [line] = percentage([D(100), D("200.10")], rate_percent=D(20), currency=USD, description="Savings")
    assert (line.quantity, line.amount) == (D("300.10"), D("60.02"))


def test_percentage_with_fixed_fee_per_event():
    lines = percentage(
        [D(100), D(200)], rate_percent=D("2.9"), fixed_fee_per_event=D("0.30"), currency=USD, description="Payments"
    )
    assert amounts(lines) == [D("8.70"), D("0.60")]


def test_percentage_first_free_events_are_free():
    [line] = percentage([D(100), D(200), D(300)], rate_percent=D(10), free_events=1, currency=USD, description="x")
    assert (line.quantity, line.amount) == (D(500), D("50.00"))


def test_percentage_free_amount_comes_off_the_summed_amount():
    [line] = percentage([D(100), D(200)], rate_percent=D(10), free_amount=D(150), currency=USD, description="x")
    assert (line.quantity, line.amount) == (D(150), D("15.00"))


def test_percentage_events_inside_the_free_amount_pay_no_fixed_fee():
    # 100 uses the free amount up exactly: free. The old rule charged it the fixed fee (0.30).
    lines = percentage(
        [D(100)], rate_percent=D(10), fixed_fee_per_event=D("0.30"), free_amount=D(100), currency=USD, description="x"
    )
    assert lines == []


def test_percentage_the_event_crossing_the_free_amount_pays_on_its_part_above_it_plus_the_fixed_fee():
    # 150 free: event 1 free; event 2 pays 10 % of 50 + 0.30; event 3 pays 10 % of 100 + 0.30.
    # Old rule: fixed fee on all three events (0.90).
    lines = percentage(
        [D(100), D(100), D(100)], rate_percent=D(10), fixed_fee_per_event=D("0.30"), free_amount=D(150),
        currency=USD, description="x",
    )
    assert [(line.quantity, line.amount) for line in lines] == [(D(150), D("15.00")), (D(2), D("0.60"))]


def test_percentage_event_after_the_free_amount_is_used_up_exactly_pays_in_full():
    lines = percentage(
        [D(100), D(50)], rate_percent=D(10), fixed_fee_per_event=D("0.30"), free_amount=D(100),
        currency=USD, description="x",
    )
    assert [(line.quantity, line.amount) for line in lines] == [(D(50), D("5.00")), (D(1), D("0.30"))]


def test_percentage_free_period_ends_when_the_free_events_run_out_first():
    # 1 free event or 1 000 free: the event allowance runs out first, so events 2 and 3 pay in full:
    # 10 % of 500 + 2 × 0.30. The old rule also took 1 000 off them and charged only 0.60.
    lines = percentage(
        [D(100), D(200), D(300)], rate_percent=D(10), fixed_fee_per_event=D("0.30"), free_events=1,
        free_amount=D(1000), currency=USD, description="x",
    )
    assert [(line.quantity, line.amount) for line in lines] == [(D(500), D("50.00")), (D(2), D("0.60"))]


def test_percentage_free_period_ends_when_the_free_amount_runs_out_first():
    # 3 free events or 250 free: 100 is free, 200 crosses 250 (pays on 50), 300 and 50 pay in full:
    # 10 % of 400 + 3 × 0.30. The old rule made three events free and took 250 off the fourth: 0.30.
    lines = percentage(
        [D(100), D(200), D(300), D(50)], rate_percent=D(10), fixed_fee_per_event=D("0.30"), free_events=3,
        free_amount=D(250), currency=USD, description="x",
    )
    assert [(line.quantity, line.amount) for line in lines] == [(D(400), D("40.00")), (D(3), D("0.90"))]


def test_percentage_event_crossing_the_free_amount_is_raised_to_the_minimum():
    lines = percentage(
        [D(100), D(101)], rate_percent=D(10), free_amount=D(200), min_per_event=D(1), currency=USD, description="x"
    )
    assert [(line.description, line.quantity, line.amount) for line in lines] == [
        ("x, minimum per event", D(1), D("1.00"))
    ]


def test_percentage_raises_small_events_to_the_minimum():
    lines = percentage([D(1), D(100)], rate_percent=D(10), min_per_event=D("0.50"), currency=USD, description="x")
    assert [(line.quantity, line.amount) for line in lines] == [(D(100), D("10.00")), (D(1), D("0.50"))]


def test_percentage_caps_large_events_at_the_maximum():
    lines = percentage([D(100), D(10000)], rate_percent=D(10), max_per_event=D(100), currency=USD, description="x")
    assert total(lines) == D("110.00")


def test_percentage_no_events_gives_no_lines():
    assert percentage([], rate_percent=D(20), currency=USD, description="x") == []


# Lago's documented example: 1 % + $200 up to 1 000, 2 % + $300 up to 10 000, 3 % + $400 above.
PAYMENT_TIERS = [
    PercentageTier(up_to=D(1000), rate_percent=D(1), flat_fee=D(200)),
    PercentageTier(up_to=D(10000), rate_percent=D(2), flat_fee=D(300)),
    PercentageTier(up_to=None, rate_percent=D(3), flat_fee=D(400)),
]


def test_graduated_percentage_spreads_the_amount_across_tiers_with_each_flat_fee_once():
    # 500 + 550 + 4 000 = 5 050: 1 % of 1 000 + 200, 2 % of 4 050 + 300; tier 3 not entered. 591.00.
    lines = graduated_percentage([D(500), D(550), D(4000)], tiers=PAYMENT_TIERS, currency=USD, description="Payments")
    assert [(line.description, line.quantity, line.unit_price, line.amount) for line in lines] == [
        ("Payments, tier 1 (up to 1000) at 1%", D(1000), D("0.01"), D("10.00")),
        ("Payments, tier 1 (up to 1000) flat fee", D(1), D(200), D("200.00")),
        ("Payments, tier 2 (above 1000 up to 10000) at 2%", D(4050), D("0.02"), D("81.00")),
        ("Payments, tier 2 (above 1000 up to 10000) flat fee", D(1), D(300), D("300.00")),
    ]
    assert total(lines) == D("591.00")


def test_graduated_percentage_amount_on_a_boundary_stays_in_the_lower_tier():
    lines = graduated_percentage([D(1000)], tiers=PAYMENT_TIERS, currency=USD, description="Payments")
    assert amounts(lines) == [D("10.00"), D("200.00")]


def test_graduated_percentage_at_zero_charges_the_first_tiers_flat_fee_only():
    [line] = graduated_percentage([], tiers=PAYMENT_TIERS, currency=USD, description="Payments")
    assert (line.description, line.amount) == ("Payments, tier 1 (up to 1000) flat fee", D("200.00"))
    no_fee = [PercentageTier(up_to=None, rate_percent=D(2))]
    assert graduated_percentage([D(0)], tiers=no_fee, currency=USD, description="Payments") == []


def test_graduated_percentage_rejects_bad_tiers_and_amounts():
    with pytest.raises(PricingError, match="rate_percent must be between 0 and 100"):
        PercentageTier(up_to=None, rate_percent=D(101))
    with pytest.raises(PricingError, match="PercentageTier"):
        graduated_percentage([D(1)], tiers=API_TIERS, currency=USD, description="x")
    with pytest.raises(PricingError, match=r"amounts\[0\]"):
        graduated_percentage([D(-1)], tiers=PAYMENT_TIERS, currency=USD, description="x")


def test_percentage_rejects_rate_above_hundred():
    with pytest.raises(PricingError, match="rate_percent must be between 0 and 100"):
        percentage([D(1)], rate_percent=D(101), currency=USD, description="x")


def test_percentage_rejects_minimum_above_maximum():
    with pytest.raises(PricingError, match="min_per_event"):
        percentage([D(1)], rate_percent=D(1), min_per_event=D(5), max_per_event=D(1), currency=USD, description="x")


def test_percentage_rejects_negative_measured_amount():
    with pytest.raises(PricingError, match=r"amounts\[1\]"):
        percentage([D(1), D(-1)], rate_percent=D(20), currency=USD, description="x")


# --- included quota: the job API plans -----------------------------------------


def test_starter_at_quota_has_no_overage():
    assert job_overage(100, STARTER) == []


def test_starter_overage_within_one_percent_grace_is_forgiven():
    assert job_overage(101, STARTER) == []


def test_starter_overage_beyond_grace_is_billed_in_full():
    [line] = job_overage(102, STARTER)
    assert (line.quantity, line.unit_price, line.amount) == (D(2), D("0.50"), D("1.00"))


def test_professional_overage_within_grace_is_forgiven():
    assert job_overage(505, PROFESSIONAL) == []


def test_professional_overage_beyond_grace_is_thirty_cents_a_job():
    assert amounts(job_overage(506, PROFESSIONAL)) == [D("1.80")]


def test_business_overage_within_grace_is_forgiven():
    assert job_overage(2020, BUSINESS) == []


def test_business_overage_beyond_grace_is_twenty_cents_a_job():
    assert amounts(job_overage(2021, BUSINESS)) == [D("4.20")]


def test_starter_invoice_with_overage():
    lines = flat_fee(amount=STARTER["base_fee"], currency=USD, description="Starter plan") + job_overage(102, STARTER)
    assert total(lines) == D("30.00")


def test_included_quota_without_grace_bills_the_first_extra_unit():
    lines = included_quota(D(101), included=D(100), overage_unit_price=D("0.50"), currency=USD, description="Jobs")
    assert amounts(lines) == [D("0.50")]


def test_included_quota_fractional_overage():
    [line] = included_quota(D("10.5"), included=D(10), overage_unit_price=D(1), currency=USD, description="GB")
    assert (line.quantity, line.amount) == (D("0.5"), D("0.50"))


def test_included_quota_rejects_grace_above_hundred():
    with pytest.raises(PricingError, match="grace_percent"):
        included_quota(
            D(1), included=D(1), overage_unit_price=D(1), grace_percent=D(150), currency=USD, description="x"
        )


# --- quota utilisation discount ------------------------------------------------


def test_starter_utilisation_discount_at_eighty_percent():
    [line] = utilisation_discount(80, STARTER)
    assert (line.amount, line.kind) == (D("-0.58"), LineKind.DISCOUNT)


def test_starter_utilisation_discount_at_full_quota():
    assert amounts(utilisation_discount(100, STARTER)) == [D("-0.58")]


def test_no_utilisation_discount_below_eighty_percent():
    assert utilisation_discount(79, STARTER) == []


def test_no_utilisation_discount_above_quota_even_within_grace():
    assert utilisation_discount(101, STARTER) == []


def test_professional_utilisation_discount_is_three_percent():
    assert amounts(utilisation_discount(400, PROFESSIONAL)) == [D("-2.97")]


def test_business_utilisation_discount_is_four_percent():
    assert amounts(utilisation_discount(2000, BUSINESS)) == [D("-11.96")]


def test_starter_invoice_with_utilisation_discount():
    lines = flat_fee(amount=STARTER["base_fee"], currency=USD, description="Starter plan")
    lines += job_overage(90, STARTER) + utilisation_discount(90, STARTER)
    assert total(lines) == D("28.42")


def test_utilisation_discount_rejects_zero_quota():
    with pytest.raises(PricingError, match="included must be greater than zero"):
        quota_utilisation_discount(
            base_fee=D(29), used=D(0), included=D(0), percent=D(2), currency=USD, description="x"
        )


# --- minimums ----------------------------------------------------------------


def test_minimum_charge_tops_up_a_small_invoice_to_one_dollar():
    lines = per_unit(D(1), unit_price=D("0.50"), currency=USD, description="Jobs")
    [top_up] = minimum_charge(lines, minimum=D(1), currency=USD, description="Minimum charge")
    assert (top_up.amount, top_up.kind) == (D("0.50"), LineKind.TRUE_UP)
    assert total(lines + [top_up]) == D("1.00")


def test_minimum_charge_leaves_a_zero_invoice_alone():
    lines = flat_fee(amount=D(0), currency=USD, description="Free plan")
    assert minimum_charge(lines, minimum=D(1), currency=USD, description="Minimum charge") == []


def test_minimum_charge_leaves_an_invoice_at_the_minimum_alone():
    lines = per_unit(D(2), unit_price=D("0.50"), currency=USD, description="Jobs")
    assert minimum_charge(lines, minimum=D(1), currency=USD, description="Minimum charge") == []


def test_minimum_commitment_trues_up_the_shortfall():
    lines = graduated(D(1500), tiers=API_TIERS, currency=USD, description="API calls")  # 60.00
    [true_up] = minimum_commitment(lines, minimum=D(100), currency=USD, description="Commitment true-up")
    assert (true_up.amount, true_up.kind) == (D("40.00"), LineKind.TRUE_UP)


def test_minimum_commitment_met_gives_no_line():
    lines = one_time(amount=D(150), currency=USD, description="x")
    assert minimum_commitment(lines, minimum=D(100), currency=USD, description="True-up") == []


def test_minimum_commitment_with_no_usage_charges_the_whole_minimum():
    assert amounts(minimum_commitment([], minimum=D(100), currency=USD, description="True-up")) == [D("100.00")]


def test_minimum_commitment_rejects_negative_minimum():
    with pytest.raises(PricingError, match="minimum"):
        minimum_commitment([], minimum=D(-1), currency=USD, description="True-up")


# --- discounts and credits ------------------------------------------------------


def test_discount_percent_of_lines_total():
    lines = one_time(amount=D(250), currency=USD, description="x")
    [line] = discount_percent(lines, percent=D(10), currency=USD, description="10% off")
    assert (line.quantity, line.unit_price, line.amount) == (D("250.00"), D("-0.10"), D("-25.00"))
    assert line.kind == LineKind.DISCOUNT


def test_discount_percent_rounds_half_away_from_zero():
    lines = one_time(amount=D("0.05"), currency=USD, description="x")
    assert amounts(discount_percent(lines, percent=D(10), currency=USD, description="10% off")) == [D("-0.01")]


def test_discount_percent_on_nothing_gives_no_line():
    assert discount_percent([], percent=D(10), currency=USD, description="10% off") == []


def test_discount_percent_rejects_more_than_hundred():
    with pytest.raises(PricingError, match="percent must be between 0 and 100"):
        discount_percent([], percent=D(120), currency=USD, description="x")


def test_discount_fixed():
    lines = one_time(amount=D(250), currency=USD, description="x")
    assert amounts(discount_fixed(lines, amount=D(50), currency=USD, description="Goodwill")) == [D("-50.00")]


def test_discount_fixed_never_exceeds_the_lines_total():
    lines = one_time(amount=D(30), currency=USD, description="x")
    assert amounts(discount_fixed(lines, amount=D(50), currency=USD, description="Goodwill")) == [D("-30.00")]


def test_discount_fixed_on_nothing_gives_no_line():
    assert discount_fixed([], amount=D(50), currency=USD, description="Goodwill") == []


def test_failed_jobs_are_credited_in_full():
    [line] = credit(D(3), unit_price=D("0.50"), currency=USD, description="Failed jobs (system)")
    assert (line.unit_price, line.amount, line.kind) == (D("-0.50"), D("-1.50"), LineKind.CREDIT)


# --- Line and total -------------------------------------------------------------


def test_total_is_the_sum_of_rounded_lines():
    lines = [line for _ in range(3) for line in per_unit(D(1), unit_price=D("0.005"), currency=USD, description="x")]
    assert total(lines) == D("0.03")  # not round(0.015) = 0.02


def test_total_of_no_lines_is_zero():
    assert total([]) == 0


def test_line_rejects_negative_charge():
    with pytest.raises(PricingError, match="charge line cannot have a negative amount"):
        Line(description="x", quantity=D(1), unit_price=D(-1), amount=D("-1.00"))


def test_line_rejects_positive_discount():
    with pytest.raises(PricingError, match="discount line cannot have a positive amount"):
        Line(description="x", quantity=D(1), unit_price=D(1), amount=D("1.00"), kind="discount")


def test_line_rejects_unknown_kind():
    with pytest.raises(PricingError, match="unknown line kind"):
        Line(description="x", quantity=D(1), unit_price=D(1), amount=D("1.00"), kind="refund")


# --- properties -----------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None)

currencies = st.sampled_from([USD, SEK, JPY, "KWD"])
quantities = st.decimals(min_value=0, max_value=100000, places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
fees = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw):
    bounds = draw(
        st.lists(
            st.decimals(min_value=D("0.001"), max_value=50000, places=3, allow_nan=False, allow_infinity=False),
            max_size=4,
            unique=True,
        )
    )
    up_tos = sorted(bounds) + [None]
    flat_fees = st.one_of(st.just(D(0)), fees)
    return [Tier(up_to=up_to, unit_price=draw(prices), flat_fee=draw(flat_fees)) for up_to in up_tos]


@st.composite
def percentage_tier_lists(draw):
    return [
        PercentageTier(up_to=tier.up_to, rate_percent=draw(rates), flat_fee=tier.flat_fee)
        for tier in draw(tier_lists())
    ]


@st.composite
def priced_lines(draw):
    """Lines from every charge model and modifier, in one currency."""
    currency = draw(currencies)
    tiers = draw(tier_lists())
    lines = []
    lines += flat_fee(amount=draw(fees), currency=currency, description="fee", proration=draw(st.fractions(0, 1)))
    lines += per_seat(draw(quantities), unit_price=draw(prices), currency=currency, description="seats")
    lines += per_unit(draw(quantities), unit_price=draw(prices), currency=currency, description="units")
    lines += graduated(draw(quantities), tiers=tiers, currency=currency, description="graduated")
    lines += graduated_percentage(
        draw(st.lists(quantities, max_size=4)), tiers=draw(percentage_tier_lists()), currency=currency,
        description="graduated percentage",
    )
    lines += volume(draw(quantities), tiers=tiers, currency=currency, description="volume")
    lines += package(
        draw(quantities),
        package_size=draw(quantities.filter(lambda size: size > 0)),
        package_price=draw(fees),
        free_units=draw(quantities),
        currency=currency,
        description="package",
    )
    lines += percentage(
        draw(st.lists(quantities, max_size=5)),
        rate_percent=draw(st.decimals(min_value=0, max_value=100, places=2)),
        fixed_fee_per_event=draw(fees),
        free_events=draw(st.integers(0, 3)),
        free_amount=draw(quantities),
        currency=currency,
        description="percentage",
    )
    lines += included_quota(
        draw(quantities),
        included=draw(quantities),
        overage_unit_price=draw(prices),
        grace_percent=draw(st.decimals(min_value=0, max_value=100, places=1)),
        currency=currency,
        description="overage",
    )
    lines += credit(draw(quantities), unit_price=draw(prices), currency=currency, description="credit")
    charges = [line for line in lines if line.kind not in ("discount", "credit")]
    lines += minimum_commitment(charges, minimum=draw(fees), currency=currency, description="true-up")
    lines += discount_percent(charges, percent=draw(st.decimals(0, 100, places=2)), currency=currency, description="%")
    lines += discount_fixed(charges, amount=draw(fees), currency=currency, description="fixed")
    return currency, lines


@FAST
@given(quantity=quantities, tiers=tier_lists(), currency=currencies)
def test_graduated_equals_the_sum_of_its_tiers_priced_separately(quantity, tiers, currency):
    separately = []
    lower = D(0)
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        separately += per_unit(upper - lower, unit_price=tier.unit_price, currency=currency, description="tier")
        if tier.flat_fee:
            separately += flat_fee(amount=tier.flat_fee, currency=currency, description="tier fee")
        if tier.up_to is None:
            break
        lower = tier.up_to
    if quantity == 0 and tiers[0].flat_fee:  # the first tier is the base price
        separately += flat_fee(amount=tiers[0].flat_fee, currency=currency, description="tier fee")
    lines = graduated(quantity, tiers=tiers, currency=currency, description="graduated")
    assert total(lines) == total(separately)
    unit_lines = [line for line in lines if not line.description.endswith("flat fee")]
    assert sum((line.quantity for line in unit_lines), D(0)) == quantity


@FAST
@given(quantity=quantities.filter(lambda q: q > 0), tiers=tier_lists(), currency=currencies)
def test_volume_prices_every_unit_in_exactly_one_tier(quantity, tiers, currency):
    containing = [
        tier
        for lower, tier in zip([D(0)] + [t.up_to for t in tiers[:-1]], tiers)
        if lower < quantity and (tier.up_to is None or quantity <= tier.up_to)
    ]
    assert len(containing) == 1
    [tier] = containing
    lines = volume(quantity, tiers=tiers, currency=currency, description="volume")
    unit_lines = [line for line in lines if not line.description.endswith("flat fee")]
    assert [(line.quantity, line.unit_price) for line in unit_lines] == [(quantity, tier.unit_price)]
    assert len(lines) == (2 if tier.flat_fee else 1)


@FAST
@given(priced=priced_lines())
def test_total_equals_the_sum_of_rounded_lines(priced):
    currency, lines = priced
    for line in lines:
        exact = Fraction(line.quantity) * Fraction(line.unit_price) * line.proration
        assert line.amount == round_money(exact, currency)
        assert line.amount == round_money(line.amount, currency)
    assert total(lines) == sum((line.amount for line in lines), D(0))


@FAST
@given(priced=priced_lines())
def test_amounts_are_never_negative_unless_discount_or_credit(priced):
    _, lines = priced
    for line in lines:
        if line.kind in (LineKind.DISCOUNT, LineKind.CREDIT):
            assert line.amount <= 0
        else:
            assert line.amount >= 0


@FAST
@given(priced=priced_lines())
def test_discounts_never_take_charges_below_zero(priced):
    currency, lines = priced
    charges = [line for line in lines if line.kind not in ("discount", "credit")]
    for discount in (
        discount_percent(charges, percent=D(100), currency=currency, description="all"),
        discount_fixed(charges, amount=total(charges) + 1, currency=currency, description="all"),
    ):
        assert total(charges + discount) == 0


dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@FAST
@given(
    period_start=dates,
    days=st.integers(0, 365),
    active_from=dates,
    active_days=st.one_of(st.none(), st.integers(0, 800)),
)
def test_proration_factor_is_between_zero_and_one(period_start, days, active_from, active_days):
    active_to = None if active_days is None else active_from + timedelta(days=active_days)
    factor = proration_factor(
        period_start=period_start,
        period_end=period_start + timedelta(days=days),
        active_from=active_from,
        active_to=active_to,
    )
    assert 0 <= factor <= 1


@FAST
@given(
    period_start=dates,
    days=st.integers(0, 365),
    before=st.integers(0, 400),
    after=st.one_of(st.none(), st.integers(0, 400)),
)
def test_proration_factor_is_one_when_active_for_the_whole_period(period_start, days, before, after):
    period_end = period_start + timedelta(days=days)
    factor = proration_factor(
        period_start=period_start,
        period_end=period_end,
        active_from=period_start - timedelta(days=before),
        active_to=None if after is None else period_end + timedelta(days=after),
    )
    assert factor == 1


@FAST
@given(
    quantity=quantities,
    free_units=quantities,
    package_size=quantities.filter(lambda size: size > 0),
    package_price=fees,
    currency=currencies,
)
def test_package_never_charges_for_free_units(quantity, free_units, package_size, package_price, currency):
    terms = {"package_size": package_size, "package_price": package_price, "currency": currency, "description": "p"}
    with_free = package(quantity, free_units=free_units, **terms)
    if quantity <= free_units:
        assert with_free == []
    else:
        assert with_free == package(quantity - free_units, **terms)


@FAST
@given(
    events=st.lists(quantities, max_size=8),
    rate=rates,
    free_amount=st.one_of(st.just(D(0)), quantities),
    currency=currencies,
)
def test_percentage_without_per_event_settings_prices_the_total_as_the_events(events, rate, free_amount, currency):
    """One rule: a rate and a free amount alone depend only on the sum, so the month's total (how the
    draft run prices such a charge) and the events one by one give the very same lines."""
    by_event = percentage(events, rate_percent=rate, free_amount=free_amount, currency=currency, description="x")
    on_total = percentage(
        [sum(events, D(0))], rate_percent=rate, free_amount=free_amount, currency=currency, description="x"
    )
    assert by_event == on_total


@FAST
@given(
    events=st.lists(quantities, max_size=8),
    rate=rates,
    fixed_fee=fees,
    free_events=st.integers(1, 5),
    free_amount=quantities.filter(lambda amount: amount > 0),
    currency=currencies,
)
# A zero event after one that used the free amount up exactly pays the fixed fee: the period has ended.
@example(events=[D("5"), D("0")], rate=D("1"), fixed_fee=D("1"), free_events=5, free_amount=D("5"), currency=USD)
def test_percentage_free_period_is_the_shorter_of_the_two_allowances(
    events, rate, fixed_fee, free_events, free_amount, currency
):
    """Both allowances end the free period at whichever runs out first: never cheaper than either
    allowance alone, never dearer than none."""
    def charge(**free):
        return total(percentage(
            events, rate_percent=rate, fixed_fee_per_event=fixed_fee, currency=currency, description="x", **free
        ))

    both = charge(free_events=free_events, free_amount=free_amount)
    assert both >= charge(free_events=free_events)
    assert both >= charge(free_amount=free_amount)
    assert both <= charge()
    # The free period ends at the first event past the free events, or past the free amount: the one
    # that crosses it, or any event (a zero one too) after an event used it up exactly.
    paying = 0
    remaining = free_amount
    for index, amount in enumerate(events):
        if index >= free_events or remaining == 0 or amount > remaining:
            paying = len(events) - index
            break
        remaining -= amount
    fixed_lines = [line for line in percentage(
        events, rate_percent=rate, fixed_fee_per_event=fixed_fee, free_events=free_events, free_amount=free_amount,
        currency=currency, description="x",
    ) if line.description.endswith("fixed fee per event")]
    assert sum((line.quantity for line in fixed_lines), D(0)) == (paying if fixed_fee else 0)


@FAST
@given(events=st.lists(quantities, max_size=6), tiers=percentage_tier_lists(), currency=currencies)
def test_graduated_percentage_is_graduated_pricing_of_the_total_at_each_tiers_rate(events, tiers, currency):
    """The amount spread across tiers in event order lands where graduated tiers put the total: every
    rate line is graduated's unit line at unit price rate / 100, every flat fee charged once."""
    lines = graduated_percentage(events, tiers=tiers, currency=currency, description="x")
    as_units = [Tier(up_to=t.up_to, unit_price=t.rate_percent / 100, flat_fee=t.flat_fee) for t in tiers]
    expected = graduated(sum(events, D(0)), tiers=as_units, currency=currency, description="x")
    assert [(line.quantity, line.amount) for line in lines] == [(line.quantity, line.amount) for line in expected]
    assert lines == graduated_percentage(list(reversed(events)), tiers=tiers, currency=currency, description="x")
    rate_lines = [line for line in lines if not line.description.endswith("flat fee")]
    assert sum((line.quantity for line in rate_lines), D(0)) == sum(events, D(0))

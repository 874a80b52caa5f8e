"""The MRR facts: kept by the contract services and rate changes, read by the revenue selectors.

Hand-computed histories go through the real services (customers.services, revenue.catalog) in a
tenant whose facts are built; tenant B changes the same dates and must never move tenant A's facts.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from customers.models import ContractLine, Tenant
from customers.money import Money
from customers.periods import add_months
from customers.services import ChangeAction, LineSpec, contract_change, contract_create
from revenue import tasks
from revenue.catalog import exchange_rate_create, exchange_rate_update
from revenue.facts import revenue_facts_rebuild, revenue_facts_refresh
from revenue.models import CustomerMrrFact, CustomerTrailingRevenueFact, RevenueFactsState
from revenue.selectors import facts
from revenue.selectors.common import MissingExchangeRate, Segment
from revenue.selectors.concentration import concentration_indices, revenue_concentration
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import customer_mrr_range, mrr_series
from revenue.selectors.retention import retention_series
from tests.customers.factories import CustomerFactory
from tests.revenue.facts_reference import reference

JAN, FEB, MAR, APR, MAY, JUN = (date(2025, m, 1) for m in range(1, 7))
NOW = date(2025, 6, 15)


def built(tenant: Tenant) -> Tenant:
    revenue_facts_rebuild(tenant=tenant)
    return tenant


def subscribe(customer, *, start, price="100.00", interval=1, quantity=1, currency=None, discount=None):
    currency = currency or customer.currency
    lines = [LineSpec("Platform fee", ContractLine.Kind.RECURRING, Money(price, currency), Decimal(quantity))]
    if discount is not None:
        lines.append(LineSpec("Loyalty", ContractLine.Kind.DISCOUNT, Money("0", currency), discount_percent=Decimal(discount)))
    return contract_create(
        customer=customer, title="Plan", start_date=start, lines=lines, currency=currency, billing_interval=interval
    )


def fact_rows(tenant, customer):
    return list(
        CustomerMrrFact.objects.for_tenant(tenant).filter(customer=customer).order_by("month_start")
        .values_list("month_start", "mrr", "before", "had", "next_month")
    )


@pytest.fixture
def acme(tenant_a, tenant_b):
    built(tenant_b)
    # Tenant B changes the same months: none of it may reach tenant A's facts or figures.
    bravo = CustomerFactory(tenant=tenant_b, currency="SEK")
    subscribe(bravo, start=JAN, price="5000.00")
    return built(tenant_a)


@pytest.fixture
def alpha(acme):
    return CustomerFactory(tenant=acme, name="Alpha", currency="USD")


def test_a_new_contract_writes_its_customers_facts(acme, alpha):
    subscribe(alpha, start=date(2025, 2, 10), price="1200.00", interval=12)

    assert fact_rows(acme, alpha) == [(FEB, Decimal(100), Decimal(0), False, None)]


def test_an_upgrade_adds_a_change_month(acme, alpha):
    contract = subscribe(alpha, start=JAN, price="100.00", quantity=2)
    line = ContractLine.objects.for_tenant(acme).get(contract=contract)
    contract_change(contract=contract, action=ChangeAction.UPGRADE, effective_on=date(2025, 3, 5), line=line, quantity=Decimal(5))

    assert fact_rows(acme, alpha) == [
        (JAN, Decimal(200), Decimal(0), False, MAR),
        (MAR, Decimal(500), Decimal(200), True, None),
    ]
    assert [m["mrr"] for m in mrr_series(tenant=acme, first=JAN, last=MAY)] == [200, 200, 500, 500, 500]


def test_cancel_then_reactivate_is_churn_then_reactivation(acme, alpha):
    contract = subscribe(alpha, start=JAN, price="80.00")
    contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=date(2025, 2, 20))
    contract_change(contract=contract, action=ChangeAction.REACTIVATE, effective_on=date(2025, 4, 2))

    assert fact_rows(acme, alpha) == [
        (JAN, Decimal(80), Decimal(0), False, FEB),
        (FEB, Decimal(0), Decimal(80), True, APR),
        (APR, Decimal(80), Decimal(0), True, None),
    ]
    moves = {m["month"]: m for m in mrr_movements(tenant=acme, first=JAN, last=MAY)}
    assert (moves[JAN]["new"], moves[FEB]["churn"], moves[APR]["reactivation"]) == (80, 80, 80)
    assert moves[APR]["new"] == 0


def test_a_discount_line_is_taken_off_its_contract(acme, alpha):
    subscribe(alpha, start=JAN, price="300.00", interval=3, discount="25")

    assert customer_mrr_range(tenant=acme, first=MAR, last=MAR) == {MAR: {alpha.pk: Decimal("75.00")}}


def test_an_exchange_rate_change_refreshes_the_converted_months(acme, alpha):
    exchange_rate_create(tenant=acme, currency="SEK", rate=Decimal("0.1"), effective_on=date(2024, 12, 1))
    subscribe(alpha, start=JAN, price="1000.00", currency="SEK")

    exchange_rate_create(tenant=acme, currency="SEK", rate=Decimal("0.09"), effective_on=date(2025, 3, 31))

    assert [(m, mrr) for m, mrr, *_ in fact_rows(acme, alpha)] == [(JAN, Decimal("100.0")), (MAR, Decimal("90.00"))]
    assert [m["mrr"] for m in mrr_series(tenant=acme, first=FEB, last=APR)] == [
        Decimal("100.0"), Decimal("90.00"), Decimal("90.00")
    ]


def test_a_corrected_rate_refreshes_too(acme, alpha):
    rate = exchange_rate_create(tenant=acme, currency="SEK", rate=Decimal("0.1"), effective_on=date(2024, 12, 1))
    subscribe(alpha, start=JAN, price="1000.00", currency="SEK")

    exchange_rate_update(exchange_rate=rate, rate=Decimal("0.11"))

    assert fact_rows(acme, alpha) == [(JAN, Decimal("110.00"), Decimal(0), False, None)]


def test_tenant_b_changes_never_touch_tenant_a_facts(acme, alpha, tenant_b):
    subscribe(alpha, start=JAN)
    before = list(CustomerMrrFact.objects.for_tenant(acme).values_list("customer_id", "month_start", "mrr"))
    other = CustomerFactory(tenant=tenant_b, currency="SEK")
    subscribe(other, start=FEB, price="70.00")
    exchange_rate_create(tenant=tenant_b, currency="USD", rate=Decimal("10"), effective_on=date(2024, 1, 1))

    assert list(CustomerMrrFact.objects.for_tenant(acme).values_list("customer_id", "month_start", "mrr")) == before
    assert [m["mrr"] for m in mrr_series(tenant=acme, first=JAN, last=FEB)] == [100, 100]


def test_a_tenant_without_built_facts_refreshes_nothing(tenant_a):
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    subscribe(customer, start=JAN)

    assert not CustomerMrrFact.objects.for_tenant(tenant_a).exists()
    assert facts.facts_usable(tenant=tenant_a, last=MAY) == (False, False)
    assert mrr_series(tenant=tenant_a, first=JAN, last=JAN)[0]["mrr"] == 100


def test_the_selectors_read_the_facts_and_match_the_reference(acme, alpha):
    beta = CustomerFactory(tenant=acme, currency="USD", tier="Business")
    subscribe(alpha, start=date(2024, 3, 1), price="50.00")
    late = subscribe(beta, start=date(2024, 6, 1), price="400.00", interval=3, discount="10")
    contract_change(contract=late, action=ChangeAction.CANCEL, effective_on=date(2025, 2, 1))

    assert facts.facts_usable(tenant=acme, last=MAY) == (True, False)
    for selector, kwargs in [
        (mrr_series, {"first": JAN, "last": MAY}),
        (mrr_series, {"first": JAN, "last": MAY, "group_by": "tier"}),
        (mrr_movements, {"first": JAN, "last": MAY}),
        (retention_series, {"first": date(2025, 3, 1), "last": MAY}),
        (revenue_concentration, {"month": MAY}),
        (customer_mrr_range, {"first": date(2024, 1, 1), "last": MAY}),
    ]:
        assert selector(tenant=acme, **kwargs) == reference(selector, tenant=acme, **kwargs), selector.__name__
    # June 2024: alpha 50 and beta 400 / 3 less 10 % = 120 (to 16 places); June 2025: alpha alone.
    assert round(retention_series(tenant=acme, first=JUN, last=JUN)[0]["nrr"], 6) == Decimal("0.294118")


def one_time_fee(customer, *, on, price):
    return contract_create(
        customer=customer, title="Setup", start_date=on, currency=customer.currency,
        lines=[LineSpec("Setup fee", ContractLine.Kind.ONE_TIME, Money(price, customer.currency), starts_on=on)],
    )


def test_concentration_from_the_facts_adds_the_windows_one_time_fees(acme, alpha, tenant_b):
    beta, gamma, delta = (CustomerFactory(tenant=acme, currency="USD") for _ in range(3))
    subscribe(alpha, start=JAN, price="100.00")
    one_time_fee(beta, on=MAR, price="500.00")
    subscribe(gamma, start=JAN, price="50.00")
    one_time_fee(gamma, on=FEB, price="300.00")
    subscribe(delta, start=APR, price="10.00")
    one_time_fee(delta, on=date(2024, 5, 1), price="999.00")  # a month before the window
    one_time_fee(CustomerFactory(tenant=tenant_b, currency="USD"), on=MAR, price="7000.00")

    result = revenue_concentration(tenant=acme, month=MAY)

    # Twelve months to May 2025: alpha 5 × 100, beta 500 (a tie, ranked by id), gamma 5 × 50 + 300, delta 2 × 10.
    expected = {alpha.pk: Decimal(500), beta.pk: Decimal(500), gamma.pk: Decimal(550), delta.pk: Decimal(20)}
    assert result == {"month": MAY, **concentration_indices(expected)}
    assert result == reference(revenue_concentration, tenant=acme, month=MAY)
    assert result["total_revenue"] == Decimal("1570")


def trailing_rows(tenant, customer, *, to):
    return list(
        CustomerTrailingRevenueFact.objects.for_tenant(tenant).filter(customer=customer, month_start__lte=to)
        .order_by("month_start").values_list("month_start", "revenue", "missing")
    )


def test_a_customers_trailing_revenue_is_kept_per_month(acme, alpha, tenant_b):
    contract = subscribe(alpha, start=JAN, price="100.00")
    one_time_fee(alpha, on=MAR, price="40.00")
    contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=date(2025, 3, 31))
    subscribe(CustomerFactory(tenant=tenant_b, currency="USD"), start=JAN, price="777.00")

    # MRR 100 at the ends of January and February (none at March's, the contract's last day) and the
    # March fee: each month's row is the sum over the twelve months to it, until the fee leaves.
    rows = trailing_rows(acme, alpha, to=date(2026, 6, 1))
    assert rows[:4] == [(JAN, 100, None), (FEB, 200, None), (MAR, 240, None), (APR, 240, None)]
    assert rows[-2:] == [(date(2026, 1, 1), 140, None), (date(2026, 2, 1), 40, None)]
    assert len(rows) == 14
    assert not CustomerTrailingRevenueFact.objects.for_tenant(tenant_b).filter(customer=alpha).exists()


def test_concentration_reads_the_trailing_revenue_facts_and_matches_the_reference(acme, alpha):
    beta, gamma = (CustomerFactory(tenant=acme, currency="USD", tier="Business") for _ in range(2))
    subscribe(alpha, start=date(2024, 3, 1), price="50.00")
    late = subscribe(beta, start=date(2024, 6, 1), price="400.00", interval=3, discount="10")
    contract_change(contract=late, action=ChangeAction.CANCEL, effective_on=date(2025, 2, 1))
    subscribe(gamma, start=FEB, price="1000.00", currency="SEK")
    exchange_rate_create(tenant=acme, currency="SEK", rate=Decimal("0.1"), effective_on=date(2024, 1, 1))
    one_time_fee(gamma, on=APR, price="70.00")

    state = RevenueFactsState.objects.for_tenant(acme).get()
    assert facts.facts_source(tenant=acme, last=state.trailing_last_month).trailing
    for month in (date(2024, 6, 1), MAR, MAY, date(2026, 1, 1)):
        for segment in (None, Segment("tier", "Business")):
            expected = reference(revenue_concentration, tenant=acme, month=month, segment=segment)
            assert revenue_concentration(tenant=acme, month=month, segment=segment) == expected, (month, segment)
    # After the trailing facts' last month the change-month facts answer, as before.
    after = add_months(state.trailing_last_month, 1)
    assert not facts.facts_source(tenant=acme, last=after).trailing
    assert facts.facts_source(tenant=acme, last=after).usable
    assert revenue_concentration(tenant=acme, month=after) == reference(revenue_concentration, tenant=acme, month=after)


def test_a_one_time_fee_without_a_rate_raises_from_the_trailing_revenue_facts(acme, alpha):
    subscribe(alpha, start=JAN, price="100.00")
    sek = CustomerFactory(tenant=acme, currency="SEK")
    one_time_fee(sek, on=FEB, price="500.00")

    assert facts.facts_source(tenant=acme, last=MAR).trailing  # recurring lines are all priced
    with pytest.raises(MissingExchangeRate, match="SEK to USD on or before 2025-02-28"):
        revenue_concentration(tenant=acme, month=MAR)
    with pytest.raises(MissingExchangeRate, match="SEK to USD on or before 2025-02-28"):
        reference(revenue_concentration, tenant=acme, month=MAR)
    # The fee's window over, nothing is missing.
    assert revenue_concentration(tenant=acme, month=date(2026, 2, 1))["customers"] == 1


def test_a_one_time_fee_converts_at_the_rate_of_its_months_end(acme, alpha):
    subscribe(alpha, start=JAN, price="100.00")
    sek = CustomerFactory(tenant=acme, currency="SEK")
    one_time_fee(sek, on=date(2025, 4, 10), price="500.00")
    for rate, effective_on in (("0.1", date(2024, 1, 1)), ("0.2", date(2025, 4, 30)), ("0.3", MAY)):
        exchange_rate_create(tenant=acme, currency="SEK", rate=Decimal(rate), effective_on=effective_on)

    # April's last day's rate, neither the earlier one nor May's: 500 × 0.2 = 100, in every window with April.
    assert trailing_rows(acme, sek, to=JUN) == [(APR, 100, None), (MAY, 100, None), (JUN, 100, None)]
    assert facts.facts_source(tenant=acme, last=MAY).trailing
    assert revenue_concentration(tenant=acme, month=MAY)["total_revenue"] == Decimal(600)  # alpha 5 × 100
    assert reference(revenue_concentration, tenant=acme, month=MAY)["total_revenue"] == Decimal(600)


def test_a_refresh_equals_a_rebuild(acme, alpha):
    contract = subscribe(alpha, start=JAN, price="90.00", discount="50")
    contract_change(
        contract=contract, action=ChangeAction.ADD_LINE, effective_on=MAR,
        new_line=LineSpec("Seats", ContractLine.Kind.PER_SEAT, Money("10.00", "USD"), Decimal(3)),
    )
    refreshed = fact_rows(acme, alpha)

    revenue_facts_rebuild(tenant=acme)

    assert fact_rows(acme, alpha) == refreshed == [
        (JAN, Decimal("45.0000"), Decimal(0), False, MAR),
        (MAR, Decimal("60.0000"), Decimal("45.0000"), True, None),
    ]


def test_a_missing_rate_is_raised_by_the_reference_as_before(acme, alpha):
    subscribe(alpha, start=JAN, price="1000.00", currency="SEK")

    assert facts.facts_usable(tenant=acme, last=MAR)[0] is False
    with pytest.raises(MissingExchangeRate, match="SEK to USD on or before 2025-01-31"):
        mrr_series(tenant=acme, first=JAN, last=MAR)


def test_a_changed_reporting_currency_reads_the_reference_until_rebuilt(acme, alpha):
    subscribe(alpha, start=JAN)
    Tenant.objects.filter(pk=acme.pk).update(reporting_currency="EUR")
    acme.refresh_from_db()

    assert facts.facts_usable(tenant=acme, last=MAR)[0] is False
    revenue_facts_rebuild(tenant=acme)
    assert facts.facts_usable(tenant=acme, last=MAR)[0] is False  # the USD line has no EUR rate
    exchange_rate_create(tenant=acme, currency="USD", rate=Decimal("0.5"), effective_on=date(2024, 1, 1))
    assert facts.facts_usable(tenant=acme, last=MAR)[0] is True
    assert mrr_series(tenant=acme, first=MAR, last=MAR)[0]["mrr"] == Decimal("50.0")


def test_months_beyond_the_horizon_read_the_reference(acme, alpha):
    subscribe(alpha, start=JAN)
    horizon = RevenueFactsState.objects.for_tenant(acme).get().last_month

    assert facts.facts_usable(tenant=acme, last=horizon)[0] is True
    assert facts.facts_usable(tenant=acme, last=horizon + timedelta(days=31))[0] is False


def test_a_refused_change_leaves_the_facts_as_they_were(acme, alpha):
    contract = subscribe(alpha, start=JAN)
    before = fact_rows(acme, alpha)

    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever refuses it, nothing may stay written
        contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=JAN)

    assert fact_rows(acme, alpha) == before


def test_refresh_of_no_customer_writes_nothing(acme):
    assert revenue_facts_refresh(tenant=acme, customer_ids=[]) == 0


def test_the_monthly_rebuild_queues_only_tenants_whose_facts_are_on(acme, tenant_b, monkeypatch):
    RevenueFactsState.objects.for_tenant(tenant_b).delete()
    queued = []
    monkeypatch.setattr(tasks.rebuild_revenue_facts, "delay", queued.append)

    assert tasks.rebuild_all_revenue_facts() == 1
    assert queued == [acme.pk]


def test_the_rebuild_task_rebuilds_the_tenant(acme, alpha):
    subscribe(alpha, start=JAN)
    CustomerMrrFact.objects.for_tenant(acme).delete()

    assert tasks.rebuild_revenue_facts(acme.pk) == 1
    assert fact_rows(acme, alpha) == [(JAN, Decimal(100), Decimal(0), False, None)]

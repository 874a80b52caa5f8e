"""The MRR facts equal the reference SQL after every change, over random contract histories (hypothesis).

Each history is a list of changes made through the real services in a tenant whose facts are built:
new contracts (in the reporting currency or in SEK), upgrades, downgrades, cancellations,
reactivations, one-time fees and new SEK rates. After each change every customer's MRR at every month end, the
movements, a series starting mid-history (its first month folds the history) and concentration
(from the trailing revenue facts, for windows before, across and after the changes) read from the
facts equal the reference; at the end a rebuild from scratch writes the same rows the refreshes left.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Contract, ContractLine
from customers.money import Money
from customers.services import ChangeAction, LineSpec, contract_change, contract_create
from revenue.catalog import exchange_rate_create
from revenue.facts import revenue_facts_rebuild
from revenue.models import CustomerMrrFact, CustomerTrailingRevenueFact, RevenueMonthFact
from revenue.selectors import facts
from revenue.selectors.common import Segment
from revenue.selectors.concentration import revenue_concentration
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import customer_mrr_range, mrr_series
from revenue.selectors.retention import retention_series
from tests.customers.factories import CustomerFactory, TenantFactory
from tests.revenue.facts_reference import reference

DAY0, FIRST, LAST = date(2024, 1, 1), date(2024, 1, 1), date(2025, 6, 1)
SPAN = 540
days = st.integers(min_value=0, max_value=SPAN)
prices = st.decimals(min_value=1, max_value=900, places=2)

new = st.tuples(
    st.just("new"), st.integers(0, 2), days, prices, st.integers(1, 5), st.sampled_from([1, 3, 12]),
    st.sampled_from(["USD", "SEK"]), st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=1)),
    st.one_of(st.none(), prices),  # a one-time setup fee on the start date
)
line_change = st.tuples(st.sampled_from(["upgrade", "downgrade"]), st.integers(0, 5), days, st.integers(1, 4))
cancel = st.tuples(st.just("cancel"), st.integers(0, 5), days)
reactivate = st.tuples(st.just("reactivate"), st.integers(0, 5), days)
rate = st.tuples(st.just("rate"), days, st.decimals(min_value="0.05", max_value="0.2", places=3))
histories = st.lists(st.one_of(new, line_change, cancel, reactivate, rate), min_size=1, max_size=6)


class Rollback(Exception):
    pass


def apply(tenant, customers, contracts, change) -> None:
    """Make ``change`` through the services; a change the services refuse changes nothing."""
    kind, *args = change
    try:
        if kind == "new":
            who, day, price, quantity, interval, currency, discount, setup = args
            lines = [LineSpec("Fee", ContractLine.Kind.RECURRING, Money(price, currency), Decimal(quantity))]
            if discount is not None:
                lines.append(LineSpec("Off", ContractLine.Kind.DISCOUNT, Money("0", currency), discount_percent=discount))
            if setup is not None:
                lines.append(LineSpec(
                    "Setup", ContractLine.Kind.ONE_TIME, Money(setup, currency), starts_on=DAY0 + timedelta(days=day)
                ))
            contracts.append(contract_create(
                customer=customers[who], title="Plan", start_date=DAY0 + timedelta(days=day), lines=lines,
                currency=currency, billing_interval=interval,
            ))
        elif kind == "rate":
            day, value = args
            exchange_rate_create(tenant=tenant, currency="SEK", rate=value, effective_on=DAY0 + timedelta(days=day))
        elif contracts:
            contract = contracts[args[0] % len(contracts)]
            contract.refresh_from_db()
            day = DAY0 + timedelta(days=args[1])
            if kind in ("upgrade", "downgrade"):
                line = (
                    ContractLine.objects.for_tenant(tenant)
                    .filter(contract=contract, kind=ContractLine.Kind.RECURRING).order_by("-starts_on", "-id").first()
                )
                factor = Decimal(args[2]) if kind == "upgrade" else Decimal(1) / (args[2] + 1)
                contract_change(
                    contract=contract, action=kind, effective_on=day, line=line,
                    quantity=(line.quantity * factor).quantize(Decimal("0.01")),
                )
            else:
                contract_change(contract=contract, action=ChangeAction(kind), effective_on=day)
    except ValidationError:
        pass


def fact_rows(tenant):
    """The customers' facts, their trailing revenue and the month totals (without months whose totals
    are all zero)."""
    rows = sorted(
        CustomerMrrFact.objects.for_tenant(tenant)
        .values_list("customer_id", "month_start", "mrr", "before", "had", "next_month", "unpriced")
    )
    totals = [
        row for row in RevenueMonthFact.objects.for_tenant(tenant).order_by("month_start").values_list(
            "month_start", "mrr_change", "customer_change", "new", "reactivation", "expansion", "contraction", "churn",
            "new_customers", "reactivated_customers", "churned_customers", "base_change", "retained_change",
            "capped_change", "base_customer_change",
        )
        if any(row[1:])
    ]
    trailing = sorted(
        CustomerTrailingRevenueFact.objects.for_tenant(tenant).values_list("customer_id", "month_start", "revenue", "missing")
    )
    return rows, trailing, totals


def assert_facts_match_reference(tenant) -> None:
    assert facts.facts_source(tenant=tenant, last=LAST).trailing
    for selector, kwargs in [
        (customer_mrr_range, {"first": FIRST, "last": LAST}),
        (mrr_movements, {"first": date(2024, 4, 1), "last": LAST}),
        (mrr_movements, {"first": date(2024, 4, 1), "last": LAST, "group_by": "tier"}),
        (mrr_series, {"first": date(2024, 9, 1), "last": LAST}),
        (retention_series, {"first": date(2024, 11, 1), "last": LAST}),
        # Concentration from the trailing revenue facts: windows before, across and after the changes.
        (revenue_concentration, {"month": LAST}),
        (revenue_concentration, {"month": date(2024, 5, 1)}),
        (revenue_concentration, {"month": date(2026, 3, 1)}),
        (revenue_concentration, {"month": date(2025, 1, 1), "segment": Segment("tier", "A")}),
    ]:
        assert selector(tenant=tenant, **kwargs) == reference(selector, tenant=tenant, **kwargs), selector.__name__


@pytest.mark.django_db
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, other=histories)
def test_facts_equal_the_reference_after_every_change(history, other):
    try:
        with transaction.atomic():
            tenant = TenantFactory(slug="facts-a", reporting_currency="USD")
            tenant_b = TenantFactory(slug="facts-b", reporting_currency="USD")
            for each in (tenant, tenant_b):
                exchange_rate_create(tenant=each, currency="SEK", rate=Decimal("0.1"), effective_on=date(2023, 12, 1))
                revenue_facts_rebuild(tenant=each)
            customers = [CustomerFactory(tenant=tenant, currency="USD", tier=tier) for tier in ("A", "B", "A")]
            customers_b = [CustomerFactory(tenant=tenant_b, currency="USD") for _ in range(3)]
            contracts, contracts_b = [], []
            for change in history:
                apply(tenant, customers, contracts, change)
                assert_facts_match_reference(tenant)
            rows = fact_rows(tenant)
            for change in other:
                apply(tenant_b, customers_b, contracts_b, change)
            assert fact_rows(tenant) == rows

            revenue_facts_rebuild(tenant=tenant)
            assert fact_rows(tenant) == rows
            raise Rollback
    except Rollback:
        pass

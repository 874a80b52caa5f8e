"""Properties of MRR movements over random contract histories (hypothesis).

For random lines (dates, prices, intervals, discounts, contract ends, drafts) in two tenants:
the SQL MRR equals a plain Python reading of the definition at every month end; the movement
identity holds for every month, for the tenant and per segment; tenant B never changes tenant A.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Contract
from customers.money import Money
from customers.periods import add_months, month_end, months_between
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import mrr_series
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory, TenantFactory

FIRST, LAST = date(2024, 1, 1), date(2025, 6, 1)
DAY0 = date(2024, 1, 1)
SPAN = (date(2025, 6, 30) - DAY0).days

days = st.integers(min_value=0, max_value=SPAN)
line_specs = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["recurring", "per_seat", "discount", "usage"]),
        "start": days,
        "length": st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
        "price": st.decimals(min_value=1, max_value=1000, places=2),
        "quantity": st.integers(min_value=1, max_value=20),
        "percent": st.decimals(min_value=0, max_value=100, places=2),
    }
)
contract_specs = st.fixed_dictionaries(
    {
        "start": days,
        "length": st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
        "interval": st.sampled_from([1, 3, 12]),
        "draft": st.booleans(),
        "lines": st.lists(line_specs, min_size=1, max_size=3),
    }
)
customer_specs = st.fixed_dictionaries(
    {"tier": st.sampled_from(["Starter", "Business"]), "contracts": st.lists(contract_specs, min_size=1, max_size=3)}
)
histories = st.lists(customer_specs, min_size=1, max_size=4)


def build(tenant, history):
    """Create the history; return a Python model of it: [(customer_id, tier, [contract dicts])]."""
    world = []
    for spec in history:
        customer = CustomerFactory(tenant=tenant, tier=spec["tier"])
        contracts = []
        for c in spec["contracts"]:
            start = DAY0 + timedelta(days=c["start"])
            end = None if c["length"] is None else start + timedelta(days=c["length"])
            contract = ContractFactory(
                customer=customer, start_date=start, end_date=end, billing_interval=c["interval"],
                status=Contract.Status.DRAFT if c["draft"] else Contract.Status.ACTIVE,
            )
            lines = []
            for line in c["lines"]:
                starts_on = max(start, DAY0 + timedelta(days=line["start"]))
                if end and starts_on > end:
                    starts_on = end
                ends_on = None if line["length"] is None else starts_on + timedelta(days=line["length"])
                ContractLineFactory(
                    contract=contract, kind=line["kind"], starts_on=starts_on, ends_on=ends_on,
                    quantity=Decimal(line["quantity"]), unit_price=Money(line["price"], "USD"),
                    discount_percent=line["percent"] if line["kind"] == "discount" else None,
                )
                lines.append({**line, "starts_on": starts_on, "ends_on": ends_on})
            contracts.append({"end": end, "interval": c["interval"], "draft": c["draft"], "lines": lines})
        world.append((customer.pk, spec["tier"], contracts))
    return world


def python_mrr(contracts, day):
    """The definition read literally, for one customer on one day."""
    total = Decimal(0)
    for c in contracts:
        if c["draft"] or (c["end"] and day > c["end"]):
            continue
        active = [l for l in c["lines"] if l["starts_on"] <= day and (l["ends_on"] is None or day <= l["ends_on"])]
        recurring = sum(
            (l["quantity"] * l["price"] / c["interval"] for l in active if l["kind"] in ("recurring", "per_seat")),
            Decimal(0),
        )
        percent = min(sum((l["percent"] for l in active if l["kind"] == "discount"), Decimal(0)), Decimal(100))
        total += recurring * (1 - percent / 100)
    return total if total > 0 else Decimal(0)


def assert_identity(rows):
    for row in rows:
        assert row["mrr_end"] == (
            row["mrr_start"] + row["new"] + row["reactivation"] + row["expansion"] - row["contraction"] - row["churn"]
        ), row


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history_a=histories, history_b=histories)
def test_movements_identity_and_isolation_over_random_histories(history_a, history_b):
    try:
        with transaction.atomic():
            tenant_a = TenantFactory(slug="prop-a", reporting_currency="USD")
            tenant_b = TenantFactory(slug="prop-b", reporting_currency="USD")
            world = build(tenant_a, history_a)

            series = mrr_series(tenant=tenant_a, first=FIRST, last=LAST)
            movements = mrr_movements(tenant=tenant_a, first=FIRST, last=LAST)
            by_tier = mrr_movements(tenant=tenant_a, first=FIRST, last=LAST, group_by="tier")

            for month, row in zip(months_between(FIRST, LAST), series, strict=True):
                expected = sum((python_mrr(contracts, month_end(month)) for _, _, contracts in world), Decimal(0))
                assert abs(row["mrr"] - expected) < Decimal("1e-12"), (month, row["mrr"], expected)
            assert_identity(movements)
            assert_identity(by_tier)
            assert [m["mrr_end"] for m in movements] == [s["mrr"] for s in series]
            for previous, current in zip(movements, movements[1:]):
                assert current["mrr_start"] == previous["mrr_end"]
            for month in months_between(FIRST, LAST):
                tiers = [row for row in by_tier if row["month"] == month]
                total = next(m for m in movements if m["month"] == month)
                assert sum((row["mrr_end"] for row in tiers), Decimal(0)) == total["mrr_end"]

            build(tenant_b, history_b)
            assert mrr_series(tenant=tenant_a, first=FIRST, last=LAST) == series
            assert mrr_movements(tenant=tenant_a, first=FIRST, last=LAST) == movements
            raise Rollback
    except Rollback:
        pass


def test_month_helpers_roll_over_years():
    assert add_months(date(2024, 12, 1), 1) == date(2025, 1, 1)
    assert month_end(date(2024, 2, 1)) == date(2024, 2, 29)

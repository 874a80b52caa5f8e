"""Committed MRR of the forecast, read from contract changes (revenue.selectors.forecast.committed_mrr)."""

from datetime import date
from decimal import Decimal

import pytest

from customers.models import ContractLine
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.selectors.common import MissingExchangeRate
from revenue.selectors.forecast import committed_mrr
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory

JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)


def contract(customer, price, *, end=None, auto_renew=False, currency=None):
    c = ContractFactory(customer=customer, start_date=JAN, end_date=end, auto_renew=auto_renew,
                        currency=currency or customer.currency)
    ContractLineFactory(contract=c, unit_price=Money(price, c.currency), starts_on=JAN)
    return c


@pytest.fixture
def books(tenant_a, tenant_b):
    """Jan 870, Feb 500, Mar 800 (see each line)."""
    with platform_scope():
        credited = contract(CustomerFactory(tenant=tenant_a), "100.00")  # 100, then 100 − 150 < 0: no MRR
        ContractLineFactory(contract=credited, unit_price=Money("-150.00", "USD"), starts_on=FEB)
        contract(CustomerFactory(tenant=tenant_a), "200.00", end=date(2025, 1, 31), auto_renew=True)  # renews: 200
        contract(CustomerFactory(tenant=tenant_a), "70.00", end=date(2025, 1, 31))  # ends in January
        swedish = CustomerFactory(tenant=tenant_a, currency="SEK")
        contract(swedish, "1000.00")  # 0.1 then 0.2 USD per SEK: 100, 100, 200
        ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.1"), effective_on=date(2024, 12, 1))
        ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.2"), effective_on=MAR)
        discounted = contract(CustomerFactory(tenant=tenant_a), "400.00")  # half off in February
        ContractLineFactory(contract=discounted, kind=ContractLine.Kind.DISCOUNT, discount_percent=Decimal("50"),
                            unit_price=Money("0", "USD"), starts_on=FEB, ends_on=date(2025, 2, 28))
        contract(CustomerFactory(tenant=tenant_b), "9999.00")


def test_committed_mrr_per_month_end(tenant_a, books):
    assert committed_mrr(tenant=tenant_a, first=JAN, last=MAR) == {
        JAN: Decimal("870"), FEB: Decimal("500"), MAR: Decimal("800"),
    }


def test_a_window_after_every_change_still_sees_the_running_contracts(tenant_a, books):
    june = date(2025, 6, 1)

    assert committed_mrr(tenant=tenant_a, first=june, last=june) == {june: Decimal("800")}


def test_a_missing_rate_is_named(tenant_a, books):
    with platform_scope():
        contract(CustomerFactory(tenant=tenant_a, currency="NOK"), "500.00")

    with pytest.raises(MissingExchangeRate, match="NOK"):
        committed_mrr(tenant=tenant_a, first=JAN, last=JAN)

"""The API's rounding (revenue.api_metrics.jsonable): money to its currency's minor unit, ratios to 4
places, measures such as HHI and scores to 2, whatever the currency."""

from datetime import date
from decimal import Decimal

from rest_framework.test import APIClient

from customers.models import TenantAPIKey
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.api_metrics import jsonable
from revenue.economics.api import ECONOMICS_MONTHS, ECONOMICS_RATIOS
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory, TenantFactory

PAYLOAD = {
    "currency": "JPY", "total_revenue": Decimal("1234.5"), "gini": Decimal("0.123456"), "hhi": Decimal("2500.456"),
    "flagged": [{"customer_id": 7, "revenue": Decimal("99.5"), "share": Decimal("0.33333")}],
    "month": date(2026, 3, 1),
}


def test_money_rounds_to_whole_yen_and_ratios_and_hhi_keep_their_places():
    assert jsonable(PAYLOAD, currency="JPY") == {
        "currency": "JPY", "total_revenue": "1235", "gini": "0.1235", "hhi": "2500.46",
        "flagged": [{"customer_id": 7, "revenue": "100", "share": "0.3333"}], "month": "2026-03",
    }


def test_money_rounds_to_cents_in_usd_and_to_thousandths_in_kwd():
    assert jsonable(PAYLOAD, currency="USD")["total_revenue"] == "1234.50"
    assert jsonable(PAYLOAD, currency="USD")["flagged"][0] == {"customer_id": 7, "revenue": "99.50", "share": "0.3333"}
    assert jsonable({"mrr": Decimal("1.23456")}, currency="KWD") == {"mrr": "1.235"}


def test_a_row_naming_a_customers_currency_is_still_rounded_in_the_reporting_currency():
    row = {"currency": "JPY", "billed": Decimal("10.555")}  # what-if rows: amounts already converted

    assert jsonable(row, currency="USD") == {"currency": "JPY", "billed": "10.56"}


def test_economics_scores_and_costs_per_call_are_not_money():
    payload = {"score": Decimal("41.25"), "cost_per_call": Decimal("0.000123"), "margin": Decimal("1999.5"),
               "from": date(2026, 1, 1), "cost_months": [date(2026, 2, 1)]}

    assert jsonable(payload, currency="JPY", ratios=ECONOMICS_RATIOS, months=ECONOMICS_MONTHS) == {
        "score": "41.25", "cost_per_call": "0.0001", "margin": "2000", "from": "2026-01", "cost_months": ["2026-02"]}


def test_a_yen_tenants_metrics_are_whole_yen(db):
    with platform_scope():
        tenant = TenantFactory(slug="yen", reporting_currency="JPY")
        other = TenantFactory(slug="dollars", reporting_currency="USD")
        for name, amount in [("Kita", "100000"), ("Minami", "33333")]:
            customer = CustomerFactory(tenant=tenant, name=name, currency="JPY")
            contract = ContractFactory(customer=customer, start_date=date(2026, 1, 1), billing_interval=12)
            ContractLineFactory(contract=contract, unit_price=Money(amount, "JPY"), starts_on=date(2026, 1, 1))
        CustomerFactory(tenant=other)
    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="yen")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    mrr = client.get("/api/v1/metrics/mrr/?from=2026-03&to=2026-03").json()["months"][0]
    concentration = client.get("/api/v1/metrics/concentration/?month=2026-03").json()

    # 100 000 / 12 = 8 333.33…, 33 333 / 12 = 2 777.75: MRR 11 111.08… → 11 111 yen.
    assert (mrr["mrr"], mrr["arr"], mrr["arpa"]) == ("11111", "133333", "5556")
    # Three months: Kita 25 000, Minami 8 333.25, total 33 333.25 → 33 333 yen; the indices keep their places:
    # Gini (2 × (8 333.25 + 2 × 25 000) − 3 × 33 333.25) / (2 × 33 333.25) = 0.25000…,
    # HHI 10 000 × (25 000² + 8 333.25²) / 33 333.25² = 6 250.018…
    assert concentration["total_revenue"] == "33333"
    assert concentration["gini"] == "0.2500"
    assert concentration["hhi"] == "6250.02"

"""A tenant's whole pricing built from nothing over HTTP, then a month billed and read back.

The fixture makes only the tenant, an API key and a finance member; everything else is a request:
metrics, price terms of four charge models, a plan, billing settings, an exchange rate, a customer and
its contract, usage events, the month-end run, finalizing, and reading the invoice. No admin page and
no service is called. The amounts are computed by hand in the test's comments.
"""

import pytest
from rest_framework.test import APIClient

from customers.models import Role, TenantAPIKey
from customers.periods import add_months, month_end, tenant_today
from tests.customers.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(member_factory, tenant_b):
    tenant = TenantFactory(name="Lagom Metrics", slug="lagom", reporting_currency="USD", invoice_number_prefix="LM-")
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant, name="integration")
    machine = APIClient()
    machine.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    finance = APIClient()
    finance.force_login(member_factory(tenant, Role.FINANCE))
    today = tenant_today(tenant)
    # The last closed month is billed; invoices are numbered by the year they are issued in (today's).
    return {"machine": machine, "finance": finance, "month": add_months(today, -1), "issue_year": today.year}


def created(response):
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.usage_events
@pytest.mark.slow  # about 3-5 s on a shared machine
def test_an_integrator_builds_the_catalog_bills_a_month_and_reads_the_invoice(world, django_capture_on_commit_callbacks):
    api, finance, month = world["machine"], world["finance"], world["month"]
    day = lambda n: f"{month:%Y-%m}-{n:02d}T12:00:00Z"  # noqa: E731 - a day of the billed month

    # The metrics: calls and compute add up their quantity, exports count PDF ones only, savings add up.
    for metric in [
        {"code": "api_calls", "name": "API calls", "aggregation": "sum", "unit": "calls"},
        {"code": "compute_ms", "name": "Compute", "aggregation": "sum", "unit": "ms"},
        {"code": "pdf_exports", "name": "PDF exports", "event_code": "exports", "aggregation": "count",
         "filters": {"format": ["pdf"]}, "unit": "exports"},
        {"code": "savings", "name": "AI savings", "aggregation": "sum", "unit": "USD"},
    ]:
        created(api.post("/api/v1/billable-metrics/", metric, format="json"))

    plan = created(api.post("/api/v1/price-plans/", {
        "code": "growth", "name": "Growth", "currency": "USD", "base_fee": {"amount": "49.00", "currency": "USD"},
        "charge_model": "per_unit", "metric": "api_calls", "unit_price": {"amount": "0.008", "currency": "USD"},
    }, format="json"))
    assert plan["base_fee"] == {"amount": "49.00", "currency": "USD"}
    settings = api.put("/api/v1/billing-settings/", {"minimum_invoice_amount": "1.00", "usage_max_age_days": 400},
                       format="json")
    assert settings.status_code == 200 and settings.json() == {
        "minimum_invoice_amount": "1.00", "usage_max_age_days": 400, "usage_max_future_hours": 24,
        "payment_method": "", "bankgiro": "", "iban": "", "bic": "", "bank_name": "", "payment_reference_text": ""}
    created(api.post("/api/v1/exchange-rates/", {"currency": "EUR", "rate": "1.08", "effective_on": f"{month}"}, format="json"))

    customer = created(api.post("/api/v1/customers/", {
        "name": "Globex", "reference": "globex", "currency": "USD", "billing_emails": ["ap@globex.example"],
    }, format="json"))
    usage_line = {"kind": "usage", "quantity": "1", "unit_price": {"amount": "0", "currency": "USD"}}
    contract = created(api.post("/api/v1/contracts/", {
        "customer": customer["id"], "title": "Globex platform", "billing_interval": 1,
        "start_date": f"{month}",
        "lines": [
            {"description": "Platform fee", "kind": "recurring", "quantity": "1",
             "unit_price": {"amount": "49.00", "currency": "USD"}},
            {"description": "API calls", **usage_line},
            {"description": "Compute", **usage_line},
            {"description": "PDF exports", **usage_line},
            {"description": "Share of savings", **usage_line},
        ],
    }, format="json"))
    line = {row["description"]: row["id"] for row in contract["lines"]}

    for terms in [
        {"contract_line": line["API calls"], "charge_model": "graduated", "metric": "api_calls", "terms": {"tiers": [
            {"up_to": "1000", "unit_price": "0.01", "flat_fee": "5.00"}, {"up_to": None, "unit_price": "0.005"}]}},
        {"contract_line": line["Compute"], "charge_model": "per_unit", "metric": "compute_ms",
         "terms": {"unit_price": "0.0002"}},
        {"contract_line": line["PDF exports"], "charge_model": "package", "metric": "pdf_exports",
         "terms": {"package_size": "10", "package_price": "2.50", "free_units": "5"}},
        {"contract_line": line["Share of savings"], "charge_model": "percentage", "metric": "savings",
         "terms": {"rate_percent": "20"}},
    ]:
        answer = created(api.post("/api/v1/price-terms/", terms, format="json"))
        assert answer["currency"] == "USD" and answer["contract"] == contract["id"]

    def event(key, metric, quantity, n, **properties):
        return {"customer": "globex", "metric": metric, "timestamp": day(n), "idempotency_key": key,
                "quantity": quantity, "properties": properties}

    events = [
        event("calls-1", "api_calls", "500", 3), event("calls-2", "api_calls", "700", 9),
        event("calls-3", "api_calls", "50", 20),
        event("cpu-1", "compute_ms", "120000", 4), event("cpu-2", "compute_ms", "30500", 18),
        *[event(f"pdf-{n}", "exports", "1", 1 + n % 27, format="pdf") for n in range(23)],
        *[event(f"csv-{n}", "exports", "1", 2 + n, format="csv") for n in range(4)],
        event("saved-1", "savings", "100.00", 10), event("saved-2", "savings", "250.50", 25),
    ]
    ingested = api.post("/api/v1/usage-events/", {"events": events}, format="json")
    assert ingested.status_code in (200, 201, 207), ingested.json()
    assert [r["status"] for r in ingested.json()["results"]] == ["accepted"] * len(events)

    # The month-end run drafts the month (queued to the workers: eager in tests, run on commit).
    with django_capture_on_commit_callbacks(execute=True):
        started = finance.post("/api/v1/billing-runs/", {"period": f"{month:%Y-%m}"}, format="json")
    assert started.status_code == 202, started.json()
    runs = finance.get(started.json()["run"]).json()["results"]
    assert [(r["status"], r["customers"], r["problems"]) for r in runs] == [("drafted", 1, [])]

    drafts = api.get(f"/api/v1/invoices/?period={month:%Y-%m}&customer={customer['id']}").json()["results"]
    assert [d["status"] for d in drafts] == ["draft"]
    with django_capture_on_commit_callbacks(execute=True):
        finalized = finance.post(f"/api/v1/invoices/{drafts[0]['id']}/finalize/", {}, format="json")
    assert finalized.status_code == 200, finalized.json()

    invoice = api.get(f"/api/v1/invoices/{drafts[0]['id']}/").json()
    assert (invoice["status"], invoice["number"], invoice["period_start"], invoice["period_end"]) == (
        "finalized", f"LM-{world['issue_year']}-00001", f"{month}", f"{month_end(month)}"
    )
    assert [(row["contract_line"], row["quantity"], row["amount"]["amount"]) for row in invoice["lines"]] == [
        (line["Platform fee"], "1.000000", "49.00"),
        # 1 250 calls, graduated: 1 000 × 0.01 = 10.00, the first tier's flat fee 5.00, 250 × 0.005 = 1.25
        (line["API calls"], "1000.000000", "10.00"),
        (line["API calls"], "1.000000", "5.00"),
        (line["API calls"], "250.000000", "1.25"),
        # 150 500 ms × 0.0002 = 30.10
        (line["Compute"], "150500.000000", "30.10"),
        # 23 PDF exports (the 4 CSV ones do not count) − 5 free = 18 → 2 packages of 10 × 2.50 = 5.00
        (line["PDF exports"], "2.000000", "5.00"),
        # 20 % of 350.50 saved = 70.10
        (line["Share of savings"], "350.500000", "70.10"),
    ]
    # 49.00 + 16.25 + 30.10 + 5.00 + 70.10, no VAT
    assert (invoice["subtotal"], invoice["vat_amount"], invoice["total"], invoice["amount_due"]) == (
        {"amount": "170.45", "currency": "USD"}, {"amount": "0.00", "currency": "USD"},
        {"amount": "170.45", "currency": "USD"}, {"amount": "170.45", "currency": "USD"},
    )

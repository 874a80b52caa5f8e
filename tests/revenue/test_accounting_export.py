"""The accounting export: balanced vouchers per document, SIE 4 for Sweden, a CSV journal otherwise."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from billing.services import invoice_void, payment_record, payment_refund, payment_void
from customers.models import Role
from customers.periods import add_months, tenant_today
from customers.tenancy import platform_scope, tenant_scope
from revenue.accounting import journal_csv, journal_entries, journal_sie4
from revenue.models import AccountPlan, ExchangeRate
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
URL = "/api/v1/accounting/journal/"


def parse_sie(data: bytes) -> tuple[list[str], list[tuple[str, list[tuple[str, Decimal]]]]]:
    """(header lines, [(#VER line, [(account, amount)])]) of an SIE file, read as code page 437."""
    header, vouchers = [], []
    for line in data.decode("cp437").split("\r\n"):
        line = line.strip()
        if line.startswith("#VER"):
            vouchers.append((line, []))
        elif line.startswith("#TRANS"):
            _, account, _objects, amount = line.split(" ")
            vouchers[-1][1].append((account, D(amount)))
        elif line.startswith("#"):
            header.append(line)
    return header, vouchers


@pytest.fixture
def konsult(tenant_b):
    """Bergström Konsult (SEK, Swedish) this month: Åkerlund AB's invoice (1 000.00 + 25 % VAT,
    50.00 balance credit taken off), paid 1 200.00, then a credit note of 200.00 + VAT and the
    250.00 it freed refunded; Müller GmbH's EUR invoice (33.33 + 25 % VAT) and an EUR payment that
    bounced."""
    tenant = tenant_b
    today = tenant_today(tenant)
    first = today.replace(day=1)
    with platform_scope():
        akerlund = CustomerFactory(tenant=tenant, name="Åkerlund AB")
        muller = CustomerFactory(tenant=tenant, name="Müller GmbH", currency="EUR", country="DE")
        ExchangeRate.objects.create(tenant=tenant, currency="EUR", rate=D("11.4567"), effective_on=add_months(first, -1))
    period = {"period_start": add_months(first, -1), "period_end": first - timedelta(days=1), "issue_date": first}
    invoice = build_invoice(akerlund, lines=[("Rådgivning", "10", "100.00")], vat_rate="25", credit_applied="50.00", **period)
    euro = build_invoice(muller, lines=[("Consulting", "1", "33.33")], vat_rate="25", **period)
    paid = payment_record(tenant=tenant, customer=akerlund, amount=D("1200.00"), received_on=today, reference="OCR 1234")
    build_credit_note(invoice, amount="200.00")
    payment_refund(payment=paid, amount=D("250.00"), refunded_on=today, reference="UTB-1")
    bounced = payment_record(tenant=tenant, customer=muller, amount=D("41.66"), received_on=today, reference="SEPA-9")
    payment_void(payment=bounced, reason="Returned by the bank")
    return {"tenant": tenant, "month": first, "today": today, "invoice": invoice, "euro": euro}


def test_every_voucher_balances_and_posts_to_the_bas_accounts(konsult):
    vouchers = journal_entries(tenant=konsult["tenant"], month=konsult["month"])
    assert [(v.kind, v.currency, [(p.account, p.amount) for p in v.postings]) for v in vouchers] == [
        ("invoice", "SEK", [("1510", D("1200.00")), ("3001", D("-1000.00")), ("2611", D("-250.00")), ("3730", D("50.00"))]),
        ("invoice", "EUR", [("1510", D("41.66")), ("3001", D("-33.33")), ("2611", D("-8.33"))]),
        ("credit_note", "SEK", [("1510", D("-250.00")), ("3001", D("200.00")), ("2611", D("50.00"))]),
        ("payment", "SEK", [("1930", D("1200.00")), ("1510", D("-1200.00"))]),
        ("payment", "EUR", [("1930", D("41.66")), ("1510", D("-41.66"))]),
        ("refund", "SEK", [("1930", D("-250.00")), ("1510", D("250.00"))]),
        ("payment_void", "EUR", [("1930", D("-41.66")), ("1510", D("41.66"))]),
    ]
    assert all(v.balance == 0 for v in vouchers)


def test_sie4_file_in_sek_balances_with_the_rounding_on_receivables(konsult):
    data = journal_sie4(tenant=konsult["tenant"], month=konsult["month"], generated_on=konsult["today"])
    header, vouchers = parse_sie(data)
    day = f"{konsult['today']:%Y%m%d}"
    assert header[:6] == [
        "#FLAGGA 0", '#PROGRAM "Customer economics portal" 1.0', "#FORMAT PC8", f"#GEN {day}", "#SIETYP 4",
        '#FNAMN "Bergström Konsult"',
    ]
    assert f"#RAR 0 {konsult['month'].year}0101 {konsult['month'].year}1231" in header
    assert "#VALUTA SEK" in header and '#KONTO 1510 "Kundfordringar"' in header
    assert '#KONTO 2611 "Utgående moms på försäljning inom Sverige, 25 %"' in header
    assert vouchers[0][0] == f'#VER A 1 {konsult["month"]:%Y%m%d} "Invoice {konsult["invoice"].number} Åkerlund AB" {day}'
    # 33.33 × 11.4567 = 381.85, 8.33 × 11.4567 = 95.43: receivables take 477.28, not 41.66 × 11.4567 = 477.29.
    assert vouchers[1][1] == [("1510", D("477.28")), ("3001", D("-381.85")), ("2611", D("-95.43"))]
    assert vouchers[4][1] == [("1930", D("477.29")), ("1510", D("-477.29"))]
    assert all(sum(amount for _, amount in trans) == 0 for _, trans in vouchers)
    assert len(vouchers) == 7
    debits = sum(a for _, trans in vouchers for _, a in trans if a > 0)
    credits = -sum(a for _, trans in vouchers for _, a in trans if a < 0)
    # 1 250.00 + 477.28 + 250.00 + 1 200.00 + 477.29 + 250.00 + 477.29
    assert debits == credits == D("4381.86")


def test_sie4_is_refused_without_an_exchange_rate(konsult):
    with tenant_scope(konsult["tenant"]):
        ExchangeRate.objects.for_tenant(konsult["tenant"]).delete()
    from revenue.selectors.common import MissingExchangeRate

    with pytest.raises(MissingExchangeRate, match="No exchange rate from EUR to SEK"):
        journal_sie4(tenant=konsult["tenant"], month=konsult["month"])


@pytest.fixture
def acme(tenant_a):
    """Acme (USD): a reverse-charge invoice of 1 000.00 paid in full, and an invoice of 500.00
    voided after it was issued, both this month."""
    tenant = tenant_a
    today = tenant_today(tenant)
    first = today.replace(day=1)
    with platform_scope():
        customer = CustomerFactory(tenant=tenant, name="=Northwind Traders")
    period = {"period_start": add_months(first, -1), "period_end": first - timedelta(days=1), "issue_date": first}
    kept = build_invoice(customer, lines=[("Platform fee", "1", "1000.00")], reverse_charge=True, **period)
    voided = build_invoice(customer, lines=[("Setup", "1", "500.00")], period_start=add_months(first, -2),
                           period_end=add_months(first, -1) - timedelta(days=1), issue_date=first)
    invoice_void(invoice=voided, reason="Sent twice")
    payment_record(tenant=tenant, customer=customer, amount=D("1000.00"), received_on=today, reference="WIRE 77")
    return {"tenant": tenant, "month": first, "today": today, "kept": kept, "voided": voided}


def test_csv_journal_rows_debits_equal_credits(acme, konsult):
    rows = list(csv.DictReader(io.StringIO(journal_csv(tenant=acme["tenant"], month=acme["month"]))))
    kept, voided, first, today = acme["kept"].number, acme["voided"].number, acme["month"].isoformat(), acme["today"].isoformat()
    assert [(r["date"], r["voucher"], r["kind"], r["document"], r["account"], r["debit"], r["credit"], r["currency"]) for r in rows] == [
        (first, "1", "invoice", kept, "1510", "1000.00", "", "USD"),
        (first, "1", "invoice", kept, "3308", "", "1000.00", "USD"),
        (first, "2", "invoice", voided, "1510", "500.00", "", "USD"),
        (first, "2", "invoice", voided, "3001", "", "500.00", "USD"),
        (today, "3", "invoice_void", voided, "1510", "", "500.00", "USD"),
        (today, "3", "invoice_void", voided, "3001", "500.00", "", "USD"),
        (today, "4", "payment", "WIRE 77", "1930", "1000.00", "", "USD"),
        (today, "4", "payment", "WIRE 77", "1510", "", "1000.00", "USD"),
    ]
    assert rows[1]["account_name"] == "Sales, reverse charge"
    assert rows[0]["customer"] == "'=Northwind Traders"  # never a spreadsheet formula
    assert sum(D(r["debit"] or 0) for r in rows) == sum(D(r["credit"] or 0) for r in rows) == D("3000.00")
    # The other tenant's documents are not in it.
    assert not any("Åkerlund" in r["customer"] or r["currency"] == "SEK" for r in rows)


def test_the_account_plan_decides_accounts_and_is_validated(acme):
    with tenant_scope(acme["tenant"]):
        AccountPlan.objects.create(tenant=acme["tenant"], receivables_account="1200", bank_account="1000")
    vouchers = journal_entries(tenant=acme["tenant"], month=acme["month"])
    assert [p.account for p in vouchers[-1].postings] == ["1000", "1200"]

    from django.core.exceptions import ValidationError

    plan = AccountPlan(tenant=acme["tenant"], receivables_account="1930")
    with pytest.raises(ValidationError, match="1930 is used twice"):
        plan.full_clean(exclude=["tenant"])
    plan = AccountPlan(tenant=acme["tenant"], sales_account="30O1")
    with pytest.raises(ValidationError, match="1 to 10 digits"):
        plan.full_clean(exclude=["tenant"])


def api(member_factory, tenant, role=Role.FINANCE):
    client = APIClient()
    client.force_login(member_factory(tenant, role))
    return client


def test_api_downloads_the_tenants_format_and_refuses_bad_input(member_factory, konsult, acme):
    client = api(member_factory, konsult["tenant"])
    month = f"{konsult['month']:%Y-%m}"
    sie = client.get(URL, {"month": month})
    assert sie.status_code == 200
    assert sie["Content-Disposition"] == f'attachment; filename="journal-bergstrom-{month}.se"'
    assert len(parse_sie(sie.content)[1]) == 7
    as_csv = client.get(URL, {"month": month, "file_format": "csv"})
    assert as_csv.status_code == 200 and as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert "Åkerlund AB" in as_csv.content.decode() and "Northwind" not in as_csv.content.decode()

    assert client.get(URL, {"month": "2026-13"}).json() == {"detail": "Write the month as YYYY-MM, e.g. 2026-03 (got '2026-13')."}
    assert client.get(URL).status_code == 400
    assert client.get(URL, {"month": month, "file_format": "xlsx"}).status_code == 400
    assert api(member_factory, konsult["tenant"], Role.VIEWER).get(URL, {"month": month}).status_code == 403

    with tenant_scope(konsult["tenant"]):
        ExchangeRate.objects.for_tenant(konsult["tenant"]).delete()
    missing = client.get(URL, {"month": month})
    assert missing.status_code == 409 and "EUR to SEK" in missing.json()["detail"]


def test_admin_export_downloads_and_explains_a_bad_month(client, member_factory, acme, tenant_b):
    client.force_login(member_factory(acme["tenant"], Role.FINANCE))
    assert reverse("admin:revenue_accountplan_export") in client.get(reverse("admin:revenue_accountplan_changelist")).content.decode()
    url = reverse("admin:revenue_accountplan_export")
    assert client.get(url).status_code == 200
    response = client.post(url, {"month": f"{acme['month']:%Y-%m}", "journal_format": "csv"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"WIRE 77" in response.content
    bad = client.post(url, {"month": "Nov-26", "journal_format": "csv"})
    assert bad.status_code == 400 and "Write the month as YYYY-MM" in bad.content.decode()

    client.force_login(member_factory(acme["tenant"], Role.VIEWER))
    assert client.get(url).status_code == 403


def test_one_account_plan_per_tenant_in_the_admin(client, member_factory, tenant_a, tenant_b):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    form = {"journal_format": "csv", "organisation_number": "", "receivables_account": "1510", "sales_account": "3001",
            "sales_reverse_charge_account": "3308", "output_vat_account": "2611", "bank_account": "1930",
            "credits_granted_account": "3730"}
    add = reverse("admin:revenue_accountplan_add")
    assert client.post(add, form).status_code == 302
    again = client.post(add, form)
    assert again.status_code == 200 and "already exists" in again.content.decode()
    assert AccountPlan.objects.for_tenant(tenant_a).count() == 1
    with tenant_scope(tenant_b):
        assert AccountPlan.objects.for_tenant(tenant_b).count() == 0

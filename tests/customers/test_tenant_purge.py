"""``tenant_purge`` deletes one tenant and every row it owns, in every app, and nothing of another."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice
from customers.models import ContractLine, Tenant
from customers.purge import tenant_purge
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import BillableMetricFactory, BillingSettingsFactory, UsageEventFactory
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.helpers import calls, entered_cost, price
from tests.revenue.factories import OpportunityFactory


def _populate(tenant: Tenant) -> Invoice:
    """Customers, contracts, lines with history, a finalized invoice with a credit note, usage,
    economics and pipeline rows of ``tenant``; returns the finalized invoice."""
    with tenant_scope(tenant):
        customer = CustomerFactory(tenant=tenant, currency=tenant.reporting_currency)
        CustomerFactory(tenant=tenant, currency=tenant.reporting_currency)
        ContactFactory(tenant=tenant, customer=customer)
        contract = ContractFactory(tenant=tenant, customer=customer, currency=customer.currency)
        line = ContractLineFactory(tenant=tenant, contract=contract)
        line.quantity = Decimal(3)
        line.save()  # a second history row
        BillingSettingsFactory(tenant=tenant)
        BillableMetricFactory(tenant=tenant)
        UsageEventFactory(tenant=tenant, customer=customer)
        UsageEventFactory(tenant=tenant, customer=customer)
        price(tenant, "m", "1.00", "2.00")
        calls(customer, 3)  # AI calls: the roll-up gets rows too
        entered_cost(customer, date(2026, 1, 1), "12.00")
        OpportunityFactory(tenant=tenant, customer=customer)
        invoice = build_invoice(customer)
        build_credit_note(invoice)
    return invoice


def _counts(tenant_id: int) -> dict[str, int]:
    """Rows of the tenant in every table of the schema with a tenant_id column (found by the
    database, not by the app registry the purge walks); a partition's rows count with its parent's."""
    counts = {}
    with platform_scope(), connection.cursor() as cursor:  # every tenant's rows: past row-level security
        cursor.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'tenant_id'"
            " AND table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition) ORDER BY 1"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT COUNT(*) FROM "{table}" WHERE tenant_id = %s', [tenant_id])
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture
def two_tenants(tenant_a, tenant_b):
    _populate(tenant_a)
    _populate(tenant_b)
    return tenant_a, tenant_b


def test_purge_deletes_every_row_of_the_tenant_and_none_of_the_other(two_tenants):
    tenant_a, tenant_b = two_tenants
    before_a, before_b = _counts(tenant_a.pk), _counts(tenant_b.pk)
    for table in ("customers_historicalcontractline", "billing_invoice", "billing_invoiceline", "billing_creditnote",
                  "billing_usageevent", "billing_aiusageday", "revenue_customercost", "revenue_opportunity"):
        assert before_a[table] > 0, table

    with connection.cursor() as cursor:
        # Foreign keys are checked at commit, which a test never reaches: check each statement, so
        # the order of the deletes is what is tested.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with CaptureQueriesContext(connection) as queries:
        deleted = tenant_purge(tenant=tenant_a)

    # set-wise: one DELETE per table, whatever the number of rows
    assert sum(q["sql"].startswith("DELETE") for q in queries.captured_queries) == len(deleted)

    assert _counts(tenant_a.pk) == dict.fromkeys(before_a, 0)
    assert _counts(tenant_b.pk) == before_b
    with platform_scope():
        assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
        assert Tenant.objects.filter(pk=tenant_b.pk, purge_started_at=None).exists()
    # roll-up rows also go when their usage events go (a trigger), so compare the rest exactly
    assert {t: n for t, n in deleted.items() if t != "billing_aiusageday"} == {
        **{t: n for t, n in before_a.items() if t != "billing_aiusageday"}, "customers_tenant": 1,
    }


def _delete_finalized_invoice(tenant: Tenant, *, first_statement: str = "SELECT 1") -> None:
    with platform_scope():
        invoice = Invoice.objects.filter(tenant=tenant, status=Invoice.Status.FINALIZED).first()
    with transaction.atomic(), tenant_scope(tenant), connection.cursor() as cursor:
        cursor.execute(first_statement, [str(tenant.pk)] if "%s" in first_statement else None)
        cursor.execute("DELETE FROM billing_invoice WHERE id = %s", [invoice.pk])


def test_a_finalized_invoice_still_cannot_be_deleted_outside_a_purge(two_tenants):
    tenant_a, _ = two_tenants

    with pytest.raises(IntegrityError, match="cannot be deleted"):
        _delete_finalized_invoice(tenant_a)


def test_the_old_purge_setting_no_longer_opens_the_trigger(two_tenants):
    tenant_a, _ = two_tenants

    with pytest.raises(IntegrityError, match="cannot be deleted"):
        _delete_finalized_invoice(tenant_a, first_statement="SELECT set_config('portal.purging_tenant', %s, true)")


@pytest.mark.parametrize("tenant", [None, Tenant(name="Unsaved", slug="unsaved")], ids=["none", "unsaved"])
def test_purging_no_tenant_or_an_unsaved_one_raises(db, tenant):
    with pytest.raises(ValueError, match="saved tenant"):
        tenant_purge(tenant=tenant)


def test_purging_a_tenant_twice_raises_and_changes_nothing(two_tenants):
    tenant_a, tenant_b = two_tenants
    tenant_purge(tenant=tenant_a)
    before_b = _counts(tenant_b.pk)

    with pytest.raises(Tenant.DoesNotExist):
        tenant_purge(tenant=tenant_a)

    assert _counts(tenant_b.pk) == before_b


def test_contract_lines_are_counted_per_table(two_tenants):
    tenant_a, _ = two_tenants
    with platform_scope():
        lines = ContractLine.objects.filter(tenant=tenant_a).count()

    assert tenant_purge(tenant=tenant_a)["customers_contractline"] == lines

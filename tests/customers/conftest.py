"""Fixtures of the customers tests."""

import pytest

from customers.tenancy import tenant_scope
from tests.billing.document_builders import build_invoice
from tests.customers.contract_history import NOV, OCT, SEP, invoice_month, seats_contract
from tests.customers.factories import CustomerFactory


@pytest.fixture
def seats_world(tenant_a, tenant_b):
    """Tenant A's customer on 79 seats × $15 since September, September and October finalized; tenant
    B's customer with a finalized November, which must never block tenant A."""
    other = CustomerFactory(tenant=tenant_b, currency="SEK")
    build_invoice(other, period_start=NOV[0], period_end=NOV[1])
    customer = CustomerFactory(tenant=tenant_a, currency="USD", name="Northwind")
    with tenant_scope(tenant_a):
        contract = seats_contract(customer)
        sep, = invoice_month(tenant_a, SEP)
        october, = invoice_month(tenant_a, OCT)
        yield {"tenant": tenant_a, "contract": contract, "line": contract.lines.get(), "sep": sep, "oct": october}

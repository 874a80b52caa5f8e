"""Contracts entered by hand in the admin get a reference and a dated "new" change, like the services."""

from datetime import date

from customers.models import Contract, ContractChange, Role
from customers.tenancy import tenant_scope
from tests.customers.factories import CustomerFactory


def _inline_management(prefix, total=0):
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def test_contract_added_in_admin_gets_next_reference_and_a_new_change(client, tenant_a, tenant_b, member_factory):
    CustomerFactory(tenant=tenant_b)
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    data = {
        "customer": customer.pk, "reference": "", "title": "Starter plan", "status": "active", "currency": "USD",
        "billing_interval": "1", "start_date": "2026-01-01", "end_date": "", "renewal_term_months": "",
        "signed_on": "", "notes": "",
        **_inline_management("lines", 1),
        "lines-0-description": "Plan fee", "lines-0-kind": "recurring", "lines-0-quantity": "1",
        "lines-0-unit_price_0": "29.00", "lines-0-unit_price_1": "USD", "lines-0-starts_on": "2026-01-01",
        **_inline_management("changes", 0),
    }
    response = client.post("/admin/customers/contract/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tenant_a):
        contract = Contract.objects.get()
        assert contract.reference == "C-00001"
        assert list(ContractChange.objects.values_list("kind", "effective_on")) == [("new", date(2026, 1, 1))]
        assert contract.lines.get().unit_price.amount == 29

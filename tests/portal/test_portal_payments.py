"""The portal shows each invoice's payment status and what is still due after payments."""

from datetime import date, timedelta
from decimal import Decimal

from billing.services import payment_record
from customers.periods import tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory


def test_invoice_list_and_detail_show_partially_paid_overdue_and_paid(client, tenant_a):
    today = tenant_today(tenant_a)
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind", language="en")
        user = PortalAccessFactory(customer=northwind, tenant=tenant_a, user=UserFactory(username="northwind")).user
    # Issued long enough ago to be overdue (30 days' terms), and one issued today.
    late = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")], period_start=date(2026, 9, 1),
                         period_end=date(2026, 9, 30), issue_date=today - timedelta(days=45))
    current = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")], issue_date=today)
    paid = build_invoice(northwind, lines=[("Platform fee", "1", "50.00")], period_start=date(2026, 8, 1),
                         period_end=date(2026, 8, 31), issue_date=today - timedelta(days=10))
    payment_record(tenant=tenant_a, customer=northwind, amount=Decimal("150.00"), received_on=today,
                   allocations=[(current, Decimal("100.00")), (paid, Decimal("50.00"))])
    client.force_login(user)

    listing = client.get("/invoices/").content.decode()
    detail = client.get(f"/invoices/{current.pk}/").content.decode()
    overdue_only = client.get("/invoices/", {"status": "overdue"}).content.decode()

    assert '<span class="badge partially_paid">Partially paid</span>' in detail and "$324.00" in detail
    assert '<span class="badge overdue">Overdue</span>' in listing and '<span class="badge paid">Paid</span>' in listing
    assert late.number in overdue_only and current.number not in overdue_only and paid.number not in overdue_only
    assert client.get("/invoices/", {"status": "finalized"}).status_code == 400

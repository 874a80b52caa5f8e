"""A customer's contract with invoiced months, built through the real services, for the tests of dated
contract changes (services, admin, API, browser): 79 seats × $15 from September 2026."""

from datetime import date
from decimal import Decimal

from billing.models import Invoice
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.models import ContractChange, ContractLine
from customers.money import Money
from customers.services import LineSpec, contract_create
from customers.tenancy import tenant_scope

SEP, OCT, NOV = (date(2026, 9, 1), date(2026, 9, 30)), (date(2026, 10, 1), date(2026, 10, 31)), (
    date(2026, 11, 1), date(2026, 11, 30))


def invoice_month(tenant, period, *, finalize=True):
    """Draft the month through billing's draft run; finalize it (numbered) unless told not to."""
    invoice_compute_drafts(tenant=tenant, period_start=period[0], period_end=period[1])
    with tenant_scope(tenant):
        invoices = list(Invoice.objects.for_tenant(tenant).filter(period_start=period[0]))
    if finalize:
        invoices = [invoice_finalize(invoice=invoice, issue_date=period[1]) for invoice in invoices]
    return invoices


def seats_contract(customer, start=SEP[0]):
    return contract_create(
        customer=customer, title="Team seats", start_date=start,
        lines=[LineSpec(description="Seats", kind=ContractLine.Kind.PER_SEAT, quantity=Decimal(79),
                        unit_price=Money("15.00", "USD"))],
    )


def timeline(contract):
    return list(ContractChange.objects.for_tenant(contract.tenant).filter(contract=contract)
                .values_list("kind", "effective_on", "note"))


def versions(contract):
    return list(ContractLine.objects.for_tenant(contract.tenant).filter(contract=contract).order_by("starts_on", "id")
                .values_list("description", "quantity", "starts_on", "ends_on"))


def november_draft(tenant):
    """Compute November's drafts through billing's draft run: (status, subtotal, total) of the one invoice."""
    invoice, = invoice_month(tenant, NOV, finalize=False)
    return invoice.status, invoice.subtotal, invoice.total

"""Helpers shared by the billing services: validated saves, row locks on
invoices, gapless numbering and the credit audit trail."""

from decimal import Decimal

from billing.models import CreditAuditEntry, CreditRequest, Invoice, NumberSequence
from customers.models import Tenant
from customers.tenancy import tenant_scope

ZERO = Decimal(0)


def _save(obj):
    # Model validation looks up related rows and unique constraints through the scoped managers.
    with tenant_scope(obj.tenant):
        obj.full_clean()
    obj.save()
    return obj


def _next_number(*, tenant: Tenant, kind: str) -> int:
    """The next value of the tenant's ``kind`` sequence. The row stays locked until commit, so
    concurrent callers queue and a rolled-back caller leaves no gap."""
    NumberSequence.objects.for_tenant(tenant).bulk_create([NumberSequence(tenant=tenant, kind=kind)], ignore_conflicts=True)
    sequence = NumberSequence.objects.for_tenant(tenant).select_for_update().get(kind=kind)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return sequence.last_value




def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.for_tenant(invoice.tenant).select_for_update().select_related("tenant").get(pk=invoice.pk)


def _audit(request: CreditRequest, action: str, *, actor, role: str = "", note: str = "") -> CreditAuditEntry:
    return _save(
        CreditAuditEntry(
            tenant=request.tenant,
            credit_request=request,
            action=action,
            actor=actor,
            actor_role=role,
            amount=request.amount,
            currency=request.currency,
            note=note[:300],
        )
    )

"""A tenant's pricing catalog: billable metrics, price terms and billing settings.

Every write validates with the model's own ``full_clean`` (one place for the rules per charge model:
``PriceTerms.clean`` → ``parse_terms``) and runs in one transaction. History is never rewritten: what a
finalized or paid invoice was priced with is not changed or deleted afterwards; such a write raises
``CatalogInUse``, whose message says what to do instead (the API answers it with 409).
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from billing.models import BillableMetric, BillingSettings, Invoice, InvoiceLine, PriceTerms
from billing.services._common import _save
from billing.services.price_terms import billing_settings_for, price_terms_set
from customers.models import ContractLine, Tenant

ISSUED = [Invoice.Status.FINALIZED, Invoice.Status.PAID]
# What a metric measures; its name and unit only describe it.
METRIC_MEASURE_FIELDS = ("code", "event_code", "aggregation", "field", "filters")
METRIC_FIELDS = (*METRIC_MEASURE_FIELDS, "name", "unit")


class CatalogInUse(Exception):
    """A catalog write that would change what an issued invoice was priced with, or leave price terms
    naming a metric that is gone. ``str(exc)`` is the reason, written for the integrator."""


def _issued_line(rows) -> InvoiceLine | None:
    return rows.filter(invoice__status__in=ISSUED).select_related("invoice").order_by("invoice__period_start").first()


def _metric_users(metric: BillableMetric):
    """The price terms that price ``metric`` or credit it as their ``failed_metric``."""
    return PriceTerms.objects.for_tenant(metric.tenant).filter(Q(metric=metric.code) | Q(terms__failed_metric=metric.code))


@transaction.atomic
def billable_metric_create(*, tenant: Tenant, code: str, name: str, **fields) -> BillableMetric:
    """Create a billable metric (``fields``: event_code, aggregation, field, filters, unit).
    Raises ValidationError per field (a code the tenant has already, filters that are not plain values)."""
    return _save(BillableMetric(tenant=tenant, code=code, name=name, **fields))


def billable_metric_change_refusal(*, metric: BillableMetric, changes: dict) -> str | None:
    """Why ``changes`` (new field values) may not be made to the stored ``metric``, or None.

    What it measures (code, event_code, aggregation, field, filters) cannot change once an issued
    invoice (finalized or paid) was priced from it, nor may its code change while price terms name it.
    The admin's form asks this too.
    """
    measure_changed = [name for name in METRIC_MEASURE_FIELDS if name in changes and changes[name] != getattr(metric, name)]
    if not measure_changed:
        return None
    users = _metric_users(metric)
    issued = _issued_line(InvoiceLine.objects.for_tenant(metric.tenant).filter(contract_line__price_terms__in=users))
    if issued is not None:
        return (
            f"Metric {metric.code} priced invoice {issued.invoice.number} ({issued.invoice.period_start:%Y-%m}); "
            f"its {', '.join(measure_changed)} cannot change, or that invoice could no longer be explained. "
            "Create a new metric and point new price terms at it."
        )
    if "code" in measure_changed and users.exists():
        return (
            f"{users.count()} price terms name metric {metric.code}; point them at another metric before "
            "renaming it, or create a new metric."
        )
    return None


def billable_metric_delete_refusal(*, metric: BillableMetric) -> str | None:
    """Why ``metric`` may not be deleted (price terms use it), or None."""
    users = _metric_users(metric).count()
    return f"{users} price terms use metric {metric.code}; delete or change them first." if users else None


@transaction.atomic
def billable_metric_update(*, metric: BillableMetric, **changes) -> BillableMetric:
    """Change a metric's fields (those of ``METRIC_FIELDS`` given). Raises ``CatalogInUse`` for what
    ``billable_metric_change_refusal`` refuses (its name and unit can always change), ValidationError
    per field."""
    unknown = set(changes) - set(METRIC_FIELDS)
    if unknown:
        raise TypeError(f"billable_metric_update() got unexpected fields {sorted(unknown)}")
    refusal = billable_metric_change_refusal(metric=metric, changes=changes)
    if refusal:
        raise CatalogInUse(refusal)
    for name, value in changes.items():
        setattr(metric, name, value)
    return _save(metric)


@transaction.atomic
def billable_metric_delete(*, metric: BillableMetric) -> None:
    """Delete a metric no price terms use. Raises ``CatalogInUse`` naming how many do.

    Its usage events stay: they are facts, and a metric with the same code reads them again.
    """
    refusal = billable_metric_delete_refusal(metric=metric)
    if refusal:
        raise CatalogInUse(refusal)
    metric.delete()


def price_terms_refusal(*, contract_line: ContractLine, what: str) -> str | None:
    """Why the price terms of ``contract_line`` may not be ``what`` ("added", "changed", "deleted"): the
    line version is on an issued invoice, so its pricing is history. None when they may."""
    issued = _issued_line(InvoiceLine.objects.for_tenant(contract_line.tenant).filter(contract_line=contract_line))
    if issued is None:
        return None
    return (
        f"Contract line {contract_line.pk} ({contract_line.description}) was invoiced on "
        f"{issued.invoice.number} ({issued.invoice.period_start:%Y-%m}); its price terms cannot be {what}. "
        f"Change the line from a date instead (POST /api/v1/contracts/{contract_line.contract_id}/changes/): "
        "the new line version keeps these terms, and its own terms can then be changed."
    )


def _refuse_if_invoiced(contract_line: ContractLine, what: str) -> None:
    refusal = price_terms_refusal(contract_line=contract_line, what=what)
    if refusal:
        raise CatalogInUse(refusal)


@transaction.atomic
def price_terms_create(
    *, contract_line: ContractLine, charge_model: str, metric: str = "", terms: dict | None = None
) -> PriceTerms:
    """Give a contract line its price terms. Raises ValidationError per field (``PriceTerms.clean``:
    the charge model's terms, the metric of a metered model) and when the line has terms already;
    ``CatalogInUse`` when the line version is on an issued invoice."""
    if PriceTerms.objects.for_tenant(contract_line.tenant).filter(contract_line=contract_line).exists():
        raise ValidationError({"contract_line": "This line has price terms already; change them instead."})
    _refuse_if_invoiced(contract_line, "added")
    return price_terms_set(contract_line=contract_line, charge_model=charge_model, metric=metric, terms=terms)


@transaction.atomic
def price_terms_update(
    *, price_terms: PriceTerms, charge_model: str, metric: str = "", terms: dict | None = None
) -> PriceTerms:
    """Replace a line's charge model, metric and terms (validated as on create). Raises
    ``CatalogInUse`` when the line version is on an issued invoice: its pricing is history."""
    _refuse_if_invoiced(price_terms.contract_line, "changed")
    return price_terms_set(
        contract_line=price_terms.contract_line, charge_model=charge_model, metric=metric, terms=terms
    )


@transaction.atomic
def price_terms_delete(*, price_terms: PriceTerms) -> None:
    """Remove a line's price terms. Raises ``CatalogInUse`` when the line version is on an issued invoice."""
    _refuse_if_invoiced(price_terms.contract_line, "deleted")
    price_terms.delete()


@transaction.atomic
def billing_settings_update(
    *, tenant: Tenant, minimum_invoice_amount: Decimal, usage_max_age_days: int | None = None,
    usage_max_future_hours: int = 24,
) -> BillingSettings:
    """Set the tenant's billing settings (created on first use), under a row lock.

    ``minimum_invoice_amount`` applies to invoices drafted from now on, in each invoice's currency;
    issued invoices keep what they were. ``usage_max_age_days`` (None: no limit) and
    ``usage_max_future_hours`` are usage ingestion's plausibility window (billing.metering), applied to
    events that arrive from now on. Raises ValidationError per field (a negative amount, a window
    outside its limits).
    """
    settings = billing_settings_for(tenant=tenant, lock=True)
    settings.minimum_invoice_amount = minimum_invoice_amount
    settings.usage_max_age_days = usage_max_age_days
    settings.usage_max_future_hours = usage_max_future_hours
    return _save(settings)


PAYMENT_DETAIL_FIELDS = ("payment_method", "bankgiro", "iban", "bic", "bank_name", "payment_reference_text")


@transaction.atomic
def billing_payment_details_set(
    *, tenant: Tenant, payment_method: str, bankgiro: str = "", iban: str = "", bic: str = "", bank_name: str = "",
    payment_reference_text: str = "",
) -> BillingSettings:
    """Set how the tenant's customers pay, as printed on invoices and their emails (under a row lock).

    ``payment_method`` is ``"bankgiro"`` (``bankgiro`` required: 7-8 digits with a Luhn check digit,
    stored as 123-4566; invoices finalized from now on carry an OCR number), ``"iban"`` (``iban``
    required, validated and stored compact; ``bic`` optional, validated; ``bank_name`` and
    ``payment_reference_text`` free text) or ``""`` (no payment details). The fields of the other
    method are cleared. Issued invoices keep their OCR numbers and frozen PDFs. Raises
    ValidationError per field.
    """
    settings = billing_settings_for(tenant=tenant, lock=True)
    settings.payment_method = payment_method
    settings.bankgiro = (bankgiro or "").strip()
    settings.iban = (iban or "").strip()
    settings.bic = (bic or "").strip()
    settings.bank_name = (bank_name or "").strip()
    settings.payment_reference_text = (payment_reference_text or "").strip()
    return _save(settings)

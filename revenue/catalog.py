"""Writes on revenue's part of the pricing catalog: price plans (what the what-ifs compare) and the
exchange rates metrics convert with.

Each write validates with the model's ``full_clean`` (a plan's terms by the same rules as billing's
price terms) and runs in one transaction. A closed month's figures are frozen (``MetricSnapshot``), so
an exchange rate that converted a frozen month, or would now, is neither changed nor added there:
``CatalogInUse`` (billing's, answered 409 by the API) says which month and what to do instead.
"""

from datetime import date

from django.db import transaction

from billing.services import CatalogInUse
from customers.models import Tenant
from customers.periods import month_start
from customers.services import save_validated
from revenue.facts import revenue_facts_refresh_currency
from revenue.models import ExchangeRate, MetricSnapshot, PricePlan

PRICE_PLAN_FIELDS = ("code", "name", "currency", "base_fee", "charge_model", "metric", "unit_price", "terms", "description")
EXCHANGE_RATE_FIELDS = ("currency", "rate", "effective_on")


def _fields(changes: dict, allowed: tuple[str, ...], service: str) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise TypeError(f"{service}() got unexpected fields {sorted(unknown)}")


@transaction.atomic
def price_plan_create(*, tenant: Tenant, **fields) -> PricePlan:
    """Add a plan to the tenant's catalog. Raises ValidationError per field (``PricePlan.clean``:
    the charge model's terms, a metered model's metric among the tenant's billable metrics, a taken code)."""
    _fields(fields, PRICE_PLAN_FIELDS, "price_plan_create")
    return save_validated(PricePlan(tenant=tenant, **fields))


@transaction.atomic
def price_plan_update(*, plan: PricePlan, **changes) -> PricePlan:
    """Change a plan. Plans price what-ifs only, never an invoice, so every field may change.
    Raises ValidationError per field."""
    _fields(changes, PRICE_PLAN_FIELDS, "price_plan_update")
    for name, value in changes.items():
        setattr(plan, name, value)
    return save_validated(plan)


@transaction.atomic
def price_plan_delete(*, plan: PricePlan) -> None:
    """Remove a plan from the catalog; past what-if runs keep the figures they computed."""
    plan.delete()


def _frozen_months_converted(*, tenant: Tenant, currency: str, effective_on: date) -> list[date]:
    """The frozen months a rate of ``currency`` from ``effective_on`` converts: those whose last day it is
    the latest rate on or before (metrics convert at the month's last day), i.e. from its own month up
    to the month before the next rate of the currency takes over."""
    others = ExchangeRate.objects.for_tenant(tenant).filter(currency=currency, effective_on__gt=effective_on)
    next_day = others.order_by("effective_on").values_list("effective_on", flat=True).first()
    months = MetricSnapshot.objects.for_tenant(tenant).filter(month__gte=month_start(effective_on))
    if next_day is not None:
        months = months.filter(month__lt=month_start(next_day))
    return sorted(set(months.values_list("month", flat=True)))


def exchange_rate_refusal(*, tenant: Tenant, currency: str, effective_on: date, what: str) -> str | None:
    """Why a rate of ``currency`` from ``effective_on`` may not be written (``what`` it did or would do to
    a frozen month: "converted", "would change"), or None. The admin's form asks this too."""
    months = _frozen_months_converted(tenant=tenant, currency=currency, effective_on=effective_on)
    if not months:
        return None
    return (
        f"The {currency} rate from {effective_on} {what} the figures of {months[0]:%Y-%m}"
        f"{f' to {months[-1]:%Y-%m}' if len(months) > 1 else ''}, which are closed and frozen. "
        f"Date the new rate after {months[-1]:%Y-%m}."
    )


def _refuse_frozen(rate: ExchangeRate, what: str) -> None:
    refusal = exchange_rate_refusal(tenant=rate.tenant, currency=rate.currency, effective_on=rate.effective_on, what=what)
    if refusal:
        raise CatalogInUse(refusal)


@transaction.atomic
def exchange_rate_create(*, tenant: Tenant, currency: str, rate, effective_on: date) -> ExchangeRate:
    """Store a rate into the reporting currency from ``effective_on``. Raises ValidationError per field
    (a rate that is not above 0, a currency and day that have a rate already) and ``CatalogInUse``
    when the rate would convert a frozen month."""
    exchange_rate = ExchangeRate(tenant=tenant, currency=currency, rate=rate, effective_on=effective_on)
    save_validated(exchange_rate)
    _refuse_frozen(exchange_rate, "would change")
    revenue_facts_refresh_currency(tenant=tenant, currencies=[currency])
    return exchange_rate


@transaction.atomic
def exchange_rate_update(*, exchange_rate: ExchangeRate, **changes) -> ExchangeRate:
    """Correct a rate (``currency``, ``rate``, ``effective_on``). Raises ``CatalogInUse`` when the rate
    converted a frozen month, or would once changed; ValidationError per field."""
    _fields(changes, EXCHANGE_RATE_FIELDS, "exchange_rate_update")
    _refuse_frozen(exchange_rate, "converted")
    old_currency = exchange_rate.currency
    for name, value in changes.items():
        setattr(exchange_rate, name, value)
    save_validated(exchange_rate)
    _refuse_frozen(exchange_rate, "would change")
    revenue_facts_refresh_currency(tenant=exchange_rate.tenant, currencies=[old_currency, exchange_rate.currency])
    return exchange_rate


@transaction.atomic
def exchange_rate_delete(*, exchange_rate: ExchangeRate) -> None:
    """Delete a rate. Raises ``CatalogInUse`` when it converted a frozen month."""
    _refuse_frozen(exchange_rate, "converted")
    exchange_rate.delete()
    revenue_facts_refresh_currency(tenant=exchange_rate.tenant, currencies=[exchange_rate.currency])

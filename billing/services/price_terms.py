"""A tenant's billing settings and a contract line's price terms."""

from django.db import transaction

from billing.models import BillingSettings, PriceTerms
from billing.services._common import _save
from customers.models import ContractLine, Tenant


def billing_settings_for(*, tenant: Tenant, lock: bool = False) -> BillingSettings:
    """The tenant's BillingSettings, created with defaults on first use; ``lock`` takes a row lock."""
    BillingSettings.objects.for_tenant(tenant).bulk_create([BillingSettings(tenant=tenant)], ignore_conflicts=True)
    rows = BillingSettings.objects.for_tenant(tenant)
    return (rows.select_for_update() if lock else rows).get()


@transaction.atomic
def price_terms_set(
    *, contract_line: ContractLine, charge_model: str, metric: str = "", terms: dict | None = None
) -> PriceTerms:
    """Attach (or replace) the price terms of a contract line. Raises ValidationError on bad terms."""
    existing = PriceTerms.objects.for_tenant(contract_line.tenant).filter(contract_line=contract_line).first()
    price_terms = existing or PriceTerms(tenant=contract_line.tenant, contract_line=contract_line)
    price_terms.charge_model = charge_model
    price_terms.metric = metric
    price_terms.terms = terms or {}
    return _save(price_terms)


def price_terms_carry(sender, *, previous: ContractLine, line: ContractLine, **kwargs) -> PriceTerms | None:
    """Receiver of ``customers.signals.contract_line_versioned`` (connected in ``BillingConfig.ready``):
    a new version of a contract line keeps the price terms of the version it follows (charge model,
    metric, terms), unless it has its own already. Returns the new terms, or None when there were none."""
    rows = PriceTerms.objects.for_tenant(line.tenant)
    terms = rows.filter(contract_line=previous).first()
    if terms is None or rows.filter(contract_line=line).exists():
        return None
    return price_terms_set(
        contract_line=line, charge_model=terms.charge_model, metric=terms.metric, terms=dict(terms.terms)
    )

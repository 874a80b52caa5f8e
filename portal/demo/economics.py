"""Customer-economics data for a demo tenant: cost to serve, a price-plan catalog, alert rules, alerts.

Built after the billing data (``portal.demo.billing``), through the same validation as the admin:

- what the customers cost to serve: the job API's jobs carry their AI models and tokens, priced by
  the tenant's ``ModelPrice`` table made here (``model_prices(ctx)``); the others' costs are a
  ``CustomerCost`` per customer and closed month (``customer_costs(ctx, first, last)`` with
  ``COST_SOURCE`` and ``COST_NOTE``);
- the ``PricePlan`` catalog the pricing what-ifs compare with what was billed (``PRICE_PLANS``);
- the tenant's ``AnomalyRule``s (``ANOMALY_RULES``), and the alerts of the last ``ALERT_DAYS``
  complete days as the daily task raises and emails them (``AlertDelivery`` rows);
- the monthly revenue report of each closed month, emailed to the owners as the worker does after
  each month-end run (``ReportDelivery`` rows);
- the what-if of the last ``WHATIF_MONTHS`` closed months, computed as the worker would, so the
  staff page has figures on the first visit.

A tenant with a price plan already has its economics and is left alone.
"""

from datetime import timedelta
from decimal import Decimal

from customers.services import save_validated
from portal.demo.billing import billing_months
from portal.demo.common import DemoContext
from revenue.economics.anomalies import anomaly_alerts_email, detect_anomalies
from revenue.economics.whatif import whatif_run_compute
from revenue.models import AnomalyRule, CustomerCost, ModelPrice, PricePlan, WhatIfRun
from revenue.reports import monthly_report_send

ALERT_DAYS = 14
WHATIF_MONTHS = 3  # the page's default


def has_economics(tenant) -> bool:
    return PricePlan.objects.for_tenant(tenant).exists()


def build(ctx: DemoContext, module) -> dict[str, int]:
    """Give ``ctx.tenant`` its economics (see the module docstring). Returns what it made."""
    tenant = ctx.tenant
    made = {
        "model prices": 0, "customer costs": 0, "price plans": 0, "alert rules": 0, "alerts": 0, "alert emails": 0,
        "what-ifs": 0, "report emails": 0,
    }
    for spec in module.model_prices(ctx) if hasattr(module, "model_prices") else []:
        prices = {k: Decimal(v) for k, v in spec.items() if k.endswith("_per_million")}
        save_validated(ModelPrice(tenant=tenant, **{**spec, **prices}))
        made["model prices"] += 1
    if hasattr(module, "customer_costs"):
        for month in billing_months(ctx.today)[:-1]:
            for customer_id, amount in sorted(module.customer_costs(ctx, month.first, month.last).items()):
                save_validated(CustomerCost(tenant=tenant, customer_id=customer_id, month=month.first, amount=amount,
                                    source=module.COST_SOURCE, note=module.COST_NOTE))
                made["customer costs"] += 1
    for spec in module.PRICE_PLANS:
        save_validated(PricePlan(tenant=tenant, currency=ctx.currency, **{
            **spec, "base_fee": Decimal(spec["base_fee"]), "unit_price": Decimal(spec.get("unit_price", "0")),
        }))
        made["price plans"] += 1
    for spec in module.ANOMALY_RULES:
        save_validated(AnomalyRule(tenant=tenant, **{**spec, "threshold": Decimal(spec["threshold"])}))
        made["alert rules"] += 1
    for days_ago in range(ALERT_DAYS, 0, -1):
        made["alerts"] += detect_anomalies(tenant=tenant, day=ctx.today - timedelta(days=days_ago))["created"]
    made["alert emails"] = anomaly_alerts_email(tenant=tenant)["emails"]
    for month in billing_months(ctx.today)[:-1]:
        made["report emails"] += len(monthly_report_send(tenant=tenant, month=month.first))
    run = whatif_run_compute(run=WhatIfRun.objects.for_tenant(tenant).create(tenant=tenant, months=WHATIF_MONTHS))
    made["what-ifs"] = int(run.status == WhatIfRun.Status.DONE)
    return made

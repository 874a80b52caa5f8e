"""Customer economics: cost to serve, margins, profitability, ROI, churn risk, pricing what-ifs, anomalies.

A package of the ``revenue`` app, not an app of its own: same app label, its tables are
``revenue_*``, its models are in ``revenue.models.economics`` (``revenue.economics.models`` is the
old address, kept for migration 0005 and for callers).

What it reads from billing (never writes, except the benchmarks' and demo's usage events):
- ``AiUsageDay``, the AI-usage roll-up kept by billing's triggers (costs, anomalies; the
  benchmark calls ``billing.ai_usage.ai_usage_rebuild``);
- usage events only through the usage-event store: ``billing.metering.usage_totals`` and
  ``billing.metering.usage_store()`` (anomalies, churn risk, ROI, what-ifs; PostgreSQL or
  ClickHouse, docs/scaling.md), with ``BillableMetric``; the simulator feeds ``usage_ingest``;
- ``Invoice``, ``InvoiceLine``, ``CreditNote``, ``CreditRequest``, ``BillingSettings``,
  ``PriceTerms``, ``ChargeModel`` (revenue and margins, churn risk);
- ``billing.services.price_line`` / ``BILLED_CONTRACT_STATUSES``, ``billing.pricing`` and
  ``billing.selectors.metric_event_amounts``: the what-ifs re-price contracts as billing would.

What it reads from customers: ``Tenant`` (reporting currency, time zone), ``Customer``,
``Contract``, ``ContractLine``, ``BillingInterval``, ``Membership`` / ``Role`` (who gets anomaly
emails), the tenancy scopes and ``customers.admin_base`` for its admin.

Its hooks (none hidden: no signal receivers):
- admin: ``revenue.economics.admin``, imported by ``revenue.admin``;
- API: ``revenue.economics.api.url_patterns``, mounted by ``portal.urls``; staff pages in
  ``portal.views_economics``;
- Celery: ``revenue.tasks.detect_anomalies_all_tenants`` / ``detect_anomalies_for_tenant`` (daily,
  ``portal.schedule``) and ``revenue.tasks.whatif_compute(tenant_id, run_id)``;
- roles: what customers cost to serve (``CustomerCost``, ``ModelPrice``) is in finance's billing
  area, declared in ``revenue.roles``;
- commands: ``benchmark_ai_usage`` and the economics benchmarks.
"""

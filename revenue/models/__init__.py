"""Revenue's models, split by domain: the pipeline, metrics (exchange rates, targets, snapshots),
report deliveries, and customer economics (``revenue.economics``; same app, same tables)."""

from revenue.models.accounting import AccountPlan
from revenue.models.economics import (
    AlertDelivery,
    AnomalyAlert,
    AnomalyRule,
    CustomerCost,
    ModelPrice,
    PricePlan,
    WhatIfRun,
)
from revenue.models.facts import CustomerMrrFact, CustomerTrailingRevenueFact, RevenueFactsState, RevenueMonthFact
from revenue.models.metrics import ExchangeRate, MetricSnapshot, QuarterTarget
from revenue.models.pipeline import (
    BAND_RANGES,
    STALE_ABOVE_PROBABILITY,
    STALE_AFTER,
    Band,
    Opportunity,
    OpportunityQuerySet,
    band_for,
)
from revenue.models.reports import ReportDelivery

__all__ = [
    "AccountPlan",
    "BAND_RANGES",
    "STALE_ABOVE_PROBABILITY",
    "STALE_AFTER",
    "AlertDelivery",
    "AnomalyAlert",
    "AnomalyRule",
    "Band",
    "CustomerCost",
    "CustomerMrrFact",
    "CustomerTrailingRevenueFact",
    "ExchangeRate",
    "MetricSnapshot",
    "ModelPrice",
    "Opportunity",
    "OpportunityQuerySet",
    "PricePlan",
    "QuarterTarget",
    "ReportDelivery",
    "RevenueFactsState",
    "RevenueMonthFact",
    "WhatIfRun",
    "band_for",
]

"""Billing models, split by domain: metering (metrics and usage events) and invoicing."""

from billing.models.metering import BillableMetric, UsageEvent  # noqa: F401

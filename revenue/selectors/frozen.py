"""The monthly figures of closed months as frozen at month-end (MetricSnapshot), else live.

Every page, endpoint and email that shows a month's MRR, ARR, customers with MRR, ARPA, movements
or retention reads them through ``monthly_figures``, so a closed month shows the same number
everywhere even when contracts changed after it was frozen.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from customers.periods import last_closed_month, months_between
from revenue.models import MetricSnapshot
from revenue.selectors.common import Segment
from revenue.selectors.retention import retention_series


def snapshots_for(tenant, months, segment, closed) -> list[dict] | None:
    """The snapshot figures of every month when all of them are closed and frozen, else None."""
    if not months or months[-1] > closed:
        return None
    rows = {
        s.month: s.figures
        for s in MetricSnapshot.objects.for_tenant(tenant).filter(month__in=months, segment=str(segment or ""))
    }
    if len(rows) != len(months):
        return None
    return [{"month": month, **{k: (None if v is None else Decimal(v)) for k, v in rows[month].items()}} for month in months]


def monthly_figures(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None
) -> tuple[list[dict], str]:
    """``retention_series`` figures per month from ``first`` to ``last``, and their source:
    ``"snapshot"`` when every month is closed and frozen (counts then come back as Decimals), else
    ``"live"``."""
    frozen = snapshots_for(tenant, months_between(first, last), segment, last_closed_month(tenant))
    if frozen:
        return frozen, "snapshot"
    return retention_series(tenant=tenant, first=first, last=last, segment=segment), "live"

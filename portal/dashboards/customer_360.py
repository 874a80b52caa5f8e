"""The customer 360 page: everything staff know about one customer, each figure from the selector
that owns it (MRR and movements, churn risk, margins and ROI, the projected invoice); this module
only picks rows and labels them.

The number of queries does not grow with the customer's contracts, invoices or history: every list
is one query (contract lines and changes are prefetched), the long ones are cut at ``LATEST``.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _

from billing.models import CreditNote, Invoice, PaymentStatus
from billing.projection import invoice_project
from billing.selectors import customer_reminders, customer_usage
from customers.models import Contact, Contract, ContractChange, ContractLine, Customer
from customers.periods import month_end, month_start
from portal.dashboards.panels import MONEY, Column, Display, Panel, series
from portal.dashboards.revenue import MOVEMENT_STEPS, movement_series, movement_titles
from revenue.economics.churn_risk import RISK_THRESHOLD, churn_risk_scores
from revenue.economics.profitability import margins
from revenue.economics.roi import customer_roi, savings_customers
from revenue.models import Opportunity
from revenue.selectors.common import Segment
from revenue.selectors.movements import mrr_movements

LATEST = 24  # invoices, credit notes, payment reminders and audit records shown (the newest); the admin lists the rest


def mrr_panels(*, tenant, customer: Customer, first: date, last: date, show: Display) -> tuple[list[Panel], list[dict]]:
    """The customer's MRR at each month end from ``first`` to ``last`` with the month's movements
    (``revenue.selectors.movements.mrr_movements`` for this customer alone), as the revenue
    dashboard draws them: a trend chart, a stacked chart of the movements and one table."""
    rows = mrr_movements(tenant=tenant, first=first, last=last, segment=Segment.of_customer(customer.pk))
    labels = [show.month(r["month"]) for r in rows]
    titles = movement_titles()
    panel = Panel(
        "mrr",
        _("MRR history and movements"),
        [Column("month", _("Month"))] + [Column(k, t, MONEY) for k, t in zip(MOVEMENT_STEPS, titles, strict=True)],
        [[r["month"], *(r[k] for k in MOVEMENT_STEPS)] for r in rows],
        charts=[
            {
                "kind": "trend", "title": _("MRR at each month's end"), "labels": labels, "format": "money",
                "series": [{"label": _("MRR"), "values": series(r["mrr_end"] for r in rows), "color": "blue",
                            "fill": True}],
            },
            {
                "kind": "stacked", "title": _("Movements per month"), "labels": labels, "format": "money",
                "series": movement_series(rows),
            },
        ],
        note=_("MRR of this customer's active recurring and per-seat lines at each month's end, in the "
               "reporting currency; usage and one-time fees are not MRR."),
    )
    return [panel], rows


def contracts_of(*, tenant, customer: Customer, today: date) -> list[Contract]:
    """The customer's contracts, newest first, each with ``current_lines`` (the line versions in
    force today) and ``timeline`` (its ContractChange rows in date order, with who recorded them)."""
    current = ContractLine.objects.for_tenant(tenant).filter(starts_on__lte=today).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=today)
    ).select_related("price_terms")
    timeline = ContractChange.objects.for_tenant(tenant).select_related("created_by")
    return list(
        Contract.objects.for_tenant(tenant).filter(customer=customer).order_by("-start_date", "reference")
        .prefetch_related(Prefetch("lines", queryset=current, to_attr="current_lines"),
                          Prefetch("changes", queryset=timeline, to_attr="timeline"))
    )


def documents_of(*, tenant, customer: Customer, today: date) -> dict:
    """The newest ``LATEST`` invoices (drafts too, each with its amount due and payment status as of
    ``today``) and credit notes, and how many there are in all."""
    invoices = Invoice.objects.for_tenant(tenant).filter(customer=customer)
    notes = CreditNote.objects.for_tenant(tenant).filter(customer=customer)
    latest = list(invoices.with_payment_status(today=today).order_by("-period_start", "-id")[:LATEST])
    for invoice in latest:
        invoice.payment_status_label = PaymentStatus(invoice.payment_status).label
    return {
        "invoices": latest,
        "invoice_count": invoices.count(),
        "credit_notes": list(notes.select_related("invoice").order_by("-issue_date", "-id")[:LATEST]),
        "credit_note_count": notes.count(),
    }


def usage_of(*, tenant, customer: Customer, today: date) -> dict:
    """This calendar month's usage so far and the invoice it projects (``billing.projection``)."""
    start, end = month_start(today), month_end(today)
    return {
        "period_start": start, "period_end": end, "today": today,
        "metrics": customer_usage(tenant=tenant, customer_id=customer.pk, period_start=start, period_end=end),
        "projection": invoice_project(customer=customer, period_start=start, period_end=end),
    }


def churn_risk_of(*, tenant, customer: Customer, today: date) -> dict | None:
    """The customer's churn-risk score as of today with its signals, or None when it is not scored
    (no MRR at the last month end: nothing left to churn)."""
    score = churn_risk_scores(tenant=tenant, as_of=today, customer_ids=[customer.pk]).get(customer.pk)
    return None if score is None else score.as_dict(RISK_THRESHOLD)


def economics_of(*, tenant, customer: Customer, first: date, last: date) -> dict:
    """Revenue, cost to serve and margin over the window (``revenue.economics.profitability.margins``
    for this customer), per month and in total; the ROI when the customer is billed on savings."""
    computed = margins(tenant=tenant, first=first, last=last, customer_ids=[customer.pk])
    roi = None
    if savings_customers(tenant=tenant).filter(pk=customer.pk).exists():
        roi = customer_roi(tenant=tenant, customer=customer, first=first, last=last)
    return {"total": computed["total"], "by_month": computed["by_month"], "currency": computed["currency"], "roi": roi}


def audit_of(*, tenant, customer: Customer, contracts: list[Contract]) -> list[dict]:
    """The newest ``LATEST`` django-simple-history records of the customer, its contracts and their
    lines: when, who, what and which fields changed (against the object's previous record)."""
    contract_ids = [c.pk for c in contracts]
    sources = [
        (_("Customer"), Customer.history.filter(tenant=tenant, id=customer.pk)),
        (_("Contract"), Contract.history.filter(tenant=tenant, id__in=contract_ids)),
        (_("Contract line"), ContractLine.history.filter(tenant=tenant, contract_id__in=contract_ids)),
    ]
    entries = []
    for label, records in sources:
        previous = {}
        for record in records.select_related("history_user").order_by("history_date", "history_id"):
            before = previous.get(record.id)
            changed = [c.field for c in record.diff_against(before).changes] if before is not None else []
            previous[record.id] = record
            entries.append({"what": label, "record": record, "object": str(record.instance), "changed": changed})
    entries.sort(key=lambda e: (e["record"].history_date, e["record"].history_id), reverse=True)
    return entries[:LATEST]


def customer_360(*, tenant, customer: Customer, first: date, last: date, today: date, show: Display) -> dict:
    """Every section of the page (see the module docstring). Raises MissingExchangeRate or MetricError
    as the selectors do."""
    panels, mrr_rows = mrr_panels(tenant=tenant, customer=customer, first=first, last=last, show=show)
    contracts = contracts_of(tenant=tenant, customer=customer, today=today)
    return {
        "customer": customer,
        "window": (first, last),
        "today": today,
        "panels": panels,
        "mrr_now": mrr_rows[-1]["mrr_end"] if mrr_rows else None,
        "contracts": contracts,
        **documents_of(tenant=tenant, customer=customer, today=today),
        "reminders": customer_reminders(tenant=tenant, customer=customer, limit=LATEST),
        "usage": usage_of(tenant=tenant, customer=customer, today=today),
        "opportunities": list(
            Opportunity.objects.for_tenant(tenant).filter(customer=customer).open().select_related("owner")
            .order_by("expected_close_on", "title")
        ),
        "risk": churn_risk_of(tenant=tenant, customer=customer, today=today),
        "risk_threshold": RISK_THRESHOLD,
        "economics": economics_of(tenant=tenant, customer=customer, first=first, last=last),
        "contacts": list(Contact.objects.for_tenant(tenant).filter(customer=customer).order_by("name")),
        "audit": audit_of(tenant=tenant, customer=customer, contracts=contracts),
        "latest": LATEST,
    }

"""Usage and cost anomalies per customer, and the tenant's own threshold rules; alerts raised once.

Two measures per customer, in calendar days of the tenant's time zone:

- ``events``: how many usage events the customer sent;
- ``spend``: the AI spend of their calls, priced with the tenant's ``ModelPrice`` table as
  ``revenue.economics.costs`` prices them (reporting currency).

**Spikes and drops**: the day's figure against the trailing ``BASELINE_DAYS`` days before it (days
without usage count as 0): ``z = (observed − mean) / σ`` with σ the sample standard deviation,
floored at ``SIGMA_FLOOR`` × mean (so perfectly steady usage still needs a 30 % move). ``z ≥ 3``
with ``observed`` at least the minimum volume is a *spike*; ``z ≤ −3`` with a baseline mean at
least the minimum volume is a *drop*. On Sundays the same test runs on the week (Monday to Sunday)
against the ``BASELINE_WEEKS`` weeks before it. A customer without a baseline (mean 0) is skipped.

**Threshold rules** (``AnomalyRule``): a customer's metric quantity (``usage_totals``) or spend over
the day, or over the calendar week so far (so a weekly limit alerts the day it is passed, once
for the week), above the rule's threshold.

``AnomalyAlert`` is unique per (tenant, customer, kind, measure, period start, rule): detection
can run any number of times and raises each alert once; ``anomaly_alerts_email`` emails each alert
once, to the customer's account manager (the tenant's owners when there is none).
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.metering import usage_totals
from billing.metering import usage_store
from billing.models import AiUsageDay, WebhookEventType
from billing.outbox import outbox_send
from billing.services.webhooks import customer_data, webhook_event_emit, webhook_subscribed
from customers.models import Customer, Membership, Role, Tenant
from customers.tenancy import tenant_cursor
from revenue.models import AlertDelivery, AnomalyAlert, AnomalyRule, ModelPrice

ZERO = Decimal(0)
Z_LIMIT = Decimal(3)
SIGMA_FLOOR = Decimal("0.1")
BASELINE_DAYS = 28
BASELINE_WEEKS = 12
EVENTS, SPEND = "events", AnomalyRule.SPEND
MIN_DAILY_VOLUME = {EVENTS: Decimal(20), SPEND: Decimal("5.00")}
MILLION = Decimal(1_000_000)

_SPEND_BUCKETS = f"""
WITH grouped AS (
    SELECT customer_id, day, provider, model, SUM(input_tokens) AS tin, SUM(output_tokens) AS tout
    FROM {AiUsageDay._meta.db_table}
    WHERE tenant_id = %(tenant)s AND day >= %(first_day)s AND day <= %(last_day)s
    GROUP BY 1, 2, 3, 4
)
SELECT g.customer_id, (%(last_day)s::date - g.day) / %(size)s AS bucket,
       SUM(g.tin * p.input_price_per_million + g.tout * p.output_price_per_million) / {MILLION}
FROM grouped g
JOIN LATERAL (
    SELECT mp.input_price_per_million, mp.output_price_per_million FROM {ModelPrice._meta.db_table} mp
    WHERE mp.tenant_id = %(tenant)s AND mp.provider = g.provider AND mp.model = g.model AND mp.effective_on <= g.day
    ORDER BY mp.effective_on DESC LIMIT 1
) p ON true
GROUP BY 1, 2
"""


def _utc(tenant: Tenant, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(tenant.time_zone)).astimezone(dt_timezone.utc)


def _buckets(tenant: Tenant, measure: str, last_day: date, size: int, count: int) -> dict[int, dict[int, Decimal]]:
    """``{customer_id: {bucket: value}}``: bucket 0 is the ``size`` days ending ``last_day``, 1 the ones before…"""
    first_day = last_day - timedelta(days=size * count - 1)
    params = {"tenant": tenant.pk, "tz": tenant.time_zone, "first_day": first_day, "last_day": last_day, "size": size,
              "start": _utc(tenant, first_day), "end": _utc(tenant, last_day + timedelta(days=1))}
    result: dict[int, dict[int, Decimal]] = defaultdict(dict)
    if measure == EVENTS:
        # From the usage-event store: its bucket i (1 … count) is this function's count − i.
        bounds = [_utc(tenant, first_day + timedelta(days=size * k)) for k in range(count + 1)]
        for customer_id, buckets in usage_store().event_counts(tenant=tenant, bounds=bounds).items():
            for index, events in buckets.items():
                result[customer_id][count - index] = Decimal(events)
        return result
    with tenant_cursor(tenant) as cursor:
        cursor.execute(_SPEND_BUCKETS, params)
        for customer_id, bucket, value in cursor.fetchall():
            result[customer_id][bucket] = Decimal(value)
    return result


def _outliers(tenant: Tenant, measure: str, last_day: date, size: int, baseline: int) -> list[dict]:
    minimum = MIN_DAILY_VOLUME[measure] * size
    found = []
    for customer_id, values in _buckets(tenant, measure, last_day, size, baseline + 1).items():
        observed = values.get(0, ZERO)
        history = [values.get(b, ZERO) for b in range(1, baseline + 1)]
        mean = sum(history, ZERO) / baseline
        if mean <= 0:
            continue
        variance = sum(((v - mean) ** 2 for v in history), ZERO) / (baseline - 1)
        sigma = max(variance.sqrt(), SIGMA_FLOOR * mean)
        z = (observed - mean) / sigma
        if z >= Z_LIMIT and observed >= minimum:
            kind = AnomalyAlert.Kind.SPIKE
        elif z <= -Z_LIMIT and mean >= minimum:
            kind = AnomalyAlert.Kind.DROP
        else:
            continue
        found.append({"customer_id": customer_id, "kind": kind, "measure": measure, "observed": observed,
                      "baseline": mean, "stddev": sigma, "z_score": z.quantize(Decimal("0.01"))})
    return found


def _rule_breaches(tenant: Tenant, day: date) -> list[dict]:
    found = []
    rules = list(AnomalyRule.objects.for_tenant(tenant).filter(is_active=True))
    for window in AnomalyRule.Window.values:
        chosen = [r for r in rules if r.window == window]
        if not chosen:
            continue
        start = day if window == AnomalyRule.Window.DAY else day - timedelta(days=day.weekday())
        end = day if window == AnomalyRule.Window.DAY else start + timedelta(days=6)
        figures: dict[tuple[int, str], Decimal] = {}
        if any(r.metric != SPEND for r in chosen):
            figures.update(usage_totals(tenant=tenant, period_start=start, period_end=day))
        if any(r.metric == SPEND for r in chosen):
            for customer_id, values in _buckets(tenant, SPEND, day, (day - start).days + 1, 1).items():
                figures[(customer_id, SPEND)] = values.get(0, ZERO)
        for rule in chosen:
            for (customer_id, metric), observed in figures.items():
                if metric == rule.metric and observed > rule.threshold:
                    found.append({"customer_id": customer_id, "kind": AnomalyAlert.Kind.THRESHOLD, "rule": rule,
                                  "measure": rule.metric, "observed": observed, "baseline": rule.threshold,
                                  "period": (start, end)})
    return found


@transaction.atomic
def detect_anomalies(*, tenant: Tenant, day: date) -> dict:
    """Raise the alerts of ``day`` (a complete calendar day in the tenant's time zone), each once.

    Spikes and drops of events and spend on the day (and on the week ending on it when it is a
    Sunday) and threshold-rule breaches, as the module docstring defines them. Set-wise: a few
    queries for the whole tenant. Alerts already raised are left alone, so a rerun creates
    nothing. Returns ``{"created": n, "found": n}``.
    """
    found = []
    periods = [(day, day, 1, BASELINE_DAYS)]
    if day.weekday() == 6:
        periods.append((day - timedelta(days=6), day, 7, BASELINE_WEEKS))
    for start, end, size, baseline in periods:
        for measure in (EVENTS, SPEND):
            for row in _outliers(tenant, measure, end, size, baseline):
                found.append({**row, "period": (start, end)})
    found += _rule_breaches(tenant, day)

    existing = set(
        AnomalyAlert.objects.for_tenant(tenant)
        .filter(period_start__in={row["period"][0] for row in found})
        .values_list("customer_id", "kind", "measure", "period_start", "rule_id")
    )
    new = []
    for row in found:
        rule = row.get("rule")
        key = (row["customer_id"], row["kind"], row["measure"], row["period"][0], rule.pk if rule else None)
        if key in existing:
            continue
        existing.add(key)
        new.append(AnomalyAlert(
            tenant=tenant, customer_id=row["customer_id"], rule=rule, kind=row["kind"], measure=row["measure"],
            period_start=row["period"][0], period_end=row["period"][1], observed=row["observed"].quantize(Decimal("0.000001")),
            baseline=row["baseline"].quantize(Decimal("0.000001")),
            stddev=row["stddev"].quantize(Decimal("0.000001")) if row.get("stddev") is not None else None,
            z_score=row.get("z_score"),
        ))
    # A concurrent run may have raised the same alert since the read above: the constraint keeps one.
    AnomalyAlert.objects.for_tenant(tenant).bulk_create(new, ignore_conflicts=True)
    _announce(tenant, new)
    return {"found": len(found), "created": len(new)}


def _announce(tenant: Tenant, new: list[AnomalyAlert]) -> None:
    """Emit a ``usage.alert`` webhook per alert just raised, once per alert (its id is the dedupe key,
    so a concurrent run that raised the same alert does not announce it twice)."""
    if not new or not webhook_subscribed(tenant=tenant, type=WebhookEventType.USAGE_ALERT):
        return
    keys = {(a.customer_id, a.kind, a.measure, a.period_start, a.rule_id) for a in new}
    stored = (
        AnomalyAlert.objects.for_tenant(tenant)
        .filter(period_start__in={a.period_start for a in new}, customer_id__in={a.customer_id for a in new})
        .select_related("customer", "rule")
        .order_by("pk")
    )
    for alert in stored:
        if (alert.customer_id, alert.kind, alert.measure, alert.period_start, alert.rule_id) not in keys:
            continue
        webhook_event_emit(tenant=tenant, type=WebhookEventType.USAGE_ALERT, dedupe_key=f"usage.alert:{alert.pk}", payload={
            "id": alert.pk,
            "customer": customer_data(alert.customer),
            "kind": alert.kind,
            "measure": alert.measure,
            "period_start": alert.period_start.isoformat(),
            "period_end": alert.period_end.isoformat(),
            "observed": str(alert.observed),
            "baseline": str(alert.baseline),
            "z_score": str(alert.z_score) if alert.z_score is not None else None,
            "rule": {"id": alert.rule.pk, "name": alert.rule.name} if alert.rule else None,
        })


def _recipients(customer: Customer, owners: list[str]) -> list[str]:
    manager = customer.account_manager
    if manager is not None and manager.email:
        return [manager.email]
    return owners


def anomaly_alerts_email(*, tenant: Tenant) -> dict:
    """Email every alert of ``tenant`` that someone has not had yet: one message per recipient.

    Recipient: the customer's account manager, or the tenant's owners when the customer has none
    (or the manager has no address). Each (alert, recipient) is an ``AlertDelivery`` in the outbox
    (``billing.outbox``), so a second run, or two runs at once, send nothing twice, and a failed
    send is retried by the next run. An alert's ``emailed_at`` / ``emailed_to`` are set once all its
    recipients have it. Alerts nobody can receive stay unsent. Returns ``{"emails": n, "alerts": n}``
    (messages sent now, alerts that every recipient now has).
    """
    owners = sorted({
        email for email in Membership.objects.for_tenant(tenant).filter(role=Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True) if email
    })
    alerts = list(
        AnomalyAlert.objects.for_tenant(tenant).filter(emailed_at__isnull=True)
        .select_related("customer", "customer__account_manager", "rule")
        .order_by("customer__name", "period_start", "kind")
    )
    recipients_of = {alert.pk: _recipients(alert.customer, owners) for alert in alerts}
    by_pk = {alert.pk: alert for alert in alerts}
    rows = [
        AlertDelivery(tenant=tenant, alert=alert, recipient=address)
        for alert in alerts for address in recipients_of[alert.pk]
    ]
    emails = 0

    def compose(recipient: str, due: list[AlertDelivery]) -> EmailMessage:
        batch = [by_pk[row.alert_id] for row in due]
        body = render_to_string("portal/economics/anomaly_email.txt", {"tenant": tenant, "alerts": batch})
        return EmailMessage(f"{tenant.name}: {len(batch)} usage alert(s)", body, settings.DEFAULT_FROM_EMAIL, [recipient])

    def count(recipient: str, due: list[AlertDelivery]) -> None:
        nonlocal emails
        emails += 1

    deliveries = outbox_send(tenant=tenant, rows=rows, compose=compose, on_sent=count)
    pending = {row.alert_id for row in deliveries if row.status != AlertDelivery.Status.SENT}
    done = [by_pk[pk] for pk in recipients_of if recipients_of[pk] and pk not in pending]
    now = timezone.now()
    for alert in done:
        alert.emailed_at, alert.emailed_to = now, ", ".join(recipients_of[alert.pk])
    AnomalyAlert.objects.for_tenant(tenant).bulk_update(done, ["emailed_at", "emailed_to"])
    return {"emails": emails, "alerts": len(done)}


def recent_alerts(*, tenant: Tenant, since: date, limit: int = 200) -> list[dict]:
    """Alerts whose period starts on or after ``since``, newest first, for the page and the API."""
    rows = (
        AnomalyAlert.objects.for_tenant(tenant).filter(period_start__gte=since)
        .select_related("customer", "rule").order_by("-period_start", "customer__name", "kind")[:limit]
    )
    return [{
        "id": a.pk, "customer_id": a.customer_id, "customer": a.customer.name, "kind": a.kind, "measure": a.measure,
        "rule": a.rule.name if a.rule else None, "period_start": a.period_start, "period_end": a.period_end,
        "observed": a.observed, "baseline": a.baseline, "stddev": a.stddev, "z_score": a.z_score,
        "emailed_at": a.emailed_at, "emailed_to": a.emailed_to,
    } for a in rows]

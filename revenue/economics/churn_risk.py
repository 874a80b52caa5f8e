"""Churn risk per customer from explainable signals, and its back-test against real churn.

Who is scored: customers with MRR at the last month end on or before ``as_of`` (the *reference
month*, ``revenue.selectors.mrr``): a customer without MRR has nothing left to churn. Each signal
has a weight; its *severity* (0..1) times the weight, rounded to 0.1 (ROUND_HALF_UP), gives its
points; the score is the sum of the points, 0..100. Days are calendar days in the tenant's time
zone; "last 30 days" ends with ``as_of`` itself.

============== ====== ==========================================================================
signal         weight severity
============== ====== ==========================================================================
usage_trend    25     usage events a day over the last 30 days against the daily average of the
                      last 90 days: a fall of 50 % or more is 1, no fall 0, linear between. The
                      90 days are counted from the start of the customer's current run of
                      contracts (its last start after a gap of a day or more) or from the
                      start of the tenant's usage history (the first day of the month of its first
                      usage event) when either is later; with less than 31 such days, or no usage
                      in them, there is no trend to read and the severity is 0
savings_trend  15     the same on verified savings (customers billed on savings only)
contraction    20     MRR lost to contraction over the three months up to the reference month,
                      as a share of the first positive MRR among those four month ends: 50 % or
                      more is 1, linear below
overdue        20     finalized invoices unpaid on ``as_of`` whose due date is before it (paid
                      later counts as unpaid then): one is 0.5, two or more 1
tenure         10     less than 6 whole months since the customer's first contract started: 1
open_credits   10     credit requests awaiting a decision on ``as_of``: 1
============== ====== ==========================================================================

A customer scoring ``RISK_THRESHOLD`` or more is *at risk*. Everything is read set-wise: one query
per signal for the whole tenant, whatever the number of customers, and for all the days scored at
once (the back-test scores fourteen month ends with the same ten queries as one day).
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Min, Q

from billing.models import CreditRequest, Invoice
from billing.metering import usage_store
from customers.models import Contract, Customer, Tenant
from customers.periods import add_months, last_closed_month, month_end, month_start
from revenue.economics.roi import savings_metrics
from revenue.selectors.common import MetricError
from revenue.selectors.mrr import customer_mrr_range

ZERO, ONE = Decimal(0), Decimal(1)
TENTH = Decimal("0.1")
RISK_THRESHOLD = Decimal(30)  # two signals in full (e.g. usage halved and an overdue invoice): see the back-test
WEIGHTS = {
    "usage_trend": Decimal(25),
    "savings_trend": Decimal(15),
    "contraction": Decimal(20),
    "overdue": Decimal(20),
    "tenure": Decimal(10),
    "open_credits": Decimal(10),
}
LABELS = {
    "usage_trend": "Usage trend (30 vs 90 days)",
    "savings_trend": "Savings trend (30 vs 90 days)",
    "contraction": "MRR contraction (3 months)",
    "overdue": "Overdue invoices",
    "tenure": "Tenure under 6 months",
    "open_credits": "Open credit requests",
}
FULL_FALL = Decimal("0.5")  # a trend that fell by half, or MRR that contracted by half, scores in full
SHORT_TENURE_MONTHS = 6
MAX_VALIDATION_MONTHS = 24


@dataclass
class Signal:
    code: str
    raw: dict
    severity: Decimal
    explanation: str
    points: Decimal = ZERO

    def as_dict(self) -> dict:
        return {"code": self.code, "label": LABELS[self.code], "weight": WEIGHTS[self.code], "points": self.points,
                "raw": self.raw, "explanation": self.explanation}


@dataclass
class RiskScore:
    customer_id: int
    customer: str
    reference: str
    tier: str
    account_manager: str
    mrr: Decimal
    signals: list[Signal] = field(default_factory=list)

    @property
    def score(self) -> Decimal:
        return sum((s.points for s in self.signals), ZERO)

    def as_dict(self, threshold: Decimal = RISK_THRESHOLD) -> dict:
        return {
            "customer_id": self.customer_id, "customer": self.customer, "reference": self.reference, "tier": self.tier,
            "account_manager": self.account_manager, "mrr": self.mrr, "score": self.score,
            "at_risk": self.score >= threshold, "signals": [s.as_dict() for s in self.signals],
        }


def _points(code: str, severity: Decimal) -> Decimal:
    severity = min(ONE, max(ZERO, severity))
    return (WEIGHTS[code] * severity).quantize(TENTH, rounding=ROUND_HALF_UP)


def _utc(tenant: Tenant, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(tenant.time_zone)).astimezone(dt_timezone.utc)


def reference_month(as_of: date) -> date:
    """The month whose last day is the last month end on or before ``as_of``."""
    return month_start(as_of) if as_of == month_end(as_of) else add_months(month_start(as_of), -1)


def _trend(last30: Decimal, last90: Decimal, days: int, what: str, unit: str) -> tuple[dict, Decimal, str]:
    """``days``: how many of the 90 days count as history (see the module docstring)."""
    raw = {"last_30_days": last30, "last_90_days": last90, "history_days": days, "ratio": None}
    if days <= 30:
        return raw, ZERO, f"{days} day(s) of history: too short for a trend."
    if last90 <= 0:
        return raw, ZERO, f"No {what} in {days} days."
    ratio = (last30 / 30) / (last90 / days)
    fall = ONE - ratio
    severity = fall / FULL_FALL if fall > 0 else ZERO
    text = (f"{last30 / 30:.1f} {unit} a day over 30 days against {last90 / days:.1f} over {days} days "
            f"({ratio - 1:+.0%}).")
    return {**raw, "ratio": ratio}, severity, text


def usage_history_start(tenant: Tenant) -> date | None:
    """The first day of the month of the tenant's first usage event (its local calendar), or None.

    From the usage-event store (on PostgreSQL the tenant's metric codes, then the first entry of each
    in the table's key (tenant, metric code, timestamp, …): not a read of every event)."""
    first = usage_store().first_event_at(tenant=tenant)
    return month_start(first.astimezone(zoneinfo.ZoneInfo(tenant.time_zone)).date()) if first else None


_UNSET = object()


def churn_risk_scores(
    *, tenant: Tenant, as_of: date, history_start=_UNSET, customer_ids: list[int] | None = None
) -> dict[int, RiskScore]:
    """Every customer with MRR at the reference month's end, scored as of ``as_of`` (see module docstring).

    Returns ``{customer_id: RiskScore}``; each score lists all six signals with their raw figures,
    points and a one-line explanation. ``history_start`` is ``usage_history_start(tenant)``, read
    when not given. ``customer_ids`` scores only those customers (None: all); the others are absent
    as if they had no MRR. Raises MissingExchangeRate when MRR cannot be converted.
    """
    return churn_risk_scores_on(tenant=tenant, days=[as_of], history_start=history_start, customer_ids=customer_ids)[as_of]


def churn_risk_scores_on(
    *, tenant: Tenant, days: list[date], history_start=_UNSET, customer_ids: list[int] | None = None
) -> dict[date, dict[int, RiskScore]]:
    """``churn_risk_scores`` as of each of ``days`` at once: ``{as_of: {customer_id: RiskScore}}``.

    Set-wise over all the days together: about ten queries however many days and customers (each
    signal's rows are read once for the whole span, then each day takes its own from them).
    ``customer_ids`` limits the scoring to those customers (None: all).
    """
    days = sorted(set(days))
    refs = {as_of: reference_month(as_of) for as_of in days}
    mrr_by_month = customer_mrr_range(tenant=tenant, first=add_months(min(refs.values()), -3), last=max(refs.values()))
    wanted = None if customer_ids is None else set(customer_ids)
    active = {
        as_of: {cid: mrr for cid, mrr in mrr_by_month[ref].items() if wanted is None or cid in wanted}
        for as_of, ref in refs.items()
    }
    ids = sorted(set().union(*active.values()))
    if not ids:
        return {as_of: {} for as_of in days}
    customers = {
        c.pk: c for c in Customer.objects.for_tenant(tenant).filter(pk__in=ids).select_related("account_manager")
        .only("id", "name", "external_ref", "tier", "account_manager__username", "account_manager__first_name",
              "account_manager__last_name")
    }
    last_day = max(days)
    windows = {as_of: (_utc(tenant, as_of - timedelta(days=29)), _utc(tenant, as_of - timedelta(days=89)),
                       _utc(tenant, as_of + timedelta(days=1))) for as_of in days}
    bounds = sorted(set().union(*windows.values()))
    position = {instant: i for i, instant in enumerate(bounds)}
    params = {"tenant": tenant.pk, "bounds": bounds, "start": bounds[0], "end": bounds[-1], "customers": ids}
    usage: dict[int, _Buckets] = defaultdict(lambda: _Buckets(len(bounds)))
    savings: dict[int, _Buckets] = defaultdict(lambda: _Buckets(len(bounds)))
    for customer_id, buckets in usage_store().event_counts(tenant=tenant, bounds=bounds, customer_ids=ids).items():
        for bucket, n in buckets.items():
            usage[customer_id].add(bucket, Decimal(n))
    codes = sorted(set(savings_metrics(tenant=tenant).values()))
    if codes:
        found = usage_store().savings_buckets(tenant=tenant, metric_codes=codes, bounds=bounds, customer_ids=ids)
        for (customer_id, _code, bucket), (_baseline, _optimized, saved, _events) in sorted(found.items()):
            savings[customer_id].add(bucket, saved)
    savers = set(
        Customer.objects.for_tenant(tenant).filter(
            pk__in=ids, contracts__lines__price_terms__charge_model="percentage"
        ).values_list("pk", flat=True)
    )
    invoices = list(
        Invoice.objects.for_tenant(tenant)
        .filter(customer_id__in=ids, status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID],
                issue_date__lte=last_day, due_date__lt=last_day)
        .order_by("customer_id", "currency", "due_date")
        .values_list("customer_id", "currency", "issue_date", "due_date", "paid_at", "amount_due")
    )
    started = dict(
        Contract.objects.for_tenant(tenant).filter(customer_id__in=ids).exclude(status=Contract.Status.DRAFT)
        .values_list("customer_id").annotate(first=Min("start_date"))
    )
    requests = list(
        CreditRequest.objects.for_tenant(tenant)
        .filter(customer_id__in=ids, created_at__lt=params["end"])
        .filter(Q(status=CreditRequest.Status.REQUESTED, decided_at__isnull=True) | Q(decided_at__isnull=False))
        .values_list("customer_id", "created_at", "decided_at")
    )
    contracts = list(
        Contract.objects.for_tenant(tenant).filter(customer_id__in=ids, start_date__lte=last_day)
        .exclude(status=Contract.Status.DRAFT).order_by("customer_id", "start_date")
        .values_list("customer_id", "start_date", "end_date")
    )
    if history_start is _UNSET:
        history_start = usage_history_start(tenant)

    result = {}
    for as_of in days:
        ref = refs[as_of]
        start30, start90, end = (position[instant] for instant in windows[as_of])
        overdue = _overdue(invoices, as_of, bounds[end])
        open_requests: dict[int, int] = {}
        for customer_id, created_at, decided_at in requests:
            if created_at < bounds[end] and (decided_at is None or decided_at >= bounds[end]):
                open_requests[customer_id] = open_requests.get(customer_id, 0) + 1
        stints = _stint_starts([row for row in contracts if row[1] <= as_of])
        months = [add_months(ref, -3 + i) for i in range(4)]
        window_start = as_of - timedelta(days=89)
        scores = {}
        for customer_id in sorted(active[as_of]):
            customer = customers[customer_id]
            manager = customer.account_manager
            score = RiskScore(
                customer_id=customer_id, customer=customer.name, reference=customer.external_ref, tier=customer.tier,
                account_manager=(manager.get_full_name() or manager.username) if manager else "",
                mrr=active[as_of][customer_id],
            )
            since = max(d for d in (window_start, stints.get(customer_id), history_start) if d is not None)
            days_of_history = max(0, (as_of - since).days + 1)
            last30, last90 = _window_sums(usage.get(customer_id), start30, start90, end)
            score.signals.append(Signal("usage_trend", *_trend(last30, last90, days_of_history, "usage", "events")))
            if customer_id in savers:
                saved30, saved90 = _window_sums(savings.get(customer_id), start30, start90, end)
                score.signals.append(
                    Signal("savings_trend", *_trend(saved30, saved90, days_of_history, "verified savings", "saved"))
                )
            else:
                score.signals.append(Signal("savings_trend", {"billed_on_savings": False}, ZERO, "Not billed on savings."))
            score.signals.append(_contraction([mrr_by_month[m].get(customer_id, ZERO) for m in months], months))
            score.signals.append(overdue.get(customer_id) or Signal("overdue", {"invoices": 0}, ZERO, "Nothing overdue."))
            score.signals.append(_tenure(started.get(customer_id), as_of))
            n_requests = open_requests.get(customer_id, 0)
            score.signals.append(Signal(
                "open_credits", {"requests": n_requests}, ONE if n_requests else ZERO,
                f"{n_requests} credit request(s) awaiting a decision." if n_requests else "No open credit request.",
            ))
            for signal in score.signals:
                signal.points = _points(signal.code, signal.severity)
            scores[customer_id] = score
        result[as_of] = scores
    return result


class _Buckets:
    """One customer's figures per bucket between consecutive bounds, summed over any run of buckets."""

    def __init__(self, n_bounds: int):
        self.sums = [ZERO] * (n_bounds + 1)
        self.running: list[Decimal] | None = None

    def add(self, bucket: int, value: Decimal) -> None:
        self.sums[bucket] += value

    def total(self, first: int, end: int) -> Decimal:
        """The sum from bounds[first] up to (not including) bounds[end]: buckets first+1 .. end."""
        if self.running is None:
            self.running = [ZERO]
            for value in self.sums[1:]:
                self.running.append(self.running[-1] + value)
        return self.running[end] - self.running[first]


def _window_sums(buckets: _Buckets | None, start30: int, start90: int, end: int) -> tuple[Decimal, Decimal]:
    """(the last 30 days' sum, the last 90 days' sum) of a customer's figures; bound positions."""
    if buckets is None:
        return ZERO, ZERO
    return buckets.total(start30, end), buckets.total(start90, end)


def _stint_starts(rows: list[tuple[int, date, date | None]]) -> dict[int, date]:
    """Each customer's current run of contracts: the start of the last stretch without a gap of a
    day or more between contracts. ``rows``: (customer id, start, end) of the contracts started on
    or before the day scored, by customer and start."""
    starts: dict[int, date] = {}
    covered: dict[int, date | None] = {}  # the last day covered so far (None: open-ended)
    for customer_id, start, end in rows:
        if customer_id not in starts:
            starts[customer_id] = start
        elif covered[customer_id] is not None and start > covered[customer_id] + timedelta(days=1):
            starts[customer_id] = start
        last = covered.get(customer_id, start)
        covered[customer_id] = None if end is None or last is None else max(last, end)
    return starts


def _contraction(mrr: list[Decimal], months: list[date]) -> Signal:
    lost = sum((mrr[i - 1] - mrr[i] for i in range(1, len(mrr)) if mrr[i - 1] > mrr[i] > 0), ZERO)
    base = next((m for m in mrr if m > 0), ZERO)
    share = lost / base if base else ZERO
    raw = {"months": [m.isoformat()[:7] for m in months], "mrr": mrr, "contraction": lost, "share": share}
    if not lost:
        return Signal("contraction", raw, ZERO, "No contraction in three months.")
    return Signal("contraction", raw, share / FULL_FALL, f"Lost {lost:.2f} of {base:.2f} MRR to contraction ({share:.0%}).")


def _overdue(invoices: list[tuple], as_of: date, end: datetime) -> dict[int, Signal]:
    """Each customer's overdue signal as of ``as_of`` (``end``: the next local midnight, in UTC) from
    its finalized or paid invoices (customer, currency, issue date, due date, paid at, amount due; by
    customer and currency): issued on or before ``as_of``, due before it, unpaid at ``end``."""
    groups: dict[tuple[int, str], list] = {}
    for customer_id, currency, issued, due, paid_at, amount in invoices:
        if issued <= as_of and due < as_of and (paid_at is None or paid_at >= end):
            groups.setdefault((customer_id, currency), []).append((due, amount))
    signals = {}
    for (customer_id, currency), rows in groups.items():
        n, amount, oldest = len(rows), sum((a for _, a in rows[1:]), rows[0][1]), min(d for d, _ in rows)
        days = (as_of - oldest).days
        signals[customer_id] = Signal(
            "overdue", {"invoices": n, "amount_due": amount, "currency": currency, "oldest_days_overdue": days},
            Decimal(n) / 2, f"{n} invoice(s) overdue, {amount:.2f} {currency}, the oldest by {days} days.",
        )
    return signals


def _tenure(first_start: date | None, as_of: date) -> Signal:
    if first_start is None:
        return Signal("tenure", {"months": None}, ZERO, "No contract start on record.")
    months = (as_of.year - first_start.year) * 12 + as_of.month - first_start.month - (as_of.day < first_start.day)
    raw = {"since": first_start, "months": months}
    if months < SHORT_TENURE_MONTHS:
        return Signal("tenure", raw, ONE, f"A customer for {months} month(s) only.")
    return Signal("tenure", raw, ZERO, f"A customer for {months} months.")


def at_risk_customers(
    *, tenant: Tenant, as_of: date, limit: int | None = 20, threshold: Decimal = RISK_THRESHOLD
) -> list[dict]:
    """The customers scoring ``threshold`` or more as of ``as_of``, highest score first (then name).

    Each a dict as ``RiskScore.as_dict``: customer, tier, account manager, MRR, score and the
    signals with their raw figures and points. At most ``limit`` rows (None: all). For the
    monthly report and the staff page.
    """
    return _at_risk(churn_risk_scores(tenant=tenant, as_of=as_of), limit, threshold)


def _at_risk(scores: dict[int, RiskScore], limit: int | None, threshold: Decimal) -> list[dict]:
    above = sorted((s for s in scores.values() if s.score >= threshold), key=lambda s: (-s.score, s.customer))
    return [s.as_dict(threshold) for s in (above if limit is None else above[:limit])]


def churn_risk_overview(
    *, tenant: Tenant, as_of: date, months: int = 12, limit: int | None = 20, threshold: Decimal = RISK_THRESHOLD
) -> dict:
    """``{"customers": at_risk_customers(as_of), "validation": validate_churn_risk(months)}`` with
    the same figures, from one scoring of ``as_of`` and the back-test's month ends together (the
    staff page shows both). Raises MetricError for a bad ``months``."""
    validation, scored = _validation(tenant=tenant, months=months, threshold=threshold, last=None, also_on=as_of)
    return {"customers": _at_risk(scored[as_of], limit, threshold), "validation": validation}


def _share(above: int, scored: int, total: Decimal) -> dict:
    return {"scored": scored, "above": above, "share": Decimal(above) / scored if scored else None,
            "mean_score": total / scored if scored else None}


AUC_PLACES = Decimal("0.001")


def _auc(positives: list[Decimal], negatives: list[Decimal]) -> Decimal | None:
    """The area under the ROC curve: the share of (churner, stayer) pairs in which the churner
    scored higher, a tie counting half (Mann–Whitney U over rank sums, so n log n). 0.5 is a coin
    toss, 1 a perfect ranking. None when either side is empty. Rounded to 0.001, half up."""
    if not positives or not negatives:
        return None
    ranked = sorted([(s, True) for s in positives] + [(s, False) for s in negatives], key=lambda pair: pair[0])
    rank_sum, index = Decimal(0), 0
    while index < len(ranked):
        end = index
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[index][0]:
            end += 1
        mean_rank = Decimal(index + end + 2) / 2  # ranks are 1-based; ties share their mean rank
        rank_sum += mean_rank * sum(1 for _, positive in ranked[index:end + 1] if positive)
        index = end + 1
    n1, n2 = len(positives), len(negatives)
    u = rank_sum - Decimal(n1 * (n1 + 1)) / 2
    return (u / (n1 * n2)).quantize(AUC_PLACES, rounding=ROUND_HALF_UP)


def validate_churn_risk(
    *, tenant: Tenant, months: int = 12, threshold: Decimal = RISK_THRESHOLD, last: date | None = None
) -> dict:
    """Back-test: would the score have flagged the customers who churned in the last ``months``?

    A churn is an MRR movement *churn*: MRR at the end of month M−1, none at the end of M. Every
    customer with MRR is scored as of the last day of each month before; a churner of month M is
    judged by their score as of the end of M−1 (one month before) and M−2 (two months before),
    everyone who did not churn in the two months after a month end is a non-churner sample of it.
    Returns per group the samples scored, those at or above ``threshold``, their share and the
    mean score; ``lift`` (the one-month share over
    the non-churner share, None when no stayer reached the threshold); ``auc_one_month`` and
    ``auc_two_months``, the chance that a churner scored higher than a stayer (``_auc``), which needs
    no threshold; ``usage_history_from`` (``usage_history_start``: before it plus 30 days no usage
    trend can be read); and the churners with their two scores. Raises MetricError for a bad
    ``months``.
    """
    return _validation(tenant=tenant, months=months, threshold=threshold, last=last, also_on=None)[0]


def _validation(
    *, tenant: Tenant, months: int, threshold: Decimal, last: date | None, also_on: date | None
) -> tuple[dict, dict[date, dict[int, RiskScore]]]:
    """``validate_churn_risk``'s figures, and the scores of each day scored (``also_on`` too, when given)."""
    if not 1 <= months <= MAX_VALIDATION_MONTHS:
        raise MetricError(f"months must be from 1 to {MAX_VALIDATION_MONTHS}.")
    last = month_start(last) if last else last_closed_month(tenant)
    first = add_months(last, -(months - 1))
    mrr = customer_mrr_range(tenant=tenant, first=add_months(first, -2), last=last)
    churned_in: dict[date, set[int]] = {}
    for index in range(months):
        month = add_months(first, index)
        churned_in[month] = set(mrr[add_months(month, -1)]) - set(mrr[month])
    counts = {key: [0, 0, ZERO] for key in ("one", "two", "none")}
    samples: dict[str, list[Decimal]] = {"one": [], "two": [], "none": []}
    churners: dict[tuple[int, date], dict] = {}
    history_start = usage_history_start(tenant)
    month_ends = [month_end(add_months(first, index)) for index in range(-2, months - 1)]
    extra = [also_on] if also_on is not None else []
    scored = churn_risk_scores_on(tenant=tenant, days=month_ends + extra, history_start=history_start)
    for index in range(-2, months - 1):
        month = add_months(first, index)
        scores = scored[month_end(month)]
        next1, next2 = churned_in.get(add_months(month, 1)), churned_in.get(add_months(month, 2))
        for customer_id, score in scores.items():
            above = score.score >= threshold
            if next1 is not None and customer_id in next1:
                key, churn_month = "one", add_months(month, 1)
            elif next2 is not None and customer_id in next2:
                key, churn_month = "two", add_months(month, 2)
            elif next1 is not None and next2 is not None:
                key, churn_month = "none", None
            else:
                continue  # the two months after are not both inside the window: not known to stay
            counts[key][0] += above
            counts[key][1] += 1
            counts[key][2] += score.score
            samples[key].append(score.score)
            if churn_month is not None:
                row = churners.setdefault((customer_id, churn_month), {
                    "customer_id": customer_id, "customer": score.customer, "churned_in": churn_month,
                    "score_one_month_before": None, "score_two_months_before": None,
                })
                row["score_one_month_before" if key == "one" else "score_two_months_before"] = score.score
    one, two, none = (_share(*counts[k]) for k in ("one", "two", "none"))
    lift = one["share"] / none["share"] if one["share"] is not None and none["share"] else None
    validation = {
        "threshold": threshold, "from": first, "to": last,
        "churns": sum(len(v) for v in churned_in.values()),
        "one_month_before": one, "two_months_before": two, "non_churners": none, "lift": lift,
        "auc_one_month": _auc(samples["one"], samples["none"]), "auc_two_months": _auc(samples["two"], samples["none"]),
        "usage_history_from": history_start,
        "churners": sorted(churners.values(), key=lambda r: (r["churned_in"], r["customer"])),
    }
    return validation, scored

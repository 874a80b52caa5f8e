"""Scheduled reports by email: the monthly revenue report to executives, the weekly pipeline digest.

- Monthly report (``monthly_report_send``): for one closed month, to the tenant's owners (the
  executives: Membership role ``owner``, active users with an email address). Headline figures and
  MRR movements, the largest changes by customer, concentration, pipeline coverage and at-risk
  signals; HTML and plain-text bodies with the same report as a PDF attachment, in the tenant's
  language (``Tenant.locale``). The PDF is rendered once per run with WeasyPrint; it fetches nothing
  but the tenant's own logo (``billing.documents``' fetcher refuses every other URL).
- Weekly digest (``weekly_digest_send``): to each member who keeps the pipeline (owners and account
  managers) and owns open opportunities above 60 %: those opportunities, and which of them are
  stale (untouched for 7 days). A member with nothing to list gets no email.

Each (tenant, kind, period, recipient) has one ``ReportDelivery`` row, so a job that runs twice sends
once; a recipient whose send failed is retried by the next run. Figures come from
``revenue.selectors``; amounts are formatted (rounded half up) here for display only.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from email.utils import formataddr

from babel.dates import format_date
from babel.numbers import format_decimal
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing import formatting
from billing.documents import LOGO_URL, html_to_pdf, tenant_has_logo
from billing.outbox import outbox_send
from customers.models import Customer, Membership, Role, Tenant
from customers.periods import add_months, last_closed_month, month_start, tenant_today
from customers.roles import EDITABLE_AREAS, PIPELINE
from customers.tenancy import tenant_scope
from revenue.models import Opportunity, ReportDelivery
from revenue.figures import FIGURES, figure_definitions, trailing_window
from revenue.selectors.concentration import revenue_concentration
from revenue.selectors.frozen import monthly_figures
from revenue.selectors.mrr import arr_from_mrr, customer_mrr_range
from revenue.selectors.pipeline import pipeline_summary

logger = logging.getLogger(__name__)

TOP_CHANGES = 5
DIGEST_ABOVE_PROBABILITY = 60


class _Format:
    """Money, percent and dates in the tenant's language and reporting currency."""

    def __init__(self, tenant: Tenant):
        self.language = tenant.locale if tenant.locale in formatting.LOCALES else formatting.DEFAULT_LANGUAGE
        self.locale = formatting.locale_for(self.language)
        self.currency = tenant.reporting_currency

    def money(self, amount, currency: str | None = None) -> str:
        return "—" if amount is None else formatting.format_money(amount, currency or self.currency, self.language)

    def signed(self, amount) -> str:
        return ("+" if amount > 0 else "−" if amount < 0 else "") + self.money(abs(amount))

    def percent(self, ratio) -> str:
        if ratio is None:
            return "—"
        number = format_decimal((ratio * 100).quantize(Decimal("0.1"), ROUND_HALF_UP), format="#,##0.0", locale=self.locale)
        return f"{number}\u00a0%" if self.language == "sv" else f"{number}%"

    def multiple(self, value) -> str:
        if value is None:
            return "—"
        return format_decimal(value.quantize(Decimal("0.01"), ROUND_HALF_UP), format="#,##0.00", locale=self.locale) + "×"

    def month(self, month: date) -> str:
        return format_date(month, "LLLL yyyy", locale=self.locale)

    def day(self, day: date | None) -> str:
        return formatting.format_day(day, self.language)

    def short_month(self, month: date) -> str:
        return format_date(month, "MMM yyyy", locale=self.locale)


def coverage_reason(coverage: dict) -> str:
    """Why a quarter has no coverage figure, in the active language (the selector says it in English)."""
    if coverage["coverage"] is not None:
        return ""
    if coverage["target"] is None:
        return _("No target is set for %(quarter)s.") % {"quarter": coverage["quarter"]}
    return _("The %(quarter)s target is already met by won deals.") % {"quarter": coverage["quarter"]}


# --- monthly report ----------------------------------------------------------------------------


def executive_emails(*, tenant: Tenant) -> list[str]:
    """The tenant's owners' addresses (active users with an email), each once, sorted."""
    emails = Membership.objects.for_tenant(tenant).filter(
        role=Role.OWNER, user__is_active=True
    ).exclude(user__email="").values_list("user__email", flat=True)
    seen: dict[str, str] = {}
    for email in emails:
        seen.setdefault(email.strip().lower(), email.strip())
    return sorted(seen.values(), key=str.lower)


def monthly_report_context(*, tenant: Tenant, month: date) -> dict:
    """Everything the monthly report shows for ``month`` (a closed month), formatted in the tenant's language,
    with the shared figures unformatted under ``figures`` (MRR, ARR, customers with MRR, ARPA,
    contracted revenue of the twelve months and its customers; ``revenue.figures`` names them).
    The monthly figures are the frozen ones when the months are frozen, as on the dashboards.

    Raises MissingExchangeRate.
    """
    month = month_start(month)
    fmt = _Format(tenant)
    with translation.override(fmt.language):
        series, _source = monthly_figures(tenant=tenant, first=add_months(month, -11), last=month)
        figures = series[-1]
        by_customer = customer_mrr_range(tenant=tenant, first=add_months(month, -1), last=month)
        before, after = by_customer[add_months(month, -1)], by_customer[month]
        changes = sorted(
            ((pk, after.get(pk, Decimal(0)) - before.get(pk, Decimal(0))) for pk in set(before) | set(after)),
            key=lambda item: (-abs(item[1]), item[0]),
        )
        changes = [(pk, delta) for pk, delta in changes if delta][:TOP_CHANGES]
        concentration = revenue_concentration(tenant=tenant, month=month)
        pipeline = pipeline_summary(tenant=tenant)
        named = {pk for pk, _delta in changes} | {f["customer_id"] for f in concentration["flagged"]}
        names = dict(Customer.objects.for_tenant(tenant).filter(pk__in=named).values_list("pk", "name"))

        def change_kind(pk):
            if not before.get(pk):
                return _("new or returning")
            if not after.get(pk):
                return _("churned")
            return _("expansion") if after[pk] > before[pk] else _("contraction")

        coverage = pipeline["coverage"]
        risks = [
            _("%(customer)s is %(share)s of revenue over twelve months.")
            % {"customer": names.get(f["customer_id"], ""), "share": fmt.percent(f["share"])}
            for f in concentration["flagged"]
        ]
        if figures["churned_customers"]:
            risks.append(_("%(count)s customer(s) churned, taking %(amount)s of MRR.")
                         % {"count": figures["churned_customers"], "amount": fmt.money(figures["churn"])})
        if coverage["coverage"] is not None and coverage["coverage"] < 1:
            risks.append(_("Open pipeline covers only %(coverage)s of what is left of the %(quarter)s target.")
                         % {"coverage": fmt.percent(coverage["coverage"]), "quarter": coverage["quarter"]})
        if pipeline["stale"]:
            risks.append(_("%(count)s opportunities above 60 %% have not been touched for a week.")
                         % {"count": len(pipeline["stale"])})
        movements = [
            (_("New"), fmt.signed(figures["new"])),
            (_("Reactivation"), fmt.signed(figures["reactivation"])),
            (_("Expansion"), fmt.signed(figures["expansion"])),
            (_("Contraction"), fmt.signed(-figures["contraction"])),
            (_("Churn"), fmt.signed(-figures["churn"])),
        ]
        return {
            "tenant": tenant,
            "language": fmt.language,
            "month_name": fmt.month(month),
            "period": f"{month:%Y-%m}",
            "headline": [
                (_("MRR"), fmt.money(figures["mrr_end"]), fmt.signed(figures["mrr_end"] - figures["mrr_start"])),
                (_("ARR"), fmt.money(arr_from_mrr(figures["mrr_end"])), ""),
                (FIGURES["customers_with_mrr"].name, str(figures["customers_end"]),
                 _("%(new)s new, %(churned)s churned") % {"new": figures["new_customers"] + figures["reactivated_customers"],
                                                        "churned": figures["churned_customers"]}),
                (_("ARPA"), fmt.money(figures["arpa"]), ""),
                (_("NRR (12 months)"), fmt.percent(figures["nrr"]), _("GRR %(grr)s") % {"grr": fmt.percent(figures["grr"])}),
                (_("Customer churn"), fmt.percent(figures["customer_churn_rate"]),
                 _("quick ratio %(ratio)s") % {"ratio": fmt.multiple(figures["quick_ratio"])}),
            ],
            "mrr": fmt.money(figures["mrr_end"]),
            "mrr_start": fmt.money(figures["mrr_start"]),
            "movements": movements,
            "trend": [(fmt.short_month(r["month"]), fmt.money(r["mrr_end"]), fmt.signed(r["mrr_end"] - r["mrr_start"])) for r in series],
            "changes": [(names.get(pk, ""), change_kind(pk), fmt.signed(delta)) for pk, delta in changes],
            "figures": {
                "mrr": figures["mrr_end"], "arr": arr_from_mrr(figures["mrr_end"]),
                "customers_with_mrr": int(figures["customers_end"]), "arpa": figures["arpa"],
                "contracted_revenue": concentration["total_revenue"],
                "customers_with_contracted_revenue": concentration["customers"],
            },
            "definitions": figure_definitions(["mrr", "customers_with_mrr", "arpa", "contracted_revenue"],
                                              tenant=tenant, month=month, window=trailing_window(month)),
            "concentration": {
                "total": fmt.money(concentration["total_revenue"]),
                "top5": fmt.percent(concentration["top5_share"]),
                "hhi": "—" if concentration["hhi"] is None else format_decimal(
                    concentration["hhi"].quantize(Decimal(1), ROUND_HALF_UP), format="#,##0", locale=fmt.locale),
                "band": {"unconcentrated": _("unconcentrated"), "moderate": _("moderately concentrated"),
                         "high": _("highly concentrated")}.get(concentration["hhi_band"], ""),
            },
            "pipeline": {
                "open": fmt.money(pipeline["open"]["amount"]),
                "weighted": fmt.money(pipeline["open"]["weighted"]),
                "count": pipeline["open"]["count"],
                "quarter": coverage["quarter"],
                "coverage": fmt.multiple(coverage["coverage"]),
                "coverage_reason": coverage_reason(coverage),
            },
            "risks": risks,
            "logo_url": LOGO_URL,
            "has_logo": tenant_has_logo(tenant),
        }


def monthly_report_pdf(*, tenant: Tenant, context: dict) -> bytes:
    """The report as a PDF (WeasyPrint; nothing is fetched but the tenant's own logo)."""
    with translation.override(context["language"]):
        html = render_to_string("revenue/report_pdf.html", context)
    return html_to_pdf(html, tenant=tenant)


def _deliver(*, tenant: Tenant, kind: str, period: str, messages: dict[str, EmailMultiAlternatives],
             resend: bool = False) -> list[ReportDelivery]:
    """Send each recipient's message once, through the outbox (``billing.outbox.outbox_send``).

    A recipient already ``sent`` is skipped unless ``resend``; a mail server failure is recorded on
    the row (``failed``, error) and retried by the next run.
    """
    rows = [ReportDelivery(tenant=tenant, kind=kind, period=period, recipient=address) for address in messages]
    return outbox_send(tenant=tenant, rows=rows, resend=resend, compose=lambda recipient, _rows: messages[recipient])


def _already_sent(*, tenant: Tenant, kind: str, period: str, recipients: list[str]) -> bool:
    sent = set(
        ReportDelivery.objects.for_tenant(tenant)
        .filter(kind=kind, period=period, recipient__in=recipients, status=ReportDelivery.Status.SENT)
        .values_list("recipient", flat=True)
    )
    return set(recipients) <= sent


def _message(*, tenant: Tenant, subject: str, text: str, html: str, recipient: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=formataddr((tenant.name, settings.DEFAULT_FROM_EMAIL)), to=[recipient]
    )
    message.attach_alternative(html, "text/html")
    return message


def monthly_report_send(*, tenant: Tenant, month: date | None = None, resend: bool = False) -> list[ReportDelivery]:
    """Email the report of ``month`` (default: the tenant's last closed month) to the tenant's owners.

    Once per (tenant, month, recipient): recipients already sent to are skipped (unless ``resend``),
    and when all were, nothing is computed or rendered. Returns the delivery rows (none when the
    tenant has no owner with an email). Raises MissingExchangeRate before anything is sent.
    """
    month = month_start(month or last_closed_month(tenant))
    period = f"{month:%Y-%m}"
    recipients = executive_emails(tenant=tenant)
    if not recipients or (not resend and _already_sent(
            tenant=tenant, kind=ReportDelivery.Kind.MONTHLY, period=period, recipients=recipients)):
        return []
    with tenant_scope(tenant):
        context = monthly_report_context(tenant=tenant, month=month)
        pdf = monthly_report_pdf(tenant=tenant, context=context)
    with translation.override(context["language"]):
        subject = _("%(tenant)s: revenue report for %(month)s") % {"tenant": tenant.name, "month": context["month_name"]}
        text = render_to_string("revenue/email/monthly_report.txt", context)
        html = render_to_string("revenue/email/monthly_report.html", context)
        filename = _("revenue-report-%(period)s.pdf") % {"period": period}
    messages = {}
    for address in recipients:
        messages[address] = _message(tenant=tenant, subject=subject, text=text, html=html, recipient=address)
        messages[address].attach(filename, pdf, "application/pdf")
    return _deliver(tenant=tenant, kind=ReportDelivery.Kind.MONTHLY, period=period, messages=messages, resend=resend)


def month_end_done(*, tenant: Tenant, month: date) -> bool:
    """False while the tenant's month-end BillingRun for ``month`` exists and has not finished.

    A tenant without a run for the month (it does not invoice through month-end runs) is not held
    back; a finished run (done, or done with failures) lets the report go.
    """
    from billing.models import BillingRun

    run = BillingRun.objects.for_tenant(tenant).filter(period_start=month_start(month)).first()
    return run is None or run.status in (BillingRun.Status.DONE, BillingRun.Status.FAILED)


# --- weekly digest -----------------------------------------------------------------------------


def week_key(day: date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def digest_opportunities(*, tenant: Tenant, user) -> tuple[list[Opportunity], set[int]]:
    """The user's open opportunities above 60 % (by expected close, then title) and the ids of the stale ones."""
    mine = Opportunity.objects.for_tenant(tenant).filter(owner=user).open()
    above = list(
        mine.filter(probability__gt=DIGEST_ABOVE_PROBABILITY).select_related("customer").order_by(
            "expected_close_on", "title", "pk"
        )
    )
    stale = set(mine.stale().values_list("pk", flat=True))
    return above, stale


def weekly_digest_send(*, tenant: Tenant, today: date | None = None, resend: bool = False) -> list[ReportDelivery]:
    """Email each pipeline keeper (owner or account manager with an email) their digest for the ISO week of
    ``today`` (default: the tenant's today). Members with nothing above 60 % get none. Once per week and
    recipient. Returns the delivery rows."""
    today = today or tenant_today(tenant)
    period = week_key(today)
    fmt = _Format(tenant)
    keepers = [role for role, areas in EDITABLE_AREAS.items() if PIPELINE in areas]
    memberships = (
        Membership.objects.for_tenant(tenant)
        .filter(role__in=keepers, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
        .order_by("user__email")
    )
    messages = {}
    with tenant_scope(tenant), translation.override(fmt.language):
        for membership in memberships:
            user = membership.user
            if not resend and ReportDelivery.objects.for_tenant(tenant).filter(
                kind=ReportDelivery.Kind.WEEKLY, period=period, recipient=user.email, status=ReportDelivery.Status.SENT
            ).exists():
                continue
            above, stale = digest_opportunities(tenant=tenant, user=user)
            if not above:
                continue
            rows = [
                {
                    "title": o.title,
                    "account": o.account_name,
                    "amount": fmt.money(o.amount.amount, str(o.amount.currency)),
                    "probability": f"{o.probability}\u00a0%" if fmt.language == "sv" else f"{o.probability}%",
                    "expected_close": fmt.day(o.expected_close_on) or _("no date"),
                    "last_touched": fmt.day(timezone.localdate(o.last_touched_at)),
                    "stale": o.pk in stale,
                }
                for o in above
            ]
            context = {
                "tenant": tenant,
                "user": user,
                "name": user.get_full_name() or user.get_username(),
                "week": period,
                "rows": rows,
                "stale_rows": [row for row in rows if row["stale"]],
            }
            subject = _("%(tenant)s: your pipeline, week %(week)s") % {"tenant": tenant.name, "week": period}
            messages[user.email] = _message(
                tenant=tenant,
                subject=subject,
                text=render_to_string("revenue/email/weekly_digest.txt", context),
                html=render_to_string("revenue/email/weekly_digest.html", context),
                recipient=user.email,
            )
    if not messages:
        return []
    return _deliver(tenant=tenant, kind=ReportDelivery.Kind.WEEKLY, period=period, messages=messages, resend=resend)

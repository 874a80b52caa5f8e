"""Month-end in the admin: runs and their items (read-only, with retry), starting a run, resending emails.

Runs and items are written by ``billing.month_end`` only. Finance and owners (whoever may edit
billing) start a run for a past or the current month from the run list's "Start a month-end run"
page, finalize a run's drafts before the grace period ends, and retry failed items; the work
itself is queued to the workers. Every member may look. ``InvoiceDelivery`` rows (one per
invoice and recipient) can be resent.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing import month_end, tasks
from billing.admin_base import ReadOnlyMixin, _may_bill
from billing.models import BillingRun, BillingRunItem, InvoiceDelivery
from customers.admin_base import TenantAdmin, TenantInline, is_platform_admin, request_tenant
from customers.models import Tenant
from customers.periods import add_months, last_closed_month, month_key, month_start, parse_month, tenant_today


class StartRunForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False, label=_("Tenant"))
    period = forms.CharField(
        label=_("Month"), max_length=7, widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
        help_text=_("YYYY-MM, e.g. 2026-11: a past or the current month. The last closed month is filled in."),
    )
    finalize = forms.BooleanField(
        required=False, label=_("Finalize and send now"),
        help_text=_("Finalize and send the invoices at once, without the review period for drafts."),
    )

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_tenant = tenant
        if tenant is None:
            self.fields["tenant"].queryset = Tenant.objects.order_by("name")
            self.fields["tenant"].required = True
            # Platform admins pick the tenant below; the month that closed last in UTC is the likely one.
            self.fields["period"].initial = month_key(add_months(timezone.now().date(), -1))
        else:
            del self.fields["tenant"]
            self.fields["period"].initial = month_key(last_closed_month(tenant))

    def clean(self):
        cleaned = super().clean()
        tenant = self.fixed_tenant or cleaned.get("tenant")
        if tenant is None or "period" not in cleaned:
            return cleaned
        try:
            cleaned["period_start"] = parse_month(cleaned["period"])
            month_end.validate_run_period(tenant=tenant, period_start=cleaned["period_start"])
        except ValidationError as exc:
            self.add_error("period", exc)
        else:
            # invoice_finalize refuses a running period unless it is closed early, one invoice at a time.
            if cleaned.get("finalize") and cleaned["period_start"] == month_start(tenant_today(tenant)):
                self.add_error("finalize", _(
                    "This month is still running: a run can only draft it. Finalize an invoice early from its "
                    "page, where closing the period early is confirmed."))
        cleaned["tenant"] = tenant
        return cleaned


def run_progress_text(counts: dict, run: BillingRun) -> str:
    """One line of a run's live counts; they add up: through = delivered + failed + skipped."""
    if not counts["customers"]:
        return _("drafting…") if run.status == BillingRun.Status.PENDING else "—"
    if run.status in (BillingRun.Status.PENDING, BillingRun.Status.DRAFTED):
        if counts["finalized"] == counts["customers"]:
            return _("all %(customers)s invoices finalized, %(emailed)s emailed") % counts
        return _("%(customers)s invoices, %(finalized)s finalized, waiting for review") % counts
    return _(
        "%(through)s of %(customers)s through: %(finalized)s finalized, %(emailed)s emailed, %(failed)s failed"
    ) % counts


def _queue_retries(model_admin, request, failed_items) -> None:
    """Queue the retry of ``failed_items`` (by run) to the workers: re-drafting and delivering them
    can take long, so the request only counts them."""
    by_run: dict[BillingRun, list[int]] = {}
    for item in failed_items.select_related("run"):
        by_run.setdefault(item.run, []).append(item.pk)
    for run, item_ids in by_run.items():
        transaction.on_commit(partial(tasks.month_end_retry_failed.delay, run.tenant_id, run.pk, item_ids))
    retried = sum(len(ids) for ids in by_run.values())
    model_admin.message_user(
        request, _("%(count)s failed item(s) queued again.") % {"count": retried},
        messages.SUCCESS if retried else messages.INFO,
    )


def _queue_start(tenant, period_start, finalize: bool, user) -> None:
    transaction.on_commit(
        partial(tasks.month_end_start.delay, tenant.pk, period_start.isoformat(), finalize, getattr(user, "pk", None))
    )


class BillingRunItemInline(ReadOnlyMixin, TenantInline):
    """The run's failed items, the ones finance must look at (all items are on the item list)."""

    model = BillingRunItem
    fields = ["customer", "invoice", "status", "attempts", "error"]
    readonly_fields = fields
    verbose_name_plural = "failed items"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=BillingRunItem.Status.FAILED).select_related("run", "customer", "invoice")


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyMixin, TenantAdmin):
    # The counts are live from the rows (billing_run_counts), never the stored counters, which lag a
    # run in progress and a run whose worker died.
    list_display = ["__str__", "status", "progress", "finished_at"]
    list_filter = ["status", "period_start"]
    date_hierarchy = "period_start"
    actions = ["finalize_now", "retry_failed", "resume"]
    fields = [
        "period_start", "period_end", "status", "progress", "finalize_on", "problems", "error", "started_by",
        "created_at", "started_at", "drafted_at", "finalizing_at", "finished_at", "chunk_size",
    ]
    readonly_fields = fields
    change_list_template = "admin/billing/billingrun/change_list.html"
    change_form_template = "admin/billing/billingrun/change_form.html"
    REFRESH_SECONDS = 5  # while a run is working, its pages reload themselves

    @admin.display(description=_("progress"))
    def progress(self, obj):
        """Live, from the rows: invoices through, finalized, emailed and failed (billing_run_counts)."""
        return run_progress_text(month_end.billing_run_counts(run=obj), obj)

    def _refresh(self, runs) -> dict:
        working = any(run.status in (BillingRun.Status.PENDING, BillingRun.Status.RUNNING) for run in runs)
        return {"refresh_seconds": self.REFRESH_SECONDS if working else None}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), **self._refresh([run] if run else [])}
        if run is not None:
            counts = month_end.billing_run_counts(run=run)
            may_bill = _may_bill(request)
            extra_context.update(
                counts=counts,
                all_finalized=bool(counts["customers"]) and counts["finalized"] == counts["customers"],
                stalled=month_end.billing_run_stalled(run=run, counts=counts),
                stalled_minutes=int(month_end.STALLED_AFTER.total_seconds() // 60),
                may_resume=may_bill and run.status == BillingRun.Status.RUNNING and counts["open"] > 0,
                may_finalize=may_bill and run.status == BillingRun.Status.DRAFTED,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_inlines(self, request, obj):
        return [BillingRunItemInline] if obj is not None else []

    def has_billing_permission(self, request):
        return _may_bill(request)

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="billing_billingrun_start"),
            path("<path:object_id>/resume/", self.admin_site.admin_view(self.resume_view), name="billing_billingrun_resume"),
            path(
                "<path:object_id>/finalize/", self.admin_site.admin_view(self.finalize_view),
                name="billing_billingrun_finalize",
            ),
            *super().get_urls(),
        ]

    def start_view(self, request):
        """Start a month-end run for a past or the current month; the workers do the rest."""
        if not _may_bill(request):
            raise PermissionDenied
        tenant = None if is_platform_admin(request) else request_tenant(request)
        form = StartRunForm(request.POST or None, tenant=tenant)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            _queue_start(data["tenant"], data["period_start"], data["finalize"], request.user)
            what = "drafted, finalized and sent" if data["finalize"] else "drafted for review"
            self.message_user(
                request, f"Month-end {data['period_start']:%Y-%m} of {data['tenant']} started: invoices are being {what}.",
                messages.SUCCESS,
            )
            return redirect("admin:billing_billingrun_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Start a month-end run",
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/billingrun/start.html", context)

    def _run_for_post(self, request, object_id) -> BillingRun:
        if request.method != "POST":
            raise PermissionDenied
        if not _may_bill(request):
            raise PermissionDenied
        run = self.get_object(request, object_id)
        if run is None:
            raise Http404(_("No such month-end run."))
        return run

    def resume_view(self, request, object_id):
        """The run page's "Resume now": re-queue the run's open items (the beat does it too, when stalled)."""
        run = self._run_for_post(request, object_id)
        transaction.on_commit(partial(tasks.month_end_advance.delay, run.tenant_id, run.pk))
        self.message_user(request, _("%(run)s resumed: its open invoices are queued again.") % {"run": run}, messages.SUCCESS)
        return redirect("admin:billing_billingrun_change", run.pk)

    def finalize_view(self, request, object_id):
        """The run page's "Finalize and send now": queued to the workers, never done in this request."""
        run = self._run_for_post(request, object_id)
        if run.status != BillingRun.Status.DRAFTED:
            self.message_user(request, _("%(run)s is not waiting for review: nothing to finalize.") % {"run": run},
                              messages.WARNING)
        else:
            _queue_start(run.tenant, run.period_start, True, request.user)
            self.message_user(request, _("%(run)s is being finalized and sent by the workers.") % {"run": run},
                              messages.SUCCESS)
        return redirect("admin:billing_billingrun_change", run.pk)

    def changelist_view(self, request, extra_context=None):
        working = self.get_queryset(request).filter(
            status__in=[BillingRun.Status.PENDING, BillingRun.Status.RUNNING]).exists()
        extra_context = {**(extra_context or {}), "may_start_run": _may_bill(request),
                         "refresh_seconds": self.REFRESH_SECONDS if working else None}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Finalize and send the drafts now (skip the rest of the review period)", permissions=["billing"])
    def finalize_now(self, request, queryset):
        started = 0
        for run in queryset.select_related("tenant"):
            if run.status != BillingRun.Status.DRAFTED:
                self.message_user(request, f"{run} is {run.get_status_display().lower()}: nothing to finalize.", messages.WARNING)
                continue
            if run.period_start == month_start(tenant_today(run.tenant)):
                self.message_user(request, _("%(run)s: this month is still running; finalize its invoices early from "
                                             "their pages.") % {"run": run}, messages.WARNING)
                continue
            _queue_start(run.tenant, run.period_start, True, request.user)
            started += 1
        if started:
            self.message_user(request, f"{started} run(s) are being finalized.", messages.SUCCESS)

    @admin.action(description="Retry the failed items", permissions=["billing"])
    def retry_failed(self, request, queryset):
        failed = BillingRunItem.objects.filter(run__in=queryset, status=BillingRunItem.Status.FAILED)
        _queue_retries(self, request, failed)

    @admin.action(description="Resume (queue the items not yet done again)", permissions=["billing"])
    def resume(self, request, queryset):
        for run in queryset.select_related("tenant"):
            transaction.on_commit(partial(tasks.month_end_advance.delay, run.tenant_id, run.pk))
        self.message_user(request, f"{queryset.count()} run(s) resumed.", messages.SUCCESS)


@admin.register(BillingRunItem)
class BillingRunItemAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["customer", "run", "invoice", "status", "emails_sent", "attempts", "short_error", "updated_at"]
    list_filter = ["status", "run"]
    list_select_related = ["customer", "run", "invoice"]
    search_fields = ["customer__name", "invoice__number", "error"]
    fields = ["run", "customer", "invoice", "status", "was_draft", "emails_sent", "attempts", "error",
              "finalized_at", "delivered_at", "updated_at"]
    readonly_fields = fields
    actions = ["retry"]

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120] + ("…" if len(obj.error) > 120 else "")

    def has_billing_permission(self, request):
        return _may_bill(request)

    @admin.action(description="Retry the selected failed items", permissions=["billing"])
    def retry(self, request, queryset):
        _queue_retries(self, request, queryset.filter(status=BillingRunItem.Status.FAILED))


@admin.register(InvoiceDelivery)
class InvoiceDeliveryAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["invoice", "recipient", "status", "attempts", "sent_at", "short_error"]
    list_filter = ["status"]
    list_select_related = ["invoice"]
    search_fields = ["recipient", "invoice__number"]
    fields = ["invoice", "recipient", "status", "attempts", "sent_at", "error", "created_at", "updated_at"]
    readonly_fields = fields
    actions = ["resend"]

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120]

    def has_billing_permission(self, request):
        return _may_bill(request)

    @admin.action(description="Resend the invoice email to all its billing addresses", permissions=["billing"])
    def resend(self, request, queryset):
        """Queued to the workers (rendering and emailing take long); each delivery row shows the outcome."""
        invoices = sorted(set(queryset.values_list("tenant_id", "invoice_id")))
        for tenant_id, invoice_id in invoices:
            transaction.on_commit(partial(tasks.invoice_resend.delay, tenant_id, invoice_id))
        self.message_user(
            request, _("%(count)s invoice(s) queued to be emailed again; this list shows each send.") % {
                "count": len(invoices)}, messages.SUCCESS,
        )

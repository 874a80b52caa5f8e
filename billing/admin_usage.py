"""Usage events in the admin: a read-only list read through the usage-event store.

Events may live outside PostgreSQL (``USAGE_EVENT_STORE = "clickhouse"``), so the list is not Django's
changelist over ``UsageEvent``: it asks ``billing.metering.usage_store()`` for one page of the tenant's
events, newest first, filtered by customer, metric code, period and idempotency key. There is no page
per event (an event has no id in every store); the list shows every field.
"""

from __future__ import annotations

import json
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from billing.admin_base import ReadOnlyMixin
from billing.metering import usage_store
from billing.models import UsageEvent
from customers.admin_base import TenantAdmin, is_platform_admin, request_tenant
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope

PER_PAGE = 100


class UsageEventFilterForm(forms.Form):
    """The list's filters, from the query string; every one optional."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False, label=_("Tenant"))
    customer = forms.TypedChoiceField(coerce=int, required=False, label=_("Customer"))
    metric_code = forms.SlugField(required=False, max_length=UsageEvent._meta.get_field("metric_code").max_length,
                                  label=_("Metric"))
    start = forms.DateTimeField(required=False, label=_("From"), help_text=_("Events at or after this time."))
    end = forms.DateTimeField(required=False, label=_("Until"), help_text=_("Events before this time."))
    q = forms.CharField(required=False, max_length=UsageEvent._meta.get_field("idempotency_key").max_length,
                        label=_("Idempotency key"))
    p = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, widget=forms.HiddenInput)

    def __init__(self, data, *, tenant: Tenant | None, platform: bool):
        super().__init__(data)
        if platform:
            with platform_scope(reason="the admin's tenant filter of usage events"):
                tenants = Tenant.objects.order_by("name")
                self.fields["tenant"].queryset = tenants
                chosen = str(data.get("tenant") or "")
                tenant = tenants.filter(pk=chosen).first() if chosen.isdigit() else None
        else:
            del self.fields["tenant"]
        self.tenant = tenant
        customers = Customer.objects.for_tenant(tenant).order_by("name").values_list("pk", "name") if tenant else []
        self.fields["customer"].choices = [("", _("All customers")), *customers]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            raise forms.ValidationError(_("The end must be after the start."))
        return cleaned


class UsageEventAdmin(ReadOnlyMixin, TenantAdmin):
    """Metered events as ingested: read-only (only ``usage_ingest`` writes them, exactly once)."""

    # No page per event (not every store gives one an id): its change, history and delete pages answer 403.
    object_pages = False

    def get_queryset(self, request):
        return super().get_queryset(request).none()  # the events are read through the store, never here

    def change_view(self, request, object_id, form_url="", extra_context=None):
        raise PermissionDenied  # no page per event (not every store gives one an id): the list shows it all

    def history_view(self, request, object_id, extra_context=None):
        raise PermissionDenied

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        platform = is_platform_admin(request)
        form = UsageEventFilterForm(request.GET, tenant=None if platform else request_tenant(request), platform=platform)
        events, has_next, page = [], False, 1
        valid = form.is_valid()
        if valid and form.tenant is not None:
            data = form.cleaned_data
            page = data["p"] or 1
            rows = usage_store().event_list(
                tenant=form.tenant, customer_id=data["customer"] or None, metric_code=data["metric_code"] or None,
                start=data["start"], end=data["end"], idempotency_key=data["q"] or None,
                limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE,
            )
            has_next, rows = len(rows) > PER_PAGE, rows[:PER_PAGE]
            names = dict(Customer.objects.for_tenant(form.tenant).filter(
                pk__in={row.customer_id for row in rows}).values_list("pk", "name"))
            events = [
                {"row": row, "customer": names.get(row.customer_id, row.customer_id),
                 "quantity": format(row.quantity.normalize(), "f"),
                 "properties": json.dumps(row.properties, ensure_ascii=False, sort_keys=True)}
                for row in rows
            ]
        query = request.GET.copy()
        query.pop("p", None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": self.opts.verbose_name_plural.capitalize(),
            "form": form,
            "events": events,
            "page": page,
            "newer": page - 1 if page > 1 else None,
            "older": page + 1 if has_next else None,
            "query": query.urlencode(),
            "listed": valid and form.tenant is not None,
            "needs_tenant": valid and form.tenant is None,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/billing/usageevent/change_list.html", context, status=200 if valid else 400)


admin.site.register(UsageEvent, UsageEventAdmin)

"""Outgoing webhooks in the admin: owners register endpoints, rotate secrets, follow and redeliver deliveries.

Adding an endpoint shows its secret once (a message on the next page); *Rotate secret* shows the new
one once and keeps the old one signing for 24 hours. *Enable* turns a disabled endpoint back on.
Deliveries list each event sent to each endpoint with its attempts; *Redeliver* sends the selected
ones again, now, with the same message id. Every write goes through ``billing.services.webhooks``;
who may do it is the roles registry's team area (owners and platform admins), everyone else reads.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookEventType
from billing.services.webhooks import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from billing.webhook_http import webhook_url_check
from customers.admin_base import TenantAdmin, TenantInline, TenantModelForm, is_platform_admin, request_role
from customers.roles import role_can_edit


def _may_manage(request) -> bool:
    role = request_role(request)
    return is_platform_admin(request) or (role is not None and role_can_edit(role, WebhookEndpoint))


def _https_by_default(db_field, **kwargs):
    # A URL typed without a scheme is https: the only scheme an endpoint may have outside local work.
    if db_field.name == "url":
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class WebhookEndpointForm(TenantModelForm):
    event_types = forms.MultipleChoiceField(
        label=_("Event types"), choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]
        formfield_callback = _https_by_default

    def clean_url(self):
        url = (self.cleaned_data.get("url") or "").strip()
        try:
            webhook_url_check(url)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return url


def _show_secret(modeladmin, request, endpoint, text):
    modeladmin.message_user(request, format_html(
        "{} <code>{}</code> {}", text, endpoint.secret, gettext("It is not shown again: store it now.")
    ), messages.WARNING)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "event_list", "enabled", "consecutive_failures", "disabled_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    ordering = ["created_at", "id"]
    actions = ["rotate_secret", "enable"]
    readonly_fields = [
        "consecutive_failures", "failing_since", "disabled_at", "disabled_reason", "previous_secret_expires_at",
        "created_at",
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("Event types"))
    def event_list(self, obj):
        return ", ".join(obj.event_types)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ("url", "description", "event_types", "enabled")}
        if change:
            # The form has already set its values on ``obj``: the service compares with the stored row.
            stored = WebhookEndpoint.objects.for_tenant(obj.tenant).get(pk=obj.pk)
            webhook_endpoint_update(endpoint=stored, **data)
            return
        created = webhook_endpoint_create(tenant=obj.tenant, **data)
        obj.pk, obj.secret = created.pk, created.secret
        obj._state.adding = False
        _show_secret(self, request, created, gettext("Endpoint created. Its signing secret:"))

    def has_manage_permission(self, request):
        return _may_manage(request)

    @admin.action(description=_("Rotate secret (the old one stays valid for 24 hours)"), permissions=["manage"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset.order_by("pk"):
            endpoint = webhook_endpoint_rotate_secret(endpoint=endpoint)
            _show_secret(self, request, endpoint, gettext("New secret of %(url)s:") % {"url": endpoint.url})

    @admin.action(description=_("Enable selected endpoints"), permissions=["manage"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_update(endpoint=endpoint, enabled=True)
        self.message_user(request, gettext("%(count)s enabled.") % {"count": queryset.count()}, messages.SUCCESS)


class WebhookAttemptInline(TenantInline):
    model = WebhookAttempt
    fields = ["started_at", "status_code", "latency_ms", "succeeded", "error", "response_excerpt"]
    readonly_fields = fields
    ordering = ["started_at", "id"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantAdmin):
    list_display = ["message_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__message_id", "endpoint__url"]
    ordering = ["-created_at", "-id"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]
    fields = ["message_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at",
              "last_error", "body"]
    readonly_fields = fields

    @admin.display(description=_("Message id"), ordering="event__message_id")
    def message_id(self, obj):
        return obj.event.message_id

    @admin.display(description=_("Type"), ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description=_("Body"))
    def body(self, obj):
        return format_html("<pre>{}</pre>", obj.event.body)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request):
        return _may_manage(request)

    @admin.action(description=_("Redeliver (same message id)"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        queued = 0
        for delivery in queryset.select_related("endpoint").order_by("pk"):
            try:
                with transaction.atomic():
                    webhook_delivery_redeliver(delivery=delivery)
                queued += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if queued:
            self.message_user(request, gettext("%(count)s queued for redelivery.") % {"count": queued}, messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(TenantAdmin):
    list_display = ["message_id", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["message_id"]
    ordering = ["-created_at", "-id"]
    fields = ["message_id", "type", "created_at", "dedupe_key", "body"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

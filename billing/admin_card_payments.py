"""Card payment in the admin: a tenant's provider keys (write-only secrets) and the events it sent.

Owners and finance (the billing area) enter the keys under Billing → Card payment providers; every
other member sees only whether each secret is set. The secret key and the webhook signing secret are
password inputs that never show the stored value: left empty they keep it, *Remove the stored
secrets* clears both (card payment is then off). The page shows the webhook URL to register at the
provider. Card payment events are read-only: what each verified event did, flagged mismatches first
in the *outcome* filter.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from billing.admin_base import ReadOnlyMixin
from billing.models import PaymentProviderAccount, ProviderEvent
from customers.admin_base import TenantAdmin, TenantModelForm, is_platform_admin

SECRET_FIELDS = ("secret_key", "webhook_secret")
PREFIXES = {
    "publishable_key": (("pk_",), _("A Stripe publishable key starts with pk_.")),
    "secret_key": (("sk_", "rk_"), _("A Stripe secret key starts with sk_ (or rk_ for a restricted key).")),
    "webhook_secret": (("whsec_",), _("A Stripe webhook signing secret starts with whsec_.")),
}


class PaymentProviderAccountForm(TenantModelForm):
    secret_key = forms.CharField(
        label=_("Secret key"), required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text=_("From Stripe: Developers → API keys (sk_live_… or sk_test_…). Never shown again; empty keeps the stored one."),
    )
    webhook_secret = forms.CharField(
        label=_("Webhook signing secret"), required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text=_("From Stripe: the signing secret (whsec_…) of the webhook endpoint you add with the URL below. "
                    "Never shown again; empty keeps the stored one."),
    )
    clear_secrets = forms.BooleanField(
        label=_("Remove the stored secrets"), required=False,
        help_text=_("Clears the secret key and the signing secret: card payment stops."),
    )

    class Meta:
        model = PaymentProviderAccount
        fields = ["provider", "enabled", "publishable_key", "secret_key", "webhook_secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stored secrets are never put in the form, not even as initial values.
        self._stored = {name: getattr(self.instance, name) for name in SECRET_FIELDS}
        for name in SECRET_FIELDS:
            self.initial[name] = ""

    def _checked(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        prefixes, message = PREFIXES[name]
        if value and (not value.startswith(prefixes) or any(c.isspace() for c in value)):
            raise forms.ValidationError(message)  # never the value itself
        return value

    def clean_publishable_key(self):
        return self._checked("publishable_key")

    def clean_secret_key(self):
        return self._checked("secret_key") or self._stored["secret_key"]

    def clean_webhook_secret(self):
        return self._checked("webhook_secret") or self._stored["webhook_secret"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_secrets"):
            cleaned["secret_key"] = cleaned["webhook_secret"] = ""
        return cleaned


@admin.register(PaymentProviderAccount)
class PaymentProviderAccountAdmin(TenantAdmin):
    form = PaymentProviderAccountForm
    list_display = ["__str__", "enabled", "secret_key_state", "webhook_secret_state", "updated_at"]
    readonly_fields = ["secret_key_state", "webhook_secret_state", "webhook_url"]

    def get_fields(self, request, obj=None):
        fields = ["provider", "enabled", "publishable_key"]
        if self.has_change_permission(request, obj) or (obj is None and self.has_add_permission(request)):
            fields += ["secret_key", "webhook_secret"]
            if obj is not None:
                fields.append("clear_secrets")
        fields += ["secret_key_state", "webhook_secret_state", "webhook_url"]
        return (["tenant"] if is_platform_admin(request) else []) + fields

    @admin.display(description=_("secret key"))
    def secret_key_state(self, obj):
        return _("set") if obj and obj.secret_key else _("not set")

    @admin.display(description=_("webhook signing secret"))
    def webhook_secret_state(self, obj):
        return _("set") if obj and obj.webhook_secret else _("not set")

    @admin.display(description=_("webhook URL to register at Stripe"))
    def webhook_url(self, obj):
        if obj is None or not obj.tenant_id:
            return _("Shown once saved.")
        path = reverse("stripe_webhook", args=[obj.tenant.slug])
        return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}"


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["received_at", "event_type", "outcome", "invoice", "payment", "detail"]
    list_filter = ["outcome", "event_type"]
    search_fields = ["event_id", "detail"]
    fields = ["provider", "event_id", "event_type", "outcome", "detail", "invoice", "payment", "received_at"]
    readonly_fields = fields
    list_select_related = ["invoice", "payment"]

"""The admin account managers, finance and owners work in every day: one tenant at a time.

Tenant-owned admins build on ``customers.admin_base`` (scoping, choices, roles, history). Actions
call the services in ``customers.services``; they never write workflows of their own.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy

from customers import admin_contracts, services
from customers.contract_hooks import contract_changed
from customers.admin_base import (
    TenantAdmin,
    TenantInline,
    TenantInlineFormSet,
    TenantModelForm,
    is_platform_admin,
    request_role,
    request_tenant,
)
from customers.admin_filters import DefaultedListFilter
from customers.models import (
    Contact,
    Contract,
    ContractChange,
    ContractLine,
    Customer,
    Membership,
    PortalAccess,
    Role,
    Tenant,
    TenantAPIKey,
)

User = get_user_model()


# Tenant settings: the platform's superusers manage tenants; an owner keeps their own tenant's settings.


@admin.register(Tenant)
class TenantSettingsAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "reporting_currency", "locale", "time_zone"]
    search_fields = ["name", "slug"]

    def _is_owner(self, request, obj=None) -> bool:
        tenant = request_tenant(request)
        return (
            tenant is not None
            and request_role(request) == Role.OWNER
            and (obj is None or obj.pk == tenant.pk)
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_platform_admin(request):
            return queryset
        tenant = request_tenant(request)
        return queryset.filter(pk=tenant.pk) if self._is_owner(request) else queryset.none()

    def get_readonly_fields(self, request, obj=None):
        # The slug identifies the tenant to the platform (URLs, seeds): only superusers change it.
        return [] if is_platform_admin(request) else ["slug"]

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No tenant with that id.")
        return obj

    def has_module_permission(self, request):
        return super().has_module_permission(request) if is_platform_admin(request) else self._is_owner(request)

    def has_view_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_view_permission(request, obj)
        return self._is_owner(request, obj)

    def has_change_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_change_permission(request, obj)
        return self._is_owner(request, obj)

    def has_add_permission(self, request):
        return is_platform_admin(request) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return is_platform_admin(request) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # Through the service: a new time zone tells the apps that keep days in it.
        services.tenant_update(tenant=obj, changed=form.changed_data if change else ())


# People: the team (memberships) and customers' own people (portal access), both added by email.


class PersonByEmailForm(TenantModelForm):
    """Add a person by email: an existing user of that email is attached, else one is created on save.

    The user is set on the instance in ``clean()`` so the unique constraints on ``user`` are checked
    by the form. A new user is created only once the form is valid (no half-saved user).
    """

    email = forms.EmailField(help_text="An existing user with this email is added; otherwise one is created.")
    staff = True
    refused_message = "This email cannot be added here."

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email")
        if email:
            user = User.objects.filter(email__iexact=email).order_by("pk").first()
            if user is not None:
                # Staff and portal users are different kinds of people: never turn one into the other.
                if user.is_staff != self.staff or self.conflicts(user):
                    self.add_error("email", self.refused_message)
                else:
                    self.instance.user = user
            elif User.objects.filter(username__iexact=email).exists():
                self.add_error("email", self.refused_message)
        return cleaned

    def conflicts(self, user) -> bool:
        return False

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if self.instance.user_id is not None:
            exclude.discard("user")
        return exclude

    def user_for_save(self):
        """The user to attach: the existing one, or a new one made now (called inside the save transaction)."""
        if self.instance.user_id is not None:
            return self.instance.user
        email = self.cleaned_data["email"]
        user = User(username=email.lower(), email=email.lower(), is_staff=self.staff)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        return user


class MembershipAddForm(PersonByEmailForm):
    refused_message = "This email belongs to a customer's portal user, who cannot join the team."

    class Meta:
        model = Membership
        fields = ["email", "role", "language"]


class PortalAccessAddForm(PersonByEmailForm):
    staff = False
    refused_message = "This email cannot be given portal access (staff, or already linked to a customer)."

    class Meta:
        model = PortalAccess
        # The customer field is added by the admin, whose choices are the request tenant's customers.
        fields = ["email"]

    def conflicts(self, user) -> bool:
        # Checked through the user so it works whatever tenant the existing access belongs to.
        return User.objects.filter(pk=user.pk, portal_access__isnull=False).exists()


class PersonAdmin(TenantAdmin):
    add_form = None
    add_fields = []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return (["tenant"] if is_platform_admin(request) else []) + list(self.add_fields)
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("user")
        return readonly

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        if not change:
            obj.user = form.user_for_save()
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(PersonAdmin):
    add_form = MembershipAddForm
    add_fields = ["email", "role", "language"]
    list_display = ["user", "user_email", "role", "language"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]

    @admin.display(description="email", ordering="user__email")
    def user_email(self, obj):
        return obj.user.email


@admin.register(PortalAccess)
class PortalAccessAdmin(PersonAdmin):
    add_form = PortalAccessAddForm
    add_fields = ["email", "customer"]
    list_display = ["user", "customer"]
    search_fields = ["user__username", "user__email", "customer__name"]
    autocomplete_fields = ["customer"]
    list_select_related = ["user", "customer"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "customer":
            # Left to PortalAccess.clean(), so a missing customer gets one clear message, not two.
            field.required = False
        return field


# API keys: owners create and revoke them. The raw key is shown once; the stored hash never.


@admin.register(TenantAPIKey)
class TenantAPIKeyAdmin(TenantAdmin):
    list_display = ["name", "prefix", "created", "expiry_date", "revoked"]
    list_filter = ["revoked"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        fields = ["name", "expiry_date"] if obj is None else ["name", "prefix", "created", "expiry_date", "revoked"]
        return (["tenant"] if is_platform_admin(request) else []) + fields

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += ["prefix", "created"]
            if obj.revoked:
                readonly += ["name", "expiry_date", "revoked"]
        return readonly

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # assign_key is the step create_key uses; the admin must save its own instance to log it.
        raw_key = TenantAPIKey.objects.assign_key(obj)
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            f"The API key “{obj.name}” is {raw_key} — copy it now: it is shown only this once.",
            messages.SUCCESS,
        )

    def has_delete_permission(self, request, obj=None):
        # A key is revoked, never deleted: what it did stays attributable.
        return False

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked=False):
            api_key.revoked = True
            api_key.save(update_fields=["revoked"])
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


# Customers and their contacts.


class AccountManagerFilter(DefaultedListFilter):
    """Account managers start on their own accounts ("Mine") and can switch to all; a search looks
    through all of them unless "Mine" or "Nobody" was picked."""

    title = "account manager"
    parameter_name = "manager"
    MINE, ALL, NOBODY = "mine", "all", "nobody"
    search_default = ALL

    def __init__(self, request, params, model, model_admin):
        self.default = self.MINE if request_role(request) == Role.ACCOUNT_MANAGER else self.ALL
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(self.MINE, "Mine"), (self.ALL, "All"), (self.NOBODY, "Nobody")]

    def queryset(self, request, queryset):
        current = self.current()
        if current == self.MINE:
            return queryset.filter(account_manager=request.user)
        if current == self.NOBODY:
            return queryset.filter(account_manager__isnull=True)
        return queryset


class ContactInline(TenantInline):
    model = Contact
    fields = ["name", "title", "email", "phone", "is_billing_contact"]


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    list_display = ["name", "external_ref", "tier", "segment", "country", "currency", "account_manager"]
    list_filter = [AccountManagerFilter, "currency", "tier", "segment", "country", "einvoice_format"]
    search_fields = ["name", "external_ref", "org_number", "vat_number", "peppol_id"]
    list_select_related = ["account_manager"]
    inlines = [ContactInline]
    fieldsets = [
        (None, {"fields": ["name", "external_ref", "is_business", "org_number", "vat_number", "peppol_id"]}),
        ("Billing", {"fields": ["currency", "language", "billing_emails", "einvoice_format", "acquisition_cost"]}),
        ("Address", {"fields": ["address_line1", "address_line2", "postal_code", "city", "country"]}),
        ("Account", {"fields": ["segment", "tier", "account_manager", "first_contact_on"]}),
    ]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if request_role(request) == Role.ACCOUNT_MANAGER:
            initial.setdefault("account_manager", request.user.pk)
        tenant = request_tenant(request)
        if tenant is not None:
            initial.setdefault("currency", tenant.reporting_currency)
            initial.setdefault("language", tenant.locale)
        return initial


# Contracts: a draft's lines edited inline; a started contract changes only by dated actions
# (customers.admin_contracts); the change narrative read-only; lifecycle through the services.


class ContractLineFormSet(TenantInlineFormSet):
    def clean(self):
        super().clean()
        currency = self.instance.currency
        for form in self.forms:
            price = getattr(form, "cleaned_data", {}).get("unit_price")
            if price is None or form.cleaned_data.get("DELETE") or not currency:
                continue
            if str(price.currency) != currency:
                form.add_error(
                    "unit_price",
                    f"The line's currency ({price.currency}) differs from its contract's ({currency}).",
                )


class ContractLineInline(admin_contracts.StartedContractLinesLocked, TenantInline):
    model = ContractLine
    formset = ContractLineFormSet
    fields = ["description", "kind", "quantity", "unit_price", "discount_percent", "starts_on", "ends_on"]


class ContractChangeInline(TenantInline):
    model = ContractChange
    verbose_name_plural = gettext_lazy("change timeline")
    fields = ["kind", "effective_on", "note", "created_by", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Contract)
class ContractAdmin(admin_contracts.ContractChangeActionsMixin, TenantAdmin):
    list_display = [
        "reference", "title", "customer", "status", "currency", "billing_interval", "start_date", "end_date"
    ]
    list_filter = ["status", "billing_interval", "currency", "auto_renew"]
    search_fields = ["reference", "title", "customer__name"]
    autocomplete_fields = ["customer"]
    list_select_related = ["customer"]
    inlines = [ContractLineInline, ContractChangeInline]
    actions = ["activate"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "reference" in form.base_fields:
            form.base_fields["reference"].required = False
            form.base_fields["reference"].help_text = "Leave empty for the next free reference."
        return form

    def save_model(self, request, obj, form, change):
        if not change and not obj.reference:
            obj.reference = services.next_contract_reference(tenant=obj.tenant)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        status = form.instance.status
        # A draft set to active in its form starts like one activated by the action.
        activated = change and "status" in form.changed_data and status == Contract.Status.ACTIVE
        if activated or (not change and status != Contract.Status.DRAFT):
            services.contract_record_start(contract=form.instance, created_by=request.user)
        # Lines entered or edited here change MRR like the services' changes do.
        contract_changed(tenant=form.instance.tenant, customer_ids=[form.instance.customer_id])

    @admin.action(description="Activate the selected draft contracts", permissions=["change"])
    def activate(self, request, queryset):
        activated = 0
        for contract in queryset.filter(status=Contract.Status.DRAFT):
            try:
                services.contract_activate(contract=contract, created_by=request.user)
                activated += 1
            except ValidationError as error:
                self.message_user(request, f"{contract}: {'; '.join(error.messages)}", messages.ERROR)
        skipped = queryset.exclude(status=Contract.Status.DRAFT).count()
        self.message_user(request, f"Activated {activated} contract(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {skipped} contract(s) that are not drafts.", messages.WARNING)

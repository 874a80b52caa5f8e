"""The base every tenant-owned admin builds on: one tenant's rows, choices and history, by role.

For tenant staff (a ``request.membership``) every query goes explicitly through
``.for_tenant(request.tenant)``; the ``tenant`` field is hidden and set on the form's instance
before validation, so ``Model.clean()`` and the ``(tenant, …)`` unique constraints run in the form
(a duplicate is a form error, not an IntegrityError). Add/change/delete follow
``customers.roles.role_can_edit``; any member may view. An object of another tenant, asked for by
id, is a 404 (change, delete, history and history-version URLs alike).

A platform superuser (``request.is_platform_admin``) sees every tenant, with a tenant column and
filter, and picks the tenant when adding.

Other apps' admins import ``TenantAdmin`` and ``TenantInline`` from here.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_countries.fields import CountryField
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from customers.admin_filters import LONG_CHOICES, ChoicesInUseDropdownFilter, RelatedOnlyDropdownFilter
from customers.locales import formats_language
from customers.money import MoneyField, format_money
from customers.roles import role_can_edit
from customers.tenancy import TenantOwned

TENANT_FIELD = "tenant"


def is_platform_admin(request) -> bool:
    return bool(getattr(request, "is_platform_admin", False))


def request_tenant(request):
    """The tenant a staff member acts for, or None (no membership)."""
    return getattr(request, "tenant", None) if getattr(request, "membership", None) else None


def request_role(request) -> str | None:
    membership = getattr(request, "membership", None)
    return membership.role if membership else None


def tenant_member_users(tenant):
    """Users with a membership in ``tenant``: the only people tenant staff may pick."""
    users = get_user_model().objects
    if tenant is None:
        return users.none()
    return users.filter(memberships__tenant=tenant, is_active=True).distinct().order_by("username")


def money_text(amount, currency: str) -> str:
    """``amount`` in ``currency`` written as ``formats_language()`` does (the tenant's way on staff pages)."""
    return format_money(amount, currency, formats_language())


def money_column(model, name: str, currency_field: str = "currency"):
    """An admin column or read-only field showing ``model.<name>`` as money, the tenant's way.

    A ``MoneyField`` carries its currency; a plain amount column takes ``obj.<currency_field>``
    (billing documents; a dotted path such as ``"invoice.currency"`` for their lines). Written in
    ``formats_language()``: the tenant's locale on staff pages (``300 000,00 kr``), whatever
    language the reader speaks.
    """
    field = model._meta.get_field(name)

    @admin.display(description=field.verbose_name, ordering=name)
    def column(obj):
        value = getattr(obj, name)
        if value is None:
            return None
        if isinstance(field, MoneyField):
            return money_text(value.amount, str(value.currency))
        currency = obj
        for part in currency_field.split("."):
            currency = getattr(currency, part)
        return money_text(value, currency)

    column.__name__ = name  # the column's CSS class and the field's help text keep the field's name
    return column


EMPTY = "—"


class HistoryValues(HistoricalRecordContextHelper):
    """The old and new values of a history entry as people read them.

    django-simple-history shows an empty relation as "Deleted customer (pk=None)" and an empty
    value as "None"; here those read "—", a really deleted row reads "customer 12 (deleted)",
    a choice reads its label and money the tenant's way.
    """

    def prepare_delta_change_value(self, change, value):
        field = self.model._meta.get_field(change.field)
        if isinstance(value, DeletedObject):
            if value.pk is None:
                return EMPTY
            return _("%(model)s %(id)s (deleted)") % {"model": value.model._meta.verbose_name, "id": value.pk}
        if value is None or value == "":
            return EMPTY
        if getattr(field, "flatchoices", None) and not field.is_relation:
            return dict(field.flatchoices).get(value, value)
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if hasattr(value, "currency") and hasattr(value, "amount"):
            return money_text(value.amount, str(value.currency))
        return super().prepare_delta_change_value(change, value)


class MoneyFieldsMixin:
    """Money in read-only fields (and a ModelAdmin's list columns) written the tenant's way.

    Every ``MoneyField``, and the amount columns named in ``money_fields`` whose currency is
    ``obj.<money_currency>`` (``"currency"``, or ``"invoice.currency"`` for a document's lines),
    are shown by a ``money_column`` instead of the bare number (``300000.00``). Editable fields
    stay form inputs. A subclass that builds its read-only list without ``super()`` passes it
    through ``_as_money(names, self._money_names())`` to get the same.
    """

    money_fields: tuple[str, ...] = ()
    money_currency = "currency"

    def _money_names(self) -> set[str]:
        names = {f.name for f in self.model._meta.concrete_fields if isinstance(f, MoneyField)}
        return names | set(self.money_fields)

    def _as_money(self, names, only):
        columns = self.__dict__.setdefault("_money_columns", {})
        return [
            columns.setdefault(n, money_column(self.model, n, self.money_currency))
            if isinstance(n, str) and n in only else n
            for n in names
        ]

    def _readonly_money_names(self, request, obj) -> set[str]:
        # The names whose read-only field is one of our columns: the fieldsets show those columns.
        columns = self.__dict__.get("_money_columns", {}).values()
        return {n.__name__ for n in self.get_readonly_fields(request, obj) if callable(n) and n in columns}

    def get_fieldsets(self, request, obj=None):
        readonly_money = self._readonly_money_names(request, obj)
        return [
            (name, {**opts, "fields": self._as_money(opts.get("fields", ()), readonly_money)})
            for name, opts in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request, obj=None):
        return self._as_money(super().get_readonly_fields(request, obj), self._money_names())

    def get_exclude(self, request, obj=None):
        # A read-only money field is shown by its column; the form must not offer the field itself.
        exclude = list(super().get_exclude(request, obj) or [])
        return exclude + sorted(self._readonly_money_names(request, obj) - set(exclude))

    def get_list_display(self, request):
        editable = set(self.list_editable) | set(self.list_display_links or ())
        return self._as_money(super().get_list_display(request), self._money_names() - editable)


def _country_column(model, item):
    """A country field's list column as the row's own country name. Django would look each row's
    code up in the field's choices, which a country field rebuilds, translated, every time: 250
    names per row, seconds for one page of customers."""
    if not isinstance(item, str):
        return item
    try:
        field = model._meta.get_field(item)
    except FieldDoesNotExist:
        return item
    if not isinstance(field, CountryField):
        return item

    @admin.display(description=field.verbose_name, ordering=item)
    def column(obj):
        return getattr(obj, item).name or None

    column.__name__ = item  # the column keeps its CSS class, field-<name>
    return column


class TenantModelForm(forms.ModelForm):
    """A model form whose instance carries its tenant before validation.

    ``admin_tenant`` is set by the admin for tenant staff; inline forms take the parent's tenant.
    ``tenant`` stays in model validation even though it is not a form field, so unique
    constraints that start with it are checked by the form.
    """

    admin_tenant = None
    parent_instance = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._assign_tenant()

    def _assign_tenant(self):
        if self.instance.tenant_id is not None:
            return
        if self.admin_tenant is not None:
            self.instance.tenant = self.admin_tenant
        elif self.parent_instance is not None and self.parent_instance.tenant_id is not None:
            self.instance.tenant_id = self.parent_instance.tenant_id

    def _post_clean(self):
        # An inline's parent may get its tenant only when its own form is cleaned (superuser add).
        self._assign_tenant()
        super()._post_clean()

    def _update_errors(self, errors):
        # A unique key of the tenant alone (one billing settings per tenant) reports on ``tenant``, which
        # a tenant member's form does not show (Django raises ValueError, a 500): the form reports it whole.
        error_dict = getattr(errors, "error_dict", None)
        if error_dict and TENANT_FIELD in error_dict and TENANT_FIELD not in self.fields:
            error_dict.setdefault(NON_FIELD_ERRORS, []).extend(error_dict.pop(TENANT_FIELD))
        super()._update_errors(errors)

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if self.instance.tenant_id is not None:
            exclude.discard(TENANT_FIELD)
        return exclude

    def clean(self):
        cleaned = super().clean()
        chosen = cleaned.get(TENANT_FIELD)
        tenant_id = chosen.pk if chosen is not None else self.instance.tenant_id
        if tenant_id is None:
            return cleaned
        for name, value in cleaned.items():
            if isinstance(value, TenantOwned) and value.tenant_id != tenant_id:
                self.add_error(name, "This belongs to another tenant.")
        return cleaned


class TenantInlineFormSet(forms.BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent_instance = self.instance
        form._assign_tenant()
        return form

    @property
    def empty_form(self):
        form = super().empty_form
        form.parent_instance = self.instance
        return form


class TenantScopedMixin:
    """What ``TenantAdmin`` and ``TenantInline`` share: rows, choices and permissions of one tenant."""

    form = TenantModelForm

    # Rows

    def tenant_queryset(self, request):
        tenant = request_tenant(request)
        manager = self.model._default_manager
        if tenant is None:
            return manager.none()
        queryset = manager.for_tenant(tenant)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_queryset(self, request):
        if is_platform_admin(request):
            return super().get_queryset(request)
        return self.tenant_queryset(request)

    # Choices

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not is_platform_admin(request):
            queryset = self.tenant_choices(db_field, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not is_platform_admin(request):
            queryset = self.tenant_choices(db_field, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def tenant_choices(self, db_field, request):
        """The choices tenant staff get for a relation, or None to keep Django's."""
        related = db_field.remote_field.model
        tenant = request_tenant(request)
        if isinstance(related, type) and issubclass(related, TenantOwned):
            manager = related._default_manager
            return manager.for_tenant(tenant) if tenant is not None else manager.none()
        if related is get_user_model():
            return tenant_member_users(tenant)
        if related._meta.label_lower == "customers.tenant":
            model = related._default_manager
            return model.filter(pk=tenant.pk) if tenant is not None else model.none()
        return None

    def get_autocomplete_fields(self, request):
        """Relations to another tenant-owned model whose admin can search it are searched as you type.

        A tenant has hundreds of customers, contracts or opportunities: a drop-down of all of them is
        unusable (and slow). The search runs through the related admin's scoped queryset, so only the
        tenant's own rows are offered. Fields an admin names in ``autocomplete_fields`` or
        ``raw_id_fields`` itself are left as it says (naming any turns this off for that admin).
        Users stay a plain select: the choices are the tenant's few members, and the user admin is
        not tenant-scoped.
        """
        declared = list(super().get_autocomplete_fields(request))
        if declared or self.raw_id_fields:
            return declared
        return [
            field.name
            for field in self.model._meta.get_fields()
            if (field.many_to_one or field.many_to_many) and not field.auto_created and field.editable
            and field.name != TENANT_FIELD
            and isinstance(field.related_model, type) and issubclass(field.related_model, TenantOwned)
            and self._searchable(field.related_model)
        ]

    def _searchable(self, model) -> bool:
        related_admin = self.admin_site._registry.get(model)
        return related_admin is not None and bool(related_admin.search_fields)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not is_platform_admin(request) and TENANT_FIELD not in exclude:
            exclude.append(TENANT_FIELD)
        return exclude

    # Permissions

    def _owns(self, request, obj) -> bool:
        tenant = request_tenant(request)
        if tenant is None:
            return False
        return obj is None or getattr(obj, "tenant_id", None) == tenant.pk

    def _role_may_edit(self, request, obj=None) -> bool:
        role = request_role(request)
        return role is not None and role_can_edit(role, self.model) and self._owns(request, obj)


class TenantAdmin(MoneyFieldsMixin, TenantScopedMixin, SimpleHistoryAdmin):
    """The ModelAdmin for a tenant-owned model. See the module docstring for the rules."""

    # A delete refused outside the ORM's relations (a guard raising ProtectedError, e.g. billing's for a
    # customer whose usage events live in another store) rolls back and says why, never a 500.
    def _delete_refused(self, request) -> None:
        self.message_user(
            request, _("Not deleted: other records depend on this %(name)s.") % {"name": self.opts.verbose_name},
            messages.ERROR,
        )

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProtectedError:
            self._delete_refused(request)
            info = self.opts.app_label, self.opts.model_name
            return redirect(reverse("admin:%s_%s_change" % info, args=[object_id]))

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except ProtectedError:
            self._delete_refused(request)
            return redirect(request.get_full_path())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not is_platform_admin(request):
            form = type(form.__name__, (form,), {"admin_tenant": request_tenant(request)})
        return form

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", self.form)
        form = super().get_changelist_form(request, **kwargs)
        if not is_platform_admin(request):
            form = type(form.__name__, (form,), {"admin_tenant": request_tenant(request)})
        return form

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if is_platform_admin(request):
            if TENANT_FIELD not in fields:
                fields.insert(0, TENANT_FIELD)
        elif TENANT_FIELD in fields:
            fields.remove(TENANT_FIELD)
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.fieldsets and is_platform_admin(request):
            named = {f for _, opts in fieldsets for f in opts.get("fields", ())}
            if TENANT_FIELD not in named:
                fieldsets = [(None, {"fields": [TENANT_FIELD]}), *fieldsets]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        # Moving a row to another tenant would orphan its children there: the tenant is fixed once set.
        if is_platform_admin(request) and obj is not None and TENANT_FIELD not in readonly:
            readonly.append(TENANT_FIELD)
        return readonly

    def get_list_display(self, request):
        list_display = [_country_column(self.model, item) for item in super().get_list_display(request)]
        if is_platform_admin(request) and TENANT_FIELD not in list_display:
            list_display.append(TENANT_FIELD)
        return list_display

    def get_list_filter(self, request):
        list_filter = [self._scoped_filter(item) for item in super().get_list_filter(request)]
        if is_platform_admin(request) and TENANT_FIELD not in list_filter:
            list_filter.insert(0, TENANT_FIELD)
        return list_filter

    def _scoped_filter(self, item):
        """A plain relation filter would list every tenant's rows (or users): offer only those in use,
        in a drop-down; so is a long choice list (countries)."""
        if not isinstance(item, str) or "__" in item:
            return item
        field = self.model._meta.get_field(item)
        if field.is_relation and (field.many_to_one or field.many_to_many) and item != TENANT_FIELD:
            return (item, RelatedOnlyDropdownFilter)
        if not field.is_relation and len(field.flatchoices or ()) > LONG_CHOICES:
            return (item, ChoicesInUseDropdownFilter)
        return item

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if not self.has_change_permission(request):
            changelist.list_editable = ()
        return changelist

    # Permissions

    def has_module_permission(self, request):
        if is_platform_admin(request):
            return super().has_module_permission(request)
        return request_tenant(request) is not None

    def has_view_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_view_permission(request, obj)
        return self._owns(request, obj)

    def has_add_permission(self, request):
        if is_platform_admin(request):
            return super().has_add_permission(request)
        return self._role_may_edit(request)

    def has_change_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_change_permission(request, obj)
        return self._role_may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_delete_permission(request, obj)
        return self._role_may_edit(request, obj)

    # Objects by id: another tenant's id is simply not found.

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with that id.")
        return obj

    def _pk_or_404(self, object_id):
        try:
            return self.opts.pk.to_python(unquote(object_id))
        except ValidationError as error:
            raise Http404(f"No {self.opts.verbose_name} with that id.") from error

    def _has_history(self) -> bool:
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def history_view(self, request, object_id, extra_context=None):
        if not self._has_history():
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        self._pk_or_404(object_id)
        return super().history_view(request, object_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryValues(self.model, historical_record)

    def get_history_queryset(self, request, history_manager, pk_name, object_id):
        queryset = super().get_history_queryset(request, history_manager, pk_name, object_id)
        if is_platform_admin(request):
            return queryset
        tenant = request_tenant(request)
        # Historical tables are not scoped by the guard: filter by tenant here, always.
        return queryset.filter(tenant=tenant) if tenant is not None else queryset.none()

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        pk = self._pk_or_404(object_id)
        # Every TenantAdmin has the version URL, but only models registered with simple_history keep versions.
        history = getattr(self.model, getattr(self.model._meta, "simple_history_manager_attribute", ""), None)
        if history is None:
            raise Http404("This record keeps no versions.")
        try:
            version_pk = history.model._meta.pk.to_python(version_id)
        except ValidationError as error:
            raise Http404("No such version.") from error
        versions = history.model._default_manager.filter(**{self.opts.pk.attname: pk, "history_id": version_pk})
        if not is_platform_admin(request):
            tenant = request_tenant(request)
            versions = versions.filter(tenant=tenant) if tenant is not None else versions.none()
        if not versions.exists():
            raise Http404("No such version.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        if not is_platform_admin(request):
            tenant = request_tenant(request)
            if tenant is None or (obj.tenant_id is not None and obj.tenant_id != tenant.pk):
                raise PermissionDenied
            obj.tenant = tenant
        super().save_model(request, obj, form, change)


class TenantInline(MoneyFieldsMixin, TenantScopedMixin, admin.TabularInline):
    """An inline of tenant-owned child rows: the parent's tenant, the same rules as ``TenantAdmin``."""

    formset = TenantInlineFormSet
    extra = 0

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not self.has_view_or_change_permission(request):
            queryset = queryset.none()
        return queryset

    def get_exclude(self, request, obj=None):
        # The parent decides the tenant, for superusers too.
        exclude = list(super().get_exclude(request, obj) or [])
        if TENANT_FIELD not in exclude:
            exclude.append(TENANT_FIELD)
        return exclude

    def has_view_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_view_permission(request, obj)
        return self._owns(request, obj)

    def has_add_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_add_permission(request, obj)
        return self._role_may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_change_permission(request, obj)
        return self._role_may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        if is_platform_admin(request):
            return super().has_delete_permission(request, obj)
        return self._role_may_edit(request, obj)

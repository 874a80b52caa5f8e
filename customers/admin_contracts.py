"""Contract changes only as dated actions, in the admin.

A started (non-draft) contract's lines are history: their quantity, price, kind and dates are
read-only in the inline, no line is added or deleted there, the contract's own dates, status,
currency and interval are read-only, and it is never deleted (alone or in bulk) nor reverted to an
older version. Instead its page has one button per ``customers.services.ChangeAction`` (upgrade,
downgrade, change quantity, change price, add line, cancel, reactivate), each a small form asking
"from which date" that calls ``customers.services.contract_change``. A date in an invoiced period is
refused with the guard's message (invoice number, first open date) and a link that fills in that
date. Draft contracts stay editable as before.
"""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from customers import services
from customers.admin_base import TenantModelForm
from customers.change_guards import ContractChangeRefused, contract_change_refusal
from customers.models import Contract, ContractLine
from customers.money import Money, format_unit_price
from customers.periods import tenant_today
from customers.tenancy import tenant_scope

LOCKED_LINE_FIELDS = ["kind", "quantity", "unit_price", "discount_percent", "starts_on", "ends_on"]
LOCKED_CONTRACT_FIELDS = ["customer", "status", "currency", "billing_interval", "start_date", "end_date"]
Action = services.ChangeAction


def is_started(contract) -> bool:
    """A contract that is not a draft: its lines and dates change only as dated changes."""
    return contract is not None and contract.pk is not None and contract.status != Contract.Status.DRAFT


class LineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, line):
        price = format_unit_price(line.unit_price.amount, str(line.unit_price.currency), line.tenant.locale)
        return f"{line.description} · {line.quantity.normalize()} × {price} · {_('from')} {line.starts_on.isoformat()}"


class ContractChangeForm(forms.Form):
    """The fields one ``ChangeAction`` needs; ``service_kwargs()`` are ``contract_change``'s arguments."""

    effective_on = forms.DateField(label=_("From which date"), widget=forms.DateInput(attrs={"type": "date"}))
    line = LineChoiceField(label=_("Line"), queryset=ContractLine.objects.none())
    description = forms.CharField(label=_("Description"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=ContractLine.Kind.choices)
    quantity = forms.DecimalField(label=_("New quantity"), max_digits=18, decimal_places=4, min_value=Decimal(0))
    unit_price = forms.DecimalField(label=_("New unit price"), max_digits=20, decimal_places=6, min_value=Decimal(0))
    discount_percent = forms.DecimalField(
        label=_("Discount percent"), max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100),
        required=False,
    )
    ends_on = forms.DateField(
        label=_("Last day"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the line runs as long as the contract."),
    )

    FIELDS = {
        Action.UPGRADE: ["line", "quantity", "unit_price"],
        Action.DOWNGRADE: ["line", "quantity", "unit_price"],
        Action.CHANGE_QUANTITY: ["line", "quantity"],
        Action.CHANGE_PRICE: ["line", "unit_price"],
        Action.ADD_LINE: ["description", "kind", "quantity", "unit_price", "discount_percent", "ends_on"],
        Action.CANCEL: [],
        Action.REACTIVATE: [],
    }

    def __init__(self, *args, contract: Contract, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.contract, self.action = contract, action
        wanted = ["effective_on", *self.FIELDS[action]]
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]
        if "line" in self.fields:
            today = tenant_today(contract.tenant)
            self.fields["line"].queryset = ContractLine.objects.for_tenant(contract.tenant).select_related("tenant").filter(
                Q(ends_on__isnull=True) | Q(ends_on__gte=today), contract=contract
            ).exclude(kind=ContractLine.Kind.DISCOUNT)
        if "unit_price" in self.fields:
            self.fields["unit_price"].label = _("New unit price (%(currency)s)") % {"currency": contract.currency}
        if action in (Action.UPGRADE, Action.DOWNGRADE):
            self.fields["quantity"].required = self.fields["unit_price"].required = False
            self.fields["quantity"].help_text = _("Leave empty to keep it.")
            self.fields["unit_price"].help_text = _("Leave empty to keep it.")
        if action == Action.ADD_LINE:
            self.fields["quantity"].label = _("Quantity")
            self.fields["quantity"].initial = Decimal(1)
            self.fields["unit_price"].label = _("Unit price (%(currency)s)") % {"currency": contract.currency}
            self.fields["unit_price"].required = False
        if action == Action.CANCEL:
            self.fields["effective_on"].label = _("From which date (the first day without the contract)")
            self.fields["effective_on"].help_text = _("Its last day is the day before.")

    def clean(self):
        cleaned = super().clean()
        if self.action == Action.ADD_LINE and cleaned.get("kind") not in (None, ContractLine.Kind.DISCOUNT):
            if cleaned.get("unit_price") is None:
                self.add_error("unit_price", _("Give the line's unit price."))
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        price = data.get("unit_price")
        money = None if price is None else Money(price, self.contract.currency)
        kwargs = {"effective_on": data["effective_on"]}
        if self.action == Action.ADD_LINE:
            kwargs["new_line"] = services.LineSpec(
                description=data["description"], kind=data["kind"], quantity=data["quantity"],
                unit_price=money if money is not None else Money(0, self.contract.currency),
                ends_on=data.get("ends_on"), discount_percent=data.get("discount_percent"),
            )
        elif "line" in self.fields:
            kwargs.update(line=data["line"], quantity=data.get("quantity"), unit_price=money)
        return kwargs

    def add_service_error(self, error: ValidationError) -> None:
        """Show a service's refusal on the field it names, else above the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


class LockedOnceStarted:
    """Read-only ``locked_fields`` and no deleting once the contract (``obj``; an inline's parent) started.

    Deleting is refused per object, so the bulk "delete selected" refuses started contracts too."""

    locked_fields: list[str] = []

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if is_started(obj):
            readonly += [name for name in self.locked_fields if name not in readonly]
        return readonly

    def has_delete_permission(self, request, obj=None):
        return not is_started(obj) and super().has_delete_permission(request, obj)


class ContractAdminForm(TenantModelForm):
    """A contract added as started, or a draft set to active here, may not begin in an invoiced period."""

    def clean(self):
        cleaned = super().clean()
        customer, start, status = cleaned.get("customer"), cleaned.get("start_date"), cleaned.get("status")
        starting = self.instance.pk is None or "status" in self.changed_data
        if customer is not None and start and status and status != Contract.Status.DRAFT and starting:
            probe = Contract(tenant=customer.tenant, customer=customer, status=status)
            refusal = contract_change_refusal(contract=probe, effective_on=start)
            if refusal is not None:
                self.add_error("start_date", refusal.message)
        return cleaned


class ContractChangeActionsMixin(LockedOnceStarted):
    """For ``ContractAdmin``: the dated-change buttons and pages, and what a started contract locks."""

    change_form_template = "admin/customers/contract/change_form.html"
    form = ContractAdminForm
    locked_fields = LOCKED_CONTRACT_FIELDS

    def revert_disabled(self, request, obj=None):
        return is_started(obj) or super().revert_disabled(request, obj)

    def get_urls(self):
        view = self.admin_site.admin_view(self.change_from_date_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_change_from_date"
        return [path("<path:object_id>/change-from-date/<slug:action>/", view, name=name), *super().get_urls()]

    def change_actions(self, request, contract) -> list[dict]:
        """The buttons a contract's page shows: none for drafts or for people who may not edit it."""
        if not is_started(contract) or not self.has_change_permission(request, contract):
            return []
        if contract.status == Contract.Status.ACTIVE:
            shown = [a for a in Action if a != Action.REACTIVATE]
        else:
            shown = [Action.ADD_LINE, Action.REACTIVATE]
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_change_from_date"
        return [{"label": a.label, "action": a.value, "url": reverse(name, args=[contract.pk, a.value])} for a in shown]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contract = self.get_object(request, unquote(object_id)) if object_id else None
        extra_context = {**(extra_context or {}), "change_actions": self.change_actions(request, contract)}
        return super().change_view(request, object_id, form_url, extra_context)

    def change_from_date_view(self, request, object_id, action):
        """One dated change of a started contract (see the module docstring)."""
        contract = self.get_object(request, unquote(object_id))
        if action not in Action.values:
            raise Http404(_("No such change."))
        if not self.has_change_permission(request, contract):
            raise PermissionDenied
        label = Action(action).label
        initial = {"effective_on": request.GET.get("effective_on")} if request.method == "GET" else None
        form = ContractChangeForm(
            request.POST if request.method == "POST" else None, contract=contract, action=action, initial=initial
        )
        refusal = None
        if request.method == "POST" and form.is_valid():
            try:
                with tenant_scope(contract.tenant):
                    change = services.contract_change(
                        contract=contract, action=action, created_by=request.user, **form.service_kwargs()
                    )
            except ContractChangeRefused as error:
                refusal = error.refusal
                form.add_service_error(error)
            except ValidationError as error:
                form.add_service_error(error)
            else:
                self.message_user(
                    request,
                    _("%(kind)s from %(day)s recorded: %(note)s")
                    % {"kind": change.get_kind_display(), "day": change.effective_on.isoformat(), "note": change.note},
                    messages.SUCCESS,
                )
                return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", contract.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": contract,
            "title": _("%(action)s: %(contract)s") % {"action": label, "contract": contract},
            "action_label": label,
            "form": form,
            "refusal": refusal,
            "retry_url": f"{request.path}?effective_on={refusal.first_open_date.isoformat()}"
            if refusal and refusal.first_open_date else None,
        }
        return TemplateResponse(request, "admin/customers/contract/change_from_date.html", context)


class StartedContractLinesLocked(LockedOnceStarted):
    """For the ContractLine inline: on a started contract (``obj`` is the parent) only the description
    stays editable, and no line is added or deleted there."""

    locked_fields = LOCKED_LINE_FIELDS

    def has_add_permission(self, request, obj=None):
        return not is_started(obj) and super().has_add_permission(request, obj)

"""Writes with business meaning on customers and contracts.

Every service validates with the models' ``full_clean`` before saving and runs in one transaction,
so a refused change leaves nothing half-written. Dates are inclusive: a line's ``ends_on`` is its
last day. Upgrades and downgrades never edit a line in place: they end it the day before the
change and start a new version, so any past month can be replayed.

Every dated change of a started (non-draft) contract asks ``customers.change_guards`` first: a change
dated into a period that is already invoiced for good is refused (billing registers that guard),
before anything is written. ``contract_change`` is the one entry point for the admin's "change from
date" buttons and ``POST /api/v1/contracts/{id}/changes/``.
"""

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, TextChoices
from django.utils.translation import gettext_lazy as _

from customers.change_guards import contract_change_check
from customers.contract_hooks import contract_changed
from customers.models import LANGUAGE_CHOICES, Contract, ContractChange, ContractLine, Customer, Membership, Tenant
from customers.money import Money
from customers.signals import contract_line_versioned, customer_churned, tenant_time_zone_changed
from customers.tenancy import tenant_scope

RECURRING_KINDS = {ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT}


@dataclass(frozen=True)
class LineSpec:
    """What a new contract line should charge; dates default to the contract's."""

    description: str
    kind: str
    unit_price: Money
    quantity: Decimal = Decimal(1)
    starts_on: date | None = None
    ends_on: date | None = None
    discount_percent: Decimal | None = None


def save_validated(obj):
    """full_clean then save, in the object's tenant scope (constraint checks query the scoped manager)."""
    with tenant_scope(obj.tenant):
        obj.full_clean()
        obj.save()
    return obj


def tenant_update(*, tenant: Tenant, changed: Collection[str]) -> Tenant:
    """Save ``tenant``'s settings, already set on it, whose names are in ``changed`` (a form's
    ``changed_data``). One transaction; when ``time_zone`` is among them it sends
    ``customers.signals.tenant_time_zone_changed`` in it, so what keeps days in the tenant's calendar
    is made again with the change or not at all. A save that changes no time zone sends nothing.
    """
    with transaction.atomic():
        tenant.save()
        if "time_zone" in changed:
            tenant_time_zone_changed.send(sender=Tenant, tenant=tenant)
    return tenant


def tenant_time_zone_set(*, tenant: Tenant, time_zone: str) -> Tenant:
    """Give ``tenant`` the time zone ``time_zone`` (an IANA name); see ``tenant_update``. Setting
    the zone it already has saves nothing."""
    if time_zone == tenant.time_zone:
        return tenant
    tenant.time_zone = time_zone
    tenant.full_clean(validate_unique=False, validate_constraints=False)
    return tenant_update(tenant=tenant, changed={"time_zone"})


@transaction.atomic
def membership_language_set(*, tenant: Tenant, membership: Membership, language: str) -> Membership:
    """The language ``membership``'s person reads ``tenant``'s staff pages in: a code of
    ``LANGUAGE_CHOICES``, or ``""`` to follow the tenant's locale. Raises ValidationError for a
    language not offered or a membership of another tenant."""
    if membership.tenant_id != tenant.pk:
        raise ValidationError("That membership belongs to another tenant.")
    if language not in {"", *dict(LANGUAGE_CHOICES)}:
        raise ValidationError(f"{language!r} is not a language these pages are written in.")
    membership.language = language
    membership.save(update_fields=["language"])
    return membership


def customer_create(*, tenant: Tenant, name: str, external_ref: str, currency: str, **fields) -> Customer:
    """Create a customer of ``tenant``. Raises ValidationError on bad or duplicate data."""
    return save_validated(Customer(tenant=tenant, name=name, external_ref=external_ref, currency=currency, **fields))


def next_contract_reference(*, tenant: Tenant) -> str:
    """The next free contract reference of the tenant, ``C-00001`` style. Call inside a transaction."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()  # serialize concurrent creations
    count = Contract.objects.for_tenant(tenant).count()
    return f"C-{count + 1:05d}"


def monthly_value(line: ContractLine, *, billing_interval: int) -> Decimal:
    """A recurring line's amount per month (quantity × unit price / months per interval); 0 otherwise."""
    if line.kind not in RECURRING_KINDS:
        return Decimal(0)
    return line.quantity * line.unit_price.amount / billing_interval


@transaction.atomic
def contract_create(
    *,
    customer: Customer,
    title: str,
    start_date: date,
    lines: list[LineSpec],
    currency: str | None = None,
    billing_interval: int = 1,
    end_date: date | None = None,
    status: str = Contract.Status.ACTIVE,
    reference: str | None = None,
    signed_on: date | None = None,
    auto_renew: bool = False,
    created_by=None,
) -> Contract:
    """Create a contract with its lines and record it as new (or a reactivation for a returning customer).

    Raises ValidationError when the contract or any line is invalid (e.g. a line in another currency),
    and ``ContractChangeRefused`` when a started contract would begin in a period of the customer
    already invoiced; nothing is saved then.
    """
    tenant = customer.tenant
    contract_change_check(contract=Contract(tenant=tenant, customer=customer, status=status), effective_on=start_date)
    contract = save_validated(
        Contract(
            tenant=tenant,
            customer=customer,
            reference=reference or next_contract_reference(tenant=tenant),
            title=title,
            currency=currency or customer.currency,
            billing_interval=billing_interval,
            start_date=start_date,
            end_date=end_date,
            status=status,
            signed_on=signed_on,
            auto_renew=auto_renew,
        )
    )
    for spec in lines:
        _add_line(contract, spec)
    if status != Contract.Status.DRAFT:
        contract_record_start(contract=contract, created_by=created_by)
        _changed(contract)
    return contract


def contract_record_start(*, contract: Contract, created_by=None) -> ContractChange:
    """Record that a (non-draft) contract starts: new, upgrade or reactivation, see ``_arrival_kind``.

    For contracts entered by hand (the admin) after their lines are saved; the other services call it.
    """
    return _record(contract, _arrival_kind(contract), contract.start_date, f"{contract.title} starts", created_by)


def _arrival_kind(contract: Contract) -> str:
    """New for a first recurring contract, upgrade beside a running one, reactivation after a gap.

    Only earlier contracts with recurring lines count: a one-off project before a first retainer
    does not make the retainer a reactivation.
    """
    others = (
        Contract.objects.for_tenant(contract.tenant)
        .filter(customer=contract.customer, start_date__lte=contract.start_date, lines__kind__in=RECURRING_KINDS)
        .exclude(pk=contract.pk)
        .exclude(status=Contract.Status.DRAFT)
        .distinct()
    )
    if not others.exists():
        return ContractChange.Kind.NEW
    running = others.filter(Q(end_date__isnull=True) | Q(end_date__gte=contract.start_date))
    return ContractChange.Kind.UPGRADE if running.exists() else ContractChange.Kind.REACTIVATION


def _add_line(contract: Contract, spec: LineSpec) -> ContractLine:
    return save_validated(
        ContractLine(
            tenant=contract.tenant,
            contract=contract,
            description=spec.description,
            kind=spec.kind,
            quantity=spec.quantity,
            unit_price=spec.unit_price,
            discount_percent=spec.discount_percent,
            starts_on=spec.starts_on or contract.start_date,
            ends_on=spec.ends_on or contract.end_date,
        )
    )


def _changed(contract: Contract) -> None:
    """The contract's customer's contracts changed (``customers.contract_hooks``)."""
    contract_changed(tenant=contract.tenant, customer_ids=[contract.customer_id])


def _record(contract, kind, effective_on, note, created_by):
    return ContractChange.objects.create(
        tenant=contract.tenant, contract=contract, kind=kind, effective_on=effective_on, note=note, created_by=created_by
    )


def line_change_kind(*, line: ContractLine, quantity: Decimal, unit_price: Money) -> str:
    """Upgrade when ``quantity`` × ``unit_price`` is at least the line's, else downgrade.

    Usage and one-time lines have no monthly value; their price per unit tells the direction.
    """
    up = quantity * unit_price.amount >= line.quantity * line.unit_price.amount
    return ContractChange.Kind.UPGRADE if up else ContractChange.Kind.DOWNGRADE


@transaction.atomic
def contract_line_change(
    *,
    line: ContractLine,
    effective_on: date,
    quantity: Decimal | None = None,
    unit_price: Money | None = None,
    created_by=None,
) -> ContractLine:
    """Change a line's quantity and/or price from ``effective_on``: an upgrade or a downgrade.

    The current version ends the day before; a new version starts on ``effective_on``. Returns the
    new line. Raises ValidationError if the line is not active on that day or nothing changes, and
    ``ContractChangeRefused`` if ``effective_on`` is in an invoiced period (see the module).
    """
    if line.starts_on >= effective_on or (line.ends_on is not None and line.ends_on < effective_on):
        raise ValidationError({"effective_on": _("The line is not active on that day, so it cannot change then.")})
    new_quantity = line.quantity if quantity is None else Decimal(quantity)
    new_price = line.unit_price if unit_price is None else unit_price
    if new_quantity == line.quantity and new_price == line.unit_price:
        raise ValidationError(_("Nothing changes: give a new quantity or a new unit price."))
    contract_change_check(contract=line.contract, effective_on=effective_on)
    old_ends_on = line.ends_on
    line.ends_on = effective_on - timedelta(days=1)
    save_validated(line)
    new_line = _add_line(
        line.contract,
        LineSpec(
            description=line.description,
            kind=line.kind,
            quantity=new_quantity,
            unit_price=new_price,
            starts_on=effective_on,
            ends_on=old_ends_on,
            discount_percent=line.discount_percent,
        ),
    )
    contract_line_versioned.send(sender=ContractLine, previous=line, line=new_line)
    kind = line_change_kind(line=line, quantity=new_quantity, unit_price=new_price)
    changes = []
    if new_quantity != line.quantity:
        changes.append(f"quantity {_plain(line.quantity)} → {_plain(new_quantity)}")
    if new_price != line.unit_price:
        changes.append(f"unit price {line.unit_price} → {new_price}")
    _record(line.contract, kind, effective_on, f"{line.description}: {', '.join(changes)}", created_by)
    _changed(line.contract)
    return new_line


@transaction.atomic
def contract_cancel(*, contract: Contract, last_day: date, created_by=None) -> Contract:
    """End a contract on ``last_day`` (inclusive): its open lines end then too. When no other started
    contract of the customer runs on without a set end, ``customers.signals.customer_churned`` is sent
    (see ``_announce_churn``).

    Raises ValidationError if ``last_day`` is before the contract starts, and
    ``ContractChangeRefused`` if the day after it is in an invoiced period (see the module).
    """
    if last_day < contract.start_date:
        raise ValidationError({"last_day": _("A contract cannot end before it starts.")})
    contract_change_check(contract=contract, effective_on=last_day + timedelta(days=1))
    contract.end_date = last_day
    contract.auto_renew = False
    contract.status = Contract.Status.CANCELLED
    save_validated(contract)
    for line in ContractLine.objects.for_tenant(contract.tenant).filter(contract=contract):
        if line.starts_on > last_day:
            line.delete()
        elif line.ends_on is None or line.ends_on > last_day:
            line.ends_on = last_day
            save_validated(line)
    _record(contract, ContractChange.Kind.CANCELLATION, last_day + timedelta(days=1), "Cancelled", created_by)
    _announce_churn(contract, last_day)
    _changed(contract)
    return contract


def _announce_churn(contract: Contract, last_day: date) -> None:
    # The customer churns unless another started contract runs on without a set end (open-ended or
    # renewing); then on the day after the last of the end dates still ahead (theirs or this one's).
    running = (
        Contract.objects.for_tenant(contract.tenant)
        .filter(customer_id=contract.customer_id)
        .exclude(pk=contract.pk)
        .exclude(status=Contract.Status.DRAFT)
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=last_day))
    )
    if running.filter(status=Contract.Status.ACTIVE).filter(Q(end_date__isnull=True) | Q(auto_renew=True)).exists():
        return
    last = max([last_day, *(end for end in running.values_list("end_date", flat=True) if end is not None)])
    customer_churned.send(sender=Customer, customer=contract.customer, contract=contract, churned_on=last + timedelta(days=1))


@transaction.atomic
def contract_activate(*, contract: Contract, created_by=None) -> Contract:
    """Turn a draft contract (e.g. from a won opportunity) into an active one.

    Raises ValidationError for a contract that is not a draft, and ``ContractChangeRefused`` when it
    starts in a period of the customer already invoiced (move the draft's start date first).
    """
    if contract.status != Contract.Status.DRAFT:
        raise ValidationError({"status": _("Only a draft contract can be activated.")})
    contract.status = Contract.Status.ACTIVE
    contract_change_check(contract=contract, effective_on=contract.start_date)
    save_validated(contract)
    contract_record_start(contract=contract, created_by=created_by)
    _changed(contract)
    return contract


@transaction.atomic
def contract_draft_lines_set(*, contract: Contract, lines: list[LineSpec]) -> list[ContractLine]:
    """Replace every line of a draft contract by ``lines``: a draft was never billed, so it has no
    history to keep. Raises ValidationError for a started contract (it changes by ``contract_change``)
    or an invalid line; nothing is saved then."""
    if contract.status != Contract.Status.DRAFT:
        raise ValidationError(_("Only a draft contract's lines are replaced; a started contract changes from a date."))
    ContractLine.objects.for_tenant(contract.tenant).filter(contract=contract).delete()
    return [_add_line(contract, spec) for spec in lines]


@transaction.atomic
def contract_line_add(*, contract: Contract, spec: LineSpec, created_by=None) -> ContractLine:
    """Add a line to a started contract from ``spec.starts_on`` (required): an upgrade, or a downgrade
    for a discount line. Returns the new line.

    Raises ValidationError for a line the contract cannot hold (another currency, outside its dates,
    a discount without a percentage), and ``ContractChangeRefused`` if ``spec.starts_on`` is in an
    invoiced period.
    """
    if spec.starts_on is None:
        raise ValidationError({"effective_on": _("Give the date the line starts.")})
    contract_change_check(contract=contract, effective_on=spec.starts_on)
    line = _add_line(contract, spec)
    kind = ContractChange.Kind.DOWNGRADE if line.kind == ContractLine.Kind.DISCOUNT else ContractChange.Kind.UPGRADE
    _record(contract, kind, line.starts_on, f"{line.description} added: {_line_terms(line)}", created_by)
    _changed(contract)
    return line


def _line_terms(line: ContractLine) -> str:
    if line.kind == ContractLine.Kind.DISCOUNT:
        return f"{_plain(line.discount_percent)} % off"
    return f"{_plain(line.quantity)} × {line.unit_price}"


def _plain(number: Decimal) -> str:
    """A decimal without trailing zeros and without an exponent: ``90``, not ``9E+1``."""
    return format(Decimal(number).normalize(), "f")


@transaction.atomic
def contract_reactivate(*, contract: Contract, effective_on: date, created_by=None) -> Contract:
    """Bring a cancelled or ended contract back from ``effective_on``: the lines that ran until its
    last day (one-time fees excepted) start again as new open versions, the contract becomes active
    and evergreen, and a reactivation is recorded.

    Raises ValidationError when the contract is not cancelled or ended, ``effective_on`` is not after
    its last day, or no line ran until then; ``ContractChangeRefused`` when ``effective_on`` is in an
    invoiced period.
    """
    if contract.status not in (Contract.Status.CANCELLED, Contract.Status.ENDED) or contract.end_date is None:
        raise ValidationError(_("Only a cancelled or ended contract can be reactivated."))
    if effective_on <= contract.end_date:
        raise ValidationError({"effective_on": _("The contract runs until %(day)s: reactivate it from %(next)s or later.")
                               % {"day": contract.end_date.isoformat(),
                                  "next": (contract.end_date + timedelta(days=1)).isoformat()}})
    last_lines = list(
        ContractLine.objects.for_tenant(contract.tenant)
        .filter(contract=contract, ends_on=contract.end_date)
        .exclude(kind=ContractLine.Kind.ONE_TIME)
    )
    if not last_lines:
        raise ValidationError(_("No line ran until the contract's last day: add lines to it instead."))
    contract_change_check(contract=contract, effective_on=effective_on)
    contract.status = Contract.Status.ACTIVE
    contract.end_date = None
    save_validated(contract)
    for line in last_lines:
        resumed = _add_line(
            contract,
            LineSpec(description=line.description, kind=line.kind, quantity=line.quantity, unit_price=line.unit_price,
                     starts_on=effective_on, discount_percent=line.discount_percent),
        )
        contract_line_versioned.send(sender=ContractLine, previous=line, line=resumed)
    names = ", ".join(line.description for line in last_lines)
    _record(contract, ContractChange.Kind.REACTIVATION, effective_on, f"Reactivated: {names}", created_by)
    _changed(contract)
    return contract


class ChangeAction(TextChoices):
    """The dated changes a started contract takes (the admin's buttons, the API's ``action``)."""

    UPGRADE = "upgrade", _("Upgrade")
    DOWNGRADE = "downgrade", _("Downgrade")
    CHANGE_QUANTITY = "change_quantity", _("Change quantity")
    CHANGE_PRICE = "change_price", _("Change price")
    ADD_LINE = "add_line", _("Add line")
    CANCEL = "cancel", _("Cancel")
    REACTIVATE = "reactivate", _("Reactivate")


LINE_ACTIONS = {ChangeAction.UPGRADE, ChangeAction.DOWNGRADE, ChangeAction.CHANGE_QUANTITY, ChangeAction.CHANGE_PRICE}


@transaction.atomic
def contract_change(
    *,
    contract: Contract,
    action: str,
    effective_on: date,
    line: ContractLine | None = None,
    quantity: Decimal | None = None,
    unit_price: Money | None = None,
    new_line: LineSpec | None = None,
    created_by=None,
) -> ContractChange:
    """Make one dated change (a ``ChangeAction``) of a started contract from ``effective_on``, through
    the services above, and return the ContractChange it recorded.

    - line actions take ``line`` (a line of this contract) and a new ``quantity`` (change quantity),
      a new ``unit_price`` (change price) or either (upgrade, downgrade, which must go that way);
    - ``add_line`` takes ``new_line``, which starts on ``effective_on``;
    - ``cancel`` makes ``effective_on`` the first day without the contract (its last day is the day
      before); ``reactivate`` brings a cancelled contract back from ``effective_on``.

    Raises ValidationError (messages keyed by those argument names) for a draft contract (edit it
    directly), a missing or inconsistent argument or anything the services refuse, and
    ``ContractChangeRefused`` for a date in an invoiced period. Nothing is written then.
    """
    if contract.status == Contract.Status.DRAFT:
        raise ValidationError(_("A draft contract has not started: edit its lines directly, then activate it."))
    # One change of a contract at a time: a second one made meanwhile sees the line versions the
    # first one wrote (an ended line then refuses a change after its end).
    Contract.objects.for_tenant(contract.tenant).select_for_update().filter(pk=contract.pk).first()
    contract.refresh_from_db()
    if line is not None:
        line.refresh_from_db()
    if action in LINE_ACTIONS:
        _line_action(contract, action, effective_on, line, quantity, unit_price, created_by)
    elif action == ChangeAction.ADD_LINE:
        if new_line is None:
            raise ValidationError({"new_line": _("Describe the line to add.")})
        contract_line_add(
            contract=contract,
            spec=replace(new_line, starts_on=effective_on),
            created_by=created_by,
        )
    elif action == ChangeAction.CANCEL:
        if contract.status != Contract.Status.ACTIVE:
            raise ValidationError(_("Only an active contract can be cancelled."))
        if effective_on <= contract.start_date:
            raise ValidationError({"effective_on": _("The contract starts on %(day)s: cancel it from the day after.")
                                   % {"day": contract.start_date.isoformat()}})
        contract_cancel(contract=contract, last_day=effective_on - timedelta(days=1), created_by=created_by)
    elif action == ChangeAction.REACTIVATE:
        contract_reactivate(contract=contract, effective_on=effective_on, created_by=created_by)
    else:
        raise ValidationError({"action": _("Unknown change %(action)r.") % {"action": action}})
    return ContractChange.objects.for_tenant(contract.tenant).filter(contract=contract).latest("id")


def _line_action(contract, action, effective_on, line, quantity, unit_price, created_by):
    if line is None or line.contract_id != contract.pk:
        raise ValidationError({"line": _("Choose a line of this contract.")})
    if action == ChangeAction.CHANGE_QUANTITY:
        unit_price = None
        if quantity is None:
            raise ValidationError({"quantity": _("Give the new quantity.")})
    elif action == ChangeAction.CHANGE_PRICE:
        quantity = None
        if unit_price is None:
            raise ValidationError({"unit_price": _("Give the new unit price.")})
    else:
        if quantity is None and unit_price is None:
            raise ValidationError(_("Give a new quantity or a new unit price."))
        kind = line_change_kind(
            line=line,
            quantity=line.quantity if quantity is None else Decimal(quantity),
            unit_price=line.unit_price if unit_price is None else unit_price,
        )
        if kind != action:
            raise ValidationError(
                _("That lowers the line's value: record it as a downgrade.")
                if action == ChangeAction.UPGRADE
                else _("That raises the line's value: record it as an upgrade.")
            )
    contract_line_change(
        line=line, effective_on=effective_on, quantity=quantity, unit_price=unit_price, created_by=created_by
    )

"""Who may refuse a dated contract change, without customers knowing who they are.

History is never rewritten (the Stripe and Lago rule): a change dated into a period that is already
invoiced for good would silently alter a finalized invoice, so it is refused, and the past is
corrected with a credit note instead. Knowing which periods are invoiced is billing's business, and
``customers`` must not import ``billing`` (``tests/architecture``). So this is dependency inversion,
like ``customers.roles.register_areas``: a higher app registers a guard here from its
``AppConfig.ready`` (billing registers ``billing.change_guards.finalized_period_refusal``), and the
contract services in ``customers.services`` ask every registered guard before they write.

A guard is a callable ``guard(*, contract, effective_on) -> ChangeRefusal | None``: ``effective_on``
is the first day the change alters (a new line version's first day, a cancelled contract's first day
without it). It returns None to allow the change.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError

from customers.models import Contract


@dataclass(frozen=True)
class ChangeRefusal:
    """Why a change dated ``effective_on`` is refused: a message for people (already translated), the
    document that stands in the way (e.g. an invoice number) and the first date a change may take."""

    message: str
    document: str
    first_open_date: date | None


class ContractChangeRefused(ValidationError):
    """A ValidationError on ``effective_on`` that keeps the refusal; the API answers it with 409."""

    def __init__(self, refusal: ChangeRefusal):
        super().__init__({"effective_on": [ValidationError(refusal.message, code="period_finalized")]})
        self.refusal = refusal


Guard = Callable[..., ChangeRefusal | None]
_GUARDS: dict[str, Guard] = {}


def register_change_guard(name: str, guard: Guard) -> None:
    """Register ``guard`` under ``name`` (registering the same name again replaces it, so a second
    ``ready`` is harmless)."""
    _GUARDS[name] = guard


def contract_change_refusal(*, contract, effective_on: date) -> ChangeRefusal | None:
    """The first registered guard's refusal of a change of ``contract`` from ``effective_on``, or None.

    A draft contract was never billed: nothing refuses a change of it."""
    if contract.status == Contract.Status.DRAFT:
        return None
    for guard in _GUARDS.values():
        refusal = guard(contract=contract, effective_on=effective_on)
        if refusal is not None:
            return refusal
    return None


def contract_change_check(*, contract, effective_on: date) -> None:
    """Raise ``ContractChangeRefused`` when a registered guard refuses the change; see the module."""
    refusal = contract_change_refusal(contract=contract, effective_on=effective_on)
    if refusal is not None:
        raise ContractChangeRefused(refusal)

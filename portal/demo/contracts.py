"""Contract history through the services, so every line version and ContractChange is real."""

from dataclasses import dataclass
from datetime import date

from customers.models import Contract, ContractLine, Customer
from customers.services import LineSpec, contract_cancel, contract_create, contract_line_change


@dataclass
class Subscription:
    """A running contract and its current line versions by a short key (``"plan"``, ``"overage"``)."""

    contract: Contract
    lines: dict[str, ContractLine]

    def change(self, key: str, *, effective_on: date, unit_price=None, quantity=None) -> None:
        """A dated new version of one line (an upgrade or downgrade), made by the account manager."""
        self.lines[key] = contract_line_change(
            line=self.lines[key],
            effective_on=effective_on,
            unit_price=unit_price,
            quantity=quantity,
            created_by=self.contract.customer.account_manager,
        )

    def cancel(self, *, last_day: date) -> None:
        contract_cancel(contract=self.contract, last_day=last_day, created_by=self.contract.customer.account_manager)


def subscribe(
    customer: Customer,
    *,
    title: str,
    start: date,
    lines: dict[str, LineSpec],
    billing_interval: int = 1,
    end: date | None = None,
    status: str = Contract.Status.ACTIVE,
) -> Subscription:
    """Create a signed contract (signed a few days before it starts) and return it with its lines."""
    contract = contract_create(
        customer=customer,
        title=title,
        start_date=start,
        end_date=end,
        lines=list(lines.values()),
        billing_interval=billing_interval,
        status=status,
        signed_on=start,
        created_by=customer.account_manager,
    )
    created = ContractLine.objects.for_tenant(customer.tenant).filter(contract=contract).order_by("id")
    return Subscription(contract=contract, lines=dict(zip(lines.keys(), created)))


def project_delivered(contract: Contract, *, last_day: date, today: date) -> Contract:
    """Close a one-off project contract as the account manager does once it is delivered.

    A won deal becomes an open-ended contract; a delivered project gets its last day (and is marked
    ended once that day has passed), so a retainer signed months later is not mistaken for an
    upgrade of a project still running. This is an edit, not a commercial change: no ContractChange.
    """
    contract.end_date = last_day
    if last_day < today:
        contract.status = Contract.Status.ENDED
    contract.full_clean()
    contract.save()
    for line in ContractLine.objects.for_tenant(contract.tenant).filter(contract=contract, ends_on__isnull=True):
        line.ends_on = last_day
        line.full_clean()
        line.save()
    return contract

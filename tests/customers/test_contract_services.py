"""Contract history as dated changes: upgrades, downgrades, cancellations, reactivations."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from customers.models import Contract, ContractChange, ContractLine
from customers.money import Money
from customers.services import LineSpec, contract_cancel, contract_create, contract_line_change
from customers.tenancy import tenant_scope
from tests.customers.factories import CustomerFactory


@pytest.fixture
def customer(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_b)  # a second tenant, so a missing filter would show
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    with tenant_scope(tenant_a):  # related managers (contract.lines) are scoped like every query
        yield customer


def _plan(customer, start, price="99.00", kind=ContractLine.Kind.RECURRING):
    return contract_create(
        customer=customer,
        title="Professional plan",
        start_date=start,
        lines=[LineSpec(description="Plan fee", kind=kind, unit_price=Money(price, "USD"))],
    )


def _kinds(contract):
    return list(ContractChange.objects.for_tenant(contract.tenant).filter(contract__customer=contract.customer)
                .order_by("effective_on", "id").values_list("kind", "effective_on"))


def test_first_contract_is_new_and_numbered(customer):
    contract = _plan(customer, date(2025, 1, 1))
    assert contract.reference == "C-00001"
    assert _kinds(contract) == [("new", date(2025, 1, 1))]


def test_price_change_ends_the_old_line_and_starts_a_new_version(customer):
    contract = _plan(customer, date(2025, 1, 1))
    line = contract.lines.get()
    new_line = contract_line_change(line=line, effective_on=date(2025, 3, 1), unit_price=Money("299.00", "USD"))
    line.refresh_from_db()
    assert (line.starts_on, line.ends_on, line.unit_price) == (date(2025, 1, 1), date(2025, 2, 28), Money("99", "USD"))
    assert (new_line.starts_on, new_line.ends_on, new_line.unit_price) == (date(2025, 3, 1), None, Money("299", "USD"))
    change = ContractChange.objects.for_tenant(customer.tenant).get(kind="upgrade")
    assert change.note == "Plan fee: unit price $99.00 → $299.00"
    assert change.effective_on == date(2025, 3, 1)


def test_lower_quantity_is_a_downgrade(customer):
    contract = contract_create(
        customer=customer, title="Seats", start_date=date(2025, 1, 1),
        lines=[LineSpec(description="Seats", kind=ContractLine.Kind.PER_SEAT, quantity=Decimal(10),
                        unit_price=Money("15.00", "USD"))],
    )
    contract_line_change(line=contract.lines.get(), effective_on=date(2025, 6, 1), quantity=Decimal(4))
    assert _kinds(contract)[-1] == ("downgrade", date(2025, 6, 1))


def test_cheaper_usage_price_is_a_downgrade(customer):
    contract = _plan(customer, date(2025, 1, 1), price="0.50", kind=ContractLine.Kind.USAGE)
    contract_line_change(line=contract.lines.get(), effective_on=date(2025, 2, 1), unit_price=Money("0.30", "USD"))
    assert _kinds(contract)[-1] == ("downgrade", date(2025, 2, 1))


def test_change_outside_the_line_is_refused_and_saves_nothing(customer):
    contract = _plan(customer, date(2025, 1, 1))
    with pytest.raises(ValidationError):
        contract_line_change(line=contract.lines.get(), effective_on=date(2025, 1, 1), quantity=Decimal(2))
    assert ContractLine.objects.for_tenant(customer.tenant).count() == 1


def test_cancel_then_return_is_a_cancellation_and_a_reactivation(customer):
    first = _plan(customer, date(2025, 1, 1))
    contract_cancel(contract=first, last_day=date(2025, 4, 30))
    second = _plan(customer, date(2025, 9, 1))
    first.refresh_from_db()
    assert first.status == Contract.Status.CANCELLED and first.end_date == date(2025, 4, 30)
    assert first.lines.get().ends_on == date(2025, 4, 30)
    assert _kinds(second) == [
        ("new", date(2025, 1, 1)),
        ("cancellation", date(2025, 5, 1)),
        ("reactivation", date(2025, 9, 1)),
    ]


def test_second_contract_beside_a_running_one_is_an_upgrade(customer):
    _plan(customer, date(2025, 1, 1))
    second = _plan(customer, date(2025, 5, 1), price="50.00")
    assert _kinds(second)[-1] == ("upgrade", date(2025, 5, 1))


def test_retainer_after_a_finished_one_off_project_is_new(customer):
    project = _plan(customer, date(2025, 1, 1), price="300000.00", kind=ContractLine.Kind.ONE_TIME)
    contract_cancel(contract=project, last_day=date(2025, 2, 28))
    retainer = _plan(customer, date(2025, 6, 1), price="8333.33")
    assert _kinds(retainer)[-1] == ("new", date(2025, 6, 1))


def test_line_in_another_currency_refuses_the_whole_contract(customer):
    with pytest.raises(ValidationError) as error:
        contract_create(
            customer=customer, title="Mixed", start_date=date(2025, 1, 1),
            lines=[LineSpec(description="Fee", kind=ContractLine.Kind.RECURRING, unit_price=Money("10", "SEK"))],
        )
    assert "differs from its contract's (USD)" in str(error.value)
    assert Contract.objects.for_tenant(customer.tenant).count() == 0

"""Contract changes only as dated actions (``customers.services.contract_change``), refused inside a
finalized period (billing's guard in ``customers.change_guards``), with the next draft's exact amounts."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import Invoice, PriceTerms
from billing.services import price_terms_set
from customers.change_guards import ContractChangeRefused
from customers.models import Contract, ContractLine
from customers.money import Money
from customers.services import (
    ChangeAction,
    LineSpec,
    contract_activate,
    contract_change,
    contract_create,
    contract_line_add,
)
from customers.tenancy import tenant_scope
from tests.customers.contract_history import (
    NOV,
    OCT,
    SEP,
    invoice_month,
    november_draft,
    seats_contract,
    timeline,
    versions,
)
from tests.customers.factories import CustomerFactory

def test_upgrade_from_the_first_open_day_writes_a_change_two_versions_and_the_next_draft(seats_world):
    contract, line = seats_world["contract"], seats_world["line"]
    change = contract_change(contract=contract, action=ChangeAction.UPGRADE, effective_on=NOV[0], line=line,
                             quantity=Decimal(90))
    assert (change.kind, change.effective_on, change.note) == ("upgrade", NOV[0], "Seats: quantity 79 → 90")
    assert timeline(contract) == [("new", SEP[0], "Team seats starts"), ("upgrade", NOV[0], "Seats: quantity 79 → 90")]
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], OCT[1]), ("Seats", Decimal(90), NOV[0], None)]
    assert november_draft(seats_world["tenant"]) == ("draft", Decimal("1350.00"), Decimal("1350.00"))
    # The invoiced months are exactly as they were issued.
    for key in ("sep", "oct"):
        seats_world[key].refresh_from_db()
        assert (seats_world[key].status, seats_world[key].total) == ("finalized", Decimal("1185.00"))


def test_change_in_the_middle_of_the_open_month_prorates_the_next_draft_by_days(seats_world):
    contract_change(contract=seats_world["contract"], action=ChangeAction.CHANGE_QUANTITY, effective_on=date(2026, 11, 16),
                    line=seats_world["line"], quantity=Decimal(90))
    # 79 × 15 × 15/30 + 90 × 15 × 15/30
    assert november_draft(seats_world["tenant"]) == ("draft", Decimal("1267.50"), Decimal("1267.50"))


def test_change_dated_in_a_finalized_period_is_refused_naming_the_invoice_and_the_first_open_date(seats_world):
    contract = seats_world["contract"]
    with pytest.raises(ContractChangeRefused) as refused:
        contract_change(contract=contract, action=ChangeAction.CHANGE_PRICE, effective_on=date(2026, 10, 15),
                        line=seats_world["line"], unit_price=Money("18.00", "USD"))
    refusal = refused.value.refusal
    assert (refusal.document, refusal.first_open_date) == (seats_world["oct"].number, NOV[0])
    assert refusal.message == (
        f"2026-10-15 falls in a period already invoiced: invoice {seats_world['oct'].number} (2026-10-01 – 2026-10-31) is "
        "finalized. History is never rewritten: date the change from 2026-11-01, the first open date, and correct "
        "the past with a credit note."
    )
    assert refused.value.message_dict == {"effective_on": [refusal.message]}
    assert timeline(contract) == [("new", SEP[0], "Team seats starts")]
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]


def test_change_before_a_later_finalized_month_is_refused_too(seats_world):
    with pytest.raises(ContractChangeRefused) as refused:
        contract_change(contract=seats_world["contract"], action=ChangeAction.CANCEL, effective_on=date(2026, 9, 20))
    assert (refused.value.refusal.document, refused.value.refusal.first_open_date) == (seats_world["sep"].number, NOV[0])
    seats_world["contract"].refresh_from_db()
    assert (seats_world["contract"].status, seats_world["contract"].end_date) == ("active", None)


def test_a_draft_or_void_invoice_does_not_block_a_change(seats_world):
    tenant = seats_world["tenant"]
    invoice_month(tenant, NOV, finalize=False)  # November is a draft
    seats_world["oct"].status, seats_world["oct"].voided_at = Invoice.Status.VOID, seats_world["oct"].finalized_at
    seats_world["oct"].save()
    change = contract_change(contract=seats_world["contract"], action=ChangeAction.CHANGE_PRICE,
                             effective_on=date(2026, 10, 1), line=seats_world["line"], unit_price=Money("20.00", "USD"))
    assert (change.kind, change.effective_on, change.note) == ("upgrade", OCT[0], "Seats: unit price $15.00 → $20.00")


def test_cancel_then_reactivate_from_dates(seats_world):
    contract = seats_world["contract"]
    contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=date(2026, 12, 1))
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("cancelled", NOV[1])
    contract_change(contract=contract, action=ChangeAction.REACTIVATE, effective_on=date(2027, 2, 1))
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("active", None)
    assert timeline(contract)[1:] == [
        ("cancellation", date(2026, 12, 1), "Cancelled"),
        ("reactivation", date(2027, 2, 1), "Reactivated: Seats"),
    ]
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], NOV[1]), ("Seats", Decimal(79), date(2027, 2, 1), None)]


def test_reactivating_inside_the_contracts_own_dates_is_refused(seats_world):
    contract = seats_world["contract"]
    contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=date(2026, 12, 1))
    with pytest.raises(ValidationError) as error:
        contract_change(contract=contract, action=ChangeAction.REACTIVATE, effective_on=date(2026, 11, 20))
    assert error.value.message_dict == {
        "effective_on": ["The contract runs until 2026-11-30: reactivate it from 2026-12-01 or later."]}


def test_add_line_and_discount_from_a_date(seats_world):
    contract = seats_world["contract"]
    contract_change(contract=contract, action=ChangeAction.ADD_LINE, effective_on=NOV[0], new_line=LineSpec(
        description="Support", kind=ContractLine.Kind.RECURRING, unit_price=Money("200.00", "USD")))
    contract_change(contract=contract, action=ChangeAction.ADD_LINE, effective_on=NOV[0], new_line=LineSpec(
        description="Loyalty", kind=ContractLine.Kind.DISCOUNT, unit_price=Money("0", "USD"),
        discount_percent=Decimal(10)))
    assert timeline(contract)[1:] == [
        ("upgrade", NOV[0], "Support added: 1 × $200.00"),
        ("downgrade", NOV[0], "Loyalty added: 10 % off"),
    ]
    # (79 × 15 + 200) − 10 %
    assert november_draft(seats_world["tenant"])[2] == Decimal("1246.50")


def test_an_upgrade_that_lowers_the_value_is_refused(seats_world):
    with pytest.raises(ValidationError) as error:
        contract_change(contract=seats_world["contract"], action=ChangeAction.UPGRADE, effective_on=NOV[0],
                        line=seats_world["line"], quantity=Decimal(50))
    assert error.value.messages == ["That lowers the line's value: record it as a downgrade."]
    assert len(versions(seats_world["contract"])) == 1


def test_a_draft_contract_takes_no_dated_change(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    with tenant_scope(tenant_a):
        contract = contract_create(customer=customer, title="Draft", start_date=SEP[0], status=Contract.Status.DRAFT,
                                   lines=[LineSpec(description="Fee", kind="recurring", unit_price=Money(10, "USD"))])
        with pytest.raises(ValidationError) as error:
            contract_change(contract=contract, action=ChangeAction.CHANGE_QUANTITY, effective_on=NOV[0],
                            line=contract.lines.get(), quantity=Decimal(2))
    assert error.value.messages == ["A draft contract has not started: edit its lines directly, then activate it."]


def test_a_started_contract_may_not_begin_in_an_invoiced_month_but_a_draft_may(seats_world):
    customer, number = seats_world["contract"].customer, seats_world["oct"].number
    with pytest.raises(ContractChangeRefused) as refused:
        seats_contract(customer, start=date(2026, 10, 1))
    assert (refused.value.refusal.document, refused.value.refusal.first_open_date) == (number, NOV[0])
    draft = contract_create(customer=customer, title="Add-on", start_date=date(2026, 10, 1),
                            status=Contract.Status.DRAFT,
                            lines=[LineSpec(description="Fee", kind="recurring", unit_price=Money(10, "USD"))])
    with pytest.raises(ContractChangeRefused):
        contract_activate(contract=draft)
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert Contract.objects.for_tenant(customer.tenant).count() == 2
    draft.start_date = NOV[0]
    draft.save()
    ContractLine.objects.for_tenant(customer.tenant).filter(contract=draft).update(starts_on=NOV[0])
    contract_activate(contract=draft)
    assert timeline(draft) == [("upgrade", NOV[0], "Add-on starts")]


def test_a_new_version_of_a_usage_line_keeps_its_price_terms(seats_world):
    contract = seats_world["contract"]
    usage = contract_line_add(contract=contract, spec=LineSpec(
        description="Processed jobs", kind=ContractLine.Kind.USAGE, unit_price=Money("0.50", "USD"), starts_on=NOV[0]))
    terms = {"included": 100, "overage_unit_price": "0.50", "grace_percent": 1}
    price_terms_set(contract_line=usage, charge_model="included_quota", metric="processed_jobs", terms=terms)
    contract_change(contract=contract, action=ChangeAction.CHANGE_PRICE, effective_on=date(2026, 12, 1), line=usage,
                    unit_price=Money("0.30", "USD"))
    contract_change(contract=contract, action=ChangeAction.CANCEL, effective_on=date(2027, 1, 1))
    contract_change(contract=contract, action=ChangeAction.REACTIVATE, effective_on=date(2027, 3, 1))
    carried = list(PriceTerms.objects.for_tenant(contract.tenant).filter(contract_line__contract=contract)
                   .order_by("contract_line__starts_on").values_list("contract_line__starts_on", "charge_model", "terms"))
    assert carried == [(NOV[0], "included_quota", terms), (date(2026, 12, 1), "included_quota", terms),
                       (date(2027, 3, 1), "included_quota", terms)]

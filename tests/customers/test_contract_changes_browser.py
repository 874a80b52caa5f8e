"""An account manager changes a started contract from a date in a real headless Chromium (Debian's):
the upgrade lands in the timeline and the next draft; a retroactive change is refused with its message."""

from datetime import date
from decimal import Decimal

import pytest

from customers.models import Role
from tests.browser import BROWSER_MARKS, admin_login, chromium_page
from tests.customers.contract_history import NOV, SEP, november_draft, timeline, versions

# About 5 s each alone (Chromium's start, a login, four pages), 8–11 s on the shared machine.
pytestmark = [*BROWSER_MARKS, pytest.mark.slow]


def open_change_form(page, live_server, contract, action):
    """Log in as the account manager maria, open the contract and press the button of ``action``;
    returns how many quantity inputs the contract's line inline offered."""
    admin_login(page, live_server, "maria", "pass-word-123")
    page.goto(f"{live_server.url}/admin/customers/contract/{contract.pk}/change/")
    quantity_inputs = page.locator('input[name="lines-0-quantity"]').count()
    page.click(f'a[data-change-action="{action}"]')
    return quantity_inputs


def submit(page, effective_on, line, **fields):
    page.fill('input[name="effective_on"]', effective_on)
    page.select_option('select[name="line"]', str(line.pk))
    for name, value in fields.items():
        page.fill(f'input[name="{name}"]', value)
    page.click('input[type="submit"]')
    page.wait_for_load_state()


def test_upgrade_recorded_from_a_date_shows_in_the_timeline_and_the_next_draft(live_server, seats_world, member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER, username="maria")

    with chromium_page() as page:
        quantity_inputs = open_change_form(page, live_server, contract, "upgrade")
        submit(page, "2026-11-01", line, quantity="90")
        message = page.locator("ul.messagelist").inner_text()
        timeline_text = page.locator("#changes-group").inner_text()

    assert quantity_inputs == 0  # the inline's seats are read-only on a started contract
    assert "Upgrade from 2026-11-01 recorded: Seats: quantity 79 → 90" in message
    assert "Seats: quantity 79 → 90" in timeline_text and "Team seats starts" in timeline_text
    assert timeline(contract) == [("new", SEP[0], "Team seats starts"), ("upgrade", NOV[0], "Seats: quantity 79 → 90")]
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], date(2026, 10, 31)), ("Seats", Decimal(90), NOV[0], None)]
    # The next draft, computed by billing's draft run: 90 seats × $15.
    assert november_draft(seats_world["tenant"]) == ("draft", Decimal("1350.00"), Decimal("1350.00"))


def test_a_retroactive_change_is_refused_with_the_invoice_and_the_first_open_date(live_server, seats_world,
                                                                                  member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    number = seats_world["oct"].number
    member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER, username="maria")

    with chromium_page() as page:
        open_change_form(page, live_server, contract, "change_price")
        submit(page, "2026-10-15", line, unit_price="18")
        error = page.locator(".errorlist").first.inner_text()
        page.click("#use-first-open-date")
        page.wait_for_load_state()
        offered = page.input_value('input[name="effective_on"]')

    assert error == (
        f"2026-10-15 falls in a period already invoiced: invoice {number} (2026-10-01 – 2026-10-31) is finalized. "
        "History is never rewritten: date the change from 2026-11-01, the first open date, and correct the past "
        "with a credit note."
    )
    assert offered == "2026-11-01"
    assert timeline(contract) == [("new", SEP[0], "Team seats starts")]
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]

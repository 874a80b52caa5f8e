"""In the admin a started contract changes only by its dated buttons; its lines are read-only elsewhere."""

from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

from customers.models import Contract, ContractLine, Role
from customers.money import Money
from customers.services import LineSpec, contract_create
from customers.tenancy import tenant_scope
from tests.customers.contract_history import NOV, SEP, november_draft, timeline, versions
from tests.customers.factories import CustomerFactory
from tests.customers.test_admin_contracts import _inline_management


class _FormFields(HTMLParser):
    """The values a browser would post from a page's forms (inputs, selected options, textareas)."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "checkbox"):
            self.data[name] = attrs.get("value") or ""
        elif tag == "input" and name and "checked" in attrs:
            self.data[name] = "on"
        elif tag == "select":
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def form_data(response) -> dict:
    parser = _FormFields()
    parser.feed(response.content.decode())
    parser.data.pop("csrfmiddlewaretoken", None)
    return parser.data


def change_url(contract):
    return f"/admin/customers/contract/{contract.pk}/change/"


def action_url(contract, action):
    return f"/admin/customers/contract/{contract.pk}/change-from-date/{action}/"


def test_started_contract_shows_the_dated_buttons_and_its_lines_read_only(client, seats_world, member_factory):
    contract = seats_world["contract"]
    client.force_login(member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER))
    html = client.get(change_url(contract)).content.decode()
    for action in ("upgrade", "downgrade", "change_quantity", "change_price", "add_line", "cancel"):
        assert f'href="{action_url(contract, action)}"' in html
    assert action_url(contract, "reactivate") not in html
    assert 'name="lines-0-description"' in html
    for locked in ("quantity", "unit_price_0", "starts_on", "ends_on", "kind"):
        assert f'name="lines-0-{locked}"' not in html
    assert 'name="start_date"' not in html and 'name="end_date"' not in html and 'name="status"' not in html
    assert "Team seats starts" in html  # the change timeline


def test_seats_posted_in_the_inline_of_a_started_contract_change_nothing(client, seats_world, member_factory):
    contract = seats_world["contract"]
    client.force_login(member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER))
    data = form_data(client.get(change_url(contract)))
    data.update({"lines-0-quantity": "90", "lines-0-ends_on": "2026-10-31", "end_date": "2026-10-31",
                 "lines-TOTAL_FORMS": "2", "lines-1-description": "Extra", "lines-1-kind": "recurring",
                 "lines-1-quantity": "1", "lines-1-unit_price_0": "5", "lines-1-unit_price_1": "USD",
                 "lines-1-starts_on": "2026-11-01", "lines-1-contract": str(contract.pk)})
    data["title"] = "Team seats (renamed)"
    assert client.post(change_url(contract), data).status_code == 302
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]
    assert timeline(contract) == [("new", SEP[0], "Team seats starts")]
    contract.refresh_from_db()
    assert (contract.title, contract.end_date) == ("Team seats (renamed)", None)


def test_a_draft_contracts_lines_stay_editable_inline(client, tenant_a, tenant_b, member_factory):
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    with tenant_scope(tenant_a):
        contract = contract_create(customer=customer, title="Draft", start_date=NOV[0], status=Contract.Status.DRAFT,
                                   lines=[LineSpec(description="Seats", kind=ContractLine.Kind.PER_SEAT,
                                                   quantity=Decimal(79), unit_price=Money("15.00", "USD"))])
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    page = client.get(change_url(contract))
    assert action_url(contract, "upgrade") not in page.content.decode()
    data = form_data(page)
    data["lines-0-quantity"] = "90"
    assert client.post(change_url(contract), data).status_code == 302
    assert versions(contract) == [("Seats", Decimal(90), NOV[0], None)]
    assert timeline(contract) == []


def test_upgrade_button_records_a_dated_change_and_the_next_draft(client, seats_world, member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    client.force_login(member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER))
    page = client.get(action_url(contract, "upgrade")).content.decode()
    assert 'name="effective_on"' in page and f'value="{line.pk}"' in page
    response = client.post(action_url(contract, "upgrade"), {"effective_on": "2026-11-01", "line": line.pk,
                                                              "quantity": "90", "unit_price": ""})
    assert response.status_code == 302 and response["Location"] == change_url(contract)
    assert timeline(contract)[-1] == ("upgrade", NOV[0], "Seats: quantity 79 → 90")
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], date(2026, 10, 31)), ("Seats", Decimal(90), NOV[0], None)]
    assert november_draft(seats_world["tenant"]) == ("draft", Decimal("1350.00"), Decimal("1350.00"))


def test_a_retroactive_change_is_refused_with_the_invoice_and_the_first_open_date(client, seats_world, member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    client.force_login(member_factory(seats_world["tenant"], Role.FINANCE))
    response = client.post(action_url(contract, "change_price"), {"effective_on": "2026-10-15", "line": line.pk,
                                                                   "unit_price": "18"})
    html = response.content.decode()
    assert response.status_code == 200
    assert f"invoice {seats_world['oct'].number} (2026-10-01 – 2026-10-31) is finalized" in html
    assert "date the change from 2026-11-01, the first open date" in html
    assert f'href="{action_url(contract, "change_price")}?effective_on=2026-11-01"' in html
    assert 'value="2026-11-01"' in client.get(f"{action_url(contract, 'change_price')}?effective_on=2026-11-01").content.decode()
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]
    assert timeline(contract) == [("new", SEP[0], "Team seats starts")]


def test_cancel_and_reactivate_buttons(client, seats_world, member_factory):
    contract = seats_world["contract"]
    client.force_login(member_factory(seats_world["tenant"], Role.OWNER))
    assert client.post(action_url(contract, "cancel"), {"effective_on": "2026-12-01"}).status_code == 302
    html = client.get(change_url(contract)).content.decode()
    assert action_url(contract, "reactivate") in html and action_url(contract, "cancel") not in html
    assert client.post(action_url(contract, "reactivate"), {"effective_on": "2027-01-01"}).status_code == 302
    assert [kind for kind, *_ in timeline(contract)] == ["new", "cancellation", "reactivation"]
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("active", None)


def test_missing_or_wrong_input_is_a_form_error_never_a_500(client, seats_world, member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    client.force_login(member_factory(seats_world["tenant"], Role.ACCOUNT_MANAGER))
    missing = client.post(action_url(contract, "change_quantity"), {"effective_on": "2026-11-01", "line": line.pk})
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    lower = client.post(action_url(contract, "upgrade"), {"effective_on": "2026-11-01", "line": line.pk, "quantity": "50"})
    assert "That lowers the line&#x27;s value: record it as a downgrade." in lower.content.decode()
    same_day = client.post(action_url(contract, "add_line"), {"effective_on": "2026-11-01", "description": "Support",
                                                             "kind": "recurring", "quantity": "1"})
    assert "Give the line&#x27;s unit price." in same_day.content.decode()
    assert client.get(action_url(contract, "rewrite")).status_code == 404
    assert len(timeline(contract)) == 1


def test_viewer_reads_the_timeline_but_has_no_buttons_and_cannot_post(client, seats_world, member_factory):
    contract, line = seats_world["contract"], seats_world["line"]
    client.force_login(member_factory(seats_world["tenant"], Role.VIEWER))
    html = client.get(change_url(contract)).content.decode()
    assert "Team seats starts" in html and "change-from-date" not in html
    response = client.post(action_url(contract, "change_quantity"), {"effective_on": "2026-11-01", "line": line.pk,
                                                                      "quantity": "90"})
    assert response.status_code == 403
    assert len(timeline(contract)) == 1


def test_another_tenants_contract_is_not_found(client, seats_world, tenant_b, member_factory):
    client.force_login(member_factory(tenant_b, Role.OWNER))
    assert client.get(action_url(seats_world["contract"], "upgrade")).status_code == 404


def test_bulk_delete_keeps_started_contracts(client, seats_world, member_factory):
    contract = seats_world["contract"]
    client.force_login(member_factory(seats_world["tenant"], Role.OWNER))
    response = client.post("/admin/customers/contract/", {"action": "delete_selected", "_selected_action": [contract.pk],
                                                          "post": "yes"})
    assert response.status_code in (200, 403)
    with tenant_scope(seats_world["tenant"]):
        assert Contract.objects.for_tenant(seats_world["tenant"]).filter(pk=contract.pk).exists()
    assert client.get(f"{change_url(contract).replace('change/', 'delete/')}").status_code == 403


def test_a_contract_added_as_active_in_an_invoiced_month_is_refused_in_its_form(client, seats_world, member_factory):
    customer, tenant = seats_world["contract"].customer, seats_world["tenant"]
    client.force_login(member_factory(tenant, Role.ACCOUNT_MANAGER))
    data = {
        "customer": customer.pk, "reference": "", "title": "Add-on", "status": "active", "currency": "USD",
        "billing_interval": "1", "start_date": "2026-10-01", "end_date": "", "renewal_term_months": "",
        "signed_on": "", "notes": "", **_inline_management("lines", 1),
        "lines-0-description": "Fee", "lines-0-kind": "recurring", "lines-0-quantity": "1",
        "lines-0-unit_price_0": "10.00", "lines-0-unit_price_1": "USD", "lines-0-starts_on": "2026-10-01",
        **_inline_management("changes", 0),
    }
    refused = client.post("/admin/customers/contract/add/", data)
    assert refused.status_code == 200
    assert f"invoice {seats_world['oct'].number} (2026-10-01 – 2026-10-31) is finalized" in refused.content.decode()
    with tenant_scope(tenant):
        assert Contract.objects.for_tenant(tenant).count() == 1
    assert client.post("/admin/customers/contract/add/", {**data, "status": "draft"}).status_code == 302

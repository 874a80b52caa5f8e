"""Finance review: one amount due everywhere, finalizing a running period, the invoice page's buttons, staff PDFs."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing.models import CreditRequest, Invoice
from billing.selectors import invoice_with_balance_due
from billing.services import credit_request_create, invoice_finalize, invoice_mark_paid
from customers.models import Role
from customers.periods import month_end, month_start, tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

NBSP = "\u00a0"
D = Decimal


@pytest.fixture
def world(tenant_a, tenant_b, settings, tmp_path):
    """A USD invoice of 424.00 in tenant_a, a SEK invoice of 15 431,25 kr (25 % VAT) in tenant_b;
    their PDFs are stored in a temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind Analytics LLC", language="en", external_ref="northwind")
        sjoberg = CustomerFactory(
            tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK", external_ref="sjoberg"
        )
        users = {
            c.external_ref: PortalAccessFactory(customer=c, tenant=c.tenant, user=UserFactory(username=c.external_ref)).user
            for c in (northwind, sjoberg)
        }
    usd = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    sek = build_invoice(sjoberg, lines=[("Konsulttimmar", "10", "1234.50")], vat_rate="25")
    return {"usd": usd, "sek": sek, "northwind": users["northwind"], "sjoberg": users["sjoberg"]}


def due(invoice):
    fresh = invoice_with_balance_due(invoice=invoice)
    return fresh.credited_total, fresh.paid_total, fresh.balance_due


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def staff(client, member_factory, tenant, role=Role.FINANCE):
    client.force_login(member_factory(tenant, role))
    return client


def api(member_factory, tenant, role=Role.FINANCE):
    client = APIClient()
    client.force_login(member_factory(tenant, role))
    return client


# --- the one definition ----------------------------------------------------------------------


def test_amount_due_after_one_and_two_credit_notes_and_payment(world):
    invoice = world["usd"]
    assert due(invoice) == (D("0.00"), D("0.00"), D("424.00"))

    build_credit_note(invoice, amount="150.00")
    assert due(invoice) == (D("150.00"), D("0.00"), D("274.00"))

    build_credit_note(invoice, amount="24.00")
    assert due(invoice) == (D("174.00"), D("0.00"), D("250.00"))

    invoice_mark_paid(invoice=invoice)
    assert due(invoice) == (D("174.00"), D("250.00"), D("0.00"))
    invoice.refresh_from_db()
    assert invoice.amount_due == D("424.00")  # the figure as issued is never rewritten


def test_amount_due_in_sek_counts_the_credit_notes_vat(world):
    build_credit_note(world["sek"], amount="1000.00")  # 1 000 + 25 % VAT = 1 250

    assert due(world["sek"]) == (D("1250.00"), D("0.00"), D("14181.25"))


def test_a_void_invoice_owes_nothing(world):
    from billing.services import invoice_void

    invoice_void(invoice=world["usd"])

    assert due(world["usd"]) == (D("0.00"), D("0.00"), D("0.00"))


def test_balance_credit_inside_the_stored_figure_is_not_counted_twice(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    invoice = build_invoice(customer, lines=[("Fee", "1", "100.00")], credit_applied="30.00")
    build_credit_note(invoice, amount="20.00")

    assert due(invoice) == (D("20.00"), D("0.00"), D("50.00"))


# --- the same figure everywhere --------------------------------------------------------------


def test_admin_list_and_page_show_the_reduced_amount_due(client, member_factory, tenant_a, world):
    build_credit_note(world["usd"], amount="150.00")
    staff(client, member_factory, tenant_a, Role.VIEWER)

    listing = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    page = client.get(reverse("admin:billing_invoice_change", args=[world["usd"].pk])).content.decode()

    assert '<td class="field-total_with_currency">$424.00</td><td class="field-amount_due_now">$274.00</td>' in listing
    assert '<td class="field-period">2026-11</td>' in listing
    assert "$274.00" in page and "$150.00" in page and "$424.00" in page


def test_admin_shows_zero_due_after_mark_paid(client, member_factory, tenant_a, world):
    build_credit_note(world["usd"], amount="150.00")
    build_credit_note(world["usd"], amount="24.00")
    invoice_mark_paid(invoice=world["usd"])
    staff(client, member_factory, tenant_a)

    page = client.get(reverse("admin:billing_invoice_change", args=[world["usd"].pk])).content.decode()

    assert '<div class="readonly">$0.00</div>' in page and '<div class="readonly">$250.00</div>' in page


def test_portal_pages_show_the_reduced_amount_due(client, world):
    build_credit_note(world["usd"], amount="150.00")
    client.force_login(world["northwind"])
    pk = world["usd"].pk

    pages = {name: client.get(url).content.decode() for name, url in
             [("home", "/"), ("list", "/invoices/"), ("detail", f"/invoices/{pk}/")]}

    for name, html in pages.items():
        assert "$274.00" in html, name
    assert "-$150.00" in pages["detail"]


def test_portal_in_swedish_shows_the_reduced_amount_due(client, world):
    build_credit_note(world["sek"], amount="1000.00")
    client.force_login(world["sjoberg"])

    html = client.get(f"/invoices/{world['sek'].pk}/").content.decode()

    assert f"14{NBSP}181,25{NBSP}kr" in html


def test_exports_carry_credit_notes_payment_and_amount_due(client, world):
    build_credit_note(world["usd"], amount="150.00")
    build_credit_note(world["usd"], amount="24.00")
    client.force_login(world["northwind"])
    pk = world["usd"].pk

    totals = json.loads(client.get(f"/invoices/{pk}/export.json").content)["totals"]
    rows = list(csv.reader(io.StringIO(client.get(f"/invoices/{pk}/export.csv").content.decode())))

    assert (totals["total"], totals["credit_notes"], totals["paid"], totals["amount_due"]) == (
        "424.00", "174.00", "0.00", "250.00")
    assert rows[-3:] == [
        ["", "credit_notes", "total", "", "", "174.00", "USD"],
        ["", "paid", "total", "", "", "0.00", "USD"],
        ["", "amount_due", "total", "", "", "250.00", "USD"],
    ]

    invoice_mark_paid(invoice=world["usd"])
    paid = json.loads(client.get(f"/invoices/{pk}/export.json").content)["totals"]
    assert (paid["paid"], paid["amount_due"]) == ("250.00", "0.00")


def test_api_amount_due_after_credit_notes_and_payment(member_factory, tenant_a, world):
    client = api(member_factory, tenant_a, Role.VIEWER)
    url = f"/api/v1/invoices/{world['usd'].pk}/"
    build_credit_note(world["usd"], amount="150.00")

    one = client.get(url).json()
    build_credit_note(world["usd"], amount="24.00")
    listed = client.get("/api/v1/invoices/").json()["results"][0]
    invoice_mark_paid(invoice=world["usd"])
    paid = client.get(url).json()

    assert one["amount_due"] == {"amount": "274.00", "currency": "USD"}
    assert (listed["credit_notes_total"]["amount"], listed["amount_due"]["amount"]) == ("174.00", "250.00")
    assert (paid["paid_total"]["amount"], paid["amount_due"]["amount"]) == ("250.00", "0.00")


def test_pdf_shows_the_amount_due_and_is_rendered_again_after_a_credit_note(
    client, world, django_capture_on_commit_callbacks
):
    client.force_login(world["northwind"])
    url = f"/invoices/{world['usd'].pk}/pdf/"
    before = pdf_text(b"".join(client.get(url).streaming_content))

    with django_capture_on_commit_callbacks(execute=True):
        build_credit_note(world["usd"], amount="150.00")
    after_one = pdf_text(b"".join(client.get(url).streaming_content))
    with django_capture_on_commit_callbacks(execute=True):
        build_credit_note(world["usd"], amount="24.00")
    after_two = pdf_text(b"".join(client.get(url).streaming_content))
    with django_capture_on_commit_callbacks(execute=True):
        invoice_mark_paid(invoice=world["usd"])
    after_paid = pdf_text(b"".join(client.get(url).streaming_content))

    assert "Amount due $424.00" in before and "Credit notes" not in before
    assert "Credit notes -$150.00" in after_one and "Amount due $274.00" in after_one
    assert "Credit notes -$174.00" in after_two and "Amount due $250.00" in after_two
    assert "Paid -$250.00" in after_paid and "Amount due $0.00" in after_paid


def test_invoice_email_shows_the_amount_due_now(world, mailoutbox):
    from billing.delivery import invoice_send

    with platform_scope():
        customer = world["usd"].customer
        customer.billing_emails = ["ap@northwind.example"]
        customer.save()
    build_credit_note(world["usd"], amount="150.00")

    invoice_send(invoice=world["usd"], resend=True)

    assert "Amount due: $274.00" in mailoutbox[-1].body


# --- finalizing a period that is still running ------------------------------------------------


def running_draft(tenant):
    customer = CustomerFactory(tenant=tenant, name="Early Bird Inc")
    today = tenant_today(tenant)
    return build_invoice(
        customer, period_start=month_start(today), period_end=month_end(today), finalize=False,
        lines=[("Platform fee", "1", "90.00")],
    )


def test_finalize_before_the_period_ends_is_refused_without_close_early(tenant_a):
    draft = running_draft(tenant_a)

    with pytest.raises(ValidationError) as refused:
        invoice_finalize(invoice=draft)

    assert refused.value.code == "period_open"
    assert "period already invoiced" in refused.value.messages[0]
    assert f"runs until {draft.period_end.isoformat()}" in refused.value.messages[0]
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.Status.DRAFT, None)


def test_finalize_before_the_period_ends_is_accepted_with_close_early(tenant_a):
    draft = running_draft(tenant_a)

    invoice = invoice_finalize(invoice=draft, close_early=True)

    assert (invoice.status, invoice.number) == (Invoice.Status.FINALIZED, f"ACME-{tenant_today(tenant_a).year}-00001")


def test_api_finalize_needs_close_early_for_a_running_period(member_factory, tenant_a):
    draft = running_draft(tenant_a)
    client = api(member_factory, tenant_a)
    url = f"/api/v1/invoices/{draft.pk}/finalize/"

    refused = client.post(url, {}, format="json")
    bad = client.post(url, {"close_early": "perhaps"}, format="json")
    accepted = client.post(url, {"close_early": True}, format="json")

    assert refused.status_code == 409 and refused.json()["code"] == "period_open"
    assert "period already invoiced" in refused.json()["detail"]
    assert bad.status_code == 400
    assert accepted.status_code == 200 and accepted.json()["status"] == "finalized"


def test_list_action_obeys_the_running_period_rule(client, member_factory, tenant_a):
    draft = running_draft(tenant_a)
    staff(client, member_factory, tenant_a)

    response = client.post(reverse("admin:billing_invoice_changelist"),
                           {"action": "finalize", "_selected_action": [draft.pk], "index": 0}, follow=True)

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT
    assert "period already invoiced" in response.content.decode()


def test_admin_finalize_confirmation_warns_and_needs_the_choice(client, member_factory, tenant_a):
    draft = running_draft(tenant_a)
    staff(client, member_factory, tenant_a)
    url = reverse("admin:billing_invoice_finalize", args=[draft.pk])

    page = client.get(url)
    refused = client.post(url, {})
    draft.refresh_from_db()
    status_after_refusal = draft.status
    accepted = client.post(url, {"close_early": "on"})

    assert page.status_code == 200 and 'name="close_early"' in page.content.decode()
    assert "period already invoiced" in page.content.decode()
    assert refused.status_code == 409 and status_after_refusal == Invoice.Status.DRAFT
    assert accepted.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.Status.FINALIZED, f"ACME-{tenant_today(tenant_a).year}-00001")


def test_admin_finalize_of_a_closed_period_needs_no_choice(client, member_factory, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    last_month = month_start(tenant_today(tenant_a)) - timedelta(days=1)
    draft = build_invoice(customer, period_start=month_start(last_month), period_end=last_month, finalize=False)
    staff(client, member_factory, tenant_a)
    url = reverse("admin:billing_invoice_finalize", args=[draft.pk])

    assert 'name="close_early"' not in client.get(url).content.decode()
    assert client.post(url, {}).status_code == 302
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.FINALIZED


def test_void_and_mark_paid_buttons_confirm_then_act(client, member_factory, tenant_a, world):
    staff(client, member_factory, tenant_a, Role.OWNER)
    pk = world["usd"].pk

    confirm = client.get(reverse("admin:billing_invoice_mark_paid", args=[pk]))
    paid = client.post(reverse("admin:billing_invoice_mark_paid", args=[pk]))
    void_refused = client.post(reverse("admin:billing_invoice_void", args=[pk]))

    assert confirm.status_code == 200 and "Mark paid" in confirm.content.decode()
    assert paid.status_code == 302 and void_refused.status_code == 409
    world["usd"].refresh_from_db()
    assert world["usd"].status == Invoice.Status.PAID


# --- who may press the buttons -----------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNT_MANAGER])
def test_buttons_are_refused_to_viewers_and_account_managers(client, member_factory, tenant_a, role):
    draft = running_draft(tenant_a)
    staff(client, member_factory, tenant_a, role)

    page = client.get(reverse("admin:billing_invoice_change", args=[draft.pk])).content.decode()
    codes = [client.get(reverse(f"admin:billing_invoice_{move}", args=[draft.pk])).status_code
             for move in ("finalize", "void", "mark_paid")]
    posted = client.post(reverse("admin:billing_invoice_finalize", args=[draft.pk]), {"close_early": "on"})

    assert 'class="invoice-move"' not in page
    assert codes == [403, 403, 403] and posted.status_code == 403
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT


def test_finance_sees_the_buttons_the_status_allows(client, member_factory, tenant_a, world):
    draft = running_draft(tenant_a)
    staff(client, member_factory, tenant_a)

    draft_page = client.get(reverse("admin:billing_invoice_change", args=[draft.pk])).content.decode()
    final_page = client.get(reverse("admin:billing_invoice_change", args=[world["usd"].pk])).content.decode()

    assert draft_page.count('class="invoice-move"') == 2 and ">Finalize<" in draft_page and ">Void<" in draft_page
    assert final_page.count('class="invoice-move"') == 2 and ">Mark paid<" in final_page and ">Finalize<" not in final_page


def test_buttons_of_another_tenants_invoice_are_404(client, member_factory, tenant_a, world):
    staff(client, member_factory, tenant_a)

    assert client.get(reverse("admin:billing_invoice_void", args=[world["sek"].pk])).status_code == 404
    assert client.post(reverse("admin:billing_invoice_void", args=[world["sek"].pk])).status_code == 404
    world["sek"].refresh_from_db()
    assert world["sek"].status == Invoice.Status.FINALIZED


# --- PDFs for staff ----------------------------------------------------------------------------


def test_api_invoice_pdf_is_the_document_and_another_tenants_is_404(member_factory, tenant_a, world):
    client = api(member_factory, tenant_a, Role.VIEWER)
    draft = running_draft(tenant_a)

    final = client.get(f"/api/v1/invoices/{world['usd'].pk}/pdf/")
    preview = client.get(f"/api/v1/invoices/{draft.pk}/pdf/", HTTP_ACCEPT="application/pdf")
    foreign = client.get(f"/api/v1/invoices/{world['sek'].pk}/pdf/")

    assert (final.status_code, final["Content-Type"]) == (200, "application/pdf")
    assert world["usd"].number in pdf_text(final.content) and "$424.00" in pdf_text(final.content)
    assert (preview.status_code, preview["Content-Type"]) == (200, "application/pdf")
    assert "DRAFT – NOT A VALID INVOICE" in pdf_text(preview.content)
    assert foreign.status_code == 404


def test_api_credit_note_pdf_and_another_tenants_is_404(member_factory, tenant_a, world):
    mine = build_credit_note(world["usd"], amount="150.00")
    theirs = build_credit_note(world["sek"], amount="10.00")
    client = api(member_factory, tenant_a, Role.VIEWER)

    response = client.get(f"/api/v1/credit-notes/{mine.pk}/pdf/")

    assert (response.status_code, response["Content-Type"]) == (200, "application/pdf")
    assert mine.number in pdf_text(response.content) and "$150.00" in pdf_text(response.content)
    assert client.get(f"/api/v1/credit-notes/{theirs.pk}/pdf/").status_code == 404


def test_admin_pdf_links_on_lists_and_pages(client, member_factory, tenant_a, world):
    note = build_credit_note(world["usd"], amount="150.00")
    staff(client, member_factory, tenant_a, Role.ACCOUNT_MANAGER)
    invoice_pdf = reverse("admin:billing_invoice_pdf", args=[world["usd"].pk])
    note_pdf = reverse("admin:billing_creditnote_pdf", args=[note.pk])

    invoice_list = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    invoice_page = client.get(reverse("admin:billing_invoice_change", args=[world["usd"].pk])).content.decode()
    note_list = client.get(reverse("admin:billing_creditnote_changelist")).content.decode()
    downloaded = client.get(invoice_pdf)
    previewed = client.get(note_pdf + "?inline=1")

    assert invoice_pdf in invoice_list and f'data="{invoice_pdf}?inline=1"' in invoice_page and note_pdf in note_list
    assert downloaded.status_code == 200 and downloaded["Content-Disposition"].startswith("attachment")
    assert previewed["Content-Disposition"].startswith("inline") and previewed["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get(reverse("admin:billing_invoice_pdf", args=[world["sek"].pk])).status_code == 404


def test_schema_documents_the_pdf_endpoints_and_close_early(member_factory, tenant_a):
    schema = api(member_factory, tenant_a).get("/api/schema/?format=json").json()

    assert "application/pdf" in schema["paths"]["/api/v1/invoices/{id}/pdf/"]["get"]["responses"]["200"]["content"]
    assert "application/pdf" in schema["paths"]["/api/v1/credit-notes/{id}/pdf/"]["get"]["responses"]["200"]["content"]
    assert "close_early" in json.dumps(schema["paths"]["/api/v1/invoices/{id}/finalize/"]["post"])


# --- the credit-request form --------------------------------------------------------------------


def test_credit_request_invoice_is_an_autocomplete_of_creditable_invoices(client, member_factory, tenant_a, world):
    draft = running_draft(tenant_a)
    staff(client, member_factory, tenant_a)

    form = client.get(reverse("admin:billing_creditrequest_add")).content.decode()
    found = client.get("/admin/autocomplete/", {
        "term": "", "app_label": "billing", "model_name": "creditrequest", "field_name": "invoice"}).json()

    assert 'class="admin-autocomplete' in form and world["usd"].number not in form
    assert "billing/credit_request_invoice.js" in form
    assert [row["id"] for row in found["results"]] == [str(world["usd"].pk)]
    assert str(draft.pk) not in {row["id"] for row in found["results"]}


def test_credit_request_invoice_autocomplete_narrows_to_the_chosen_customer(client, member_factory, tenant_a, world):
    other = build_invoice(CustomerFactory(tenant=tenant_a, name="Other Co"), lines=[("Fee", "1", "5.00")])
    staff(client, member_factory, tenant_a)
    query = {"term": "", "app_label": "billing", "model_name": "creditrequest", "field_name": "invoice"}

    everyone = client.get("/admin/autocomplete/", query).json()["results"]
    chosen = client.get("/admin/autocomplete/", {**query, "customer": world["usd"].customer_id}).json()["results"]

    assert {row["id"] for row in everyone} == {str(world["usd"].pk), str(other.pk)}
    assert [row["id"] for row in chosen] == [str(world["usd"].pk)]


def test_credit_request_form_refuses_another_customers_invoice(client, member_factory, tenant_a, world):
    other = CustomerFactory(tenant=tenant_a, name="Other Co")
    staff(client, member_factory, tenant_a)

    response = client.post(reverse("admin:billing_creditrequest_add"), {
        "customer": other.pk, "invoice": world["usd"].pk, "amount": "10.00", "reason": "Goodwill"})

    assert response.status_code == 200
    assert "This invoice belongs to another customer" in response.content.decode()
    assert not CreditRequest.objects.for_tenant(tenant_a).exists()


def test_credit_request_form_accepts_the_customers_finalized_invoice(client, member_factory, tenant_a, world):
    staff(client, member_factory, tenant_a)

    response = client.post(reverse("admin:billing_creditrequest_add"), {
        "customer": world["usd"].customer_id, "invoice": world["usd"].pk, "amount": "10.00", "reason": "Goodwill"})

    assert response.status_code == 302
    request = CreditRequest.objects.for_tenant(tenant_a).get()
    assert (request.invoice_id, request.amount) == (world["usd"].pk, D("10.00"))


def test_credit_request_create_service_still_checks_the_customer(tenant_a, world, member_factory):
    other = CustomerFactory(tenant=tenant_a)
    with pytest.raises(ValidationError):
        credit_request_create(customer=other, invoice=world["usd"], amount=D("1.00"), reason="x",
                              requested_by=member_factory(tenant_a, Role.FINANCE))


def test_a_month_end_run_cannot_finalize_the_running_month(client, member_factory, tenant_a):
    from billing.models import BillingRun

    staff(client, member_factory, tenant_a)
    month = tenant_today(tenant_a).strftime("%Y-%m")

    response = client.post(reverse("admin:billing_billingrun_start"), {"period": month, "finalize": "on"})

    assert response.status_code == 200
    assert "This month is still running: a run can only draft it." in response.content.decode()
    assert not BillingRun.objects.for_tenant(tenant_a).exists()


def test_finalize_now_skips_a_run_of_the_running_month(client, member_factory, tenant_a):
    from billing.models import BillingRun

    today = tenant_today(tenant_a)
    run = BillingRun.objects.for_tenant(tenant_a).create(
        tenant=tenant_a, period_start=month_start(today), period_end=month_end(today), finalize_on=month_end(today),
        status=BillingRun.Status.DRAFTED)
    staff(client, member_factory, tenant_a)

    response = client.post(reverse("admin:billing_billingrun_changelist"),
                           {"action": "finalize_now", "_selected_action": [run.pk], "index": 0}, follow=True)

    assert "this month is still running" in response.content.decode()
    run.refresh_from_db()
    assert run.status == BillingRun.Status.DRAFTED

"""Staff pages speak the member's language; money and dates follow the tenant's locale.

Bergström Konsult (tenant_b) is Swedish and bills in SEK. Its members read Swedish unless they
chose another language; whatever they read, 300 000 SEK is written ``300 000,00 kr``.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from customers.models import Membership, Role
from customers.money import Money
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory, PortalAccessFactory
from tests.portal.test_no_internals import visible_text
from tests.revenue.factories import OpportunityFactory

NBSP = "\u00a0"
SEK_300K = f"300{NBSP}000,00{NBSP}kr"


def member(member_factory, tenant, language: str, username: str):
    user = member_factory(tenant, Role.OWNER, username=username)
    with platform_scope():
        Membership.objects.filter(user=user).update(language=language)
    return user


@pytest.fixture
def swedish_deal(tenant_b):
    with tenant_scope(tenant_b):
        customer = CustomerFactory(tenant=tenant_b, name="Fjällräv Konsult AB")
        OpportunityFactory(customer=customer, title="Ramavtal 2027", amount=Money("300000.00", "SEK"), probability=50)
        build_invoice(customer, lines=(("Konsulttimmar", "200", "1500.00"),), vat_rate="0")
    return customer


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    return response, visible_text(response.content.decode())


def test_a_swedish_member_reads_swedish_admin_and_dashboards_with_swedish_money(
    client, tenant_b, member_factory, swedish_deal
):
    client.force_login(member(member_factory, tenant_b, "", "karin"))  # no choice: the tenant's language

    index, index_text = get(client, reverse("admin:index"))
    deals, deals_text = get(client, reverse("admin:revenue_opportunity_changelist"))
    invoices, invoices_text = get(client, reverse("admin:billing_invoice_changelist"))
    dashboard, dashboard_text = get(client, "/staff/?from=2026-09&to=2026-11")

    assert {r["Content-Language"] for r in (index, deals, invoices, dashboard)} == {"sv"}
    assert "Webbplatsadministration" in index_text and "Kunder" in index_text
    assert "Affärsmöjligheter" in deals_text
    assert f"Ramavtal 2027 Fjällräv Konsult AB {SEK_300K} 150{NBSP}000,00{NBSP}kr" in deals_text
    assert SEK_300K in invoices_text and "Fakturor" in invoices_text
    assert "Intäkter" in dashboard_text and "Revenue" not in dashboard_text


def test_an_english_member_of_the_swedish_tenant_reads_english_with_the_same_money(
    client, tenant_b, member_factory, swedish_deal
):
    client.force_login(member(member_factory, tenant_b, "en", "alex"))

    index, index_text = get(client, reverse("admin:index"))
    deals, deals_text = get(client, reverse("admin:revenue_opportunity_changelist"))
    dashboard, dashboard_text = get(client, "/staff/?from=2026-09&to=2026-11")

    assert {r["Content-Language"] for r in (index, deals, dashboard)} == {"en"}
    assert "Site administration" in index_text and "Customers" in index_text
    assert f"Ramavtal 2027 Fjällräv Konsult AB {SEK_300K} 150{NBSP}000,00{NBSP}kr" in deals_text
    assert "SEK300" not in deals_text and "SEK 300" not in deals_text
    assert "Revenue" in dashboard_text and "Intäkter" not in dashboard_text


def test_a_member_who_chose_swedish_in_an_american_tenant_keeps_dollar_formats(client, tenant_a, member_factory):
    with tenant_scope(tenant_a):
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_a), title="Renewal", amount=Money("1234.50", "USD"))
    client.force_login(member(member_factory, tenant_a, "sv", "sara"))

    deals, deals_text = get(client, reverse("admin:revenue_opportunity_changelist"))

    assert deals["Content-Language"] == "sv"
    assert "Affärsmöjligheter" in deals_text and "$1,234.50" in deals_text


def test_the_invoice_page_shows_its_amounts_the_tenants_way(client, tenant_b, member_factory, swedish_deal):
    client.force_login(member(member_factory, tenant_b, "en", "alex"))
    with tenant_scope(tenant_b):
        invoice = swedish_deal.invoices.get()

    _, text = get(client, reverse("admin:billing_invoice_change", args=[invoice.pk]))

    assert f"Total: {SEK_300K}" in text and f"Amount due: {SEK_300K}" in text
    assert text.count(SEK_300K) == 5  # subtotal, total, amount due as issued, amount due now, the line's amount
    assert invoice.total == Decimal("300000.00")


def test_the_member_language_is_stored_per_membership_and_defaults_to_the_tenant(tenant_a, tenant_b, member_factory):
    user = member_factory(tenant_b, Role.VIEWER, username="oskar")
    with platform_scope():
        membership = Membership.objects.select_related("tenant").get(user=user)
        assert (membership.language, membership.staff_language) == ("", "sv")
        membership.language = "en"
        assert membership.staff_language == "en"
        assert Membership._meta.get_field("language").choices == [("en", "English"), ("sv", "Svenska")]


def test_a_member_chooses_english_in_the_header_and_reads_english_from_then_on(client, tenant_b, member_factory):
    user = member(member_factory, tenant_b, "", "erik")
    client.force_login(user)
    assert 'id="staff-language"' in client.get(reverse("admin:index")).content.decode()

    response = client.post(reverse("portal:staff_language"), {"language": "en", "next": "/admin/customers/"})

    assert (response.status_code, response["Location"]) == (302, "/admin/customers/")
    with platform_scope():
        assert Membership.objects.get(user=user).language == "en"
    assert client.get(reverse("admin:index"))["Content-Language"] == "en"


@pytest.mark.parametrize("language", ["de", "sv-x"])
def test_a_language_not_offered_is_a_400_and_changes_nothing(client, tenant_b, member_factory, language):
    user = member(member_factory, tenant_b, "sv", "erik")
    client.force_login(user)

    response = client.post(reverse("portal:staff_language"), {"language": language})

    assert response.status_code == 400 and "not a language" in response.content.decode()
    with platform_scope():
        assert Membership.objects.get(user=user).language == "sv"


def test_a_portal_user_cannot_choose_a_staff_language(client, tenant_b, swedish_deal):
    with tenant_scope(tenant_b):
        client.force_login(PortalAccessFactory(customer=swedish_deal, tenant=tenant_b).user)

    assert client.post(reverse("portal:staff_language"), {"language": "en"}).status_code == 403


def test_page_money_filters_write_the_tenants_way_on_staff_pages_else_the_readers():
    from django.utils import translation

    from customers.locales import formats_in
    from portal.templatetags.economics_format import ratio_percent
    from portal.templatetags.portal_format import money

    with translation.override("en"):
        assert (money(Decimal("300000"), "SEK"), ratio_percent(Decimal("0.125"))) == (f"SEK{NBSP}300,000.00", "12.5%")
        with formats_in("sv"):  # what the staff middleware does for a Swedish tenant
            assert (money(Decimal("300000"), "SEK"), ratio_percent(Decimal("0.125"))) == (SEK_300K, f"12,5{NBSP}%")
        assert money(Decimal("300000"), "SEK") == f"SEK{NBSP}300,000.00"


def test_a_won_deal_shows_its_amount_the_tenants_way(client, tenant_b, member_factory, swedish_deal):
    with tenant_scope(tenant_b):
        deal = OpportunityFactory(customer=swedish_deal, title="Vunnen", amount=Money("300000.00", "SEK"), stage="won")
    client.force_login(member(member_factory, tenant_b, "en", "alex"))

    _, text = get(client, reverse("admin:revenue_opportunity_change", args=[deal.pk]))

    assert f"Amount: {SEK_300K}" in text and "SEK300" not in text

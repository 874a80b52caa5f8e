"""No internal expression or model repr reaches a staff page: every admin page of every model, as an owner.

The walk opens each registered admin's list, add form, and the change and history pages of each
row a small but complete tenant has, and reads the text a person sees (no markup, attributes or
scripts). It must hold no ``pk=None`` (django-simple-history's display of an empty relation), no
``Model object (3)`` repr and no code identifier such as ``discount_total``.
"""

import re
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import reverse

from billing.models import WebhookEventType
from billing.services import credit_request_create
from customers.admin_base import TenantAdmin
from customers.models import Role
from customers.money import Money
from customers.tenancy import tenant_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import BillableMetricFactory, PriceTermsFactory, UsageEventFactory
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory, OpportunityFactory, QuarterTargetFactory

IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
REPR = re.compile(r"\b\w+ object \(\d+\)|pk=None|\bNone\b(?! available)")  # Django's "None available" is prose


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes, scripts or styles, nor ``<code>``, which shows
    literal input to type as it is (the price terms' JSON keys), nor a ``<textarea>``'s content,
    which is an input's value like an attribute's (a reminder text with its placeholders)."""

    HIDDEN = {"script", "style", "template", "code", "textarea"}

    def __init__(self):
        super().__init__()
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in self.HIDDEN

    def handle_endtag(self, tag):
        self._hidden -= tag in self.HIDDEN and self._hidden > 0

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return re.sub(r"[ \t\r\n\f\v]+", " ", " ".join(parser.parts)).strip()  # no-break spaces stay


@pytest.fixture
def world(tenant_a, member_factory):
    owner = member_factory(tenant_a, Role.OWNER, username="maya")
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="Kestrel Labs", external_ref="kestrel", currency="USD")
        customer.account_manager = owner  # history: an empty relation becomes a person
        customer.save()
        ContactFactory(tenant=tenant_a, customer=customer, name="Ada Byrne")
        contract = ContractFactory(customer=customer, tenant=tenant_a, start_date=date(2026, 10, 1))
        ContractLineFactory(contract=contract, tenant=tenant_a, unit_price=Money("100.00", "USD"))
        invoice = build_invoice(customer, vat_rate="25")
        build_credit_note(invoice)
        credit_request_create(customer=customer, amount=Decimal("40.00"), reason="Late delivery", requested_by=owner)
        BillableMetricFactory(tenant=tenant_a, code="jobs")  # a metric code is the tenant's own word
        PriceTermsFactory(tenant=tenant_a, contract_line=contract.lines.first(), metric="jobs")
        UsageEventFactory(tenant=tenant_a, customer=customer, metric_code="jobs")
        OpportunityFactory(tenant=tenant_a, customer=customer, title="Kestrel expansion")
        ExchangeRateFactory(tenant=tenant_a)
        QuarterTargetFactory(tenant=tenant_a)
    return owner


def admin_pages(tenant):
    """(label, url) of every admin page a tenant owner can open for the tenant's rows."""
    yield "index", reverse("admin:index")
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, TenantAdmin):
            continue
        info = model._meta.app_label, model._meta.model_name
        yield f"{model.__name__} list", reverse("admin:%s_%s_changelist" % info)
        yield f"{model.__name__} add", reverse("admin:%s_%s_add" % info)
        with tenant_scope(tenant):
            ids = list(model._default_manager.for_tenant(tenant).values_list("pk", flat=True)[:3])
        for pk in ids:
            yield f"{model.__name__} {pk}", reverse("admin:%s_%s_change" % info, args=[pk])
            yield f"{model.__name__} {pk} history", reverse("admin:%s_%s_history" % info, args=[pk])


def test_no_admin_page_shows_an_identifier_a_repr_or_pk_none(client, tenant_a, world):
    client.force_login(world)
    client.raise_request_exception = False  # a refused add form is a 403 page, skipped below
    found, opened = {}, 0

    for label, url in admin_pages(tenant_a):
        response = client.get(url)
        if response.status_code == 403:  # an add form the model does not offer (computed documents)
            continue
        assert response.status_code == 200, (label, response.status_code)
        opened += 1
        text = visible_text(response.content.decode())
        for event_type in WebhookEventType.values:  # the webhooks' public names, as receivers see them
            text = text.replace(event_type, "")
        leaks = {text[max(0, m.start() - 60):m.end() + 30] for p in (IDENTIFIER, REPR) for m in p.finditer(text)}
        if leaks:
            found[label] = sorted(leaks)

    assert found == {}, "\n".join(f"{label}: {leaks}" for label, leaks in found.items())
    assert opened > 60  # every model's list and form, and each row's page and history


def test_history_of_a_relation_set_from_empty_names_the_person(client, tenant_a, world):
    client.force_login(world)
    with tenant_scope(tenant_a):
        from customers.models import Customer

        customer = Customer.objects.for_tenant(tenant_a).get(external_ref="kestrel")

    text = visible_text(client.get(reverse("admin:customers_customer_history", args=[customer.pk])).content.decode())

    assert "pk=None" not in text and "Deleted" not in text
    assert "—" in text and str(world) in text

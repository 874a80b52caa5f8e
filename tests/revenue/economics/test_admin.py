"""The price table and entered costs in the admin: listed per tenant, a cost for another tenant refused."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from customers.models import Role
from customers.tenancy import tenant_scope
from revenue.models import CustomerCost
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import price


def test_model_price_changelist_shows_only_the_tenants_prices(tenant_a, tenant_b, member_factory):
    price(tenant_a, "gpt-4-acme", "30", "60")
    price(tenant_b, "gpt-4-bergstrom", "1", "2")
    client = Client()
    client.force_login(member_factory(tenant_a, Role.OWNER))

    body = client.get("/admin/revenue/modelprice/").content.decode()

    assert "gpt-4-acme" in body and "gpt-4-bergstrom" not in body


def test_entered_cost_must_be_a_month_start_of_an_own_customer(tenant_a, tenant_b):
    foreign = CustomerFactory(tenant=tenant_b)
    cost = CustomerCost(tenant=tenant_a, customer=foreign, month=date(2026, 1, 15), amount=Decimal("10.00"))

    with tenant_scope(tenant_a), pytest.raises(ValidationError) as error:
        cost.full_clean()

    assert set(error.value.message_dict) == {"month", "customer"}

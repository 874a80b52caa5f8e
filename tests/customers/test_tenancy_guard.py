import pytest

from customers.models import Customer
from customers.tenancy import ScopeError, platform_scope, tenant_scope
from tests.customers.factories import CustomerFactory


@pytest.fixture
def two_customers(tenant_a, tenant_b):
    return CustomerFactory(tenant=tenant_a, name="Alpha Inc"), CustomerFactory(tenant=tenant_b, name="Beta AB")


def test_query_without_tenant_scope_raises(two_customers):
    with pytest.raises(ScopeError):
        list(Customer.objects.all())
    with pytest.raises(ScopeError):
        Customer.objects.filter(name="Alpha Inc").exists()


def test_tenant_scope_sees_only_its_own_rows(two_customers, tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        assert [c.name for c in Customer.objects.all()] == ["Alpha Inc"]
    with tenant_scope(tenant_b):
        assert [c.name for c in Customer.objects.all()] == ["Beta AB"]


def test_for_tenant_is_explicit_and_works_outside_a_scope(two_customers, tenant_b):
    assert [c.name for c in Customer.objects.for_tenant(tenant_b)] == ["Beta AB"]


def test_for_tenant_refuses_a_missing_tenant(two_customers):
    with pytest.raises(ScopeError):
        Customer.objects.for_tenant(None)
    with pytest.raises(ScopeError):
        with tenant_scope(None):
            pass


def test_platform_scope_is_the_explicit_way_out(two_customers):
    with platform_scope():
        assert Customer.objects.count() == 2

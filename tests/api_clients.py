"""API clients for tests: a tenant's API key, or a staff member of a role, as the API sees them."""

from rest_framework.test import APIClient

from customers.models import TenantAPIKey


def key_client(tenant, name="ci"):
    """A client that authenticates with a new API key of ``tenant``."""
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def staff_client(member_factory, tenant, role):
    """A client logged in (session) as a new staff member of ``tenant`` with ``role``."""
    client = APIClient()
    client.force_login(member_factory(tenant, role))
    return client

"""Fixtures of the revenue admin tests."""

import pytest

from customers.models import Role


@pytest.fixture
def manager(client, member_factory, tenant_a):
    """An account manager of tenant A, logged in on ``client``."""
    user = member_factory(tenant_a, Role.ACCOUNT_MANAGER)
    client.force_login(user)
    return user

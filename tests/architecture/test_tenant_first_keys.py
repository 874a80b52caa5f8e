"""Every unique key of a tenant-owned table starts with ``tenant`` (issue 15), so the data stays ready to
distribute by tenant (Citus requires the distribution column in every unique key) and no key can make
one tenant's row collide with, or reveal, another tenant's.

Two walks: the models (unique fields, ``unique_together``, ``UniqueConstraint``) and the database
itself (every unique constraint and unique index PostgreSQL reports, so raw-SQL indexes of migrations
count too). A table is tenant-owned when it has a ``tenant_id`` column: the ``TenantOwned`` models,
their history tables and any through table. The primary key is excepted.
"""

import pytest
from django.apps import apps
from django.db import connection, models

# "app_label.Model.key" -> why it does not start with tenant. Each one is a conscious exception.
KNOWN_EXCEPTIONS = {
    "customers.TenantAPIKey.prefix": (
        "the key's prefix finds the key before its tenant is known (djangorestframework-api-key looks it up "
        "by prefix); it must be unique across the platform"
    ),
    "customers.PortalAccess.user": (
        "a login (auth.User, a platform-wide row) is one customer's person: one portal access per user "
        "across the platform"
    ),
    "billing.PriceTerms.contract_line": (
        "a OneToOneField to a line of the same tenant; making it a ForeignKey with a (tenant, contract_line) "
        "constraint changes the line.price_terms accessor the billing engine reads, not a trivial change"
    ),
    "billing.CreditRequest.credit_note": (
        "a OneToOneField to a credit note of the same tenant; same reason as PriceTerms.contract_line"
    ),
}


def tenant_tables():
    """Models (history and auto-created through models included) whose table has a tenant column."""
    return sorted(
        (
            model
            for model in apps.get_models(include_auto_created=True)
            if any(field.column == "tenant_id" for field in model._meta.local_fields)
            and not model._meta.proxy
            and model._meta.managed
        ),
        key=lambda model: model._meta.label,
    )


def model_unique_keys(model):
    """(key name, fields) of every unique key the model declares, the primary key left out."""
    for field in model._meta.local_fields:
        if field.unique and not field.primary_key:
            yield field.name, [field.name]
    for fields in model._meta.unique_together:
        yield ",".join(fields), list(fields)
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            yield constraint.name, list(constraint.fields) or ["<expression>"]


def test_every_unique_key_a_model_declares_starts_with_tenant():
    found = {
        f"{model._meta.label}.{name}": fields
        for model in tenant_tables()
        for name, fields in model_unique_keys(model)
        if fields[0] != "tenant" and f"{model._meta.label}.{name}" not in KNOWN_EXCEPTIONS
    }
    assert found == {}, f"unique keys not starting with tenant (start them with tenant or list them): {found}"


@pytest.mark.django_db
def test_every_unique_constraint_and_index_in_the_database_starts_with_tenant_id():
    found, excepted = {}, set()
    with connection.cursor() as cursor:
        for model in tenant_tables():
            column_to_field = {field.column: field.name for field in model._meta.local_fields}
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            for name, info in constraints.items():
                if not info["unique"] or info["primary_key"]:
                    continue
                columns = [column for column in info["columns"] if column]
                if columns and columns[0] == "tenant_id":
                    continue
                key = f"{model._meta.label}.{column_to_field.get(columns[0], columns[0]) if columns else name}"
                if key in KNOWN_EXCEPTIONS and len(columns) == 1:
                    excepted.add(key)
                else:
                    found[f"{model._meta.db_table}.{name}"] = columns
    assert found == {}, f"unique constraints or indexes not starting with tenant_id: {found}"
    # An exception whose key is gone (fixed) is struck from the list.
    assert excepted == set(KNOWN_EXCEPTIONS)

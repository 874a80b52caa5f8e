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


# Every unique index of every table with a tenant_id column, read from the catalog: tables no model
# describes (partitions, tables of raw-SQL migrations) and expression indexes (no first column) too.
UNIQUE_INDEXES_SQL = """
SELECT c.relname, i.relname, a.attname
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class c ON c.oid = ix.indrelid
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ix.indkey[0] AND ix.indkey[0] <> 0
WHERE c.relnamespace = %s::regnamespace AND ix.indisunique AND NOT ix.indisprimary
  AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
ORDER BY 1, 2
"""


def unique_indexes_not_tenant_first(cursor, schema: str) -> dict[str, str | None]:
    """``{"table.index": first column (None for an expression)}`` of the schema's unique indexes on
    tables with a tenant_id column that do not start with it, the known exceptions left out."""
    excepted = {}
    for model in tenant_tables():
        for key in KNOWN_EXCEPTIONS:
            label, field = key.rsplit(".", 1)
            if label == model._meta.label:
                excepted[model._meta.db_table] = model._meta.get_field(field).column
    cursor.execute(UNIQUE_INDEXES_SQL, [schema])
    return {
        f"{table}.{index}": first
        for table, index, first in cursor.fetchall()
        if first != "tenant_id" and (first is None or excepted.get(table) != first)
    }


@pytest.mark.django_db
def test_every_unique_index_in_the_catalog_starts_with_tenant_id_even_without_a_model():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        found = unique_indexes_not_tenant_first(cursor, cursor.fetchone()[0])
    assert found == {}, f"unique indexes not starting with tenant_id: {found}"


@pytest.mark.django_db
def test_the_catalog_walk_finds_a_raw_sql_unique_index_and_an_expression_one():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE probe_events (id bigint, tenant_id bigint, code text)")
        cursor.execute("CREATE UNIQUE INDEX probe_code ON probe_events (code)")
        cursor.execute("CREATE UNIQUE INDEX probe_lower ON probe_events (lower(code), tenant_id)")
        cursor.execute("CREATE UNIQUE INDEX probe_fine ON probe_events (tenant_id, code)")
        cursor.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
        found = unique_indexes_not_tenant_first(cursor, cursor.fetchone()[0])
    assert found == {"probe_events.probe_code": "code", "probe_events.probe_lower": None}

"""PostgreSQL's row-level security, with the ORM guard switched off on purpose.

Every check here reads or writes through the raw driver cursor (no Django execute wrapper, no
django-scopes), setting ``app.tenant_id`` by hand as a transaction-mode pooler's client would: what
holds here holds for any SQL the application could ever send.
"""

import logging
from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pytest
from django.apps import apps
from django.db import connection, models
from django.test.utils import isolate_apps

from billing.models import AiUsageDay, Invoice, UsageEvent
from customers.models import Contact, Customer
from customers.rls import POLICY_NAME, TENANT_RULE, partitions_of, row_level_security_problems, tenant_owned_policies
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_invoice
from tests.billing.factories import UsageEventFactory
from tests.customers.factories import ContactFactory, CustomerFactory

AI_CALL = {"provider": "openai", "model": "gpt-x", "feature": "chat", "input_tokens": 100, "output_tokens": 20}


def bare_cursor():
    """The driver's cursor of the test's connection: no execute wrapper, no ORM guard."""
    # The backend no longer knows what this transaction's settings are: the next ORM statement rewrites them.
    connection.rls_applied = "written by the test"
    return connection.connection.cursor()


def raw(sql, params=(), *, tenant=None):
    """Run ``sql`` on the test's connection through the bare driver, as ``tenant`` (None: no tenant)."""
    cursor = bare_cursor()
    cursor.execute(
        "SELECT set_config('app.tenant_id', %s, true), set_config('app.platform', '', true)",
        [str(tenant.pk) if tenant else ""],
    )
    cursor.execute(sql, params)
    return cursor.fetchall() if cursor.description else cursor.rowcount


@pytest.fixture
def two_worlds(tenant_a, tenant_b):
    """A customer with an AI call of each tenant, so both tenants have customers, history and roll-up."""
    made = {}
    for tenant in (tenant_a, tenant_b):
        customer = CustomerFactory(tenant=tenant, name=f"{tenant.slug} customer")
        UsageEventFactory(customer=customer, properties=AI_CALL)
        made[tenant.slug] = customer
    connection.ensure_connection()
    return made


def test_every_tenant_owned_table_has_rls_forced_and_one_fail_closed_policy(db):
    tables = tenant_owned_policies(list(apps.get_models(include_auto_created=True)))
    assert {"customers_customer", "customers_historicalcustomer", "billing_usageevent", "billing_aiusageday"} <= set(
        tables
    )
    assert "customers_tenant" not in tables
    assert row_level_security_problems(connection) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, cmd, qual, with_check FROM pg_policies WHERE policyname = %s", [POLICY_NAME]
        )
        policies = {table: (cmd, qual, check) for table, cmd, qual, check in cursor.fetchall()}
        partitions = set(partitions_of(cursor, "billing_usageevent"))
    assert "billing_usageevent_default" in partitions
    assert set(policies) == set(tables) | partitions
    for cmd, qual, check in policies.values():
        assert cmd == "ALL" and qual == check
        assert "current_setting('app.tenant_id'::text, true)" in qual
        assert "current_setting('app.platform'::text, true)" in qual and "= 'on'::text" in qual


@isolate_apps("customers")
def test_the_registry_walk_covers_through_tables_via_their_parent():
    class Tag(models.Model):
        class Meta:
            app_label = "customers"

        tenant = models.ForeignKey("customers.Tenant", on_delete=models.CASCADE)

    class Board(models.Model):
        class Meta:
            app_label = "customers"

        tenant = models.ForeignKey("customers.Tenant", on_delete=models.CASCADE)
        tags = models.ManyToManyField(Tag)

    through = Board.tags.through
    policies = tenant_owned_policies([Tag, Board, through])
    assert policies[Tag._meta.db_table] == TENANT_RULE == policies[Board._meta.db_table]
    assert policies[through._meta.db_table].startswith(f'EXISTS (SELECT 1 FROM "{Board._meta.db_table}" AS parent')


def test_the_application_role_is_neither_superuser_nor_owner_nor_bypassing(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        user, superuser, bypass, createrole = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
        owned = cursor.fetchone()[0]
    assert user == "portal_app"
    assert (superuser, bypass, createrole, owned) == (False, False, False, 0)


def test_a_raw_query_and_a_history_query_see_only_the_tenant_set(two_worlds, tenant_a, tenant_b):
    assert raw("SELECT name FROM customers_customer ORDER BY id", tenant=tenant_a) == [("acme customer",)]
    assert raw("SELECT DISTINCT tenant_id FROM customers_historicalcustomer", tenant=tenant_a) == [(tenant_a.pk,)]


@pytest.mark.postgres_store_only(reason="row-level security of the PostgreSQL event table")
def test_a_raw_query_of_usage_events_sees_only_the_tenant_set(two_worlds, tenant_a, tenant_b):
    assert raw("SELECT DISTINCT tenant_id FROM billing_usageevent", tenant=tenant_b) == [(tenant_b.pk,)]


def test_with_no_tenant_set_every_tenant_owned_table_is_empty(two_worlds):
    for table in sorted(tenant_owned_policies(list(apps.get_models(include_auto_created=True)))):
        assert raw(f'SELECT count(*) FROM "{table}"') == [(0,)], table


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_with_no_tenant_set_sees_nothing(tenant_a):
    """Committed rows, a fresh connection as the application role: nothing until a tenant is set."""
    CustomerFactory(tenant=tenant_a)
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or None, port=db["PORT"] or None, dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None
    ) as fresh:
        assert fresh.execute("SELECT count(*) FROM customers_customer").fetchone() == (0,)
        fresh.execute("SELECT set_config('app.tenant_id', %s, false)", [str(tenant_a.pk)])
        assert fresh.execute("SELECT count(*) FROM customers_customer").fetchone() == (1,)


def test_writing_another_tenants_row_is_refused(two_worlds, tenant_a, tenant_b):
    customer_b = two_worlds["bergstrom"]
    cursor = bare_cursor()
    cursor.execute("SAVEPOINT refused")
    cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_a.pk)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        cursor.execute(
            "INSERT INTO billing_usageevent (tenant_id, customer_id, metric_code, timestamp, idempotency_key,"
            " quantity, properties, received_at) VALUES (%s, %s, 'processed_jobs', now(), 'smuggled', 1, '{}', now())",
            [tenant_b.pk, customer_b.pk],
        )
    cursor.execute("ROLLBACK TO SAVEPOINT refused")
    # Nor can tenant A change or delete B's rows: they are not there to touch.
    assert raw("UPDATE customers_customer SET name = 'Taken' WHERE id = %s", [customer_b.pk], tenant=tenant_a) == 0
    assert raw(
        "DELETE FROM billing_usageevent WHERE tenant_id = %s AND customer_id = %s", [tenant_b.pk, customer_b.pk], tenant=tenant_a
    ) == 0
    with tenant_scope(tenant_b):
        assert Customer.objects.get(pk=customer_b.pk).name == "bergstrom customer"


@pytest.mark.postgres_store_only(reason="the AI-usage triggers on the PostgreSQL event table, under its row-level security")
def test_the_ai_usage_triggers_see_only_the_tenant_set(two_worlds, tenant_a, tenant_b):
    def roll_up():
        with platform_scope():
            return dict(AiUsageDay.objects.values_list("tenant__slug", "calls"))

    assert roll_up() == {"acme": 1, "bergstrom": 1}
    # Insert trigger: an event of A rolls up into A's row only.
    raw(
        "INSERT INTO billing_usageevent (tenant_id, customer_id, metric_code, timestamp, idempotency_key,"
        " quantity, properties, received_at) VALUES (%s, %s, 'processed_jobs', %s, 'raw-1', 1, %s, now())",
        [tenant_a.pk, two_worlds["acme"].pk, datetime(2026, 11, 5, 13, tzinfo=timezone.utc), psycopg.types.json.Jsonb(AI_CALL)],
        tenant=tenant_a,
    )
    assert roll_up() == {"acme": 2, "bergstrom": 1}
    assert raw("SELECT tenant_id, calls FROM billing_aiusageday", tenant=tenant_a) == [(tenant_a.pk, 2)]
    # Update and delete triggers over the whole table, as A: B's events and roll-up are untouched.
    assert raw("UPDATE billing_usageevent SET quantity = quantity + 1", tenant=tenant_a) == 2
    assert raw("DELETE FROM billing_usageevent", tenant=tenant_a) == 2
    assert roll_up() == {"bergstrom": 1}
    with platform_scope():
        assert list(UsageEvent.objects.values_list("tenant__slug", "quantity")) == [("bergstrom", Decimal(1))]


def test_the_issued_document_triggers_see_only_the_tenant_set(two_worlds, tenant_a, tenant_b):
    draft_a = build_invoice(two_worlds["acme"], finalize=False)
    build_invoice(two_worlds["bergstrom"])  # finalized: its guard refuses any delete
    # A delete of every invoice line and invoice, as A, reaches A's draft only, so B's guard never fires.
    assert raw("DELETE FROM billing_invoiceline", tenant=tenant_a) == 1
    assert raw("DELETE FROM billing_invoice", tenant=tenant_a) == 1
    with platform_scope():
        assert list(Invoice.objects.values_list("tenant_id", "status")) == [(tenant_b.pk, "finalized")]
        assert not Invoice.objects.filter(pk=draft_a.pk).exists()


def test_for_tenant_querysets_and_saves_work_outside_any_scope(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, name="Outside")  # saved as its own tenant
    CustomerFactory(tenant=tenant_b)
    assert list(Customer.objects.for_tenant(tenant_a).values_list("name", flat=True)) == ["Outside"]
    assert Customer.objects.for_tenant(tenant_b).count() == 1
    assert Customer.objects.for_tenant(tenant_a).update(name="Renamed") == 1
    customer.refresh_from_db()
    assert customer.name == "Renamed"
    ContactFactory(customer=customer)
    contact = Contact.objects.for_tenant(tenant_a).get()  # its customer not loaded yet
    assert contact.customer.name == "Renamed"  # a related lookup runs as the contact's tenant
    with platform_scope():
        everyone = Customer.objects.order_by("tenant_id")
    assert everyone.count() == 2  # read after the block, as made inside it (as django-scopes filters)
    assert Customer.objects.for_tenant(tenant_a).update(name="Gone") == 1


def test_each_platform_scope_entry_is_logged_with_its_caller(caplog):
    with caplog.at_level(logging.DEBUG, logger="customers.tenancy"):
        with platform_scope():
            pass
        with platform_scope(hot=True, reason="an API key's tenant"):
            pass
    (plain, hot) = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert plain[0] == logging.INFO
    assert "billing/test_row_level_security.py:" in plain[1]
    assert plain[1].endswith("in test_each_platform_scope_entry_is_logged_with_its_caller")
    assert hot[0] == logging.DEBUG and hot[1].endswith("(an API key's tenant)")

# The AI-usage roll-up is billing's: a roll-up of billing's usage events, kept by triggers on billing's
# own table. This makes billing_aiusageday, its sync and rebuild functions and its three triggers, and
# fills it from the events (one rebuild per tenant). Revenue's old copy (revenue 0004) is dropped by
# revenue 0006, which runs after this one: billing never reaches up to revenue's tables.
#
# The trigger SQL is written out here, not imported: a migration must not change when app code does.

import django.db.models.deletion
from django.db import migrations, models

# An AI call is a usage event whose properties carry "model"; its day is the tenant's calendar day.
# Text keys are cut to 200 characters so no property can outgrow the unique index.
AGGREGATE = r"""
    SELECT e.tenant_id, e.customer_id, (e.timestamp AT TIME ZONE t.time_zone)::date,
           LEFT(COALESCE(e.properties ->> 'provider', ''), 200),
           LEFT(COALESCE(e.properties ->> 'model', ''), 200),
           LEFT(COALESCE(NULLIF(e.properties ->> 'feature', ''), e.properties ->> 'task_type', ''), 200),
           COUNT(*),
           SUM(CASE WHEN e.properties ->> 'input_tokens' ~ '^\s*[0-9]{{1,15}}\s*$'
                    THEN (e.properties ->> 'input_tokens')::numeric ELSE 0 END),
           SUM(CASE WHEN e.properties ->> 'output_tokens' ~ '^\s*[0-9]{{1,15}}\s*$'
                    THEN (e.properties ->> 'output_tokens')::numeric ELSE 0 END)
    FROM {source} e JOIN customers_tenant t ON t.id = e.tenant_id
    WHERE e.properties ? 'model' {where}
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
"""
COLUMNS = "tenant_id, customer_id, day, provider, model, feature, calls, input_tokens, output_tokens"
KEY = "tenant_id, customer_id, day, provider, model, feature"
TRIGGERS = ("billing_ai_usage_insert", "billing_ai_usage_update", "billing_ai_usage_delete")


def functions_and_triggers(prefix: str) -> str:
    """The sync function, its three statement-level triggers on billing_usageevent, and the
    rebuild function, over the table ``{prefix}_aiusageday`` with functions named ``{prefix}_...``."""
    table = f"{prefix}_aiusageday"
    add = f"""
    INSERT INTO {table} ({COLUMNS})
    {{aggregate}}
    ON CONFLICT ({KEY}) DO UPDATE SET calls = {table}.calls + EXCLUDED.calls,
        input_tokens = {table}.input_tokens + EXCLUDED.input_tokens,
        output_tokens = {table}.output_tokens + EXCLUDED.output_tokens;
"""
    return f"""
CREATE OR REPLACE FUNCTION {prefix}_ai_usage_day_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE {table} r
        SET calls = r.calls - d.calls, input_tokens = r.input_tokens - d.input_tokens,
            output_tokens = r.output_tokens - d.output_tokens
        FROM ({AGGREGATE.format(source="old_rows", where="")}) AS d ({COLUMNS})
        WHERE (r.tenant_id, r.customer_id, r.day, r.provider, r.model, r.feature)
            = (d.tenant_id, d.customer_id, d.day, d.provider, d.model, d.feature);
        DELETE FROM {table}
        WHERE calls <= 0 AND tenant_id IN (SELECT DISTINCT tenant_id FROM old_rows);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {add.format(aggregate=AGGREGATE.format(source="new_rows", where=""))}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER billing_ai_usage_insert AFTER INSERT ON billing_usageevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_ai_usage_day_sync();
CREATE TRIGGER billing_ai_usage_update AFTER UPDATE ON billing_usageevent
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_ai_usage_day_sync();
CREATE TRIGGER billing_ai_usage_delete AFTER DELETE ON billing_usageevent
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_ai_usage_day_sync();
-- A tenant's roll-up from its events again (its time zone changed, or to check): returns the rows made.
CREATE OR REPLACE FUNCTION {prefix}_ai_usage_rebuild(tenant bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE made bigint;
BEGIN
    DELETE FROM {table} WHERE tenant_id = tenant;
    {add.format(aggregate=AGGREGATE.format(source="billing_usageevent", where="AND e.tenant_id = tenant"))}
    GET DIAGNOSTICS made = ROW_COUNT;
    RETURN made;
END $$;
"""


def drop(prefix: str) -> str:
    return "".join(f"DROP TRIGGER IF EXISTS {name} ON billing_usageevent;\n" for name in TRIGGERS) + f"""
DROP FUNCTION IF EXISTS {prefix}_ai_usage_day_sync();
DROP FUNCTION IF EXISTS {prefix}_ai_usage_rebuild(bigint);
"""


CREATE = functions_and_triggers("billing") + "SELECT billing_ai_usage_rebuild(id) FROM customers_tenant;\n"
DROP = drop("billing")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_purge_allows_issued_deletes'),
        ('customers', '0002_tenant_purge_started_at'),
    ]

    operations = [
        migrations.CreateModel(
            name='AiUsageDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('provider', models.TextField(blank=True)),
                ('model', models.TextField(blank=True)),
                ('feature', models.TextField(blank=True)),
                ('calls', models.BigIntegerField()),
                ('input_tokens', models.DecimalField(decimal_places=0, max_digits=30)),
                ('output_tokens', models.DecimalField(decimal_places=0, max_digits=30)),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.customer')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='customers.tenant')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant', 'day', 'customer', 'provider', 'model', 'feature'), name='billing_ai_usage_day_unique')],
            },
        ),
        migrations.RunSQL(CREATE, DROP),
    ]

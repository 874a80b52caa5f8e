# One index on the usage-event partitions instead of three (docs/scaling.md, "Sixth round").
#
# The primary key becomes (tenant_id, metric_code, timestamp, customer_id, id): the old per-metric
# index with the id added, which keeps it unique. It replaces the primary key (id, timestamp), which
# no read used (no store looks an event up by id), and the per-metric index, and the time index
# (tenant_id, timestamp, customer_id) goes: reads by time alone now enumerate the tenant's metric
# codes and read the primary key once per code (billing.usage_store.postgres). Each new event then
# writes one index entry instead of three.
#
# Every month partition's key is rebuilt under an exclusive lock: on a large event table ingestion
# waits for it; run it in a quiet hour.

from django.db import migrations

FORWARD = """
ALTER TABLE billing_usageevent DROP CONSTRAINT billing_usageevent_pkey,
    ADD CONSTRAINT billing_usageevent_pkey PRIMARY KEY (tenant_id, metric_code, "timestamp", customer_id, id);
DROP INDEX billing_usa_tenant__f46e3d_idx;
DROP INDEX usage_event_tenant_time;
"""

BACKWARD = """
CREATE INDEX billing_usa_tenant__f46e3d_idx ON billing_usageevent (tenant_id, metric_code, "timestamp", customer_id);
CREATE INDEX usage_event_tenant_time ON billing_usageevent (tenant_id, "timestamp", customer_id);
ALTER TABLE billing_usageevent DROP CONSTRAINT billing_usageevent_pkey,
    ADD CONSTRAINT billing_usageevent_pkey PRIMARY KEY (id, "timestamp");
"""


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0022_usage_event_keys_compared_bytewise'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name='usageevent', name='billing_usa_tenant__f46e3d_idx'),
                migrations.RemoveIndex(model_name='usageevent', name='usage_event_tenant_time'),
            ],
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
        ),
    ]

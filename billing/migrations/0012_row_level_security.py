"""Row-level security on billing's tenant-owned tables: ENABLE, FORCE and the one tenant_isolation policy.

See customers.rls for the policy; later tenant-owned tables of this app need a migration calling
secure_tables_migration("billing") too (the post_migrate hook adds it otherwise, with a warning).
"""

from django.db import migrations

from customers.rls import secure_tables_migration


class Migration(migrations.Migration):
    dependencies = [("billing", "0011_payments_and_allocations")]

    operations = [migrations.RunPython(secure_tables_migration("billing"), migrations.RunPython.noop)]

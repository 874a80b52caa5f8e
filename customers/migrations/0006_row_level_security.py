"""Row-level security on customers's tenant-owned tables: ENABLE, FORCE and the one tenant_isolation policy.

See customers.rls for the policy; later tenant-owned tables of this app need a migration calling
secure_tables_migration("customers") too (the post_migrate hook adds it otherwise, with a warning).
"""

from django.db import migrations

from customers.rls import secure_tables_migration


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_tenant_staff_two_factor_required")]

    operations = [migrations.RunPython(secure_tables_migration("customers"), migrations.RunPython.noop)]

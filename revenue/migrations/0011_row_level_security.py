"""Row-level security on revenue's tenant-owned tables: ENABLE, FORCE and the one tenant_isolation policy.

See customers.rls for the policy; later tenant-owned tables of this app need a migration calling
secure_tables_migration("revenue") too (the post_migrate hook adds it otherwise, with a warning).
"""

from django.db import migrations

from customers.rls import secure_tables_migration


class Migration(migrations.Migration):
    dependencies = [("revenue", "0010_price_plan_graduated_percentage")]

    operations = [migrations.RunPython(secure_tables_migration("revenue"), migrations.RunPython.noop)]

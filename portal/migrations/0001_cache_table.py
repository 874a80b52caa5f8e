"""The database cache's table, django_cache: the default cache (settings CACHES) when no DJANGO_CACHE_URL.

Made by every `migrate`, whatever the cache settings, so a fresh database (the demo, a benchmark's scratch
database, the test database) has it before the first throttled API request, and a deployment may switch
DJANGO_CACHE_URL to the database later. Unused (and empty) when the cache is Redis.
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "django_cache"


def create_cache_table(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)  # does nothing if it exists


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]

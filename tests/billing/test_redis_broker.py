"""The Redis broker of the real-worker tests (``tests.billing.redis_broker``): one database per pytest
process, used by this process's publisher and by the workers it starts, whatever the environment names."""

import os

import redis

from portal.celery import app as celery_app
from tests.billing.redis_broker import DEFAULT_REDIS, process_broker_url, publishing_to, redis_or_skip
from tests.billing.test_month_end_worker import Workers

QUEUE = "broker-check"  # a queue no worker reads


def test_each_test_process_has_its_own_database_after_the_configured_one():
    ci = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}

    assert process_broker_url(ci) == "redis://127.0.0.1:6379/1"
    assert process_broker_url({**ci, "PYTEST_XDIST_WORKER": "gw0"}) == "redis://127.0.0.1:6379/1"
    assert process_broker_url({**ci, "PYTEST_XDIST_WORKER": "gw1"}) == "redis://127.0.0.1:6379/2"
    assert process_broker_url({"CELERY_BROKER_URL": "redis://:secret@cache.internal:6380/3",
                               "PYTEST_XDIST_WORKER": "gw1"}) == "redis://:secret@cache.internal:6380/5"


def test_without_a_redis_broker_configured_the_databases_follow_0_on_the_local_redis():
    database_broker = {"CELERY_BROKER_URL": "sqla+postgresql://portal@127.0.0.1/portal", "PYTEST_XDIST_WORKER": "gw1"}

    assert process_broker_url({}) == "redis://127.0.0.1:6379/1"
    assert process_broker_url(database_broker) == "redis://127.0.0.1:6379/2"


def test_the_app_publishes_to_the_process_database_though_the_environment_names_another(monkeypatch):
    configured = os.environ.get("CELERY_BROKER_URL", "")
    configured = configured if configured.startswith("redis") else DEFAULT_REDIS
    redis_or_skip(configured)
    monkeypatch.setenv("CELERY_BROKER_URL", configured)
    url = process_broker_url()
    configuration = celery_app.conf["broker_url"], celery_app.conf["task_always_eager"]
    try:
        with publishing_to(url):
            celery_app.send_task("tests.broker_check", queue=QUEUE)
            published = redis.Redis.from_url(url).llen(QUEUE)
            on_the_configured = redis.Redis.from_url(configured).llen(QUEUE)

        assert (published, on_the_configured) == (1, 0)
        assert redis.Redis.from_url(url).dbsize() == 0  # emptied at the end of the block
        assert os.environ["CELERY_BROKER_URL"] == configured
        assert (celery_app.conf["broker_url"], celery_app.conf["task_always_eager"]) == configuration
    finally:
        # Only there if publishing_to is broken: the message and kombu's bindings of its queue.
        leftovers = (QUEUE, f"_kombu.binding.{QUEUE}", f"_kombu.binding_permanent.{QUEUE}")
        redis.Redis.from_url(configured).delete(*leftovers)


def test_workers_get_the_process_database_and_no_other_broker_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")

    environment = Workers(process_broker_url(), tmp_path).environment()

    assert environment["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/2"
    assert {"CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"}.isdisjoint(environment)

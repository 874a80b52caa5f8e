"""Celery queues per kind of work (portal.celery.TASK_ROUTES, docs/scaling.md): every project task lands
on a named queue, and the kinds do not mix."""

import pytest
from celery.app.routes import prepare

from portal.celery import QUEUES, TASK_ROUTES, app


def queue_of(task_name: str) -> str:
    """The queue Celery's router picks for ``task_name`` from TASK_ROUTES; "celery" when none matches."""
    for route in prepare([TASK_ROUTES]):
        found = route(task_name)
        if found:
            return found["queue"]
    return "celery"


def project_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.split(".")[0] in {"billing", "revenue", "customers", "portal"})


def test_every_project_task_is_routed_to_a_known_queue():
    routed = {name: queue_of(name) for name in project_tasks()}

    assert routed, "no project task registered"
    assert set(routed.values()) <= set(QUEUES)


@pytest.mark.parametrize(
    "task, queue",
    [
        ("billing.tasks.usage_store_flush", "usage"),
        ("billing.tasks.month_end_chunk", "month_end"),
        ("billing.tasks.month_end_tick", "month_end"),
        ("billing.tasks.invoice_deliver", "delivery"),
        ("revenue.tasks.whatif_compute", "analytics"),
        ("revenue.tasks.detect_anomalies_for_tenant", "analytics"),
        ("revenue.tasks.send_monthly_report", "reports"),
        ("revenue.tasks.snapshot_closed_month", "reports"),
    ],
)
def test_each_kind_of_work_has_its_queue(task, queue):
    assert queue_of(task) == queue

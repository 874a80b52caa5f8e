"""The Celery app. Without CELERY_BROKER_URL, the broker is the Django database (see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One queue per kind of work (docs/scaling.md, "Celery queues"), so a month-end of 100 000 invoices
# cannot starve usage flushes or an executive's what-if. The first matching pattern wins; anything
# unlisted stays on Celery's default queue, "celery". Off unless CELERY_ROUTE_BY_KIND=1: a worker
# started without -Q reads only "celery", so every worker must list the queues first, e.g.
# `celery -A portal worker -Q celery,usage,month_end,delivery,reports,analytics`.
TASK_ROUTES = {
    "billing.tasks.usage_store_flush": {"queue": "usage"},
    "billing.tasks.invoice_deliver": {"queue": "delivery"},
    "billing.tasks.invoice_resend": {"queue": "delivery"},
    "billing.tasks.month_end_*": {"queue": "month_end"},
    "revenue.tasks.detect_anomalies_*": {"queue": "analytics"},
    "revenue.tasks.whatif_compute": {"queue": "analytics"},
    "revenue.tasks.*": {"queue": "reports"},
}
QUEUES = ("celery", "usage", "month_end", "delivery", "reports", "analytics")
if os.environ.get("CELERY_ROUTE_BY_KIND") == "1":
    app.conf.task_routes = TASK_ROUTES


@app.on_after_configure.connect
def _install_schedule(sender, **kwargs):
    from portal.schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE

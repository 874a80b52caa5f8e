"""The Celery beat schedule, in code. Each entry fans out per tenant inside its task."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Month-end in each tenant's own time zone: hourly, so each zone's first of the month is seen within
    # the hour; the same task finalizes the drafts whose review period (draft_grace_days) is over.
    "billing-month-end": {"task": "billing.tasks.month_end_tick", "schedule": crontab(minute=5)},
    # A month-end run whose worker was killed is resumed: its open items are queued again.
    "billing-month-end-resume": {"task": "billing.tasks.month_end_resume_stalled", "schedule": crontab(minute="*/5")},
    # Usage anomalies of yesterday (each tenant's own calendar day), after every zone's midnight has passed.
    "revenue-anomalies": {"task": "revenue.tasks.detect_anomalies_all_tenants", "schedule": crontab(hour=11, minute=15)},
    # The revenue report of the last closed month, for tenants whose month-end run has finished; a run
    # finishing later queues its tenant's report itself (month_end_completed_tasks). Sent once either way.
    "revenue-monthly-report": {
        "task": "revenue.tasks.send_monthly_reports",
        "schedule": crontab(minute=0, hour=6, day_of_month=2),
    },
    # Payment reminders (dunning), once a day: "days overdue" are counted on each tenant's own calendar,
    # and each step goes out once per invoice however often this runs.
    "billing-dunning": {"task": "billing.tasks.dunning_tick", "schedule": crontab(hour=8, minute=20)},
    # Closed months' metric snapshots re-frozen daily, so late contract edits reach the dashboards.
    "revenue-snapshots": {"task": "revenue.tasks.refresh_all_recent_snapshots", "schedule": crontab(hour=2, minute=30)},
    # Outgoing webhooks: invoices that fell overdue yesterday are announced (once each), after every
    # zone's midnight; retries whose task the broker lost are queued again.
    "billing-webhooks-overdue": {
        "task": "billing.tasks.webhook_overdue_sweep_all_tenants", "schedule": crontab(hour=12, minute=10),
    },
    "billing-webhooks-requeue": {"task": "billing.tasks.webhook_requeue_lost", "schedule": crontab(minute="*/5")},
    # Usage batches a crash left between PostgreSQL and ClickHouse (a no-op on the PostgreSQL store).
    "billing-usage-store-flush": {"task": "billing.tasks.usage_store_flush", "schedule": crontab(minute="*")},
    # The MRR facts rebuilt from the contract lines once a month, moving their horizon (revenue.facts).
    "revenue-facts-rebuild": {
        "task": "revenue.tasks.rebuild_all_revenue_facts",
        "schedule": crontab(minute=45, hour=3, day_of_month=3),
    },
    # Usage events' monthly partitions: this month and the next two exist before any event needs them.
    "billing-usage-partitions": {"task": "billing.tasks.usage_partitions_maintain", "schedule": crontab(hour=1, minute=45)},
    "revenue-weekly-digest": {
        "task": "revenue.tasks.send_weekly_digests",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
    },
}

def month_end_completed_tasks() -> tuple:
    """The reporting tasks queued, with the tenant's id, when its month-end run completes.

    Imported, not looked up by name: a renamed or removed task is an ImportError when the hooks are
    connected at start-up (``connect_month_end_hooks``), never a silently skipped report. Imported
    here rather than at the top because Celery can import this module for ``BEAT_SCHEDULE`` before
    Django's apps are loaded, and ``revenue.tasks`` needs them.
    """
    from revenue.tasks import send_monthly_report, snapshot_closed_month

    return (snapshot_closed_month, send_monthly_report)


def month_end_completed(sender, run, **kwargs):
    """Receiver of ``billing.month_end.billing_run_completed``: queue the tenant's reporting jobs."""
    for task in month_end_completed_tasks():
        task.delay(run.tenant_id)


def connect_month_end_hooks() -> None:
    """Hook the reporting jobs on month-end (called from PortalConfig.ready: billing never imports upwards)."""
    from billing.month_end import billing_run_completed

    month_end_completed_tasks()  # fail at start-up, not at the first month-end, if a task is gone
    billing_run_completed.connect(month_end_completed, dispatch_uid="portal.schedule.month_end_completed")

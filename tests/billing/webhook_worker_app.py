"""The Celery app of the webhook worker test: portal's own app, with Redis handing an unacknowledged
message to the next worker after 2 seconds instead of an hour (``visibility_timeout``), so a test can
kill a worker mid-delivery and watch the broker redeliver it (``acks_late``).

Started as ``celery -A tests.billing.webhook_worker_app worker``; production code has no such hook.
"""

from portal.celery import app

app.conf.broker_transport_options = {"visibility_timeout": 2, "unacked_restore_throttle": 1}

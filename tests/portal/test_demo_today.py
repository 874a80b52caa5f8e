"""The demo's history ends on each tenant's own today, not the server's.

From 00:00 UTC until midnight in New York, UTC's date is a day ahead of the job API's. A demo loaded
then used to date the job API's usage on the UTC day, up to 23:00 New York time: more than a day
ahead of the clock, so ingestion refused it and ``./bin/demo`` stopped.
"""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.utils import timezone as django_timezone

from billing.models import UsageEvent
from customers.models import Tenant
from customers.tenancy import platform_scope

pytestmark = pytest.mark.slow  # builds the job API tenant at a tenth of its size (about 10 s)

EVENING_IN_NEW_YORK = datetime(2026, 12, 5, 0, 30, tzinfo=timezone.utc)  # 19:30 on 4 December there


def test_the_demo_loads_when_utc_is_already_tomorrow(db, monkeypatch):
    monkeypatch.setattr(django_timezone, "now", lambda: EVENING_IN_NEW_YORK)

    call_command("demo_load", "--tenant", "jobapi", scale=0.1, seed=7, verbosity=0)

    with platform_scope():
        jobapi = Tenant.objects.get(slug="jobapi")
        latest = UsageEvent.objects.for_tenant(jobapi).aggregate(latest=Max("timestamp"))["latest"]
    assert latest.astimezone(ZoneInfo("America/New_York")).date() == date(2026, 12, 4)

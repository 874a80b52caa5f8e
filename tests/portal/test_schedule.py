"""The schedule's month-end hook: a completed billing run queues the tenant's reporting tasks."""

from datetime import date

import pytest

from billing.models import BillingRun
from billing.month_end import billing_run_completed, billing_run_start
from customers.money import Money
from customers.tenancy import platform_scope, tenant_scope
from portal.schedule import month_end_completed, month_end_completed_tasks
from revenue import tasks as revenue_tasks
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

JUNE = date(2025, 6, 1)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def queued(monkeypatch):
    """(task name, tenant id) of every reporting task queued; the tasks themselves do not run."""
    calls = []
    for task in (revenue_tasks.snapshot_closed_month, revenue_tasks.send_monthly_report):
        monkeypatch.setattr(task, "delay", lambda tenant_id, _name=task.name: calls.append((_name, tenant_id)))
    return calls


def subscribe(tenant, name):
    customer = CustomerFactory(tenant=tenant, name=name, currency=tenant.reporting_currency, billing_emails=[])
    contract = ContractFactory(customer=customer, tenant=tenant, start_date=date(2025, 1, 1))
    ContractLineFactory(contract=contract, tenant=tenant, unit_price=Money("100.00", customer.currency))


def test_completing_a_run_queues_the_snapshot_and_the_monthly_report_with_the_tenant_id(
    tenant_a, tenant_b, queued, django_capture_on_commit_callbacks
):
    with platform_scope():
        subscribe(tenant_a, "Alpha Labs")
        subscribe(tenant_b, "Bergen AB")

    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True)

    assert BillingRun.objects.for_tenant(tenant_a).get().status == BillingRun.Status.DONE
    assert queued == [
        ("revenue.tasks.snapshot_closed_month", tenant_a.pk),
        ("revenue.tasks.send_monthly_report", tenant_a.pk),
    ]


def test_the_hook_is_connected_once_the_apps_are_loaded():
    uids = [lookup_key[0] for lookup_key, *_ in billing_run_completed.receivers]

    assert uids.count("portal.schedule.month_end_completed") == 1
    assert month_end_completed in billing_run_completed._live_receivers(BillingRun)[0]


def test_the_reporting_tasks_are_the_task_objects_not_names():
    assert month_end_completed_tasks() == (revenue_tasks.snapshot_closed_month, revenue_tasks.send_monthly_report)

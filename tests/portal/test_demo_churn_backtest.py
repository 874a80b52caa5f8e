"""The churn-risk back-test on the demo's job API history: the customers who churned scored high before.

The demo's churners behave like customers about to leave (``portal.demo.billing``): usage falls in
their last two months, their last invoices are paid late, many step down a plan first, and young
customers leave more often. The score reads none of that from the generator, only from the usage,
invoices and contracts, so a score or a generator that stopped telling churners apart fails here.
The job API is built alone, at full scale (about 30 s), in a transaction rolled back at the end.
"""

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F

from billing.models import Invoice
from customers.models import Tenant
from customers.periods import add_months
from customers.tenancy import platform_scope, tenant_scope
from revenue.economics.churn_risk import validate_churn_risk

TODAY = date(2026, 11, 15)
pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # the mark makes pytest-django set up the test database


@pytest.fixture(scope="module")
def jobapi(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("demo_load", "--tenant", "jobapi", verbosity=0, seed=2026, today=TODAY.isoformat())
        with platform_scope():
            tenant = Tenant.objects.get(slug="jobapi")
        with tenant_scope(tenant):
            # The back-test ends at the demo's last closed month, not the calendar's: the demo was built as of TODAY.
            yield tenant, validate_churn_risk(tenant=tenant, months=6, last=add_months(TODAY.replace(day=1), -1))
        transaction.set_rollback(True)


def test_churners_rank_above_the_customers_who_stayed(jobapi):
    _, result = jobapi

    assert (result["from"], result["to"]) == (date(2026, 5, 1), date(2026, 10, 1))
    assert result["churns"] >= 5
    # A coin toss ranks at 0.5; before the demo modelled leaving, the score ranked churners at 0.4.
    assert result["auc_one_month"] >= 0.75
    assert result["auc_two_months"] >= 0.75


def test_churners_score_several_times_the_stayers_and_cross_the_threshold_far_more_often(jobapi):
    _, result = jobapi
    one, stayers = result["one_month_before"], result["non_churners"]

    assert one["mean_score"] >= 3 * stayers["mean_score"]
    assert one["share"] >= 10 * stayers["share"]
    assert one["above"] >= 3


def test_the_last_invoices_before_a_churn_were_paid_late_or_not_at_all(jobapi):
    tenant, result = jobapi
    checked = 0
    for churner in result["churners"]:
        last_month = add_months(churner["churned_in"], -1)
        invoices = Invoice.objects.for_tenant(tenant).filter(
            customer_id=churner["customer_id"], period_start__gte=add_months(last_month, -2),
            period_start__lte=last_month, total__gt=0, issue_date__lt=TODAY - timedelta(days=30),
        )
        paid_in_time = invoices.filter(paid_at__isnull=False, paid_at__date__lt=F("due_date") + timedelta(days=20))
        assert not paid_in_time.exists(), churner["customer"]
        checked += invoices.count()

    assert checked >= 5

"""A month-end run in a real browser, worked by real Celery workers: finance starts it from the admin,
watches it on its page, the worker is killed mid-run, "Resume now" finishes it on a new worker.

The workers are ``celery worker`` subprocesses on a Redis database of this pytest process's own
(``tests.billing.redis_broker``) and on this test's PostgreSQL, as in ``test_month_end_worker``; the
live server publishes to the same Redis database.
"""

import pytest

from billing.models import BillingRun, BillingRunItem
from customers.models import Role
from customers.periods import last_closed_month, month_key
from tests.billing.redis_broker import process_broker_url, publishing_to
from tests.billing.test_month_end_worker import (
    CUSTOMERS,
    PERIOD,
    Workers,
    assert_one_of_everything,
    subscribers,  # noqa: F401 (a fixture: six customers of tenant A, one of tenant B)
)
from tests.browser import BROWSER_MARKS, admin_login, chromium_page

pytestmark = [*BROWSER_MARKS, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT_MS = 60_000  # a bound so a broken worker fails the test instead of hanging it; the run takes seconds


@pytest.fixture
def broker():
    with publishing_to(process_broker_url()) as url:
        yield url


@pytest.fixture
def workers(transactional_db, broker, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "live-media")
    pool = Workers(broker, tmp_path)
    yield pool
    pool.stop_all()


def count(page, name: str) -> int:
    return int(page.inner_text(f'[data-count="{name}"]'))


def reload_until(page, predicate, what: str, workers: Workers) -> None:
    """Reload the run page (it also refreshes itself every few seconds) until ``predicate(page)``."""
    for _ in range(WAIT_MS // 500):
        if predicate(page):
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError(f"Gave up waiting for {what}. Worker logs:\n{workers.logs()}")


def test_a_run_started_in_the_admin_is_watched_killed_resumed_and_finished(
    live_server, workers, subscribers, member_factory, tenant_a, tenant_b
):
    finance = member_factory(tenant_a, Role.FINANCE)
    default_month = month_key(last_closed_month(tenant_a))
    slow = workers.start(app="tests.billing.month_end_worker_app", render_delay=0.7)

    with chromium_page() as page:
        admin_login(page, live_server, finance.username, "pass-word-123")
        page.goto(f"{live_server.url}/admin/billing/billingrun/start/")
        shown_default = page.input_value("#id_period")
        page.fill("#id_period", f"{PERIOD:%Y-%m}")
        page.check("#id_finalize")
        page.click("input[type=submit][value='Start the run']")
        started_message = page.inner_text("ul.messagelist")
        run_link = page.locator("#result_list a", has_text="Month-end 2025-06")
        reload_until(page, lambda p: run_link.count() == 1, "the worker to create the run", workers)
        run_link.click()
        reload_until(page, lambda p: p.locator('[data-count="through"]').count() and count(p, "through") >= 2,
                     "the first deliveries", workers)

        workers.kill(slow)  # SIGKILL, in the middle of a later invoice
        page.reload()
        after_kill = {name: count(page, name) for name in ("customers", "through", "emailed", "open")}
        resume_shown = page.locator("#run-resume").is_visible()
        workers.start()
        page.click("#run-resume")
        resumed_message = page.inner_text("ul.messagelist")
        reload_until(page, lambda p: count(p, "through") == CUSTOMERS and "Done" in p.inner_text("body"),
                     "the resumed run to finish", workers)
        final = {name: count(page, name) for name in ("customers", "through", "finalized", "emailed", "failed", "open")}
        refreshing = page.locator('meta[http-equiv="refresh"]').count()

    assert shown_default == default_month
    assert started_message == "Month-end 2025-06 of Acme Optimizer started: invoices are being drafted, finalized and sent."
    assert after_kill["customers"] == CUSTOMERS and 2 <= after_kill["through"] < CUSTOMERS
    assert after_kill["emailed"] >= after_kill["through"] and after_kill["open"] == CUSTOMERS - after_kill["through"]
    assert resume_shown
    assert "resumed" in resumed_message
    assert final == {"customers": CUSTOMERS, "through": CUSTOMERS, "finalized": CUSTOMERS, "emailed": CUSTOMERS,
                     "failed": 0, "open": 0}
    assert refreshing == 0  # a finished run stops reloading itself
    assert_one_of_everything(tenant_a, tenant_b, workers)
    run = BillingRun.objects.for_tenant(tenant_a).get()
    assert run.started_by == finance
    assert sorted(BillingRunItem.objects.for_tenant(tenant_a).values_list("status", flat=True)) == ["delivered"] * CUSTOMERS


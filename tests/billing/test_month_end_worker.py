"""Month-end runs against real processes: Celery workers on the machine's Redis and the test PostgreSQL.

Each test starts ``celery worker`` subprocesses pointed at this test database (DATABASE_URL) and at
a Redis database of this pytest process's own (``tests.billing.redis_broker``), with mail
written to files and PDFs to a temporary MEDIA_ROOT, then checks what they left behind: one
invoice per customer, numbered without gaps, one PDF file and one email each.
"""

import email
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from billing.models import BillingRun, BillingRunItem, Invoice
from billing.tasks import month_end_start
from customers.money import Money
from customers.tenancy import platform_scope
from tests.billing.redis_broker import BROKER_VARIABLES, process_broker_url, publishing_to
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PERIOD = date(2025, 6, 1)
CUSTOMERS = 6
CHUNK = 2  # three chunks, so two workers share the run
WAIT_SECONDS = 60  # a bound so a broken worker fails the test instead of hanging it; runs take seconds


@pytest.fixture
def broker():
    with publishing_to(process_broker_url()) as url:
        yield url


class Workers:
    """Celery worker subprocesses on this test's database and broker; all are killed at teardown."""

    def __init__(self, broker_url: str, root: Path):
        self.broker_url, self.root = broker_url, root
        self.media, self.mail = root / "media", root / "mail"
        self.media.mkdir()
        self.mail.mkdir()
        self.processes: list[subprocess.Popen] = []

    def database_url(self) -> str:
        db = connection.settings_dict
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        if db["HOST"].startswith("/"):  # the embedded server listens on a unix socket only
            return f"postgres://{auth}@{quote(db['HOST'], safe='')}/{db['NAME']}"
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"

    def environment(self, *, render_delay: float = 0) -> dict[str, str]:
        """A worker's environment: this process's, on this test's database and broker (no other broker
        variable, as Celery would prefer it to CELERY_BROKER_URL)."""
        inherited = {name: value for name, value in os.environ.items() if name not in BROKER_VARIABLES}
        return {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": "worker-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DATABASE_URL": self.database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail),
            "MEDIA_ROOT": str(self.media),
            "LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",
            "MONTH_END_TEST_RENDER_DELAY": str(render_delay),
        }

    def start(self, *, app: str = "portal", render_delay: float = 0) -> subprocess.Popen:
        name = f"month-end-{len(self.processes)}"
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "--pool=solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "WARNING", "-n", f"{name}@%h"],
            cwd=settings.BASE_DIR, env=self.environment(render_delay=render_delay), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)

    def queue_idle(self) -> bool:
        """Nothing waiting in the queue, nothing taken and not yet acknowledged."""
        import redis

        client = redis.Redis.from_url(self.broker_url)
        return client.llen("celery") == 0 and client.hlen("unacked") == 0

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.root.glob("*.log")))

    def pdfs(self) -> list[str]:
        return sorted(path.name for path in self.media.rglob("*.pdf"))

    def emails(self) -> list[tuple[str, str]]:
        """(recipient, subject) of every message the workers wrote, one per message."""
        sent = []
        for path in self.mail.glob("*.log"):
            for chunk in path.read_text().split("-" * 79):
                if chunk.strip():
                    message = email.message_from_string(chunk.strip())
                    sent.append((message["To"], message["Subject"]))
        return sorted(sent)


@pytest.fixture
def workers(transactional_db, broker, tmp_path):
    pool = Workers(broker, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def subscribers(tenant_a, tenant_b):
    with platform_scope():
        customers = []
        for n in range(CUSTOMERS):
            customer = CustomerFactory(tenant=tenant_a, name=f"Customer {n}", billing_emails=[f"ap{n}@example.com"])
            contract = ContractFactory(customer=customer, tenant=tenant_a, start_date=PERIOD)
            ContractLineFactory(contract=contract, tenant=tenant_a, unit_price=Money("100.00", "USD"))
            customers.append(customer)
        other = CustomerFactory(tenant=tenant_b, billing_emails=["ap@bergen.example.se"], currency="SEK")
        ContractLineFactory(contract=ContractFactory(customer=other, tenant=tenant_b, start_date=PERIOD), tenant=tenant_b)
    return customers


def start_run(tenant):
    """Queue the run as the app does, on the broker ``publishing_to`` gave this process (the workers')."""
    month_end_start.apply_async((tenant.pk, PERIOD.isoformat(), True, None, CHUNK))


def wait_until(predicate, workers: Workers, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"Gave up waiting for {what}. Worker logs:\n{workers.logs()}")


def run_status(tenant) -> str | None:
    run = BillingRun.objects.for_tenant(tenant).first()
    return run.status if run else None


def delivered(tenant) -> int:
    return BillingRunItem.objects.for_tenant(tenant).filter(status="delivered").count()


def assert_one_of_everything(tenant, tenant_b, workers):
    invoices = list(Invoice.objects.for_tenant(tenant).order_by("sequence_number"))
    assert sorted(i.customer.name for i in invoices) == [f"Customer {n}" for n in range(CUSTOMERS)]
    assert [i.sequence_number for i in invoices] == list(range(1, CUSTOMERS + 1))
    assert {i.status for i in invoices} == {"finalized"}
    assert workers.pdfs() == sorted(f"{i.number}.pdf" for i in invoices)
    assert workers.emails() == sorted(
        (f"ap{i.customer.name.split()[-1]}@example.com", f"Invoice {i.number} from {tenant.name}") for i in invoices
    )
    run = BillingRun.objects.for_tenant(tenant).get()
    assert (run.status, run.customers, run.finalized, run.emailed, run.failed) == ("done", CUSTOMERS, CUSTOMERS, CUSTOMERS, 0)
    assert not Invoice.objects.for_tenant(tenant_b).exists()


def test_running_twice_gives_one_invoice_pdf_and_email_per_customer(workers, subscribers, tenant_a, tenant_b):
    workers.start()

    start_run(tenant_a)
    wait_until(lambda: run_status(tenant_a) == "done", workers, "the first run")
    start_run(tenant_a)
    wait_until(lambda: workers.queue_idle(), workers, "the second start to be done")

    assert_one_of_everything(tenant_a, tenant_b, workers)
    assert BillingRun.objects.for_tenant(tenant_a).count() == 1


def test_two_workers_starting_the_same_run_at_once_share_it(workers, subscribers, tenant_a, tenant_b):
    workers.start()
    workers.start()

    start_run(tenant_a)
    start_run(tenant_a)
    wait_until(lambda: run_status(tenant_a) == "done", workers, "the run")

    assert_one_of_everything(tenant_a, tenant_b, workers)


def test_a_worker_killed_mid_run_and_a_rerun_finish_with_one_of_everything(workers, subscribers, tenant_a, tenant_b):
    slow = workers.start(app="tests.billing.month_end_worker_app", render_delay=0.5)
    start_run(tenant_a)
    wait_until(lambda: delivered(tenant_a) >= 2, workers, "the first deliveries")

    workers.kill(slow)  # SIGKILL, in the middle of the next invoice
    left_behind = delivered(tenant_a)
    workers.start()
    start_run(tenant_a)
    wait_until(lambda: run_status(tenant_a) == "done", workers, "the re-run")

    assert 2 <= left_behind < CUSTOMERS
    assert_one_of_everything(tenant_a, tenant_b, workers)

"""manage.py demo_load: three believable tenants, every login, and a second run that changes nothing.

The demo is loaded once for the module (twice, in fact: the second run must be a no-op) inside a
transaction that is rolled back at the end, so the other test modules never see it.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction

from billing.models import (
    BillableMetric,
    BillingRun,
    BillingRunItem,
    BillingSettings,
    CreditNote,
    CreditRequest,
    Invoice,
    InvoiceDelivery,
    InvoiceLine,
    PriceTerms,
    UsageEvent,
)
from billing.references import ocr_problem
from customers.models import (
    Contact,
    Contract,
    ContractChange,
    ContractLine,
    Customer,
    Membership,
    PortalAccess,
    Role,
    Tenant,
)
from customers.tenancy import platform_scope, tenant_scope
from revenue.economics.costs import cost_to_serve, revenue_by_customer_month
from revenue.models import (
    AlertDelivery,
    AnomalyAlert,
    Band,
    CustomerCost,
    ModelPrice,
    Opportunity,
    PricePlan,
    ReportDelivery,
    WhatIfRun,
)

pytestmark = pytest.mark.slow  # builds the three demo tenants (about 40 s), then rebuilds them once

TODAY = date(2026, 11, 15)
PASSWORD = "demo-pass-2026"
SLUGS = ["optimizer", "jobapi", "konsult"]
ARGS = {"scale": 0.1, "seed": 7, "today": TODAY.isoformat()}


def _counts() -> dict[str, int]:
    with platform_scope():
        return {
            "tenants": Tenant.objects.count(),
            "customers": Customer.objects.count(),
            "contacts": Contact.objects.count(),
            "contracts": Contract.objects.count(),
            "lines": ContractLine.objects.count(),
            "changes": ContractChange.objects.count(),
            "opportunities": Opportunity.objects.count(),
            "users": get_user_model().objects.count(),
            "memberships": Membership.objects.count(),
            "portal accesses": PortalAccess.objects.count(),
            "metrics": BillableMetric.objects.count(),
            "price terms": PriceTerms.objects.count(),
            "usage events": UsageEvent.objects.count(),
            "invoices": Invoice.objects.count(),
            "invoice lines": InvoiceLine.objects.count(),
            "credit notes": CreditNote.objects.count(),
            "credit requests": CreditRequest.objects.count(),
        }


@dataclass
class Loaded:
    after_first: dict
    after_second: dict
    second_output: str


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("demo_load", verbosity=0, **ARGS)
        after_first = _counts()
        out = StringIO()
        call_command("demo_load", verbosity=1, stdout=out, **ARGS)
        yield Loaded(after_first, _counts(), out.getvalue())
        transaction.set_rollback(True)


@pytest.fixture
def tenants(demo, db):
    with platform_scope():
        return {t.slug: t for t in Tenant.objects.filter(slug__in=SLUGS)}


def test_demo_creates_the_three_tenants_with_their_currencies_and_locales(tenants):
    summary = {slug: (t.reporting_currency, t.locale, t.vat_rate) for slug, t in tenants.items()}

    assert summary == {"optimizer": ("USD", "en", 0), "jobapi": ("USD", "en", 0), "konsult": ("SEK", "sv", 25)}


def test_second_run_changes_no_row_counts(demo):
    assert demo.after_second == demo.after_first
    assert demo.after_first["customers"] > 20
    assert demo.after_first["usage events"] > 1000
    assert demo.after_first["credit notes"] == 3


def test_second_run_reports_each_tenant_already_loaded(demo):
    assert demo.second_output.count("already loaded") == 3


def test_login_table_lists_every_login_with_its_password_and_place(demo):
    table = demo.second_output.split("Demo logins", 1)[1]
    expected = ["admin", "demo-multi"] + [f"{s}-{r}" for s in SLUGS for r in ("owner", "manager", "finance", "viewer")]
    expected += [f"{s}-customer{n}" for s in SLUGS for n in (1, 2, 3)]

    assert all(username in table for username in expected)
    assert table.count(PASSWORD) == len(expected) + 1  # demo-multi has a row per tenant
    assert "/admin/" in table


@pytest.mark.parametrize("slug", SLUGS)
def test_each_role_login_is_staff_with_that_role_in_its_tenant(tenants, slug):
    roles = {"owner": Role.OWNER, "manager": Role.ACCOUNT_MANAGER, "finance": Role.FINANCE, "viewer": Role.VIEWER}
    with platform_scope():
        found = {
            m.user.username: (m.role, m.user.is_staff, m.user.check_password(PASSWORD))
            for m in Membership.objects.filter(tenant=tenants[slug], user__username__startswith=f"{slug}-")
        }

    assert found == {f"{slug}-{suffix}": (role, True, True) for suffix, role in roles.items()}


def test_demo_multi_is_account_manager_in_two_tenants_and_manages_customers(tenants):
    with platform_scope():
        memberships = sorted(
            (m.tenant.slug, m.role) for m in Membership.objects.filter(user__username="demo-multi")
        )
        managed = list(  # read inside the scope: row-level security decides when the query runs
            Customer.objects.filter(account_manager__username="demo-multi").values_list("tenant__slug", flat=True)
        )

    assert memberships == [("konsult", Role.ACCOUNT_MANAGER), ("optimizer", Role.ACCOUNT_MANAGER)]
    assert set(managed) == {"konsult", "optimizer"}


def test_konsult_staff_read_swedish_and_demo_multi_chose_english(tenants):
    with platform_scope():
        languages = {
            (m.tenant.slug, m.user.username): m.staff_language
            for m in Membership.objects.filter(tenant__slug__in=SLUGS).select_related("tenant", "user")
        }

    assert {k: v for k, v in languages.items() if k[0] == "konsult"} == {
        **{("konsult", f"konsult-{suffix}"): "sv" for suffix in ("owner", "manager", "finance", "viewer")},
        ("konsult", "demo-multi"): "en",
    }
    assert {v for k, v in languages.items() if k[0] != "konsult"} == {"en"}


def test_konsult_manager_gets_the_admin_in_swedish(tenants, client):
    client.force_login(get_user_model().objects.get(username="konsult-manager"))

    response = client.get("/admin/")

    assert response["Content-Language"] == "sv"
    assert "Webbplatsadministration" in response.content.decode() and "Affärsmöjligheter" in response.content.decode()


@pytest.mark.parametrize("slug", SLUGS)
def test_portal_users_reach_their_customer_without_staff_rights(tenants, slug):
    with platform_scope():
        accesses = PortalAccess.objects.filter(tenant=tenants[slug]).select_related("user", "customer")
        found = {(a.user.username, a.user.is_staff, a.user.check_password(PASSWORD)) for a in accesses}
        distinct_customers = {a.customer_id for a in accesses}

    assert found == {(f"{slug}-customer{n}", False, True) for n in (1, 2, 3)}
    assert len(distinct_customers) == 3


def test_admin_is_a_platform_superuser(demo, db):
    admin = get_user_model().objects.get(username="admin")

    assert (admin.is_superuser, admin.is_staff, admin.check_password(PASSWORD)) == (True, True, True)


@pytest.mark.parametrize("slug", SLUGS)
def test_history_has_upgrades_downgrades_cancellations_and_reactivations(tenants, slug):
    with platform_scope():
        kinds = set(ContractChange.objects.filter(tenant=tenants[slug]).values_list("kind", flat=True))

    assert {"new", "upgrade", "downgrade", "cancellation", "reactivation"} <= kinds


@pytest.mark.parametrize("slug", SLUGS)
def test_history_spans_24_months_and_never_passes_today(tenants, slug):
    with platform_scope():
        starts = Contract.objects.filter(tenant=tenants[slug]).values_list("start_date", flat=True)
        changes = ContractChange.objects.filter(tenant=tenants[slug]).values_list("effective_on", flat=True)

    assert min(starts) >= date(2024, 12, 1)
    assert min(starts) < date(2025, 3, 1)
    assert max(starts) <= TODAY
    assert max(changes) <= TODAY


@pytest.mark.parametrize("slug", SLUGS)
def test_pipeline_has_every_band_a_stale_deal_and_one_without_close_date(tenants, slug):
    now = datetime.combine(TODAY, time(12), tzinfo=ZoneInfo("UTC"))
    with platform_scope():
        open_deals = Opportunity.objects.filter(tenant=tenants[slug]).open()
        bands = {band for band in Band if open_deals.in_band(band).exists()}
        stale = open_deals.stale(now=now).count()
        undated = open_deals.filter(expected_close_on__isnull=True).count()

    assert bands == set(Band)
    assert stale >= 1
    assert undated >= 1


@pytest.mark.parametrize("slug", SLUGS)
def test_open_pipeline_closes_within_the_next_four_quarters(tenants, slug):
    with platform_scope():
        dates = (
            Opportunity.objects.filter(tenant=tenants[slug], expected_close_on__isnull=False)
            .open()
            .values_list("expected_close_on", flat=True)
        )

    assert min(dates) > TODAY
    assert max(dates) < date(2027, 10, 1)


@pytest.mark.parametrize("slug", SLUGS)
def test_won_deals_became_active_contracts_and_lost_deals_have_reasons(tenants, slug):
    with platform_scope():
        deals = Opportunity.objects.filter(tenant=tenants[slug])
        won_statuses = set(
            deals.filter(stage=Opportunity.Stage.WON).values_list("won_contract__status", flat=True)
        )
        lost_reasons = list(deals.filter(stage=Opportunity.Stage.LOST).values_list("lost_reason", flat=True))

    assert won_statuses and won_statuses <= {Contract.Status.ACTIVE, Contract.Status.ENDED}
    assert lost_reasons and all(lost_reasons)


def test_consultancy_customers_are_swedish_and_bill_in_sek(tenants):
    with platform_scope():
        customers = Customer.objects.filter(tenant=tenants["konsult"])
        profile = set(customers.values_list("language", "country", "currency"))
        line_currencies = set(
            ContractLine.objects.filter(tenant=tenants["konsult"]).values_list("unit_price_currency", flat=True)
        )

    assert profile == {("sv", "SE", "SEK")}
    assert line_currencies == {"SEK"}


def test_konsult_invoices_carry_ocr_numbers_and_the_others_iban_details(tenants):
    with platform_scope():
        details = {
            s.tenant.slug: (s.payment_method, s.bankgiro, s.iban[:4])
            for s in BillingSettings.objects.filter(tenant__in=tenants.values()).select_related("tenant")
        }
        issued = Invoice.objects.filter(status__in=["finalized", "paid"])
        konsult_ocrs = list(issued.filter(tenant=tenants["konsult"]).values_list("ocr_reference", flat=True))
        others_with_ocr = issued.exclude(tenant=tenants["konsult"]).exclude(ocr_reference="").count()

    assert details == {
        "konsult": ("bankgiro", "123-4566", ""), "jobapi": ("iban", "", "GB82"), "optimizer": ("iban", "", "DE89"),
    }
    assert konsult_ocrs and all(ocr and not ocr_problem(ocr) for ocr in konsult_ocrs)
    assert len(set(konsult_ocrs)) == len(konsult_ocrs) and others_with_ocr == 0


def test_consultancy_seats_change_over_time_at_150_sek(tenants):
    with platform_scope():
        seat_lines = ContractLine.objects.filter(tenant=tenants["konsult"], kind=ContractLine.Kind.PER_SEAT)
        prices = set(seat_lines.values_list("unit_price", flat=True))
        quantities = set(seat_lines.filter(contract__customer__external_ref="norrsken-logistik").values_list(
            "quantity", flat=True))

    assert prices == {150}
    assert quantities == {25, 40, 35}


def test_every_customer_has_a_manager_first_contact_acquisition_cost_and_segment(tenants):
    with platform_scope():
        incomplete = Customer.objects.filter(tenant__slug__in=SLUGS).filter(
            account_manager__isnull=True
        ) | Customer.objects.filter(tenant__slug__in=SLUGS, first_contact_on__isnull=True) | Customer.objects.filter(
            tenant__slug__in=SLUGS, acquisition_cost__isnull=True
        ) | Customer.objects.filter(tenant__slug__in=SLUGS, segment="")

        assert list(incomplete) == []


def test_every_demo_tenant_and_customer_has_an_e_invoice_address_and_konsults_e_invoices_validate(tenants):
    from billing.einvoice import credit_note_ubl, invoice_ubl
    from tests.billing.einvoice_checks import assert_valid_ubl, ubl_figures

    with platform_scope():
        assert {t.slug: bool(t.peppol_id) for t in tenants.values()} == {slug: True for slug in SLUGS}
        # Every customer has a Peppol id, except British ones (no Peppol scheme of theirs in the demo), which
        # have a VAT number and are addressed by their billing email.
        unaddressed = Customer.objects.filter(tenant__slug__in=SLUGS, peppol_id="").exclude(country="GB", vat_number__startswith="GB")
        assert list(unaddressed) == []
        konsult = tenants["konsult"]
        invoices = list(
            Invoice.objects.for_tenant(konsult).filter(status__in=["finalized", "paid"], lines__isnull=False)
            .distinct().select_related("tenant", "customer", "contract").order_by("-issue_date", "-id")[:3]
        )
        notes = list(CreditNote.objects.for_tenant(konsult).select_related("tenant", "customer", "invoice")[:1])
    assert invoices
    for invoice in invoices:
        figures = ubl_figures(assert_valid_ubl(invoice_ubl(invoice=invoice)[0]))
        assert (figures["net"], figures["tax"], figures["total"]) == (
            invoice.subtotal - invoice.discount_total, invoice.vat_amount, invoice.total
        )
    for note in notes:
        assert ubl_figures(assert_valid_ubl(credit_note_ubl(credit_note=note)[0], credit_note=True))["total"] == note.total


def test_job_api_plan_fees_follow_the_price_list(tenants):
    with platform_scope():
        monthly_fees = set(
            ContractLine.objects.filter(
                tenant=tenants["jobapi"], description="Plan fee", contract__billing_interval=1
            ).values_list("unit_price", flat=True)
        )

    assert monthly_fees <= {0, 29, 99, 299}


def test_reset_rebuilds_the_same_demo_from_the_same_seed(demo, db):
    before = _counts()
    with platform_scope():
        names_before = sorted(Customer.objects.filter(tenant__slug__in=SLUGS).values_list("name", flat=True))

    call_command("demo_load", verbosity=0, reset=True, **ARGS)

    with platform_scope():
        names_after = sorted(Customer.objects.filter(tenant__slug__in=SLUGS).values_list("name", flat=True))
    assert _counts() == before
    assert names_after == names_before


def test_a_badly_written_today_is_a_clear_error():
    with pytest.raises(CommandError, match="--today must be a date as YYYY-MM-DD"):
        call_command("demo_load", today="15/11/2026", verbosity=0)


def test_a_scale_of_zero_is_refused():
    with pytest.raises(CommandError, match="--scale must be above 0"):
        call_command("demo_load", scale=0, verbosity=0)


# --- billing data ------------------------------------------------------------------------------

CLOSED_MONTHS = [date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)]


@pytest.mark.parametrize("slug", SLUGS)
def test_each_tenant_has_issued_invoices_with_gapless_numbers(tenants, slug):
    prefix = tenants[slug].invoice_number_prefix
    with platform_scope():
        issued = Invoice.objects.filter(tenant=tenants[slug]).exclude(status=Invoice.Status.DRAFT)
        sequence = sorted(issued.values_list("sequence_number", flat=True))
        numbers = set(issued.values_list("number", "sequence_number", "issue_date__year"))

    assert len(sequence) >= 6  # two customers a month at least, at this small scale
    assert sequence == list(range(1, len(sequence) + 1))
    assert {number for number, _, _ in numbers} == {f"{prefix}{year}-{n:05d}" for _, n, year in numbers}


@pytest.mark.parametrize("slug", SLUGS)
def test_three_closed_months_are_issued_older_ones_paid_and_this_month_is_a_draft(tenants, slug):
    with platform_scope():
        statuses = {
            month: set(Invoice.objects.filter(tenant=tenants[slug], period_start=month).values_list("status", flat=True))
            for month in CLOSED_MONTHS + [date(2026, 11, 1)]
        }
        rendered = set(Invoice.objects.filter(tenant=tenants[slug]).exclude(pdf="").values_list("period_start", flat=True))

    assert statuses[date(2026, 8, 1)] == {Invoice.Status.PAID}
    assert statuses[date(2026, 9, 1)] == {Invoice.Status.PAID}
    assert statuses[date(2026, 10, 1)] <= {Invoice.Status.PAID, Invoice.Status.FINALIZED}
    assert Invoice.Status.FINALIZED in statuses[date(2026, 10, 1)]
    assert statuses[date(2026, 11, 1)] == {Invoice.Status.DRAFT}
    assert rendered == {date(2026, 10, 1)}  # the last month-end emailed its PDFs; older ones render on download


ALL_CLOSED_MONTHS = [date(2026, month, 1) for month in range(5, 11)]


@pytest.mark.parametrize("slug", SLUGS)
def test_each_closed_month_went_through_a_finished_month_end_run(tenants, slug):
    tenant = tenants[slug]
    with platform_scope():
        runs = list(BillingRun.objects.filter(tenant=tenant).order_by("period_start"))
        invoiced = {
            month: Invoice.objects.filter(tenant=tenant, period_start=month).exclude(status="draft").count()
            for month in ALL_CLOSED_MONTHS
        }
        items = {run.period_start: BillingRunItem.objects.filter(run=run).count() for run in runs}
        emailed = set(InvoiceDelivery.objects.filter(tenant=tenant, status="sent").values_list(
            "invoice__period_start", flat=True))
        finance = {run.started_by.username for run in runs}

    assert [(run.period_start, run.status) for run in runs] == [(month, "done") for month in ALL_CLOSED_MONTHS]
    assert [(run.customers, run.finalized, run.failed) for run in runs] == [(n, n, 0) for n in invoiced.values()]
    assert items == invoiced
    assert runs[-1].emailed > 0 and [run.emailed for run in runs[:-1]] == [0] * 5
    assert emailed == {date(2026, 10, 1)}
    assert finance == {f"{slug}-finance"}
    assert [run.finished_at.date() for run in runs] == [date(2026, month + 1, 1) for month in range(5, 11)]


@pytest.mark.parametrize("slug", SLUGS)
def test_each_closed_month_report_was_emailed_to_the_owner(tenants, slug):
    tenant = tenants[slug]
    with platform_scope():
        reports = sorted(ReportDelivery.objects.filter(tenant=tenant).values_list("kind", "period", "recipient", "status"))
        owner = Membership.objects.get(tenant=tenant, user__username=f"{slug}-owner").user.email

    assert reports == [("monthly", f"{month:%Y-%m}", owner, "sent") for month in ALL_CLOSED_MONTHS]


def test_every_usage_alert_was_emailed_the_showcase_spike_to_its_account_manager(tenants):
    with platform_scope():
        unsent = AnomalyAlert.objects.filter(tenant__in=tenants.values(), emailed_at__isnull=True).count()
        spike = AnomalyAlert.objects.select_related("customer__account_manager").get(
            tenant=tenants["jobapi"], customer__external_ref="fernhill-recruiting", kind="spike", measure="events",
            period_start=TODAY - timedelta(days=5),
        )
        rows = list(AlertDelivery.objects.filter(alert=spike).values_list("recipient", "status"))

    assert unsent == 0
    assert rows == [(spike.customer.account_manager.email, "sent")]


@pytest.mark.parametrize("slug", SLUGS)
def test_each_tenant_has_one_credit_note_and_a_credit_waiting_for_approval(tenants, slug):
    with platform_scope():
        notes = list(CreditNote.objects.filter(tenant=tenants[slug]).values_list("number", "invoice__period_start"))
        statuses = sorted(CreditRequest.objects.filter(tenant=tenants[slug]).values_list("status", flat=True))

    prefix = tenants[slug].invoice_number_prefix
    assert notes == [(f"{prefix}CN-{date.today().year}-00001", date(2026, 10, 1))]
    assert statuses == [CreditRequest.Status.APPLIED, CreditRequest.Status.APPROVED, CreditRequest.Status.REQUESTED]


@pytest.mark.parametrize("slug", SLUGS)
def test_every_usage_line_is_priced_by_a_metric_of_its_tenant(tenants, slug):
    with platform_scope():
        unpriced = ContractLine.objects.filter(
            tenant=tenants[slug], kind=ContractLine.Kind.USAGE, price_terms__isnull=True
        ).count()
        metrics = set(BillableMetric.objects.filter(tenant=tenants[slug]).values_list("code", flat=True))
        priced_by = set(PriceTerms.objects.filter(tenant=tenants[slug]).values_list("metric", flat=True))

    assert unpriced == 0
    assert priced_by and priced_by <= metrics


def test_job_api_meters_jobs_with_failures_and_has_a_one_dollar_minimum(tenants):
    tenant = tenants["jobapi"]
    with platform_scope():
        metrics = set(BillableMetric.objects.filter(tenant=tenant).values_list("code", flat=True))
        failed = UsageEvent.objects.filter(tenant=tenant, metric_code="processed_jobs", properties__status="failed")
        minimum = BillingSettings.objects.get(tenant=tenant).minimum_invoice_amount
        overage_lines = InvoiceLine.objects.filter(tenant=tenant, description__contains="included").count()

    assert metrics == {"created_jobs", "processed_jobs", "confirmed_jobs", "failed_jobs", "compute_ms", "data_gb"}
    assert failed.exists()
    assert minimum == 1
    assert overage_lines > 0


def test_optimizer_bills_its_share_of_savings_and_consultancy_its_hours_with_moms(tenants):
    with platform_scope():
        savings_lines = InvoiceLine.objects.filter(
            tenant=tenants["optimizer"], contract_line__kind=ContractLine.Kind.USAGE, amount__gt=0
        )
        hours_lines = InvoiceLine.objects.filter(tenant=tenants["konsult"], description="Konsulttimmar", amount__gt=0)
        konsult_vat = set(Invoice.objects.filter(tenant=tenants["konsult"]).values_list("vat_rate", flat=True))

    assert savings_lines.exists()
    assert hours_lines.exists()
    assert konsult_vat == {25}


# --- customer economics ------------------------------------------------------------------------


def test_each_tenant_has_a_price_plan_catalog_and_its_kind_of_cost_to_serve(tenants):
    with platform_scope():
        plans = {slug: sorted(PricePlan.objects.filter(tenant=t).values_list("code", flat=True))
                 for slug, t in tenants.items()}
        sources = {slug: set(CustomerCost.objects.filter(tenant=t).values_list("source", flat=True))
                   for slug, t in tenants.items()}
        model_prices = ModelPrice.objects.filter(tenant=tenants["jobapi"]).count()

    assert plans == {"optimizer": ["flat-1500", "rate-15-plus-300", "rate-25"],
                     "jobapi": ["flat-149", "graduated", "hybrid", "pure-usage"],
                     "konsult": ["fast-15000", "timpris-1650"]}
    assert sources == {"optimizer": {"imported"}, "jobapi": set(), "konsult": {"entered"}}
    assert model_prices == 7  # six models and one price cut


def test_every_job_names_its_model_and_tokens_and_the_price_table_prices_them_all(tenants):
    tenant = tenants["jobapi"]
    with tenant_scope(tenant):
        without_model = UsageEvent.objects.for_tenant(tenant).filter(metric_code="processed_jobs").exclude(
            properties__has_key="model").count()
        october = cost_to_serve(tenant=tenant, first=date(2026, 10, 1), last=date(2026, 10, 1))

    assert without_model == 0
    assert sum(row.calls for row in october.values()) > 100
    assert sum(row.unpriced_calls for row in october.values()) == 0
    assert all(row.token_cost > 0 for row in october.values() if row.calls)


def test_the_spike_of_the_showcase_customer_raised_an_alert(tenants):
    with platform_scope():
        alerts = set(AnomalyAlert.objects.filter(tenant=tenants["jobapi"], customer__external_ref="fernhill-recruiting")
                     .values_list("kind", "measure", "period_start"))

    assert ("spike", "events", TODAY - timedelta(days=5)) in alerts


def test_a_year_paid_before_the_billing_history_is_invoiced_and_earned_a_twelfth_a_month(tenants):
    tenant = tenants["optimizer"]
    with tenant_scope(tenant):
        brightline = Customer.objects.for_tenant(tenant).get(external_ref="brightline-health")
        fee = InvoiceLine.objects.for_tenant(tenant).get(invoice__customer=brightline,
                                                          invoice__period_start=date(2026, 2, 1),
                                                          description="Platform fee and SLA")
        support = InvoiceLine.objects.for_tenant(tenant).get(invoice__customer=brightline,
                                                              description="Premium support and SLA")  # yearly too
        august = Invoice.objects.for_tenant(tenant).get(customer=brightline, period_start=date(2026, 8, 1))
        earned = revenue_by_customer_month(tenant=tenant, first=date(2026, 8, 1), last=date(2026, 8, 1))

    assert fee.amount == Decimal("60000.00")  # the renewed yearly fee, billed in February
    assert (support.invoice.period_start, support.amount) == (date(2026, 5, 1), Decimal("10000.00"))
    # August earns its own invoice, a twelfth of February's fee and a twelfth of May's support.
    assert earned[(brightline.pk, date(2026, 8, 1))] == august.total - august.vat_amount + Decimal("5000.00") + Decimal(
        "833.33")


@pytest.mark.parametrize("slug", SLUGS)
def test_the_what_if_page_has_figures_on_the_first_visit(tenants, slug):
    with platform_scope():
        runs = list(WhatIfRun.objects.filter(tenant=tenants[slug]).values_list("months", "status", "figures"))
        plans = PricePlan.objects.filter(tenant=tenants[slug]).count()

    assert [(months, status) for months, status, _ in runs] == [(3, WhatIfRun.Status.DONE)]
    figures = runs[0][2]
    codes = [row["plan"]["code"] for row in figures["rows"]]
    assert codes[0] == "actual" and len(codes) == 1 + plans
    assert isinstance(figures["whatif"]["totals"]["actual"]["revenue"], Decimal)


def test_admin_must_use_two_factor_and_the_demo_says_how_staff_are_free_to(demo, db):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.demo.logins import DEMO_TOTP_DEVICE

    devices = TOTPDevice.objects.filter(confirmed=True)
    assert list(devices.values_list("user__username", "name")) == [("admin", DEMO_TOTP_DEVICE)]
    with platform_scope():
        assert not Tenant.objects.filter(staff_two_factor_required=True).exists()
    note = demo.second_output.split("Demo logins", 1)[1]
    assert "manage.py otp_code admin" in note and devices.get().config_url in note
    assert 'turns it on under "Two-factor authentication"' in note

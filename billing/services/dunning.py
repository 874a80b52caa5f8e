"""Dunning: reminding customers of overdue invoices, step by step, each step once per invoice.

The tenant's ``DunningSchedule`` lists steps ("N days overdue", texts in English and Swedish, an
optional late fee). ``dunning_run`` (daily, per tenant, from ``billing.tasks.dunning_tick``) looks
at every overdue invoice with something still due and sends the latest step that is due:

- "Days overdue" are counted on the tenant's calendar: ``tenant_today − due_date``.
- Each step goes out at most once per invoice: a ``DunningReminder`` row, unique per tenant,
  invoice and step, is decided under a lock on the invoice, and each recipient's email is an
  outbox message (``billing.outbox``), so a crash or a second run never sends twice, and a mail
  server failure is recorded and retried by the next run.
- Missed steps are skipped, not caught up: an invoice already 25 days overdue the first time it is
  seen (a new schedule, a task that did not run) gets the 20-day step only; the 3- and 10-day steps
  are recorded as ``skipped``. A failed step is retried only while it is the latest due step.
- Nothing goes out for an invoice that became paid (or credited to zero): the amount due is read
  again under the invoice's row lock right before each email is composed (payments lock the same
  row), and the reminder is then ``cancelled``. Partial payments and credit notes lower the amount
  the email names.
- A step's late fee (fixed, or a percentage of the amount due rounded half up to the currency's
  minor unit) becomes a ``PendingCharge`` once the reminder has been sent to someone; the
  customer's next draft invoice bills it once (``billing.services.drafts``).
- The text is in the customer's language (Swedish for "sv", else English). ``{pay_url}`` is filled
  by the ``DUNNING_PAY_URL`` hook (a dotted path to ``f(invoice) -> str`` in settings); without a
  link, a line naming it is left out.
"""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import formataddr
from string import Formatter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from billing import formatting
from billing.models import (
    DunningReminder,
    DunningReminderDelivery,
    DunningSchedule,
    DunningStep,
    Invoice,
    PaymentStatus,
    PendingCharge,
)
from billing.models.dunning import MAX_STEPS
from billing.outbox import OutboxMessage, outbox_send
from customers.models import Tenant
from customers.money import money_round
from customers.periods import tenant_today

FEE_ROUNDING = ROUND_HALF_UP

_SIGN_OFF_EN = "\n\nKind regards,\n{tenant_name}"
_SIGN_OFF_SV = "\n\nVänliga hälsningar\n{tenant_name}"

# The schedule a tenant starts with: 3, 10 and 20 days overdue, no late fees (finance adds them).
DEFAULT_STEPS = [
    {
        "days_overdue": 3,
        "subject_en": "Reminder: invoice {invoice_number} is overdue",
        "body_en": (
            "Hello {customer_name},\n\n"
            "Our records show that invoice {invoice_number}, due on {due_date}, has not been paid yet. "
            "The amount due is {amount_due}.\n\n"
            "If you have already paid, thank you, and please disregard this reminder. "
            "Otherwise we would be grateful if you could pay at your earliest convenience.\n"
            "Pay online: {pay_url}" + _SIGN_OFF_EN
        ),
        "subject_sv": "Påminnelse: faktura {invoice_number} har förfallit",
        "body_sv": (
            "Hej {customer_name},\n\n"
            "Enligt vår bokföring är faktura {invoice_number} med förfallodag {due_date} ännu inte betald. "
            "Att betala: {amount_due}.\n\n"
            "Om du redan har betalat tackar vi för det och ber dig bortse från denna påminnelse. "
            "Annars är vi tacksamma om du betalar så snart som möjligt.\n"
            "Betala online: {pay_url}" + _SIGN_OFF_SV
        ),
    },
    {
        "days_overdue": 10,
        "subject_en": "Second reminder: invoice {invoice_number} is {days_overdue} days overdue",
        "body_en": (
            "Hello {customer_name},\n\n"
            "Invoice {invoice_number} was due on {due_date} and is now {days_overdue} days overdue. "
            "The amount due is {amount_due}.\n\n"
            "Please pay it now, or reply to this email if something about the invoice is unclear.\n"
            "Pay online: {pay_url}" + _SIGN_OFF_EN
        ),
        "subject_sv": "Andra påminnelsen: faktura {invoice_number} är {days_overdue} dagar försenad",
        "body_sv": (
            "Hej {customer_name},\n\n"
            "Faktura {invoice_number} förföll till betalning {due_date} och är nu {days_overdue} dagar försenad. "
            "Att betala: {amount_due}.\n\n"
            "Vänligen betala nu, eller svara på detta mejl om något på fakturan är oklart.\n"
            "Betala online: {pay_url}" + _SIGN_OFF_SV
        ),
    },
    {
        "days_overdue": 20,
        "subject_en": "Final reminder: invoice {invoice_number}",
        "body_en": (
            "Hello {customer_name},\n\n"
            "Despite our earlier reminders, invoice {invoice_number}, due on {due_date}, is still unpaid. "
            "The amount due is {amount_due}.\n\n"
            "Please pay within five days. If you cannot, contact us so that we can agree on a plan "
            "before we take further steps.\n"
            "Pay online: {pay_url}" + _SIGN_OFF_EN
        ),
        "subject_sv": "Sista påminnelsen: faktura {invoice_number}",
        "body_sv": (
            "Hej {customer_name},\n\n"
            "Trots tidigare påminnelser är faktura {invoice_number} med förfallodag {due_date} fortfarande obetald. "
            "Att betala: {amount_due}.\n\n"
            "Vänligen betala inom fem dagar. Om det inte går, kontakta oss så att vi kan komma överens "
            "om en plan innan vi vidtar ytterligare åtgärder.\n"
            "Betala online: {pay_url}" + _SIGN_OFF_SV
        ),
    },
]

# Placeholders whose line is left out when they are empty (no pay link, no late fee).
_OPTIONAL = ("pay_url", "late_fee")


class _NoLongerDue(Exception):
    """Raised while composing: the invoice was paid or credited in the meantime; nothing is sent."""


def dunning_schedule_for(*, tenant: Tenant) -> DunningSchedule:
    """The tenant's schedule, created with ``DEFAULT_STEPS`` (3 / 10 / 20 days, enabled) when it has none.

    Idempotent and safe to run concurrently (the one-per-tenant constraint makes a second create a
    no-op).
    """
    schedule = DunningSchedule.objects.for_tenant(tenant).first()
    if schedule is not None:
        return schedule
    with transaction.atomic():
        DunningSchedule.objects.for_tenant(tenant).bulk_create([DunningSchedule(tenant=tenant)], ignore_conflicts=True)
        schedule = DunningSchedule.objects.for_tenant(tenant).select_for_update().get()
        if not DunningStep.objects.for_tenant(tenant).filter(schedule=schedule).exists():
            DunningStep.objects.for_tenant(tenant).bulk_create(
                [DunningStep(tenant=tenant, schedule=schedule, **step) for step in DEFAULT_STEPS]
            )
    return schedule


def dunning_steps_validate(*, days: list[int | None]) -> list[str]:
    """Why a schedule whose steps are at ``days`` overdue is refused, or [] when it is fine.

    Steps run in order of their days, so each must be a positive number of days, no two the same
    (strictly increasing once ordered), and there are at most ``MAX_STEPS``.
    """
    errors = []
    if any(day is None or day < 1 for day in days):
        errors.append("Every step needs a positive number of days overdue.")
    ordered = sorted(day for day in days if day is not None and day >= 1)
    repeated = sorted({day for before, day in zip(ordered, ordered[1:]) if day == before})
    for day in repeated:
        errors.append(f"Two steps at {day} days overdue: each step needs a later day than the one before.")
    if len(days) > MAX_STEPS:
        errors.append(f"At most {MAX_STEPS} steps.")
    return errors


def dunning_late_fee(*, step: DunningStep, amount_due: Decimal, currency: str) -> Decimal | None:
    """The step's late fee on an invoice owing ``amount_due`` in ``currency``, or None without one.

    Fixed: the step's amount, in the invoice's currency. Percentage: ``amount_due × percent / 100``
    rounded half up (``FEE_ROUNDING``) to the currency's minor unit. A fee that rounds to 0 is None.
    """
    if step.fee == DunningStep.Fee.FIXED and step.fee_amount:
        fee = money_round(step.fee_amount, currency, FEE_ROUNDING)
    elif step.fee == DunningStep.Fee.PERCENT and step.fee_percent:
        fee = money_round(amount_due * step.fee_percent / 100, currency, FEE_ROUNDING)
    else:
        return None
    return fee if fee > 0 else None


def pay_url_for(invoice: Invoice) -> str:
    """The link a reminder offers for paying ``invoice``: ``settings.DUNNING_PAY_URL`` (a dotted path
    to a callable taking the invoice and returning a URL or "") when set, else "" (no link)."""
    hook = getattr(settings, "DUNNING_PAY_URL", "")
    if not hook:
        return ""
    return str(import_string(hook)(invoice) or "")


def render_template(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{placeholder}`` replaced by ``values``; a line naming an empty optional
    placeholder (``pay_url``, ``late_fee``) is left out. Never raises: an unknown or malformed
    placeholder (refused when the step is saved) is left as written."""
    lines = []
    for line in text.split("\n"):
        try:
            parts = list(Formatter().parse(line))
        except ValueError:
            lines.append(line)
            continue
        if any(name in _OPTIONAL and not values.get(name) for _l, name, _s, _c in parts):
            continue
        out = []
        for literal, name, spec, conversion in parts:
            out.append(literal)
            if name is None:
                continue
            if name in values and not spec and not conversion:
                out.append(values[name])
            else:
                out.append("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
        lines.append("".join(out))
    return "\n".join(lines)


def _language(customer) -> str:
    return customer.language if customer.language in formatting.LOCALES else formatting.DEFAULT_LANGUAGE


def _recipients(emails) -> list[str]:
    seen, recipients = set(), []
    for email in emails or []:
        address = (email or "").strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


def _locked(tenant: Tenant, invoice_id: int, today) -> Invoice:
    """The invoice, locked until the caller's transaction ends (payments lock the same row), with its
    amount due and payment status as of ``today`` read after the lock."""
    Invoice.objects.for_tenant(tenant).filter(pk=invoice_id).select_for_update(of=("self",)).values_list("pk").get()
    return (
        Invoice.objects.for_tenant(tenant).with_payment_status(today=today)
        .select_related("tenant", "customer").get(pk=invoice_id)
    )


def _message(invoice: Invoice, step: DunningStep, recipient: str, days: int, fee: Decimal | None) -> EmailMessage:
    customer, tenant = invoice.customer, invoice.tenant
    language = _language(customer)
    values = {
        "invoice_number": invoice.number or "",
        "amount_due": formatting.format_money(invoice.balance_due, invoice.currency, language),
        "due_date": formatting.format_day(invoice.due_date, language),
        "days_overdue": str(days),
        "customer_name": customer.name,
        "tenant_name": tenant.name,
        "late_fee": formatting.format_money(fee, invoice.currency, language) if fee else "",
        "pay_url": pay_url_for(invoice),
    }
    subject, body = step.texts(language)
    subject = " ".join(render_template(subject, values).split())  # one line, whatever a name holds
    return EmailMessage(
        subject=subject,
        body=render_template(body, values),
        from_email=formataddr((tenant.name, settings.DEFAULT_FROM_EMAIL)),
        to=[recipient],
    )


def _fee_description(invoice: Invoice, days: int) -> str:
    with translation.override(_language(invoice.customer)):
        return translation.gettext("Late fee: invoice %(number)s, %(days)s days overdue") % {
            "number": invoice.number, "days": days,
        }


def _decide(
    tenant: Tenant, invoice_id: int, step: DunningStep, earlier: list[DunningStep], today, now: datetime
) -> tuple[DunningReminder | None, Invoice]:
    """Under the invoice's lock: the reminder of ``step`` still to send (created now, or pending /
    failed from an earlier run), or None when there is nothing to do (already sent, skipped or
    cancelled, or the invoice is no longer overdue), with the invoice as read. Earlier due steps
    never decided are recorded as skipped."""
    with transaction.atomic():
        invoice = _locked(tenant, invoice_id, today)
        if invoice.payment_status != PaymentStatus.OVERDUE:
            return None, invoice
        existing = {r.step_id: r for r in DunningReminder.objects.for_tenant(tenant).filter(invoice_id=invoice_id)}
        reminder = existing.get(step.pk)
        if reminder is not None:
            retry = reminder.status in (DunningReminder.Status.PENDING, DunningReminder.Status.FAILED)
            return (reminder if retry else None), invoice
        days = (today - invoice.due_date).days
        skipped = [
            DunningReminder(
                tenant=tenant, invoice_id=invoice_id, customer_id=invoice.customer_id, step=earlier_step,
                days_overdue=earlier_step.days_overdue, status=DunningReminder.Status.SKIPPED,
                amount_due=invoice.balance_due, currency=invoice.currency, created_at=now,
                note=f"Skipped: the invoice was already {days} days overdue, so the "
                     f"{step.days_overdue}-day step replaced it.",
            )
            for earlier_step in earlier
            if earlier_step.pk not in existing
        ]
        reminder = DunningReminder(
            tenant=tenant, invoice_id=invoice_id, customer_id=invoice.customer_id, step=step,
            days_overdue=step.days_overdue, status=DunningReminder.Status.PENDING,
            amount_due=invoice.balance_due, currency=invoice.currency,
            late_fee=dunning_late_fee(step=step, amount_due=invoice.balance_due, currency=invoice.currency),
            language=_language(invoice.customer), created_at=now,
        )
        DunningReminder.objects.for_tenant(tenant).bulk_create([*skipped, reminder])
        return reminder, invoice


def _deliver(
    tenant: Tenant, reminder: DunningReminder, invoice: Invoice, step: DunningStep, today, now: datetime
) -> str:
    """Email ``reminder`` to the customer's billing addresses through the outbox; returns its new status."""
    recipients = _recipients(invoice.customer.billing_emails)
    reminders = DunningReminder.objects.for_tenant(tenant)
    if not recipients:
        reminders.filter(pk=reminder.pk).update(
            status=DunningReminder.Status.FAILED, note="The customer has no billing email address; retried next run."
        )
        return DunningReminder.Status.FAILED

    sent_state: dict = {}

    def compose(recipient, _rows):
        # Inside the outbox's transaction, under the delivery row's lock: lock the invoice too and
        # read what is owed now, so a payment committed a moment ago stops the email.
        fresh = _locked(tenant, reminder.invoice_id, today)
        if fresh.payment_status != PaymentStatus.OVERDUE:
            raise _NoLongerDue
        days = (today - fresh.due_date).days
        fee = dunning_late_fee(step=step, amount_due=fresh.balance_due, currency=fresh.currency)
        sent_state.update(invoice=fresh, days=days, fee=fee)
        return _message(fresh, step, recipient, days, fee)

    def on_sent(_recipient, _rows):
        fresh, fee = sent_state["invoice"], sent_state["fee"]
        reminders.filter(pk=reminder.pk).update(
            status=DunningReminder.Status.SENT, amount_due=fresh.balance_due, late_fee=fee, note="",
            sent_at=Coalesce("sent_at", Value(now)),  # the first recipient's moment
        )
        if fee:
            PendingCharge.objects.for_tenant(tenant).bulk_create(
                [PendingCharge(
                    tenant=tenant, customer_id=fresh.customer_id, reminder_id=reminder.pk,
                    description=_fee_description(fresh, sent_state["days"]), amount=fee, currency=fresh.currency,
                    created_at=now,
                )],
                ignore_conflicts=True,  # one charge per reminder, however many recipients
            )

    rows = [DunningReminderDelivery(tenant=tenant, reminder_id=reminder.pk, recipient=address) for address in recipients]
    try:
        stored = outbox_send(tenant=tenant, rows=rows, compose=compose, on_sent=on_sent)
    except ValidationError as exc:  # a malformed billing address: nothing was written or sent
        reminders.filter(pk=reminder.pk).update(
            status=DunningReminder.Status.FAILED, note=f"Not sent: {'; '.join(exc.messages)}"[:300]
        )
        return DunningReminder.Status.FAILED
    except _NoLongerDue:
        reminders.filter(pk=reminder.pk).exclude(status=DunningReminder.Status.SENT).update(
            status=DunningReminder.Status.CANCELLED, note="The invoice was paid before the reminder went out."
        )
        return DunningReminder.Status.CANCELLED
    if any(row.status == OutboxMessage.Status.SENT for row in stored):
        return DunningReminder.Status.SENT
    errors = "; ".join(sorted({row.error for row in stored if row.error}))
    reminders.filter(pk=reminder.pk).update(
        status=DunningReminder.Status.FAILED, note=f"Mail server: {errors}"[:300] if errors else ""
    )
    return DunningReminder.Status.FAILED


def dunning_run(*, tenant: Tenant, now: datetime | None = None) -> dict[str, int]:
    """Send the due payment reminders of ``tenant`` (see the module docstring); returns counts by outcome.

    ``now`` (default: the present) is the moment of the run: it fixes the tenant's "today" and
    stamps the reminders (``created_at``, ``sent_at``). Invoices considered: finalized,
    past their due date, with an amount due above 0 (``PaymentStatus.OVERDUE``). Counts: ``sent``,
    ``failed`` (recorded, retried next run), ``cancelled`` (paid meanwhile), ``unchanged`` (nothing
    due that was not already handled). Nothing is sent while the schedule is disabled. A mail
    server failure is recorded on the rows, never raised.
    """
    counts = {"sent": 0, "failed": 0, "cancelled": 0, "unchanged": 0}
    schedule = dunning_schedule_for(tenant=tenant)
    if not schedule.enabled:
        return counts
    steps = list(DunningStep.objects.for_tenant(tenant).filter(schedule=schedule).order_by("days_overdue"))
    if not steps:
        return counts
    now = now or timezone.now()
    today = tenant_today(tenant, now)
    overdue = list(
        Invoice.objects.for_tenant(tenant).with_payment_status(today=today)
        .filter(payment_status=PaymentStatus.OVERDUE, due_date__lte=today - timedelta(days=steps[0].days_overdue))
        .order_by("due_date", "pk").values_list("pk", "due_date")
    )
    # What is already settled, read once: the latest due step sent, skipped or cancelled needs no lock.
    done = set(
        DunningReminder.objects.for_tenant(tenant)
        .filter(invoice_id__in=[pk for pk, _ in overdue])
        .exclude(status__in=[DunningReminder.Status.PENDING, DunningReminder.Status.FAILED])
        .values_list("invoice_id", "step_id")
    )
    for invoice_id, due_date in overdue:
        days = (today - due_date).days
        due = [step for step in steps if step.days_overdue <= days]
        step = due[-1]
        if (invoice_id, step.pk) in done:
            counts["unchanged"] += 1
            continue
        reminder, invoice = _decide(tenant, invoice_id, step, due[:-1], today, now)
        if reminder is None:
            counts["unchanged"] += 1
            continue
        counts[_deliver(tenant, reminder, invoice, step, today, now)] += 1
    return counts


def dunning_tenant_ids() -> list[int]:
    """The tenants the daily run reminds for: all but those being purged."""
    return list(Tenant.objects.filter(purge_started_at__isnull=True).order_by("pk").values_list("pk", flat=True))

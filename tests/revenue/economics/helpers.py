"""Small builders for the economics tests: AI calls, prices, billed invoices."""

from datetime import date, datetime, timezone
from decimal import Decimal

from billing.models import Invoice, UsageEvent
from revenue.models import CustomerCost, ModelPrice
from tests.billing.factories import UsageEventFactory, usage_events_write

_keys = iter(range(10**9))


def price(tenant, model, input_price, output_price, *, provider="openai", on=date(2025, 1, 1)):
    return ModelPrice.objects.create(
        tenant=tenant, provider=provider, model=model, input_price_per_million=Decimal(input_price),
        output_price_per_million=Decimal(output_price), effective_on=on,
    )


def call(customer, when, model, tokens_in, tokens_out, *, provider="openai", task="chat", metric="ai_call"):
    """One AI call, stored in the configured usage-event store."""
    return UsageEventFactory(
        tenant=customer.tenant, customer=customer, metric_code=metric,
        timestamp=when if isinstance(when, datetime) else datetime(when.year, when.month, when.day, 12, tzinfo=timezone.utc),
        idempotency_key=f"k-{next(_keys)}", quantity=Decimal(1),
        properties={"provider": provider, "model": model, "input_tokens": tokens_in, "output_tokens": tokens_out,
                    "task_type": task},
    )


def billed(customer, month: date, net, *, vat="0.00", status=Invoice.Status.FINALIZED, currency=None):
    next_month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    net, vat = Decimal(net), Decimal(vat)
    return Invoice.objects.create(
        tenant=customer.tenant, customer=customer, period_start=month,
        period_end=date.fromordinal(next_month.toordinal() - 1), currency=currency or customer.currency,
        status=status, number=None if status == Invoice.Status.DRAFT else f"N-{next(_keys)}", sequence_number=1, subtotal=net, total=net + vat,
        vat_amount=vat, amount_due=net + vat, issue_date=next_month, due_date=next_month,
    )


def entered_cost(customer, month, amount, source=CustomerCost.Source.ENTERED):
    return CustomerCost.objects.create(
        tenant=customer.tenant, customer=customer, month=month, amount=Decimal(amount), source=source
    )


def credit_note(invoice, net):
    from billing.models import CreditNote

    return CreditNote.objects.create(
        tenant=invoice.tenant, invoice=invoice, customer=invoice.customer, number=f"CN-{next(_keys)}",
        sequence_number=1, currency=invoice.currency, reason="goodwill", issue_date=invoice.issue_date,
        subtotal=Decimal(net), vat_amount=Decimal(0), total=Decimal(net),
    )


def calls(customer, count, when=date(2026, 1, 10), model="m", tokens_in=1, tokens_out=0, provider="openai"):
    """``count`` AI calls on one day, bulk-inserted into the configured usage-event store."""
    moment = datetime(when.year, when.month, when.day, 12, tzinfo=timezone.utc)
    usage_events_write([
        UsageEvent(
            tenant=customer.tenant, customer=customer, metric_code="ai_call", timestamp=moment,
            idempotency_key=f"k-{next(_keys)}", quantity=Decimal(1),
            properties={"provider": provider, "model": model, "input_tokens": tokens_in, "output_tokens": tokens_out},
        )
        for _ in range(count)
    ])

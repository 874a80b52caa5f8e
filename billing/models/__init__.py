"""Billing models, split by domain: metering (metrics, usage events and the AI-usage roll-up),
invoicing, payments, delivery and month-end runs."""

from billing.models.ai_usage import AiUsageDay  # noqa: F401,E402
from billing.models.delivery import InvoiceDelivery  # noqa: F401,E402
from billing.models.invoicing import (  # noqa: F401
    BillingSettings,
    ChargeModel,
    CreditApplication,
    CreditAuditEntry,
    CreditNote,
    CreditNoteLine,
    CreditRequest,
    ImmutableRecordError,
    Invoice,
    InvoiceLine,
    LineKind,
    NumberSequence,
    PaymentStatus,
    PriceTerms,
    parse_terms,
    percentage_metric_error,
)
from billing.models.metering import (  # noqa: F401
    BillableMetric,
    UsageArchive,
    UsageEvent,
    UsageEventBatch,
    UsageEventKey,
)
from billing.models.payments import Payment, PaymentAllocation, Refund  # noqa: F401
from billing.models.runs import BillingRun, BillingRunItem, TransientItemFailures  # noqa: F401,E402
from billing.models.card_payments import PaymentProviderAccount, Provider, ProviderEvent  # noqa: F401,E402
from billing.models.dunning import (  # noqa: F401,E402
    DunningReminder,
    DunningReminderDelivery,
    DunningSchedule,
    DunningStep,
    PendingCharge,
)
from billing.models.webhooks import (  # noqa: F401,E402
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointNotice,
    WebhookEvent,
    WebhookEventType,
)

"""The AI-usage roll-up: a running sum of the usage events that are AI calls."""

from django.db import models

from customers.models import Customer
from customers.tenancy import TenantOwned


class AiUsageDay(TenantOwned):
    """AI calls of one customer on one day of the tenant's calendar, per provider, model and feature.

    A roll-up of the usage events whose properties carry ``model`` (``revenue.economics.costs``
    says how provider, feature and tokens are read), kept by database triggers on the usage-event
    table, declared in migration ``billing/0005_ai_usage_day_moves_to_billing``:

    - ``billing_ai_usage_insert`` / ``_update`` / ``_delete``: statement-level triggers on
      ``billing_usageevent`` running ``billing_ai_usage_day_sync()``; every insert, update or delete
      of events adds or takes away its calls and tokens in the same statement, whatever wrote them
      (the API, a bulk load, COPY), so this table is always exactly the events' sum.
    - ``billing_ai_usage_rebuild(tenant_id)``: makes a tenant's rows again from its events
      (``billing.ai_usage.ai_usage_rebuild``), run when the tenant's time zone changes.

    Events kept in ClickHouse (``USAGE_EVENT_STORE = "clickhouse"``) never reach those triggers: that
    store adds their calls by the same rule in the statement that claims their keys, and rebuilds
    from ClickHouse (``billing.usage_store.clickhouse``).

    The application only reads it (revenue's cost to serve and spend anomalies).
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    provider = models.TextField(blank=True)
    model = models.TextField(blank=True)
    feature = models.TextField(blank=True)
    calls = models.BigIntegerField()
    input_tokens = models.DecimalField(max_digits=30, decimal_places=0)
    output_tokens = models.DecimalField(max_digits=30, decimal_places=0)

    class Meta:
        constraints = [
            # Day before customer: the one index serves the triggers' upserts and reads of a window.
            models.UniqueConstraint(
                fields=["tenant", "day", "customer", "provider", "model", "feature"], name="billing_ai_usage_day_unique"
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} {self.day}: {self.calls} calls of {self.provider}/{self.model}"

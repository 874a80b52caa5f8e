"""Shapes of invoices, credit notes and payments for the API. Money is ``{"amount", "currency"}``."""

from rest_framework import serializers

from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, Payment, PaymentAllocation, PaymentStatus, Refund
from customers.api_base import DecimalStringField, MoneyField, MoneyFieldSchema, StrictCharField, TenantPrimaryKeyRelatedField
from customers.models import Customer
from customers.money import format_amount


class DocumentMoneyField(serializers.Field):
    """An amount column of a document (or of its line) with the document's currency."""

    def __init__(self, attribute: str, currency_of=lambda obj: obj.currency, **kwargs):
        self.attribute = attribute
        self.currency_of = currency_of
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, obj):
        currency = self.currency_of(obj)
        return {"amount": format_amount(getattr(obj, self.attribute), currency), "currency": currency}


def _invoice_currency(line):
    return line.invoice.currency


class InvoiceLineSerializer(serializers.ModelSerializer):
    unit_price = DocumentMoneyField("unit_price", _invoice_currency)
    amount = DocumentMoneyField("amount", _invoice_currency)

    class Meta:
        model = InvoiceLine
        fields = ["position", "description", "kind", "quantity", "unit_price", "proration", "amount", "contract_line"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    subtotal = DocumentMoneyField("subtotal")
    discount_total = DocumentMoneyField("discount_total")
    vat_amount = DocumentMoneyField("vat_amount")
    total = DocumentMoneyField("total")
    credit_applied = DocumentMoneyField("credit_applied")
    amount_due = DocumentMoneyField(
        "balance_due",
        help_text="What the customer owes now: total − credit applied − credit notes − payments; 0 once paid or void.",
    )
    credit_notes_total = DocumentMoneyField("credited_total", help_text="The invoice's credit notes, VAT included.")
    paid_total = DocumentMoneyField("paid_total", help_text="What payments allocated to it have paid (not counting void payments).")
    payment_status = serializers.ChoiceField(
        choices=PaymentStatus.choices, read_only=True,
        help_text="Derived: draft, open, partially_paid, overdue (due date passed, something due), paid or void.",
    )

    class Meta:
        model = Invoice
        fields = [
            "id", "number", "ocr_reference", "status", "payment_status", "customer", "customer_name", "contract", "period_start", "period_end",
            "currency", "issue_date", "due_date", "subtotal", "discount_total", "vat_rate", "vat_amount", "total",
            "credit_applied", "credit_notes_total", "paid_total", "amount_due", "reverse_charge", "vat_note", "finalized_at", "paid_at", "voided_at",
        ]
        read_only_fields = fields


class InvoiceFinalizeSerializer(serializers.Serializer):
    close_early = serializers.BooleanField(
        default=False,
        help_text=(
            "Required (true) to finalize an invoice whose period has not ended yet: usage dated later in the "
            "period is then refused as `period already invoiced`. Without it such an invoice is a 409."
        ),
    )


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = InvoiceSerializer.Meta.fields + ["lines"]
        read_only_fields = fields


def _credit_note_currency(line):
    return line.credit_note.currency


class CreditNoteLineSerializer(serializers.ModelSerializer):
    unit_price = DocumentMoneyField("unit_price", _credit_note_currency)
    amount = DocumentMoneyField("amount", _credit_note_currency)

    class Meta:
        model = CreditNoteLine
        fields = ["position", "description", "quantity", "unit_price", "amount", "invoice_line"]
        read_only_fields = fields


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    subtotal = DocumentMoneyField("subtotal")
    vat_amount = DocumentMoneyField("vat_amount")
    total = DocumentMoneyField("total")
    lines = CreditNoteLineSerializer(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id", "number", "invoice", "invoice_number", "customer", "currency", "reason", "issue_date",
            "subtotal", "vat_rate", "vat_amount", "total", "lines",
        ]
        read_only_fields = fields


class DocumentMoneyFieldSchema(MoneyFieldSchema):
    """Documents' amounts have the same shape in the schema as every other money value."""

    target_class = DocumentMoneyField


# --- payments --------------------------------------------------------------------------------


def _payment_currency(allocation):
    return allocation.payment.currency


class PaymentAllocationSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    amount = DocumentMoneyField("amount", _payment_currency)

    class Meta:
        model = PaymentAllocation
        fields = ["invoice", "invoice_number", "amount"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    amount = DocumentMoneyField("amount")

    class Meta:
        model = Refund
        fields = ["id", "amount", "refunded_on", "method", "reference", "note", "created_at"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    amount = DocumentMoneyField("amount")
    unallocated = DocumentMoneyField(
        "unallocated",
        help_text="What no invoice has taken and no refund paid back: the customer's credit, which the next invoice "
        "uses (0 once void).",
    )
    allocations = PaymentAllocationSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id", "customer", "customer_name", "amount", "received_on", "method", "reference", "bank_reference", "note",
            "unallocated", "allocations", "refunds", "created_at", "voided_at", "void_reason",
        ]
        read_only_fields = fields


class PaymentAllocationInputSerializer(serializers.Serializer):
    invoice = TenantPrimaryKeyRelatedField(model=Invoice, help_text="An invoice of the payment's customer.")
    amount = MoneyField(
        max_digits=18, decimal_places=2, required=False,
        help_text="In the payment's currency. Omitted: as much as is left of the payment, up to what the invoice owes.",
    )


class PaymentCreateSerializer(serializers.Serializer):
    customer = TenantPrimaryKeyRelatedField(model=Customer)
    amount = MoneyField(max_digits=18, decimal_places=2, help_text="Positive, at most two decimals.")
    received_on = serializers.DateField(help_text="The day the money arrived; not in the future.")
    method = serializers.ChoiceField(choices=Payment.Method.choices)
    reference = serializers.CharField(max_length=140, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    allocations = PaymentAllocationInputSerializer(
        many=True, required=False,
        help_text="Which invoices it pays. Omitted: the customer's open invoices, oldest due first. "
        "An empty list: none (the money is the customer's credit).",
    )

    def validate(self, data):
        currency = str(data["amount"].currency)
        for index, allocation in enumerate(data.get("allocations") or []):
            amount = allocation.get("amount")
            if amount is not None and str(amount.currency) != currency:
                raise serializers.ValidationError(
                    {"allocations": [f"Allocation {index + 1}: give the amount in the payment's currency ({currency})."]}
                )
        return data


class PaymentVoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="Why, e.g. returned by the bank.")


class PaymentRefundSerializer(serializers.Serializer):
    amount = DecimalStringField(
        max_digits=18, decimal_places=2, help_text="In the payment's currency, as a string; at most its unallocated credit."
    )
    refunded_on = serializers.DateField(help_text="The day the money was paid back; not in the future.")
    method = serializers.ChoiceField(choices=Payment.Method.choices, default=Payment.Method.BANK_TRANSFER)
    reference = StrictCharField(max_length=140, required=False, allow_blank=True, default="")
    note = StrictCharField(max_length=300, required=False, allow_blank=True, default="")

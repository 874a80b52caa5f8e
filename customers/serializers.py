"""JSON shapes of customers, contacts and contracts (see customers.api_base for the conventions)."""

from django_countries.serializers import CountryFieldMixin
from rest_framework import serializers

from customers.api_base import (
    CurrencyField,
    MoneyField,
    TenantMemberField,
    TenantModelSerializer,
    TenantPrimaryKeyRelatedField,
)
from customers.models import Contact, Contract, ContractChange, ContractLine, Customer
from customers.services import ChangeAction, LineSpec


class CustomerSerializer(CountryFieldMixin, TenantModelSerializer):
    reference = serializers.SlugField(
        source="external_ref", max_length=64, help_text="The tenant's own id for this customer, unique per tenant."
    )
    currency = CurrencyField()
    account_manager = TenantMemberField(required=False, allow_null=True)
    acquisition_cost = MoneyField(max_digits=14, decimal_places=2, required=False, allow_null=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "reference",
            "org_number",
            "vat_number",
            "peppol_id",
            "is_business",
            "billing_emails",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "currency",
            "language",
            "einvoice_format",
            "segment",
            "tier",
            "account_manager",
            "first_contact_on",
            "acquisition_cost",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_reference(self, value):
        # The unique constraint also guards this; checking here names the field in the answer.
        others = Customer.objects.for_tenant(self.context["request"].tenant).filter(external_ref=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A customer with this reference already exists.")
        return value


class ContactSerializer(TenantModelSerializer):
    customer = TenantPrimaryKeyRelatedField(model=Customer)

    class Meta:
        model = Contact
        fields = ["id", "customer", "name", "email", "phone", "title", "is_billing_contact"]


class ContractLineSerializer(TenantModelSerializer):
    """One dated price version of a contract line; written only as part of a new contract."""

    unit_price = MoneyField(max_digits=20, decimal_places=6)
    starts_on = serializers.DateField(required=False, help_text="Defaults to the contract's start date.")
    ends_on = serializers.DateField(
        required=False, allow_null=True, help_text="Last day; defaults to the contract's end date."
    )

    class Meta:
        model = ContractLine
        fields = ["id", "description", "kind", "quantity", "unit_price", "discount_percent", "starts_on", "ends_on"]


class ContractSerializer(TenantModelSerializer):
    """A contract with all its line versions. Created together with its lines, in one piece."""

    customer = TenantPrimaryKeyRelatedField(model=Customer)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    reference = serializers.CharField(
        max_length=40, required=False, help_text="Defaults to the tenant's next number, C-00001 style."
    )
    status = serializers.ChoiceField(
        choices=Contract.Status.choices,
        default=Contract.Status.ACTIVE,
        help_text="A new contract is active or a draft; cancel it with the cancel action.",
    )
    currency = CurrencyField(required=False, help_text="Defaults to the customer's currency.")
    lines = ContractLineSerializer(many=True, allow_empty=False)

    class Meta:
        model = Contract
        fields = [
            "id",
            "customer",
            "customer_name",
            "reference",
            "title",
            "status",
            "currency",
            "billing_interval",
            "start_date",
            "end_date",
            "auto_renew",
            "renewal_term_months",
            "signed_on",
            "notes",
            "created_at",
            "lines",
        ]
        read_only_fields = ["created_at"]

    def validate_reference(self, value):
        if Contract.objects.for_tenant(self.context["request"].tenant).filter(reference=value).exists():
            raise serializers.ValidationError("A contract with this reference already exists.")
        return value

    def validate_status(self, value):
        if value not in (Contract.Status.DRAFT, Contract.Status.ACTIVE):
            raise serializers.ValidationError("A new contract is active or a draft.")
        return value

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": "The end date cannot be before the start date."})
        # customers.services.contract_create refuses such a line too (and saves nothing); checking
        # here as well says which line is wrong.
        currency = attrs.get("currency") or attrs["customer"].currency
        message = "The line's currency ({}) differs from the contract's ({})."
        line_errors = [
            {"unit_price": [message.format(line["unit_price"].currency, currency)]}
            if str(line["unit_price"].currency) != currency
            else {}
            for line in attrs.get("lines", [])
        ]
        if any(line_errors):
            raise serializers.ValidationError({"lines": line_errors})
        return attrs


class ContractUpdateSerializer(ContractSerializer):
    """What a started contract's plain update may change; its dates and lines change from a date
    (``POST /contracts/{id}/changes/``), and the viewset answers 409 to an update that tries."""

    customer = TenantPrimaryKeyRelatedField(model=Customer, read_only=True)
    lines = ContractLineSerializer(many=True, read_only=True)
    status = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    reference = serializers.CharField(read_only=True)

    class Meta(ContractSerializer.Meta):
        read_only_fields = ["created_at", "billing_interval", "start_date", "end_date"]

    def validate(self, attrs):
        return attrs


class DraftContractUpdateSerializer(ContractSerializer):
    """What an update of a draft contract may change: everything but its customer, reference, currency
    and status (activate it with the activate action); ``lines``, when given, replace all its lines."""

    customer = TenantPrimaryKeyRelatedField(model=Customer, read_only=True)
    status = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    reference = serializers.CharField(read_only=True)
    lines = ContractLineSerializer(many=True, allow_empty=False, required=False)

    class Meta(ContractSerializer.Meta):
        read_only_fields = ["created_at"]

    def validate(self, attrs):
        return super().validate({"customer": self.instance.customer, "currency": self.instance.currency, **attrs})


class ContractCancelSerializer(serializers.Serializer):
    last_day = serializers.DateField(help_text="The contract's last day (inclusive); its open lines end then too.")


class ContractLineOfContractField(TenantPrimaryKeyRelatedField):
    def scope_queryset(self, queryset):
        return queryset.filter(contract=self.context["contract"])


class ContractLineChangeSerializer(serializers.Serializer):
    line = ContractLineOfContractField(model=ContractLine, help_text="A line of this contract.")
    effective_on = serializers.DateField(help_text="First day of the new version; the old one ends the day before.")
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, required=False)
    unit_price = MoneyField(max_digits=20, decimal_places=6, required=False)

    def validate(self, attrs):
        if "quantity" not in attrs and "unit_price" not in attrs:
            raise serializers.ValidationError("Give a new quantity or a new unit price.")
        return attrs


class ContractChangeSerializer(serializers.ModelSerializer):
    """One dated event in the contract's timeline (new, upgrade, downgrade, cancellation, reactivation)."""

    class Meta:
        model = ContractChange
        fields = ["id", "kind", "effective_on", "note", "created_by", "created_at"]
        read_only_fields = fields


class NewLineSerializer(serializers.Serializer):
    """A line to add from ``effective_on`` (the ``add_line`` change)."""

    description = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=ContractLine.Kind.choices)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, default=1)
    unit_price = MoneyField(max_digits=20, decimal_places=6)
    discount_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False, allow_null=True
    )
    ends_on = serializers.DateField(required=False, allow_null=True, help_text="Last day; empty: open.")


class ContractChangeRequestSerializer(serializers.Serializer):
    """A dated change of a started contract, made by ``customers.services.contract_change``."""

    action = serializers.ChoiceField(choices=ChangeAction.choices)
    effective_on = serializers.DateField(
        help_text="The first day the change applies (for cancel: the first day without the contract). "
        "A day in a period already invoiced is refused with 409, naming the invoice and the first open date."
    )
    line = ContractLineOfContractField(
        model=ContractLine, required=False, help_text="upgrade, downgrade, change_quantity, change_price: the line."
    )
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, required=False)
    unit_price = MoneyField(max_digits=20, decimal_places=6, required=False)
    new_line = NewLineSerializer(required=False, help_text="add_line: the line to add.")

    def validate(self, attrs):
        new_line = attrs.get("new_line")
        if new_line is not None:
            attrs["new_line"] = LineSpec(**new_line)
        return attrs

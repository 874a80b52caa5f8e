"""JSON shapes of the sales pipeline (see customers.api_base for the conventions)."""

from rest_framework import serializers

from customers.api_base import MoneyField, TenantMemberField, TenantModelSerializer, TenantPrimaryKeyRelatedField
from customers.models import Customer
from revenue.models import Band, Opportunity

PROBABILITY_MESSAGE = "Probability is a percentage between 0 and 100."


class OpportunitySerializer(TenantModelSerializer):
    """An opportunity with its derived band, weighted amount (amount × probability) and staleness."""

    customer = TenantPrimaryKeyRelatedField(model=Customer, required=False, allow_null=True)
    owner = TenantMemberField(required=False, allow_null=True)
    amount = MoneyField(max_digits=14, decimal_places=2, help_text="Yearly value for a recurring deal.")
    probability = serializers.IntegerField(
        min_value=0,
        max_value=100,
        help_text="percent, 0–100",
        error_messages={"min_value": PROBABILITY_MESSAGE, "max_value": PROBABILITY_MESSAGE},
    )
    stage = serializers.ChoiceField(
        choices=Opportunity.Stage.choices,
        default=Opportunity.Stage.LEAD,
        help_text="An open stage; won and lost are reached through the win and lose actions.",
    )
    band = serializers.ChoiceField(choices=Band.choices, read_only=True)
    weighted_amount = MoneyField(max_digits=14, decimal_places=2, read_only=True)
    is_stale = serializers.BooleanField(read_only=True)
    account_name = serializers.CharField(read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "customer",
            "prospect_name",
            "account_name",
            "title",
            "kind",
            "amount",
            "probability",
            "band",
            "weighted_amount",
            "stage",
            "expected_close_on",
            "owner",
            "next_step",
            "is_stale",
            "last_touched_at",
            "lost_reason",
            "won_contract",
            "closed_on",
            "created_at",
        ]
        read_only_fields = ["last_touched_at", "lost_reason", "won_contract", "closed_on", "created_at"]

    def validate_stage(self, value):
        if value not in Opportunity.OPEN_STAGES:
            raise serializers.ValidationError("Use the win or lose action to close an opportunity.")
        return value


class OpportunityWinSerializer(serializers.Serializer):
    start_date = serializers.DateField(help_text="First day of the draft contract.")
    closed_on = serializers.DateField(required=False, help_text="Defaults to today.")


class OpportunityLoseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why the deal was lost.")
    closed_on = serializers.DateField(required=False, help_text="Defaults to today.")

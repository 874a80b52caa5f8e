"""Billing's models in the role areas of ``customers.roles``: billing's (finance edits), except the
webhook endpoints and what they send, which are the team's (only owners: an endpoint holds a secret
and receives the tenant's data)."""

from customers.roles import BILLING, TEAM, register_areas


def register() -> None:
    register_areas(
        "billing",
        {
            "billing.webhookendpoint": TEAM,
            "billing.webhookevent": TEAM,
            "billing.webhookdelivery": TEAM,
            "billing.webhookattempt": TEAM,
            "billing.webhookendpointnotice": TEAM,
        },
        default=BILLING,
    )

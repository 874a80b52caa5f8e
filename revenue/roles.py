"""Revenue's models in the role areas of ``customers.roles``: the pipeline's, except what customers
cost to serve, which is money: finance keeps it, as it keeps billing."""

from customers.roles import BILLING, PIPELINE, register_areas


def register() -> None:
    register_areas("revenue", {"revenue.customercost": BILLING, "revenue.modelprice": BILLING}, default=PIPELINE)

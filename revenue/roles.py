"""Revenue's models in the role areas of ``customers.roles``: the pipeline's, except money, which finance
keeps as it keeps billing: what customers cost to serve, AI model prices, exchange rates and the price
plans of the pricing catalog."""

from customers.roles import BILLING, PIPELINE, register_areas


def register() -> None:
    register_areas(
        "revenue",
        {
            "revenue.customercost": BILLING,
            "revenue.modelprice": BILLING,
            "revenue.exchangerate": BILLING,
            "revenue.priceplan": BILLING,
            "revenue.accountplan": BILLING,
        },
        default=PIPELINE,
    )

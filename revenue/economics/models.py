"""Customer economics' models by their old address: they live in ``revenue.models.economics``.

Kept because migration ``revenue/0005_whatif_run`` names ``revenue.economics.models.FiguresEncoder``
and ``FiguresDecoder``, and callers in ``portal`` import from here. New code imports from
``revenue.models``.
"""

from revenue.models.economics import (
    AnomalyAlert,
    AnomalyRule,
    CustomerCost,
    FiguresDecoder,
    FiguresEncoder,
    ModelPrice,
    PricePlan,
    WhatIfRun,
)

__all__ = [
    "AnomalyAlert", "AnomalyRule", "CustomerCost", "FiguresDecoder", "FiguresEncoder", "ModelPrice", "PricePlan",
    "WhatIfRun",
]

"""The what-if figures' JSON codec by its old address, for migration ``revenue/0005_whatif_run``.

Migrations keep the import paths they were written with; the models live in
``revenue.models.economics`` and every caller imports them from ``revenue.models``.
"""

from revenue.models.economics import FiguresDecoder, FiguresEncoder

__all__ = ["FiguresDecoder", "FiguresEncoder"]

"""Billing's models in the role areas of ``customers.roles``: all of them are billing's (finance edits)."""

from customers.roles import BILLING, register_areas


def register() -> None:
    register_areas("billing", default=BILLING)

"""Invoicing writes (moved to ``billing.services.pricing``; split by domain in the next commit)."""

from billing.services.pricing import *  # noqa: F403

"""Card payment providers behind one small interface (``base.PaymentProvider``); Stripe is the one we have.

``provider_for(account)`` builds the provider of a tenant's ``PaymentProviderAccount``.
"""

from billing.payment_providers.base import (  # noqa: F401
    Checkout,
    PaidCheckout,
    PaymentProvider,
    ProviderUnavailable,
    VerifiedEvent,
    WebhookRefused,
)


def provider_for(account) -> "PaymentProvider":
    """The provider speaking for ``account`` (a ``PaymentProviderAccount``)."""
    from billing.models import Provider

    if account.provider == Provider.STRIPE:
        from billing.payment_providers.stripe_provider import StripeProvider

        return StripeProvider(account)
    raise ValueError(f"No provider {account.provider!r}.")

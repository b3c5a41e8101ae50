"""Connector for Stripe's PaymentIntents API (and the simulator's ``/stripe`` dialect)."""

from paygate.connectors.stripe.connector import StripeConnector

__all__ = ["StripeConnector"]

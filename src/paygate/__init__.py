"""paygate: an open-source payment gateway with a Stripe-compatible API."""

__version__ = "0.1.0"

"""Checkout Sessions (the ``/v1/checkout/*`` API and its service) and the hosted payment page."""

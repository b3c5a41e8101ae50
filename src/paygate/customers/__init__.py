"""Customers (Stripe's ``/v1/customers``) and the payment methods saved to them (attach / detach, default
payment method, ``setup_future_usage``). Card data stays in :mod:`paygate.vault`; this package only links
``pm_…`` tokens to ``cus_…`` ids through the vault service."""

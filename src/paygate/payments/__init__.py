"""PaymentIntents: the Stripe-compatible payment lifecycle."""

"""The worker: one process running background jobs (outbox relay, deliveries, inbound webhooks, …)."""

"""Events: the transactional outbox that every state change writes to, and the /v1/events API."""

"""Event-stream publishers: where the outbox relay hands every event besides merchant webhooks.

Contract of :class:`Publisher`:

* ``publish(event_id, event_type, body)`` makes the event durable in the broker before returning, and must be
  idempotent per ``event_id``: the relay publishes *before* it marks an event relayed, so after a crash (or
  when two workers race) the same event is published again and the broker must drop the copy.
* It raises on failure; the relay then leaves the event unrelayed and retries it later.
* ``close()`` releases connections.

:class:`NatsPublisher` uses JetStream: stream ``PAYGATE_EVENTS`` (created if missing) over subjects
``paygate.events.>``; each event goes to ``paygate.events.<type>`` with ``Nats-Msg-Id = event id``, which the
server deduplicates within the stream's duplicate window (2 minutes by default). A Kafka publisher would be the
same small class over ``aiokafka.AIOKafkaProducer`` with ``enable_idempotence=True`` and the event id as key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from paygate.settings import Settings

__all__ = ["NatsPublisher", "Publisher", "publisher_from_settings"]


class Publisher(Protocol):
    name: str

    async def publish(self, event_id: str, event_type: str, body: bytes) -> None: ...
    async def close(self) -> None: ...


class NatsPublisher:
    """Publishes to NATS JetStream; connects lazily on first use and reconnects after failures."""

    name = "nats"

    def __init__(self, url: str, *, stream: str = "PAYGATE_EVENTS", subject_prefix: str = "paygate.events") -> None:
        self.url = url
        self.stream = stream
        self.prefix = subject_prefix.rstrip(".")
        self._nc: Any = None
        self._js: Any = None

    async def _ensure(self) -> Any:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        import nats
        from nats.js.errors import NotFoundError

        self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
        js = self._nc.jetstream(timeout=5)
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
        self._js = js
        return js

    def subject(self, event_type: str) -> str:
        return f"{self.prefix}.{event_type}"

    async def publish(self, event_id: str, event_type: str, body: bytes) -> None:
        js = await self._ensure()
        try:
            await js.publish(self.subject(event_type), body, headers={"Nats-Msg-Id": event_id})
        except Exception:
            await self.close()  # reconnect next time
            raise

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                await nc.drain()
            except Exception:  # closing a broken connection: nothing more to do
                await nc.close()


def publisher_from_settings(settings: Settings) -> list[Publisher]:
    """The publishers configured by ``PAYGATE_NATS_URL`` (none when unset)."""
    if not settings.nats_url:
        return []
    return [NatsPublisher(settings.nats_url, stream=settings.nats_stream, subject_prefix=settings.nats_subject_prefix)]

"""How the benches' Python consumers poll: the logic of postclassd's KafkaConsumer.poll, shared so
that every Python baseline (bench/kafka, bench/e2e) polls the same way."""


def take_available(consumer, capacity, timeout):
    """What is queued now, up to `capacity`; when nothing is, waits at most `timeout` seconds for
    the first message and then takes what else is queued. This is KafkaConsumer.poll's logic
    (Sources/Kafka/KafkaConsumer.swift): `consume(n, timeout)` alone waits for a *full* batch
    until the timeout, which below saturation adds the whole timeout to every batch."""
    ready = consumer.consume(capacity, 0)
    if ready or timeout <= 0:
        return ready
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first] + (consumer.consume(capacity - 1, 0) if capacity > 1 else [])

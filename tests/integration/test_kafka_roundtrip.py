"""A produce/consume round trip through kafka-python on the real broker of the test stack."""

from __future__ import annotations

import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def test_records_come_back_in_order_with_their_keys(kafka_bootstrap: str) -> None:
    topic = f"roundtrip.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True)
    admin.close()
    sent = [(f"contact-{i % 4}".encode(), f'{{"n": {i}}}'.encode()) for i in range(40)]

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in sent:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    received = []
    for record in consumer:
        received.append((record.partition, record.key, record.value))
        if len(received) == len(sent):
            break
    consumer.close()

    assert sorted((k, v) for _, k, v in received) == sorted(sent)
    for key in {k for k, _ in sent}:
        # one key, one partition, the producer's order
        assert len({p for p, k, _ in received if k == key}) == 1
        assert [v for _, k, v in received if k == key] == [v for k2, v in sent if k2 == key]

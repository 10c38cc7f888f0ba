"""Helpers the produce/fetch suites share: create a topic, read a topic back with
confluent-kafka from offset 0."""

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(broker, name, partitions=1, config=None):
    """Creates `name` with `partitions` partitions and topic `config` overrides."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    admin.create_topics([topic])[name].result(timeout=10)


def consume_all(broker, topic, partitions, expected, timeout=30):
    """Reads every partition of `topic` from offset 0 until `expected` records (or `timeout`
    seconds); returns the messages."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        out.append(msg)
    consumer.close()
    return out

"""Helpers the exactly-once suites share (test_transactions.py, test_idempotence.py,
test_cluster_transactions.py): broker settings, topic setup, reading a topic to its end under
either isolation level, and polling waits (waits.py).

Nothing here asserts wall-clock times: waits poll until a condition holds and fail only after a
generous deadline."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from waits import DEADLINE, wait_for

# Broker settings (Kafka's keys) for a single-node broker running transactions.
TXN_OVERRIDES = (
    # One broker: the internal topics cannot have Kafka's default three replicas.
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "transaction.state.log.num.partitions=8",
    "offsets.topic.replication.factor=1",
    "group.initial.rebalance.delay.ms=0",
    # The coordinator looks for timed-out transactions every 500 ms (Kafka's default is 10 s).
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
)


def create_topic(bootstrap, name, partitions, replication_factor=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                     config=config or {})
    admin.create_topics([topic])[name].result(timeout=30)


def consumer(bootstrap, isolation, group="eos-reader", **extra):
    config = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "isolation.level": isolation,
              "enable.partition.eof": True}
    config.update(extra)
    return Consumer(config)


def drain(c, partitions, timeout=DEADLINE):
    """Polls the assigned consumer `c` until every one of `partitions` (TopicPartitions) has
    reported end-of-partition with nothing after it: for read_committed that end is the last
    stable offset, for read_uncommitted the high watermark. Returns the messages received."""
    waiting = {(tp.topic, tp.partition) for tp in partitions}
    at_end = set()
    out = []
    deadline = time.time() + timeout
    while at_end != waiting:
        if time.time() > deadline:
            raise AssertionError("did not reach the end of %r (at end: %r; %d messages)"
                                 % (sorted(waiting), sorted(at_end), len(out)))
        for msg in c.consume(500, 0.5):
            where = (msg.topic(), msg.partition())
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(where)
                    continue
                raise KafkaException(msg.error())
            at_end.discard(where)
            out.append(msg)
    return out


def stable_offsets(bootstrap, topic, partitions):
    """{partition: (last stable offset, high watermark)}, from ListOffsets at both isolation
    levels (librdkafka sends the consumer's isolation.level)."""
    ends = {}
    for isolation in ("read_committed", "read_uncommitted"):
        c = consumer(bootstrap, isolation, group="eos-watermarks")
        try:
            ends[isolation] = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                               for p in range(partitions)}
        finally:
            c.close()
    return {p: (ends["read_committed"][p], ends["read_uncommitted"][p]) for p in range(partitions)}


def wait_stable(bootstrap, topic, partitions, timeout=DEADLINE):
    """Waits until no transaction is open on any partition of `topic` (LSO == high watermark).
    A commit returns once the coordinator has logged its decision; the markers that make the
    records readable follow, so a read_committed reader must wait for them before it can tell
    a missing record from a late one."""
    return wait_for(lambda: all(lso == high for lso, high in stable_offsets(bootstrap, topic, partitions).values()),
                    "every partition of %s to be stable (LSO == high watermark)" % topic, timeout=timeout)


def read(bootstrap, topic, partitions, isolation, timeout=DEADLINE, stable=True):
    """Every record of `topic` (partitions 0..partitions-1) from offset 0 to the end `drain`
    defines, as a list of messages. With `stable` (the default), read_committed first waits
    until no transaction is open, so the result is final."""
    if stable and isolation == "read_committed":
        wait_stable(bootstrap, topic, partitions, timeout)
    c = consumer(bootstrap, isolation)
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    c.assign(tps)
    try:
        return drain(c, tps, timeout)
    finally:
        c.close()


def by_partition(messages):
    """{partition: [value as str, ...]} in consumption (offset) order."""
    out = {}
    for m in messages:
        out.setdefault(m.partition(), []).append(None if m.value() is None else m.value().decode())
    return out


def error_of(exc):
    """The KafkaError inside a KafkaException (or None)."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def kafka_python_admin(bootstrap):
    """kafka-python's KafkaAdminClient, the installed client that exposes ListTransactions,
    DescribeTransactions and DescribeProducers (confluent-kafka's AdminClient does not)."""
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="gregor-eos-admin", request_timeout_ms=30000)

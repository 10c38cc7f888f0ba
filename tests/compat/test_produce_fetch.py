"""Produce, fetch and list offsets with real clients: confluent-kafka (librdkafka) and
kafka-python, every codec, keys, null values and headers (duplicate keys included), across
partitions, by timestamp, and across a broker restart."""

import time
import uuid

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

from client_helpers import consume_all, create  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_round_trip_every_codec(broker, codec):
    topic = "rt-" + codec
    create(broker, topic, partitions=3)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                         "linger.ms": 5, "acks": "all"})
    sent = []
    for i in range(300):
        key = None if i % 10 == 0 else ("key-%d" % (i % 17)).encode()
        value = None if i % 13 == 0 else ("value-%d-" % i).encode() * 5
        headers = [("h", b"1"), ("h", b"2"), ("trace", str(i).encode())]
        producer.produce(topic, key=key, value=value, headers=headers, partition=i % 3)
        sent.append((i % 3, key, value))
    assert producer.flush(20) == 0
    got = consume_all(broker, topic, 3, len(sent))
    assert len(got) == len(sent)
    for p in range(3):
        mine = [(k, v) for (pp, k, v) in sent if pp == p]
        theirs = [(m.key(), m.value()) for m in got if m.partition() == p]
        assert theirs == mine
        offsets = [m.offset() for m in got if m.partition() == p]
        assert offsets == list(range(len(mine)))
    first = next(m for m in got if m.partition() == 1)
    assert first.headers() == [("h", b"1"), ("h", b"2"), ("trace", b"1")]


def test_delivery_reports_offsets_and_unknown_topic_errors(broker):
    create(broker, "reports")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "allow.auto.create.topics": False})
    reports = []
    for i in range(5):
        producer.produce("reports", value=b"x%d" % i, on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    producer.flush(10)
    assert reports == [(None, i) for i in range(5)]


def test_offsets_for_times_and_watermarks(broker):
    create(broker, "times")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce("times", value=b"v", timestamp=base + i * 1000)
        producer.flush(10)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10)
    assert (low, high) == (0, 10)
    found = consumer.offsets_for_times([TopicPartition("times", 0, base + 4500)], timeout=10)
    assert found[0].offset == 5
    after = consumer.offsets_for_times([TopicPartition("times", 0, base + 99_000)], timeout=10)
    assert after[0].offset == -1
    consumer.close()


def test_kafka_python_produces_and_consumes(broker):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KpTopicPartition

    create(broker, "kp", partitions=2)
    # Idempotence (InitProducerId) arrives with issue 7; kafka-python 3 enables it by default.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip",
                             enable_idempotence=False)
    for i in range(50):
        producer.send("kp", key=b"k%d" % i, value=b"v%d" % i, partition=i % 2,
                      headers=[("h", b"a"), ("h", b"b")])
    producer.flush(10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000,
                             enable_auto_commit=False)
    consumer.assign([KpTopicPartition("kp", 0), KpTopicPartition("kp", 1)])
    consumer.seek_to_beginning()
    got = [m for m in consumer]
    consumer.close()
    assert sorted((m.partition, m.offset) for m in got) == sorted((i % 2, i // 2) for i in range(50))
    assert all(m.headers == [("h", b"a"), ("h", b"b")] for m in got)
    # And librdkafka reads what kafka-python wrote.
    assert len(consume_all(broker, "kp", 2, 50)) == 50


def test_acknowledged_records_survive_restart_and_long_poll_wakes(broker):
    create(broker, "durable")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce("durable", value=b"%d" % i)
    assert producer.flush(10) == 0
    broker.kill()  # SIGKILL: no clean shutdown
    broker.start()
    got = consume_all(broker, "durable", 1, 100)
    assert [int(m.value()) for m in got] == list(range(100))
    # A consumer waiting at the end is woken by a new append well before fetch.wait.max.ms.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10000})
    consumer.assign([TopicPartition("durable", 0, 100)])
    consumer.poll(1.0)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("durable", value=b"late")
    p.flush(10)
    msg = None
    deadline = time.time() + 8
    while msg is None and time.time() < deadline:
        msg = consumer.poll(0.5)
    consumer.close()
    assert msg is not None and msg.value() == b"late"


def test_log_append_time_topics_stamp_broker_time(broker):
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

    create(broker, "appended", config={"message.timestamp.type": "LogAppendTime"})
    create(broker, "created")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    before = int(time.time() * 1000)
    for topic in ("appended", "created"):
        producer.produce(topic, value=b"v", timestamp=1_000)
    producer.flush(10)
    after = int(time.time() * 1000)
    (appended,) = consume_all(broker, "appended", 1, 1)
    kind, ts = appended.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000
    (created,) = consume_all(broker, "created", 1, 1)
    assert created.timestamp() == (TIMESTAMP_CREATE_TIME, 1_000)

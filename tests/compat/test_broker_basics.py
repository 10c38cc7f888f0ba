"""The broker as real Kafka clients first meet it: bootstrap, ApiVersions, Metadata, shutdown.

Topics, produce and fetch are not built yet; these tests pin what is: that librdkafka
(confluent-kafka) and kafka-python connect, negotiate API versions and read cluster metadata,
and that SIGTERM shuts the broker down cleanly.
"""

import os
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")


def test_confluent_kafka_reads_cluster_metadata(broker):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    metadata = admin.list_topics(timeout=10)
    assert list(metadata.brokers) == [1]
    host, port = broker.bootstrap.split(":")
    assert metadata.brokers[1].host == host and metadata.brokers[1].port == int(port)
    assert metadata.controller_id == 1
    assert len(metadata.cluster_id) == 22
    assert metadata.topics == {}


def test_kafka_python_bootstraps_and_describes_cluster(broker):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        assert admin.list_topics() == []
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 1
        assert [b["broker_id"] for b in cluster["brokers"]] == [1]
        assert len(cluster["cluster_id"]) == 22
    finally:
        admin.close()


def test_sigterm_shuts_down_cleanly_and_restart_keeps_cluster_id(broker, gregor_binary):
    from confluent_kafka.admin import AdminClient

    first_id = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).cluster_id
    assert broker.stop() == 0
    assert os.path.exists(os.path.join(broker.data_dir, ".kafka_cleanshutdown"))
    broker.start()
    second_id = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).cluster_id
    assert second_id == first_id


def test_confluent_kafka_creates_topics_with_kafkas_errors(broker):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([
        NewTopic("orders", num_partitions=6, replication_factor=1, config={"retention.ms": "60000"}),
        NewTopic("defaults"),
    ], operation_timeout=10)
    for f in futures.values():
        f.result(timeout=10)
    topics = admin.list_topics(timeout=10).topics
    assert sorted(topics) == ["defaults", "orders"]
    assert sorted(topics["orders"].partitions) == list(range(6))
    assert [p.leader for p in topics["orders"].partitions.values()] == [1] * 6
    assert len(topics["defaults"].partitions) == 1

    def error_of(new_topic, **kwargs):
        future = admin.create_topics([new_topic], **kwargs)[new_topic.topic]
        with pytest.raises(KafkaException) as info:
            future.result(timeout=10)
        return info.value.args[0].name()

    assert error_of(NewTopic("orders", num_partitions=1, replication_factor=1)) == "TOPIC_ALREADY_EXISTS"
    assert error_of(NewTopic("wide", num_partitions=1, replication_factor=3)) == "INVALID_REPLICATION_FACTOR"
    assert error_of(NewTopic("bad name!", num_partitions=1, replication_factor=1)) == "TOPIC_EXCEPTION"  # librdkafka's name for INVALID_TOPIC_EXCEPTION (17)
    assert error_of(NewTopic("cfg", num_partitions=1, replication_factor=1,
                             config={"retention.ms": "later"})) == "INVALID_CONFIG"
    assert error_of(NewTopic("cfg", num_partitions=1, replication_factor=1,
                             config={"no.such.config": "1"})) == "INVALID_CONFIG"
    # Configs tools set routinely are accepted even where Gregor does not act on them yet.
    admin.create_topics([NewTopic("tooled", num_partitions=1, replication_factor=1,
                                  config={"min.insync.replicas": "1", "compression.type": "zstd"})])["tooled"].result(timeout=10)
    # validate_only checks without creating.
    admin.create_topics([NewTopic("dry", num_partitions=2, replication_factor=1)],
                        validate_only=True)["dry"].result(timeout=10)
    assert "dry" not in admin.list_topics(timeout=10).topics


def test_topics_survive_restart_and_kafka_python_sees_them(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KpNewTopic

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        kp.create_topics([KpNewTopic("from-kafka-python", num_partitions=2, replication_factor=1)])
    finally:
        kp.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kept", num_partitions=3, replication_factor=1)])["kept"].result(timeout=10)
    before = admin.list_topics(timeout=10).topics
    assert broker.stop() == 0
    broker.start()
    after = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics
    assert sorted(after) == sorted(before) == ["from-kafka-python", "kept"]
    assert len(after["kept"].partitions) == 3 and len(after["from-kafka-python"].partitions) == 2


def test_metadata_auto_creates_topics_as_kafka_does(broker):
    from confluent_kafka import Producer

    # A producer's metadata request for an unknown topic allows auto-creation.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.list_topics("auto-created", timeout=10)
    topics = producer.list_topics(timeout=10).topics
    assert "auto-created" in topics and len(topics["auto-created"].partitions) == 1


def test_delete_topics_and_records(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for name in ("doomed", "trimmed"):
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(timeout=10)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(20):
        producer.produce("trimmed", value=b"%d" % i, partition=0)
    producer.flush(10)

    deleted = admin.delete_records([TopicPartition("trimmed", 0, 15)])
    result = list(deleted.values())[0].result(timeout=10)
    assert result.low_watermark == 15
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    assert consumer.get_watermark_offsets(TopicPartition("trimmed", 0), timeout=10) == (15, 20)
    consumer.close()

    admin.delete_topics(["doomed"], operation_timeout=10)["doomed"].result(timeout=10)
    assert "doomed" not in admin.list_topics(timeout=10).topics
    with pytest.raises(Exception) as info:
        admin.delete_topics(["doomed"], operation_timeout=10)["doomed"].result(timeout=10)
    assert info.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART"
    assert not any(name.startswith("doomed-") for name in os.listdir(broker.data_dir))


def test_create_partitions_and_describe_cluster(broker):
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("growing", num_partitions=2, replication_factor=1)])["growing"].result(timeout=10)
    admin.create_partitions([NewPartitions("growing", 5)])["growing"].result(timeout=10)
    assert len(admin.list_topics(timeout=10).topics["growing"].partitions) == 5
    with pytest.raises(Exception) as info:
        admin.create_partitions([NewPartitions("growing", 3)])["growing"].result(timeout=10)
    assert info.value.args[0].name() == "INVALID_PARTITIONS"
    cluster = admin.describe_cluster().result(timeout=10)
    assert cluster.controller.id == 1 and [n.id for n in cluster.nodes] == [1]
    assert len(cluster.cluster_id) == 22


def test_topic_configs_describe_alter_and_apply_live(gregor_binary, tmp_path):
    from conftest import Broker
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewTopic, ResourceType)

    b = Broker(gregor_binary, tmp_path / "data",
               overrides=["log.retention.check.interval.ms=200", "log.retention.hours=100"]).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("conf", num_partitions=1, replication_factor=1,
                                      config={"segment.bytes": "1000", "cleanup.policy": "delete"})])["conf"].result(timeout=10)
        resource = ConfigResource(ResourceType.TOPIC, "conf")
        described = admin.describe_configs([resource])[resource].result(timeout=10)
        assert described["segment.bytes"].value == "1000"
        assert described["segment.bytes"].source == 1  # TOPIC_CONFIG
        assert described["retention.ms"].value == str(100 * 3600 * 1000)
        assert described["retention.ms"].source == 4  # STATIC_BROKER_CONFIG (log.retention.hours)
        assert described["max.message.bytes"].source == 5  # DEFAULT_CONFIG
        synonyms = [s.name for s in described["retention.ms"].synonyms.values()]
        assert "log.retention.hours" in synonyms

        producer = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(30):
            producer.produce("conf", value=b"x" * 200, timestamp=1_000_000 + i)
            producer.flush(10)
        # Old timestamps; a short retention.ms set live makes the broker delete the old segments.
        update = ConfigResource(ResourceType.TOPIC, "conf", incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([update])[update].result(timeout=10)
        described = admin.describe_configs([resource])[resource].result(timeout=10)
        assert described["retention.ms"].value == "1000" and described["segment.bytes"].value == "1000"
        consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused",
                             "enable.auto.commit": False})
        deadline = time.time() + 10
        low = 0
        while low == 0 and time.time() < deadline:
            low, high = consumer.get_watermark_offsets(TopicPartition("conf", 0), timeout=10)
            time.sleep(0.2)
        consumer.close()
        assert low > 0 and high == 30
        # Bad values are refused with INVALID_CONFIG and change nothing.
        bad = ConfigResource(ResourceType.TOPIC, "conf", incremental_configs=[
            ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
        with pytest.raises(Exception) as info:
            admin.incremental_alter_configs([bad])[bad].result(timeout=10)
        assert info.value.args[0].name() == "INVALID_CONFIG"
    finally:
        b.stop()
    # Overrides persist across restarts.
    b.start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        described = admin.describe_configs([resource])[resource].result(timeout=10)
        assert described["retention.ms"].value == "1000" and described["retention.ms"].source == 1
    finally:
        b.stop()


def test_describe_log_dirs_with_kafka_python(broker):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import KafkaAdminClient

    creator = AdminClient({"bootstrap.servers": broker.bootstrap})
    creator.create_topics([NewTopic("sized", num_partitions=2, replication_factor=1)])["sized"].result(timeout=10)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("sized", value=b"x" * 1000, partition=1)
    producer.flush(10)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        result = admin.describe_log_dirs()
    finally:
        admin.close()
    text = repr(result)
    assert "sized" in text and os.path.basename(broker.data_dir) in text


def test_auto_creation_follows_broker_settings(gregor_binary, tmp_path):
    from conftest import Broker
    from confluent_kafka import Producer

    b = Broker(gregor_binary, tmp_path / "off", overrides=["auto.create.topics.enable=false"]).start()
    try:
        producer = Producer({"bootstrap.servers": b.bootstrap})
        topics = producer.list_topics("not-created", timeout=10).topics
        assert topics["not-created"].error.name() == "UNKNOWN_TOPIC_OR_PART"
    finally:
        b.stop()
    b = Broker(gregor_binary, tmp_path / "on", overrides=["num.partitions=4"]).start()
    try:
        producer = Producer({"bootstrap.servers": b.bootstrap})
        producer.list_topics("created", timeout=10)
        assert len(producer.list_topics(timeout=10).topics["created"].partitions) == 4
    finally:
        b.stop()


def test_create_topics_with_replica_assignment(broker):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("placed", 3, replica_assignment=[[1], [1], [1]])])["placed"].result(timeout=10)
    assert len(admin.list_topics(timeout=10).topics["placed"].partitions) == 3
    with pytest.raises(Exception) as info:
        admin.create_topics([NewTopic("elsewhere", 1, replica_assignment=[[2]])])["elsewhere"].result(timeout=10)
    assert info.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT"

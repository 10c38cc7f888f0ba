"""The broker as real Kafka clients first meet it: bootstrap, ApiVersions, Metadata, shutdown.

Topics, produce and fetch are not built yet; these tests pin what is: that librdkafka
(confluent-kafka) and kafka-python connect, negotiate API versions and read cluster metadata,
and that SIGTERM shuts the broker down cleanly.
"""

import os

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

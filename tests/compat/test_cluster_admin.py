"""Cluster administration with real clients: preferred leader election (confluent-kafka's
`elect_leaders`) and partition reassignment (kafka-python's `alter_partition_reassignments` /
`list_partition_reassignments`) on a three-node cluster."""

import time

from cluster import create, full_isr


def test_preferred_leader_election_moves_leadership_back(cluster):
    from confluent_kafka import ElectionType, KafkaError, TopicPartition

    create(cluster, "preferred", 1)
    leader, replicas, _ = cluster.partitions("preferred")[0]
    preferred = replicas[0]
    assert leader == preferred
    # Knock the preferred leader out and back: leadership stays with its successor.
    cluster.nodes[preferred].kill()
    cluster.wait_for(lambda: cluster.partitions("preferred")[0][0] not in (-1, preferred), "a new leader")
    cluster.nodes[preferred].launch()
    cluster.nodes[preferred].wait_ready()
    cluster.wait_for(lambda: full_isr(cluster, "preferred"), "the preferred replica back in the ISR")
    assert cluster.partitions("preferred")[0][0] != preferred

    admin = cluster.admin()
    tp = TopicPartition("preferred", 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert result[tp] is None, result
    cluster.wait_for(lambda: cluster.partitions("preferred")[0][0] == preferred, "the preferred leader back")
    # Already there: Kafka's ELECTION_NOT_NEEDED.
    again = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert isinstance(again[tp], KafkaError), again
    assert again[tp].name() == "ELECTION_NOT_NEEDED"


def test_reassignment_moves_a_partition_and_keeps_its_data(cluster):
    from confluent_kafka import Consumer, Producer, TopicPartition as CTopicPartition
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition

    create(cluster, "moving", 1, replication_factor=2)
    _, replicas, _ = cluster.partitions("moving")[0]
    spare = next(b for b in (1, 2, 3) if b not in replicas)
    target = [spare, replicas[0]]
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce("moving", str(i).encode(), partition=0)
    assert producer.flush(30) == 0

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap.split(","), request_timeout_ms=30000)
    try:
        tp = TopicPartition("moving", 0)
        assert admin.alter_partition_reassignments({tp: target}) == {tp: None}
        cluster.wait_for(
            lambda: sorted(cluster.partitions("moving")[0][1]) == sorted(target)
            and not admin.list_partition_reassignments([tp]),
            "the reassignment to %r to complete" % target, timeout=60)
        leader, replicas, isr = cluster.partitions("moving")[0]
        assert sorted(isr) == sorted(target) and leader in target

        # Refusals carry Kafka's codes, per partition.
        bad = admin.alter_partition_reassignments({tp: [1, 1]})
        assert bad[tp] is not None and bad[tp].errno == 39, bad
        nothing = admin.alter_partition_reassignments({tp: None})
        assert nothing[tp] is not None and nothing[tp].errno == 85, nothing
    finally:
        admin.close()

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "check",
                         "auto.offset.reset": "earliest"})
    consumer.assign([CTopicPartition("moving", 0, 0)])
    values = []
    deadline = time.time() + 30
    while len(values) < 100 and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            values.append(int(msg.value()))
    consumer.close()
    assert values == list(range(100))

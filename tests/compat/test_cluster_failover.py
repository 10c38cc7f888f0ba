"""A three-node cluster driven by real clients through leader and controller failures.

The central property (issue 6): a record a producer was told is written with `acks=all` to a
topic with `min.insync.replicas=2` survives any single broker failure — it is readable at the
offset it was acknowledged at, and every replica ends up with the same log. The CI run kills a
leader (or the active controller) a few times; `GREGOR_SOAK=1` runs 25 rounds, and
`GREGOR_FAILOVER_ROUNDS=N` any number."""

import os
import threading
import time

import pytest

from cluster import create, full_isr

SOAK = bool(os.environ.get("GREGOR_SOAK"))
ROUNDS = int(os.environ.get("GREGOR_FAILOVER_ROUNDS", "25" if SOAK else "4"))


def test_replicas_and_leaders_spread_over_the_brokers(cluster):
    create(cluster, "spread", 6)
    partitions = cluster.partitions("spread")
    leaders = [leader for leader, _, _ in partitions.values()]
    assert sorted(leaders.count(b) for b in (1, 2, 3)) == [2, 2, 2], partitions
    for leader, replicas, isr in partitions.values():
        assert sorted(replicas) == [1, 2, 3] and sorted(isr) == [1, 2, 3]
        assert leader in isr
    # More replicas than live brokers is refused with Kafka's code.
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()
    with pytest.raises(Exception) as info:
        admin.create_topics([NewTopic("too-many", 1, 4)])["too-many"].result(timeout=30)
    assert info.value.args[0].name() == "INVALID_REPLICATION_FACTOR"


def test_min_insync_replicas_refuses_acks_all_when_the_isr_is_too_small(cluster):
    from confluent_kafka import Producer

    create(cluster, "guarded", 1, configs={"min.insync.replicas": "3"})
    leader = cluster.partitions("guarded")[0][0]
    victim = next(n for n in cluster.nodes if n != leader)
    cluster.nodes[victim].kill()
    cluster.wait_for(lambda: len(cluster.partitions("guarded")[0][2]) == 2, "the ISR to shrink to 2")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "message.timeout.ms": 3000, "retries": 0})
    outcome = []
    producer.produce("guarded", b"x", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    assert outcome and outcome[0] is not None
    assert outcome[0].name() in ("NOT_ENOUGH_REPLICAS", "_MSG_TIMED_OUT"), outcome[0]
    # acks=1 does not need the ISR.
    relaxed = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1"})
    done = []
    relaxed.produce("guarded", b"y", on_delivery=lambda err, msg: done.append(err))
    relaxed.flush(15)
    assert done == [None]


def produce_until(cluster, topic, stop, acked, failed):
    """Sends increasing sequence numbers with acks=all until `stop`; `acked` maps each
    acknowledged number to (partition, offset)."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": cluster.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": 120000,
        "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
    })

    def delivered(err, msg):
        if err is None:
            acked[int(msg.value())] = (msg.partition(), msg.offset())
        else:
            failed.append(err)

    seq = 0
    while not stop.is_set():
        try:
            producer.produce(topic, str(seq).encode(), key=str(seq).encode(), on_delivery=delivered)
            seq += 1
        except BufferError:
            producer.poll(0.1)
            continue
        producer.poll(0)
        # A steady load (at most ~2,000 records/s) rather than the most two cores can take:
        # a restarted follower must be able to catch up while writes go on.
        if seq % 20 == 0:
            time.sleep(0.01)
    producer.flush(180)


def read_all(cluster, topic, partitions):
    """Every record of `topic` as {(partition, offset): value}, read up to the high watermarks."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "verifier",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(partitions)}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen, last, errors = {}, {p: -1 for p in range(partitions)}, []
    deadline = time.time() + 180
    while time.time() < deadline and any(last[p] < ends[p] - 1 for p in range(partitions)):
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                errors.append(str(msg.error()))
                continue
            seen[(msg.partition(), msg.offset())] = int(msg.value())
            last[msg.partition()] = max(last[msg.partition()], msg.offset())
    consumer.close()
    assert all(last[p] >= ends[p] - 1 for p in range(partitions)), \
        "could not read back to the high watermarks %r (reached %r; errors %r)" % (ends, last, errors[-5:])
    return seen, ends


def log_bytes(node_dir, topic, partition):
    """The concatenated `.log` segments of one replica, in offset order."""
    directory = os.path.join(node_dir, "%s-%d" % (topic, partition))
    segments = sorted(f for f in os.listdir(directory) if f.endswith(".log"))
    data = b""
    for name in segments:
        with open(os.path.join(directory, name), "rb") as f:
            data += f.read()
    return data


def test_no_acknowledged_record_is_lost_when_leaders_and_the_controller_are_killed(cluster):
    topic = "sequence"
    partitions = 3
    create(cluster, topic, partitions, configs={"min.insync.replicas": "2"})
    acked, failed, stop = {}, [], threading.Event()
    writer = threading.Thread(target=produce_until, args=(cluster, topic, stop, acked, failed))
    writer.start()
    kills = []
    try:
        for round_ in range(ROUNDS):
            time.sleep(1.5)
            if round_ % 4 == 3:
                victim = cluster.controller()
            else:
                victim = cluster.partitions(topic)[round_ % partitions][0]
            kills.append(victim)
            before = len(acked)
            cluster.nodes[victim].kill()
            cluster.wait_for(
                lambda: all(leader not in (-1, victim) for leader, _, _ in cluster.partitions(topic).values()),
                "leaders to move off killed broker %d" % victim,
            )
            cluster.nodes[victim].launch()
            cluster.nodes[victim].wait_ready()
            cluster.wait_for(lambda: full_isr(cluster, topic), "broker %d back in every ISR" % victim,
                             timeout=120)
            cluster.wait_for(lambda: len(acked) > before, "writes to continue after round %d" % round_)
    finally:
        stop.set()
        writer.join(240)
    assert len(kills) == ROUNDS
    assert len(acked) > 100, "the producer made progress (%d acked, %d failed)" % (len(acked), len(failed))

    seen, ends = read_all(cluster, topic, partitions)
    missing = sorted((where, v, seen.get(where)) for v, where in acked.items() if seen.get(where) != v)
    if missing:
        history = [line.strip() for node in cluster.nodes.values() for line in node.log
                   if "truncat" in line or "became" in line or "ISR" in line]
        raise AssertionError("acknowledged records lost or moved (offset, acked value, found): %r "
                             "(%d of %d; ends %r; kills %r)\n%s"
                             % (missing[:10], len(missing), len(acked), ends, kills, "\n".join(history[-60:])))

    # Every replica converges on the same log: stop the cluster cleanly (after the followers
    # caught up) and compare the replicas' files byte for byte.
    cluster.wait_for(lambda: full_isr(cluster, topic), "a full ISR before the comparison")
    time.sleep(2)
    for node in cluster.nodes.values():
        assert node.stop() == 0
    for p in range(partitions):
        copies = {n: log_bytes(node.data_dir, topic, p) for n, node in cluster.nodes.items()}
        assert len(set(copies.values())) == 1, "replicas of %s-%d differ: %r" % (
            topic, p, {n: len(b) for n, b in copies.items()})
        assert len(copies[1]) > 0


def test_consumer_group_keeps_its_offsets_across_coordinator_failover(cluster):
    from confluent_kafka import Consumer, Producer, TopicPartition

    create(cluster, "work", 3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(300):
        producer.produce("work", str(i).encode(), partition=i % 3)
    assert producer.flush(30) == 0

    def consumer():
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "workers",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        c.subscribe(["work"])
        return c

    def consume(c, until, seen):
        deadline = time.time() + 60
        while len(seen) < until and time.time() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                seen.add(int(msg.value()))
        return seen

    admin = cluster.admin()
    first = consumer()
    seen = consume(first, 150, set())
    first.commit(asynchronous=False)
    coordinator = admin.describe_consumer_groups(["workers"])["workers"].result(timeout=15).coordinator.id
    cluster.nodes[coordinator].kill()
    seen = consume(first, 300, seen)
    assert len(seen) == 300, "consumption stalled at %d after the coordinator died" % len(seen)
    cluster.wait_for(lambda: first.commit(asynchronous=False) or True, "a commit to the new coordinator")
    moved = cluster.wait_for(
        lambda: admin.describe_consumer_groups(["workers"])["workers"].result(timeout=15).coordinator.id,
        "a new coordinator")
    assert moved != coordinator
    committed = first.committed([TopicPartition("work", p) for p in range(3)], timeout=15)
    assert sorted(tp.offset for tp in committed) == [100, 100, 100]
    first.close()

    # The old coordinator comes back; the group's offsets are the same wherever it is served.
    cluster.nodes[coordinator].launch()
    cluster.nodes[coordinator].wait_ready()
    cluster.wait_for(lambda: full_isr(cluster, "__consumer_offsets"), "__consumer_offsets fully replicated again")
    again = consumer()
    leftovers = []
    deadline = time.time() + 8
    while time.time() < deadline:
        msg = again.poll(0.5)
        if msg is not None and not msg.error():
            leftovers.append(msg.value())
    assert leftovers == [], "a resumed member re-read committed records"
    again.close()


def test_a_broker_only_node_joins_and_hosts_replicas(cluster):
    observer = cluster.add_broker(4)
    observer.launch()
    observer.wait_ready()
    admin = cluster.admin()
    cluster.wait_for(lambda: 4 in [b.id for b in admin.describe_cluster(request_timeout=10)
                                   .result(timeout=15).nodes], "broker 4 to be listed")
    create(cluster, "four", 4, replication_factor=4)
    partitions = cluster.partitions("four")
    assert all(sorted(replicas) == [1, 2, 3, 4] for _, replicas, _ in partitions.values())
    assert 4 in [leader for leader, _, _ in partitions.values()], partitions
    # It is not a voter: the active controller is always one of the three.
    assert cluster.controller() in (1, 2, 3)


def test_a_diverged_replica_truncates_and_converges(cluster):
    """Unclean election makes two histories: the old leader's acks=1 writes that its follower
    never copied, and the new leader's. When the old leader returns it must drop its own suffix
    (OffsetForLeaderEpoch / diverging epoch) and end with the new leader's log. Two replicas on
    three nodes, so the controller quorum survives each step."""
    import signal

    from confluent_kafka import Producer

    create(cluster, "forked", 1, replication_factor=2,
           configs={"unclean.leader.election.enable": "true"})
    old_leader, replicas, _ = cluster.partitions("forked")[0]
    follower = next(r for r in replicas if r != old_leader)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce("forked", b"shared-%d" % i)
    assert producer.flush(30) == 0

    # Freeze the follower: it is fenced and leaves the ISR; the leader alone takes acks=1.
    cluster.nodes[follower].proc.send_signal(signal.SIGSTOP)
    cluster.wait_for(lambda: cluster.partitions("forked")[0][2] == [old_leader], "the ISR to shrink to the leader")
    alone = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1"})
    for i in range(5):
        alone.produce("forked", b"orphan-%d" % i)
    assert alone.flush(30) == 0
    cluster.nodes[old_leader].kill()
    cluster.nodes[follower].proc.send_signal(signal.SIGCONT)
    # The only in-sync replica is dead: the topic allows an unclean election of the follower.
    cluster.wait_for(lambda: cluster.partitions("forked")[0][0] == follower, "an unclean election")
    after = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(3):
        after.produce("forked", b"new-%d" % i)
    assert after.flush(60) == 0

    cluster.nodes[old_leader].launch()
    cluster.nodes[old_leader].wait_ready()
    cluster.wait_for(lambda: full_isr(cluster, "forked", size=2), "the old leader back in the ISR")
    assert any("truncat" in line for line in cluster.nodes[old_leader].log), "the old leader truncated"
    time.sleep(1)
    for node in cluster.nodes.values():
        assert node.stop() == 0
    logs = {n: log_bytes(cluster.nodes[n].data_dir, "forked", 0) for n in (old_leader, follower)}
    assert logs[old_leader] == logs[follower], {n: len(b) for n, b in logs.items()}
    assert b"orphan" not in logs[follower] and b"new-2" in logs[follower]

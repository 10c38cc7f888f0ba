"""The basic group flow with other clients than librdkafka's Consumer: kafka-python's
KafkaConsumer (its own JoinGroup/SyncGroup/Heartbeat/OffsetCommit code and assignors), and
kcat's balanced consumer (-G, Debian's librdkafka 2.0.2)."""

import concurrent.futures
import queue
import shutil
import subprocess
import threading
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

from confluent_kafka import ConsumerGroupState  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from group_helpers import (DEADLINE, GROUP_OVERRIDES, committed, create_topic,  # noqa: E402
                           describe_group, produce, record_key)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)


class KpMember:
    """A kafka-python KafkaConsumer in a group, polling in its own thread (as an application
    would) and running the test's calls (commit, committed, close) between two polls, since a
    KafkaConsumer is not thread-safe.

    Not round-robin from the test thread: kafka-python 3.0.12 loses a JoinGroup/SyncGroup result
    that arrives after a poll gave up waiting for it (the next poll sends a new JoinGroup), which
    short polls of several consumers in turn make likely; a member polling continuously in its
    own thread leaves almost no such gap."""

    _CLOSE = object()

    def __init__(self, name, bootstrap, group, topic):
        self.name = name
        self.records = []
        self.error = None
        self._partitions = []
        self._commands = queue.Queue()
        self._config = dict(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            session_timeout_ms=6000, heartbeat_interval_ms=500, request_timeout_ms=30000)
        self._topic = topic
        self._thread = threading.Thread(target=self._run, name="kp-" + name, daemon=True)
        self._thread.start()

    def _run(self):
        from kafka import KafkaConsumer

        try:
            consumer = KafkaConsumer(self._topic, **self._config)
        except Exception as e:  # noqa: BLE001 - reported through self.error
            self.error = e
            return
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                fn = None
            if fn is KpMember._CLOSE:
                try:
                    consumer.close()
                    future.set_result(None)
                except Exception as e:  # noqa: BLE001
                    future.set_exception(e)
                self._partitions = []
                return
            if fn is not None:
                try:
                    future.set_result(fn(consumer))
                except Exception as e:  # noqa: BLE001
                    future.set_exception(e)
                continue
            try:
                for records in consumer.poll(timeout_ms=500).values():
                    self.records.extend(records)
                self._partitions = sorted(tp.partition for tp in consumer.assignment())
            except Exception as e:  # noqa: BLE001 - reported through self.error
                self.error = e
                return

    def call(self, fn, timeout=DEADLINE):
        """Runs fn(consumer) on the member's thread; returns its result."""
        future = concurrent.futures.Future()
        self._commands.put((fn, future))
        return future.result(timeout)

    def partitions(self):
        return self._partitions

    def close(self):
        if self._thread.is_alive():
            self.call(KpMember._CLOSE)
        self._thread.join(DEADLINE)

    def __repr__(self):
        return "%s(partitions=%s records=%d error=%r)" % (self.name, self.partitions(), len(self.records), self.error)


def kp_wait_until(members, predicate, what, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while not predicate():
        for m in members:
            assert m.error is None, m
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ds waiting for %s; members: %r" % (timeout, what, members))
        time.sleep(0.1)


def test_kafka_python_group_shares_partitions_commits_and_resumes(broker):
    from kafka.structs import OffsetAndMetadata

    create_topic(broker.bootstrap, "kp-group", 4)
    produce(broker.bootstrap, "kp-group", 40, 4)  # 10 per partition
    group = "kp-group"
    a = KpMember("kp-a", broker.bootstrap, group, "kp-group")
    b = KpMember("kp-b", broker.bootstrap, group, "kp-group")
    members = [a, b]
    try:
        kp_wait_until(members, lambda: (a.partitions() and b.partitions() and len(a.partitions()) == 2
                                        and sorted(a.partitions() + b.partitions()) == [0, 1, 2, 3]),
                      "2 partitions for each kafka-python member")
        every = {(p, o) for p in range(4) for o in range(10)}
        kp_wait_until(members, lambda: {(r.partition, r.offset) for m in members for r in m.records} >= every,
                      "all 40 records")
        assert {(r.partition, r.offset): r.key for m in members for r in m.records} == {
            (i % 4, i // 4): record_key(i) for i in range(40)}
        description = describe_group(broker.bootstrap, group)
        assert description.state == ConsumerGroupState.STABLE
        assert sorted(m.client_id for m in description.members) == ["kp-a", "kp-b"]

        # Each member commits its own partitions: offset 6 with metadata.
        for m in members:
            m.call(lambda consumer: consumer.commit({tp: OffsetAndMetadata(6, "kp", -1)
                                                     for tp in consumer.assignment()}))
        for m in members:
            mine = m.call(lambda consumer: {tp.partition: consumer.committed(tp) for tp in consumer.assignment()})
            assert mine == {p: 6 for p in m.partitions()}
        assert committed(broker.bootstrap, group, "kp-group", 4) == {p: 6 for p in range(4)}

        a.close()  # LeaveGroup
        kp_wait_until([b], lambda: b.partitions() == [0, 1, 2, 3], "b to take over all 4 partitions")
        b.close()
        members = []

        c = KpMember("kp-c", broker.bootstrap, group, "kp-group")
        members = [c]
        kp_wait_until(members, lambda: len(c.records) >= 16, "the 4 records after each committed offset")
        first = {}
        for r in c.records:
            first.setdefault(r.partition, r.offset)
        assert first == {p: 6 for p in range(4)}
        assert sorted((r.partition, r.offset) for r in c.records) == [(p, o) for p in range(4) for o in range(6, 10)]
        c.call(lambda consumer: consumer.commit())  # the positions: 10 everywhere
        assert committed(broker.bootstrap, group, "kp-group", 4) == {p: 10 for p in range(4)}
    finally:
        for m in members:
            m.close()


kcat_missing = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")


def kcat_group(broker, group, topic, count, *extra):
    """Consumes `count` records with kcat's balanced consumer; returns [(partition, offset, key)]."""
    # (No -o: with -G, kcat would force that start offset on every assigned partition and
    # ignore the committed ones.)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-G", group, "-c", str(count), "-q",
                          "-f", "%p %o %k\\n", "-X", "auto.offset.reset=earliest",
                          "-X", "session.timeout.ms=6000", *extra, topic],
                         capture_output=True, text=True, timeout=90, check=True).stdout
    return [(int(p), int(o), k) for p, o, k in (line.split() for line in out.splitlines())]


@kcat_missing
def test_kcat_balanced_consumer_reads_commits_and_resumes(broker):
    create_topic(broker.bootstrap, "kc-group", 3)
    produce(broker.bootstrap, "kc-group", 30, 3)
    got = kcat_group(broker, "kcat-g", "kc-group", 30)
    assert sorted(got) == sorted((i % 3, i // 3, record_key(i).decode()) for i in range(30))
    # kcat commits what it consumed (auto commit, and a final commit when it closes).
    assert committed(broker.bootstrap, "kcat-g", "kc-group", 3) == {0: 10, 1: 10, 2: 10}

    produce(broker.bootstrap, "kc-group", 6, 3, start=30)
    got = kcat_group(broker, "kcat-g", "kc-group", 6)
    assert sorted(got) == sorted((i % 3, i // 3, record_key(i).decode()) for i in range(30, 36))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=60)
    assert "kcat-g" in [g.group_id for g in listed.valid]

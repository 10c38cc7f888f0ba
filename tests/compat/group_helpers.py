"""Helpers shared by the consumer-group suites (test_groups_*.py): the broker settings they
assume, topic and record setup, in-process group members polled round-robin from the test
thread, and members in their own processes (group_member.py) that a test can SIGKILL.

Nothing here asserts wall-clock times: waits poll until a condition holds and fail only after
a generous deadline, so a slow CI machine makes the suite slower, never red."""

import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))

# Broker settings (Kafka's keys) the group suites start Gregor with, through the `broker`
# fixture's `broker_overrides` marker.
GROUP_OVERRIDES = (
    # An empty classic group's first rebalance completes at once instead of waiting 3 s for
    # more members.
    "group.initial.rebalance.delay.ms=0",
    # KIP-848 members heartbeat every 500 ms (Kafka's default is 5 s), so a new member's
    # assignment arrives quickly; the minimum must allow it.
    "group.consumer.min.heartbeat.interval.ms=500",
    "group.consumer.heartbeat.interval.ms=500",
    # A KIP-848 member that stops heartbeating is expired after 6 s (Kafka's default is 45 s).
    "group.consumer.min.session.timeout.ms=6000",
    "group.consumer.session.timeout.ms=6000",
    # One broker: `__consumer_offsets` cannot have Kafka's default three replicas.
    "offsets.topic.replication.factor=1",
)

# Classic members ask for the shortest session the broker allows by default
# (group.min.session.timeout.ms=6000), so a killed member is expired quickly.
SESSION_TIMEOUT_MS = 6000
DEADLINE = 60  # seconds any single wait may take before the test fails


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def record_key(i):
    return b"k%06d" % i


def produce(bootstrap, topic, count, partitions, start=0):
    """Produces records start..start+count-1; record i goes to partition i % partitions with key
    record_key(i). Returns {partition: number of records written}."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    written = {}
    for i in range(start, start + count):
        p = i % partitions
        producer.produce(topic, key=record_key(i), value=b"v%d" % i, partition=p)
        written[p] = written.get(p, 0) + 1
    assert producer.flush(30) == 0
    return written


def classic_config(bootstrap, group, **extra):
    """A confluent-kafka consumer config for a classic-protocol member: manual commits, reading
    from the start when nothing is committed, a short session."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 500,
    }
    config.update(extra)
    return config


def consumer_protocol_config(bootstrap, group, **extra):
    """A confluent-kafka consumer config for a KIP-848 (group.protocol=consumer) member. That
    protocol refuses session.timeout.ms, heartbeat.interval.ms and partition.assignment.strategy:
    the broker decides them."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    config.update(extra)
    return config


class Member:
    """A confluent-kafka Consumer subscribed in a group, polled by the test thread. Records what
    its rebalance callbacks saw and every message it received."""

    def __init__(self, name, config, topics):
        self.name = name
        self.assigned = []  # partitions handed to each on_assign call
        self.revoked = []  # partitions taken by each on_revoke call
        self.lost = []
        self.messages = []
        self.errors = []
        self.closed = False
        self.consumer = Consumer(dict(config, **{"client.id": name}))
        self.consumer.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)

    def _on_assign(self, consumer, partitions):
        self.assigned.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def _on_revoke(self, consumer, partitions):
        self.revoked.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def _on_lost(self, consumer, partitions):
        self.lost.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def poll(self, timeout=0.1):
        if self.closed:
            return
        msg = self.consumer.poll(timeout)
        if msg is None:
            return
        if msg.error():
            self.errors.append(msg.error())
            return
        self.messages.append(msg)

    def partitions(self):
        """This member's current assignment, as sorted partition numbers."""
        if self.closed:
            return []
        return sorted(tp.partition for tp in self.consumer.assignment())

    def seen(self):
        """{partition: [offsets received, in order]}."""
        out = {}
        for m in self.messages:
            out.setdefault(m.partition(), []).append(m.offset())
        return out

    def commit_positions(self):
        """Commits, synchronously, the position after the last message received on every
        partition this member holds; returns {partition: committed offset}."""
        positions = self.consumer.position(self.consumer.assignment())
        todo = [tp for tp in positions if tp.offset >= 0]
        if todo:
            self.consumer.commit(offsets=todo, asynchronous=False)
        return {tp.partition: tp.offset for tp in todo}

    def close(self):
        if not self.closed:
            self.closed = True
            self.consumer.close()

    def __repr__(self):
        return "%s(partitions=%s assigned=%s revoked=%s lost=%s errors=%s messages=%d)" % (
            self.name, self.partitions(), self.assigned, self.revoked, self.lost,
            [str(e) for e in self.errors], len(self.messages))


def poll_until(members, predicate, what, timeout=DEADLINE):
    """Polls every open member round-robin (0.1 s each) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while True:
        for m in members:
            m.poll(0.1)
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ds waiting for %s; members: %r" % (timeout, what, list(members)))


def poll_for(members, seconds):
    """Keeps every open member polling for a while (to let a rebalance that should not happen
    show itself)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in members:
            m.poll(0.1)


def balanced(members, partitions, per_member):
    """True when every member holds exactly per_member partitions and together they hold all
    `partitions` of the topic, each once."""
    held = [m.partitions() for m in members]
    flat = sorted(p for ps in held for p in ps)
    return all(len(ps) == per_member for ps in held) and flat == list(range(partitions))


def close_all(members):
    for m in members:
        try:
            m.close()
        except Exception:  # noqa: BLE001 - teardown must close the rest
            pass


def committed(bootstrap, group, topic, partitions):
    """The group's committed offsets, read through Consumer.committed() (OffsetFetch) by a client
    that does not join the group: {partition: offset}, negative when nothing is committed."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    finally:
        reader.close()
    for tp in got:
        if tp.error:
            raise KafkaException(tp.error)
    return {tp.partition: tp.offset for tp in got}


def wait_for(predicate, what, timeout=DEADLINE, interval=0.2):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(interval)


def describe_group(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=60)


class MemberProcess:
    """A group member in its own process (group_member.py), which a test can SIGKILL so that it
    leaves no LeaveGroup behind. It appends what it does to `out` (see group_member.py)."""

    def __init__(self, bootstrap, group, topic, out, settings=(), sleep=0.0, commit_every=10):
        self.out = str(out)
        args = [sys.executable, os.path.join(HERE, "group_member.py"), "--bootstrap", bootstrap,
                "--group", group, "--topic", topic, "--out", self.out, "--sleep", str(sleep),
                "--commit-every", str(commit_every)]
        for item in settings:
            args += ["--set", item]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.out + ".stderr", "w"))

    def events(self):
        """The lines written so far, split into words."""
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            text = f.read()
        # A line still being written has no newline yet: leave it for the next read.
        return [line.split() for line in text[:text.rfind("\n") + 1].splitlines() if line]

    def assignment(self):
        """The partitions this process holds now, according to its callbacks."""
        held = set()
        for ev in self.events():
            if ev[0] == "assign":
                held |= parse_partitions(ev[1])
            elif ev[0] in ("revoke", "lost"):
                held -= parse_partitions(ev[1])
        return sorted(held)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout=60):
        """SIGTERM: the member closes its consumer (leaving the group) and exits."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stderr(self):
        try:
            with open(self.out + ".stderr") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


def parse_partitions(text):
    return {int(p) for p in text.split(",") if p != "-"}


def committed_after_restart(bootstrap, group, topic, partitions, timeout=DEADLINE):
    """committed(), retried while the coordinator answers with an error (it may still be loading
    its groups after a restart); a wrong value is returned at once, never retried away."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return committed(bootstrap, group, topic, partitions)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

"""Transactions on a three-node cluster through broker failures.

A transactional producer (confluent-kafka) runs transactions back to back over a topic with
three replicas and min.insync.replicas=2, committing and aborting alternately; each record is
tagged with its transaction's number. Meanwhile the test SIGKILLs the transaction coordinator
(the node FindCoordinator names for the transactional id, i.e. the leader of its
`__transaction_state` partition) or a data partition's leader, and restarts it. The producer
recovers as Kafka applications do: abortable errors -> abort and go on, fatal errors -> a new
producer with the same transactional.id (init_transactions aborts whatever was left open).

Afterwards a read_committed consumer must see every transaction whose commit returned, whole and
exactly once; nothing from a transaction that was aborted or never reached commit; and a
transaction whose commit raised (in doubt) either whole or not at all.

`GREGOR_TXN_FAILOVER_ROUNDS=N` sets the number of kills (default 2: the coordinator, then a
leader; 12 with GREGOR_SOAK=1)."""

import os
import random
import threading
import time
from collections import Counter

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaException, Producer  # noqa: E402

import kafka_wire as wire  # noqa: E402
from cluster import create, full_isr  # noqa: E402
from eos_helpers import error_of, read  # noqa: E402

SOAK = bool(os.environ.get("GREGOR_SOAK"))
ROUNDS = int(os.environ.get("GREGOR_TXN_FAILOVER_ROUNDS", "12" if SOAK else "2"))
TXN_ID = "t-failover"
TXN_STATE_PARTITIONS = 6
RECORDS_PER_TXN = 12


@pytest.fixture
def txn_cluster(gregor_binary, tmp_path):
    """The `cluster` fixture's three nodes, with a small `__transaction_state` (3 replicas,
    min ISR 2) and a fast timed-out-transaction sweep."""
    from cluster import Cluster

    c = Cluster(gregor_binary, tmp_path, size=3, overrides={
        "transaction.state.log.num.partitions": TXN_STATE_PARTITIONS,
        "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 2,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
    }).start()
    try:
        yield c
    finally:
        c.shutdown()


def coordinator(cluster, txn_id):
    """The node FindCoordinator (key type 1, transaction) names, asking live nodes in turn."""
    addresses = cluster.bootstrap.split(",")
    for node_id, address in zip(sorted(cluster.nodes), addresses):
        if not cluster.nodes[node_id].alive():
            continue
        try:
            with wire.Connection(address, timeout=10) as conn:
                found = conn.find_coordinator(txn_id, 1)
        except OSError:
            continue
        if found["error"] == wire.NONE:
            return found["node"]
    return None


class TxnDriver(threading.Thread):
    """Runs transactions until `stop`; classifies each by what the client was told."""

    def __init__(self, bootstrap, topic, parts):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.parts = bootstrap, topic, parts
        self.stop = threading.Event()
        self.committed = {}  # txn number -> its values: commit_transaction returned
        self.in_doubt = {}  # commit_transaction was called and raised a fatal / unresolved error
        self.not_committed = set()  # aborted, or failed before commit was ever called
        self.events = []  # (txn, where, error name, fatal, abortable, retriable)
        self.producers = 0
        self.retired = []
        self.crash = None

    def new_producer(self):
        for _ in range(10):
            self.producers += 1
            producer = Producer({
                "bootstrap.servers": self.bootstrap,
                "transactional.id": TXN_ID,
                "transaction.timeout.ms": 15000,
                "message.timeout.ms": 15000,
                "acks": "all",
                "linger.ms": 5,
                "retry.backoff.ms": 100,
                "topic.metadata.refresh.interval.ms": 1000,
            })
            for _ in range(20):
                failed, err = self.attempt(0, "init", lambda: producer.init_transactions(30))
                if not failed:
                    return producer
                if err is None or err.fatal():
                    break
                time.sleep(0.5)  # retriable (coordinator moving, loading, concurrent txns)
            self.retired.append(producer)
        raise RuntimeError("init_transactions kept failing: %r" % self.events[-10:])

    def note(self, n, where, err):
        self.events.append((n, where, err.name() if err else None, bool(err and err.fatal()),
                            bool(err and err.txn_requires_abort()), bool(err and err.retriable())))

    def attempt(self, n, where, call):
        """Runs `call()`: (None, None) if it returned, else (the KafkaException it raised, its
        KafkaError), noted as transaction `n` failing at `where`."""
        try:
            call()
            return None, None
        except KafkaException as e:
            err = error_of(e)
            self.note(n, where, err)
            return e, err

    def commit(self, producer, n):
        """True once committed; False if it must be aborted; raises if fatal / unresolved."""
        for _ in range(20):
            failed, err = self.attempt(n, "commit", lambda: producer.commit_transaction(30))
            if not failed:
                return True
            if err is not None and err.txn_requires_abort() and not err.fatal():
                return False
            if err is not None and err.retriable() and not err.fatal():
                continue  # librdkafka: call commit_transaction again
            raise failed
        raise RuntimeError("commit of transaction %d kept failing" % n)

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.crash = e

    def _run(self):
        producer = self.new_producer()
        n = 0
        while not self.stop.is_set():
            n += 1
            values = ["txn-%d-%d" % (n, j) for j in range(RECORDS_PER_TXN)]
            commit = n % 2 == 1
            stage = "begin"
            try:
                producer.begin_transaction()
                stage = "produce"
                for j, v in enumerate(values):
                    producer.produce(self.topic, value=v.encode(), partition=j % self.parts)
                producer.poll(0)
                time.sleep(0.05)  # a transaction stays open for a while: kills land inside one
                if commit:
                    stage = "commit"
                    if self.commit(producer, n):
                        self.committed[n] = values
                        continue
                    stage = "abort"
                else:
                    stage = "abort"
                self.not_committed.add(n)
                producer.abort_transaction(30)
            except (KafkaException, RuntimeError) as e:
                err = error_of(e)
                self.note(n, stage, err)
                if stage == "commit":
                    self.in_doubt[n] = values
                else:
                    self.not_committed.add(n)
                if err is not None and err.txn_requires_abort() and not err.fatal():
                    failed, _ = self.attempt(n, "abort", lambda: producer.abort_transaction(30))
                    if not failed:
                        continue
                # Fatal (fenced, epoch bumped by a timeout...) or stuck: start over, as an
                # application would. init_transactions resolves the open transaction. (The old
                # instance is kept, not destroyed here: that can wait on a dead broker.)
                self.retired.append(producer)
                producer = self.new_producer()


def wait_for(cluster, condition, what, timeout=60):
    return cluster.wait_for(condition, what, timeout=timeout)


def test_committed_transactions_survive_coordinator_and_leader_failures(txn_cluster):
    cluster = txn_cluster
    topic, parts = "txn-replicated", 3
    create(cluster, topic, parts, configs={"min.insync.replicas": "2"})
    driver = TxnDriver(cluster.bootstrap, topic, parts)
    driver.start()
    rng = random.Random()
    kills = []
    try:
        wait_for(cluster, lambda: len(driver.committed) >= 3 or driver.crash, "the first commits")
        assert driver.crash is None, driver.crash
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:
                victim = wait_for(cluster, lambda: coordinator(cluster, TXN_ID), "the transaction coordinator")
                kind = "coordinator"
            else:
                victim = cluster.partitions(topic)[round_ % parts][0]
                kind = "leader"
            before = len(driver.committed)
            time.sleep(rng.uniform(0, 0.3))
            cluster.nodes[victim].kill()
            kills.append((kind, victim, before))
            wait_for(cluster, lambda: all(leader not in (-1, victim) for leader, _, _ in
                                          list(cluster.partitions(topic).values())
                                          + list(cluster.partitions("__transaction_state").values())),
                     "leaders of %s and __transaction_state to move off broker %d" % (topic, victim))
            cluster.nodes[victim].launch()
            cluster.nodes[victim].wait_ready()
            wait_for(cluster, lambda: full_isr(cluster, topic) and full_isr(cluster, "__transaction_state"),
                     "broker %d back in every ISR" % victim, timeout=120)
            wait_for(cluster, lambda: len(driver.committed) > before + 2 or driver.crash,
                     "commits to continue after killing the %s (broker %d)" % (kind, victim), timeout=120)
            assert driver.crash is None, driver.crash
    finally:
        driver.stop.set()
        driver.join(180)
    assert not driver.is_alive(), "the producer did not stop (events %r)" % driver.events[-10:]
    assert driver.crash is None, driver.crash
    assert len(kills) == ROUNDS
    assert len(driver.committed) > 5 and driver.not_committed, (driver.committed.keys(), driver.events)

    messages = read(cluster.bootstrap, topic, parts, "read_committed", timeout=180)
    values = [m.value().decode() for m in messages]
    counts = Counter(values)
    duplicated = sorted(v for v, c in counts.items() if c > 1)
    seen = {}
    for v in values:
        seen.setdefault(int(v.split("-")[1]), set()).add(v)
    context = "kills %r, producers %d, in doubt %r, events %r" % (
        kills, driver.producers, sorted(driver.in_doubt), driver.events[-15:])
    assert not duplicated, "records read twice: %r; %s" % (duplicated[:10], context)
    lost = sorted(n for n, vals in driver.committed.items() if seen.get(n) != set(vals))
    assert not lost, "committed transactions missing or partial: %r (seen %r); %s" % (
        lost[:10], {n: len(seen.get(n, ())) for n in lost[:10]}, context)
    leaked = sorted(n for n in seen if n in driver.not_committed)
    assert not leaked, "aborted / never-committed transactions visible: %r; %s" % (leaked[:10], context)
    partial = sorted(n for n, vals in driver.in_doubt.items() if n in seen and seen[n] != set(vals))
    assert not partial, "in-doubt transactions partly visible: %r; %s" % (partial, context)
    unknown = sorted(set(seen) - set(driver.committed) - set(driver.in_doubt))
    assert not unknown, "transactions nobody committed are visible: %r; %s" % (unknown[:10], context)
    # Per partition, transactions appear in the order they ran, each one's records in order.
    for p in range(parts):
        mine = [tuple(int(x) for x in m.value().decode().split("-")[1:]) for m in messages if m.partition() == p]
        assert mine == sorted(mine), "partition %d out of order; %s" % (p, context)
    # The aborted transactions were really written (and are skipped, not missing).
    uncommitted = read(cluster.bootstrap, topic, parts, "read_uncommitted", timeout=180)
    assert any(int(m.value().decode().split("-")[1]) in driver.not_committed for m in uncommitted)

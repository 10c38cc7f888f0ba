"""Transactions on one broker, driven by confluent-kafka's transactional producer and consumers
at both isolation levels (and kafka-python's admin client for the KIP-664 describe/list APIs).

* committed transactions are read exactly once by read_committed, aborted ones never; both by
  read_uncommitted, in offset order, over several partitions;
* a read_committed consumer stops at the last stable offset (LSO) while a transaction is open,
  even for non-transactional records after it, and moves on when it commits;
* a second producer with the same transactional.id fences the first, whose open transaction is
  aborted;
* a transaction whose producer dies is aborted by the coordinator after transaction.timeout.ms;
* a consume-transform-produce worker (eos_worker.py) SIGKILLed many times still produces each
  input record's result exactly once (`GREGOR_EOS_KILLS`, default 8; 25 with GREGOR_SOAK=1);
* ListTransactions / DescribeTransactions / DescribeProducers report open and completed
  transactions."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaException, Producer, TopicPartition  # noqa: E402

from eos_helpers import (TXN_OVERRIDES, by_partition, consumer, create_topic, drain,  # noqa: E402
                         error_of, kafka_python_admin, read, wait_for, wait_stable)

pytestmark = pytest.mark.broker_overrides(*TXN_OVERRIDES)

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = bool(os.environ.get("GREGOR_SOAK"))
KILLS = int(os.environ.get("GREGOR_EOS_KILLS", "25" if SOAK else "8"))
FENCED = ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")


def txn_producer(bootstrap, txn_id, timeout_ms=30000, **extra):
    config = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
              "transaction.timeout.ms": timeout_ms, "message.timeout.ms": timeout_ms, "linger.ms": 5}
    config.update(extra)
    p = Producer(config)
    p.init_transactions(30)
    return p


def test_committed_visible_once_aborted_never(broker):
    topic, parts = "txn-mixed", 3
    create_topic(broker.bootstrap, topic, parts)
    producer = txn_producer(broker.bootstrap, "t-mixed")
    plain = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False})

    def txn(tag, count, outcome):
        producer.begin_transaction()
        for i in range(count):
            producer.produce(topic, value=b"%s-%d" % (tag, i), partition=i % parts)
        # Written (not just buffered) before the plain records below.
        assert producer.flush(30) == 0
        if tag == b"b":
            # Non-transactional records land while transaction b is open.
            for i in range(parts * 2):
                plain.produce(topic, value=b"plain-%d" % i, partition=i % parts)
            assert plain.flush(30) == 0
        outcome()

    txn(b"a", 30, lambda: producer.commit_transaction(30))
    txn(b"b", 30, lambda: producer.abort_transaction(30))
    txn(b"c", 30, lambda: producer.commit_transaction(30))
    txn(b"d", 9, lambda: producer.abort_transaction(30))
    txn(b"e", 12, lambda: producer.commit_transaction(30))

    def expect(tags, plain_after=None):
        out = {}
        for p in range(parts):
            values = []
            for tag, count in tags:
                values += ["%s-%d" % (tag, i) for i in range(count) if i % parts == p]
                if tag == plain_after:
                    values += ["plain-%d" % i for i in range(parts * 2) if i % parts == p]
            out[p] = values
        return out

    committed = read(broker.bootstrap, topic, parts, "read_committed")
    uncommitted = read(broker.bootstrap, topic, parts, "read_uncommitted")
    assert by_partition(committed) == expect([("a", 30), ("b", 0), ("c", 30), ("d", 0), ("e", 12)],
                                             plain_after="b")
    assert by_partition(uncommitted) == expect([("a", 30), ("b", 30), ("c", 30), ("d", 9), ("e", 12)],
                                               plain_after="b")
    # The same records at the same offsets, whichever the isolation level.
    where = {(m.partition(), m.offset()): m.value() for m in uncommitted}
    assert all(where[(m.partition(), m.offset())] == m.value() for m in committed)
    # Offsets are strictly increasing per partition and leave room for the control markers:
    # five transactions, five markers per partition.
    for p in range(parts):
        offsets = [m.offset() for m in uncommitted if m.partition() == p]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    c = consumer(broker.bootstrap, "read_uncommitted")
    for p in range(parts):
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        records = len([m for m in uncommitted if m.partition() == p])
        assert high == records + 5, (p, high, records)
    c.close()


def test_interleaved_transactions_of_two_producers_are_filtered_by_producer(broker):
    """Two producers' transactions interleave batch by batch in one partition; one commits, the
    other aborts. A read_committed consumer, fetching a little at a time, must drop exactly the
    aborted producer's records: the broker's AbortedTransactions list in each Fetch response has
    to name the right producer id and first offset for every fetched range."""
    topic = "txn-interleaved"
    create_topic(broker.bootstrap, topic, 1)
    keep = txn_producer(broker.bootstrap, "t-keep")
    drop = txn_producer(broker.bootstrap, "t-drop")
    keep.begin_transaction()
    drop.begin_transaction()
    for batch in range(20):
        for name, producer in (("keep", keep), ("drop", drop)):
            for i in range(10):
                producer.produce(topic, value=b"%s-%d" % (name.encode(), batch * 10 + i), partition=0)
            assert producer.flush(30) == 0
    drop.abort_transaction(30)
    # A second round: the aborted producer starts again and commits this time, after the
    # first producer's still-open transaction began.
    drop.begin_transaction()
    for i in range(5):
        drop.produce(topic, value=b"drop-again-%d" % i, partition=0)
    assert drop.flush(30) == 0
    keep.commit_transaction(30)
    drop.commit_transaction(30)

    expected = ["keep-%d" % i for i in range(200)] + ["drop-again-%d" % i for i in range(5)]
    for fetch_bytes in (1 << 20, 1024):
        wait_stable(broker.bootstrap, topic, 1)
        c = consumer(broker.bootstrap, "read_committed", group="interleaved",
                     **{"max.partition.fetch.bytes": fetch_bytes, "fetch.max.bytes": fetch_bytes,
                        "message.max.bytes": fetch_bytes})
        tp = TopicPartition(topic, 0)
        c.assign([TopicPartition(topic, 0, 0)])
        got = [m.value().decode() for m in drain(c, [tp])]
        c.close()
        assert got == expected, "fetch size %d: %d records, first wrong %r" % (
            fetch_bytes, len(got), next(((i, a, b) for i, (a, b) in enumerate(zip(got, expected)) if a != b), None))
    everything = by_partition(read(broker.bootstrap, topic, 1, "read_uncommitted"))[0]
    assert len(everything) == 405 and sum(v.startswith("drop-") and "again" not in v for v in everything) == 200


def test_read_committed_stops_at_an_open_transaction_until_it_commits(broker):
    topic = "txn-lso"
    create_topic(broker.bootstrap, topic, 1)
    tp = TopicPartition(topic, 0)
    plain = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False})
    for i in range(5):
        plain.produce(topic, value=b"before-%d" % i, partition=0)
    assert plain.flush(30) == 0
    producer = txn_producer(broker.bootstrap, "t-lso")
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, value=b"open-%d" % i, partition=0)
    assert producer.flush(30) == 0  # offsets 5..14, uncommitted
    for i in range(5):
        plain.produce(topic, value=b"after-%d" % i, partition=0)
    assert plain.flush(30) == 0  # offsets 15..19

    committed = consumer(broker.bootstrap, "read_committed", group="lso-committed")
    uncommitted = consumer(broker.bootstrap, "read_uncommitted", group="lso-uncommitted")
    committed.assign([TopicPartition(topic, 0, 0)])
    uncommitted.assign([TopicPartition(topic, 0, 0)])
    assert [m.value() for m in drain(uncommitted, [tp])] == (
        [b"before-%d" % i for i in range(5)] + [b"open-%d" % i for i in range(10)]
        + [b"after-%d" % i for i in range(5)])
    # read_committed ends at the LSO: the first offset of the open transaction.
    assert [m.value() for m in drain(committed, [tp])] == [b"before-%d" % i for i in range(5)]
    assert committed.get_watermark_offsets(tp, timeout=10) == (0, 5)
    assert uncommitted.get_watermark_offsets(tp, timeout=10) == (0, 20)
    # It stays there while the transaction is open (a few more fetches, nothing new).
    stuck = []
    until = time.time() + 2
    while time.time() < until:
        stuck += [m for m in committed.consume(100, 0.3) if not m.error()]
    assert stuck == []
    assert committed.position([tp])[0].offset == 5

    producer.commit_transaction(30)
    wait_stable(broker.bootstrap, topic, 1)  # the commit marker is written
    assert [m.value() for m in drain(committed, [tp])] == (
        [b"open-%d" % i for i in range(10)] + [b"after-%d" % i for i in range(5)])
    # The commit marker is offset 20: both ends agree now.
    assert committed.get_watermark_offsets(tp, timeout=10) == (0, 21)
    assert uncommitted.get_watermark_offsets(tp, timeout=10) == (0, 21)
    committed.close()
    uncommitted.close()


def test_a_new_producer_with_the_same_transactional_id_fences_the_old_one(broker):
    topic, parts = "txn-fence", 2
    create_topic(broker.bootstrap, topic, parts)
    first = txn_producer(broker.bootstrap, "t-fence")
    first.begin_transaction()
    for i in range(10):
        first.produce(topic, value=b"zombie-%d" % i, partition=i % parts)
    assert first.flush(30) == 0

    second = txn_producer(broker.bootstrap, "t-fence")  # bumps the epoch, aborts first's transaction
    with pytest.raises(KafkaException) as info:
        first.commit_transaction(30)
    err = error_of(info.value)
    assert err is not None and err.name() in FENCED, err
    assert err.fatal(), err
    # A fenced producer stays fenced: producing again fails too.
    with pytest.raises(KafkaException):
        first.begin_transaction()
        first.produce(topic, value=b"zombie-late", partition=0)
        first.commit_transaction(30)

    second.begin_transaction()
    for i in range(6):
        second.produce(topic, value=b"new-%d" % i, partition=i % parts)
    second.commit_transaction(30)

    committed = by_partition(read(broker.bootstrap, topic, parts, "read_committed"))
    assert committed == {p: ["new-%d" % i for i in range(6) if i % parts == p] for p in range(parts)}
    uncommitted = by_partition(read(broker.bootstrap, topic, parts, "read_uncommitted"))
    assert uncommitted == {p: ["zombie-%d" % i for i in range(10) if i % parts == p]
                           + ["new-%d" % i for i in range(6) if i % parts == p] for p in range(parts)}


def worker(*args):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "eos_worker.py")] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_coordinator_aborts_a_transaction_whose_producer_died(broker):
    topic, parts = "txn-timeout", 2
    create_topic(broker.bootstrap, topic, parts)
    proc = worker("open", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", parts,
                  "--txn-id", "t-dies", "--count", 20, "--timeout-ms", 3000)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.wait(60)
            pytest.fail("the open-transaction producer failed: %r %s" % (line, proc.stderr.read()))
    finally:
        proc.kill()
        proc.wait()
    plain = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False})
    for i in range(4):
        plain.produce(topic, value=b"after-%d" % i, partition=i % parts)
    assert plain.flush(30) == 0

    # Nobody ends the transaction; the coordinator must abort it after its 3 s timeout (the LSO
    # reaches the high watermark), and read_committed then reads past it.
    wait_stable(broker.bootstrap, topic, parts)
    committed = by_partition(read(broker.bootstrap, topic, parts, "read_committed"))
    assert committed == {p: ["after-%d" % i for i in range(4) if i % parts == p] for p in range(parts)}
    uncommitted = by_partition(read(broker.bootstrap, topic, parts, "read_uncommitted"))
    assert sorted(sum(uncommitted.values(), [])) == sorted(
        ["open-%d" % i for i in range(20)] + ["after-%d" % i for i in range(4)])
    # The transactional id is usable again, and its next transaction commits.
    again = txn_producer(broker.bootstrap, "t-dies")
    again.begin_transaction()
    again.produce(topic, value=b"reborn", partition=0)
    again.commit_transaction(30)
    assert "reborn" in by_partition(read(broker.bootstrap, topic, parts, "read_committed"))[0]


class Worker:
    """One eos_worker.py ctp process; `progress` is the last sum of the group's committed offsets
    it printed, `commits` how many transactions it committed."""

    def __init__(self, *args):
        self.proc = worker(*args)
        self.progress = None
        self.commits = 0
        self.lines = []
        self.err = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.startswith(("committed ", "resumed ")):
                self.progress = int(line.split()[1])
                self.commits += line.startswith("committed ")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_ctp(broker, records, kills, subscribe, seed, extra=()):
    """Produces `records` numbered input records; runs workers, SIGKILLing `kills` of them at
    random moments after they committed at least once (so mid-stream), restarting each, until the
    group's committed offsets cover the input. Returns the kill log."""
    rng = random.Random(seed)
    parts = 3
    src, dst, group = "ctp-in", "ctp-out", "ctp-group"
    create_topic(broker.bootstrap, src, parts)
    create_topic(broker.bootstrap, dst, parts)
    plain = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(records):
        plain.produce(src, key=b"%d" % i, value=b"%d" % i, partition=i % parts)
    assert plain.flush(60) == 0

    args = ["ctp", "--bootstrap", broker.bootstrap, "--input", src, "--output", dst, "--partitions", parts,
            "--group", group, "--txn-id", "t-ctp", "--batch", 7, "--pause", 0.02, "--timeout-ms", 10000]
    if subscribe:
        args.append("--subscribe")
    args += list(extra)
    log = []
    current = Worker(*args)
    try:
        while len(log) < kills:
            # Kill only a worker that has made progress, somewhere inside its next transactions.
            w = current
            wait_for(lambda: w.commits > 0 or w.proc.poll() is not None,
                     "worker %d to commit a transaction" % len(log), timeout=90)
            time.sleep(rng.uniform(0, 0.6))
            w.kill()
            log.append((w.progress, w.proc.returncode, w.commits))
            assert w.proc.returncode == -signal.SIGKILL, "worker exited by itself (%r): %s" % (
                w.proc.returncode, "".join(w.err[-20:]))
            assert w.progress is None or w.progress < records, \
                "the input ran out before kill %d: raise the record count (%r)" % (len(log), log)
            current = Worker(*args)
        # Let the last worker finish; one that exits on a fatal error is replaced, as a
        # supervisor would (at most a few times).
        restarts = 0
        deadline = time.time() + 180
        while current.progress != records:
            assert time.time() < deadline, "the workers did not consume the whole input: %r (kills %r)" % (
                current.progress, log)
            if current.proc.poll() is not None:
                restarts += 1
                assert restarts <= 5, "workers keep failing: %s" % "".join(current.err[-20:])
                current = Worker(*args)
            time.sleep(0.2)
    finally:
        current.kill()
    return log


@pytest.mark.parametrize("subscribe", [False, pytest.param(True, marks=pytest.mark.skipif(
    not SOAK, reason="the subscribed variant waits out a session timeout per kill; GREGOR_SOAK=1"))],
    ids=["assign", "subscribe"])
def test_consume_transform_produce_is_exactly_once_across_worker_kills(broker, subscribe):
    records = int(os.environ.get("GREGOR_EOS_RECORDS", "6000" if SOAK else "2500"))
    seed = int(os.environ.get("GREGOR_EOS_SEED", str(random.randrange(1 << 30))))
    log = run_ctp(broker, records, KILLS, subscribe, seed)
    assert len(log) == KILLS
    check_each_result_once(broker, records, "seed %d, kills (progress, exit code, commits) %r" % (seed, log))


def check_each_result_once(broker, records, context):
    out = read(broker.bootstrap, "ctp-out", 3, "read_committed", timeout=120)
    counts = Counter(m.value().decode() for m in out)
    duplicated = sorted((v, n) for v, n in counts.items() if n > 1)
    missing = sorted(set("%d-out" % i for i in range(records)) - set(counts))
    assert not duplicated and not missing, "%s: %d duplicated e.g. %r, %d missing e.g. %r" % (
        context, len(duplicated), duplicated[:10], len(missing), missing[:10])
    assert set(counts) == set("%d-out" % i for i in range(records))
    # Each output record sits in its input's partition, in input order.
    for p, values in by_partition(out).items():
        numbers = [int(v[:-4]) for v in values]
        assert all(n % 3 == p for n in numbers)
        assert numbers == sorted(numbers), "partition %d out of order (%s)" % (p, context)


def admin_or_skip(broker, *apis):
    admin = kafka_python_admin(broker.bootstrap)
    for api in apis:
        if not hasattr(admin, api):
            pytest.skip("kafka-python %s has no %s" % (__import__("kafka").__version__, api))
    return admin


def open_admin_transaction(broker, topic):
    """A producer with an open transaction: 7 records in partition 0, 3 in partition 1."""
    create_topic(broker.bootstrap, topic, 2)
    producer = txn_producer(broker.bootstrap, "t-admin", timeout_ms=45000)
    producer.begin_transaction()
    for i in range(7):
        producer.produce(topic, value=b"x%d" % i, partition=0)
    for i in range(3):
        producer.produce(topic, value=b"y%d" % i, partition=1)
    assert producer.flush(30) == 0
    return producer


def test_list_and_describe_transactions(broker):
    from kafka import TopicPartition as KpTopicPartition
    from kafka.errors import KafkaError as KpKafkaError

    admin = admin_or_skip(broker, "list_transactions", "describe_transactions")
    topic = "txn-admin"
    producer = open_admin_transaction(broker, topic)

    described = admin.describe_transactions(["t-admin"])["t-admin"]
    assert described.state == "Ongoing"
    assert described.topic_partitions == {KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)}
    assert described.transaction_timeout_ms == 45000
    assert described.transaction_start_time_ms > 0
    pid, epoch = described.producer_id, described.producer_epoch
    assert pid >= 0 and epoch >= 0

    listed = [t for rows in admin.list_transactions().values() for t in rows]
    mine = [t for t in listed if t.transactional_id == "t-admin"]
    assert len(mine) == 1 and mine[0].producer_id == pid and mine[0].state == "Ongoing", listed
    ongoing = [t for rows in admin.list_transactions(state_filters=["Ongoing"]).values() for t in rows]
    assert "t-admin" in [t.transactional_id for t in ongoing]
    assert [t for rows in admin.list_transactions(state_filters=["CompleteCommit"]).values()
            for t in rows if t.transactional_id == "t-admin"] == []

    producer.commit_transaction(30)
    wait_for(lambda: admin.describe_transactions(["t-admin"])["t-admin"].state == "CompleteCommit",
             "t-admin to be CompleteCommit")
    done = admin.describe_transactions(["t-admin"])["t-admin"]
    assert done.producer_id == pid and done.producer_epoch >= epoch
    assert done.topic_partitions == set()
    committed = [t for rows in admin.list_transactions(state_filters=["CompleteCommit"]).values() for t in rows]
    assert "t-admin" in [t.transactional_id for t in committed]

    producer.begin_transaction()
    producer.produce(topic, value=b"z", partition=1)
    # Delivered first, so the partition is registered with the coordinator: librdkafka sends
    # no EndTxn for a transaction without partitions.
    assert producer.flush(30) == 0
    producer.abort_transaction(30)
    wait_for(lambda: admin.describe_transactions(["t-admin"])["t-admin"].state == "CompleteAbort",
             "t-admin to be CompleteAbort")

    with pytest.raises(KpKafkaError) as info:
        admin.describe_transactions(["t-never-used"])
    assert type(info.value).__name__ == "TransactionalIdNotFoundError", info.value
    admin.close()


def test_describe_producers_shows_the_partition_leaders_producer_state(broker):
    from kafka import TopicPartition as KpTopicPartition

    admin = admin_or_skip(broker, "describe_producers")
    topic = "txn-producers"
    producer = open_admin_transaction(broker, topic)
    tps = [KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)]

    producers = admin.describe_producers(tps)
    first = producers[tps[0]].active_producers
    assert len(first) == 1, first
    pid, epoch = first[0].producer_id, first[0].producer_epoch
    assert pid >= 0 and epoch >= 0
    for tp, count in zip(tps, (7, 3)):
        active = producers[tp].active_producers
        assert [(a.producer_id, a.producer_epoch, a.last_sequence) for a in active] == [(pid, epoch, count - 1)], active
        # The open transaction starts at the partition's first offset.
        assert active[0].current_transaction_start_offset == 0, active
        assert active[0].last_timestamp > 0, active

    producer.commit_transaction(30)
    wait_stable(broker.bootstrap, topic, 2)  # the markers are written
    for tp, count in zip(tps, (7, 3)):
        active = admin.describe_producers([tp])[tp].active_producers
        assert [(a.producer_id, a.last_sequence, a.current_transaction_start_offset) for a in active] == [
            (pid, count - 1, -1)], active
    # A plain idempotent producer shows up too, with its own id.
    plain = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(4):
        plain.produce(topic, value=b"p%d" % i, partition=0)
    assert plain.flush(30) == 0
    active = admin.describe_producers([tps[0]])[tps[0]].active_producers
    others = [a for a in active if a.producer_id != pid]
    assert [(a.last_sequence, a.current_transaction_start_offset) for a in others] == [(3, -1)], active
    admin.close()


def test_gregor_transactions_tool(broker, gregor_binary):
    """`gregor transactions` (kafka-transactions.sh's list, describe, describe-producers) shows
    an open transaction, its producer in each partition, and the commit."""
    import json

    topic = "txn-tool"
    producer = open_admin_transaction(broker, topic)

    def tool(*args, ok=True):
        run = subprocess.run([gregor_binary, "transactions", "--bootstrap-server", broker.bootstrap,
                              *args, "--output", "json"], capture_output=True, text=True, timeout=60)
        if not ok:
            return run
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    mine = [t for t in tool("list") if t["transactional_id"] == "t-admin"]
    assert len(mine) == 1 and mine[0]["state"] == "Ongoing", mine
    described = tool("describe", "--transactional-id", "t-admin")
    assert described["state"] == "Ongoing"
    assert sorted(described["partitions"]) == ["%s-0" % topic, "%s-1" % topic]
    assert described["producer_id"] == mine[0]["producer_id"]
    for partition, count in ((0, 7), (1, 3)):
        producers = tool("describe-producers", "--topic", topic, "--partition", str(partition))
        assert [(p["producer_id"], p["last_sequence"], p["current_transaction_start_offset"])
                for p in producers] == [(described["producer_id"], count - 1, 0)], producers

    producer.commit_transaction(30)
    wait_for(lambda: tool("describe", "--transactional-id", "t-admin")["state"] == "CompleteCommit",
             "t-admin to be CompleteCommit")
    assert tool("list", "--state", "Ongoing") == []
    assert [t["transactional_id"] for t in tool("list", "--state", "CompleteCommit")] == ["t-admin"]
    unknown = tool("describe", "--transactional-id", "nobody", ok=False)
    assert unknown.returncode != 0 and "TRANSACTIONAL_ID_NOT_FOUND" in unknown.stderr, unknown.stderr

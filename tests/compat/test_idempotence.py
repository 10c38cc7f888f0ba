"""Idempotent producers: retried batches are written once.

A FlakyProxy (flaky_proxy.py) sits between the clients and the broker, which advertises the
proxy's address. Every few Produce responses it closes the connection instead of forwarding the
response: the broker has appended that batch (and possibly others in flight), the client does
not know, and retries. With `enable.idempotence` the broker must recognise each retry by its
producer id / epoch / sequence and acknowledge it without appending it again, so every partition
holds its numbers once each, in order, with no gaps.

Then the same rules on raw Produce requests (kafka_wire.py): a duplicate sequence is acknowledged
at its original offset and not appended, a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, a new epoch must
start at sequence 0, and an older epoch gets INVALID_PRODUCER_EPOCH."""

import os

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import Producer  # noqa: E402

import kafka_wire as wire  # noqa: E402
from eos_helpers import TXN_OVERRIDES, by_partition, create_topic, read  # noqa: E402
from flaky_proxy import FlakyProxy  # noqa: E402

pytestmark = pytest.mark.broker_overrides(*TXN_OVERRIDES)

SOAK = bool(os.environ.get("GREGOR_SOAK"))
RECORDS = int(os.environ.get("GREGOR_IDEMPOTENCE_RECORDS", "100000" if SOAK else "20000"))


@pytest.fixture
def proxied(gregor_binary, tmp_path):
    """(broker, proxy): a single-node broker that advertises a FlakyProxy in front of it.
    Clients bootstrap from `proxy.address`; the test arms the proxy (`cut_every`)."""
    from conftest import Broker

    proxy = FlakyProxy()
    broker = Broker(gregor_binary, tmp_path / "data",
                    ["advertised.listeners=PLAINTEXT://" + proxy.address] + list(TXN_OVERRIDES)).start()
    proxy.start(broker.bootstrap)
    try:
        yield broker, proxy
    finally:
        proxy.stop()
        if broker.proc.poll() is None:
            broker.stop()


def confluent_produce(bootstrap, topic, parts, count, idempotent):
    """Sends `count` records, record i to partition i % parts with value i // parts (its sequence
    number in the partition). Returns (delivery errors, {(partition, seq): offset})."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": idempotent,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 2,
        "batch.num.messages": 50,
        "retries": 1000000,
        "retry.backoff.ms": 20,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "message.timeout.ms": 300000,
    })
    errors, offsets = [], {}

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets[(msg.partition(), int(msg.value()))] = msg.offset()

    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=b"%d" % (i // parts), partition=i % parts, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(300) == 0
    return errors, offsets


def test_proxy_forwards_cleanly_when_not_cutting(proxied):
    """The harness itself: through an unarmed proxy, records arrive once and nothing is cut."""
    broker, proxy = proxied
    create_topic(proxy.address, "through-proxy", 2)
    errors, offsets = confluent_produce(proxy.address, "through-proxy", 2, 1000, idempotent=False)
    assert errors == []
    assert proxy.stats()["cuts"] == 0 and proxy.stats()["responses"] > 0
    assert by_partition(read(proxy.address, "through-proxy", 2, "read_uncommitted")) == {
        p: [str(i) for i in range(500)] for p in range(2)}


def test_idempotent_confluent_producer_writes_each_record_once_despite_lost_responses(proxied):
    broker, proxy = proxied
    topic, parts = "idem-confluent", 4
    create_topic(proxy.address, topic, parts)
    proxy.cut_every, proxy.max_cuts = 7, 60
    errors, offsets = confluent_produce(proxy.address, topic, parts, RECORDS, idempotent=True)
    stats = proxy.stats()
    # The proxy really lost the acknowledgements of written batches, many times (each cut
    # withholds one Produce response the broker sent, and drops any others in flight).
    assert stats["cuts"] >= 10, stats
    stats["most in flight at a cut"] = max(proxy.in_flight_at_cut)
    print("idempotent run through the proxy: %r" % stats)
    assert errors == [], errors[:5]

    got = by_partition(read(broker.bootstrap, topic, parts, "read_uncommitted", timeout=120))
    for p in range(parts):
        per = len(range(p, RECORDS, parts))
        values = [int(v) for v in got.get(p, [])]
        dups = len(values) - len(set(values))
        assert values == list(range(per)), (
            "partition %d: %d records for %d sent, %d duplicates, first difference at %r (proxy %r)"
            % (p, len(values), per, dups,
               next((i for i, (a, b) in enumerate(zip(values, range(per))) if a != b), None), stats))
    # Every delivery report names the offset the record really has: no duplicate shifted it.
    assert all(offset == seq for (_, seq), offset in offsets.items())
    assert len(offsets) == RECORDS


def test_without_idempotence_lost_responses_still_deliver_at_least_once(proxied):
    """The control: the same cuts with idempotence off. Retries may duplicate (that is why the
    test above can fail); nothing may be lost. The duplicate count is printed, not asserted."""
    broker, proxy = proxied
    topic, parts = "plain-retries", 4
    create_topic(proxy.address, topic, parts)
    proxy.cut_every, proxy.max_cuts = 7, 30
    count = RECORDS // 2
    errors, _ = confluent_produce(proxy.address, topic, parts, count, idempotent=False)
    assert proxy.stats()["cuts"] >= 5 and errors == []
    got = by_partition(read(broker.bootstrap, topic, parts, "read_uncommitted", timeout=120))
    duplicates = 0
    for p in range(parts):
        values = [int(v) for v in got.get(p, [])]
        assert set(values) == set(range(len(range(p, count, parts)))), "partition %d lost records" % p
        duplicates += len(values) - len(set(values))
    print("non-idempotent run: %d duplicates after %d cuts" % (duplicates, proxy.stats()["cuts"]))


def test_idempotent_kafka_python_producer_writes_each_record_once_despite_lost_responses(proxied):
    from kafka import KafkaProducer

    broker, proxy = proxied
    topic, parts = "idem-kafka-python", 3
    count = RECORDS // 4
    create_topic(proxy.address, topic, parts)
    proxy.cut_every, proxy.max_cuts = 5, 30
    producer = KafkaProducer(bootstrap_servers=proxy.address, enable_idempotence=True, acks="all",
                             max_in_flight_requests_per_connection=5, linger_ms=2, batch_size=256,
                             retry_backoff_ms=20, reconnect_backoff_ms=20, reconnect_backoff_max_ms=200,
                             delivery_timeout_ms=300000, request_timeout_ms=30000)
    futures = [(i % parts, i // parts, producer.send(topic, value=b"%d" % (i // parts), partition=i % parts))
               for i in range(count)]
    producer.flush(300)
    acked = {(p, seq): f.get(timeout=300).offset for p, seq, f in futures}
    producer.close(30)
    stats = proxy.stats()
    assert stats["cuts"] >= 5, stats
    got = by_partition(read(broker.bootstrap, topic, parts, "read_uncommitted", timeout=120))
    for p in range(parts):
        per = len(range(p, count, parts))
        values = [int(v) for v in got.get(p, [])]
        assert values == list(range(per)), "partition %d: %d records for %d sent, %d duplicates (proxy %r)" % (
            p, len(values), per, len(values) - len(set(values)), stats)
    assert all(offset == seq for (_, seq), offset in acked.items())


def test_sequence_and_epoch_rules_on_raw_produce_requests(broker):
    topic = "raw-idem"
    create_topic(broker.bootstrap, topic, 1)
    with wire.Connection(broker.bootstrap) as conn:
        versions = conn.api_versions()
        assert wire.INIT_PRODUCER_ID in versions, "InitProducerId is not advertised"
        lo, hi = versions[wire.INIT_PRODUCER_ID]
        assert lo <= 1 <= hi, versions[wire.INIT_PRODUCER_ID]
        init = conn.init_producer_id(None)
        assert init["error"] == wire.NONE, init
        pid, epoch = init["producer_id"], init["producer_epoch"]
        assert pid >= 0 and epoch >= 0

        def send(tag, seq, n, ep=epoch):
            batch = wire.record_batch([b"%s-%d" % (tag, i) for i in range(n)], pid, ep, seq)
            return conn.produce(topic, 0, batch)

        def accepted(result, offset):
            assert (result["error"], result["base_offset"]) == (wire.NONE, offset), result

        accepted(send(b"a", 0, 5), 0)
        accepted(send(b"b", 5, 5), 5)
        # A retry of the last batch, and of the one before: acknowledged, not appended again.
        for tag, seq, offset in ((b"b", 5, 5), (b"a", 0, 0)):
            again = send(tag, seq, 5)
            assert again["error"] in (wire.NONE, wire.DUPLICATE_SEQUENCE_NUMBER), again
            if again["error"] == wire.NONE:
                assert again["base_offset"] == offset, again
        # A gap in the sequence.
        assert send(b"gap", 15, 5)["error"] == wire.OUT_OF_ORDER_SEQUENCE_NUMBER
        accepted(send(b"c", 10, 5), 10)
        # A bumped epoch must start again at sequence 0.
        assert send(b"late", 3, 2, ep=epoch + 1)["error"] == wire.OUT_OF_ORDER_SEQUENCE_NUMBER
        accepted(send(b"d", 0, 3, ep=epoch + 1), 15)
        # The old epoch is now refused.
        assert send(b"zombie", 15, 1, ep=epoch)["error"] == wire.INVALID_PRODUCER_EPOCH
        accepted(send(b"e", 3, 2, ep=epoch + 1), 18)

    values = by_partition(read(broker.bootstrap, topic, 1, "read_uncommitted"))[0]
    assert values == (["a-%d" % i for i in range(5)] + ["b-%d" % i for i in range(5)]
                      + ["c-%d" % i for i in range(5)] + ["d-%d" % i for i in range(3)]
                      + ["e-%d" % i for i in range(2)])

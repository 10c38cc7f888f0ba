"""`gregor consume` (the native Rust consumer) checked against a real client: what
confluent-kafka (librdkafka) produced — every codec, duplicate header keys, null keys and
values, binary bytes — comes out of `--formatter json` unchanged; `gregor consume --group` and a
confluent-kafka consumer in the SAME group split the partitions and see every record once (range
and cooperative-sticky); `--max-messages`, `--from-beginning`, `--offset`, `--timestamp`, bad
arguments and an unreachable broker behave like kafka-console-consumer."""

import base64
import json
import signal
import subprocess
import threading
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.broker_overrides("group.initial.rebalance.delay.ms=0")


def create(broker, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1)
    admin.create_topics([topic])[name].result(timeout=10)


def consume(gregor_binary, broker, *args, timeout=60):
    """Runs `gregor consume` to completion; returns (exit code, stdout lines, stderr)."""
    proc = subprocess.run([gregor_binary, "consume", "--bootstrap-server", broker.bootstrap, *args],
                          capture_output=True, timeout=timeout)
    lines = proc.stdout.decode().splitlines()
    return proc.returncode, lines, proc.stderr.decode()


def decoded(obj, field, encoding_field):
    value = obj[field]
    if value is None:
        return None
    if obj.get(encoding_field) == "base64":
        return base64.b64decode(value)
    return value.encode()


def produce(broker, topic, records, codec="none"):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                         "linger.ms": 5})
    for partition, key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers, partition=partition,
                         timestamp=1_700_000_000_000 + len(value or b""))
    assert producer.flush(20) == 0


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_json_output_equals_what_confluent_produced(gregor_binary, broker, codec):
    topic = "json-" + codec
    create(broker, topic, partitions=2)
    sent = []
    for i in range(120):
        key = None if i % 7 == 0 else ("k%d" % i).encode()
        value = None if i % 11 == 0 else (b"\xff\x00bin" if i % 5 == 0 else ("v-%d é" % i).encode())
        headers = [("dup", b"1"), ("dup", b"2"), ("n", None), ("bin", b"\x80")]
        sent.append((i % 2, key, value, headers))
    produce(broker, topic, sent, codec)
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--from-beginning",
                               "--formatter", "json", "--max-messages", str(len(sent)),
                               "--timeout-ms", "20000")
    assert code == 0, err
    assert len(lines) == len(sent)
    assert "Processed a total of %d messages" % len(sent) in err
    got = [json.loads(line) for line in lines]
    for p in range(2):
        mine = [(k, v, h) for (pp, k, v, h) in sent if pp == p]
        theirs = []
        for obj in (o for o in got if o["partition"] == p):
            headers = [(h["key"], decoded(h, "value", "encoding")) for h in obj["headers"]]
            theirs.append((decoded(obj, "key", "key_encoding"),
                           decoded(obj, "value", "value_encoding"), headers))
            assert obj["topic"] == topic
        assert theirs == mine
        offsets = [o["offset"] for o in got if o["partition"] == p]
        assert offsets == list(range(len(mine)))
    assert got[0]["timestamp"] >= 1_700_000_000_000


def test_max_messages_from_beginning_offset_and_timestamp(gregor_binary, broker):
    topic = "starts"
    create(broker, topic, partitions=1)
    produce(broker, topic, [(0, None, ("line-%d" % i).encode(), None) for i in range(50)])
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--from-beginning",
                               "--max-messages", "10")
    assert code == 0, err
    assert lines == ["line-%d" % i for i in range(10)]
    # Without --from-beginning the tool starts at the end: nothing within the timeout.
    start = time.time()
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--timeout-ms", "1500")
    assert code == 0, err
    assert lines == []
    assert time.time() - start < 15
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--partition", "0",
                               "--offset", "45", "--timeout-ms", "3000")
    assert code == 0, err
    assert lines == ["line-%d" % i for i in range(45, 50)]
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--partition", "0",
                               "--offset", "earliest", "--max-messages", "1",
                               "--formatter", "key-value", "--key-separator", "|")
    assert lines == ["null|line-0"]
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--from-beginning",
                               "--max-messages", "2", "--property", "print.offset=true",
                               "--property", "print.timestamp=true", "--property", "key.separator=,")
    assert lines == ["CreateTime:%d,Offset:%d,line-%d" % (1_700_000_000_006, i, i) for i in range(2)]
    # Timestamps were 1_700_000_000_000 + len(value): "line-10".."line-49" are one longer.
    code, lines, err = consume(gregor_binary, broker, "--topic", topic, "--timestamp",
                               str(1_700_000_000_000 + 7), "--timeout-ms", "3000")
    assert code == 0, err
    assert lines == ["line-%d" % i for i in range(10, 50)]


def test_group_resumes_from_committed_offsets(gregor_binary, broker):
    topic = "resume"
    create(broker, topic, partitions=1)
    produce(broker, topic, [(0, None, ("r-%d" % i).encode(), None) for i in range(30)])
    args = ["--topic", topic, "--group", "resumers", "--from-beginning", "--timeout-ms", "5000"]
    code, lines, err = consume(gregor_binary, broker, *args, "--max-messages", "12")
    assert code == 0, err
    assert lines == ["r-%d" % i for i in range(12)]
    code, lines, err = consume(gregor_binary, broker, *args)
    assert code == 0, err
    assert lines == ["r-%d" % i for i in range(12, 30)]


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_group_shared_with_confluent_consumer(gregor_binary, broker, strategy):
    topic = "shared-" + strategy
    group = "mixed-" + strategy
    create(broker, topic, partitions=4)
    proc = subprocess.Popen(
        [gregor_binary, "consume", "--bootstrap-server", broker.bootstrap, "--topic", topic,
         "--group", group, "--from-beginning", "--formatter", "json", "--timeout-ms", "20000",
         "--consumer-property", "partition.assignment.strategy=" + strategy,
         "--consumer-property", "heartbeat.interval.ms=300",
         "--consumer-property", "session.timeout.ms=10000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gregor_lines = []
    reader = threading.Thread(target=lambda: gregor_lines.extend(proc.stdout), daemon=True)
    reader.start()
    time.sleep(2)  # gregor joins first and owns everything; then librdkafka joins
    assigned = set()

    def on_assign(consumer, partitions):
        assigned.update(p.partition for p in partitions)

    def on_revoke(consumer, partitions):
        assigned.difference_update(p.partition for p in partitions)

    theirs = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                       "auto.offset.reset": "earliest",
                       "partition.assignment.strategy": strategy,
                       "heartbeat.interval.ms": 300, "session.timeout.ms": 10000})
    theirs.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    got = []
    deadline = time.time() + 30
    while not (0 < len(assigned) < 4) and time.time() < deadline:
        msg = theirs.poll(0.2)
        assert msg is None or msg.error() or False, "no records were produced yet"
    assert 0 < len(assigned) < 4, "partitions were not split: confluent has %s" % assigned
    # Let gregor finish its side of the rebalance too, then produce.
    settle = time.time() + 3
    while time.time() < settle:
        theirs.poll(0.2)
    produce(broker, topic, [(i % 4, None, ("m-%d" % i).encode(), None) for i in range(200)])
    deadline = time.time() + 30
    while time.time() < deadline:
        msg = theirs.poll(0.2)
        if msg is not None and not msg.error():
            got.append((msg.partition(), msg.offset()))
        mine = len(gregor_lines)
        if len(got) + mine >= 200:
            break
    settle = time.time() + 2
    while time.time() < settle:
        msg = theirs.poll(0.2)
        if msg is not None and not msg.error():
            got.append((msg.partition(), msg.offset()))
    theirs.close()
    proc.wait(60)
    reader.join(5)
    assert proc.returncode == 0, proc.stderr.read().decode()
    ours = [(o["partition"], o["offset"]) for o in map(json.loads, gregor_lines)]
    assert ours and got, "both members consumed"
    assert set(p for p, _ in ours).isdisjoint(set(p for p, _ in got))
    everything = sorted(ours + got)
    assert everything == sorted((p, o) for p in range(4) for o in range(50))


def test_sigint_stops_cleanly_and_commits(gregor_binary, broker):
    topic = "interrupted"
    create(broker, topic, partitions=1)
    produce(broker, topic, [(0, None, ("s-%d" % i).encode(), None) for i in range(5)])
    proc = subprocess.Popen(
        [gregor_binary, "consume", "--bootstrap-server", broker.bootstrap, "--topic", topic,
         "--group", "interrupted", "--from-beginning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for _ in range(5):
        lines.append(proc.stdout.readline().decode().strip())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert lines == ["s-%d" % i for i in range(5)]
    assert "Processed a total of 5 messages" in err.decode()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "interrupted"})
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    consumer.close()
    assert committed[0].offset == 5


def test_bad_arguments_and_unreachable_broker(gregor_binary, broker):
    cases = [
        (["--topic", "t", "--offset", "5"], "--partition"),
        (["--topic", "t", "--group", "g", "--partition", "0"], "--group"),
        (["--topic", "t", "--offset", "soon", "--partition", "0"], "--offset"),
        (["--topic", "t", "--consumer-property", "no.such.key=1"], "no.such.key"),
        (["--topic", "t", "--formatter", "xml"], "xml"),
    ]
    for args, mention in cases:
        code, _, err = consume(gregor_binary, broker, *args, timeout=20)
        assert code != 0, args
        assert mention in err, (args, err)
    start = time.time()
    proc = subprocess.run([gregor_binary, "consume", "--bootstrap-server", "127.0.0.1:1",
                           "--topic", "t", "--timeout-ms", "2000"],
                          capture_output=True, timeout=40)
    assert proc.returncode != 0
    assert "cannot connect to 127.0.0.1:1" in proc.stderr.decode()
    assert time.time() - start < 30

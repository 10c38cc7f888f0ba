"""`gregor produce` and `gregor perf produce` (the native Rust producer) checked with a real
client: confluent-kafka (librdkafka) reads what they wrote, every codec, headers, null and empty
keys, and the key -> partition map must equal librdkafka's `murmur2_random` (the Java client's
default partitioner) for 10,000 random keys."""

import random
import re
import string
import subprocess
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from client_helpers import consume_all, create  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402


def gregor_produce(binary, broker, topic, lines, *args, timeout=120):
    return subprocess.run(
        [binary, "produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, *args],
        input="".join(line + "\n" for line in lines), capture_output=True, text=True,
        timeout=timeout)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_codec_keys_headers_and_explicit_partition(broker, gregor_binary, codec):
    topic = "gp-" + codec
    create(broker, topic, partitions=2)
    lines = ["key-%d:value-%d-%s" % (i, i, "x" * (i % 50)) for i in range(500)]
    result = gregor_produce(gregor_binary, broker, topic, lines,
                            "--key-separator", ":", "--compression-type", codec,
                            "--partition", "1", "--header", "a=1", "--header", "a=2",
                            "--header", "nullvalue", "--acks", "all")
    assert result.returncode == 0, result.stderr
    got = consume_all(broker, topic, 2, len(lines))
    assert len(got) == len(lines)
    assert all(m.partition() == 1 for m in got)
    assert [m.offset() for m in got] == list(range(len(lines)))
    for i, m in enumerate(got):
        key, value = lines[i].split(":", 1)
        assert m.key() == key.encode()
        assert m.value() == value.encode()
        assert m.headers() == [("a", b"1"), ("a", b"2"), ("nullvalue", None)]


def test_null_and_empty_keys_and_values(broker, gregor_binary):
    create(broker, "nulls", partitions=1)
    result = gregor_produce(gregor_binary, broker, "nulls",
                            ["NULL|v1", "k2|NULL", "|empty-key", "k4|"],
                            "--property", "parse.key=true", "--property", "key.separator=|",
                            "--property", "null.marker=NULL")
    assert result.returncode == 0, result.stderr
    # Without parse.key every key is null and the whole line is the value.
    result = gregor_produce(gregor_binary, broker, "nulls", ["plain|line"])
    assert result.returncode == 0, result.stderr
    got = [(m.key(), m.value()) for m in consume_all(broker, "nulls", 1, 5)]
    assert got == [(None, b"v1"), (b"k2", None), (b"", b"empty-key"), (b"k4", b""),
                   (None, b"plain|line")]


def test_key_partitions_equal_librdkafka_murmur2_random(broker, gregor_binary, tmp_path):
    partitions = 7
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + "-_.@#"
    keys = {""}
    while len(keys) < 10_000:
        keys.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    keys = sorted(keys)
    create(broker, "by-librdkafka", partitions)
    create(broker, "by-gregor", partitions)

    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 20})
    for key in keys:
        producer.produce("by-librdkafka", key=key.encode(), value=key.encode())
        producer.poll(0)
    assert producer.flush(30) == 0

    path = tmp_path / "keys.txt"
    path.write_text("".join("%s\t%s\n" % (k, k) for k in keys))
    result = subprocess.run(
        [gregor_binary, "produce", "--bootstrap-server", broker.bootstrap, "--topic", "by-gregor",
         "--property", "parse.key=true", "--file", str(path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    theirs = {m.key(): m.partition() for m in consume_all(broker, "by-librdkafka", partitions,
                                                          len(keys))}
    ours = {m.key(): m.partition() for m in consume_all(broker, "by-gregor", partitions, len(keys))}
    assert len(theirs) == len(keys) and len(ours) == len(keys)
    differing = [k for k in theirs if theirs[k] != ours[k]]
    assert differing == []
    # The keys spread over every partition.
    assert set(ours.values()) == set(range(partitions))


@pytest.mark.broker_overrides("auto.create.topics.enable=false")
def test_unknown_topic_is_a_clear_error(broker, gregor_binary):
    started = time.time()
    result = gregor_produce(gregor_binary, broker, "missing", ["x"])
    assert result.returncode != 0
    assert result.stderr.startswith("error: "), result.stderr
    assert "missing" in result.stderr and "UNKNOWN_TOPIC_OR_PARTITION" in result.stderr
    assert time.time() - started < 30


def test_unreachable_broker_is_a_clear_error(gregor_binary):
    result = subprocess.run(
        [gregor_binary, "produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "t",
         "--producer-property", "request.timeout.ms=2000"],
        input="x\n", capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("error: "), result.stderr
    assert "127.0.0.1:1" in result.stderr


def test_perf_produce_reports_and_writes_every_record(broker, gregor_binary):
    create(broker, "perf", partitions=3)
    result = subprocess.run(
        [gregor_binary, "perf", "produce", "--bootstrap-server", broker.bootstrap,
         "--topic", "perf", "--num-records", "20000", "--record-size", "100", "--acks", "1",
         "--compression-type", "lz4"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    final = result.stdout.strip().splitlines()[-1]
    assert re.match(r"20000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg "
                    r"latency, [\d.]+ ms max latency, [\d.]+ ms 50th, [\d.]+ ms 95th, "
                    r"[\d.]+ ms 99th, [\d.]+ ms 99.9th\.$", final), final
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    total = sum(consumer.get_watermark_offsets(TopicPartition("perf", p), timeout=10)[1]
                for p in range(3))
    consumer.close()
    assert total == 20000
    result = subprocess.run(
        [gregor_binary, "perf", "consume", "--bootstrap-server", broker.bootstrap,
         "--topic", "perf", "--num-records", "20000"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.match(r"20000 records consumed, [\d.]+ records/sec \([\d.]+ MB/sec\)",
                    result.stdout.strip().splitlines()[-1]), result.stdout
    result = subprocess.run(
        [gregor_binary, "perf", "produce", "--bootstrap-server", broker.bootstrap,
         "--topic", "perf", "--num-records", "200", "--record-size", "10", "--throughput", "100"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rate = float(re.match(r"200 records sent, ([\d.]+) records/sec", result.stdout).group(1))
    assert rate < 130

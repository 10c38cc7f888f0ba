#!/usr/bin/env python3
"""Broker throughput, latency and memory with a librdkafka client (confluent-kafka).

Starts a release `gregor broker` on a free port with its data under target/tmp (the project's
disk), then measures, for 1 KiB records:
  - produce throughput, acks=1 and acks=all, to 1 and 8 partitions;
  - consume throughput of what was produced;
  - produce latency (send -> delivery report) p50/p99 at a fixed moderate rate, acks=all;
  - broker RSS idle and after the load.
Prints a Markdown table for bench/RESULTS.md. Usage: python3 bench/broker_perf.py [records]
"""

import os
import re
import shutil
import statistics
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from perf_broker import REPO, release_binary, start_broker
from perf_broker import produce as send

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
VALUE = b"x" * 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def produce(bootstrap, topic, acks):
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                  "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                  "queue.buffering.max.kbytes": 2_000_000, "compression.type": "none"})
    start = time.time()
    for _ in range(RECORDS):
        send(p, topic, VALUE)
    p.flush(120)
    return time.time() - start


def consume(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "perf", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    n, start = 0, time.time()
    while n < RECORDS:
        batch = c.consume(10000, 5.0)
        n += sum(1 for m in batch if not m.error())
    elapsed = time.time() - start
    c.close()
    return elapsed


def latency(bootstrap, topic, rate=2000, seconds=10):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    samples = []

    def report(err, msg, sent):
        if err is None:
            samples.append((time.perf_counter() - sent) * 1000)

    interval = 1.0 / rate
    next_at = time.perf_counter()
    for _ in range(rate * seconds):
        sent = time.perf_counter()
        p.produce(topic, VALUE, on_delivery=lambda err, msg, sent=sent: report(err, msg, sent))
        p.poll(0)
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    p.flush(30)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)], len(samples)


def main():
    os.makedirs(os.path.join(REPO, "target", "tmp"), exist_ok=True)
    data = tempfile.mkdtemp(dir=os.path.join(REPO, "target", "tmp"))
    proc, bootstrap = start_broker(release_binary(), data)
    try:
        time.sleep(1)
        idle_rss = rss_kib(proc.pid)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = []
        for acks in ("1", "all"):
            for partitions in (1, 8):
                name = "perf-acks%s-p%d" % (acks, partitions)
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)
                topics.append((name, acks, partitions))
        mib = RECORDS * len(VALUE) / 2**20
        print("| workload | partitions | records/s | MiB/s |")
        print("|---|---|---|---|")
        for name, acks, partitions in topics:
            t = produce(bootstrap, name, acks)
            print("| produce acks=%s | %d | %.0f | %.1f |" % (acks, partitions, RECORDS / t, mib / t))
        for name, acks, partitions in topics[:2]:
            t = consume(bootstrap, name, partitions)
            print("| consume | %d | %.0f | %.1f |" % (partitions, RECORDS / t, mib / t))
        admin.create_topics([NewTopic("perf-latency", num_partitions=1, replication_factor=1)])["perf-latency"].result(10)
        p50, p99, n = latency(bootstrap, "perf-latency")
        print()
        print("produce latency, acks=all, 2,000 records/s for 10 s (%d records): p50 %.2f ms, p99 %.2f ms" % (n, p50, p99))
        print("broker RSS: idle %.1f MiB, after load %.1f MiB" % (idle_rss / 1024, rss_kib(proc.pid) / 1024))
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

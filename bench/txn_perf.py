#!/usr/bin/env python3
"""What exactly-once costs: produce throughput of plain, idempotent and transactional librdkafka
producers (confluent-kafka) against one release `gregor broker`, and what read_committed costs
a consumer.

Starts the broker on a free port with its data under target/tmp (the project's disk), then, for
1 KiB records, acks=all, to 1 and to 8 partitions:
  - plain:          enable.idempotence=false
  - idempotent:     enable.idempotence=true (max.in.flight 5)
  - transactional:  transactional.id, a commit every N records (N = 1000 and 100 by default)
and consumes the 8-partition transactional topic with read_uncommitted and read_committed.
Prints Markdown for bench/RESULTS.md: conditions, then one row per case.

    python3 bench/txn_perf.py [--records 200000] [--txn-sizes 1000,100] [--binary PATH]

Without --binary it builds target/release/gregor first (cargo build --release -p gregor-cli).
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from perf_broker import REPO, produce, release_binary, start_broker

VALUE = b"x" * 1024
BROKER_OVERRIDES = [
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "offsets.topic.replication.factor=1",
]
COMMON = {"acks": "all", "linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
          "queue.buffering.max.kbytes": 2_000_000, "compression.type": "none"}


def send_all(p, topic, records, partitions, per_txn=None):
    """Produces `records` values round-robin over the partitions; with `per_txn`, inside
    transactions of that many records. Returns (seconds, commit latencies in ms)."""
    commits = []
    start = time.time()
    if per_txn:
        p.begin_transaction()
    for i in range(records):
        produce(p, topic, VALUE, partition=i % partitions)
        if per_txn and (i + 1) % per_txn == 0:
            t = time.perf_counter()
            p.commit_transaction(60)
            commits.append((time.perf_counter() - t) * 1000)
            if i + 1 < records:
                p.begin_transaction()
    if per_txn and records % per_txn:
        p.commit_transaction(60)
    left = p.flush(120)
    if left:
        raise RuntimeError("%d records not delivered" % left)
    return time.time() - start, commits


def producer(bootstrap, kind, txn_id):
    config = dict(COMMON, **{"bootstrap.servers": bootstrap})
    if kind == "plain":
        config["enable.idempotence"] = False
    elif kind == "idempotent":
        config["enable.idempotence"] = True
    else:
        config["transactional.id"] = txn_id
    p = Producer(config)
    if kind.startswith("transactional"):
        p.init_transactions(30)
    return p


def consume(bootstrap, topic, partitions, records, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "perf-" + isolation, "enable.auto.commit": False,
                  "isolation.level": isolation, "fetch.max.bytes": 52428800,
                  "max.partition.fetch.bytes": 10485760, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    n, eof, start = 0, set(), time.time()
    while len(eof) < partitions and time.time() - start < 300:
        for m in c.consume(10000, 5.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                continue
            n += 1
    elapsed = time.time() - start
    c.close()
    if n != records:
        raise RuntimeError("read %d of %d records" % (n, records))
    return elapsed


def conditions(binary, args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    import confluent_kafka

    return [
        "| | |",
        "|---|---|",
        "| date | %s |" % datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "| command | `python3 bench/txn_perf.py --records %d --txn-sizes %s%s` |" % (
            args.records, args.txn_sizes, " --binary %s" % args.binary if args.binary else ""),
        "| machine | %d vCPUs, %s, %s |" % (os.cpu_count(), cpu, platform.platform()),
        "| client | confluent-kafka %s / librdkafka %s, one Python process on the same machine |" % (
            confluent_kafka.__version__, confluent_kafka.libversion()[0]),
        "| broker | `%s`, code `%s`%s, defaults plus %s |" % (
            os.path.relpath(binary, REPO) if binary.startswith(REPO) else binary, commit,
            " (uncommitted changes)" if dirty else "", ", ".join("`%s`" % o for o in BROKER_OVERRIDES)),
        "| records | %d of 1 KiB per row, acks=all, linger.ms=5, batch.size=1000000, uncompressed |" % args.records,
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--txn-sizes", default="1000,100")
    parser.add_argument("--partitions", default="1,8")
    parser.add_argument("--binary", help="an existing gregor binary (default: build target/release/gregor)")
    parser.add_argument("--data-dir", default=os.path.join(REPO, "target", "tmp"),
                        help="where the broker's data directory is made (default target/tmp)")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary or release_binary())
    sizes = [int(s) for s in args.txn_sizes.split(",") if s]
    partition_counts = [int(s) for s in args.partitions.split(",") if s]

    os.makedirs(args.data_dir, exist_ok=True)
    data = tempfile.mkdtemp(dir=args.data_dir)
    load_before = os.getloadavg()[0]
    proc, bootstrap = start_broker(binary, data, BROKER_OVERRIDES)
    rows, notes = [], []
    try:
        time.sleep(1)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        cases = [("plain", None), ("idempotent", None)] + [("transactional", n) for n in sizes]
        mib = args.records * len(VALUE) / 2**20
        last_txn_topic = None
        for partitions in partition_counts:
            for kind, per_txn in cases:
                label = kind if per_txn is None else "%s, %d records/txn" % (kind, per_txn)
                topic = "perf-%s-%s-p%d" % (kind, per_txn or 0, partitions)
                new = NewTopic(topic, num_partitions=partitions, replication_factor=1)
                admin.create_topics([new])[topic].result(30)
                try:
                    p = producer(bootstrap, kind, "perf-%s-%d" % (topic, partitions))
                    seconds, commits = send_all(p, topic, args.records, partitions, per_txn)
                except Exception as e:  # noqa: BLE001 - reported in the table
                    rows.append("| %s | %d | failed: %s | | |" % (label, partitions, str(e).replace("|", "/")[:120]))
                    continue
                commit_ms = ""
                if commits:
                    commits.sort()
                    commit_ms = "%.2f / %.2f" % (commits[len(commits) // 2], commits[int(len(commits) * 0.99)])
                    if partitions == max(partition_counts):
                        last_txn_topic = (topic, partitions)
                rows.append("| %s | %d | %s | %.1f | %s |" % (
                    label, partitions, "{:,.0f}".format(args.records / seconds), mib / seconds, commit_ms))
        if last_txn_topic:
            topic, partitions = last_txn_topic
            for isolation in ("read_uncommitted", "read_committed"):
                try:
                    seconds = consume(bootstrap, topic, partitions, args.records, isolation)
                    notes.append("| consume %s (%s) | %d | %s | %.1f | |" % (
                        isolation, topic, partitions, "{:,.0f}".format(args.records / seconds), mib / seconds))
                except Exception as e:  # noqa: BLE001
                    notes.append("| consume %s | %d | failed: %s | | |" % (isolation, partitions, e))
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    load_after = os.getloadavg()[0]

    print("\n".join(conditions(binary, args)))
    print("| load (1 min) | %.2f before, %.2f after |" % (load_before, load_after))
    print()
    print("| producer | partitions | records/s | MiB/s | commit p50 / p99 ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows + notes))


if __name__ == "__main__":
    main()

"""Transactional client processes the EOS tests can SIGKILL at any point.

    python eos_worker.py ctp --bootstrap B --input IN --output OUT --partitions N --group G --txn-id T
        A consume-transform-produce loop: reads IN (read_committed), writes value + "-out" to
        the same partition of OUT, and commits the consumed offsets to group G in the same
        transaction (send_offsets_to_transaction), a few records per transaction. It prints
        "resumed <sum of the group's committed offsets>" once it has started, and
        "committed <the same sum>" after each commit, on stdout. Fatal errors exit with code 3
        (the test starts a new worker, as a supervisor would).

    python eos_worker.py open --bootstrap B --topic T --partitions N --txn-id T --count C --timeout-ms M
        Begins a transaction, writes C records "open-<i>" and flushes them, prints "ready",
        then hangs without ending the transaction (until killed)."""

import argparse
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def kafka_error(exc):
    return exc.args[0] if isinstance(exc, KafkaException) and exc.args else None


class Progress:
    """The group's committed position on every input partition, as far as this worker knows:
    what it committed itself, else what it found committed when it started (0 if nothing)."""

    def __init__(self, consumer, topic, partitions):
        self.consumer, self.topic, self.partitions = consumer, topic, partitions
        self.offsets = {}

    def batches(self, size):
        """Prints where the group stands before this worker's first commit ("resumed"), then
        yields every non-empty batch (at most `size`) of messages the consumer reads, forever."""
        self.committed([], word="resumed")
        while True:
            msgs = [m for m in self.consumer.consume(size, 1.0) if not m.error()]
            if msgs:
                yield msgs

    def committed(self, positions, word="committed"):
        for tp in positions:
            self.offsets[tp.partition] = tp.offset
        missing = [TopicPartition(self.topic, p) for p in range(self.partitions) if p not in self.offsets]
        if missing:
            for tp in self.consumer.committed(missing, timeout=30):
                self.offsets[tp.partition] = max(tp.offset, 0)
        say("%s %d" % (word, sum(self.offsets.values())))


def all_input_partitions(args):
    return [TopicPartition(args.input, p) for p in range(args.partitions)]


def rewind(consumer):
    """After an abort: back to the group's committed offsets (the earliest offset if none)."""
    assignment = consumer.assignment()
    if not assignment:
        return
    for tp in consumer.committed(assignment, timeout=30):
        consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))


def commit(producer, attempts=5):
    """commit_transaction, called again after a retriable error (e.g. a timeout), as librdkafka
    allows; abortable and fatal errors are the caller's."""
    for attempt in range(attempts):
        try:
            return producer.commit_transaction(30)
        except KafkaException as e:
            err = kafka_error(e)
            if attempt + 1 == attempts or err is None or not err.retriable() or err.fatal() \
                    or err.txn_requires_abort():
                raise


def ctp(args):
    if args.at_least_once:
        return ctp_at_least_once(args)
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.txn_id,
        "transaction.timeout.ms": args.timeout_ms,
        "message.timeout.ms": args.timeout_ms,
        "linger.ms": 2,
    })
    producer.init_transactions(60)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    if args.subscribe:
        consumer.subscribe([args.input])
    else:
        # No group membership: offsets are still committed to the group (generation -1), the
        # way a single EOS worker that owns all partitions runs.
        consumer.assign(all_input_partitions(args))
    progress = Progress(consumer, args.input, args.partitions)
    for msgs in progress.batches(args.batch):
        try:
            producer.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        producer.produce(args.output, key=m.key(), value=m.value() + b"-out",
                                         partition=m.partition())
                        break
                    except BufferError:
                        producer.poll(0.1)
            if args.pause:
                time.sleep(args.pause)
            positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            commit(producer)
        except KafkaException as e:
            err = kafka_error(e)
            say("error %s" % err)
            if err is not None and err.txn_requires_abort():
                producer.abort_transaction(30)
                rewind(consumer)
                continue
            sys.exit(3)
        progress.committed(positions)


def ctp_at_least_once(args):
    """The same loop without transactions (flush, then commit the offsets): what the
    exactly-once test must be able to tell apart, since a kill between the two duplicates."""
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 2, "acks": "all"})
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign(all_input_partitions(args))
    progress = Progress(consumer, args.input, args.partitions)
    for msgs in progress.batches(args.batch):
        for m in msgs:
            producer.produce(args.output, key=m.key(), value=m.value() + b"-out", partition=m.partition())
        producer.flush(30)
        if args.pause:
            time.sleep(args.pause)
        positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
        consumer.commit(offsets=positions, asynchronous=False)
        progress.committed(positions)


def open_txn(args):
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.txn_id,
        "transaction.timeout.ms": args.timeout_ms,
        "message.timeout.ms": args.timeout_ms,
    })
    producer.init_transactions(60)
    producer.begin_transaction()
    for i in range(args.count):
        producer.produce(args.topic, value=b"open-%d" % i, partition=i % args.partitions)
    assert producer.flush(60) == 0
    say("ready")
    while True:
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ctp", "open"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--topic")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--group", default="eos-ctp")
    parser.add_argument("--txn-id", required=True)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--timeout-ms", type=int, default=10000)
    parser.add_argument("--subscribe", action="store_true")
    parser.add_argument("--at-least-once", action="store_true",
                        help="no transactions (a control for the harness, not used by the suite)")
    args = parser.parse_args()
    if args.mode == "ctp":
        ctp(args)
    else:
        open_txn(args)


if __name__ == "__main__":
    main()

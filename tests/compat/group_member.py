"""A consumer-group member (confluent-kafka) in its own process, for the group tests that must
kill a member without it leaving the group (SIGKILL), or restart it.

It subscribes to one topic and appends one line per event to --out, written straight to the
file (no buffering, so a SIGKILL loses nothing already reported):

    start <pid>
    assign <p,p,...>                      partitions handed over by one rebalance callback
    revoke <p,p,...> / lost <p,p,...>     partitions taken away
    msg <partition> <epoch> <offset> <key>
    commit <p>:<offset>,...               a synchronous commit that succeeded
    commitfail <error>                    one that did not (the records will come again)
    error <error>
    closed

<epoch> numbers the periods during which this process owned the partition (it grows with every
assign of that partition), so a reader can check that offsets only increase within one period.
The member processes records at least once: it writes a record's line before committing past
it, commits synchronously every --commit-every records, when idle, and when partitions are
revoked. SIGTERM closes the consumer cleanly (LeaveGroup) and exits 0.
"""

import argparse
import os
import signal
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds of 'work' per record")
    parser.add_argument("--commit-every", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], help="librdkafka key=value")
    args = parser.parse_args()

    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log(line):
        os.write(fd, (line + "\n").encode())

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    epochs = {}
    counter = [0]
    pending = {}  # partition -> next offset to commit

    def commit(partitions=None):
        todo = {p: o for p, o in pending.items() if partitions is None or p in partitions}
        if not todo:
            return
        try:
            consumer.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in sorted(todo.items())],
                            asynchronous=False)
            log("commit " + ",".join("%d:%d" % item for item in sorted(todo.items())))
        except KafkaException as e:
            log("commitfail " + str(e.args[0]).replace("\n", " "))
        for p in todo:
            pending.pop(p, None)

    def on_assign(c, partitions):
        for tp in partitions:
            counter[0] += 1
            epochs[tp.partition] = counter[0]
        log("assign " + (",".join(str(tp.partition) for tp in partitions) or "-"))

    def on_revoke(c, partitions):
        commit({tp.partition for tp in partitions})
        for tp in partitions:
            epochs.pop(tp.partition, None)
        log("revoke " + (",".join(str(tp.partition) for tp in partitions) or "-"))

    def on_lost(c, partitions):
        for tp in partitions:
            epochs.pop(tp.partition, None)
            pending.pop(tp.partition, None)
        log("lost " + (",".join(str(tp.partition) for tp in partitions) or "-"))

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        if value == "":
            config.pop(key, None)  # --set key= removes a default
        else:
            config[key] = value
    consumer = Consumer(config)
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    log("start %d" % os.getpid())
    since_commit = 0
    while not stopping:
        msg = consumer.poll(0.2)
        if msg is None:
            commit()
            since_commit = 0
            continue
        if msg.error():
            log("error " + str(msg.error()).replace("\n", " "))
            continue
        key = msg.key().decode() if msg.key() is not None else "-"
        log("msg %d %d %d %s" % (msg.partition(), epochs.get(msg.partition(), 0), msg.offset(), key))
        if args.sleep:
            time.sleep(args.sleep)
        pending[msg.partition()] = msg.offset() + 1
        since_commit += 1
        if since_commit >= args.commit_every:
            commit()
            since_commit = 0
    commit()
    consumer.close()
    log("closed")


if __name__ == "__main__":
    main()

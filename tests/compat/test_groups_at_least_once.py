"""At-least-once delivery across rebalances: a group of three member processes reads keyed
records and commits after processing while the test SIGKILLs and restarts members. In the end
every record has been seen, each member saw a partition's offsets in increasing order while it
owned it, and the group's committed offsets reach the end of every partition.

GREGOR_SOAK=1 runs a longer variant (more records, more kills, graceful restarts too, and the
cooperative-sticky assignor)."""

import os
import random
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from group_helpers import (GROUP_OVERRIDES, MemberProcess, create_topic, produce,  # noqa: E402
                           record_key)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)

PARTITIONS = 6
SOAK = os.environ.get("GREGOR_SOAK") == "1"


def read_runs(runs):
    """[(run index, [event words])] for every member process started."""
    return [(i, run.events()) for i, run in enumerate(runs)]


def seen_offsets(runs):
    seen = {p: set() for p in range(PARTITIONS)}
    for _, events in read_runs(runs):
        for ev in events:
            if ev[0] == "msg" and len(ev) == 5:
                seen[int(ev[1])].add(int(ev[3]))
    return seen


def end_offsets(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks", "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(PARTITIONS)}
    finally:
        c.close()


def group_committed(bootstrap, group, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got}


def run_chaos(broker, tmp_path, records, kills, graceful_every, settings, sleep, seed):
    topic, group = "events", "chaos"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    produce(broker.bootstrap, topic, records, PARTITIONS)
    per_partition = {p: len(range(p, records, PARTITIONS)) for p in range(PARTITIONS)}
    rng = random.Random(seed)
    runs = []

    def start(slot):
        run = MemberProcess(broker.bootstrap, group, topic, tmp_path / ("run%02d-slot%d.log" % (len(runs), slot)),
                            settings=settings, sleep=sleep)
        runs.append(run)
        return run

    slots = [start(s) for s in range(3)]
    # Kill when these fractions of the records have been seen, so the kills land mid-stream
    # however fast or slow the machine is.
    thresholds = [(k + 1) / (kills + 1) for k in range(kills)]
    deadline = time.monotonic() + (600 if SOAK else 150)
    actions = []
    try:
        while True:
            seen = seen_offsets(runs)
            done = sum(len(s) for s in seen.values())
            if thresholds and done >= thresholds[0] * records:
                thresholds.pop(0)
                slot = rng.randrange(3)
                graceful = graceful_every and len(actions) % graceful_every == graceful_every - 1
                if graceful:
                    slots[slot].terminate()
                else:
                    slots[slot].kill()  # SIGKILL: no commit, no LeaveGroup
                actions.append(("term" if graceful else "kill", slot, done))
                slots[slot] = start(slot)
            if not thresholds and done == records:
                break
            for run in slots:
                assert run.proc.poll() is None, "member exited on its own:\n" + run.stderr()
            assert time.monotonic() < deadline, (
                "not every record was consumed: %d of %d; actions %s; missing %s" % (
                    done, records, actions,
                    {p: sorted(set(range(per_partition[p])) - s)[:10] for p, s in seen.items()}))
            time.sleep(0.2)

        # Everything was seen; the group must also get its commits to the end of the log.
        ends = end_offsets(broker.bootstrap, topic)
        assert ends == per_partition
        while group_committed(broker.bootstrap, group, topic) != ends:
            assert time.monotonic() < deadline, "committed %s, log ends %s" % (
                group_committed(broker.bootstrap, group, topic), ends)
            time.sleep(0.5)
    finally:
        codes = [run.terminate() for run in slots]
    assert codes == [0, 0, 0], [run.stderr() for run in slots]
    assert len(actions) == kills

    # Every record at least once, with the key it was produced with.
    produced = {}
    for i in range(records):
        produced[(i % PARTITIONS, i // PARTITIONS)] = record_key(i).decode()
    union = {p: set() for p in range(PARTITIONS)}
    duplicates = 0
    for index, events in read_runs(runs):
        assert events and events[0][0] == "start", runs[index].stderr()
        by_epoch = {}
        for ev in events:
            if ev[0] == "msg":
                p, epoch, offset, key = int(ev[1]), int(ev[2]), int(ev[3]), ev[4]
                assert key == produced[(p, offset)], (index, ev)
                assert epoch > 0, "record delivered for a partition not assigned: %s" % ev
                if offset in union[p]:
                    duplicates += 1
                union[p].add(offset)
                by_epoch.setdefault((p, epoch), []).append(offset)
            elif ev[0] == "error":
                pass  # transient consumer errors (e.g. a coordinator change) are allowed
        # While a member owned a partition, it saw that partition's offsets in increasing order,
        # without gaps (a gap would be a record skipped by this member).
        for (p, epoch), offsets in by_epoch.items():
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), (index, p, epoch, offsets[:20])
    for p in range(PARTITIONS):
        assert union[p] == set(range(per_partition[p])), p
    return actions, duplicates


def test_at_least_once_across_member_kills_and_restarts(broker, tmp_path):
    if SOAK:
        run_chaos(broker, tmp_path, records=30000, kills=12, graceful_every=3,
                  settings=["partition.assignment.strategy=range"], sleep=0.0005, seed=7)
    else:
        run_chaos(broker, tmp_path, records=3000, kills=3, graceful_every=0,
                  settings=[], sleep=0.002, seed=7)


@pytest.mark.skipif(not SOAK, reason="long variant; set GREGOR_SOAK=1")
def test_at_least_once_with_cooperative_sticky_soak(broker, tmp_path):
    run_chaos(broker, tmp_path, records=30000, kills=12, graceful_every=3,
              settings=["partition.assignment.strategy=cooperative-sticky"], sleep=0.0005, seed=11)

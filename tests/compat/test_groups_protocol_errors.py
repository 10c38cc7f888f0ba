"""The group coordinator's answers to bad input, over a raw socket with hand-encoded requests
(kafka_wire.py; FindCoordinator v2, JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3,
OffsetCommit v7, OffsetFetch v5: the non-flexible versions librdkafka also uses). A member we
drive by hand makes the group Stable; then requests with an unknown member id, a wrong
generation or bad arguments get Kafka's error codes and change nothing."""

import pytest

import kafka_wire
from group_helpers import GROUP_OVERRIDES, create_topic, produce
from kafka_wire import (HEARTBEAT, ILLEGAL_GENERATION, INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT, JOIN_GROUP,
                        LEAVE_GROUP, MEMBER_ID_REQUIRED, NONE, OFFSET_COMMIT, OFFSET_FETCH, REBALANCE_IN_PROGRESS,
                        SYNC_GROUP, UNKNOWN_MEMBER_ID, UNKNOWN_TOPIC_OR_PARTITION, array, blob, i16, i32, i64,
                        string)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)


def subscription(topics):
    """ConsumerProtocolSubscription v0: version, topics, user data."""
    return i16(0) + array(topics, string) + blob(b"")


def assignment(topic_partitions):
    """ConsumerProtocolAssignment v0: version, [topic, [partition]], user data."""
    return i16(0) + array(sorted(topic_partitions.items()),
                          lambda tp: string(tp[0]) + array(tp[1], i32)) + blob(b"")


class Connection(kafka_wire.Connection):
    """kafka_wire's connection (client id "raw-group-test") plus the classic group requests."""

    def __init__(self, bootstrap):
        super().__init__(bootstrap, client_id="raw-group-test")

    def join(self, group, member_id, topics=("raw",), session_ms=30000, rebalance_ms=30000, instance=None):
        protocols = [("range", subscription(list(topics)))]
        body = (string(group) + i32(session_ms) + i32(rebalance_ms) + string(member_id) + string(instance)
                + string("consumer") + array(protocols, lambda p: string(p[0]) + blob(p[1])))
        r = self.call(JOIN_GROUP, 5, body)
        out = dict(throttle=r.i32(), error=r.i16(), generation=r.i32(), protocol=r.string(), leader=r.string(),
                   member_id=r.string(),
                   members=r.array(lambda m: dict(member_id=m.string(), instance=m.string(), metadata=m.blob())))
        r.done()
        return out

    def sync(self, group, generation, member_id, assignments=()):
        body = (string(group) + i32(generation) + string(member_id) + string(None)
                + array(list(assignments), lambda a: string(a[0]) + blob(a[1])))
        r = self.call(SYNC_GROUP, 3, body)
        out = dict(throttle=r.i32(), error=r.i16(), assignment=r.blob())
        r.done()
        return out

    def heartbeat(self, group, generation, member_id):
        r = self.call(HEARTBEAT, 3, string(group) + i32(generation) + string(member_id) + string(None))
        out = dict(throttle=r.i32(), error=r.i16())
        r.done()
        return out["error"]

    def leave(self, group, member_id):
        r = self.call(LEAVE_GROUP, 3, string(group) + array([member_id], lambda m: string(m) + string(None)))
        out = dict(throttle=r.i32(), error=r.i16(),
                   members=r.array(lambda m: dict(member_id=m.string(), instance=m.string(), error=m.i16())))
        r.done()
        return out

    def commit(self, group, generation, member_id, offsets):
        """offsets: {(topic, partition): (offset, metadata)}; returns {(topic, partition): error}."""
        by_topic = {}
        for (t, p), (o, m) in sorted(offsets.items()):
            by_topic.setdefault(t, []).append((p, o, m))
        body = (string(group) + i32(generation) + string(member_id) + string(None)
                + array(sorted(by_topic.items()), lambda t: string(t[0]) + array(
                    t[1], lambda x: i32(x[0]) + i64(x[1]) + i32(-1) + string(x[2]))))
        r = self.call(OFFSET_COMMIT, 7, body)
        r.i32()
        out = {}
        for topic in r.array(lambda t: (t.string(), t.array(lambda p: (p.i32(), p.i16())))):
            for p, err in topic[1]:
                out[(topic[0], p)] = err
        r.done()
        return out

    def fetch(self, group, partitions):
        """partitions: {topic: [partition]}; returns ({(topic, partition): (offset, metadata, error)}, error)."""
        body = string(group) + array(sorted(partitions.items()), lambda t: string(t[0]) + array(t[1], i32))
        r = self.call(OFFSET_FETCH, 5, body)
        r.i32()
        out = {}
        for topic in r.array(lambda t: (t.string(), t.array(
                lambda p: (p.i32(), p.i64(), p.i32(), p.string(), p.i16())))):
            for p, offset, _epoch, metadata, err in topic[1]:
                out[(topic[0], p)] = (offset, metadata, err)
        error = r.i16()
        r.done()
        return out, error


def stable_group(conn, group):
    """Joins `group` as its only member and syncs: returns (member id, generation)."""
    first = conn.join(group, "")
    assert first["error"] == MEMBER_ID_REQUIRED
    member = first["member_id"]
    joined = conn.join(group, member)
    assert joined["error"] == NONE, joined
    assert joined["member_id"] == member and joined["leader"] == member
    assert joined["protocol"] == "range"
    assert [m["member_id"] for m in joined["members"]] == [member]
    assert joined["members"][0]["metadata"] == subscription(["raw"])
    plan = assignment({"raw": [0, 1]})
    synced = conn.sync(group, joined["generation"], member, [(member, plan)])
    assert synced["error"] == NONE and synced["assignment"] == plan
    return member, joined["generation"]


def test_find_coordinator_and_join_group_errors(broker):
    create_topic(broker.bootstrap, "raw", 2)
    conn = Connection(broker.bootstrap)
    try:
        found = conn.find_coordinator("raw-join")
        assert found["error"] == NONE
        assert (found["node"], "%s:%d" % (found["host"], found["port"])) == (1, broker.bootstrap)

        # JoinGroup v4+ with no member id: MEMBER_ID_REQUIRED, with the id to come back with.
        first = conn.join("raw-join", "")
        assert first["error"] == MEMBER_ID_REQUIRED
        assert first["member_id"].startswith("raw-group-test-"), first  # Kafka: client id + "-" + uuid
        assert first["generation"] == -1
        # (Another group: a pending member that never comes back would hold up raw-join's rebalance.)
        other = conn.join("raw-join-other", "")
        assert other["error"] == MEMBER_ID_REQUIRED and other["member_id"] != first["member_id"]

        assert conn.join("", "")["error"] == INVALID_GROUP_ID
        assert conn.join("raw-join", "", session_ms=1000)["error"] == INVALID_SESSION_TIMEOUT  # < group.min
        assert conn.join("raw-join", "", session_ms=3_600_000)["error"] == INVALID_SESSION_TIMEOUT  # > group.max
        assert conn.join("raw-join", "made-up-member")["error"] == UNKNOWN_MEMBER_ID

        joined = conn.join("raw-join", first["member_id"])
        assert joined["error"] == NONE and joined["generation"] >= 1
        # SyncGroup with the wrong generation, or from a stranger, is refused; the real one works.
        wrong = conn.sync("raw-join", joined["generation"] + 1, first["member_id"],
                          [(first["member_id"], assignment({"raw": [0, 1]}))])
        assert wrong["error"] == ILLEGAL_GENERATION
        stranger = conn.sync("raw-join", joined["generation"], "made-up-member")
        assert stranger["error"] == UNKNOWN_MEMBER_ID
        plan = assignment({"raw": [0, 1]})
        synced = conn.sync("raw-join", joined["generation"], first["member_id"], [(first["member_id"], plan)])
        assert synced["error"] == NONE and synced["assignment"] == plan
    finally:
        conn.close()


def test_heartbeat_and_offset_commit_from_wrong_members_change_nothing(broker):
    create_topic(broker.bootstrap, "raw", 2)
    produce(broker.bootstrap, "raw", 20, 2)
    group = "raw-commit"
    conn = Connection(broker.bootstrap)
    try:
        member, generation = stable_group(conn, group)
        assert conn.heartbeat(group, generation, member) == NONE
        assert conn.heartbeat(group, generation + 1, member) == ILLEGAL_GENERATION
        assert conn.heartbeat(group, generation - 1, member) == ILLEGAL_GENERATION
        assert conn.heartbeat(group, generation, "made-up-member") == UNKNOWN_MEMBER_ID

        good = {("raw", 0): (7, "seven"), ("raw", 1): (3, None)}
        assert conn.commit(group, generation, member, good) == {("raw", 0): NONE, ("raw", 1): NONE}
        bad = {("raw", 0): (1, "nope"), ("raw", 1): (1, "nope")}
        assert conn.commit(group, generation, "made-up-member", bad) == {
            ("raw", 0): UNKNOWN_MEMBER_ID, ("raw", 1): UNKNOWN_MEMBER_ID}
        assert conn.commit(group, generation - 1, member, bad) == {
            ("raw", 0): ILLEGAL_GENERATION, ("raw", 1): ILLEGAL_GENERATION}
        assert conn.commit(group, generation + 1, member, bad) == {
            ("raw", 0): ILLEGAL_GENERATION, ("raw", 1): ILLEGAL_GENERATION}
        # A commit from outside the group (generation -1, no member id) while it has members.
        assert conn.commit(group, -1, "", bad) == {("raw", 0): UNKNOWN_MEMBER_ID, ("raw", 1): UNKNOWN_MEMBER_ID}
        assert conn.commit(group, generation, member, {("no-such-topic", 0): (1, None)}) == {
            ("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION}

        offsets, error = conn.fetch(group, {"raw": [0, 1]})
        assert error == NONE
        # (Kafka stores a null commit metadata as "", and answers "".)
        assert offsets == {("raw", 0): (7, "seven", NONE), ("raw", 1): (3, "", NONE)}
        # The member is still in good standing after all that.
        assert conn.heartbeat(group, generation, member) == NONE

        left = conn.leave(group, member)
        assert left["error"] == NONE and [m["error"] for m in left["members"]] == [NONE]
        assert conn.heartbeat(group, generation, member) == UNKNOWN_MEMBER_ID
        # Empty now: a commit from outside the group is accepted.
        assert conn.commit(group, -1, "", {("raw", 0): (9, None)}) == {("raw", 0): NONE}
        offsets, error = conn.fetch(group, {"raw": [0, 1]})
        assert error == NONE and offsets[("raw", 0)][0] == 9 and offsets[("raw", 1)][0] == 3

        # A group nobody has heard of has no offsets (and that is not an error).
        offsets, error = conn.fetch("never-seen", {"raw": [0, 1]})
        assert error == NONE
        assert sorted(offsets) == [("raw", 0), ("raw", 1)]
        assert all(o == -1 and e == NONE for (o, _m, e) in offsets.values()), offsets
    finally:
        conn.close()


def test_second_member_joining_makes_the_first_rejoin(broker):
    """A rebalance as the coordinator runs it: once a second member joins a Stable group, the
    first one's heartbeat answers REBALANCE_IN_PROGRESS; both join the next generation, which
    waits for both (the second member's JoinGroup is answered only once the first rejoined)."""
    import threading

    create_topic(broker.bootstrap, "raw", 2)
    group = "raw-rebalance"
    a, b = Connection(broker.bootstrap), Connection(broker.bootstrap)
    try:
        member_a, generation = stable_group(a, group)
        second = b.join(group, "")
        assert second["error"] == MEMBER_ID_REQUIRED
        member_b = second["member_id"]
        result = {}
        joiner = threading.Thread(target=lambda: result.update(b.join(group, member_b)))
        joiner.start()
        # Until the broker has b's JoinGroup, a's heartbeats may still say NONE.
        for _ in range(600):
            error = a.heartbeat(group, generation, member_a)
            if error == REBALANCE_IN_PROGRESS:
                break
            assert error == NONE
            joiner.join(0.1)
        assert error == REBALANCE_IN_PROGRESS
        assert joiner.is_alive()  # b waits for a
        rejoined = a.join(group, member_a)
        joiner.join(60)
        assert not joiner.is_alive()
        assert rejoined["error"] == NONE and result["error"] == NONE
        assert rejoined["generation"] == result["generation"] == generation + 1
        assert rejoined["leader"] == result["leader"]
        leader, follower = (a, b) if rejoined["leader"] == member_a else (b, a)
        leader_joined = rejoined if leader is a else result
        assert sorted(m["member_id"] for m in leader_joined["members"]) == sorted([member_a, member_b])
        follower_joined = result if leader is a else rejoined
        assert follower_joined["members"] == []
        # The follower's SyncGroup waits for the leader's; run it in a thread.
        plans = {member_a: assignment({"raw": [0]}), member_b: assignment({"raw": [1]})}
        follower_id = member_b if leader is a else member_a
        leader_id = member_a if leader is a else member_b
        synced = {}
        waiter = threading.Thread(target=lambda: synced.update(follower.sync(group, generation + 1, follower_id)))
        waiter.start()
        lead = leader.sync(group, generation + 1, leader_id, sorted(plans.items()))
        waiter.join(60)
        assert lead["error"] == NONE and lead["assignment"] == plans[leader_id]
        assert synced["error"] == NONE and synced["assignment"] == plans[follower_id]
        assert a.heartbeat(group, generation + 1, member_a) == NONE
        assert b.heartbeat(group, generation + 1, member_b) == NONE
        assert a.heartbeat(group, generation, member_a) == ILLEGAL_GENERATION
    finally:
        a.close()
        b.close()

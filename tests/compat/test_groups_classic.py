"""Classic consumer groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, OffsetCommit/OffsetFetch)
driven by confluent-kafka (librdkafka): partitions are shared and move when a member closes or
dies, committed offsets are where a new member resumes (also across a broker restart or kill),
and a static member that comes back within its session gets its partitions without a
rebalance."""

import uuid

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import ConsumerGroupState, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from group_helpers import (GROUP_OVERRIDES, Member, MemberProcess, balanced, classic_config,  # noqa: E402
                           close_all, committed, committed_after_restart, create_topic, describe_group,
                           poll_for, poll_until, produce)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


@pytest.mark.parametrize("strategy", ["range", "roundrobin"])
def test_three_members_share_six_partitions_and_a_closing_member_hands_its_share_over(broker, strategy):
    create_topic(broker.bootstrap, "shared", 6)
    group = unique("share")
    config = classic_config(broker.bootstrap, group, **{"partition.assignment.strategy": strategy})
    members = [Member("m%d" % i, config, ["shared"]) for i in range(3)]
    try:
        poll_until(members, lambda: balanced(members, 6, 2), "2 partitions for each of 3 members")
        description = describe_group(broker.bootstrap, group)
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == strategy
        assert sorted(m.client_id for m in description.members) == ["m0", "m1", "m2"]
        by_client = {m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                     for m in description.members}
        assert by_client == {m.name: m.partitions() for m in members}

        leaving = members.pop(1)
        leaving.close()  # LeaveGroup: the others rebalance at once, without waiting for a session
        poll_until(members, lambda: balanced(members, 6, 3), "the closed member's partitions to move")
        description = describe_group(broker.bootstrap, group)
        assert description.state == ConsumerGroupState.STABLE
        assert sorted(m.client_id for m in description.members) == ["m0", "m2"]
    finally:
        close_all(members)


def test_cooperative_sticky_members_keep_their_partitions_when_one_leaves(broker):
    create_topic(broker.bootstrap, "sticky", 6)
    group = unique("coop")
    config = classic_config(broker.bootstrap, group, **{"partition.assignment.strategy": "cooperative-sticky"})
    members = [Member("c%d" % i, config, ["sticky"]) for i in range(3)]
    try:
        poll_until(members, lambda: balanced(members, 6, 2), "2 partitions for each of 3 members")
        before = {m.name: set(m.partitions()) for m in members}
        revoked_before = {m.name: len(m.revoked) for m in members}
        leaving = members.pop(0)
        leaving.close()
        poll_until(members, lambda: balanced(members, 6, 3), "the leaver's partitions to move")
        for m in members:
            # Incremental rebalancing: survivors only gain partitions; nothing is revoked from them.
            assert before[m.name] <= set(m.partitions()), m
            assert all(not r for r in m.revoked[revoked_before[m.name]:]), m
    finally:
        close_all(members)


def test_killed_member_partitions_move_after_its_session_times_out(broker, tmp_path):
    create_topic(broker.bootstrap, "victim", 6)
    group = unique("kill")
    config = classic_config(broker.bootstrap, group)
    members = [Member("live%d" % i, config, ["victim"]) for i in range(2)]
    doomed = MemberProcess(broker.bootstrap, group, "victim", tmp_path / "doomed.log")
    try:
        poll_until(members, lambda: (all(len(m.partitions()) == 2 for m in members)
                                     and len(doomed.assignment()) == 2),
                   "2 partitions for each of 3 members (one in a child process)")
        held = set(members[0].partitions()) | set(members[1].partitions())
        assert held.isdisjoint(doomed.assignment())
        doomed.kill()  # SIGKILL: no LeaveGroup; only the session timeout tells the coordinator
        poll_until(members, lambda: balanced(members, 6, 3),
                   "the killed member's partitions to move once its session expired")
        description = describe_group(broker.bootstrap, group)
        assert sorted(m.client_id for m in description.members) == ["live0", "live1"]
        assert description.state == ConsumerGroupState.STABLE
    finally:
        doomed.kill()
        close_all(members)


def test_committed_offsets_are_where_the_group_resumes(broker):
    create_topic(broker.bootstrap, "resume", 6)
    produce(broker.bootstrap, "resume", 60, 6)  # 10 records per partition
    group = unique("resume")
    config = classic_config(broker.bootstrap, group)
    first = Member("first", config, ["resume"])
    try:
        poll_until([first], lambda: len(first.messages) >= 60, "all 60 records")
        # Commit a different offset per partition; partition 5 gets none.
        wanted = {p: p + 2 for p in range(5)}
        first.consumer.commit(offsets=[TopicPartition("resume", p, o, metadata="note-%d" % p)
                                       for p, o in wanted.items()], asynchronous=False)
        mine = first.consumer.committed([TopicPartition("resume", p) for p in range(6)], timeout=30)
        assert {tp.partition: tp.offset for tp in mine if tp.offset >= 0} == wanted
        assert {tp.partition: tp.metadata for tp in mine if tp.offset >= 0} == {p: "note-%d" % p for p in wanted}
    finally:
        first.close()

    got = committed(broker.bootstrap, group, "resume", 6)
    assert {p: o for p, o in got.items() if o >= 0} == wanted
    assert got[5] < 0  # nothing committed: OFFSET_INVALID

    second = Member("second", config, ["resume"])
    try:
        poll_until([second], lambda: len(second.messages) >= sum(10 - o for o in wanted.values()) + 10,
                   "the records after the committed offsets")
        seen = second.seen()
        for p in range(5):
            assert seen[p][0] == wanted[p], (p, seen[p])
            assert seen[p] == list(range(wanted[p], 10))
        assert seen[5] == list(range(10))  # auto.offset.reset=earliest where nothing was committed
        committed_now = second.commit_positions()
        assert committed_now == {p: 10 for p in range(6)}
    finally:
        second.close()
    assert committed(broker.bootstrap, group, "resume", 6) == {p: 10 for p in range(6)}


def test_static_member_rejoining_within_its_session_gets_its_partitions_without_a_rebalance(broker):
    create_topic(broker.bootstrap, "static", 6)
    group = unique("static")

    def static(instance):
        config = classic_config(broker.bootstrap, group, **{"group.instance.id": instance,
                                                            "session.timeout.ms": 30000,
                                                            "heartbeat.interval.ms": 500})
        return Member(instance, config, ["static"])

    a, b = static("a"), static("b")
    members = [a, b]
    try:
        poll_until(members, lambda: balanced(members, 6, 3), "3 partitions each for static members a and b")
        # Let any rebalance still in flight settle, then take b's picture.
        poll_for(members, 2)
        assert balanced(members, 6, 3)
        a_partitions, b_partitions = a.partitions(), b.partitions()
        b_calls = (list(b.assigned), list(b.revoked), list(b.lost))
        b_member_id = b.consumer.memberid()
        description = describe_group(broker.bootstrap, group)
        assert sorted(m.group_instance_id for m in description.members) == ["a", "b"]

        a.close()  # a static member does not send LeaveGroup: the group keeps its place
        members = [b]
        poll_for(members, 1)
        description = describe_group(broker.bootstrap, group)
        assert sorted(m.group_instance_id for m in description.members) == ["a", "b"]

        a2 = static("a")
        members = [a2, b]
        poll_until(members, lambda: len(a2.partitions()) == 3, "the returning static member's assignment")
        assert a2.partitions() == a_partitions
        # b heartbeats every 500 ms: a rebalance would reach it well within this window.
        poll_for(members, 5)
        assert b.partitions() == b_partitions
        assert (b.assigned, b.revoked, b.lost) == b_calls, b
        assert b.consumer.memberid() == b_member_id
        assert a2.partitions() == a_partitions
        description = describe_group(broker.bootstrap, group)
        assert description.state == ConsumerGroupState.STABLE
        by_instance = {m.group_instance_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                       for m in description.members}
        assert by_instance == {"a": a_partitions, "b": b_partitions}
    finally:
        close_all(members)


def test_committed_offsets_and_groups_survive_a_broker_restart_and_a_kill(broker):
    create_topic(broker.bootstrap, "kept", 3)
    produce(broker.bootstrap, "kept", 30, 3)  # 10 per partition
    group = unique("restart")
    config = classic_config(broker.bootstrap, group)
    member = Member("before", config, ["kept"])
    try:
        poll_until([member], lambda: len(member.messages) >= 30, "all 30 records")
        member.consumer.commit(offsets=[TopicPartition("kept", p, 3 + p) for p in range(3)], asynchronous=False)
    finally:
        member.close()
    assert committed(broker.bootstrap, group, "kept", 3) == {0: 3, 1: 4, 2: 5}

    assert broker.stop() == 0
    broker.start()  # same data directory, new port
    # (The coordinator may answer COORDINATOR_LOAD_IN_PROGRESS while it replays
    # __consumer_offsets; committed_after_restart retries on errors, never on wrong values.)
    assert committed_after_restart(broker.bootstrap, group, "kept", 3) == {0: 3, 1: 4, 2: 5}
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=60)
    assert not listed.errors, listed.errors
    states = {g.group_id: g.state for g in listed.valid}
    assert states.get(group) == ConsumerGroupState.EMPTY, states
    description = describe_group(broker.bootstrap, group)
    assert description.state == ConsumerGroupState.EMPTY and description.members == []

    config = classic_config(broker.bootstrap, group)
    after = Member("after", config, ["kept"])
    try:
        poll_until([after], lambda: len(after.messages) >= 7 + 6 + 5, "the records after the committed offsets")
        seen = after.seen()
        assert {p: seen[p][0] for p in range(3)} == {0: 3, 1: 4, 2: 5}
        assert after.commit_positions() == {0: 10, 1: 10, 2: 10}
    finally:
        after.close()

    # An acknowledged commit is durable: it survives SIGKILL of the broker as well.
    broker.kill()
    broker.start()
    assert committed_after_restart(broker.bootstrap, group, "kept", 3) == {0: 10, 1: 10, 2: 10}
    produce(broker.bootstrap, "kept", 3, 3, start=30)
    last = Member("last", classic_config(broker.bootstrap, group), ["kept"])
    try:
        poll_until([last], lambda: len(last.messages) >= 3, "the 3 new records")
        poll_for([last], 1)
        assert sorted((m.partition(), m.offset()) for m in last.messages) == [(0, 10), (1, 10), (2, 10)]
    finally:
        last.close()


def test_members_with_different_topics_get_only_their_topics(broker):
    """One group, members subscribed to different topics (as Kafka allows): the range assignor
    run by the leader only hands out a topic to members subscribed to it, so the coordinator
    must pass every member's own subscription metadata to the leader."""
    create_topic(broker.bootstrap, "left", 2)
    create_topic(broker.bootstrap, "right", 2)
    group = unique("mixed")
    config = classic_config(broker.bootstrap, group)
    both = Member("both", config, ["left", "right"])
    only_right = Member("only-right", config, ["right"])
    members = [both, only_right]
    try:
        def settled():
            a = sorted((tp.topic, tp.partition) for tp in both.consumer.assignment())
            b = sorted((tp.topic, tp.partition) for tp in only_right.consumer.assignment())
            return (set(a) | set(b)) == {("left", 0), ("left", 1), ("right", 0), ("right", 1)} \
                and not set(a) & set(b) and len(b) == 1
        poll_until(members, settled, "left to go to 'both' and right to be shared")
        assert all(tp.topic == "right" for tp in only_right.consumer.assignment())
        assert {("left", 0), ("left", 1)} <= {(tp.topic, tp.partition) for tp in both.consumer.assignment()}
    finally:
        close_all(members)


def test_group_commits_from_many_members_do_not_mix_up_groups(broker):
    """Two groups read the same topic independently; each one's commits are its own."""
    create_topic(broker.bootstrap, "twice", 2)
    produce(broker.bootstrap, "twice", 20, 2)
    g1, g2 = unique("one"), unique("two")
    m1 = Member("one", classic_config(broker.bootstrap, g1), ["twice"])
    m2 = Member("two", classic_config(broker.bootstrap, g2), ["twice"])
    try:
        poll_until([m1, m2], lambda: len(m1.messages) >= 20 and len(m2.messages) >= 20, "both groups to read all")
        m1.consumer.commit(offsets=[TopicPartition("twice", 0, 4), TopicPartition("twice", 1, 6)], asynchronous=False)
        m2.consumer.commit(offsets=[TopicPartition("twice", 0, 9)], asynchronous=False)
    finally:
        close_all([m1, m2])
    assert committed(broker.bootstrap, g1, "twice", 2) == {0: 4, 1: 6}
    got = committed(broker.bootstrap, g2, "twice", 2)
    assert got[0] == 9 and got[1] < 0

"""KIP-848 consumer groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe) driven by librdkafka
with group.protocol=consumer: the broker assigns partitions with its own assignors, moves them
when a member leaves or dies, and committed offsets are where a new member resumes."""

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import ConsumerGroupState, ConsumerGroupType, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from group_helpers import (GROUP_OVERRIDES, Member, MemberProcess, balanced, close_all,  # noqa: E402
                           committed, consumer_protocol_config, create_topic, describe_group,
                           poll_for, poll_until, produce)


def _libversion():
    return tuple(int(x) for x in confluent_kafka.libversion()[0].split(".")[:2])


pytestmark = [
    pytest.mark.broker_overrides(*GROUP_OVERRIDES),
    pytest.mark.skipif(_libversion() < (2, 4), reason="group.protocol=consumer needs librdkafka >= 2.4 (have %s)"
                       % confluent_kafka.libversion()[0]),
]


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_consumer_protocol_members_share_partitions_commit_and_resume(broker, assignor):
    create_topic(broker.bootstrap, "kip848", 6)
    produce(broker.bootstrap, "kip848", 60, 6)  # 10 per partition
    group = "next-gen-" + assignor
    config = consumer_protocol_config(broker.bootstrap, group, **{"group.remote.assignor": assignor})
    members = [Member("n%d" % i, config, ["kip848"]) for i in range(2)]
    try:
        poll_until(members, lambda: balanced(members, 6, 3), "3 partitions for each of 2 members")
        description = describe_group(broker.bootstrap, group)
        assert description.type == ConsumerGroupType.CONSUMER
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == assignor
        by_client = {m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                     for m in description.members}
        assert by_client == {m.name: m.partitions() for m in members}

        # Every record is read by whichever member owns its partition; commit 7 per partition.
        poll_until(members, lambda: {(m.partition(), m.offset()) for x in members for m in x.messages}
                   >= {(p, o) for p in range(6) for o in range(10)}, "all 60 records")
        for m in members:
            m.consumer.commit(offsets=[TopicPartition("kip848", p, 7) for p in m.partitions()], asynchronous=False)
        assert committed(broker.bootstrap, group, "kip848", 6) == {p: 7 for p in range(6)}

        leaving = members.pop()
        leaving.close()  # a heartbeat with member epoch -1: the partitions move at once
        poll_until(members, lambda: balanced(members, 6, 6), "the leaver's partitions to move")
        description = describe_group(broker.bootstrap, group)
        assert [m.client_id for m in description.members] == ["n0"]
    finally:
        close_all(members)

    description = describe_group(broker.bootstrap, group)
    assert description.state == ConsumerGroupState.EMPTY and description.members == []
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}, request_timeout=30).result(timeout=60)
    assert group in [g.group_id for g in listed.valid]
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}, request_timeout=30).result(timeout=60)
    assert group not in [g.group_id for g in listed.valid]

    again = Member("again", config, ["kip848"])
    try:
        poll_until([again], lambda: len(again.messages) >= 18, "the 3 records after each committed offset")
        poll_for([again], 1)
        seen = again.seen()
        assert seen == {p: [7, 8, 9] for p in range(6)}
    finally:
        again.close()


def test_consumer_protocol_member_added_later_gets_a_share(broker):
    create_topic(broker.bootstrap, "growing848", 4)
    group = "next-gen-grow"
    config = consumer_protocol_config(broker.bootstrap, group)
    first = Member("first", config, ["growing848"])
    members = [first]
    try:
        poll_until(members, lambda: first.partitions() == [0, 1, 2, 3], "all 4 partitions for the only member")
        epoch_one = len(first.assigned)
        second = Member("second", config, ["growing848"])
        members.append(second)
        # The broker revokes 2 partitions from the first member (it acknowledges on its next
        # heartbeat) before it hands them to the second one: never owned twice.
        def no_overlap_and_balanced():
            assert not set(first.partitions()) & set(second.partitions()), members
            return balanced(members, 4, 2)
        poll_until(members, no_overlap_and_balanced, "2 partitions each")
        assert len(first.revoked) >= 1  # the first member gave two partitions up...
        assert all(not a for a in first.assigned[epoch_one:])  # ...and was handed nothing new
    finally:
        close_all(members)


def test_consumer_protocol_killed_member_is_expired_after_the_session_timeout(broker, tmp_path):
    # The broker runs with group.consumer.session.timeout.ms=6000 (GROUP_OVERRIDES).
    create_topic(broker.bootstrap, "dies848", 4)
    group = "next-gen-kill"
    config = consumer_protocol_config(broker.bootstrap, group)
    live = Member("live", config, ["dies848"])
    doomed = MemberProcess(broker.bootstrap, group, "dies848", tmp_path / "doomed.log",
                           settings=["group.protocol=consumer", "session.timeout.ms=", "heartbeat.interval.ms="])
    try:
        poll_until([live], lambda: len(live.partitions()) == 2 and len(doomed.assignment()) == 2,
                   "2 partitions each (one member in a child process)")
        doomed.kill()
        poll_until([live], lambda: live.partitions() == [0, 1, 2, 3],
                   "the killed member's partitions after its session expired")
        description = describe_group(broker.bootstrap, group)
        assert [m.client_id for m in description.members] == ["live"]
    finally:
        doomed.kill()
        live.close()


def test_consumer_protocol_regex_subscription_is_resolved_by_the_broker(broker):
    """KIP-848 sends a subscription regex (RE2) to the coordinator, which resolves it against
    the topics it knows and assigns their partitions."""
    for name in ("rx-a", "rx-b", "other"):
        create_topic(broker.bootstrap, name, 2)
    config = consumer_protocol_config(broker.bootstrap, "next-gen-regex")
    members = [Member("r%d" % i, config, ["^rx-.*"]) for i in range(2)]
    try:
        def held():
            return sorted((tp.topic, tp.partition) for m in members for tp in m.consumer.assignment())
        poll_until(members, lambda: held() == [("rx-a", 0), ("rx-a", 1), ("rx-b", 0), ("rx-b", 1)]
                   and all(len(m.partitions()) == 2 for m in members),
                   "the 4 partitions of rx-a and rx-b, 2 per member")
    finally:
        close_all(members)

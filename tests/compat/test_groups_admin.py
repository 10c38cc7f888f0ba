"""Group administration through AdminClients: ListGroups (with state and type filters),
DescribeGroups, DeleteGroups, OffsetFetch/OffsetCommit as list/alter group offsets
(confluent-kafka), and OffsetDelete plus kafka-python's views of the same (KafkaAdminClient)."""

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException,  # noqa: E402
                             TopicPartition)
from confluent_kafka.admin import AdminClient  # noqa: E402

from group_helpers import (GROUP_OVERRIDES, Member, balanced, classic_config, close_all,  # noqa: E402
                           committed, create_topic, describe_group, poll_until, produce)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)


def admin_of(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def listed(admin, **kwargs):
    result = admin.list_consumer_groups(request_timeout=30, **kwargs).result(timeout=60)
    assert not result.errors, result.errors
    return {g.group_id: g for g in result.valid}


def error_name(future):
    with pytest.raises(KafkaException) as info:
        future.result(timeout=60)
    return info.value.args[0].name()


def alter_offsets(admin, group, offsets):
    """alter_consumer_group_offsets; returns {partition: error name or None}. A request-level
    error counts for every partition."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o, **({"metadata": m} if m is not None else {}))
                                                   for (t, p, o, m) in offsets])
    future = admin.alter_consumer_group_offsets([request], request_timeout=30)[group]
    try:
        result = future.result(timeout=60)
    except KafkaException as e:
        return {p: e.args[0].name() for (_, p, _, _) in offsets}
    return {tp.partition: (tp.error.name() if tp.error else None) for tp in result.topic_partitions}


def list_offsets(admin, group, partitions=None):
    request = ConsumerGroupTopicPartitions(group, partitions)
    result = admin.list_consumer_group_offsets([request], request_timeout=30)[group].result(timeout=60)
    partitions = result.topic_partitions or []
    for tp in partitions:
        assert tp.error is None, tp
    return {(tp.topic, tp.partition): (tp.offset, tp.metadata) for tp in partitions}


def test_list_describe_and_delete_groups(broker):
    create_topic(broker.bootstrap, "adm", 6)
    admin = admin_of(broker)

    # An empty group whose member committed and left.
    left = Member("leaver", classic_config(broker.bootstrap, "grp-left"), ["adm"])
    try:
        poll_until([left], lambda: len(left.partitions()) == 6, "the only member's assignment")
        left.consumer.commit(offsets=[TopicPartition("adm", 0, 0)], asynchronous=False)
    finally:
        left.close()
    # A "simple" group: offsets committed from outside, no member ever joined.
    assert alter_offsets(admin, "grp-simple", [("adm", 1, 1, None)]) == {1: None}
    # A stable group with two members.
    config = classic_config(broker.bootstrap, "grp-active", **{"partition.assignment.strategy": "range"})
    members = [Member("act%d" % i, config, ["adm"]) for i in range(2)]
    try:
        poll_until(members, lambda: balanced(members, 6, 3), "3 partitions each")

        everything = listed(admin)
        assert {"grp-left", "grp-simple", "grp-active"} <= set(everything)
        assert everything["grp-active"].state == ConsumerGroupState.STABLE
        assert everything["grp-left"].state == ConsumerGroupState.EMPTY
        assert everything["grp-simple"].state == ConsumerGroupState.EMPTY
        assert not everything["grp-active"].is_simple_consumer_group
        assert not everything["grp-left"].is_simple_consumer_group
        assert everything["grp-simple"].is_simple_consumer_group
        stable = listed(admin, states={ConsumerGroupState.STABLE})
        assert "grp-active" in stable and "grp-left" not in stable and "grp-simple" not in stable
        empty = listed(admin, states={ConsumerGroupState.EMPTY})
        assert {"grp-left", "grp-simple"} <= set(empty) and "grp-active" not in empty

        futures = admin.describe_consumer_groups(["grp-active", "grp-left"], request_timeout=30)
        active = futures["grp-active"].result(timeout=60)
        assert active.state == ConsumerGroupState.STABLE
        assert active.partition_assignor == "range"
        assert not active.is_simple_consumer_group
        assert active.coordinator.id == 1
        assert sorted(m.client_id for m in active.members) == ["act0", "act1"]
        assert sorted(m.member_id for m in active.members) == sorted(x.consumer.memberid() for x in members)
        assert all(m.host for m in active.members)
        parts = sorted(tp.partition for m in active.members for tp in m.assignment.topic_partitions)
        assert parts == list(range(6))
        assert all(tp.topic == "adm" for m in active.members for tp in m.assignment.topic_partitions)
        left_description = futures["grp-left"].result(timeout=60)
        assert left_description.state == ConsumerGroupState.EMPTY and left_description.members == []

        # A group with members cannot be deleted.
        assert error_name(admin.delete_consumer_groups(["grp-active"], request_timeout=30)["grp-active"]) \
            == "NON_EMPTY_GROUP"
        assert "grp-active" in listed(admin)
    finally:
        close_all(members)

    assert describe_group(broker.bootstrap, "grp-active").state == ConsumerGroupState.EMPTY
    futures = admin.delete_consumer_groups(["grp-active", "grp-left", "grp-simple"], request_timeout=30)
    for f in futures.values():
        f.result(timeout=60)
    remaining = listed(admin)
    assert not {"grp-left", "grp-simple", "grp-active"} & set(remaining)
    # Deleting a group deletes its offsets.
    assert all(o < 0 for o in committed(broker.bootstrap, "grp-left", "adm", 6).values())
    assert all(o < 0 for o in committed(broker.bootstrap, "grp-simple", "adm", 6).values())
    assert list_offsets(admin, "grp-left") == {}
    assert error_name(admin.delete_consumer_groups(["no-such-group"], request_timeout=30)["no-such-group"]) \
        == "GROUP_ID_NOT_FOUND"


def test_alter_and_list_group_offsets(broker):
    create_topic(broker.bootstrap, "alt", 3)
    produce(broker.bootstrap, "alt", 30, 3)  # 10 per partition
    admin = admin_of(broker)
    group = "grp-alter"

    assert alter_offsets(admin, group, [("alt", 0, 3, "zero"), ("alt", 1, 5, None)]) == {0: None, 1: None}
    got = list_offsets(admin, group)
    assert sorted(got) == [("alt", 0), ("alt", 1)]
    assert got[("alt", 0)] == (3, "zero")
    assert got[("alt", 1)][0] == 5 and got[("alt", 1)][1] in ("", None)  # librdkafka shows "" as None
    asked = list_offsets(admin, group, [TopicPartition("alt", p) for p in range(3)])
    assert asked[("alt", 0)][0] == 3 and asked[("alt", 1)][0] == 5
    assert asked[("alt", 2)][0] < 0  # nothing committed
    assert alter_offsets(admin, group, [("alt", 0, 4, None)]) == {0: None}
    assert list_offsets(admin, group)[("alt", 0)][0] == 4

    member = Member("alt-member", classic_config(broker.bootstrap, group), ["alt"])
    try:
        poll_until([member], lambda: len(member.messages) >= 6 + 5 + 10, "the records after the altered offsets")
        seen = member.seen()
        assert {p: seen[p][0] for p in range(3)} == {0: 4, 1: 5, 2: 0}
        # While the group has members, a commit from outside the group is refused, as in Kafka.
        assert alter_offsets(admin, group, [("alt", 0, 9, None)]) == {0: "UNKNOWN_MEMBER_ID"}
        assert list_offsets(admin, group)[("alt", 0)][0] == 4
    finally:
        member.close()
    # Empty again: allowed.
    assert alter_offsets(admin, group, [("alt", 0, 9, None)]) == {0: None}
    assert committed(broker.bootstrap, group, "alt", 3)[0] == 9
    # Unknown topics are refused.
    assert alter_offsets(admin, group, [("no-such-topic", 0, 1, None)]) == {0: "UNKNOWN_TOPIC_OR_PART"}


def test_offset_delete_and_kafka_python_group_views(broker):
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KpTopicPartition
    from kafka import errors as Errors

    create_topic(broker.bootstrap, "od", 2)
    create_topic(broker.bootstrap, "od-other", 1)
    group = "grp-od"
    member = Member("od-member", classic_config(broker.bootstrap, group, **{"partition.assignment.strategy": "range"}),
                    ["od"])
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        poll_until([member], lambda: member.partitions() == [0, 1], "the only member's assignment")
        # Commits for the subscribed topic, and for a topic the group does not subscribe to.
        member.consumer.commit(offsets=[TopicPartition("od", 0, 1), TopicPartition("od", 1, 2),
                                        TopicPartition("od-other", 0, 5)], asynchronous=False)

        groups = {g["group_id"]: g for g in kp.list_groups()}
        assert groups[group]["protocol_type"] == "consumer"
        assert groups[group].get("group_state", "Stable") == "Stable"
        described = kp.describe_groups([group])[group]
        assert described["error"] is None
        assert described["group_state"] == "Stable"
        assert described["protocol_type"] == "consumer" and described["protocol_data"] == "range"
        assert [m["client_id"] for m in described["members"]] == ["od-member"]
        offsets = kp.list_group_offsets(group)[group]
        assert {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()} == {
            ("od", 0): 1, ("od", 1): 2, ("od-other", 0): 5}

        # OffsetDelete: refused for a topic the (non-empty) group subscribes to; fine for others.
        result = kp.delete_group_offsets(group, [KpTopicPartition("od", 0)])
        assert result == {KpTopicPartition("od", 0): Errors.GroupSubscribedToTopicError}
        result = kp.delete_group_offsets(group, [KpTopicPartition("od-other", 0)])
        assert result == {KpTopicPartition("od-other", 0): Errors.NoError}
        offsets = kp.list_group_offsets(group)[group]
        assert {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()} == {("od", 0): 1, ("od", 1): 2}
    finally:
        member.close()
    try:
        result = kp.delete_group_offsets(group, [KpTopicPartition("od", 0)])
        assert result == {KpTopicPartition("od", 0): Errors.NoError}
        offsets = kp.list_group_offsets(group)[group]
        assert {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()} == {("od", 1): 2}
        assert committed(broker.bootstrap, group, "od", 2)[0] < 0
        with pytest.raises(Errors.GroupIdNotFoundError):
            kp.delete_group_offsets("no-such-group", [KpTopicPartition("od", 0)])
        # kafka-python's DeleteGroups view: the empty group goes.
        assert kp.delete_groups([group]) == {group: "OK"}
        assert group not in {g["group_id"] for g in kp.list_groups()}
    finally:
        kp.close()

"""The `gregor` admin tools (topics, configs, groups, cluster) against a Gregor broker, checked
through a third-party client: what `gregor topics create` makes is what confluent-kafka's
AdminClient sees, a group of confluent-kafka consumers shows in `gregor groups describe` with
its members and lag, and `gregor groups reset-offsets --execute` moves that group's committed
offsets as confluent-kafka reads them."""

import json
import subprocess

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka.admin import AdminClient, ConfigResource  # noqa: E402

from group_helpers import (GROUP_OVERRIDES, Member, classic_config, close_all, committed,  # noqa: E402
                           consumer_protocol_config, create_topic, poll_until, produce)

pytestmark = pytest.mark.broker_overrides(*GROUP_OVERRIDES)


def gregor(binary, broker, *args, expect=0):
    """Runs `gregor <args> --bootstrap-server <broker>`; checks the exit code; returns
    (stdout, stderr)."""
    proc = subprocess.run([binary, *args, "--bootstrap-server", broker.bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout, proc.stderr


def gregor_json(binary, broker, *args):
    out, _ = gregor(binary, broker, *args, "--output", "json")
    return json.loads(out)


def test_topics_created_by_gregor_are_seen_by_confluent_kafka(gregor_binary, broker):
    out, _ = gregor(gregor_binary, broker, "topics", "create", "--topic", "made-by-gregor",
                    "--partitions", "4", "--replication-factor", "1",
                    "--config", "retention.ms=123456", "--config", "cleanup.policy=compact")
    assert out == "Created topic made-by-gregor.\n"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    metadata = admin.list_topics(timeout=30)
    topic = metadata.topics["made-by-gregor"]
    assert topic.error is None
    assert sorted(topic.partitions) == [0, 1, 2, 3]
    assert all(p.replicas == [1] and p.isrs == [1] for p in topic.partitions.values())

    resource = ConfigResource(ConfigResource.Type.TOPIC, "made-by-gregor")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "123456"
    assert configs["cleanup.policy"].value == "compact"

    # gregor configs alter is seen too; gregor topics alter adds partitions.
    gregor(gregor_binary, broker, "configs", "alter", "--entity-type", "topics",
           "--entity-name", "made-by-gregor", "--add-config", "retention.ms=999",
           "--delete-config", "cleanup.policy")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "999"
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].is_default
    gregor(gregor_binary, broker, "topics", "alter", "--topic", "made-by-gregor", "--partitions", "6")
    assert len(admin.list_topics(timeout=30).topics["made-by-gregor"].partitions) == 6

    # And a topic confluent-kafka creates is described by gregor.
    create_topic(broker.bootstrap, "made-by-confluent", 3)
    described = gregor_json(gregor_binary, broker, "topics", "describe", "--topic", "made-by-confluent")
    assert described[0]["partition_count"] == 3
    assert [p["leader"] for p in described[0]["partitions"]] == [1, 1, 1]

    gregor(gregor_binary, broker, "topics", "delete", "--topic", "made-by-gregor")
    assert "made-by-gregor" not in admin.list_topics(timeout=30).topics
    _, err = gregor(gregor_binary, broker, "topics", "describe", "--topic", "made-by-gregor", expect=1)
    assert err.strip() == "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'made-by-gregor' does not exist"


def test_confluent_group_in_gregor_describe_and_reset(gregor_binary, broker):
    create_topic(broker.bootstrap, "lagging", 2)
    produce(broker.bootstrap, "lagging", 20, 2)  # 10 records per partition
    members = [Member("py-consumer-%d" % i, classic_config(broker.bootstrap, "py-group"), ["lagging"])
               for i in range(2)]
    try:
        poll_until(members, lambda: all(len(m.partitions()) == 1 for m in members),
                   "both members to own one partition")
        # Distinct records: a member that briefly owned both partitions before the second
        # joined may have read some of the other's too (nothing is committed yet).
        poll_until(members, lambda: len({(msg.partition(), msg.offset()) for m in members
                                         for msg in m.messages}) == 20, "all 20 records")
        # Each member commits 6 of its partition's 10 records: lag 4 per partition.
        from confluent_kafka import TopicPartition
        for m in members:
            p = m.partitions()[0]
            m.consumer.commit(offsets=[TopicPartition("lagging", p, 6)], asynchronous=False)

        described = gregor_json(gregor_binary, broker, "groups", "describe", "--group", "py-group")
        rows = {r["partition"]: r for r in described["partitions"]}
        assert sorted(rows) == [0, 1]
        by_member = {}
        for p, row in rows.items():
            assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (6, 10, 4), row
            assert row["client_id"] in ("py-consumer-0", "py-consumer-1")
            assert row["host"].endswith("127.0.0.1")
            by_member[row["client_id"]] = p
        assert len(by_member) == 2  # each consumer owns one partition

        members_view = gregor_json(gregor_binary, broker, "groups", "describe", "--group", "py-group", "--members")
        assert members_view["state"] == "Stable"
        assert sorted(m["client_id"] for m in members_view["members"]) == ["py-consumer-0", "py-consumer-1"]
        assert sorted(len(m["assignment"]) for m in members_view["members"]) == [1, 1]

        table, _ = gregor(gregor_binary, broker, "groups", "describe", "--group", "py-group")
        header = table.splitlines()[0].split()
        assert header == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                          "CONSUMER-ID", "HOST", "CLIENT-ID"]

        listed = gregor_json(gregor_binary, broker, "groups", "list", "--state", "Stable")
        assert [g["group"] for g in listed] == ["py-group"]

        # While the consumers run, a reset is refused.
        _, err = gregor(gregor_binary, broker, "groups", "reset-offsets", "--group", "py-group",
                        "--topic", "lagging", "--to-earliest", "--execute", expect=1)
        assert err.startswith("error: NON_EMPTY_GROUP: "), err
    finally:
        close_all(members)

    # Once they are gone, a dry run changes nothing, --execute moves the offsets.
    plan = gregor_json(gregor_binary, broker, "groups", "reset-offsets", "--group", "py-group",
                       "--topic", "lagging", "--to-offset", "2")
    assert [p["new_offset"] for p in plan["partitions"]] == [2, 2]
    assert committed(broker.bootstrap, "py-group", "lagging", 2) == {0: 6, 1: 6}
    gregor(gregor_binary, broker, "groups", "reset-offsets", "--group", "py-group",
           "--topic", "lagging:1", "--to-earliest", "--execute")
    gregor(gregor_binary, broker, "groups", "reset-offsets", "--group", "py-group",
           "--topic", "lagging:0", "--shift-by", "3", "--execute")
    assert committed(broker.bootstrap, "py-group", "lagging", 2) == {0: 9, 1: 0}

    # A restarted confluent-kafka consumer resumes from the reset offsets.
    member = Member("py-consumer-again", classic_config(broker.bootstrap, "py-group"), ["lagging"])
    try:
        poll_until([member], lambda: len(member.messages) == 11, "1 + 10 records after the reset")
        starts = {}
        for msg in member.messages:
            starts.setdefault(msg.partition(), msg.offset())
        assert starts == {0: 9, 1: 0}
    finally:
        close_all([member])

    out, _ = gregor(gregor_binary, broker, "groups", "delete", "--group", "py-group")
    assert out == "Deletion of requested consumer groups ('py-group') was successful.\n"
    _, err = gregor(gregor_binary, broker, "groups", "describe", "--group", "py-group", expect=1)
    assert err.strip() == "error: GROUP_ID_NOT_FOUND: consumer group 'py-group' does not exist"


def test_kip848_group_members_and_assignments(gregor_binary, broker):
    """A group of the new consumer protocol (group.protocol=consumer) is described through
    ConsumerGroupDescribe: members with their assignments, so lag rows have owners."""
    create_topic(broker.bootstrap, "kip848", 2)
    produce(broker.bootstrap, "kip848", 4, 2)
    members = [Member("new-consumer-%d" % i, consumer_protocol_config(broker.bootstrap, "new-group"), ["kip848"])
               for i in range(2)]
    try:
        poll_until(members, lambda: all(len(m.partitions()) == 1 for m in members),
                   "both members to own one partition")
        state = gregor_json(gregor_binary, broker, "groups", "describe", "--group", "new-group", "--state")
        assert (state["type"], state["members"]) == ("consumer", 2), state
        view = gregor_json(gregor_binary, broker, "groups", "describe", "--group", "new-group", "--members")
        owned = sorted((m["client_id"], [a["partition"] for a in m["assignment"]]) for m in view["members"])
        assert [c for c, _ in owned] == ["new-consumer-0", "new-consumer-1"]
        assert sorted(p for _, ps in owned for p in ps) == [0, 1]
        offsets = gregor_json(gregor_binary, broker, "groups", "describe", "--group", "new-group")
        assert sorted((r["partition"], r["log_end_offset"]) for r in offsets["partitions"]) == [(0, 2), (1, 2)]
        assert all(r["client_id"].startswith("new-consumer-") for r in offsets["partitions"])
        _, err = gregor(gregor_binary, broker, "groups", "reset-offsets", "--group", "new-group",
                        "--topic", "kip848", "--to-earliest", expect=1)
        assert err.startswith("error: NON_EMPTY_GROUP: "), err
    finally:
        close_all(members)


def test_cluster_describe_matches_confluent_metadata(gregor_binary, broker):
    described = gregor_json(gregor_binary, broker, "cluster", "describe")
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30)
    assert described["cluster_id"] == metadata.cluster_id
    assert described["controller"] == metadata.controller_id
    assert [(b["id"], "%s:%d" % (b["host"], b["port"])) for b in described["brokers"]] == \
        [(b.id, "%s:%d" % (b.host, b.port)) for b in metadata.brokers.values()]


def test_groups_delete_offsets_removes_commits_of_unconsumed_topics(gregor_binary, broker):
    """`gregor groups delete-offsets` (kafka-consumer-groups --delete-offsets): refused with
    GROUP_SUBSCRIBED_TO_TOPIC while a member consumes the topic; afterwards the commits of the
    named partitions are gone, as confluent-kafka reads them, and the others stay."""
    create_topic(broker.bootstrap, "del-offsets", 2)
    produce(broker.bootstrap, "del-offsets", 4, 2)
    group = "del-offsets-group"
    member = Member("m", classic_config(broker.bootstrap, group), ["del-offsets"])
    try:
        poll_until([member], lambda: len(member.partitions()) == 2, "the member's assignment")
        member.consumer.commit(offsets=[confluent_kafka.TopicPartition("del-offsets", 0, 1),
                                        confluent_kafka.TopicPartition("del-offsets", 1, 2)],
                               asynchronous=False)
        _, err = gregor(gregor_binary, broker, "groups", "delete-offsets", "--group", group,
                        "--topic", "del-offsets", expect=1)
        assert err.startswith("error: GROUP_SUBSCRIBED_TO_TOPIC"), err
    finally:
        close_all([member])
    assert committed(broker.bootstrap, group, "del-offsets", 2) == {0: 1, 1: 2}
    out, _ = gregor(gregor_binary, broker, "groups", "delete-offsets", "--group", group,
                    "--topic", "del-offsets:0")
    assert "1 partition(s)" in out, out
    after = committed(broker.bootstrap, group, "del-offsets", 2)
    assert after[1] == 2 and after[0] < 0, after
    _, err = gregor(gregor_binary, broker, "groups", "delete-offsets", "--group", "no-such-group",
                    "--topic", "del-offsets", expect=1)
    assert err.startswith("error: GROUP_ID_NOT_FOUND"), err

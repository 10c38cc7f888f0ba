"""aiokafka (pure-Python asyncio client) produces and consumes against Gregor."""

import asyncio

import pytest

aiokafka = pytest.importorskip("aiokafka")


def test_aiokafka_round_trip(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("aio", num_partitions=2, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                    compression_type="gzip")
        await producer.start()
        try:
            for i in range(40):
                await producer.send_and_wait("aio", key=b"k%d" % i, value=b"v%d" % i, partition=i % 2,
                                             headers=[("h", b"1"), ("h", b"2")])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition("aio", 0), TopicPartition("aio", 1)])
            await consumer.seek_to_beginning()
            got = []
            while len(got) < 40:
                batches = await consumer.getmany(timeout_ms=2000)
                for records in batches.values():
                    got.extend(records)
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sorted((m.partition, m.offset) for m in got) == sorted((i % 2, i // 2) for i in range(40))
    assert all(list(m.headers) == [("h", b"1"), ("h", b"2")] for m in got)


@pytest.mark.broker_overrides("group.initial.rebalance.delay.ms=0")
def test_aiokafka_group_consumes_commits_and_resumes(broker):
    """aiokafka's own group coordinator client (its connection per coordinator, JoinGroup,
    SyncGroup, Heartbeat, OffsetCommit/Fetch) against Gregor: two members split the partitions,
    commit, and a later member of the same group resumes exactly after the commits."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def consume(consumers, want, seen):
        deadline = asyncio.get_running_loop().time() + 40
        while len(seen) < want and asyncio.get_running_loop().time() < deadline:
            for c in consumers:
                for tp, records in (await c.getmany(timeout_ms=200)).items():
                    seen.extend((tp.partition, r.offset) for r in records)

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("aiog", num_partitions=4, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(80):
                await producer.send("aiog", value=b"v%d" % i, partition=i % 4)
            await producer.flush()
        finally:
            await producer.stop()
        members = [AIOKafkaConsumer("aiog", bootstrap_servers=broker.bootstrap, group_id="aio-group",
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    session_timeout_ms=10000, heartbeat_interval_ms=500)
                   for _ in range(2)]
        for m in members:
            await m.start()
        seen = []
        try:
            await consume(members, 80, seen)
            assignments = [sorted(tp.partition for tp in m.assignment()) for m in members]
            for m in members:
                await m.commit()
        finally:
            for m in members:
                await m.stop()
        # A new member of the group starts after the commits: nothing is left to read, and the
        # committed positions are the log ends.
        late = AIOKafkaConsumer("aiog", bootstrap_servers=broker.bootstrap, group_id="aio-group",
                                auto_offset_reset="earliest", enable_auto_commit=False)
        await late.start()
        try:
            extra = []
            deadline = asyncio.get_running_loop().time() + 30
            while len(late.assignment()) < 4 and asyncio.get_running_loop().time() < deadline:
                await late.getmany(timeout_ms=200)
            for _ in range(3):
                for tp, records in (await late.getmany(timeout_ms=200)).items():
                    extra.extend((tp.partition, r.offset) for r in records)
            committed = {p: await late.committed(TopicPartition("aiog", p)) for p in range(4)}
        finally:
            await late.stop()
        return seen, assignments, extra, committed

    seen, assignments, extra, committed = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert sorted(seen) == sorted((i % 4, i // 4) for i in range(80))
    assert sorted(sum(assignments, [])) == [0, 1, 2, 3] and all(len(a) == 2 for a in assignments)
    assert extra == []
    assert committed == {p: 20 for p in range(4)}

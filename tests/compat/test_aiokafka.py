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

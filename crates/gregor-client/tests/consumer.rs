//! The consumer against an in-process broker: assign/seek/poll, pause/resume, committed
//! offsets, a two-member group with rebalance listeners, commit and close semantics.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_client::Cluster;
use gregor_client::config::{CommonConfig, ConsumerConfig};
use gregor_client::consumer::{Consumer, ConsumerRecord, RebalanceListener, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder, RecordHeader};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{GroupId, LeaveGroupRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;

/// Produces `count` records `"{partition}-{i}"` (key `k{i}`, a header) to one partition with a
/// raw Produce request, in batches of 10 with `compression`.
async fn produce(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    count: usize,
    compression: Compression,
) {
    let info = cluster.topic(topic).await.unwrap();
    let leader = info.partitions[partition as usize].leader;
    let connection = cluster.connection(leader).await.unwrap();
    for chunk in (0..count).collect::<Vec<_>>().chunks(10) {
        let mut builder = RecordBatchBuilder::new(0, compression);
        for (n, i) in chunk.iter().enumerate() {
            builder.append(
                n as i64,
                1_700_000_000_000 + *i as i64,
                Some(format!("k{i}").as_bytes()),
                Some(format!("{partition}-{i}").as_bytes()),
                &[RecordHeader::new(
                    Bytes::from_static(b"h"),
                    Some(Bytes::from(i.to_string())),
                )],
            );
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(builder.build().unwrap()))),
                    ]),
            ]);
        let response = connection.send(&request, 9).await.unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
}

fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
    ];
    pairs.extend_from_slice(extra);
    ConsumerConfig::from_properties(pairs).unwrap()
}

/// Polls until `n` records came (or 20 s passed).
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && std::time::Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (topic.to_string(), partition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_seek_poll_pause_resume() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    produce(&cluster, "t", 0, 35, Compression::Lz4).await;
    produce(&cluster, "t", 1, 20, Compression::None).await;

    let mut consumer = Consumer::new(config(&bootstrap, &[("max.poll.records", "7")])).unwrap();
    consumer.assign(vec![tp("t", 0), tp("t", 1)]).await.unwrap();
    let records = poll_n(&mut consumer, 55).await;
    assert_eq!(records.len(), 55);
    for p in 0..2 {
        let mine: Vec<&ConsumerRecord> = records.iter().filter(|r| r.partition == p).collect();
        for (i, r) in mine.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "offsets in order");
            assert_eq!(r.value.as_deref(), Some(format!("{p}-{i}").as_bytes()));
            assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
            assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
            assert_eq!(
                r.headers,
                vec![("h".to_string(), Some(Bytes::from(i.to_string())))]
            );
        }
    }
    assert_eq!(consumer.position("t", 0).await.unwrap(), 35);

    // max.poll.records bounds one poll.
    consumer.seek("t", 0, 3).unwrap();
    consumer.seek("t", 1, 20).unwrap();
    let batch = poll_n(&mut consumer, 1).await;
    assert!(batch.len() <= 7 && batch[0].offset == 3 && batch[0].partition == 0);

    // A paused partition yields nothing until resumed.
    consumer.pause(&[tp("t", 0)]).unwrap();
    assert_eq!(consumer.paused(), vec![tp("t", 0)]);
    produce(&cluster, "t", 1, 5, Compression::Gzip).await;
    let got = poll_n(&mut consumer, 5).await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(got.len(), 5);
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    consumer.resume(&[tp("t", 0)]).unwrap();
    let rest = poll_n(&mut consumer, 35 - 3 - batch.len()).await;
    assert_eq!(rest.first().unwrap().offset, 3 + batch.len() as i64);
    assert_eq!(rest.last().unwrap().offset, 34);

    // seek_to_beginning / seek_to_end.
    consumer.seek_to_beginning(&[tp("t", 1)]).await.unwrap();
    assert_eq!(consumer.position("t", 1).await.unwrap(), 0);
    consumer.seek_to_end(&[]).await.unwrap();
    assert_eq!(consumer.position("t", 1).await.unwrap(), 25);
    assert!(
        consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );

    // Out of range: auto.offset.reset=earliest brings it back to the start.
    consumer.seek("t", 1, 1000).unwrap();
    let again = poll_n(&mut consumer, 25).await;
    assert_eq!(again.first().unwrap().offset, 0);
    assert_eq!(again.len(), 25);
    consumer.close().await.unwrap();
    assert!(consumer.poll(Duration::ZERO).await.is_err());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_resume_and_latest_default() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    produce(&cluster, "c", 0, 30, Compression::Zstd).await;

    let props = [("group.id", "g1"), ("enable.auto.commit", "false")];
    let mut consumer = Consumer::new(config(&bootstrap, &props)).unwrap();
    consumer.assign(vec![tp("c", 0)]).await.unwrap();
    assert_eq!(
        consumer.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        None
    );
    let first = poll_n(&mut consumer, 10).await;
    assert!(first.len() >= 10);
    consumer
        .commit_sync(Some(HashMap::from([(tp("c", 0), 12)])))
        .await
        .unwrap();
    assert_eq!(
        consumer.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        Some(12)
    );
    consumer.close().await.unwrap();

    // A new consumer in the group starts at the committed offset, not at auto.offset.reset.
    let mut consumer = Consumer::new(config(&bootstrap, &props)).unwrap();
    consumer.assign(vec![tp("c", 0)]).await.unwrap();
    let records = poll_n(&mut consumer, 18).await;
    assert_eq!(records[0].offset, 12);
    assert_eq!(records.len(), 18);
    // commit_async of the current position.
    consumer.commit_async(None).unwrap().await.unwrap().unwrap();
    assert_eq!(
        consumer.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        Some(30)
    );
    consumer.close().await.unwrap();

    // Without a commit, the default auto.offset.reset (latest) starts at the end.
    let mut latest = Consumer::new(ConsumerConfig::new(&bootstrap)).unwrap();
    latest.assign(vec![tp("c", 0)]).await.unwrap();
    assert_eq!(latest.position("c", 0).await.unwrap(), 30);
    // auto.offset.reset=none with nothing committed is an error.
    let mut none = Consumer::new(config(
        &bootstrap,
        &[("auto.offset.reset", "none"), ("group.id", "fresh")],
    ))
    .unwrap();
    none.assign(vec![tp("c", 0)]).await.unwrap();
    assert!(none.poll(Duration::from_millis(100)).await.is_err());
    // Auto-commit on close.
    let mut auto = Consumer::new(config(&bootstrap, &[("group.id", "g2")])).unwrap();
    auto.assign(vec![tp("c", 0)]).await.unwrap();
    assert_eq!(poll_n(&mut auto, 30).await.len(), 30);
    auto.close().await.unwrap();
    let mut check = Consumer::new(config(&bootstrap, &[("group.id", "g2")])).unwrap();
    assert_eq!(
        check.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        Some(30)
    );
    broker.shutdown().await.unwrap();
}

#[derive(Default)]
struct Events {
    assigned: Vec<TopicPartition>,
    revoked: Vec<TopicPartition>,
}

struct Recorder(Arc<Mutex<Events>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().revoked.extend_from_slice(partitions);
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().assigned.extend_from_slice(partitions);
    }
}

/// A member polling in its own task (as applications do: a rebalance blocks only the member
/// that is joining); records and assignment snapshots are shared with the test.
struct Member {
    records: Arc<Mutex<Vec<ConsumerRecord>>>,
    assignment: Arc<Mutex<Vec<TopicPartition>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Consumer>,
}

impl Member {
    fn spawn(mut consumer: Consumer) -> Member {
        let records = Arc::new(Mutex::new(Vec::new()));
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, a, s) = (
            Arc::clone(&records),
            Arc::clone(&assignment),
            Arc::clone(&stop),
        );
        let task = tokio::spawn(async move {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let got = consumer.poll(Duration::from_millis(100)).await.unwrap();
                let owned = consumer.assignment();
                for record in &got {
                    assert!(owned.contains(&tp(&record.topic, record.partition)));
                }
                r.lock().extend(got);
                *a.lock() = owned;
            }
            consumer
        });
        Member {
            records,
            assignment,
            stop,
            task,
        }
    }

    async fn stop(self) -> Consumer {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_members_split(strategy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=4\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    for p in 0..4 {
        produce(&cluster, "g", p, 10, Compression::Snappy).await;
    }
    let props = [
        ("group.id", "split"),
        ("partition.assignment.strategy", strategy),
        ("heartbeat.interval.ms", "200"),
        ("session.timeout.ms", "6000"),
        ("auto.commit.interval.ms", "100"),
    ];
    let events_a = Arc::new(Mutex::new(Events::default()));
    let mut a = Consumer::new(config(&bootstrap, &props)).unwrap();
    a.subscribe(
        vec!["g".into()],
        Some(Box::new(Recorder(Arc::clone(&events_a)))),
    )
    .await
    .unwrap();
    // Alone, `a` gets everything.
    let first = poll_n(&mut a, 40).await;
    assert_eq!(first.len(), 40);
    assert_eq!(a.assignment().len(), 4);
    a.commit_sync(None).await.unwrap();
    let a = Member::spawn(a);

    let events_b = Arc::new(Mutex::new(Events::default()));
    let mut b = Consumer::new(config(&bootstrap, &props)).unwrap();
    b.subscribe(
        vec!["g".into()],
        Some(Box::new(Recorder(Arc::clone(&events_b)))),
    )
    .await
    .unwrap();
    let b = Member::spawn(b);
    wait_until("a 2/2 split", || {
        a.assignment.lock().len() == 2 && b.assignment.lock().len() == 2
    })
    .await;
    let all: BTreeSet<TopicPartition> = a
        .assignment
        .lock()
        .iter()
        .chain(b.assignment.lock().iter())
        .cloned()
        .collect();
    assert_eq!(all.len(), 4);
    // Eager protocols revoke everything before rejoining; cooperative-sticky revokes only the
    // two partitions that move to b.
    let expected_revoked = if strategy == "cooperative-sticky" {
        2
    } else {
        4
    };
    assert_eq!(events_a.lock().revoked.len(), expected_revoked);
    assert_eq!(
        events_b.lock().assigned.iter().collect::<BTreeSet<_>>(),
        b.assignment.lock().iter().collect::<BTreeSet<_>>()
    );
    // New records reach the member owning their partition, once; nothing old is read again
    // (b starts from a's commits).
    for p in 0..4 {
        produce(&cluster, "g", p, 5, Compression::None).await;
    }
    wait_until("20 new records", || {
        a.records.lock().len() + b.records.lock().len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen: Vec<(i32, i64)> = a
        .records
        .lock()
        .iter()
        .chain(b.records.lock().iter())
        .map(|r| (r.partition, r.offset))
        .collect();
    seen.sort();
    let expected: Vec<(i32, i64)> = (0..4).flat_map(|p| (10..15).map(move |o| (p, o))).collect();
    assert_eq!(seen, expected);
    assert!(!a.records.lock().is_empty() && !b.records.lock().is_empty());
    // When b leaves, a gets everything back.
    let mut b = b.stop().await;
    b.close().await.unwrap();
    wait_until("a owning all again", || a.assignment.lock().len() == 4).await;
    let mut a = a.stop().await;
    a.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_two_splits_partitions_range() {
    two_members_split("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_two_splits_partitions_cooperative_sticky() {
    two_members_split("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_needs_group_and_unreachable_broker_fails() {
    let mut consumer = Consumer::new(ConsumerConfig::new("127.0.0.1:1")).unwrap();
    assert!(consumer.subscribe(vec!["t".into()], None).await.is_err());
    consumer.assign(vec![tp("t", 0)]).await.unwrap();
    let err = consumer.poll(Duration::from_millis(500)).await.unwrap_err();
    assert!(
        matches!(err, gregor_client::ClientError::Connect { .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_trigger_a_rebalance_and_close_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    produce(&cluster, "grow", 0, 3, Compression::None).await;
    let props = [
        ("group.id", "growers"),
        ("metadata.max.age.ms", "300"),
        ("heartbeat.interval.ms", "200"),
    ];
    let events = Arc::new(Mutex::new(Events::default()));
    let mut consumer = Consumer::new(config(&bootstrap, &props)).unwrap();
    consumer
        .subscribe(
            vec!["grow".into()],
            Some(Box::new(Recorder(Arc::clone(&events)))),
        )
        .await
        .unwrap();
    assert_eq!(poll_n(&mut consumer, 3).await.len(), 3);
    assert_eq!(consumer.assignment(), vec![tp("grow", 0)]);

    let admin = gregor_client::Admin::new(CommonConfig::new(&bootstrap));
    admin
        .create_partitions(&[("grow".to_string(), 3)].into_iter().collect(), false)
        .await
        .unwrap();
    cluster.invalidate("grow");
    produce(&cluster, "grow", 2, 4, Compression::None).await;
    let more = poll_n(&mut consumer, 4).await;
    assert_eq!(more.len(), 4);
    assert!(more.iter().all(|r| r.partition == 2));
    assert_eq!(consumer.assignment().len(), 3);
    assert_eq!(
        events.lock().assigned.len(),
        1 + 3,
        "eager: the whole assignment again"
    );

    // close: commits the positions and revokes through the listener.
    consumer.close().await.unwrap();
    assert!(events.lock().revoked.len() >= 3);
    let mut check = Consumer::new(config(&bootstrap, &[("group.id", "growers")])).unwrap();
    let committed = check
        .committed(&[tp("grow", 0), tp("grow", 2)])
        .await
        .unwrap();
    assert_eq!(committed[&tp("grow", 0)], Some(3));
    assert_eq!(committed[&tp("grow", 2)], Some(4));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_its_partitions_are_lost() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    produce(&cluster, "slow", 0, 1, Compression::None).await;
    let props = [
        ("group.id", "slowpokes"),
        ("max.poll.interval.ms", "2000"),
        ("heartbeat.interval.ms", "100"),
        ("session.timeout.ms", "30000"),
    ];
    #[derive(Default)]
    struct Lost(Arc<Mutex<Vec<TopicPartition>>>);
    impl RebalanceListener for Lost {
        fn on_partitions_revoked(&mut self, _: &[TopicPartition]) {}
        fn on_partitions_assigned(&mut self, _: &[TopicPartition]) {}
        fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
            self.0.lock().extend_from_slice(partitions);
        }
    }
    let lost = Arc::new(Mutex::new(Vec::new()));
    let mut slow = Consumer::new(config(&bootstrap, &props)).unwrap();
    slow.subscribe(vec!["slow".into()], Some(Box::new(Lost(Arc::clone(&lost)))))
        .await
        .unwrap();
    assert_eq!(poll_n(&mut slow, 1).await.len(), 1);
    assert_eq!(slow.assignment().len(), 2);
    let mut other = Consumer::new(config(&bootstrap, &props)).unwrap();
    other.subscribe(vec!["slow".into()], None).await.unwrap();
    let other = Member::spawn(other);
    // `slow` does not poll: after max.poll.interval.ms it leaves and `other` takes everything
    // without waiting for the 30 s session timeout.
    wait_until("other owning both partitions", || {
        other.assignment.lock().len() == 2
    })
    .await;
    // (Its own heartbeat task notices the stall within heartbeat.interval.ms of the broker
    // doing so; give it that time, or the next poll would simply rejoin with a revoke.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Polling again, `slow` learns its partitions were lost and rejoins.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lost.lock().is_empty() || slow.assignment().is_empty() {
        slow.poll(Duration::from_millis(100)).await.unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "slow never rejoined: lost {:?}, owns {:?}, other owns {:?}",
            lost.lock(),
            slow.assignment(),
            other.assignment.lock()
        );
    }
    assert_eq!(lost.lock().len(), 2);
    let mut other = other.stop().await;
    other.close().await.unwrap();
    slow.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_keeps_its_place_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let base = [
        ("group.id", "statics"),
        ("heartbeat.interval.ms", "100"),
        ("session.timeout.ms", "10000"),
    ];
    let with_instance: Vec<(&str, &str)> = base
        .iter()
        .copied()
        .chain([("group.instance.id", "worker-1")])
        .collect();
    let mut fixed = Consumer::new(config(&bootstrap, &with_instance)).unwrap();
    fixed.subscribe(vec!["st".into()], None).await.unwrap();
    let fixed = Member::spawn(fixed);
    wait_until("the static member owning both", || {
        fixed.assignment.lock().len() == 2
    })
    .await;
    let mut dynamic = Consumer::new(config(&bootstrap, &base)).unwrap();
    dynamic.subscribe(vec!["st".into()], None).await.unwrap();
    let dynamic = Member::spawn(dynamic);
    wait_until("a 1/1 split", || {
        fixed.assignment.lock().len() == 1 && dynamic.assignment.lock().len() == 1
    })
    .await;
    let kept = fixed.assignment.lock().clone();
    // Closing a static member sends no LeaveGroup: nothing moves during the session timeout.
    let mut closed = fixed.stop().await;
    closed.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dynamic.assignment.lock().len(), 1);
    // The restarted instance takes its old place back.
    let mut again = Consumer::new(config(&bootstrap, &with_instance)).unwrap();
    again.subscribe(vec!["st".into()], None).await.unwrap();
    let again = Member::spawn(again);
    wait_until("the restarted member's partition", || {
        *again.assignment.lock() == kept
    })
    .await;
    assert_eq!(dynamic.assignment.lock().len(), 1);
    let mut a = again.stop().await;
    a.close().await.unwrap();
    let mut d = dynamic.stop().await;
    d.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn seeking_an_unassigned_partition_is_an_illegal_state() {
    let mut consumer = Consumer::new(ConsumerConfig::new("127.0.0.1:1")).unwrap();
    consumer.assign(vec![tp("t", 0)]).await.unwrap();
    let err = consumer.seek("t", 1, 0).unwrap_err();
    assert!(
        matches!(err, gregor_client::ClientError::IllegalState(_)),
        "{err}"
    );
    assert!(consumer.pause(&[tp("u", 0)]).is_err());
    consumer.seek("t", 0, 5).unwrap();
}

/// Polls until `consumer` owns `n` partitions (or 20 s passed).
async fn poll_until_assigned(consumer: &mut Consumer, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while consumer.assignment().len() != n {
        assert!(std::time::Instant::now() < deadline, "no assignment of {n}");
        consumer.poll(Duration::from_millis(100)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_static_member_reports_it_instead_of_rejoining() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let bootstrap = common::bootstrap(&broker);
    let props = [
        ("group.id", "twins"),
        ("group.instance.id", "twin"),
        ("heartbeat.interval.ms", "100"),
        ("session.timeout.ms", "10000"),
    ];
    let mut first = Consumer::new(config(&bootstrap, &props)).unwrap();
    first.subscribe(vec!["tw".into()], None).await.unwrap();
    poll_until_assigned(&mut first, 1).await;
    // A second consumer with the same group.instance.id takes the member's place.
    let mut second = Consumer::new(config(&bootstrap, &props)).unwrap();
    second.subscribe(vec!["tw".into()], None).await.unwrap();
    let second = Member::spawn(second);
    wait_until("the second twin's partition", || {
        second.assignment.lock().len() == 1
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let err = loop {
        match first.poll(Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(_) => assert!(std::time::Instant::now() < deadline, "never fenced"),
        }
    };
    assert_eq!(
        err.code(),
        Some(gregor_client::ErrorCode::FENCED_INSTANCE_ID),
        "{err}"
    );
    // Fatal: the fenced consumer keeps saying so and never takes the place back (which
    // would fence the second one in turn; its poll task would then panic).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(first.poll(Duration::from_millis(100)).await.is_err());
    assert_eq!(second.assignment.lock().len(), 1);
    let mut second = second.stop().await;
    second.close().await.unwrap();
    first.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

/// A cooperative group on topic `co` (two partitions, plenty of records) where a rebalance
/// stays open: `a` and `idle` split the partitions, `idle` then stops polling (it keeps
/// heartbeating but never rejoins), and `newcomer` joins. `a` (with `listener`, `client.id`
/// "a") is returned unpolled: its next polls rejoin and its JoinGroup parks.
async fn park_a_cooperative_rebalance(
    bootstrap: &str,
    listener: Option<Box<dyn RebalanceListener>>,
) -> (Consumer, Consumer, Member) {
    let cluster = Cluster::new(CommonConfig::new(bootstrap));
    for p in 0..2 {
        produce(&cluster, "co", p, 200, Compression::None).await;
    }
    // The first lookup creates `__consumer_offsets` (through the controller, 50 partitions):
    // done here, outside the rebalances timed below.
    cluster.coordinator("coop", 0).await.unwrap();
    let props = [
        ("group.id", "coop"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("heartbeat.interval.ms", "100"),
        ("session.timeout.ms", "10000"),
        ("max.poll.interval.ms", "60000"),
        ("max.poll.records", "1"),
    ];
    let a_props: Vec<(&str, &str)> = props.iter().copied().chain([("client.id", "a")]).collect();
    let mut a = Consumer::new(config(bootstrap, &a_props)).unwrap();
    a.subscribe(vec!["co".into()], listener).await.unwrap();
    let a = Member::spawn(a);
    let mut idle = Consumer::new(config(bootstrap, &props)).unwrap();
    idle.subscribe(vec!["co".into()], None).await.unwrap();
    let idle = Member::spawn(idle);
    wait_until("a 1/1 split", || {
        a.assignment.lock().len() == 1 && idle.assignment.lock().len() == 1
    })
    .await;
    // Let the follow-up rebalance (cooperative hand-over) finish: no join may be in flight
    // when the members stop polling.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = a.stop().await;
    for p in 0..2 {
        produce(&cluster, "co", p, 500, Compression::None).await;
    }
    let idle = idle.stop().await;
    let mut newcomer = Consumer::new(config(bootstrap, &props)).unwrap();
    newcomer.subscribe(vec!["co".into()], None).await.unwrap();
    (a, idle, Member::spawn(newcomer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_rebalance_does_not_hold_up_owned_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let (mut a, idle, newcomer) = park_a_cooperative_rebalance(&bootstrap, None).await;
    // `a` rejoins (its join parks on the coordinator) yet keeps serving its partition at
    // once, rather than waiting out each poll's timeout on the join.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let mut polls = 0;
    while std::time::Instant::now() < until {
        let started = std::time::Instant::now();
        let records = a.poll(Duration::from_secs(5)).await.unwrap();
        assert_eq!(records.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "poll took {:?}",
            started.elapsed()
        );
        polls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(polls > 10);
    // Closing mid-rebalance still commits (the generation is the last completed one), and
    // at once: not behind the JoinGroup still parked on the coordinator.
    let closing = std::time::Instant::now();
    a.close().await.unwrap();
    assert!(
        closing.elapsed() < Duration::from_secs(5),
        "{:?}",
        closing.elapsed()
    );
    drop(idle);
    let mut newcomer = newcomer.stop().await;
    newcomer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_commit_in_flight_never_lands_after_a_later_commit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    produce(&cluster, "ac", 0, 300, Compression::None).await;
    let props = [
        ("group.id", "autocommit"),
        ("auto.commit.interval.ms", "0"),
        ("max.poll.records", "10"),
    ];
    let mut consumer = Consumer::new(config(&bootstrap, &props)).unwrap();
    consumer.assign(vec![tp("ac", 0)]).await.unwrap();
    // Every poll starts an auto-commit of the positions before its records; the commit that
    // follows must still be the one that sticks.
    for _ in 0..20 {
        assert!(!poll_n(&mut consumer, 1).await.is_empty());
        consumer.commit_sync(None).await.unwrap();
        let position = consumer.position("ac", 0).await.unwrap();
        let committed = consumer.committed(&[tp("ac", 0)]).await.unwrap();
        assert_eq!(committed[&tp("ac", 0)], Some(position));
    }
    consumer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_during_its_cooperative_join_loses_its_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let lost = Arc::new(Mutex::new(Vec::new()));
    struct LostRecorder(Arc<Mutex<Vec<TopicPartition>>>);
    impl RebalanceListener for LostRecorder {
        fn on_partitions_revoked(&mut self, _: &[TopicPartition]) {}
        fn on_partitions_assigned(&mut self, _: &[TopicPartition]) {}
        fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
            self.0.lock().extend_from_slice(partitions);
        }
    }
    let listener = Box::new(LostRecorder(Arc::clone(&lost)));
    let (mut a, idle, newcomer) = park_a_cooperative_rebalance(&bootstrap, Some(listener)).await;
    let owned = a.assignment();
    assert_eq!(owned.len(), 1);
    // `a` hears of the rebalance (heartbeat) and rejoins; its JoinGroup parks (`idle` does
    // not rejoin). Its polls return at once (records are buffered): poll for a while.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        a.poll(Duration::from_millis(100)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.assignment(), owned);
    // The group drops `a` meanwhile (as an operator's LeaveGroup for it would).
    let admin = gregor_client::Admin::new(CommonConfig::new(&bootstrap));
    let described = admin.describe_groups(&["coop".into()]).await.unwrap();
    let member_id = described["coop"]
        .as_ref()
        .unwrap()
        .members
        .iter()
        .find(|m| m.client_id == "a")
        .expect("a is a member")
        .member_id
        .clone();
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    let coordinator = cluster.coordinator("coop", 0).await.unwrap();
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("coop")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(StrBytes::from_string(member_id)),
        ]);
    let response = coordinator.send(&leave, 5).await.unwrap();
    assert_eq!(response.error_code, 0);
    // Its join hears UNKNOWN_MEMBER_ID: the partition is lost (another member may own it
    // already) and no longer served, while `a` joins again as a new member.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.assignment().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "still owns {:?}",
            a.assignment()
        );
        a.poll(Duration::from_millis(100)).await.unwrap();
    }
    assert_eq!(*lost.lock(), owned);
    assert!(a.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    a.close().await.unwrap();
    drop(idle);
    let mut newcomer = newcomer.stop().await;
    newcomer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

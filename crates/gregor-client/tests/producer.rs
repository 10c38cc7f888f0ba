//! The producer against a real in-process broker: what it writes is read back with raw Fetch
//! requests and decoded batch by batch, so offsets, order, codecs, keys, values, headers and
//! partition choice are checked on the broker's side, not just on the producer's.

mod common;

use std::time::Duration;

use bytes::Bytes;
use gregor_client::admin::NewTopic;
use gregor_client::config::{CommonConfig, ProducerConfig};
use gregor_client::producer::{Producer, ProducerRecord, partition_for_key};
use gregor_client::{Admin, Cluster};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{BatchIter, Compression};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

/// One record as read back from the log.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(Bytes, Option<Bytes>)>,
}

/// Reads a whole partition with Fetch v12; also returns each batch's codec.
async fn read_partition(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
) -> (Vec<Stored>, Vec<Compression>) {
    let connection = cluster.any_connection().await.unwrap();
    let mut records = Vec::new();
    let mut codecs = Vec::new();
    let mut offset = 0;
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(10)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(16 << 20),
                    ]),
            ]);
        let response = connection.send(&request, 12).await.unwrap();
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch {topic}-{partition}");
        let bytes = data.records.clone().unwrap_or_default();
        let mut progressed = false;
        for batch in BatchIter::new(&bytes) {
            let Ok(batch) = batch else { break };
            codecs.push(batch.compression().unwrap());
            for record in batch.records().unwrap() {
                let stored = Stored {
                    offset: record.offset(batch.base_offset()),
                    timestamp: batch.record_timestamp(&record),
                    key: record.key.clone(),
                    value: record.value.clone(),
                    headers: record
                        .headers
                        .iter()
                        .map(|h| (h.key.clone(), h.value.clone()))
                        .collect(),
                };
                if stored.offset >= offset {
                    records.push(stored);
                }
            }
            offset = batch.next_offset();
            progressed = true;
        }
        if !progressed || offset >= data.high_watermark {
            break;
        }
    }
    (records, codecs)
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap)];
    props.extend_from_slice(extra);
    Producer::new(ProducerConfig::from_properties(props).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_keys_values_headers_and_offsets_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));

    for codec in Compression::ALL {
        let topic = format!("codec-{}", codec.name());
        let p = producer(&bootstrap, &[("compression.type", codec.name())]);
        let mut sent = Vec::new();
        let mut futures = Vec::new();
        for i in 0..300i64 {
            let mut record = ProducerRecord {
                topic: topic.clone(),
                partition: Some(1),
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 7 != 0)
                    .then(|| Bytes::from(format!("value-{i}-").repeat(i as usize % 20))),
                headers: Vec::new(),
                timestamp: Some(1_700_000_000_000 + i),
            };
            if i % 5 == 0 {
                // Duplicate keys, a null value and an empty one: all kept as sent.
                record = record
                    .with_header("h", Some(Bytes::from("1")))
                    .with_header("h", None)
                    .with_header("empty", Some(Bytes::new()));
            }
            futures.push(p.send(record.clone()));
            sent.push(record);
        }
        let mut offsets = Vec::new();
        for f in futures {
            let metadata = f.await.unwrap();
            assert_eq!(
                (metadata.topic.as_str(), metadata.partition),
                (topic.as_str(), 1)
            );
            offsets.push(metadata.offset);
        }
        assert_eq!(offsets, (0..300).collect::<Vec<_>>(), "{codec:?}");
        p.close().await;

        let (stored, codecs) = read_partition(&cluster, &topic, 1).await;
        assert_eq!(stored.len(), 300, "{codec:?}");
        assert!(codecs.iter().all(|c| *c == codec), "{codec:?}: {codecs:?}");
        for (i, (record, stored)) in sent.iter().zip(&stored).enumerate() {
            assert_eq!(stored.offset, i as i64);
            assert_eq!(stored.timestamp, record.timestamp.unwrap());
            assert_eq!(stored.key, record.key, "{codec:?} #{i}");
            assert_eq!(stored.value, record.value, "{codec:?} #{i}");
            let headers: Vec<(Bytes, Option<Bytes>)> = record
                .headers
                .iter()
                .map(|(k, v)| (Bytes::from(k.clone()), v.clone()))
                .collect();
            assert_eq!(stored.headers, headers, "{codec:?} #{i}");
        }
        // Partition 0 got nothing: the explicit partition was honoured.
        assert!(read_partition(&cluster, &topic, 0).await.0.is_empty());
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_murmur2_and_null_keys_stick_to_one_partition_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=5\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));

    let p = producer(&bootstrap, &[("linger.ms", "20"), ("acks", "1")]);
    assert_eq!(p.partition_count("keyed").await.unwrap(), 5);
    let futures: Vec<_> = (0..1000)
        .map(|i| {
            p.send(ProducerRecord::new("keyed", format!("v{i}")).with_key(format!("user-{i}")))
        })
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        let metadata = f.await.unwrap();
        assert_eq!(
            metadata.partition,
            partition_for_key(format!("user-{i}").as_bytes(), 5)
        );
    }
    let mut total = 0;
    for partition in 0..5 {
        let (stored, _) = read_partition(&cluster, "keyed", partition).await;
        for record in &stored {
            let key = record.key.as_ref().unwrap();
            assert_eq!(partition_for_key(key, 5), partition);
        }
        // Per partition, records keep the order they were sent in.
        let numbers: Vec<usize> = stored
            .iter()
            .map(|r| {
                std::str::from_utf8(&r.key.clone().unwrap()[5..])
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        total += stored.len();
    }
    assert_eq!(total, 1000);

    // Null keys: small records within one linger window all share one batch, so one partition.
    let futures: Vec<_> = (0..50)
        .map(|i| p.send(ProducerRecord::new("sticky", format!("v{i}"))))
        .collect();
    let mut partitions = Vec::new();
    for f in futures {
        partitions.push(f.await.unwrap().partition);
    }
    partitions.dedup();
    assert_eq!(partitions.len(), 1, "{partitions:?}");
    p.close().await;
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all_and_batches_split_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let bootstrap = common::bootstrap(&broker);
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));

    let value = Bytes::from(vec![b'x'; 1000]);
    for (acks, topic) in [("0", "acks0"), ("1", "acks1"), ("all", "acksall")] {
        let p = producer(
            &bootstrap,
            &[("acks", acks), ("batch.size", "8192"), ("linger.ms", "50")],
        );
        let futures: Vec<_> = (0..100)
            .map(|_| p.send(ProducerRecord::new(topic, value.clone())))
            .collect();
        p.flush().await;
        assert_eq!(p.in_flight_records(), 0);
        for (i, f) in futures.into_iter().enumerate() {
            let metadata = f.await.unwrap();
            let expected = if acks == "0" { -1 } else { i as i64 };
            assert_eq!(metadata.offset, expected, "acks={acks}");
        }
        p.close().await;
        // acks=0 has no answer to wait for: poll the log until everything arrived.
        let mut stored = Vec::new();
        for _ in 0..100 {
            stored = read_partition(&cluster, topic, 0).await.0;
            if stored.len() == 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stored.len(), 100, "acks={acks}");
        assert!(stored.iter().all(|r| r.value.as_ref() == Some(&value)));
        // batch.size=8192 with ~1 KiB records: about 13 batches of at most 8 records.
        let batches = read_partition(&cluster, topic, 0).await.1.len();
        assert!(
            (12..=20).contains(&batches),
            "acks={acks}: {batches} batches"
        );
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_without_auto_creation_fails_and_bad_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(
        dir.path(),
        "num.partitions=2\nauto.create.topics.enable=false\n",
    )
    .await;
    let bootstrap = common::bootstrap(&broker);
    let p = producer(
        &bootstrap,
        &[("delivery.timeout.ms", "1500"), ("retry.backoff.ms", "50")],
    );
    let started = std::time::Instant::now();
    let err = p
        .send(ProducerRecord::new("missing", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(p.partition_count("missing").await.is_err());
    p.close().await;

    let broker2_dir = tempfile::tempdir().unwrap();
    let broker2 = common::start(broker2_dir.path(), "num.partitions=2\n").await;
    let p = producer(&common::bootstrap(&broker2), &[]);
    let err = p
        .send(ProducerRecord::new("auto", "x").with_partition(7))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert!(err.to_string().contains("partition 7"), "{err}");
    p.close().await;
    broker2.shutdown().await.unwrap();
    broker.shutdown().await.unwrap();
}

/// A broker on a fixed port, so that a restarted one is found at the same address.
async fn start_on(dir: &std::path::Path, port: u16) -> gregor_broker::RunningBroker {
    let props = format!(
        "listeners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\nnum.partitions=1\n",
        dir.display()
    );
    let (config, _) = gregor_broker::config::BrokerConfig::from_properties(&props, &[]).unwrap();
    gregor_broker::RunningBroker::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_retried_until_the_broker_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let broker = start_on(dir.path(), port).await;
    let bootstrap = format!("127.0.0.1:{port}");
    let p = producer(
        &bootstrap,
        &[("retry.backoff.ms", "100"), ("request.timeout.ms", "2000")],
    );
    assert_eq!(
        p.send(ProducerRecord::new("retry", "before"))
            .await
            .unwrap()
            .offset,
        0
    );
    broker.shutdown().await.unwrap();

    // Sent while the broker is down: connection errors are retriable, so the records wait.
    let futures: Vec<_> = (0..10)
        .map(|i| p.send(ProducerRecord::new("retry", format!("during-{i}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let broker = start_on(dir.path(), port).await;
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().offset, 1 + i as i64);
    }
    p.close().await;
    let cluster = Cluster::new(CommonConfig::new(&bootstrap));
    let (stored, _) = read_partition(&cluster, "retry", 0).await;
    assert_eq!(stored.len(), 11);
    assert_eq!(stored[10].value.as_deref(), Some(&b"during-9"[..]));
    broker.shutdown().await.unwrap();
}

/// Polls `future` once (a flush then has taken its watermark).
async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_only_for_earlier_records_and_a_cancelled_flush_stops_forcing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "auto.create.topics.enable=false\n").await;
    let bootstrap = common::bootstrap(&broker);
    Admin::new(CommonConfig::new(&bootstrap))
        .create_topics(&[NewTopic::new("ok", 1, 1)], false)
        .await
        .unwrap()["ok"]
        .as_ref()
        .unwrap();
    let p = producer(
        &bootstrap,
        &[
            ("linger.ms", "60000"),
            ("delivery.timeout.ms", "4000"),
            ("retry.backoff.ms", "50"),
        ],
    );

    // A record sent while a flush runs (here one that waits for a topic that never comes) is
    // not the flush's business.
    let first = p.send(ProducerRecord::new("ok", "a"));
    let mut flush = Box::pin(p.flush());
    assert!(poll_once(&mut flush).await.is_none());
    let late = p.send(ProducerRecord::new("missing", "b"));
    tokio::time::timeout(Duration::from_secs(3), flush)
        .await
        .expect("flush waited for a record sent after it");
    assert_eq!(first.await.unwrap().offset, 0);

    // A flush given up on (it waits for the record above) no longer forces batches out:
    // linger.ms holds the next record back again.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), p.flush())
            .await
            .is_err()
    );
    let mut held = p.send(ProducerRecord::new("ok", "c"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        poll_once(&mut held).await.is_none(),
        "sent before linger.ms"
    );
    let err = late.await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    p.flush().await;
    assert_eq!(held.await.unwrap().offset, 1);
    p.close().await;
    broker.shutdown().await.unwrap();
}

//! The producer: records in, acknowledged offsets out, with the Java client's batching,
//! partitioning and retry behaviour under the same config keys.
//!
//! [`Producer::send`] only enqueues: it puts the record into its partition's open batch (see
//! `accumulator`) and returns a [`DeliveryFuture`] that resolves once the broker has
//! acknowledged (or refused) the batch. A background task (see `sender`) turns ready batches
//! into Produce requests per leader broker, keeps at most `max.in.flight.requests.per.connection`
//! of them outstanding per broker, retries retriable errors after `retry.backoff.ms` within
//! `delivery.timeout.ms`, and refreshes metadata when a leader moved.
//!
//! Without idempotence (not supported by Gregor's broker yet) a retried batch can land after a
//! later one of the same partition when more than one request is in flight, exactly as with the
//! Java client; set `max.in.flight.requests.per.connection=1` when order across retries matters.
//!
//! ```no_run
//! use bytes::Bytes;
//! use gregor_client::config::ProducerConfig;
//! use gregor_client::producer::{Producer, ProducerRecord};
//!
//! # async fn demo() -> gregor_client::Result<()> {
//! let producer = Producer::new(ProducerConfig::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("linger.ms", "10"),
//! ])?)?;
//! let delivery = producer.send(ProducerRecord::new("events", Bytes::from("hello")).with_key("k"));
//! let metadata = delivery.await?;
//! println!("{}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
//! producer.close().await;
//! # Ok(())
//! # }
//! ```

mod accumulator;
pub mod partitioner;
mod sender;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::error::{ClientError, Result};
use accumulator::{Accumulator, Appended, Pending};

pub use partitioner::{murmur2, partition_for_key};

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic to write to.
    pub topic: String,
    /// Partition, or `None` to let the partitioner choose (by key, else sticky).
    pub partition: Option<i32>,
    /// Key; `None` is a null key (distinct from empty).
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order; the same key may appear several times.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// CreateTime in ms since the epoch; `None` stamps the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else, for `topic`.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key (which also chooses the partition, unless one is given).
    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> ProducerRecord {
        self.headers.push((key.into(), value));
        self
    }

    /// Sets the CreateTime timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> ProducerRecord {
        self.timestamp = Some(timestamp);
        self
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The record's offset; `-1` with `acks=0`, where the broker does not answer.
    pub offset: i64,
    /// The record's timestamp: the broker's append time for `LogAppendTime` topics, else
    /// the CreateTime sent.
    pub timestamp: i64,
}

/// A caller-supplied function run with a record's result, on the producer's task: keep it short.
pub type Callback = Box<dyn FnOnce(Result<RecordMetadata>) + Send + 'static>;

/// How a record's result reaches its caller, and which record it is (its sequence number, so
/// `flush` can wait for exactly the records sent before it).
pub(crate) struct Completion {
    pub(crate) seq: u64,
    pub(crate) to: Deliver,
}

/// Where a record's result goes.
pub(crate) enum Deliver {
    Channel(oneshot::Sender<Result<RecordMetadata>>),
    Callback(Callback),
}

impl Completion {
    fn complete(self, result: Result<RecordMetadata>) {
        match self.to {
            Deliver::Channel(tx) => {
                let _ = tx.send(result);
            }
            Deliver::Callback(callback) => callback(result),
        }
    }
}

/// The result of one [`Producer::send`]: resolves when the broker acknowledged the record
/// (or it failed for good). Dropping it does not cancel the send.
#[derive(Debug)]
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata>>);

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

struct State {
    accumulator: Accumulator,
    /// Requests outstanding per broker id.
    in_flight: HashMap<i32, usize>,
    /// Topics whose metadata must be fetched again (leader moved or unknown).
    stale: HashSet<String>,
    /// Sequence number of the next record sent.
    next_seq: u64,
    /// Sequence numbers of the records sent and not completed yet.
    unfinished: BTreeSet<u64>,
    /// When each topic whose records wait for metadata may be looked up again.
    metadata_retry: HashMap<String, Instant>,
    /// Topics whose metadata lookup is under way (in a task of its own).
    resolving: HashSet<String>,
    /// `flush` calls in progress: batches go out without waiting for `linger.ms`.
    flushing: usize,
    closing: bool,
}

struct Shared {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    state: Mutex<State>,
    /// Wakes the sender: new batch, batch full, request finished, flush or close.
    wake: Notify,
    /// Wakes `flush` and `close` when records were completed.
    finished: Notify,
}

/// A Kafka producer. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Producer {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Producer {
    /// A producer with its own cluster connections. Must be called inside a tokio runtime
    /// (the sender task is spawned on it); no broker is contacted until the first send.
    pub fn new(config: ProducerConfig) -> Result<Producer> {
        let cluster = Cluster::new(config.common.clone());
        Producer::with_cluster(config, cluster)
    }

    /// A producer sharing `cluster` (and its connections) with other clients.
    pub fn with_cluster(config: ProducerConfig, cluster: Arc<Cluster>) -> Result<Producer> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClientError::Config {
            key: "(runtime)".into(),
            message: "a Producer must be created inside a tokio runtime".into(),
        })?;
        let accumulator = Accumulator::new(
            config.compression,
            config.batch_size,
            config.max_request_size,
            config.linger,
        );
        let shared = Arc::new(Shared {
            config,
            cluster,
            state: Mutex::new(State {
                accumulator,
                in_flight: HashMap::new(),
                stale: HashSet::new(),
                next_seq: 0,
                unfinished: BTreeSet::new(),
                metadata_retry: HashMap::new(),
                resolving: HashSet::new(),
                flushing: 0,
                closing: false,
            }),
            wake: Notify::new(),
            finished: Notify::new(),
        });
        let sender = runtime.spawn(sender::run(Arc::clone(&shared)));
        Ok(Producer {
            shared,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// The cluster view the producer sends through (for metadata lookups by tools).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.shared.cluster
    }

    /// Enqueues `record` and returns at once; the future resolves with its offset once the
    /// broker acknowledged it (or with the error that ended its retries).
    pub fn send(&self, record: ProducerRecord) -> DeliveryFuture {
        let (tx, rx) = oneshot::channel();
        self.enqueue(record, Deliver::Channel(tx));
        DeliveryFuture(rx)
    }

    /// Enqueues `record`; `callback` runs with its result on the producer's background task
    /// (the Java client's `send(record, callback)`): cheaper than a future per record when
    /// sending millions.
    pub fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
    ) {
        self.enqueue(record, Deliver::Callback(Box::new(callback)));
    }

    fn enqueue(&self, record: ProducerRecord, to: Deliver) {
        let result = {
            let mut state = self.shared.state.lock();
            let seq = state.next_seq;
            let pending = Pending {
                record,
                completion: Completion { seq, to },
                enqueued: Instant::now(),
            };
            if state.closing {
                Err((pending.completion, ClientError::Closed))
            } else {
                let result = state.accumulator.append(pending);
                if result.is_ok() {
                    state.next_seq += 1;
                    state.unfinished.insert(seq);
                }
                result
            }
        };
        match result {
            Ok(Appended::Quietly) => {}
            Ok(Appended::WakeSender) => self.shared.wake.notify_one(),
            Err((completion, error)) => completion.complete(Err(error)),
        }
    }

    /// Records sent and not yet acknowledged or failed.
    pub fn in_flight_records(&self) -> usize {
        self.shared.state.lock().unfinished.len()
    }

    /// The number of partitions of `topic` (fetching its metadata, creating the topic if the
    /// broker auto-creates topics).
    pub async fn partition_count(&self, topic: &str) -> Result<usize> {
        if let Some(n) = self.shared.state.lock().accumulator.partition_count(topic) {
            return Ok(n);
        }
        let info = self.shared.cluster.topic(topic).await?;
        let n = info.partitions.len();
        let failed = self.shared.state.lock().accumulator.set_metadata(info);
        sender::finish(
            &self.shared,
            failed.into_iter().map(|(c, e)| (c, Err(e))).collect(),
        );
        self.shared.wake.notify_one();
        Ok(n)
    }

    /// Sends every batch now (ignoring `linger.ms`) and waits until every record sent so far
    /// is acknowledged or failed. Records sent meanwhile (by other tasks) are not waited for,
    /// and a cancelled flush stops forcing batches out.
    pub async fn flush(&self) {
        let watermark = {
            let mut state = self.shared.state.lock();
            state.flushing += 1;
            state.next_seq
        };
        let _flushing = FlushGuard(&self.shared);
        self.shared.wake.notify_one();
        self.wait_finished(watermark).await;
    }

    /// Waits until every record numbered below `watermark` is completed.
    async fn wait_finished(&self, watermark: u64) {
        loop {
            let finished = self.shared.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let first = self.shared.state.lock().unfinished.first().copied();
            if first.is_none_or(|seq| seq >= watermark) {
                return;
            }
            finished.await;
        }
    }

    /// Sends what is buffered, waits for every result, and stops the background task. Later
    /// sends fail with [`ClientError::Closed`].
    pub async fn close(&self) {
        self.shared.state.lock().closing = true;
        self.shared.wake.notify_one();
        self.wait_finished(u64::MAX).await;
        let sender = self.sender.lock().take();
        if let Some(sender) = sender {
            self.shared.wake.notify_one();
            let _ = sender.await;
        }
    }
}

/// Ends one `flush`'s forcing of batches however the flush ends, cancelled included.
struct FlushGuard<'a>(&'a Shared);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.state.lock().flushing -= 1;
    }
}

impl Drop for Producer {
    /// Dropping without `close` still delivers what was sent: the sender finishes in the
    /// background and then stops.
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn send_after_close_fails_and_oversized_records_are_refused() {
        let producer = Producer::new(
            ProducerConfig::from_properties([
                ("bootstrap.servers", "127.0.0.1:1"),
                ("max.request.size", "1000"),
            ])
            .unwrap(),
        )
        .unwrap();
        let err = producer
            .send(ProducerRecord::new("t", vec![0u8; 2000]))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(gregor_protocol::ErrorCode::MESSAGE_TOO_LARGE)
        );
        producer.close().await;
        let err = producer
            .send(ProducerRecord::new("t", "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Closed), "{err}");
    }

    #[test]
    fn new_outside_a_runtime_is_an_error() {
        let config = ProducerConfig::from_properties([("bootstrap.servers", "h:1")]).unwrap();
        assert!(Producer::new(config).is_err());
    }
}

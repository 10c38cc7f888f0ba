//! Fetching ahead of `poll()`: one background task per leader broker keeps one Fetch in
//! flight for the assigned, unpaused partitions it leads, and decodes the answers into
//! per-partition buffers that `poll()` drains.
//!
//! The buffers are bounded: a partition is fetched again only while its buffer holds less than
//! `max.partition.fetch.bytes`, no partition is fetched while everything buffered exceeds
//! `fetch.max.bytes`, and one answer's batches are decoded only up to
//! `max.partition.fetch.bytes` per partition (the rest is fetched again later). So what is
//! buffered stays below about `fetch.max.bytes` plus one decoded answer per leader broker
//! (at most `max.partition.fetch.bytes` per partition, plus the one batch that crosses it),
//! while one consumer reads at close to the broker's speed (the next Fetch travels while the
//! application handles the previous one).
//!
//! Every seek, and every (re-)assignment, gives the partition a fresh `epoch` from one counter
//! that only grows; an answer to a Fetch sent before it is dropped, so records never arrive
//! from a position the application (or a rebalance) moved away from.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::BatchIter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{ConsumerRecord, TopicPartition};
use crate::cluster::Cluster;
use crate::config::ConsumerConfig;
use crate::error::ClientError;

/// The newest Fetch version whose semantics this fetcher implements (v13+ names topics by id).
const FETCH_MAX_VERSION: i16 = 16;

/// Source of partition epochs. One counter for every partition (and consumer) so an epoch is
/// never handed out twice: a partition revoked and assigned again must not accept the answer
/// to a Fetch sent for its earlier incarnation.
static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

fn next_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// One assigned partition's consumption state.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Next offset `poll()` returns; `None` until initialized (committed offset or reset).
    pub position: Option<i64>,
    /// The fetcher reported OFFSET_OUT_OF_RANGE: reset by `auto.offset.reset`, ignoring commits.
    pub out_of_range: bool,
    /// Next offset to fetch (ahead of `position` by what is buffered).
    pub fetch_offset: i64,
    /// Paused partitions are neither fetched nor returned.
    pub paused: bool,
    /// Renewed by every seek and assignment; answers to older fetches are dropped.
    pub epoch: u64,
    /// A Fetch for this partition is on its way.
    pub in_flight: bool,
    /// Leader broker id, once known.
    pub leader: Option<i32>,
    /// Topic id (for Fetch v13+).
    pub topic_id: Uuid,
    /// Decoded records not yet returned.
    pub buffer: VecDeque<ConsumerRecord>,
    /// Approximate bytes held by `buffer`.
    pub buffered_bytes: usize,
    /// A fatal error to report from the next `poll()` (corrupt batch…).
    pub error: Option<ClientError>,
}

impl PartitionState {
    /// A newly assigned partition: no position yet, and an epoch no earlier Fetch carried.
    pub fn new() -> PartitionState {
        PartitionState {
            position: None,
            out_of_range: false,
            fetch_offset: 0,
            paused: false,
            epoch: next_epoch(),
            in_flight: false,
            leader: None,
            topic_id: Uuid::nil(),
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            error: None,
        }
    }

    /// Moves the partition to `offset`, dropping what was fetched from elsewhere.
    pub fn seek(&mut self, offset: i64) -> usize {
        self.position = Some(offset);
        self.out_of_range = false;
        self.fetch_offset = offset;
        self.epoch = next_epoch();
        self.in_flight = false;
        self.buffer.clear();
        std::mem::take(&mut self.buffered_bytes)
    }
}

/// State shared by the consumer and its fetch tasks.
#[derive(Default)]
pub(crate) struct Shared {
    /// Assigned partitions.
    pub partitions: HashMap<TopicPartition, PartitionState>,
    /// Sum of every partition's `buffered_bytes`.
    pub buffered_bytes: usize,
    /// Set on close: tasks exit.
    pub closed: bool,
}

/// The fetch side of a consumer: shared state, wake-ups, and the per-broker tasks.
pub(crate) struct Fetcher {
    pub shared: Arc<Mutex<Shared>>,
    /// Signalled when records arrive or a partition changes state (wakes `poll()`).
    pub data_ready: Arc<Notify>,
    /// Signalled when buffers drain or partitions move (wakes the fetch tasks).
    pub wake: Arc<Notify>,
    tasks: HashMap<i32, tokio::task::JoinHandle<()>>,
    cluster: Arc<Cluster>,
    config: Arc<ConsumerConfig>,
}

impl Fetcher {
    pub fn new(cluster: Arc<Cluster>, config: Arc<ConsumerConfig>) -> Fetcher {
        Fetcher {
            shared: Arc::default(),
            data_ready: Arc::new(Notify::new()),
            wake: Arc::new(Notify::new()),
            tasks: HashMap::new(),
            cluster,
            config,
        }
    }

    /// Starts a task for every leader of an assigned partition that has none yet.
    pub fn ensure_tasks(&mut self) {
        let leaders: Vec<i32> = {
            let shared = self.shared.lock();
            shared
                .partitions
                .values()
                .filter_map(|p| p.leader)
                .collect()
        };
        self.tasks.retain(|_, t| !t.is_finished());
        for leader in leaders {
            if self.tasks.contains_key(&leader) {
                continue;
            }
            let task = BrokerFetch {
                broker: leader,
                shared: Arc::clone(&self.shared),
                data_ready: Arc::clone(&self.data_ready),
                wake: Arc::clone(&self.wake),
                cluster: Arc::clone(&self.cluster),
                config: Arc::clone(&self.config),
            };
            self.tasks.insert(leader, tokio::spawn(task.run()));
        }
    }

    /// Stops every task.
    pub fn shutdown(&mut self) {
        self.shared.lock().closed = true;
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What one Fetch asked for, per partition.
struct Requested {
    tp: TopicPartition,
    epoch: u64,
    offset: i64,
}

struct BrokerFetch {
    broker: i32,
    shared: Arc<Mutex<Shared>>,
    data_ready: Arc<Notify>,
    wake: Arc<Notify>,
    cluster: Arc<Cluster>,
    config: Arc<ConsumerConfig>,
}

impl BrokerFetch {
    async fn run(self) {
        loop {
            let wake = self.wake.notified();
            let requested = self.select();
            match requested {
                None => return,
                Some(requested) if requested.is_empty() => {
                    // Nothing to fetch now: wait for a drain, a seek, a resume.
                    let _ = tokio::time::timeout(Duration::from_millis(100), wake).await;
                }
                Some(requested) => {
                    if let Err(e) = self.fetch(&requested).await {
                        tracing::debug!(broker = self.broker, error = %e, "fetch failed");
                        self.release(&requested, true);
                        tokio::time::sleep(self.cluster.config().retry_backoff).await;
                    }
                }
            }
        }
    }

    /// Picks the partitions to fetch and marks them in flight; `None` once closed or when this
    /// broker leads no assigned partition any more (the task ends rather than waking forever;
    /// `Fetcher::ensure_tasks` starts a new one if it leads some again).
    fn select(&self) -> Option<Vec<Requested>> {
        let mut shared = self.shared.lock();
        if shared.closed
            || !shared
                .partitions
                .values()
                .any(|p| p.leader == Some(self.broker))
        {
            return None;
        }
        if shared.buffered_bytes >= self.config.fetch_max_bytes.max(1) as usize {
            return Some(Vec::new());
        }
        let limit = self.config.max_partition_fetch_bytes.max(1) as usize;
        let mut requested = Vec::new();
        for (tp, p) in shared.partitions.iter_mut() {
            if p.leader == Some(self.broker)
                && p.position.is_some()
                && !p.paused
                && !p.in_flight
                && p.error.is_none()
                && p.buffered_bytes < limit
            {
                p.in_flight = true;
                requested.push(Requested {
                    tp: tp.clone(),
                    epoch: p.epoch,
                    offset: p.fetch_offset,
                });
            }
        }
        Some(requested)
    }

    /// Clears the in-flight marks of a failed fetch; `forget_leader` makes `poll()` look the
    /// leader up again.
    fn release(&self, requested: &[Requested], forget_leader: bool) {
        let mut shared = self.shared.lock();
        for r in requested {
            if let Some(p) = shared.partitions.get_mut(&r.tp)
                && p.epoch == r.epoch
            {
                p.in_flight = false;
                if forget_leader {
                    p.leader = None;
                }
            }
        }
        drop(shared);
        self.data_ready.notify_waiters();
    }

    async fn fetch(&self, requested: &[Requested]) -> crate::Result<()> {
        let connection = self.cluster.connection(self.broker).await?;
        let ids: HashMap<&str, Uuid> = {
            let shared = self.shared.lock();
            requested
                .iter()
                .filter_map(|r| shared.partitions.get(&r.tp).map(|p| (&*r.tp.0, p.topic_id)))
                .collect()
        };
        // Topics are named by id from v13; without ids (old metadata) stay at v12.
        let max = if ids.values().any(Uuid::is_nil) {
            12
        } else {
            FETCH_MAX_VERSION
        };
        let version = connection.version::<FetchRequest>(max)?;
        let mut topics: Vec<FetchTopic> = Vec::new();
        for r in requested {
            let partition = FetchPartition::default()
                .with_partition(r.tp.1)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(r.offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(self.config.max_partition_fetch_bytes);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == r.tp.0) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(r.tp.0.clone())))
                        .with_topic_id(ids.get(&*r.tp.0).copied().unwrap_or_default())
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.config.fetch_max_wait.as_millis() as i32)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            .with_isolation_level(i8::from(self.config.read_committed))
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        let response = connection.send_at(&request, version).await?;
        if let Some(e) = ClientError::from_code(response.error_code, None) {
            return Err(e);
        }
        let by_id: HashMap<Uuid, &str> = ids.iter().map(|(n, id)| (*id, *n)).collect();
        let mut answered: HashMap<TopicPartition, Answer> = HashMap::new();
        for topic in response.responses {
            let name = if version >= 13 {
                by_id.get(&topic.topic_id).map(|n| n.to_string())
            } else {
                Some(topic.topic.0.to_string())
            };
            let Some(name) = name else { continue };
            for p in topic.partitions {
                let aborted = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                answered.insert(
                    (name.clone(), p.partition_index),
                    (p.error_code, p.records, aborted),
                );
            }
        }
        // Decode outside the lock.
        let mut decoded = Vec::new();
        for r in requested {
            let Some((code, records, aborted)) = answered.remove(&r.tp) else {
                decoded.push((r, Outcome::Retry));
                continue;
            };
            let outcome = match ErrorCode(code) {
                ErrorCode::NONE => match decode(
                    &r.tp,
                    r.offset,
                    records.unwrap_or_default(),
                    self.config.read_committed.then_some(aborted),
                    self.config.max_partition_fetch_bytes.max(1) as usize,
                ) {
                    Ok((records, next, bytes)) => Outcome::Records(records, next, bytes),
                    Err(e) => Outcome::Fatal(e),
                },
                ErrorCode::OFFSET_OUT_OF_RANGE => Outcome::OutOfRange,
                code if crate::error::is_retriable_code(code) => {
                    self.cluster.invalidate(&r.tp.0);
                    Outcome::LeaderMoved
                }
                code => Outcome::Fatal(ClientError::Kafka {
                    code,
                    message: Some(format!("fetching {}-{}", r.tp.0, r.tp.1)),
                }),
            };
            decoded.push((r, outcome));
        }
        let mut shared = self.shared.lock();
        let mut added = 0;
        for (r, outcome) in decoded {
            let Some(p) = shared.partitions.get_mut(&r.tp) else {
                continue;
            };
            if p.epoch != r.epoch {
                continue;
            }
            p.in_flight = false;
            match outcome {
                Outcome::Records(records, next, bytes) => {
                    p.buffer.extend(records);
                    p.buffered_bytes += bytes;
                    p.fetch_offset = next;
                    added += bytes;
                }
                Outcome::OutOfRange => {
                    p.position = None;
                    p.out_of_range = true;
                }
                Outcome::LeaderMoved => p.leader = None,
                Outcome::Retry => {}
                Outcome::Fatal(e) => p.error = Some(e),
            }
        }
        shared.buffered_bytes += added;
        drop(shared);
        self.data_ready.notify_waiters();
        Ok(())
    }
}

/// One partition's part of a Fetch response: error code, records, aborted transactions as
/// (producer id, first offset).
type Answer = (i16, Option<Bytes>, Vec<(i64, i64)>);

enum Outcome {
    Records(Vec<ConsumerRecord>, i64, usize),
    OutOfRange,
    LeaderMoved,
    Retry,
    Fatal(ClientError),
}

/// Decodes the batches of one partition's answer: records at or after `from`, the next offset
/// to fetch, and their approximate size. Control batches are skipped (their offsets still
/// count); a batch cut off at the end (the broker sends whole batches up to the byte limit,
/// possibly one partial) ends the data.
///
/// Decoding stops before the first batch that would start once `limit` bytes of records are
/// decoded (a compressed answer can inflate far beyond what was fetched); the next offset is
/// then that batch's start, so the next Fetch asks for it again. At least one batch is always
/// decoded, so a batch larger than `limit` still makes progress.
///
/// With `read_committed`, `aborted` lists the aborted transactions in range as (producer id,
/// first offset): a transactional batch of a producer whose aborted transaction has started
/// (and whose ABORT marker has not been passed yet) is dropped, as the Java client does.
fn decode(
    tp: &TopicPartition,
    from: i64,
    data: Bytes,
    aborted: Option<Vec<(i64, i64)>>,
    limit: usize,
) -> crate::Result<(Vec<ConsumerRecord>, i64, usize)> {
    let mut pending_aborts = aborted.unwrap_or_default();
    pending_aborts.sort_by_key(|(_, first)| std::cmp::Reverse(*first));
    let mut aborting: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut records = Vec::new();
    let mut next = from;
    let mut bytes = 0;
    let corrupt = |e: &dyn std::fmt::Display, at: i64| ClientError::Kafka {
        code: ErrorCode::CORRUPT_MESSAGE,
        message: Some(format!("{}-{} at offset {at}: {e}", tp.0, tp.1)),
    };
    for batch in BatchIter::new(&data) {
        let batch = match batch {
            Ok(batch) => batch,
            Err(gregor_protocol::batch::BatchError::Truncated { .. }) => break,
            Err(e) => {
                if records.is_empty() && next == from {
                    return Err(corrupt(&e, next));
                }
                break;
            }
        };
        while pending_aborts
            .last()
            .is_some_and(|(_, first)| *first <= batch.last_offset())
        {
            let (producer, _) = pending_aborts.pop().expect("checked");
            aborting.insert(producer);
        }
        if batch.attributes().is_control() {
            // An ABORT marker ends that producer's aborted transaction.
            if batch.attributes().is_transactional()
                && let Ok(records) = batch.records()
                && records.first().and_then(|r| r.control_type().ok())
                    == Some(gregor_protocol::batch::ControlRecordType::Abort)
            {
                aborting.remove(&batch.producer_id());
            }
            next = next.max(batch.next_offset());
            continue;
        }
        if batch.next_offset() <= from {
            continue;
        }
        if batch.attributes().is_transactional() && aborting.contains(&batch.producer_id()) {
            next = next.max(batch.next_offset());
            continue;
        }
        if bytes >= limit {
            break;
        }
        let decoded = batch.records().map_err(|e| corrupt(&e, next))?;
        let base = batch.base_offset();
        for record in decoded {
            let offset = record.offset(base);
            if offset < from {
                continue;
            }
            let timestamp = batch.record_timestamp(&record);
            let record = ConsumerRecord {
                topic: tp.0.clone(),
                partition: tp.1,
                offset,
                timestamp,
                timestamp_type: batch.attributes().timestamp_type(),
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                    .collect(),
            };
            bytes += record_size(&record);
            records.push(record);
        }
        next = next.max(batch.next_offset());
    }
    Ok((records, next, bytes))
}

/// Approximate memory a buffered record holds (for the `fetch.max.bytes` bound).
pub(crate) fn record_size(record: &ConsumerRecord) -> usize {
    64 + record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::batch::{
        Compression, ControlRecordType, EndTransactionMarker, RecordBatchBuilder,
    };

    fn batch(base: i64, values: &[&str], producer: Option<i64>) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(base, Compression::None);
        if let Some(pid) = producer {
            b = b.producer(pid, 0, 0).transactional(true);
        }
        for (i, v) in values.iter().enumerate() {
            b.append(base + i as i64, 10, None, Some(v.as_bytes()), &[]);
        }
        b.build().unwrap()
    }

    fn abort_marker(offset: i64, producer: i64) -> Vec<u8> {
        let marker = EndTransactionMarker {
            control_type: ControlRecordType::Abort,
            coordinator_epoch: 0,
        };
        let mut b = RecordBatchBuilder::new(offset, Compression::None)
            .producer(producer, 0, -1)
            .transactional(true)
            .control(true);
        b.append(
            offset,
            10,
            Some(&ControlRecordType::Abort.key_bytes()),
            Some(&marker.value_bytes()),
            &[],
        );
        b.build().unwrap()
    }

    #[test]
    fn read_committed_drops_aborted_transactions_and_skips_markers() {
        let mut data = batch(0, &["a", "b"], None);
        data.extend(batch(2, &["x", "y"], Some(7)));
        data.extend(abort_marker(4, 7));
        data.extend(batch(5, &["c"], None));
        let data = Bytes::from(data);
        let tp = ("t".to_string(), 0);
        let values = |records: &[ConsumerRecord]| -> Vec<String> {
            records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned())
                .collect()
        };
        let (records, next, _) =
            decode(&tp, 0, data.clone(), Some(vec![(7, 2)]), usize::MAX).unwrap();
        assert_eq!(values(&records), ["a", "b", "c"]);
        assert_eq!(next, 6);
        let (records, _, _) = decode(&tp, 0, data.clone(), None, usize::MAX).unwrap();
        assert_eq!(values(&records), ["a", "b", "x", "y", "c"]);
        // Starting inside a batch returns only what follows.
        let (records, _, _) = decode(&tp, 1, data, None, usize::MAX).unwrap();
        assert_eq!(records[0].offset, 1);
    }

    #[test]
    fn decoding_stops_at_the_limit_and_resumes_at_the_next_batch() {
        let mut data = batch(0, &["a", "b"], None);
        data.extend(batch(2, &["c"], None));
        data.extend(batch(3, &["d"], None));
        let data = Bytes::from(data);
        let tp = ("t".to_string(), 0);
        // A limit of one byte: only the first batch is decoded, and fetching resumes after it.
        let (records, next, bytes) = decode(&tp, 0, data.clone(), None, 1).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(next, 2);
        // Just enough for the first batch and one more record: the second batch too.
        let (records, next, _) = decode(&tp, 0, data.clone(), None, bytes + 1).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(next, 3);
        let (records, next, _) = decode(&tp, next, data, None, 1).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(next, 4);
    }

    #[tokio::test]
    async fn a_task_ends_once_its_broker_leads_nothing() {
        let config = ConsumerConfig::new("127.0.0.1:1");
        let cluster = Cluster::new(config.common.clone());
        let fetcher = Fetcher::new(cluster, Arc::new(config));
        let task = |broker| BrokerFetch {
            broker,
            shared: Arc::clone(&fetcher.shared),
            data_ready: Arc::clone(&fetcher.data_ready),
            wake: Arc::clone(&fetcher.wake),
            cluster: Arc::clone(&fetcher.cluster),
            config: Arc::clone(&fetcher.config),
        };
        let mut p = PartitionState::new();
        p.leader = Some(1);
        fetcher.shared.lock().partitions.insert(("t".into(), 0), p);
        // Broker 1 leads the (not yet positioned) partition: idle, but alive.
        assert!(task(1).select().is_some_and(|r| r.is_empty()));
        // Broker 2 leads nothing: its task ends at once instead of waking every 100 ms.
        tokio::time::timeout(Duration::from_secs(1), task(2).run())
            .await
            .expect("the task ends");
    }

    #[test]
    fn epochs_are_never_reused_across_reassignment() {
        // A partition revoked and assigned again must not match a Fetch of its earlier self.
        let mut first = PartitionState::new();
        let old = first.epoch;
        first.seek(5);
        assert_ne!(first.epoch, old);
        let again = PartitionState::new();
        assert!(again.epoch > first.epoch);
    }
}

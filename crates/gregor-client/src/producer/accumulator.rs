//! The record accumulator: per-partition queues of open batches, filled by `send` and drained by
//! the sender, as in the Java client's `RecordAccumulator`.
//!
//! Records of a topic whose metadata is not known yet wait in an unresolved queue (in send
//! order) until the sender has fetched it; then they are partitioned and batched. A batch is
//! ready to send when it is full (`batch.size`), when another batch queues behind it, when it
//! has waited `linger.ms`, or when the producer flushes or closes. Each Produce request carries
//! at most one batch per partition (Kafka accepts exactly one batch per partition and request).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{Compression, RecordBatchBuilder, RecordHeader};

use super::partitioner::{Rng, partition_for_key};
use super::{Completion, ProducerRecord};
use crate::cluster::TopicInfo;
use crate::error::ClientError;

/// Bytes a record adds to a batch beyond its key, value and headers (varint lengths, deltas,
/// attributes): an upper bound, used to decide whether a record still fits.
const RECORD_OVERHEAD: usize = 22;

/// A record accepted by `send`, not yet in a batch.
pub(crate) struct Pending {
    pub(crate) record: ProducerRecord,
    pub(crate) completion: Completion,
    pub(crate) enqueued: Instant,
}

/// One batch for one partition, and the callers waiting for it.
pub(crate) struct Batch {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// Open for appends while `Some`; taken when the batch is drained.
    pub(crate) builder: Option<RecordBatchBuilder>,
    /// The encoded batch, kept for retries.
    pub(crate) bytes: Option<Bytes>,
    /// Each record's completion and timestamp, in offset order.
    pub(crate) completions: Vec<(Completion, i64)>,
    pub(crate) created: Instant,
    pub(crate) attempts: u32,
    pub(crate) retry_at: Option<Instant>,
}

impl Batch {
    fn is_full(&self, batch_size: usize) -> bool {
        self.builder
            .as_ref()
            .is_none_or(|b| b.uncompressed_size() >= batch_size)
    }

    /// Size of the batch on the wire, as far as it is known before encoding.
    pub(crate) fn wire_size(&self) -> usize {
        match (&self.bytes, &self.builder) {
            (Some(bytes), _) => bytes.len(),
            (None, Some(builder)) => builder.uncompressed_size(),
            (None, None) => 0,
        }
    }
}

struct TopicState {
    info: TopicInfo,
    queues: HashMap<i32, VecDeque<Batch>>,
    sticky: Option<i32>,
}

/// What the producer's sender needs to know after an append.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Into an existing open batch that is not full yet: nothing to wake.
    Quietly,
    /// A new batch was opened or one became full, or the record waits for metadata: the
    /// sender should look again.
    WakeSender,
}

/// The per-partition batch queues of one producer.
pub(crate) struct Accumulator {
    compression: Compression,
    batch_size: usize,
    max_request_size: usize,
    linger: Duration,
    topics: HashMap<String, TopicState>,
    unresolved: HashMap<String, VecDeque<Pending>>,
    rng: Rng,
}

/// A record that failed before being batched, to be completed outside the producer's lock.
pub(crate) type Failed = (Completion, ClientError);

impl Accumulator {
    pub(crate) fn new(
        compression: Compression,
        batch_size: usize,
        max_request_size: usize,
        linger: Duration,
    ) -> Accumulator {
        Accumulator {
            compression,
            batch_size: batch_size.max(1),
            max_request_size,
            linger,
            topics: HashMap::new(),
            unresolved: HashMap::new(),
            rng: Rng::new(),
        }
    }

    /// Adds a record: into its partition's open batch, or to the topic's unresolved queue when
    /// its metadata is not known (or older records are still waiting there).
    pub(crate) fn append(&mut self, pending: Pending) -> Result<Appended, Failed> {
        let size = estimated_size(&pending.record);
        if size > self.max_request_size {
            return Err((
                pending.completion,
                ClientError::Kafka {
                    code: ErrorCode::MESSAGE_TOO_LARGE,
                    message: Some(format!(
                        "a record of about {size} bytes exceeds max.request.size {}",
                        self.max_request_size
                    )),
                },
            ));
        }
        let topic = pending.record.topic.as_str();
        if !self.topics.contains_key(topic) || self.unresolved.contains_key(topic) {
            self.unresolved
                .entry(topic.to_string())
                .or_default()
                .push_back(pending);
            return Ok(Appended::WakeSender);
        }
        self.append_resolved(pending, size)
    }

    fn append_resolved(&mut self, pending: Pending, size: usize) -> Result<Appended, Failed> {
        let Pending {
            record,
            completion,
            enqueued,
        } = pending;
        let batch_size = self.batch_size;
        let compression = self.compression;
        let state = self
            .topics
            .get_mut(&record.topic)
            .expect("caller checked the topic is known");
        let count = state.info.partitions.len() as i32;
        let partition = match (record.partition, &record.key) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err((
                    completion,
                    ClientError::Kafka {
                        code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        message: Some(format!(
                            "partition {p} of topic {} does not exist (it has {count})",
                            record.topic
                        )),
                    },
                ));
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => match state.sticky {
                Some(p) => p,
                None => {
                    let available: Vec<i32> = state
                        .info
                        .partitions
                        .iter()
                        .filter(|p| p.leader >= 0)
                        .map(|p| p.id)
                        .collect();
                    let p = if available.is_empty() {
                        self.rng.below(count as usize) as i32
                    } else {
                        available[self.rng.below(available.len())]
                    };
                    state.sticky = Some(p);
                    p
                }
            },
        };
        let queue = state.queues.entry(partition).or_default();
        let mut wake = Appended::Quietly;
        let fits = queue.back().is_some_and(|b| {
            b.builder
                .as_ref()
                .is_some_and(|builder| builder.uncompressed_size() + size <= batch_size)
        });
        if !fits {
            if let Some(last) = queue.back_mut() {
                // The open batch is full: it is ready now, and null keys move on.
                if last.builder.is_some() && state.sticky == Some(partition) {
                    state.sticky = None;
                }
            }
            queue.push_back(Batch {
                topic: record.topic.clone(),
                partition,
                builder: Some(RecordBatchBuilder::new(0, compression)),
                bytes: None,
                completions: Vec::new(),
                created: enqueued,
                attempts: 0,
                retry_at: None,
            });
            wake = Appended::WakeSender;
        }
        let batch = queue.back_mut().expect("just ensured");
        let builder = batch.builder.as_mut().expect("open batch");
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<RecordHeader> = record
            .headers
            .into_iter()
            .map(|(k, v)| RecordHeader {
                key: Bytes::from(k),
                value: v,
            })
            .collect();
        builder.append(
            builder.record_count() as i64,
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
        );
        batch.completions.push((completion, timestamp));
        if batch.is_full(batch_size) {
            if state.sticky == Some(partition) && record.key.is_none() {
                state.sticky = None;
            }
            wake = Appended::WakeSender;
        }
        Ok(wake)
    }

    /// Topics whose records wait for metadata.
    pub(crate) fn unresolved_topics(&self) -> Vec<String> {
        self.unresolved.keys().cloned().collect()
    }

    /// The partition count of a known topic.
    pub(crate) fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics.get(topic).map(|t| t.info.partitions.len())
    }

    /// New metadata for a topic: updates leaders and batches the records that waited for it.
    pub(crate) fn set_metadata(&mut self, info: TopicInfo) -> Vec<Failed> {
        let name = info.name.clone();
        match self.topics.get_mut(&name) {
            Some(state) => state.info = info,
            None => {
                self.topics.insert(
                    name.clone(),
                    TopicState {
                        info,
                        queues: HashMap::new(),
                        sticky: None,
                    },
                );
            }
        }
        let mut failed = Vec::new();
        if let Some(waiting) = self.unresolved.remove(&name) {
            for pending in waiting {
                let size = estimated_size(&pending.record);
                if let Err(f) = self.append_resolved(pending, size) {
                    failed.push(f);
                }
            }
        }
        failed
    }

    /// Fails the unresolved records of `topic` (metadata cannot be had).
    pub(crate) fn fail_unresolved(
        &mut self,
        topic: &str,
        error: &ClientError,
        only_older_than: Option<Instant>,
    ) -> Vec<Failed> {
        let Some(queue) = self.unresolved.get_mut(topic) else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        while let Some(front) = queue.front() {
            if only_older_than.is_some_and(|t| front.enqueued > t) {
                break;
            }
            let pending = queue.pop_front().expect("front exists");
            failed.push((pending.completion, error.clone()));
        }
        if queue.is_empty() {
            self.unresolved.remove(topic);
        }
        failed
    }

    /// The leader of a partition per the producer's metadata (`None`: unknown).
    fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics
            .get(topic)?
            .info
            .partitions
            .iter()
            .find(|p| p.id == partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }

    /// Fails queued (not in flight) batches older than `delivery.timeout.ms`.
    pub(crate) fn expire(&mut self, now: Instant, delivery_timeout: Duration) -> Vec<Batch> {
        let mut expired = Vec::new();
        for state in self.topics.values_mut() {
            for queue in state.queues.values_mut() {
                while queue
                    .front()
                    .is_some_and(|b| now.duration_since(b.created) >= delivery_timeout)
                {
                    expired.push(queue.pop_front().expect("front exists"));
                }
            }
        }
        expired
    }

    /// Takes the ready batches, at most one per partition and up to `max.request.size` bytes
    /// per broker, for brokers that may take another request (`may_send`). Returns the
    /// batches per leader, the topics whose leaders are unknown, and when to look again.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        force: bool,
        may_send: &mut dyn FnMut(i32) -> bool,
    ) -> Drained {
        let mut drained = Drained::default();
        let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
        for (name, state) in &self.topics {
            for (partition, queue) in &state.queues {
                let Some(front) = queue.front() else {
                    continue;
                };
                if let Some(at) = front.retry_at.filter(|at| *at > now) {
                    drained.wake_at = earliest(drained.wake_at, at);
                    continue;
                }
                let deadline = front.created + self.linger;
                let ready =
                    force || queue.len() > 1 || front.is_full(self.batch_size) || deadline <= now;
                if !ready {
                    drained.wake_at = earliest(drained.wake_at, deadline);
                    continue;
                }
                match self.leader(name, *partition) {
                    Some(leader) => by_leader
                        .entry(leader)
                        .or_default()
                        .push((name.clone(), *partition)),
                    None => {
                        if !drained.leaderless.contains(name) {
                            drained.leaderless.push(name.clone());
                        }
                    }
                }
            }
        }
        for (leader, mut partitions) in by_leader {
            if !may_send(leader) {
                continue;
            }
            partitions.sort();
            let mut request = Vec::new();
            let mut bytes = 0;
            for (topic, partition) in partitions {
                let state = self.topics.get_mut(&topic).expect("listed above");
                let queue = state.queues.get_mut(&partition).expect("listed above");
                let size = queue.front().map_or(0, Batch::wire_size);
                if !request.is_empty() && bytes + size > self.max_request_size {
                    break;
                }
                bytes += size;
                let batch = queue.pop_front().expect("listed above");
                if batch.builder.is_some() && state.sticky == Some(partition) {
                    state.sticky = None;
                }
                request.push(batch);
            }
            drained.requests.push((leader, request));
        }
        drained
    }

    /// Puts a batch that failed with a retriable error back at the head of its queue.
    pub(crate) fn requeue(&mut self, batch: Batch) {
        if let Some(state) = self.topics.get_mut(&batch.topic) {
            state
                .queues
                .entry(batch.partition)
                .or_default()
                .push_front(batch);
        }
    }
}

/// What [`Accumulator::drain`] found.
#[derive(Default)]
pub(crate) struct Drained {
    /// Batches per leader broker, one request each.
    pub(crate) requests: Vec<(i32, Vec<Batch>)>,
    /// Topics with a ready batch whose leader is unknown: refresh their metadata.
    pub(crate) leaderless: Vec<String>,
    /// When the next batch becomes ready by `linger.ms` or retry backoff.
    pub(crate) wake_at: Option<Instant>,
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn estimated_size(record: &ProducerRecord) -> usize {
    RECORD_OVERHEAD
        + record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + record
            .headers
            .iter()
            .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
}

/// Milliseconds since the Unix epoch: a record's CreateTime.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::PartitionInfo;
    use crate::producer::Deliver;

    fn topic(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            id: uuid::Uuid::nil(),
            internal: false,
            partitions: (0..partitions)
                .map(|id| PartitionInfo {
                    id,
                    leader: 1,
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    error_code: 0,
                })
                .collect(),
        }
    }

    fn pending(partition: i32, value: usize) -> Pending {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        Pending {
            record: ProducerRecord::new("t", vec![0u8; value]).with_partition(partition),
            completion: Completion {
                seq: 0,
                to: Deliver::Channel(tx),
            },
            enqueued: Instant::now(),
        }
    }

    #[test]
    fn batches_fill_to_batch_size_and_drain_one_per_partition_per_request() {
        let mut acc = Accumulator::new(Compression::None, 4096, 1 << 20, Duration::from_secs(60));
        // Unknown topic: records wait for metadata, then are batched in order.
        assert_eq!(
            acc.append(pending(0, 1000)).ok(),
            Some(Appended::WakeSender)
        );
        assert_eq!(acc.unresolved_topics(), ["t"]);
        assert!(acc.set_metadata(topic("t", 2)).is_empty());
        for _ in 0..9 {
            acc.append(pending(0, 1000)).ok().unwrap();
        }
        acc.append(pending(1, 10)).ok().unwrap();
        assert!(
            acc.append(pending(5, 10)).is_err(),
            "partition 5 does not exist"
        );

        // 10 records of ~1 KiB in 4 KiB batches: 3 full ones and an open one; partition 1's
        // lone small batch waits for linger.ms.
        let now = Instant::now();
        let mut always = |_| true;
        let first = acc.drain(now, false, &mut always);
        assert_eq!(first.requests.len(), 1);
        let (leader, batches) = &first.requests[0];
        assert_eq!((*leader, batches.len(), batches[0].partition), (1, 1, 0));
        assert_eq!(batches[0].completions.len(), 3);
        assert!(first.wake_at.is_some());
        let second = acc.drain(now, false, &mut always);
        assert_eq!(second.requests[0].1.len(), 1);
        // A flush sends everything, one batch per partition per request.
        let flushed = acc.drain(now, true, &mut always);
        let partitions: Vec<i32> = flushed.requests[0].1.iter().map(|b| b.partition).collect();
        assert_eq!(partitions, [0, 1]);
        let last = acc.drain(now, true, &mut always);
        let counts: Vec<usize> = last.requests[0]
            .1
            .iter()
            .map(|b| b.completions.len())
            .collect();
        assert_eq!(counts, [1]);
        assert!(acc.drain(now, true, &mut always).requests.is_empty());
        // A broker at its in-flight limit gets nothing.
        acc.append(pending(0, 10)).ok().unwrap();
        assert!(acc.drain(now, true, &mut |_| false).requests.is_empty());
    }
}

//! `__consumer_offsets`: where the coordinator writes group metadata and committed offsets,
//! and what it replays on start.
//!
//! The topic is created the first time a client looks for a coordinator (as Kafka does), with
//! `cleanup.policy=compact`, so only the latest record per key survives cleaning, and
//! `offsets.topic.replication.factor` replicas (at most as many as there are live brokers).
//! Writes go through the partition's leader like a producer's `acks=all`: the coordinator
//! answers once every in-sync replica has them, so a new coordinator elected from the ISR
//! knows every answered commit.

use std::sync::Arc;

use super::records::CoordinatorRecord;
use crate::internal_topic::{
    self, InternalRecord, InternalTopic, InternalTopicError, InternalTopicSpec,
    TransactionalProducer,
};
use crate::replica::ReplicaManager;
use crate::topics::TopicRegistry;

/// Kafka's name for the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why the offsets topic could not be written or read: what every internal topic can fail
/// with, including [`InternalTopicError::Refused`] when the log turns a transactional commit
/// down for the producer's sake (INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE).
pub type StoreError = InternalTopicError;

/// One entry of `__consumer_offsets` as [`OffsetsTopic::replay`] meets it, in log order: the
/// coordinator needs each record's place in the log and its transaction, if any, to rebuild
/// transactional offset commits (KIP-98) exactly as they stood.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "handed to the replay callback one at a time, never stored"
)]
pub enum Replayed {
    /// A coordinator record.
    Record {
        /// Its offset in the partition (a committed transactional offset only replaces an
        /// older one).
        offset: i64,
        /// The producer whose transaction wrote it, or `None` for a plain write.
        producer_id: Option<i64>,
        /// The record.
        record: CoordinatorRecord,
    },
    /// A transaction marker: `producer_id`'s transaction ended in this partition.
    TxnMarker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// Committed (`true`) or aborted.
        commit: bool,
    },
}

/// Reads and writes `__consumer_offsets`: coordinator records over an [`InternalTopic`].
pub struct OffsetsTopic {
    topic: InternalTopic,
}

impl OffsetsTopic {
    /// The offsets topic with `partitions` partitions (`offsets.topic.num.partitions`),
    /// `segment_bytes` segments (`offsets.topic.segment.bytes`) and up to `replication_factor`
    /// replicas (`offsets.topic.replication.factor`) once created. Must be called within the
    /// broker's runtime.
    pub fn new(
        replicas: Arc<ReplicaManager>,
        topics: Arc<TopicRegistry>,
        partitions: i32,
        segment_bytes: u64,
        replication_factor: i16,
    ) -> OffsetsTopic {
        let spec = InternalTopicSpec {
            name: OFFSETS_TOPIC,
            partitions,
            replication_factor,
            min_insync_replicas: None,
            segment_bytes,
            // Kafka creates it with `compression.type=producer`, the default here.
            extra_configs: &[],
        };
        OffsetsTopic {
            topic: InternalTopic::new(spec, replicas, topics),
        }
    }

    /// Partitions of the topic: as created if it exists (a later config change must not move
    /// groups), else as configured.
    pub fn partitions(&self) -> i32 {
        self.topic.partitions()
    }

    /// The partition that holds `group`: Kafka's `abs(groupId.hashCode) % partitions`.
    pub fn partition_for(&self, group: &str) -> i32 {
        partition_for(group, self.partitions())
    }

    /// Creates the topic if it does not exist yet. Blocks on the controller: call from a
    /// blocking thread.
    pub fn ensure_created(&self) -> Result<(), StoreError> {
        self.topic.ensure_created()
    }

    /// Appends `records` to `partition` as one batch and waits until every in-sync replica has
    /// them; `transactional` names the producer (id, epoch) whose transaction the batch belongs
    /// to (TxnOffsetCommit). Returns the offset of the first record (the others follow it one
    /// by one), `None` when there was nothing to write. Blocks: call from a blocking thread.
    pub fn append(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        transactional: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let records = records
            .iter()
            .map(|record| {
                let (key, value) = record.encode().map_err(|e| StoreError::Log {
                    topic: OFFSETS_TOPIC,
                    partition,
                    message: e.to_string(),
                })?;
                Ok(InternalRecord {
                    key: key.into(),
                    value: value.map(Into::into),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let producer = transactional.map(|(producer_id, producer_epoch)| TransactionalProducer {
            producer_id,
            producer_epoch,
        });
        self.topic.append(partition, &records, producer, now_ms)
    }

    /// Calls `apply` with every record and transaction marker of `partition`, oldest first.
    /// Records Gregor does not keep are skipped; undecodable ones are logged and skipped (a
    /// tool may have written them), so one bad record cannot keep every group of a partition
    /// from loading. Control records other than transaction markers are skipped too.
    pub fn replay(
        &self,
        partition: i32,
        mut apply: impl FnMut(Replayed),
    ) -> Result<(), StoreError> {
        self.topic.replay(partition, |entry| match entry {
            internal_topic::Replayed::Marker {
                producer_id,
                commit,
            } => apply(Replayed::TxnMarker {
                producer_id,
                commit,
            }),
            internal_topic::Replayed::Data {
                key,
                value,
                offset,
                producer_id,
                transactional,
            } => match CoordinatorRecord::decode(key, value) {
                Ok(Some(record)) => apply(Replayed::Record {
                    offset,
                    producer_id: transactional.then_some(producer_id),
                    record,
                }),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(partition, error = %e, "skipping undecodable record in {OFFSETS_TOPIC}")
                }
            },
        })
    }
}

/// `abs(javaStringHashCode(group)) % partitions`, with Kafka's `Utils.abs` (which maps
/// `Integer.MIN_VALUE` to 0), so a group lands where Kafka would put it.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "".hashCode() == 0; "a".hashCode() == 97; "group".hashCode() == 98629247;
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE (Utils.abs gives 0).
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "abcdefghij".hashCode() == -634317659: the absolute value is taken before the modulo.
        assert_eq!(partition_for("abcdefghij", 50), 634_317_659 % 50);
        // Characters outside the BMP hash as two UTF-16 units, as in Java.
        assert_eq!(
            partition_for("😀", 1000),
            (0xD83Di32 * 31 + 0xDE00).abs() % 1000
        );
    }
}

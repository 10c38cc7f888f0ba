//! `__consumer_offsets`: where the coordinator writes group metadata and committed offsets,
//! and what it replays on start.
//!
//! The topic is created the first time a client looks for a coordinator (as Kafka does), with
//! `cleanup.policy=compact`, so only the latest record per key survives cleaning, and
//! `offsets.topic.replication.factor` replicas (at most as many as there are live brokers).
//! Writes go through the partition's leader like a producer's `acks=all`: the coordinator
//! answers once every in-sync replica has them, so a new coordinator elected from the ISR
//! knows every answered commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::{AppendOrigin, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{
    BatchIter, Compression, ControlRecordType, EndTransactionMarker, RecordBatchBuilder,
};

use super::records::CoordinatorRecord;
use crate::replica::ReplicaManager;
use crate::topics::TopicRegistry;

/// How long a write may wait for the in-sync replicas (Kafka's `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka's name for the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why the offsets topic could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating the topic failed.
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    Create(String),
    /// This broker does not lead the partition (anymore).
    #[error("{OFFSETS_TOPIC}-{0} is not led by this broker")]
    NotLeader(i32),
    /// The in-sync replicas did not confirm the write.
    #[error("{OFFSETS_TOPIC}-{partition}: replication failed: {code:?}")]
    Replication {
        /// The partition.
        partition: i32,
        /// Why.
        code: ErrorCode,
    },
    /// The log refused a transactional write for the producer's sake (a fenced epoch, a
    /// transaction in the wrong state): the client is told why.
    #[error("{OFFSETS_TOPIC}-{partition}: {message}")]
    Refused {
        /// The partition.
        partition: i32,
        /// The producer's error.
        code: ErrorCode,
        /// What the log said.
        message: String,
    },
    /// The log refused the append or read.
    #[error("{OFFSETS_TOPIC}-{partition}: {message}")]
    Log {
        /// The partition.
        partition: i32,
        /// What the log said.
        message: String,
    },
}

impl StoreError {
    /// What a client is told: `NOT_COORDINATOR` when it should look for the new coordinator,
    /// else the coordinator cannot serve the group right now.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            StoreError::NotLeader(_) => ErrorCode::NOT_COORDINATOR,
            StoreError::Refused { code, .. } => *code,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }
}

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

/// Reads and writes `__consumer_offsets`.
pub struct OffsetsTopic {
    replicas: Arc<ReplicaManager>,
    topics: Arc<TopicRegistry>,
    configured_partitions: i32,
    segment_bytes: u64,
    replication_factor: i16,
    /// The runtime the coordinator's blocking callers wait on (controller and replication).
    runtime: tokio::runtime::Handle,
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
        OffsetsTopic {
            replicas,
            topics,
            configured_partitions: partitions,
            segment_bytes,
            replication_factor,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Partitions of the topic: as created if it exists (a later config change must not move
    /// groups), else as configured.
    pub fn partitions(&self) -> i32 {
        self.topics
            .get(OFFSETS_TOPIC)
            .map_or(self.configured_partitions, |t| t.partitions)
    }

    /// The partition that holds `group`: Kafka's `abs(groupId.hashCode) % partitions`.
    pub fn partition_for(&self, group: &str) -> i32 {
        partition_for(group, self.partitions())
    }

    /// Creates the topic if it does not exist yet. Blocks on the controller: call from a
    /// blocking thread.
    pub fn ensure_created(&self) -> Result<(), StoreError> {
        if self.topics.get(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let live = self.replicas.image().live_brokers().count().max(1);
        let replication_factor = self.replication_factor.min(live as i16);
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.segment_bytes.to_string()),
            ("compression.type".to_string(), "producer".to_string()),
        ]);
        let create = self.topics.create(
            OFFSETS_TOPIC,
            self.configured_partitions,
            replication_factor,
            BTreeMap::new(),
            configs,
            false,
        );
        match self.runtime.block_on(create) {
            Ok(_) => Ok(()),
            Err(_) if self.topics.get(OFFSETS_TOPIC).is_some() => Ok(()),
            Err(e) => Err(StoreError::Create(e.to_string())),
        }
    }

    /// Appends `records` to `partition` as one batch and waits until every in-sync replica has
    /// them; `transactional` names the producer (id, epoch) whose transaction the batch belongs
    /// to (TxnOffsetCommit), which Kafka marks on the batch so the transaction's marker settles
    /// it. Returns the offset of the first record (the others follow it one by one), `None`
    /// when there was nothing to write. Blocks: call from a blocking thread.
    pub fn append(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        transactional: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        if records.is_empty() {
            return Ok(None);
        }
        self.ensure_created()?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let leader = self
            .replicas
            .leader_partition(&tp)
            .map_err(|_| StoreError::NotLeader(partition))?;
        let failed = |e: &dyn std::fmt::Display| StoreError::Log {
            partition,
            message: e.to_string(),
        };
        let mut builder = RecordBatchBuilder::new(0, Compression::None);
        if let Some((producer_id, producer_epoch)) = transactional {
            // Kafka's coordinator writes its transactional batches with sequence 0.
            builder = builder
                .producer(producer_id, producer_epoch, 0)
                .transactional(true);
        }
        for (i, record) in records.iter().enumerate() {
            let (key, value) = record.encode().map_err(|e| failed(&e))?;
            builder.append(i as i64, now_ms, Some(&key), value.as_deref(), &[]);
        }
        let mut batch = builder.build().map_err(|e| failed(&e))?;
        let min_insync = self.replicas.min_insync_replicas(OFFSETS_TOPIC);
        // Transactional commits are checked against the producer's epoch (a fenced producer's
        // commit is refused), but carry no sequence of the producer's own.
        let origin = if transactional.is_some() {
            AppendOrigin::Coordinator
        } else {
            AppendOrigin::Client
        };
        let (info, epoch) = leader
            .append_as_leader(&mut batch, -1, min_insync, origin, now_ms)
            .map_err(|e| match e.error_code() {
                ErrorCode::NOT_LEADER_OR_FOLLOWER => StoreError::NotLeader(partition),
                code @ (ErrorCode::INVALID_PRODUCER_EPOCH | ErrorCode::INVALID_TXN_STATE) => {
                    StoreError::Refused {
                        partition,
                        code,
                        message: e.to_string(),
                    }
                }
                _ => failed(&e),
            })?;
        leader
            .log()
            .flush_if_required(&info, now_ms)
            .map_err(|e| failed(&e))?;
        self.replicas.wake_fetches();
        let replicated = ReplicaManager::wait_for_replication(
            &leader,
            info.last_offset,
            epoch,
            min_insync,
            COMMIT_TIMEOUT,
        );
        self.runtime
            .block_on(replicated)
            .map_err(|code| match code {
                ErrorCode::NOT_LEADER_OR_FOLLOWER => StoreError::NotLeader(partition),
                code => StoreError::Replication { partition, code },
            })?;
        Ok(Some(info.first_offset))
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
        let Some(log) = self
            .replicas
            .logs()
            .get_log(&TopicPartition::new(OFFSETS_TOPIC, partition))
        else {
            return Ok(());
        };
        let failed = |e: &dyn std::fmt::Display| StoreError::Log {
            partition,
            message: e.to_string(),
        };
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let Some(slice) = log
                .read(offset, 1 << 20, None, true)
                .map_err(|e| failed(&e))?
            else {
                break;
            };
            let bytes = slice.read_to_vec().map_err(|e| failed(&e))?;
            let mut next = offset;
            for batch in BatchIter::new(&bytes) {
                let batch = batch.map_err(|e| failed(&e))?;
                next = batch.last_offset() + 1;
                let attributes = batch.attributes();
                let producer_id = batch.producer_id();
                for record in batch.records().map_err(|e| failed(&e))? {
                    if attributes.is_control() {
                        match EndTransactionMarker::from_record(&record) {
                            Ok(marker) => apply(Replayed::TxnMarker {
                                producer_id,
                                commit: marker.control_type == ControlRecordType::Commit,
                            }),
                            Err(e) => {
                                tracing::debug!(partition, error = %e, "skipping a control record in {OFFSETS_TOPIC}")
                            }
                        }
                        continue;
                    }
                    let Some(key) = record.key.as_deref() else {
                        continue;
                    };
                    match CoordinatorRecord::decode(key, record.value.as_deref()) {
                        Ok(Some(decoded)) => apply(Replayed::Record {
                            offset: record.offset(batch.base_offset()),
                            producer_id: attributes.is_transactional().then_some(producer_id),
                            record: decoded,
                        }),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(partition, error = %e, "skipping undecodable record in {OFFSETS_TOPIC}")
                        }
                    }
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
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

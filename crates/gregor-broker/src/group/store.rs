//! `__consumer_offsets`: where the coordinator writes group metadata and committed offsets,
//! and what it replays on start.
//!
//! The topic is created the first time a client looks for a coordinator (as Kafka does), with
//! `cleanup.policy=compact`, so only the latest record per key survives cleaning. Writes go
//! through the partition's `Log` like a producer's, and are durable before the coordinator
//! answers (the log's `flush.messages` policy, by default every append).

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_log::{LogManager, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{BatchIter, Compression, RecordBatchBuilder};

use super::records::CoordinatorRecord;
use crate::topics::{LEADER_EPOCH, TopicRegistry};

/// Kafka's name for the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why the offsets topic could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating the topic failed.
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    Create(String),
    /// The partition's log is missing (deleted or offline).
    #[error("{OFFSETS_TOPIC}-{0} is not available")]
    Unavailable(i32),
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
    /// What a client is told: the coordinator cannot serve the group right now.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    }
}

/// Reads and writes `__consumer_offsets`.
pub struct OffsetsTopic {
    logs: Arc<LogManager>,
    topics: Arc<TopicRegistry>,
    configured_partitions: i32,
    segment_bytes: u64,
}

impl OffsetsTopic {
    /// The offsets topic with `partitions` partitions (`offsets.topic.num.partitions`) and
    /// `segment_bytes` segments (`offsets.topic.segment.bytes`) once created.
    pub fn new(
        logs: Arc<LogManager>,
        topics: Arc<TopicRegistry>,
        partitions: i32,
        segment_bytes: u64,
    ) -> OffsetsTopic {
        OffsetsTopic {
            logs,
            topics,
            configured_partitions: partitions,
            segment_bytes,
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

    /// Creates the topic if it does not exist yet.
    pub fn ensure_created(&self, now_ms: i64) -> Result<(), StoreError> {
        if self.topics.get(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.segment_bytes.to_string()),
            ("compression.type".to_string(), "producer".to_string()),
        ]);
        match self.topics.create(
            OFFSETS_TOPIC,
            self.configured_partitions,
            1,
            configs,
            false,
            now_ms,
        ) {
            Ok(_) => Ok(()),
            Err(_) if self.topics.get(OFFSETS_TOPIC).is_some() => Ok(()),
            Err(e) => Err(StoreError::Create(e.to_string())),
        }
    }

    /// Appends `records` to `partition` as one batch and waits until they are durable.
    pub fn append(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_created(now_ms)?;
        let log = self
            .logs
            .get_log(&TopicPartition::new(OFFSETS_TOPIC, partition))
            .ok_or(StoreError::Unavailable(partition))?;
        let failed = |e: &dyn std::fmt::Display| StoreError::Log {
            partition,
            message: e.to_string(),
        };
        let mut builder = RecordBatchBuilder::new(0, Compression::None);
        for (i, record) in records.iter().enumerate() {
            let (key, value) = record.encode().map_err(|e| failed(&e))?;
            builder.append(i as i64, now_ms, Some(&key), value.as_deref(), &[]);
        }
        let mut batch = builder.build().map_err(|e| failed(&e))?;
        let info = log
            .append_as_leader(&mut batch, LEADER_EPOCH, now_ms)
            .map_err(|e| failed(&e))?;
        log.flush_if_required(&info, now_ms).map_err(|e| failed(&e))
    }

    /// Calls `apply` with every record of `partition`, oldest first. Records Gregor does not
    /// keep are skipped; undecodable ones are logged and skipped (a tool may have written
    /// them), so one bad record cannot keep every group of a partition from loading.
    pub fn replay(
        &self,
        partition: i32,
        mut apply: impl FnMut(CoordinatorRecord),
    ) -> Result<(), StoreError> {
        let Some(log) = self
            .logs
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
                if batch.attributes().is_control() {
                    continue;
                }
                for record in batch.records().map_err(|e| failed(&e))? {
                    let Some(key) = record.key.as_deref() else {
                        continue;
                    };
                    match CoordinatorRecord::decode(key, record.value.as_deref()) {
                        Ok(Some(r)) => apply(r),
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

//! Per-log configuration under Kafka's topic-level keys and defaults.
//!
//! A [`LogConfig`] is immutable; a topic config change builds a new one and swaps it into the
//! [`Log`](crate::Log), so settings apply live without locking the append path.

use gregor_protocol::batch::TimestampType;

use crate::error::{LogError, Result};

/// `cleanup.policy`: what happens to old segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: remove whole segments by time and size.
    pub delete: bool,
    /// `compact`: keep the latest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// Parses Kafka's comma-separated list (`delete`, `compact`, `compact,delete`).
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in value.split(',').map(str::trim) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// The settings one partition log runs with. Field docs name the Kafka key and default.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB): roll the active segment when an append would pass this size.
    pub segment_bytes: u64,
    /// `segment.ms` (7 days): roll a segment whose first batch is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes` (10 MiB): size index files are preallocated to; a full index rolls.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes` (4096): log bytes between two offset index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms` (7 days, -1 = forever): delete segments whose newest record is older.
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited): delete the oldest segments beyond this total size.
    pub retention_bytes: i64,
    /// `file.delete.delay.ms` (60 s): how long `.deleted` files linger for in-flight readers.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` (delete).
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio` (0.5): dirty share of the log that triggers compaction.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms` (1 day): how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms` (0): records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.message.bytes` (1 MiB + 12): largest record batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type` (CreateTime).
    pub message_timestamp_type: TimestampType,
    /// `flush.messages`: fsync once this many messages are unflushed. Gregor's default is 1,
    /// not Kafka's `Long.MAX_VALUE`: every acknowledged append is durable, and group commit
    /// makes concurrent appends share one fsync (see `docs/divergences.md`).
    pub flush_messages: i64,
    /// `flush.ms` (`Long.MAX_VALUE`): fsync when the last flush is older than this.
    pub flush_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            file_delete_delay_ms: 60_000,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            flush_messages: 1,
            flush_ms: i64::MAX,
        }
    }
}

/// Kafka topic-level keys this config understands.
pub const LOG_CONFIG_KEYS: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "index.interval.bytes",
    "retention.ms",
    "retention.bytes",
    "file.delete.delay.ms",
    "cleanup.policy",
    "min.cleanable.dirty.ratio",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "flush.messages",
    "flush.ms",
];

fn invalid(key: &str, value: &str, reason: &str) -> LogError {
    LogError::InvalidConfig {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn int_at_least(key: &str, value: &str, min: i64) -> Result<i64> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not an integer"))?;
    if v < min {
        return Err(invalid(key, value, &format!("must be at least {min}")));
    }
    Ok(v)
}

impl LogConfig {
    /// Sets one Kafka topic-level key. Unknown keys are an error so that the caller can tell
    /// log settings from others (replication, compression) and report typos.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            // Kafka's floor for segment.bytes is the legacy record overhead (14 bytes).
            "segment.bytes" => self.segment_bytes = int_at_least(key, value, 14)? as u64,
            "segment.ms" => self.segment_ms = int_at_least(key, value, 1)?,
            "segment.index.bytes" => {
                self.segment_index_bytes = int_at_least(key, value, 12)? as u64
            }
            "index.interval.bytes" => {
                self.index_interval_bytes = int_at_least(key, value, 0)? as u64
            }
            "retention.ms" => self.retention_ms = int_at_least(key, value, -1)?,
            "retention.bytes" => self.retention_bytes = int_at_least(key, value, -1)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = int_at_least(key, value, 0)?,
            "cleanup.policy" => {
                self.cleanup_policy = CleanupPolicy::parse(value)
                    .ok_or_else(|| invalid(key, value, "expected delete, compact or both"))?
            }
            "min.cleanable.dirty.ratio" => {
                let v: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(key, value, "not a number"))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(key, value, "must be between 0 and 1"));
                }
                self.min_cleanable_dirty_ratio = v;
            }
            "delete.retention.ms" => self.delete_retention_ms = int_at_least(key, value, 0)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = int_at_least(key, value, 0)?,
            "max.message.bytes" => self.max_message_bytes = int_at_least(key, value, 0)? as usize,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
                }
            }
            "flush.messages" => self.flush_messages = int_at_least(key, value, 1)?,
            "flush.ms" => self.flush_ms = int_at_least(key, value, 0)?,
            _ => return Err(invalid(key, value, "not a log config key")),
        }
        Ok(())
    }

    /// The value of a Kafka topic-level key, formatted as Kafka prints it (DescribeConfigs);
    /// `None` for keys this config does not hold.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "file.delete.delay.ms" => self.file_delete_delay_ms.to_string(),
            "cleanup.policy" => self.cleanup_policy.to_string(),
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio.to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => match self.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            _ => return None,
        })
    }

    /// Builds a config from defaults plus `key=value` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut config = LogConfig::default();
        for (k, v) in pairs {
            config.set(k, v)?;
        }
        Ok(config)
    }

    /// Most entries an offset index of `segment.index.bytes` holds (8-byte entries).
    pub fn max_offset_index_entries(&self) -> usize {
        (self.segment_index_bytes / 8) as usize
    }

    /// Most entries a time index of `segment.index.bytes` holds (12-byte entries).
    pub fn max_time_index_entries(&self) -> usize {
        (self.segment_index_bytes / 12) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_keys_and_rejects_bad_values() {
        let c = LogConfig::from_pairs([
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ])
        .unwrap();
        assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
        for key in LOG_CONFIG_KEYS {
            let value = c.get(key).expect("every key has a value");
            let mut copy = LogConfig::default();
            copy.set(key, &value).unwrap();
            assert_eq!(copy.get(key), Some(value), "{key} round-trips");
        }
        assert_eq!(c.get("min.insync.replicas"), None);
        assert_eq!(c.cleanup_policy.to_string(), "compact,delete");
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        for (k, v) in [
            ("segment.bytes", "10"),
            ("retention.ms", "-2"),
            ("cleanup.policy", "shred"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("segment.ms", "soon"),
            ("no.such.key", "1"),
        ] {
            let err = LogConfig::from_pairs([(k, v)]).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}

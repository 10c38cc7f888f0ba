//! File and directory names, exactly as Kafka writes them.
//!
//! A segment is named by its base offset, zero-padded to 20 digits
//! (`00000000000000001234.log`); a partition directory is `<topic>-<partition>`.
//! Temporary suffixes mark files in transit: `.deleted` (awaiting removal), `.cleaned` (being
//! written by the cleaner) and `.swap` (cleaned, waiting to replace the originals).

use std::fmt;
use std::path::{Path, PathBuf};

/// Extension of a segment's record file.
pub const LOG_SUFFIX: &str = "log";
/// Extension of a segment's offset index.
pub const INDEX_SUFFIX: &str = "index";
/// Extension of a segment's time index.
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Appended to files scheduled for deletion.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Appended to files the cleaner is writing.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Appended to cleaned files about to replace the originals.
pub const SWAP_SUFFIX: &str = ".swap";
/// Per-partition leader epoch checkpoint.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Per-log-directory recovery points.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Per-log-directory log start offsets.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Per-log-directory high watermarks, written by the replica manager.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Directory of the cluster metadata log (Raft), in the metadata log directory. It looks like a
/// partition directory but belongs to the quorum, not to the `LogManager`.
pub const CLUSTER_METADATA_DIR: &str = "__cluster_metadata-0";
/// Per-log-directory cleaner progress (first dirty offset of each compacted log).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Marker a broker leaves in each log directory after a clean shutdown.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

/// `00000000000000001234` for offset 1234.
pub fn offset_file_stem(offset: i64) -> String {
    format!("{offset:020}")
}

/// Path of a segment file: `dir/<20-digit base offset>.<extension><suffix>`.
pub fn segment_file(dir: &Path, base_offset: i64, extension: &str, suffix: &str) -> PathBuf {
    dir.join(format!(
        "{}.{extension}{suffix}",
        offset_file_stem(base_offset)
    ))
}

/// Splits a segment file name into base offset, extension and temporary suffix
/// (`"00000000000000000100.log.swap"` → `(100, "log", ".swap")`). `None` for other files.
pub fn parse_segment_file(name: &str) -> Option<(i64, &str, &str)> {
    let (stem, rest) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base = stem.parse().ok()?;
    let (extension, suffix) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((base, extension, suffix))
}

/// A topic partition, the unit a [`Log`](crate::Log) stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Name of the partition's directory: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name. Topic names may contain `-`, so the partition is
    /// what follows the last one. Directories Kafka uses for deletion or moves
    /// (`*-delete`, `*-future`, `*-stray`) are not partitions.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TopicPartition {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
        })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kafka() {
        assert_eq!(offset_file_stem(1234), "00000000000000001234");
        assert_eq!(
            segment_file(Path::new("/d"), 7, INDEX_SUFFIX, DELETED_SUFFIX),
            PathBuf::from("/d/00000000000000000007.index.deleted")
        );
        assert_eq!(
            parse_segment_file("00000000000000000100.log.swap"),
            Some((100, "log", ".swap"))
        );
        assert_eq!(
            parse_segment_file("00000000000000000100.timeindex"),
            Some((100, "timeindex", ""))
        );
        assert_eq!(parse_segment_file("leader-epoch-checkpoint"), None);
        assert_eq!(
            TopicPartition::from_dir_name("my-topic-12"),
            Some(TopicPartition::new("my-topic", 12))
        );
        assert_eq!(TopicPartition::from_dir_name("t-0.abc-delete"), None);
        assert_eq!(TopicPartition::new("a.b", 3).dir_name(), "a.b-3");
    }
}

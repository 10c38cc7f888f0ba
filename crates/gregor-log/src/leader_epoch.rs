//! The leader epoch cache and its `leader-epoch-checkpoint` file.
//!
//! Each entry says "epoch E started at offset O". Followers use it (through
//! OffsetForLeaderEpoch) to find where their log diverged from a new leader's, so it must
//! survive restarts and follow the log through truncation at either end. Semantics follow
//! Kafka's `LeaderEpochFileCache`.

use std::path::PathBuf;

use crate::checkpoint;
use crate::error::{LogError, Result};

/// Epoch answered when none applies (`UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// Offset answered when no epoch applies (`UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// "Leader epoch `epoch` began at `start_offset`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// First offset written in that epoch.
    pub start_offset: i64,
}

/// In-memory epoch history of one partition, persisted on every change.
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint at `path` (empty if missing).
    pub fn load(path: PathBuf) -> Result<LeaderEpochFileCache> {
        let mut entries = Vec::new();
        for line in checkpoint::read_lines(&path)? {
            let parsed = line.split_once(' ').and_then(|(e, o)| {
                Some(EpochEntry {
                    epoch: e.parse().ok()?,
                    start_offset: o.parse().ok()?,
                })
            });
            let entry = parsed.ok_or_else(|| LogError::Io {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("malformed leader epoch line {line:?}"),
                ),
            })?;
            entries.push(entry);
        }
        Ok(LeaderEpochFileCache { path, entries })
    }

    fn persist(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        checkpoint::write_lines(&self.path, &lines)
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Entries that would no longer be
    /// monotonic (same or later epoch, same or later offset) are replaced.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return Ok(());
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()
    }

    /// OffsetForLeaderEpoch: the largest epoch `<= requested` and the offset where the next
    /// epoch began (or `log_end_offset` for the current epoch).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// Forgets epochs that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() == before {
            Ok(())
        } else {
            self.persist()
        }
    }

    /// The log now starts at `start_offset`: older epochs go, and the one covering
    /// `start_offset` is moved up to start there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let covering = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset);
        let Some(i) = covering else { return Ok(()) };
        if i == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].start_offset = start_offset;
        self.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_kafka_semantics_and_file_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        let mut cache = LeaderEpochFileCache::load(path.clone()).unwrap();
        cache.assign(0, 0).unwrap();
        cache.assign(0, 5).unwrap();
        cache.assign(2, 10).unwrap();
        cache.assign(4, 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n3\n0 0\n2 10\n4 20\n"
        );
        assert_eq!(cache.end_offset_for(4, 30), (4, 30));
        assert_eq!(cache.end_offset_for(3, 30), (2, 20));
        assert_eq!(cache.end_offset_for(2, 30), (2, 20));
        assert_eq!(cache.end_offset_for(0, 30), (0, 10));
        assert_eq!(
            cache.end_offset_for(7, 30),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
        cache.truncate_from_end(20).unwrap();
        assert_eq!(cache.latest_epoch(), Some(2));
        cache.truncate_from_start(12).unwrap();
        assert_eq!(
            cache.entries(),
            &[EpochEntry {
                epoch: 2,
                start_offset: 12
            }]
        );
        // A lower epoch at a lower offset replaces what it contradicts.
        cache.assign(1, 3).unwrap();
        assert_eq!(
            cache.entries(),
            &[EpochEntry {
                epoch: 1,
                start_offset: 3
            }]
        );
        let reloaded = LeaderEpochFileCache::load(path).unwrap();
        assert_eq!(reloaded.entries(), cache.entries());
    }
}

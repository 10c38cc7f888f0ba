//! The log's side of compaction: handing stable segments to the cleaner and swapping the
//! cleaned ones in, crash-safely.
//!
//! Swap protocol (as Kafka's): the cleaner writes `<base>.log.cleaned` (+ indexes) and syncs
//! them; here the files are renamed to `.swap` (the `.log` last, so a `.log.swap` is always
//! complete), the replaced segments are renamed to `.deleted`, and the `.swap` files take the
//! final names. A crash at any point is finished by [`Log::open`]: `.cleaned` files are
//! discarded, a `.log.swap` replaces whatever segments its offsets cover.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::Log;
use crate::error::{IoContext, Result};
use crate::index::txn_index::{self, TXN_INDEX_SUFFIX};
use crate::names::{LOG_SUFFIX, SWAP_SUFFIX};
use crate::segment::LogSegment;

/// A non-active segment as the cleaner sees it: immutable bytes it can read without locks.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    /// The segment's base offset.
    pub base_offset: i64,
    /// Its open `.log` file.
    pub file: Arc<File>,
    /// Path of the `.log` file (for error messages).
    pub path: PathBuf,
    /// Its size when the snapshot was taken.
    pub size: u64,
    /// Its largest record timestamp (or modification time).
    pub largest_timestamp: i64,
}

impl Log {
    /// Every segment but the active one, oldest first.
    pub fn inactive_segments(&self) -> Result<Vec<SegmentSnapshot>> {
        self.check_online()?;
        let state = self.state.read();
        let count = state.segments.len();
        state
            .segments
            .values()
            .take(count - 1)
            .map(|s| {
                Ok(SegmentSnapshot {
                    base_offset: s.base_offset(),
                    file: Arc::clone(s.log_file()),
                    path: s.file_path(LOG_SUFFIX),
                    size: s.size(),
                    largest_timestamp: s.largest_timestamp()?,
                })
            })
            .collect()
    }

    /// Replaces `replaced` (consecutive inactive segments) with `cleaned`, a sealed and
    /// synced segment written with the `.cleaned` suffix at the first one's base offset.
    /// Returns `false` (and discards `cleaned`) if the log changed meanwhile — a replaced
    /// segment was deleted, truncated or became active — so no concurrent change is lost.
    pub fn replace_segments(
        &self,
        mut cleaned: LogSegment,
        replaced: &[SegmentSnapshot],
        now_ms: i64,
    ) -> Result<bool> {
        self.check_online()?;
        let config = self.config();
        let result = (|| {
            let mut state = self.state.write();
            let active_base = state.active().base_offset();
            let unchanged = replaced.iter().all(|r| {
                r.base_offset != active_base
                    && state
                        .segments
                        .get(&r.base_offset)
                        .is_some_and(|s| s.size() == r.size)
            });
            if !unchanged || replaced.first().map(|r| r.base_offset) != Some(cleaned.base_offset())
            {
                cleaned.delete_files()?;
                return Ok(false);
            }
            // The aborts whose markers the replaced segments held move with them.
            let last = replaced
                .last()
                .map_or(cleaned.base_offset(), |r| r.base_offset);
            let end = state
                .segments
                .range(last + 1..)
                .next()
                .map_or(i64::MAX, |(b, _)| *b);
            let aborts: Vec<_> = state
                .aborted
                .iter()
                .filter(|t| (cleaned.base_offset()..end).contains(&t.last_offset))
                .copied()
                .collect();
            let index = cleaned.file_path(TXN_INDEX_SUFFIX);
            txn_index::rewrite(&index, &aborts).at(&index)?;
            cleaned.sync_txn_index()?;
            cleaned.change_suffix(SWAP_SUFFIX)?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .at(&self.dir)?;
            for r in replaced {
                let old = state
                    .segments
                    .remove(&r.base_offset)
                    .expect("checked above");
                self.schedule_delete(old, &config, now_ms)?;
            }
            cleaned.change_suffix("")?;
            tracing::debug!(log = %self.topic_partition, segment = %cleaned.file_path(LOG_SUFFIX).display(), replaced = replaced.len(), "swapped in cleaned segment");
            state.segments.insert(cleaned.base_offset(), cleaned);
            let mut pending = self.pending.lock();
            pending.retain_existing(&state);
            pending.directory = true;
            Ok(true)
        })();
        self.guard_io(result)
    }
}

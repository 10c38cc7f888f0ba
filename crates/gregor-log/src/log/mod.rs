//! `Log`: one partition's ordered sequence of segments.
//!
//! Concurrency model: one writer, many readers, nothing shared across partitions. Appends,
//! rolls, truncation and segment deletion take the log's write lock for a few syscalls (writes
//! land in the page cache); reads take the read lock only to locate the bytes and return a
//! [`FileSlice`] read outside the lock. `fsync` never touches that lock: the [`GroupCommit`]
//! takes what it must sync from a small `PendingSync` (updated by appends and rolls) and syncs
//! unlocked, so appends keep flowing into the next group while the previous one reaches the
//! disk.
//!
//! Times are passed in as milliseconds since the epoch (`now_ms`), so behaviour that depends on
//! the clock (segment.ms, retention, LogAppendTime) is deterministic under test.

mod append;
mod compaction;
mod load;
mod producers;
mod read;
mod retention;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::config::LogConfig;
use crate::error::{IoContext, LogError, Result};
use crate::group_commit::GroupCommit;
use crate::leader_epoch::LeaderEpochFileCache;
use crate::names::{INDEX_SUFFIX, TIME_INDEX_SUFFIX, TopicPartition};
use crate::producer_state::{AbortedTxn, ProducerStateManager};
use crate::segment::LogSegment;

pub use append::AppendInfo;
pub use compaction::SegmentSnapshot;
pub use load::LoadOptions;

/// Files waiting for `file.delete.delay.ms` before removal.
#[derive(Debug)]
struct PendingDelete {
    due_ms: i64,
    segment: LogSegment,
}

/// Mutable state guarded by the log's lock.
#[derive(Debug)]
struct LogState {
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Idempotent and transactional producers, as of `log_end_offset`.
    producers: ProducerStateManager,
    /// Aborted transactions whose markers are in the log, by marker offset (the union of the
    /// segments' `.txnindex` files).
    aborted: Vec<AbortedTxn>,
}

impl LogState {
    fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Base offset of the segment holding `offset` (the first segment if none does).
    fn segment_holding(&self, offset: i64) -> i64 {
        self.segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b)
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }
}

/// What the next flush has to make durable, kept apart from [`LogState`] so that a flush
/// never waits for the log's lock (appenders hold it while they write).
#[derive(Debug)]
struct PendingSync {
    /// Offset after the last batch written to the page cache.
    written_end: i64,
    /// `.log` files that may hold unsynced data: the active segment's and those sealed since
    /// the last flush, by base offset.
    logs: Vec<(i64, Arc<File>, PathBuf)>,
    /// Index files of segments sealed since the last flush.
    index_files: Vec<PathBuf>,
    /// Segment files were created or renamed: the directory entry must be synced too.
    directory: bool,
    /// Everything below is on disk with its indexes; recovery scans from the segment holding it.
    recovery_point: i64,
    /// Wall time of the last flush, for `flush.ms`.
    last_flush_ms: i64,
}

impl PendingSync {
    fn new(active: &LogSegment, end: i64, now_ms: i64) -> PendingSync {
        let mut pending = PendingSync {
            written_end: end,
            logs: Vec::new(),
            index_files: Vec::new(),
            directory: false,
            recovery_point: end,
            last_flush_ms: now_ms,
        };
        pending.track(active);
        pending
    }

    /// A new active segment starts receiving data.
    fn track(&mut self, segment: &LogSegment) {
        let path = segment.file_path(crate::names::LOG_SUFFIX);
        self.logs
            .push((segment.base_offset(), Arc::clone(segment.log_file()), path));
        self.directory = true;
    }

    /// Forgets segments no longer in the log (deleted, truncated, replaced).
    fn retain_existing(&mut self, state: &LogState) {
        self.logs
            .retain(|(base, _, _)| state.segments.contains_key(base));
    }
}

/// The storage of one topic partition.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    topic_partition: TopicPartition,
    config: RwLock<Arc<LogConfig>>,
    state: RwLock<LogState>,
    group_commit: GroupCommit,
    pending: Mutex<PendingSync>,
    leader_epochs: Mutex<LeaderEpochFileCache>,
    pending_deletes: Mutex<Vec<PendingDelete>>,
    offline: AtomicBool,
}

impl Log {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The partition this log stores.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The settings in force.
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.config.read())
    }

    /// Applies new settings live (a topic config change). Existing segments keep their
    /// index sizes; new ones use the new settings.
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write() = Arc::new(config);
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.state.read().log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.state.read().log_end_offset
    }

    /// Offset below which data and indexes are on disk.
    pub fn recovery_point(&self) -> i64 {
        self.pending.lock().recovery_point
    }

    /// Offset below which data is durable (fsynced).
    pub fn durable_offset(&self) -> i64 {
        self.group_commit.durable_offset()
    }

    /// Number of fsync rounds the group commit has run.
    pub fn flush_count(&self) -> u64 {
        self.group_commit.flush_count()
    }

    /// Total bytes in all segments.
    pub fn size_in_bytes(&self) -> u64 {
        self.state
            .read()
            .segments
            .values()
            .map(LogSegment::size)
            .sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.state.read().segments.keys().copied().collect()
    }

    /// Leader epoch history (`OffsetForLeaderEpoch`: see [`LeaderEpochFileCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let leo = self.log_end_offset();
        self.leader_epochs.lock().end_offset_for(epoch, leo)
    }

    /// Records that leader epoch `epoch` starts at `start_offset` (a replica becoming leader
    /// stamps its epoch at its log end, as Kafka's `maybeAssignEpochStartOffset`).
    pub fn assign_epoch_start_offset(&self, epoch: i32, start_offset: i64) -> Result<()> {
        self.check_online()?;
        let result = self.leader_epochs.lock().assign(epoch, start_offset);
        self.guard_io(result)
    }

    /// The newest leader epoch recorded in the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.leader_epochs.lock().latest_epoch()
    }

    fn check_online(&self) -> Result<()> {
        if self.offline.load(Ordering::Acquire) {
            Err(LogError::Offline(self.topic_partition.to_string()))
        } else {
            Ok(())
        }
    }

    /// Storage errors take the log offline: after a failed write or fsync the page cache can
    /// no longer be trusted to match the disk, so accepting more would risk acknowledging data
    /// that is not there.
    fn guard_io<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(LogError::Io { path, source }) = &result {
            tracing::error!(log = %self.topic_partition, path = %path.display(), error = %source, "storage error; taking log offline");
            self.offline.store(true, Ordering::Release);
        }
        result
    }

    /// Whether an earlier storage error took this log offline.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Blocks until every offset below `offset` is durable, sharing the fsync with concurrent
    /// callers (group commit).
    pub fn flush_to(&self, offset: i64, now_ms: i64) -> Result<()> {
        self.check_online()?;
        let result = self
            .group_commit
            .wait_durable(offset, || self.flush_once(now_ms));
        self.guard_io(result)
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self, now_ms: i64) -> Result<()> {
        let end = self.log_end_offset();
        self.flush_to(end, now_ms)
    }

    /// Applies `flush.messages` to an append that just returned: blocks until it is durable if
    /// enough messages are unflushed (with Gregor's default of 1, always).
    pub fn flush_if_required(&self, info: &AppendInfo, now_ms: i64) -> Result<()> {
        let flush_messages = self.config.read().flush_messages;
        if info.last_offset + 1 - self.group_commit.durable_offset() >= flush_messages {
            self.flush_to(info.last_offset + 1, now_ms)?;
        }
        Ok(())
    }

    /// Applies `flush.ms`: flushes if the last flush is older than that. For a periodic task.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<()> {
        let flush_ms = self.config.read().flush_ms;
        let last = self.pending.lock().last_flush_ms;
        if now_ms.saturating_sub(last) >= flush_ms && self.durable_offset() < self.log_end_offset()
        {
            self.flush(now_ms)?;
        }
        Ok(())
    }

    /// One flush round: sync the `.log` files that may hold unsynced data, the index files of
    /// segments sealed since the last round, and the directory if files appeared; then move the
    /// recovery point. Takes only the small `pending` lock, never the log's.
    fn flush_once(&self, now_ms: i64) -> Result<i64> {
        let (end, logs, index_files, directory) = {
            let mut pending = self.pending.lock();
            let index_files = std::mem::take(&mut pending.index_files);
            let directory = std::mem::take(&mut pending.directory);
            (
                pending.written_end,
                pending.logs.clone(),
                index_files,
                directory,
            )
        };
        for (_, file, path) in &logs {
            file.sync_data().at(path)?;
        }
        for path in &index_files {
            match File::open(path) {
                Ok(f) => f.sync_all().at(path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(path),
            }
        }
        if directory {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .at(&self.dir)?;
        }
        let mut pending = self.pending.lock();
        // Every file but the last was sealed before this round began: it is now fully synced.
        let synced: Vec<i64> = logs
            .iter()
            .rev()
            .skip(1)
            .map(|(base, _, _)| *base)
            .collect();
        pending.logs.retain(|(base, _, _)| !synced.contains(base));
        pending.recovery_point = pending.recovery_point.max(end.min(pending.written_end));
        pending.last_flush_ms = now_ms;
        Ok(end)
    }

    /// A roll: the sealed segment's index files and the new segment need syncing.
    fn note_rolled(&self, sealed: &LogSegment, new: &LogSegment) {
        let mut pending = self.pending.lock();
        pending.index_files.push(sealed.file_path(INDEX_SUFFIX));
        pending
            .index_files
            .push(sealed.file_path(TIME_INDEX_SUFFIX));
        pending.track(new);
    }

    /// Clean close: flush, seal the active segment's indexes (trimmed to size, as Kafka leaves
    /// them) and sync everything. The caller writes the clean-shutdown marker afterwards.
    pub fn close(&self, now_ms: i64) -> Result<()> {
        self.check_online()?;
        let result = (|| {
            let mut state = self.state.write();
            state.active_mut().seal()?;
            self.take_snapshot(&state, state.log_end_offset)?;
            // Segments below the recovery point are already on disk with their indexes.
            let from = state.segment_holding(self.pending.lock().recovery_point);
            for segment in state.segments.range(from..).map(|(_, s)| s) {
                segment.sync_all()?;
            }
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .at(&self.dir)?;
            let mut pending = self.pending.lock();
            pending.recovery_point = state.log_end_offset;
            pending.last_flush_ms = now_ms;
            drop(pending);
            self.group_commit.set_durable(state.log_end_offset);
            Ok(())
        })();
        self.guard_io(result)
    }
}

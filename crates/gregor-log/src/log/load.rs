//! Opening a log: finishing interrupted swaps and deletions, and crash recovery.
//!
//! After a clean shutdown only the active segment is touched (to find the log end offset);
//! other segments' indexes load lazily when first read, so opening a large log costs a
//! directory listing and a few reads. After a crash every segment from the one holding the
//! recovery point onwards is scanned: each batch's CRC and offsets are checked, indexes are
//! rebuilt, and the first invalid batch ends the log (a torn write), as Kafka's `LogLoader`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};

use super::{Log, LogState, PendingSync};
use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::group_commit::GroupCommit;
use crate::leader_epoch::{EpochEntry, LeaderEpochFileCache};
use crate::names::{
    CLEANED_SUFFIX, DELETED_SUFFIX, LEADER_EPOCH_CHECKPOINT, LOG_SUFFIX, SWAP_SUFFIX,
    TopicPartition, parse_segment_file,
};
use crate::producer_state::snapshot::SNAPSHOT_SUFFIX;
use crate::segment::{IndexSettings, LogSegment};

/// What the log directory's checkpoints and shutdown marker say about a log being opened.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// From `recovery-point-offset-checkpoint` (0 if absent).
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint` (0 if absent).
    pub log_start_offset: i64,
    /// The directory had a clean-shutdown marker.
    pub had_clean_shutdown: bool,
    /// Current time in ms.
    pub now_ms: i64,
}

impl LoadOptions {
    /// A brand-new log, or one to open with full recovery.
    pub fn new(now_ms: i64) -> LoadOptions {
        LoadOptions {
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: false,
            now_ms,
        }
    }
}

/// Segment files found in a partition directory, by role.
#[derive(Default)]
struct DirListing {
    segments: BTreeSet<i64>,
    swaps: BTreeSet<i64>,
    doomed: Vec<PathBuf>,
    index_files: Vec<(i64, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<DirListing> {
    let mut listing = DirListing::default();
    let mut swap_index_files = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some((base, extension, suffix)) = name.to_str().and_then(parse_segment_file) else {
            continue;
        };
        let path = entry.path();
        match (extension, suffix) {
            (_, DELETED_SUFFIX) | (_, CLEANED_SUFFIX) => listing.doomed.push(path),
            (LOG_SUFFIX, SWAP_SUFFIX) => {
                listing.swaps.insert(base);
            }
            (_, SWAP_SUFFIX) => swap_index_files.push((base, path)),
            (LOG_SUFFIX, "") => {
                listing.segments.insert(base);
            }
            (SNAPSHOT_SUFFIX, _) => {}
            (_, "") => listing.index_files.push((base, path)),
            _ => {}
        }
    }
    // Index files renamed to .swap before their log was are from a swap that never completed.
    for (base, path) in swap_index_files {
        if !listing.swaps.contains(&base) {
            listing.doomed.push(path);
        }
    }
    Ok(listing)
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it if the shutdown was not clean.
    pub fn open(
        dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        options: LoadOptions,
    ) -> Result<Log> {
        fs::create_dir_all(&dir).at(&dir)?;
        let settings = IndexSettings::from(&config);
        let listing = list_dir(&dir)?;
        for path in &listing.doomed {
            remove_if_exists(path)?;
        }
        let mut bases = listing.segments;
        for &base in &listing.swaps {
            complete_swap(&dir, base, settings, &mut bases)?;
        }
        for (base, path) in &listing.index_files {
            if !bases.contains(base) {
                remove_if_exists(path)?;
            }
        }
        let mut segments = BTreeMap::new();
        for base in bases {
            segments.insert(base, LogSegment::open(&dir, base, settings, "")?);
        }
        if segments.is_empty() {
            let base = options.log_start_offset.max(0);
            segments.insert(base, LogSegment::create(&dir, base, settings, "")?);
        }
        let mut recovered_epochs = Vec::new();
        if !options.had_clean_shutdown {
            recovered_epochs =
                recover_segments(&topic_partition, &mut segments, options.recovery_point)?;
        }
        let active = segments
            .values_mut()
            .next_back()
            .expect("at least one segment");
        active.activate()?;
        let log_end_offset = active.next_offset()?;
        let first_base = *segments.keys().next().expect("at least one segment");
        let log_start_offset = options.log_start_offset.max(first_base).min(log_end_offset);
        let mut leader_epochs = LeaderEpochFileCache::load(dir.join(LEADER_EPOCH_CHECKPOINT))?;
        // An append's epoch reaches the checkpoint after its batch reaches the log: a crash in
        // between is repaired from the batches recovery kept.
        for entry in recovered_epochs {
            if leader_epochs
                .latest_epoch()
                .is_none_or(|latest| entry.epoch > latest)
            {
                leader_epochs.assign(entry.epoch, entry.start_offset)?;
            }
        }
        leader_epochs.truncate_from_end(log_end_offset)?;
        leader_epochs.truncate_from_start(log_start_offset)?;
        let (producers, aborted) =
            super::producers::load(&dir, &segments, log_end_offset, options.had_clean_shutdown)?;
        let pending = PendingSync::new(active_segment(&segments), log_end_offset, options.now_ms);
        let log = Log {
            topic_partition,
            config: RwLock::new(std::sync::Arc::new(config)),
            state: RwLock::new(LogState {
                segments,
                log_start_offset,
                log_end_offset,
                producers,
                aborted,
            }),
            group_commit: GroupCommit::new(log_end_offset),
            pending: Mutex::new(pending),
            leader_epochs: Mutex::new(leader_epochs),
            pending_deletes: Mutex::new(Vec::new()),
            offline: Default::default(),
            dir,
        };
        if !options.had_clean_shutdown && log_end_offset > options.recovery_point {
            // What recovery kept is now the log: make it durable before anyone relies on it.
            // (A log that ends at its recovery point holds nothing unsynced: no fsyncs, which
            // matters with many partitions on a disk with slow syncs.)
            let state = log.state.read();
            let from = state.segment_holding(options.recovery_point);
            for segment in state.segments.range(from..).map(|(_, s)| s) {
                segment.sync_all()?;
            }
            drop(state);
            fs::File::open(&log.dir)
                .and_then(|d| d.sync_all())
                .at(&log.dir)?;
        }
        Ok(log)
    }
}

/// Finishes a compaction swap interrupted by a crash: the `.swap` segment is complete (it was
/// synced before being renamed), so the segments it replaces are deleted and it takes their place.
fn complete_swap(
    dir: &Path,
    base: i64,
    settings: IndexSettings,
    bases: &mut BTreeSet<i64>,
) -> Result<()> {
    let mut swap = LogSegment::open(dir, base, settings, SWAP_SUFFIX)?;
    swap.recover()?;
    let next = swap.next_offset()?;
    let replaced: Vec<i64> = bases.range(base..next.max(base + 1)).copied().collect();
    for old in replaced {
        LogSegment::open(dir, old, settings, "")?.delete_files()?;
        bases.remove(&old);
    }
    swap.change_suffix("")?;
    bases.insert(base);
    tracing::info!(dir = %dir.display(), base, "completed an interrupted compaction swap");
    Ok(())
}

/// Re-validates every segment from the one holding `recovery_point`; the first invalid batch
/// ends the log and later segments are deleted.
fn recover_segments(
    tp: &TopicPartition,
    segments: &mut BTreeMap<i64, LogSegment>,
    recovery_point: i64,
) -> Result<Vec<EpochEntry>> {
    let mut epochs = Vec::new();
    let from = segments
        .range(..=recovery_point)
        .next_back()
        .map_or(i64::MIN, |(b, _)| *b);
    let to_check: Vec<i64> = segments.range(from..).map(|(b, _)| *b).collect();
    for (i, base) in to_check.iter().enumerate() {
        let segment = segments.get_mut(base).expect("listed above");
        let recovery = segment.recover()?;
        epochs.extend(recovery.leader_epochs);
        let truncated = recovery.truncated_bytes;
        if truncated > 0 {
            tracing::warn!(log = %tp, segment = base, bytes = truncated, "truncated invalid data at the end of the log during recovery");
            for later in &to_check[i + 1..] {
                let doomed = segments.remove(later).expect("listed above");
                tracing::warn!(log = %tp, segment = later, "deleting segment after a truncated one");
                doomed.delete_files()?;
            }
            break;
        }
    }
    Ok(epochs)
}

/// Removes a file that a swap completion may already have removed.
fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

fn active_segment(segments: &BTreeMap<i64, LogSegment>) -> &LogSegment {
    segments.values().next_back().expect("at least one segment")
}

//! `LogCleaner`: log compaction for `cleanup.policy=compact` (and `compact,delete`).
//!
//! A cleaning pass over one log, as in Kafka:
//! 1. The *cleanable* range ends at the active segment, or earlier at the first segment with
//!    records younger than `min.compaction.lag.ms`. Its *dirty* part starts at the first dirty
//!    offset (where the previous pass stopped, kept in `cleaner-offset-checkpoint`).
//! 2. If the dirty share of the cleanable bytes is below `min.cleanable.dirty.ratio`, stop.
//! 3. An [`OffsetMap`] records the latest offset of every key in the dirty part.
//! 4. Every cleanable segment is rewritten, grouped so outputs stay under `segment.bytes`:
//!    a record survives unless a later offset of its key is in the map; keyless records are
//!    dropped; a tombstone (null value) survives until its batch's delete horizon passes. The
//!    horizon is stamped into the batch (KIP-534) the first time a pass keeps tombstones in it:
//!    now + `delete.retention.ms`. Offsets, producer id/epoch/base sequence, leader epoch and
//!    the batch's offset range are preserved; untouched batches are copied byte for byte.
//! 5. Cleaned groups are swapped in crash-safely (see [`Log::replace_segments`]).
//!
//! Transactions: cleaning stops before the first unstable offset (an open transaction's
//! records may still be aborted), records of aborted transactions are dropped and never count
//! as a key's latest value, and transaction markers are kept (Kafka eventually removes markers
//! too; Gregor keeps them, which costs a few bytes per transaction).

mod offset_map;

use gregor_protocol::batch::{RecordBatch, RecordBatchBuilder, TimestampType};

use crate::error::{IoContext, Result};
use crate::log::{Log, SegmentSnapshot};
use crate::names::CLEANED_SUFFIX;
use crate::producer_state::AbortedTxn;
use crate::reader::{BatchReader, Scan};
use crate::segment::{IndexSettings, LogSegment};

use offset_map::OffsetMap;

/// What one cleaning pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanerStats {
    /// Where the next pass's dirty section starts (store in `cleaner-offset-checkpoint`).
    pub next_dirty_offset: i64,
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Bytes read from the old segments.
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Records dropped because a later record has the same key (or no key).
    pub records_removed: u64,
    /// Tombstones dropped because their delete horizon passed.
    pub tombstones_removed: u64,
    /// Dirty ratio that triggered the pass.
    pub dirty_ratio: f64,
    /// Earliest delete horizon of the tombstones kept: a pass is due then even if the log is
    /// not dirty, so that expired tombstones go.
    pub earliest_delete_horizon: Option<i64>,
}

/// Where the cleaner left a log: the first dirty offset (checkpointed) and when its kept
/// tombstones expire (in memory; after a restart they go with the next dirty pass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerProgress {
    /// First offset not yet cleaned.
    pub first_dirty_offset: i64,
    /// Earliest delete horizon among kept tombstones.
    pub earliest_delete_horizon: Option<i64>,
}

/// Compacts logs. Stateless between passes: progress lives in the first dirty offset the
/// caller keeps per log (the [`LogManager`](crate::LogManager) checkpoints it).
#[derive(Debug, Default)]
pub struct LogCleaner;

/// The cleanable segments of a log and how dirty they are.
struct Cleanable {
    segments: Vec<SegmentSnapshot>,
    /// Aborted transactions with records in the cleanable range.
    aborted: Vec<AbortedTxn>,
    /// Offset where cleaning must stop (base of the first uncleanable segment).
    end_offset: i64,
    first_dirty: i64,
    dirty_ratio: f64,
}

impl LogCleaner {
    /// Cleans `log` if its policy includes compaction and it is dirty enough, or if tombstones
    /// it kept have expired. `progress` is what the previous pass returned (default for none).
    /// `Ok(None)` when nothing was done.
    pub fn clean(
        &self,
        log: &Log,
        progress: CleanerProgress,
        now_ms: i64,
    ) -> Result<Option<CleanerStats>> {
        let first_dirty = progress.first_dirty_offset;
        let tombstones_due = progress
            .earliest_delete_horizon
            .is_some_and(|h| now_ms >= h);
        let config = log.config();
        if !config.cleanup_policy.compact {
            return Ok(None);
        }
        let Some(cleanable) = find_cleanable(log, first_dirty, tombstones_due, now_ms)? else {
            return Ok(None);
        };
        let mut stats = CleanerStats {
            // A pass forced by expired tombstones may stop short of the dirty section (records
            // with future timestamps keep later segments uncleanable): never move back.
            next_dirty_offset: cleanable.end_offset.max(cleanable.first_dirty),
            dirty_ratio: cleanable.dirty_ratio,
            ..Default::default()
        };
        let map = build_offset_map(&cleanable)?;
        let horizon = now_ms.saturating_add(config.delete_retention_ms);
        let settings = IndexSettings::from(&*config);
        for group in group_segments(&cleanable.segments, config.segment_bytes) {
            let mut cleaned =
                LogSegment::create(log.dir(), group[0].base_offset, settings, CLEANED_SUFFIX)?;
            for (i, snapshot) in group.iter().enumerate() {
                stats.bytes_read += snapshot.size;
                let last_in_group = i + 1 == group.len();
                let pass = Pass {
                    map: &map,
                    aborted: &cleanable.aborted,
                    now_ms,
                    new_horizon: horizon,
                    last_in_group,
                };
                clean_segment_into(snapshot, &pass, &mut cleaned, &mut stats)?;
            }
            cleaned.seal()?;
            cleaned.sync_all()?;
            stats.bytes_written += cleaned.size();
            if log.replace_segments(cleaned, group, now_ms)? {
                stats.segments_cleaned += group.len();
            } else {
                // The log changed under us (retention, truncation): start over next time.
                stats.next_dirty_offset = first_dirty;
                return Ok(Some(stats));
            }
        }
        tracing::info!(log = %log.topic_partition(), ?stats, "cleaned log");
        Ok(Some(stats))
    }
}

fn find_cleanable(
    log: &Log,
    first_dirty: i64,
    tombstones_due: bool,
    now_ms: i64,
) -> Result<Option<Cleanable>> {
    let config = log.config();
    let log_start = log.log_start_offset();
    let mut segments = log.inactive_segments()?;
    let mut end_offset = log.segment_base_offsets().last().copied().unwrap_or(0);
    if let Some(young) = segments
        .iter()
        .position(|s| now_ms - s.largest_timestamp < config.min_compaction_lag_ms)
    {
        end_offset = segments[young].base_offset;
        segments.truncate(young);
    }
    // An open transaction may still abort: nothing from its first record on is cleaned.
    if let Some(first_unstable) = log.first_unstable_offset() {
        let cleanable = (0..segments.len())
            .take_while(|&i| {
                segments.get(i + 1).map_or(end_offset, |n| n.base_offset) <= first_unstable
            })
            .count();
        if cleanable < segments.len() {
            end_offset = segments[cleanable].base_offset;
            segments.truncate(cleanable);
        }
    }
    let first_dirty = first_dirty.max(log_start);
    if segments.is_empty() || (first_dirty >= end_offset && !tombstones_due) {
        return Ok(None);
    }
    // A segment is clean if the next one starts at or before the first dirty offset.
    let mut clean_bytes = 0u64;
    let mut dirty_bytes = 0u64;
    for (i, s) in segments.iter().enumerate() {
        let next_base = segments.get(i + 1).map_or(end_offset, |n| n.base_offset);
        if next_base <= first_dirty {
            clean_bytes += s.size
        } else {
            dirty_bytes += s.size
        }
    }
    let total = clean_bytes + dirty_bytes;
    let dirty_ratio = if total == 0 {
        0.0
    } else {
        dirty_bytes as f64 / total as f64
    };
    if !tombstones_due && (dirty_bytes == 0 || dirty_ratio < config.min_cleanable_dirty_ratio) {
        return Ok(None);
    }
    let aborted = log.aborted_transactions(log_start, end_offset);
    Ok(Some(Cleanable {
        segments,
        aborted,
        end_offset,
        first_dirty,
        dirty_ratio,
    }))
}

/// Calls `f` with every batch of `segment`.
fn for_each_batch(
    segment: &SegmentSnapshot,
    mut f: impl FnMut(RecordBatch<'_>, bool) -> Result<()>,
) -> Result<()> {
    let mut reader = BatchReader::new(&segment.file, 0, segment.size);
    loop {
        match reader.next_batch().at(&segment.path)? {
            Scan::Batch(position, bytes) => {
                let is_last = position + bytes.len() as u64 == segment.size;
                f(RecordBatch::parse(bytes)?, is_last)?
            }
            Scan::End | Scan::Invalid(_) => return Ok(()),
        }
    }
}

fn build_offset_map(cleanable: &Cleanable) -> Result<OffsetMap> {
    let mut map = OffsetMap::default();
    for segment in &cleanable.segments {
        for_each_batch(segment, |batch, _| {
            if batch.attributes().is_control()
                || batch.last_offset() < cleanable.first_dirty
                || is_aborted(&batch, &cleanable.aborted)
            {
                return Ok(());
            }
            for record in batch.record_iter()? {
                let record = record?;
                let offset = record.offset(batch.base_offset());
                if let (Some(key), true) = (&record.key, offset >= cleanable.first_dirty) {
                    map.put(key, offset);
                }
            }
            Ok(())
        })?;
    }
    Ok(map)
}

/// Whether `batch` holds records of an aborted transaction.
fn is_aborted(batch: &RecordBatch<'_>, aborted: &[AbortedTxn]) -> bool {
    batch.attributes().is_transactional()
        && !batch.attributes().is_control()
        && aborted.iter().any(|t| {
            t.producer_id == batch.producer_id()
                && t.first_offset <= batch.base_offset()
                && batch.last_offset() < t.last_offset
        })
}

/// Groups consecutive segments so each group's output fits one segment (Kafka's
/// `groupSegmentsBySize`, by bytes and by relative-offset range).
fn group_segments(segments: &[SegmentSnapshot], max_bytes: u64) -> Vec<&[SegmentSnapshot]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        let mut size = segments[start].size;
        while end < segments.len()
            && size + segments[end].size <= max_bytes
            && segments
                .get(end + 1)
                .is_none_or(|n| n.base_offset - segments[start].base_offset <= i64::from(i32::MAX))
        {
            size += segments[end].size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// Rewrites one segment's batches into `out`, keeping what compaction keeps.
/// What a pass knows while it rewrites one segment.
struct Pass<'a> {
    map: &'a OffsetMap,
    /// Aborted transactions: their records are dropped.
    aborted: &'a [AbortedTxn],
    now_ms: i64,
    /// Delete horizon to stamp on batches that keep tombstones for the first time.
    new_horizon: i64,
    /// The segment is the last of its group.
    last_in_group: bool,
}

fn clean_segment_into(
    segment: &SegmentSnapshot,
    pass: &Pass<'_>,
    out: &mut LogSegment,
    stats: &mut CleanerStats,
) -> Result<()> {
    let Pass {
        map,
        aborted,
        now_ms,
        new_horizon,
        last_in_group,
    } = *pass;
    for_each_batch(segment, |batch, is_last| {
        if batch.attributes().is_control() {
            return out.append(batch.as_bytes());
        }
        let base = batch.base_offset();
        let horizon = batch.delete_horizon();
        let expired = horizon.is_some_and(|h| now_ms >= h);
        let records = batch.records()?;
        let mut kept = Vec::with_capacity(records.len());
        let mut tombstones = false;
        let aborted_batch = is_aborted(&batch, aborted);
        for record in &records {
            let offset = record.offset(base);
            let superseded = aborted_batch
                || match &record.key {
                    None => true,
                    Some(key) => map.get(key).is_some_and(|latest| latest > offset),
                };
            if superseded {
                stats.records_removed += 1;
            } else if record.value.is_none() && expired {
                stats.tombstones_removed += 1;
            } else {
                tombstones |= record.value.is_none();
                kept.push(record);
            }
        }
        if tombstones {
            let kept_horizon = horizon.unwrap_or(new_horizon);
            stats.earliest_delete_horizon = Some(
                stats
                    .earliest_delete_horizon
                    .map_or(kept_horizon, |h| h.min(kept_horizon)),
            );
        }
        // The last batch of a group survives, emptied if need be, so the cleaned segment
        // ends at the same offset as the segments it replaces: crash recovery of a `.swap`
        // relies on that to know which segments it covers.
        if kept.is_empty() && !(is_last && last_in_group) {
            return Ok(());
        }
        let needs_horizon = tombstones && horizon.is_none();
        if kept.len() == records.len() && !needs_horizon {
            return out.append(batch.as_bytes());
        }
        let attributes = batch.attributes();
        let mut builder = RecordBatchBuilder::new(base, attributes.compression()?)
            .timestamp_type(attributes.timestamp_type())
            .producer(
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence(),
            )
            .transactional(attributes.is_transactional())
            .partition_leader_epoch(batch.partition_leader_epoch())
            .last_offset_delta(batch.last_offset_delta())
            .delete_horizon(tombstones.then(|| horizon.unwrap_or(new_horizon)));
        // A LogAppendTime batch's max timestamp is the append time, and an emptied batch keeps
        // its original one (as Kafka's cleaner writes retained empty batches), so the segment
        // keeps its largest timestamp for retention and lag checks.
        if attributes.timestamp_type() == TimestampType::LogAppendTime || kept.is_empty() {
            builder = builder.max_timestamp(batch.max_timestamp());
        }
        let base_timestamp = batch.base_timestamp();
        for record in kept {
            builder.append_record(
                record.offset(base),
                record.timestamp(base_timestamp),
                record,
            );
        }
        out.append(&builder.build()?)
    })
}

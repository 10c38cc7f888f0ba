//! The log's producer state and aborted-transaction index: loading, rebuilding after a
//! truncation, snapshots, and the queries fetches and DescribeProducers make.
//!
//! Rebuilding starts from the newest `.snapshot` at or below the log end and replays the
//! batches after it (Kafka's `ProducerStateManager` + `LogLoader`). Aborts found while
//! replaying that are missing from the `.txnindex` files (written but not synced before a
//! crash) are added back, so the index always matches the markers in the log.

use std::collections::BTreeMap;
use std::path::Path;

use gregor_protocol::batch::RecordBatch;

use super::{Log, LogState};
use crate::error::{IoContext, Result};
use crate::index::txn_index::{self, TXN_INDEX_SUFFIX};
use crate::producer_state::{
    AbortedTxn, ProducerBatch, ProducerStateEntry, ProducerStateManager, snapshot,
};
use crate::reader::{BatchReader, Scan};
use crate::segment::LogSegment;

impl Log {
    /// First offset of the oldest open transaction (`None`: every record is decided).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.state.read().producers.first_unstable_offset()
    }

    /// Aborted transactions with records in `[from, upper)`: what a `read_committed` fetch of
    /// that range returns so consumers can drop their records.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let state = self.state.read();
        let start = state.aborted.partition_point(|t| t.last_offset < from);
        state.aborted[start..]
            .iter()
            .filter(|t| t.first_offset < upper)
            .copied()
            .collect()
    }

    /// Every producer this partition remembers, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerStateEntry> {
        self.state.read().producers.entries().cloned().collect()
    }

    /// One producer's state, if the partition remembers it.
    pub fn producer(&self, producer_id: i64) -> Option<ProducerStateEntry> {
        self.state.read().producers.entry(producer_id).cloned()
    }

    /// Forgets producers idle longer than `expiration_ms` (`producer.id.expiration.ms`) with
    /// no open transaction. Returns how many went.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.state
            .write()
            .producers
            .remove_expired(now_ms, expiration_ms)
    }

    /// Adds aborts just written to the in-memory list and the active segment's `.txnindex`.
    pub(super) fn record_aborted(
        &self,
        state: &mut LogState,
        aborted: Vec<AbortedTxn>,
    ) -> Result<()> {
        if aborted.is_empty() {
            return Ok(());
        }
        let path = state.active().file_path(TXN_INDEX_SUFFIX);
        let result = txn_index::append(&path, &aborted).at(&path);
        state.aborted.extend(aborted);
        self.guard_io(result)
    }

    /// Writes the producer state as of `offset` (the log end) to `<offset>.snapshot`.
    pub(super) fn take_snapshot(&self, state: &LogState, offset: i64) -> Result<()> {
        snapshot::write(&self.dir, offset, state.producers.entries())
    }

    /// After a truncation to `end`: drops the aborts and snapshots past it, rewrites the
    /// active segment's `.txnindex`, and rebuilds the producers from what is left.
    pub(super) fn truncate_producer_state(&self, state: &mut LogState, end: i64) -> Result<()> {
        state.aborted.retain(|t| t.last_offset < end);
        let active = state.active();
        let base = active.base_offset();
        let kept: Vec<AbortedTxn> = state
            .aborted
            .iter()
            .filter(|t| t.last_offset >= base)
            .copied()
            .collect();
        let path = active.file_path(TXN_INDEX_SUFFIX);
        txn_index::rewrite(&path, &kept).at(&path)?;
        for offset in snapshot::list(&self.dir)?.range(end + 1..) {
            snapshot::delete(&self.dir, *offset)?;
        }
        state.producers = rebuild(&self.dir, &state.segments, end, None, &mut state.aborted)?;
        Ok(())
    }

    /// Drops aborts and snapshots below the first segment (after retention removed segments).
    pub(super) fn trim_producer_state_head(&self, state: &mut LogState) -> Result<()> {
        let first = *state
            .segments
            .keys()
            .next()
            .expect("a log always has a segment");
        state.aborted.retain(|t| t.last_offset >= first);
        for offset in snapshot::list(&self.dir)?.range(..first) {
            snapshot::delete(&self.dir, *offset)?;
        }
        Ok(())
    }
}

/// Loads the producer state and aborted transactions of a log ending at `end`: the aborts
/// from every segment's `.txnindex`, the producers from the newest usable snapshot plus the
/// batches after it. Snapshots past `end` (from before a truncation or torn tail) go.
///
/// A log without any snapshot that was shut down cleanly was written before producer state
/// was kept (an upgrade): as Kafka does, only its last two segments are read, so opening a
/// large old log does not mean reading all of it. After a crash everything is read.
pub(super) fn load(
    dir: &Path,
    segments: &BTreeMap<i64, LogSegment>,
    end: i64,
    had_clean_shutdown: bool,
) -> Result<(ProducerStateManager, Vec<AbortedTxn>)> {
    let mut aborted = Vec::new();
    for segment in segments.values() {
        let path = segment.file_path(TXN_INDEX_SUFFIX);
        aborted.extend(txn_index::read(&path).at(&path)?);
    }
    aborted.retain(|t| t.last_offset < end);
    aborted.sort_by_key(|t| t.last_offset);
    aborted.dedup_by_key(|t| t.last_offset);
    let snapshots = snapshot::list(dir)?;
    for offset in snapshots.range(end + 1..) {
        snapshot::delete(dir, *offset)?;
    }
    let from = if had_clean_shutdown && snapshots.range(..=end).next().is_none() {
        segments.keys().rev().nth(1).copied()
    } else {
        None
    };
    let producers = rebuild(dir, segments, end, from, &mut aborted)?;
    Ok((producers, aborted))
}

/// The producer state at `end`: the newest readable snapshot at or below it (or nothing,
/// reading from `start` when given), then every batch from there to `end`. Aborts seen on the
/// way that `aborted` lacks are added to it and to their segment's `.txnindex`.
fn rebuild(
    dir: &Path,
    segments: &BTreeMap<i64, LogSegment>,
    end: i64,
    start: Option<i64>,
    aborted: &mut Vec<AbortedTxn>,
) -> Result<ProducerStateManager> {
    let first_base = start.unwrap_or_else(|| segments.keys().next().copied().unwrap_or(0));
    let mut start = (ProducerStateManager::default(), first_base);
    for &offset in snapshot::list(dir)?.range(..=end).rev() {
        match snapshot::read(dir, offset) {
            Ok(entries) => {
                start = (
                    ProducerStateManager::from_entries(entries),
                    offset.max(first_base),
                );
                break;
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), offset, error = %e, "ignoring unreadable producer snapshot")
            }
        }
    }
    let (mut producers, from) = start;
    let known_end = aborted.last().map_or(i64::MIN, |t| t.last_offset);
    let mut missing: BTreeMap<i64, Vec<AbortedTxn>> = BTreeMap::new();
    let bases: Vec<i64> = segments.range(..end).map(|(b, _)| *b).collect();
    for (i, base) in bases.iter().enumerate() {
        if bases.get(i + 1).is_some_and(|next| *next <= from) {
            continue;
        }
        let segment = &segments[base];
        let path = segment.file_path(crate::names::LOG_SUFFIX);
        let mut reader = BatchReader::new(segment.log_file(), 0, segment.size());
        while let Scan::Batch(_, bytes) = reader.next_batch().at(&path)? {
            let batch = RecordBatch::parse(bytes)?;
            if batch.base_offset() >= end {
                break;
            }
            if batch.last_offset() < from {
                continue;
            }
            let Some(producer_batch) = ProducerBatch::of(&batch)? else {
                continue;
            };
            for txn in producers.replay(&producer_batch) {
                if txn.last_offset > known_end {
                    missing.entry(*base).or_default().push(txn);
                }
            }
        }
    }
    for (base, txns) in missing {
        let path = segments[&base].file_path(TXN_INDEX_SUFFIX);
        txn_index::append(&path, &txns).at(&path)?;
        aborted.extend(txns);
    }
    Ok(producers)
}

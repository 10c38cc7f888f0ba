//! `ProducerStateManager`: what a partition remembers about each idempotent or transactional
//! producer, so retried batches are recognised and transactions can be tracked.
//!
//! Per producer id it keeps the epoch, the metadata of the last five batches (Kafka's
//! `NUM_BATCHES_TO_RETAIN`: a producer has at most five requests in flight, so a retry is
//! always one of them), the epoch of the coordinator that wrote its last transaction marker,
//! and the first offset of its open transaction. The open transactions' first offsets give the
//! partition's first unstable offset, below which `read_committed` consumers may read.
//!
//! Changes are staged in a [`ProducerAppend`] while a batch is validated and applied with
//! [`ProducerStateManager::commit`] only once the batch is written, so a refused or failed
//! append leaves no trace. The state is snapshotted into `.snapshot` files (see [`snapshot`])
//! on every roll and on close, and rebuilt on open from the newest snapshot plus the batches
//! after it.

pub mod snapshot;

use std::collections::{BTreeMap, HashMap, VecDeque};

use gregor_protocol::batch::{ControlRecordType, EndTransactionMarker, RecordBatch};

use crate::error::{LogError, Result};

/// Producer id of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// Epoch of a producer the partition knows nothing about yet.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Sequence of a batch without one.
pub const NO_SEQUENCE: i32 = -1;
/// How many batches per producer are remembered for duplicate detection.
const BATCHES_TO_RETAIN: usize = 5;

/// Who is appending: decides which producer checks run (as Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's batch: epoch, sequence and transaction checks.
    Client,
    /// A coordinator's own write (transactional offset commits): epoch checks only, since the
    /// coordinator does not number its batches.
    Coordinator,
    /// A follower copying the leader, or recovery re-reading the log: no checks, the leader
    /// already made them.
    Replication,
}

/// What the state remembers of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of its first record.
    pub first_seq: i32,
    /// Sequence of its last record.
    pub last_seq: i32,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its largest timestamp.
    pub timestamp: i64,
}

/// One producer's state in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The newest epoch seen.
    pub epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// Epoch of the coordinator that wrote this producer's last marker (-1: none yet).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, if one is open here.
    pub current_txn_first_offset: Option<i64>,
    /// Largest timestamp of its last write, for `producer.id.expiration.ms`.
    pub last_timestamp: i64,
}

impl ProducerStateEntry {
    fn new(producer_id: i64) -> ProducerStateEntry {
        ProducerStateEntry {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
        }
    }

    /// Sequence of the last batch written (-1 if none is remembered).
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// Offset of the last record written (-1 if none is remembered).
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    /// The remembered batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    /// A new epoch forgets the old epoch's batches.
    fn update_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.update_epoch(epoch);
        if self.batches.len() == BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.timestamp;
    }

    /// Whether `batch` is part of the transaction this producer has open here (not of one a
    /// marker already ended).
    fn in_open_txn(&self, batch: &BatchMetadata) -> bool {
        self.current_txn_first_offset
            .is_some_and(|first| batch.first_offset >= first)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction whose marker was just written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction in this partition (the marker's, if it wrote nothing).
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub aborted: bool,
}

/// An aborted transaction, as the `.txnindex` keeps it: `read_committed` fetches return the
/// ones overlapping their range so consumers can drop those records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of its records in this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// The last stable offset right after the abort.
    pub last_stable_offset: i64,
}

/// The producer fields of a batch header, plus its marker for control batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Batch metadata (offsets final once assigned).
    pub meta: BatchMetadata,
    /// Transactional attribute.
    pub transactional: bool,
    /// The end-transaction marker of a control batch.
    pub marker: Option<EndTransactionMarker>,
}

impl ProducerBatch {
    /// Reads the producer fields of `batch`; `None` for a batch without a producer id.
    pub fn of(batch: &RecordBatch<'_>) -> Result<Option<ProducerBatch>> {
        if batch.producer_id() < 0 {
            return Ok(None);
        }
        let marker = if batch.attributes().is_control() {
            let records = batch.records()?;
            match records.first().map(EndTransactionMarker::from_record) {
                Some(Ok(marker)) => Some(marker),
                // Another kind of control record: no transaction state to change.
                _ => return Ok(None),
            }
        } else {
            None
        };
        let first_seq = batch.base_sequence();
        Ok(Some(ProducerBatch {
            producer_id: batch.producer_id(),
            epoch: batch.producer_epoch(),
            meta: BatchMetadata {
                first_seq,
                last_seq: increment_sequence(first_seq, batch.last_offset_delta()),
                first_offset: batch.base_offset(),
                last_offset: batch.last_offset(),
                timestamp: batch.max_timestamp(),
            },
            transactional: batch.attributes().is_transactional(),
            marker,
        }))
    }
}

/// `seq + delta` wrapping past `i32::MAX` to 0, as producers number their records.
fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq < 0 {
        return seq;
    }
    let next = i64::from(seq) + i64::from(delta);
    if next > i64::from(i32::MAX) {
        (next - i64::from(i32::MAX) - 1) as i32
    } else {
        next as i32
    }
}

/// Whether `next` directly follows `last`.
fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// Changes staged by validating an append; see [`ProducerStateManager::commit`].
#[derive(Debug, Default)]
pub struct ProducerAppend {
    entries: HashMap<i64, ProducerStateEntry>,
    started: Vec<(i64, i64)>,
    completed: Vec<CompletedTxn>,
}

/// The outcome of checking a client's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchCheck {
    /// New: append it.
    Fresh,
    /// Already written (a retry): answer with where it went, write nothing.
    Duplicate(BatchMetadata),
}

/// Every producer of one partition; see the module docs.
#[derive(Debug, Default, Clone)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    /// State loaded from snapshot entries.
    pub fn from_entries(entries: Vec<ProducerStateEntry>) -> ProducerStateManager {
        let mut manager = ProducerStateManager::default();
        for entry in entries {
            if let Some(first) = entry.current_txn_first_offset {
                manager.ongoing.insert(first, entry.producer_id);
            }
            manager.producers.insert(entry.producer_id, entry);
        }
        manager
    }

    /// Every producer's state, for snapshots and DescribeProducers.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// One producer's state.
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// First offset of the oldest open transaction: nothing at or after it is stable.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Starts staging an append.
    pub fn begin(&self) -> ProducerAppend {
        ProducerAppend::default()
    }

    fn staged<'a>(
        &self,
        append: &'a mut ProducerAppend,
        producer_id: i64,
    ) -> &'a mut ProducerStateEntry {
        append.entries.entry(producer_id).or_insert_with(|| {
            self.producers
                .get(&producer_id)
                .cloned()
                .unwrap_or_else(|| ProducerStateEntry::new(producer_id))
        })
    }

    /// Checks a data batch from `origin` against the state (as staged so far) and stages its
    /// effect. A duplicate of a remembered batch is reported, not staged.
    ///
    /// A transactional batch is only a duplicate of a batch of the producer's transaction still
    /// open here. Kafka also matches batches of transactions a marker already ended, but no
    /// retry can come from those (a producer ends a transaction only once every batch of it is
    /// answered), while librdkafka, aborting with a batch it sent and got no answer for, drops
    /// that batch and numbers the next transaction's records from its sequence again (same
    /// epoch): acknowledging those as the old batch would lose them from a transaction that
    /// then commits. They are refused as out of order instead, as Kafka refuses them when
    /// their range does not line up with the old batch's (see docs/divergences.md).
    pub fn check_and_stage(
        &self,
        append: &mut ProducerAppend,
        batch: &ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<BatchCheck> {
        let entry = self.staged(append, batch.producer_id);
        if origin == AppendOrigin::Client {
            if let Some(duplicate) = entry
                .find_duplicate(batch.epoch, batch.meta.first_seq, batch.meta.last_seq)
                .filter(|d| !batch.transactional || entry.in_open_txn(d))
            {
                return Ok(BatchCheck::Duplicate(duplicate));
            }
        }
        if origin != AppendOrigin::Replication {
            check_epoch(entry, batch.epoch)?;
        }
        if origin == AppendOrigin::Client {
            check_sequence(entry, batch)?;
        }
        if origin != AppendOrigin::Replication
            && !batch.transactional
            && entry.current_txn_first_offset.is_some()
        {
            return Err(LogError::InvalidTxnState(format!(
                "producer {} has an open transaction and wrote a non-transactional batch",
                batch.producer_id
            )));
        }
        entry.add_batch(batch.epoch, batch.meta);
        if batch.transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(batch.meta.first_offset);
            append
                .started
                .push((batch.meta.first_offset, batch.producer_id));
        }
        Ok(BatchCheck::Fresh)
    }

    /// Checks an end-transaction marker batch (unless replicated) and stages the
    /// transaction's end. `batch.marker` must be set.
    pub fn stage_marker(
        &self,
        append: &mut ProducerAppend,
        batch: &ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<()> {
        let Some(marker) = batch.marker else {
            return Err(LogError::InvalidRecord(
                "a control batch without a transaction marker".into(),
            ));
        };
        let producer_id = batch.producer_id;
        let offset = batch.meta.first_offset;
        let entry = self.staged(append, producer_id);
        if origin != AppendOrigin::Replication {
            check_epoch(entry, batch.epoch)?;
            if marker.coordinator_epoch < entry.coordinator_epoch {
                return Err(LogError::TransactionCoordinatorFenced {
                    producer_id,
                    epoch: marker.coordinator_epoch,
                    current: entry.coordinator_epoch,
                });
            }
        }
        entry.update_epoch(batch.epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = batch.meta.timestamp;
        let first_offset = entry.current_txn_first_offset.take().unwrap_or(offset);
        append.completed.push(CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            aborted: marker.control_type == ControlRecordType::Abort,
        });
        Ok(())
    }

    /// Applies a staged append whose batches are written. Returns the aborted transactions it
    /// ended, with the last stable offset after each, for the transaction index.
    pub fn commit(&mut self, append: ProducerAppend) -> Vec<AbortedTxn> {
        for (first, producer_id) in append.started {
            self.ongoing.insert(first, producer_id);
        }
        self.producers.extend(append.entries);
        let mut aborted = Vec::new();
        for txn in append.completed {
            if self.ongoing.get(&txn.first_offset) == Some(&txn.producer_id) {
                self.ongoing.remove(&txn.first_offset);
            }
            if txn.aborted {
                aborted.push(AbortedTxn {
                    producer_id: txn.producer_id,
                    first_offset: txn.first_offset,
                    last_offset: txn.last_offset,
                    last_stable_offset: self.first_unstable_offset().unwrap_or(txn.last_offset + 1),
                });
            }
        }
        aborted
    }

    /// Applies a batch already in the log (follower copy, recovery): no checks.
    pub fn replay(&mut self, batch: &ProducerBatch) -> Vec<AbortedTxn> {
        let mut append = self.begin();
        let staged = match batch.marker {
            Some(_) => self.stage_marker(&mut append, batch, AppendOrigin::Replication),
            None => self
                .check_and_stage(&mut append, batch, AppendOrigin::Replication)
                .map(|_| ()),
        };
        debug_assert!(staged.is_ok(), "replication skips every check");
        self.commit(append)
    }

    /// Forgets producers idle for `expiration_ms` with no open transaction
    /// (`producer.id.expiration.ms`). Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }
}

fn check_epoch(entry: &ProducerStateEntry, epoch: i16) -> Result<()> {
    if entry.epoch != NO_PRODUCER_EPOCH && epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id: entry.producer_id,
            epoch,
            current: entry.epoch,
        });
    }
    Ok(())
}

/// Kafka's sequence rule: a new epoch starts at 0; within an epoch each batch follows the
/// last. A producer the partition has no state for (new, or expired) may start anywhere.
fn check_sequence(entry: &ProducerStateEntry, batch: &ProducerBatch) -> Result<()> {
    let first_seq = batch.meta.first_seq;
    let out_of_order = if batch.epoch != entry.epoch {
        first_seq != 0 && entry.epoch != NO_PRODUCER_EPOCH
    } else {
        entry.epoch != NO_PRODUCER_EPOCH && !in_sequence(entry.last_seq(), first_seq)
    };
    if out_of_order {
        return Err(LogError::OutOfOrderSequence {
            producer_id: batch.producer_id,
            epoch: batch.epoch,
            sequence: first_seq,
            last: entry.last_seq(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;

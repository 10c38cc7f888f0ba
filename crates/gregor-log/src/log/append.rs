//! Appending batches: validation, offset assignment, rolling.

use gregor_protocol::batch::{
    BatchIter, Compression, EndTransactionMarker, RecordBatch, RecordBatchBuilder, RecordBatchMut,
    TimestampType,
};
use parking_lot::RwLockWriteGuard;

use super::{Log, LogState};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::producer_state::{
    AppendOrigin, BatchCheck, BatchMetadata, NO_SEQUENCE, ProducerAppend, ProducerBatch,
};
use crate::segment::{IndexSettings, LogSegment};

/// What an append did, for the produce response and the replica manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest timestamp among the appended batches.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The broker time stamped into the batches (`LogAppendTime` topics), else `None`.
    pub log_append_time: Option<i64>,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Number of batches appended.
    pub batch_count: usize,
    /// Bytes appended.
    pub size: usize,
    /// The batch was a producer's retry of one already written (at `first_offset`..=
    /// `last_offset`): nothing was appended.
    pub duplicate: bool,
}

impl AppendInfo {
    /// The answer for a retried batch: where the original went.
    fn duplicate(original: BatchMetadata, log_start_offset: i64) -> AppendInfo {
        AppendInfo {
            first_offset: original.first_offset,
            last_offset: original.last_offset,
            max_timestamp: original.timestamp,
            offset_of_max_timestamp: original.last_offset,
            log_append_time: None,
            log_start_offset,
            batch_count: 0,
            size: 0,
            duplicate: true,
        }
    }
}

/// Checks every batch a client sent and returns `(start, size)` of each in `records`.
fn validate_client_batches(records: &[u8], config: &LogConfig) -> Result<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut iter = BatchIter::new(records);
    let mut start = 0;
    for batch in iter.by_ref() {
        let batch = batch?;
        if batch.size() > config.max_message_bytes {
            return Err(LogError::MessageTooLarge {
                size: batch.size(),
                max: config.max_message_bytes,
            });
        }
        batch.validate_from_client()?;
        if batch.attributes().is_control() {
            return Err(LogError::InvalidRecord(
                "clients may not produce control batches".into(),
            ));
        }
        if config.cleanup_policy.compact {
            check_keys(&batch)?;
        }
        spans.push((start, batch.size()));
        start += batch.size();
    }
    if spans.is_empty() {
        return Err(LogError::InvalidRecord(
            "no record batch in the append".into(),
        ));
    }
    if records.len() as u64 > config.segment_bytes {
        return Err(LogError::RecordListTooLarge {
            size: records.len(),
            max: config.segment_bytes as usize,
        });
    }
    Ok(spans)
}

/// Compacted topics need a key on every record (Kafka's `LogValidator` rule).
fn check_keys(batch: &RecordBatch<'_>) -> Result<()> {
    for record in batch.record_iter()? {
        if record?.key.is_none() {
            return Err(LogError::InvalidRecord(
                "compacted topic cannot accept a record without a key".into(),
            ));
        }
    }
    Ok(())
}

impl Log {
    /// Appends batches a producer sent: validates them, checks them against the producer
    /// state (epochs, sequences, open transactions), assigns offsets from the log end, stamps
    /// `leader_epoch` (and the append time for `LogAppendTime` topics) into them in place, and
    /// writes them. A retry of a batch the producer state remembers is not written again: the
    /// answer says where it went ([`AppendInfo::duplicate`]). Not durable yet: see
    /// [`Log::flush_if_required`].
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_from(records, leader_epoch, AppendOrigin::Client, now_ms)
    }

    /// Appends a coordinator's own batches (transactional offset commits): as
    /// [`Log::append_as_leader`], but producer sequences are not checked, since coordinators do
    /// not number their writes.
    pub fn append_as_coordinator(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_from(records, leader_epoch, AppendOrigin::Coordinator, now_ms)
    }

    fn append_from(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        let config = self.config();
        let spans = validate_client_batches(records, &config)?;
        let log_append_time =
            (config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let state = self.state.write();
        let first_offset = state.log_end_offset;
        let mut next = first_offset;
        let mut staged = state.producers.begin();
        for &(start, size) in &spans {
            let mut batch = RecordBatchMut::parse(&mut records[start..start + size])?;
            batch.set_base_offset(next);
            batch.set_partition_leader_epoch(leader_epoch);
            if let Some(time) = log_append_time {
                batch.set_log_append_time(time);
            }
            let batch = batch.as_batch();
            next = batch.next_offset();
            if let Some(producer_batch) = ProducerBatch::of(&batch)? {
                let check =
                    state
                        .producers
                        .check_and_stage(&mut staged, &producer_batch, origin)?;
                if let BatchCheck::Duplicate(original) = check {
                    return Ok(AppendInfo::duplicate(original, state.log_start_offset));
                }
            }
        }
        self.write_staged(
            state,
            records,
            &config,
            log_append_time,
            staged,
            leader_epoch,
        )
    }

    /// Writes a transaction marker for `producer_id` (WriteTxnMarkers, on the leader): a
    /// control batch with one commit or abort record, checked against the producer's epoch
    /// and the coordinator epoch of its last marker. An abort is added to the `.txnindex`.
    pub fn append_marker_as_leader(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTransactionMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        let config = self.config();
        let state = self.state.write();
        let offset = state.log_end_offset;
        let mut builder = RecordBatchBuilder::new(offset, Compression::None)
            .producer(producer_id, producer_epoch, NO_SEQUENCE)
            .transactional(true)
            .control(true)
            .partition_leader_epoch(leader_epoch);
        builder.append(
            offset,
            now_ms,
            Some(&marker.control_type.key_bytes()),
            Some(&marker.value_bytes()),
            &[],
        );
        let records = builder.build()?;
        let control = ProducerBatch::of(&RecordBatch::parse(&records)?)?
            .expect("a marker batch has a producer");
        let mut staged = state.producers.begin();
        state
            .producers
            .stage_marker(&mut staged, &control, AppendOrigin::Coordinator)?;
        self.write_staged(state, &records, &config, None, staged, leader_epoch)
    }

    /// Writes batches whose producer effects are staged, then applies those effects.
    fn write_staged(
        &self,
        mut state: RwLockWriteGuard<'_, LogState>,
        records: &[u8],
        config: &LogConfig,
        log_append_time: Option<i64>,
        staged: ProducerAppend,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let info = self.write_batches(&mut state, records, config, log_append_time)?;
        let aborted = state.producers.commit(staged);
        self.record_aborted(&mut state, aborted)?;
        drop(state);
        if leader_epoch >= 0 {
            self.guard_io(
                self.leader_epochs
                    .lock()
                    .assign(leader_epoch, info.first_offset),
            )?;
        }
        Ok(info)
    }

    /// Appends batches copied from a leader: offsets and epochs are already assigned, so
    /// they are only checked (CRC, offsets at or past the log end) and written as they are;
    /// their producer and transaction effects are replayed.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<AppendInfo> {
        self.check_online()?;
        let config = self.config();
        let mut state = self.state.write();
        let mut expected = state.log_end_offset;
        let mut epochs = Vec::new();
        let mut producer_batches = Vec::new();
        for batch in BatchIter::new(records) {
            let batch = batch?;
            batch.validate_stored()?;
            if batch.base_offset() < expected {
                return Err(LogError::InvalidRecord(format!(
                    "batch at offset {} is below the log end offset {expected}",
                    batch.base_offset()
                )));
            }
            if epochs
                .last()
                .is_none_or(|&(e, _)| batch.partition_leader_epoch() > e)
            {
                epochs.push((batch.partition_leader_epoch(), batch.base_offset()));
            }
            producer_batches.extend(ProducerBatch::of(&batch)?);
            expected = batch.next_offset();
        }
        if expected == state.log_end_offset {
            return Err(LogError::InvalidRecord(
                "no record batch in the append".into(),
            ));
        }
        let info = self.write_batches(&mut state, records, &config, None)?;
        let aborted = producer_batches
            .iter()
            .flat_map(|b| state.producers.replay(b))
            .collect();
        self.record_aborted(&mut state, aborted)?;
        drop(state);
        let mut cache = self.leader_epochs.lock();
        for (epoch, offset) in epochs {
            self.guard_io(cache.assign(epoch, offset))?;
        }
        Ok(info)
    }

    /// Rolls if needed and writes final, validated batches to the active segment.
    fn write_batches(
        &self,
        state: &mut LogState,
        records: &[u8],
        config: &LogConfig,
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo> {
        let mut info = AppendInfo {
            first_offset: -1,
            last_offset: -1,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            log_append_time,
            log_start_offset: state.log_start_offset,
            batch_count: 0,
            size: records.len(),
            duplicate: false,
        };
        for batch in BatchIter::new(records) {
            let batch = batch?;
            if info.batch_count == 0 {
                info.first_offset = batch.base_offset();
            }
            info.batch_count += 1;
            info.last_offset = batch.last_offset();
            if batch.max_timestamp() > info.max_timestamp {
                info.max_timestamp = batch.max_timestamp();
                info.offset_of_max_timestamp = batch.last_offset();
            }
        }
        let result = self
            .maybe_roll(
                state,
                records.len() as u64,
                info.first_offset,
                info.last_offset,
                info.max_timestamp,
                config,
            )
            .and_then(|()| state.active_mut().append(records));
        self.guard_io(result)?;
        state.log_end_offset = info.last_offset + 1;
        self.pending.lock().written_end = state.log_end_offset;
        Ok(info)
    }

    /// Starts a new segment at `first_offset` when the active one is full by size, age
    /// (`segment.ms`, measured between record timestamps as Kafka does), index space, or
    /// relative-offset range.
    fn maybe_roll(
        &self,
        state: &mut LogState,
        append_size: u64,
        first_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        config: &LogConfig,
    ) -> Result<()> {
        let active = state.active_mut();
        if active.size() == 0 {
            return Ok(());
        }
        let waited = match active.rolling_timestamp()? {
            Some(first) if first >= 0 && max_timestamp >= 0 => max_timestamp - first,
            _ => 0,
        };
        let should_roll = active.size() + append_size > config.segment_bytes
            || waited > config.segment_ms
            || active.indexes_full()?
            || last_offset - active.base_offset() > i64::from(i32::MAX);
        if should_roll {
            self.roll(state, first_offset, config)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    pub(super) fn roll(
        &self,
        state: &mut LogState,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<()> {
        let active = state.active_mut();
        active.seal()?;
        // The sealed segment's aborts must be on disk before a snapshot past them is: recovery
        // only re-derives aborts from the batches after the newest snapshot.
        active.sync_txn_index()?;
        self.take_snapshot(state, base_offset)?;
        let segment = LogSegment::create(&self.dir, base_offset, IndexSettings::from(config), "")?;
        self.note_rolled(state.active(), &segment);
        tracing::debug!(log = %self.topic_partition, base_offset, "rolled new segment");
        state.segments.insert(base_offset, segment);
        Ok(())
    }

    /// Rolls the active segment now if it holds anything (used before deleting it by
    /// retention, and by tests and tools).
    pub fn force_roll(&self) -> Result<()> {
        self.check_online()?;
        let config = self.config();
        let mut state = self.state.write();
        if state.active().size() == 0 {
            return Ok(());
        }
        let base = state.log_end_offset;
        let result = self.roll(&mut state, base, &config);
        self.guard_io(result)
    }
}

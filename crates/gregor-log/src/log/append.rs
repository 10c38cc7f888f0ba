//! Appending batches: validation, offset assignment, rolling.

use gregor_protocol::batch::{BatchIter, RecordBatch, RecordBatchMut, TimestampType};

use super::{Log, LogState};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
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
    /// Appends batches a producer sent: validates them, assigns offsets from the log end,
    /// stamps `leader_epoch` (and the append time for `LogAppendTime` topics) into them in
    /// place, and writes them. Not durable yet: see [`Log::flush_if_required`].
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        let config = self.config();
        let spans = validate_client_batches(records, &config)?;
        let log_append_time =
            (config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let mut state = self.state.write();
        let first_offset = state.log_end_offset;
        let mut next = first_offset;
        for &(start, size) in &spans {
            let mut batch = RecordBatchMut::parse(&mut records[start..start + size])?;
            batch.set_base_offset(next);
            batch.set_partition_leader_epoch(leader_epoch);
            if let Some(time) = log_append_time {
                batch.set_log_append_time(time);
            }
            next = batch.as_batch().next_offset();
        }
        let info = self.write_batches(&mut state, records, &config, log_append_time)?;
        drop(state);
        if leader_epoch >= 0 {
            self.guard_io(self.leader_epochs.lock().assign(leader_epoch, first_offset))?;
        }
        Ok(info)
    }

    /// Appends batches copied from a leader: offsets and epochs are already assigned, so
    /// they are only checked (CRC, offsets at or past the log end) and written as they are.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<AppendInfo> {
        self.check_online()?;
        let config = self.config();
        let mut state = self.state.write();
        let mut expected = state.log_end_offset;
        let mut epochs = Vec::new();
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
            expected = batch.next_offset();
        }
        if expected == state.log_end_offset {
            return Err(LogError::InvalidRecord(
                "no record batch in the append".into(),
            ));
        }
        let info = self.write_batches(&mut state, records, &config, None)?;
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

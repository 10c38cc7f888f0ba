//! Encoding a complete v2 record batch: header, records, compression and CRC-32C.
//!
//! [`RecordBatchBuilder`] is what the client's producer uses to make batches and what the log
//! cleaner uses to rewrite them. Records are encoded as they are appended (so memory stays close
//! to the final size) and compressed once in [`RecordBatchBuilder::build`]. Mistakes in
//! [`RecordBatchBuilder::append`] (offsets going backwards, sizes Kafka cannot represent) are
//! remembered and returned by `build`, so the append loop stays simple.
//!
//! ```
//! use gregor_protocol::batch::{Compression, RecordBatch, RecordBatchBuilder, RecordHeader};
//!
//! let mut builder = RecordBatchBuilder::new(100, Compression::Zstd);
//! builder.append(100, 1_700_000_000_000, Some(b"key"), Some(b"value"), &[]);
//! builder.append(101, 1_700_000_000_005, None, None, &[RecordHeader::new("h", Some("1"))]);
//! let bytes = builder.build()?;
//!
//! let batch = RecordBatch::parse(&bytes)?;
//! batch.validate_from_client()?;
//! assert_eq!(batch.last_offset(), 101);
//! assert_eq!(batch.records()?[1].headers[0].key, "h");
//! # Ok::<(), gregor_protocol::batch::BatchError>(())
//! ```

use bytes::Bytes;

use super::compression::compress;
use super::record::{Record, RecordHeader};
use super::{
    Attributes, BatchError, Compression, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD,
    RecordBatch, TimestampType, field,
};

/// Largest records section a batch can hold: `batchLength` is an `i32` counting from
/// `partitionLeaderEpoch`.
const MAX_RECORDS_BYTES: usize = i32::MAX as usize - (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD);

/// Builds one v2 record batch from records with absolute offsets and timestamps.
///
/// Defaults match a non-idempotent producer: CreateTime, no producer id/epoch/sequence, not
/// transactional, not control, leader epoch `-1`. `baseTimestamp` is the first record's timestamp
/// (or the delete horizon), `maxTimestamp` the largest record timestamp, `lastOffsetDelta` the
/// last appended offset minus the base offset (unless overridden).
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    compression: Compression,
    timestamp_type: TimestampType,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    partition_leader_epoch: i32,
    delete_horizon: Option<i64>,
    last_offset_delta: Option<i32>,
    max_timestamp: Option<i64>,
    /// Uncompressed encoded records, timestamp deltas relative to `encoded_base_timestamp`.
    records: Vec<u8>,
    count: i32,
    encoded_base_timestamp: Option<i64>,
    largest_timestamp: Option<i64>,
    last_offset: Option<i64>,
    error: Option<BatchError>,
}

impl RecordBatchBuilder {
    /// A builder for a batch starting at `base_offset` whose records will be compressed with
    /// `compression`. Producers use base offset 0; the broker assigns the real one on append.
    pub fn new(base_offset: i64, compression: Compression) -> RecordBatchBuilder {
        RecordBatchBuilder {
            base_offset,
            compression,
            timestamp_type: TimestampType::CreateTime,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            delete_horizon: None,
            last_offset_delta: None,
            max_timestamp: None,
            records: Vec::new(),
            count: 0,
            encoded_base_timestamp: None,
            largest_timestamp: None,
            last_offset: None,
            error: None,
        }
    }

    /// Sets the timestamp type attribute (LogAppendTime for batches the broker stamped).
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Sets the idempotent/transactional producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (transaction markers).
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets the partition leader epoch (outside the CRC; brokers stamp it on append).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets or clears the compaction delete horizon (KIP-534): sets attribute bit 6 and stores
    /// the horizon as `baseTimestamp`, record timestamp deltas then being relative to it (and
    /// possibly negative).
    pub fn delete_horizon(mut self, horizon: Option<i64>) -> Self {
        self.delete_horizon = horizon;
        self
    }

    /// Overrides `lastOffsetDelta`. The cleaner uses it to keep a batch's original offset range
    /// after removing its last records, so that offsets and producer sequences stay consistent.
    /// Must not be smaller than the last appended record's delta (checked in `build`).
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.last_offset_delta = Some(delta);
        self
    }

    /// Overrides `maxTimestamp`: the append time of a LogAppendTime batch, or the original max
    /// timestamp of an empty batch kept by compaction (retention judges segments by it). Without
    /// it, an empty batch gets `-1` (`NO_TIMESTAMP`).
    pub fn max_timestamp(mut self, timestamp: i64) -> Self {
        self.max_timestamp = Some(timestamp);
        self
    }

    /// Number of records appended so far.
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// Size of the records appended so far, before compression; producers use it to decide when
    /// a batch is full.
    pub fn uncompressed_size(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// Appends a record with an absolute `offset` (greater than the previous record's, and not
    /// below the base offset) and absolute `timestamp`. Errors are reported by [`Self::build`].
    pub fn append(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) {
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: headers.to_vec(),
        };
        self.push(offset, timestamp, record);
    }

    /// Appends a decoded record (e.g. one the cleaner keeps) at an absolute `offset` and
    /// `timestamp`, keeping its attributes, key, value and headers; its deltas are recomputed.
    pub fn append_record(&mut self, offset: i64, timestamp: i64, record: &Record) {
        self.push(offset, timestamp, record.clone());
    }

    fn push(&mut self, offset: i64, timestamp: i64, mut record: Record) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_push(offset, timestamp, &mut record) {
            self.error = Some(e);
        }
    }

    fn try_push(
        &mut self,
        offset: i64,
        timestamp: i64,
        record: &mut Record,
    ) -> Result<(), BatchError> {
        if let Some(last) = self.last_offset {
            if offset <= last {
                return Err(BatchError::InvalidRecordCount(format!(
                    "offset {offset} appended after {last}"
                )));
            }
        }
        let delta = offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= 0)
            .ok_or_else(|| {
                BatchError::InvalidRecordCount(format!(
                    "offset {offset} out of range for base offset {}",
                    self.base_offset
                ))
            })?;
        if self.count == i32::MAX {
            return Err(BatchError::InvalidRecordCount("too many records".into()));
        }
        check_len(record.key.as_deref(), "key")?;
        check_len(record.value.as_deref(), "value")?;
        check_len(Some(&record.headers), "header count")?;
        for h in &record.headers {
            check_len(Some(&h.key), "header key")?;
            check_len(h.value.as_deref(), "header value")?;
        }
        let base = *self
            .encoded_base_timestamp
            .get_or_insert(self.delete_horizon.unwrap_or(timestamp));
        record.offset_delta = delta;
        record.timestamp_delta = timestamp.wrapping_sub(base);
        if self.records.len().saturating_add(record.encoded_len()) > MAX_RECORDS_BYTES {
            return Err(BatchError::MalformedRecord(
                "records exceed the largest batch Kafka can represent".into(),
            ));
        }
        record.encode(&mut self.records);
        self.count += 1;
        self.last_offset = Some(offset);
        self.largest_timestamp = Some(
            self.largest_timestamp
                .map_or(timestamp, |t| t.max(timestamp)),
        );
        Ok(())
    }

    /// Encodes the batch: compresses the records, writes the header and the CRC-32C.
    ///
    /// A batch without records is written with an empty records section and codec `none`
    /// whatever codec was asked for, as Kafka's cleaner writes empty batches (readers such as
    /// kafka-python would otherwise try to decompress zero bytes).
    pub fn build(self) -> Result<Vec<u8>, BatchError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let appended_delta = self.last_offset.map(|o| (o - self.base_offset) as i32);
        let last_offset_delta = match (self.last_offset_delta, appended_delta) {
            (Some(o), Some(a)) if o < a => {
                return Err(BatchError::InvalidRecordCount(format!(
                    "last offset delta {o} below the last record's delta {a}"
                )));
            }
            (Some(o), _) if o < 0 => {
                return Err(BatchError::InvalidRecordCount(format!(
                    "last offset delta {o}"
                )));
            }
            (Some(o), _) => o,
            (None, Some(a)) => a,
            (None, None) => {
                return Err(BatchError::InvalidRecordCount(
                    "an empty batch needs last_offset_delta to say which offsets it covers".into(),
                ));
            }
        };
        let base_timestamp = self
            .delete_horizon
            .or(self.encoded_base_timestamp)
            .or(self.max_timestamp)
            .unwrap_or(NO_TIMESTAMP);
        let max_timestamp = self
            .max_timestamp
            .or(self.largest_timestamp)
            .unwrap_or(NO_TIMESTAMP);
        let mut records = self.records;
        if let Some(encoded) = self.encoded_base_timestamp {
            if encoded != base_timestamp {
                // The delete horizon was set after the first append: shift every delta.
                records = rebase(&records, encoded.wrapping_sub(base_timestamp))?;
            }
        }
        let compression = if self.count == 0 {
            Compression::None
        } else {
            self.compression
        };
        let body = match compression {
            Compression::None => records,
            codec => compress(codec, &records)?,
        };
        if body.len() > MAX_RECORDS_BYTES {
            return Err(BatchError::MalformedRecord(
                "compressed records exceed the largest batch Kafka can represent".into(),
            ));
        }
        let attributes = Attributes::new(
            compression,
            self.timestamp_type,
            self.transactional,
            self.control,
        )
        .with_delete_horizon(self.delete_horizon.is_some());

        let size = RECORD_BATCH_OVERHEAD + body.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0; 4]); // CRC, filled in below
        out.extend_from_slice(&attributes.0.to_be_bytes());
        out.extend_from_slice(&last_offset_delta.to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        debug_assert_eq!(out.len(), field::RECORDS);
        out.extend_from_slice(&body);
        let crc = crc32c::crc32c(&out[field::ATTRIBUTES..]);
        out[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        debug_assert!(RecordBatch::parse(&out).is_ok());
        Ok(out)
    }
}

fn check_len<T: AsRef<[E]> + ?Sized, E>(v: Option<&T>, what: &str) -> Result<(), BatchError> {
    match v {
        Some(v) if v.as_ref().len() > i32::MAX as usize => Err(BatchError::MalformedRecord(
            format!("{what} of {} exceeds i32::MAX", v.as_ref().len()),
        )),
        _ => Ok(()),
    }
}

/// Re-encodes our own encoded records with every timestamp delta increased by `shift`.
fn rebase(records: &[u8], shift: i64) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(records.len() + 16);
    let mut cursor = records;
    while !cursor.is_empty() {
        let mut record = Record::decode(&mut cursor)?;
        record.timestamp_delta = record.timestamp_delta.wrapping_add(shift);
        record.encode(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_validation() {
        let mut b = RecordBatchBuilder::new(1000, Compression::None)
            .producer(42, 3, 17)
            .transactional(true)
            .partition_leader_epoch(9);
        b.append(1000, 50, Some(b"a"), None, &[]);
        b.append(1001, 40, None, Some(b"b"), &[]);
        b.append(1002, 60, None, None, &[]);
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.validate_from_client().unwrap();
        batch.validate_stored().unwrap();
        assert_eq!(batch.base_offset(), 1000);
        assert_eq!(batch.last_offset_delta(), 2);
        assert_eq!(batch.base_timestamp(), 50);
        assert_eq!(batch.max_timestamp(), 60);
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (42, 3, 17)
        );
        assert_eq!(batch.partition_leader_epoch(), 9);
        assert!(batch.attributes().is_transactional());
        let records = batch.records().unwrap();
        assert_eq!(records[1].timestamp_delta, -10);
        assert_eq!(batch.record_timestamp(&records[1]), 40);
        assert_eq!(records[2].offset(batch.base_offset()), 1002);
    }

    #[test]
    fn delete_horizon_rebases_deltas_even_when_set_late() {
        let mut b = RecordBatchBuilder::new(0, Compression::Gzip);
        b.append(0, 1_000, Some(b"k"), None, &[]);
        b.append(1, 2_000, Some(b"k"), None, &[]);
        let bytes = b.delete_horizon(Some(5_000)).build().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert_eq!(batch.delete_horizon(), Some(5_000));
        assert_eq!(batch.max_timestamp(), 2_000);
        let records = batch.records().unwrap();
        assert_eq!(records[0].timestamp_delta, -4_000);
        assert_eq!(batch.record_timestamp(&records[1]), 2_000);
    }

    #[test]
    fn empty_batch_with_override_is_valid() {
        let bytes = RecordBatchBuilder::new(500, Compression::Zstd)
            .producer(7, 1, 30)
            .last_offset_delta(4)
            .max_timestamp(123)
            .build()
            .unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.validate_stored().unwrap();
        assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD);
        assert_eq!(batch.records_count(), 0);
        assert_eq!(batch.next_offset(), 505);
        assert_eq!(batch.compression(), Ok(Compression::None));
        assert_eq!((batch.base_timestamp(), batch.max_timestamp()), (123, 123));
        assert!(batch.records().unwrap().is_empty());
        assert!(
            RecordBatchBuilder::new(0, Compression::None)
                .build()
                .is_err()
        );
    }

    #[test]
    fn override_keeps_gaps_for_compaction() {
        let mut b = RecordBatchBuilder::new(10, Compression::Lz4).last_offset_delta(5);
        b.append(11, 1, Some(b"x"), Some(b"y"), &[]);
        b.append(13, 1, Some(b"z"), Some(b"y"), &[]);
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.validate_stored().unwrap();
        assert!(
            batch.validate_from_client().is_err(),
            "gaps are not allowed from clients"
        );
        let offsets: Vec<i64> = batch
            .records()
            .unwrap()
            .iter()
            .map(|r| r.offset(10))
            .collect();
        assert_eq!(offsets, [11, 13]);
    }

    #[test]
    fn append_mistakes_surface_in_build() {
        let mut b = RecordBatchBuilder::new(10, Compression::None);
        b.append(10, 0, None, None, &[]);
        b.append(10, 0, None, None, &[]);
        assert!(matches!(b.build(), Err(BatchError::InvalidRecordCount(_))));
        let mut b = RecordBatchBuilder::new(10, Compression::None);
        b.append(9, 0, None, None, &[]);
        assert!(b.build().is_err());
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        b.append(i64::from(i32::MAX) + 1, 0, None, None, &[]);
        assert!(b.build().is_err());
        let mut b = RecordBatchBuilder::new(0, Compression::None).last_offset_delta(0);
        b.append(0, 0, None, None, &[]);
        b.append(1, 0, None, None, &[]);
        assert!(b.build().is_err(), "override below the appended range");
    }

    #[test]
    fn control_batch_with_marker() {
        use super::super::{ControlRecordType, EndTransactionMarker};
        let marker = EndTransactionMarker {
            control_type: ControlRecordType::Commit,
            coordinator_epoch: 3,
        };
        let mut b = RecordBatchBuilder::new(77, Compression::None)
            .producer(5, 0, -1)
            .transactional(true)
            .control(true);
        b.append(
            77,
            99,
            Some(&marker.control_type.key_bytes()),
            Some(&marker.value_bytes()),
            &[],
        );
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.validate_from_client().unwrap();
        assert!(batch.attributes().is_control());
        let records = batch.records().unwrap();
        assert_eq!(EndTransactionMarker::from_record(&records[0]), Ok(marker));
    }
}

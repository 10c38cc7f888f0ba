//! Decoding a whole batch's records: decompress once, then decode lazily or all at once.
//!
//! [`RecordBatch::record_iter`] streams records out of one shared buffer (the decompressed data,
//! or one copy of an uncompressed records section), the way Kafka's own broker and cleaner walk
//! a batch; [`RecordBatch::records`] collects them. Both enforce the same rules: exactly
//! `recordsCount` records, no bytes left after them, offset deltas strictly increasing within
//! `0..=lastOffsetDelta`, and every count checked against the bytes present before anything is
//! allocated for it.
//!
//! Memory: the decompressed data is bounded by the caller's limit (default
//! [`DEFAULT_MAX_DECOMPRESSED`]). A collected `Vec<Record>` costs about 100 bytes per record on
//! top of that, so a hostile batch of minimal 7-byte records can make `records()` allocate ~15×
//! its decompressed size; code that handles untrusted batches in bulk (the log cleaner) should
//! prefer the iterator, which holds one record at a time.

use bytes::Bytes;

use super::compression::{DEFAULT_MAX_DECOMPRESSED, decompress};
use super::record::{MIN_RECORD_SIZE, Record, malformed};
use super::{BatchError, Compression, RecordBatch, TimestampType};

impl RecordBatch<'_> {
    /// Decodes all records, decompressing with the [`DEFAULT_MAX_DECOMPRESSED`] bound.
    ///
    /// Does not check the CRC; call [`RecordBatch::validate_stored`] or
    /// [`RecordBatch::validate_from_client`] first when the bytes are untrusted.
    pub fn records(&self) -> Result<Vec<Record>, BatchError> {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED)
    }

    /// Decodes exactly `recordsCount` records, decompressing at most `max_decompressed` bytes.
    ///
    /// Fails if records run out early, bytes remain after the last one, or offset deltas are
    /// not strictly increasing within `0..=lastOffsetDelta`. Keys, values and headers share one
    /// buffer (the decompressed data, or one copy of an uncompressed records section).
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Vec<Record>, BatchError> {
        let iter = self.record_iter_with_limit(max_decompressed)?;
        // The iterator checked the count against the bytes present, so this is bounded.
        let mut records = Vec::with_capacity(iter.remaining);
        for record in iter {
            records.push(record?);
        }
        Ok(records)
    }

    /// Streams the records, decompressing with the [`DEFAULT_MAX_DECOMPRESSED`] bound.
    pub fn record_iter(&self) -> Result<RecordIter, BatchError> {
        self.record_iter_with_limit(DEFAULT_MAX_DECOMPRESSED)
    }

    /// Decompresses the records (at most `max_decompressed` bytes) and returns an iterator that
    /// decodes them one at a time, with the same checks as [`RecordBatch::records_with_limit`].
    /// Counts that cannot fit the data fail here, before any decoding.
    pub fn record_iter_with_limit(
        &self,
        max_decompressed: usize,
    ) -> Result<RecordIter, BatchError> {
        let codec = self.compression()?;
        let count = self.records_count();
        if count < 0 {
            return Err(BatchError::InvalidRecordCount(format!(
                "record count {count}"
            )));
        }
        let count = count as usize;
        let raw = self.records_bytes();
        let data = if count == 0 && raw.is_empty() {
            // Empty batches (kept by compaction) carry no records section, whatever the codec.
            Bytes::new()
        } else if codec == Compression::None {
            check_count_fits(count, raw.len())?;
            Bytes::copy_from_slice(raw)
        } else {
            // No record is smaller than 7 bytes: a count the limit cannot hold fails before
            // spending any time decompressing.
            check_count_fits(count, max_decompressed)?;
            let data = Bytes::from(decompress(codec, raw, max_decompressed)?);
            check_count_fits(count, data.len())?;
            data
        };
        Ok(RecordIter {
            data,
            position: 0,
            remaining: count,
            count,
            last_offset_delta: self.last_offset_delta(),
            previous_delta: None,
            failed: false,
        })
    }

    /// A record's absolute timestamp as Kafka reports it: the batch's max timestamp for
    /// LogAppendTime batches, otherwise `baseTimestamp + timestampDelta`.
    pub fn record_timestamp(&self, record: &Record) -> i64 {
        match self.attributes().timestamp_type() {
            TimestampType::LogAppendTime => self.max_timestamp(),
            TimestampType::CreateTime => record.timestamp(self.base_timestamp()),
        }
    }
}

fn check_count_fits(count: usize, bytes: usize) -> Result<(), BatchError> {
    if count > bytes / MIN_RECORD_SIZE {
        return Err(BatchError::InvalidRecordCount(format!(
            "{count} records cannot fit in {bytes} bytes"
        )));
    }
    Ok(())
}

/// Iterator over a batch's records, made by [`RecordBatch::record_iter`].
///
/// Owns the (decompressed) records, so it outlives the batch view. Yields exactly
/// `recordsCount` records, then an error if bytes remain; stops after the first error.
#[derive(Debug, Clone)]
pub struct RecordIter {
    data: Bytes,
    position: usize,
    remaining: usize,
    count: usize,
    last_offset_delta: i32,
    previous_delta: Option<i32>,
    failed: bool,
}

impl RecordIter {
    /// Records still to be yielded (if decoding succeeds).
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    fn next_record(&mut self) -> Result<Record, BatchError> {
        let mut cursor = &self.data[self.position..];
        let record = Record::decode_shared(&self.data, &mut cursor)?;
        self.position = self.data.len() - cursor.len();
        let delta = record.offset_delta;
        let previous = self.previous_delta;
        if delta < 0 || delta > self.last_offset_delta || previous.is_some_and(|p| delta <= p) {
            return Err(BatchError::InvalidRecordCount(format!(
                "offset delta {delta} after {previous:?} (last offset delta {})",
                self.last_offset_delta
            )));
        }
        self.previous_delta = Some(delta);
        Ok(record)
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.position == self.data.len() {
                return None;
            }
            self.failed = true;
            return Some(Err(malformed(format!(
                "{} bytes left after {} records",
                self.data.len() - self.position,
                self.count
            ))));
        }
        let result = self.next_record();
        match &result {
            Ok(_) => self.remaining -= 1,
            Err(_) => self.failed = true,
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.remaining + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RecordBatchBuilder, RecordHeader};
    use super::*;

    #[test]
    fn iterator_streams_the_same_records() {
        let mut b = RecordBatchBuilder::new(5, Compression::Snappy);
        for i in 0..100 {
            b.append(
                5 + i,
                i,
                Some(b"k"),
                None,
                &[RecordHeader::new("h", Some("v"))],
            );
        }
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        let mut iter = batch.record_iter().unwrap();
        assert_eq!(iter.remaining(), 100);
        let first = iter.next().unwrap().unwrap();
        assert_eq!(first.offset(5), 5);
        let rest: Result<Vec<_>, _> = iter.collect();
        let mut all = vec![first];
        all.extend(rest.unwrap());
        assert_eq!(all, batch.records().unwrap());
    }

    #[test]
    fn iterator_reports_trailing_bytes_once() {
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        b.append(0, 0, None, None, &[]);
        b.append(1, 0, None, None, &[]);
        let mut bytes = b.build().unwrap();
        // Claim one record: the second one becomes trailing garbage.
        bytes[super::super::field::RECORDS_COUNT + 3] = 1;
        let batch = RecordBatch::parse(&bytes).unwrap();
        let results: Vec<_> = batch.record_iter().unwrap().collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(BatchError::MalformedRecord(_))));
        assert!(batch.records().is_err());
    }

    #[test]
    fn record_struct_size_is_as_documented() {
        // The module docs' memory estimate relies on this staying about 100 bytes.
        assert!(
            std::mem::size_of::<Record>() <= 112,
            "{}",
            std::mem::size_of::<Record>()
        );
    }
}

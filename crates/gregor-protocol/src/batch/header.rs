//! Zero-copy views of a v2 batch's fixed header.

use super::record::MIN_RECORD_SIZE;
use super::{Attributes, BatchError, LOG_OVERHEAD, MAGIC_V2, RECORD_BATCH_OVERHEAD, field};
use super::{TimestampType, attributes::Compression};

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// A read-only view of exactly one v2 record batch.
///
/// Construction checks only what is needed to know the batch's extent (header present, length
/// sane, magic 2), so it is cheap enough for every produced batch and every batch read back from
/// disk. Call [`RecordBatch::verify_crc`] or [`RecordBatch::validate_from_client`] to check content.
#[derive(Clone, Copy)]
pub struct RecordBatch<'a> {
    buf: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Views the batch at the start of `buf`; `buf` may continue with further batches.
    pub fn parse(buf: &'a [u8]) -> Result<RecordBatch<'a>, BatchError> {
        let size = batch_size(buf)?;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        let magic = buf[field::MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::InvalidMagic(magic));
        }
        Ok(RecordBatch { buf: &buf[..size] })
    }

    /// The whole batch, header included, exactly as stored.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Total size in bytes (`LOG_OVERHEAD + batchLength`).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        read_i64(self.buf, field::BASE_OFFSET)
    }

    /// `batchLength`: bytes after the length field.
    pub fn batch_length(&self) -> i32 {
        read_i32(self.buf, field::BATCH_LENGTH)
    }

    /// Leader epoch stamped by the partition leader that appended the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.buf, field::PARTITION_LEADER_EPOCH)
    }

    /// CRC-32C stored in the header.
    pub fn crc(&self) -> u32 {
        read_i32(self.buf, field::CRC) as u32
    }

    /// The attribute bits.
    pub fn attributes(&self) -> Attributes {
        Attributes(read_i16(self.buf, field::ATTRIBUTES))
    }

    /// Codec of the records; fails on an undefined codec id.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        self.attributes().compression()
    }

    /// Difference between the last and the first offset of the batch.
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.buf, field::LAST_OFFSET_DELTA)
    }

    /// Offset of the last record (or of the last record the batch once held, after compaction).
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// `baseTimestamp`: first record's timestamp, or the delete horizon (KIP-534).
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.buf, field::BASE_TIMESTAMP)
    }

    /// Largest record timestamp (or the append time for `LogAppendTime` batches).
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.buf, field::MAX_TIMESTAMP)
    }

    /// The delete horizon set by compaction, if the attribute bit says there is one.
    pub fn delete_horizon(&self) -> Option<i64> {
        self.attributes()
            .has_delete_horizon()
            .then(|| self.base_timestamp())
    }

    /// Producer id (`-1` for non-idempotent producers).
    pub fn producer_id(&self) -> i64 {
        read_i64(self.buf, field::PRODUCER_ID)
    }

    /// Producer epoch.
    pub fn producer_epoch(&self) -> i16 {
        read_i16(self.buf, field::PRODUCER_EPOCH)
    }

    /// Sequence number of the first record.
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.buf, field::BASE_SEQUENCE)
    }

    /// `recordsCount` as stored; not yet checked against anything.
    pub fn records_count(&self) -> i32 {
        read_i32(self.buf, field::RECORDS_COUNT)
    }

    /// The records section, compressed if the codec says so.
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.buf[field::RECORDS..]
    }

    /// CRC-32C of attributes..end, as it should be stored.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.buf[field::ATTRIBUTES..])
    }

    /// Checks the stored CRC against the bytes.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let computed = self.compute_crc();
        if computed == self.crc() {
            Ok(())
        } else {
            Err(BatchError::CorruptCrc {
                stored: self.crc(),
                computed,
            })
        }
    }

    /// Everything a broker checks on a batch a producer sent, without decoding records:
    /// known codec, CRC, `recordsCount == lastOffsetDelta + 1 > 0`, and (uncompressed) a count
    /// the bytes present could hold. Mirrors Kafka's `LogValidator` batch checks.
    pub fn validate_from_client(&self) -> Result<(), BatchError> {
        let compression = self.compression()?;
        self.verify_crc()?;
        let count = self.records_count();
        let delta = self.last_offset_delta();
        if count <= 0 {
            return Err(BatchError::InvalidRecordCount(format!(
                "record count {count}"
            )));
        }
        if delta < 0 || i64::from(delta) + 1 != i64::from(count) {
            return Err(BatchError::InvalidRecordCount(format!(
                "record count {count} does not match last offset delta {delta}"
            )));
        }
        if compression == Compression::None
            && (count as usize).saturating_mul(MIN_RECORD_SIZE) > self.records_bytes().len()
        {
            return Err(BatchError::InvalidRecordCount(format!(
                "{count} records cannot fit in {} bytes",
                self.records_bytes().len()
            )));
        }
        Ok(())
    }

    /// Checks a batch read back from storage or from a replica: CRC, a non-negative offset
    /// range, and a count no larger than that range (compaction may leave gaps).
    pub fn validate_stored(&self) -> Result<(), BatchError> {
        self.compression()?;
        self.verify_crc()?;
        let count = self.records_count();
        let delta = self.last_offset_delta();
        if count < 0 || delta < 0 || i64::from(count) > i64::from(delta) + 1 {
            return Err(BatchError::InvalidRecordCount(format!(
                "record count {count} with last offset delta {delta}"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("size", &self.size())
            .field("attributes", &self.attributes())
            .field("records_count", &self.records_count())
            .finish()
    }
}

/// Size of the batch starting at `buf` according to its header, without requiring the whole
/// batch to be present. Fails if even the length field is missing or implausible.
pub(crate) fn batch_size(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < RECORD_BATCH_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: RECORD_BATCH_OVERHEAD,
            available: buf.len(),
        });
    }
    let length = read_i32(buf, field::BATCH_LENGTH);
    if length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength(length));
    }
    Ok(LOG_OVERHEAD + length as usize)
}

/// A mutable view of one batch, for the fields a broker is allowed to change.
pub struct RecordBatchMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RecordBatchMut<'a> {
    /// Views the batch at the start of `buf` (same checks as [`RecordBatch::parse`]).
    pub fn parse(buf: &'a mut [u8]) -> Result<RecordBatchMut<'a>, BatchError> {
        let size = RecordBatch::parse(buf)?.size();
        Ok(RecordBatchMut {
            buf: &mut buf[..size],
        })
    }

    /// Read access to the same batch.
    pub fn as_batch(&self) -> RecordBatch<'_> {
        RecordBatch { buf: self.buf }
    }

    /// Sets the base offset (outside the CRC, so the CRC stays valid).
    pub fn set_base_offset(&mut self, offset: i64) {
        self.buf[field::BASE_OFFSET..field::BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
    }

    /// Sets the partition leader epoch (outside the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.buf[field::PARTITION_LEADER_EPOCH..field::PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&epoch.to_be_bytes());
    }

    /// Marks the batch `LogAppendTime` with `timestamp` as its max timestamp and fixes the CRC,
    /// as Kafka's `DefaultRecordBatch.setMaxTimestamp` does. Record deltas are left alone:
    /// consumers read every record's timestamp as the batch's max timestamp.
    pub fn set_log_append_time(&mut self, timestamp: i64) {
        let attributes = self
            .as_batch()
            .attributes()
            .with_timestamp_type(TimestampType::LogAppendTime);
        self.buf[field::ATTRIBUTES..field::ATTRIBUTES + 2]
            .copy_from_slice(&attributes.0.to_be_bytes());
        self.buf[field::MAX_TIMESTAMP..field::MAX_TIMESTAMP + 8]
            .copy_from_slice(&timestamp.to_be_bytes());
        self.update_crc();
    }

    /// Recomputes and stores the CRC after a change inside the covered range.
    pub fn update_crc(&mut self) {
        let crc = self.as_batch().compute_crc();
        self.buf[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterates over the batches concatenated in a buffer (a produce request's records, a log
/// segment, a fetch response).
///
/// Stops after the first error; an incomplete batch at the end yields
/// [`BatchError::Truncated`], which readers of fetch responses may treat as "end" and writers as
/// corruption. `position()` tells how far it got.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over `buf` from its start.
    pub fn new(buf: &'a [u8]) -> BatchIter<'a> {
        BatchIter {
            buf,
            position: 0,
            failed: false,
        }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<RecordBatch<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        match RecordBatch::parse(&self.buf[self.position..]) {
            Ok(batch) => {
                self.position += batch.size();
                Some(Ok(batch))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

//! Kafka's record batch, format v2 (magic 2), the unit Gregor stores and ships.
//!
//! Layout (big-endian), as in Kafka's `DefaultRecordBatch`:
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...
//! ```
//!
//! The produce path only needs [`RecordBatch`], a zero-copy view of the 61-byte header that
//! checks the CRC-32C and counts without touching the records. [`RecordBatchMut`] patches the
//! fields a broker owns (base offset and leader epoch, outside the CRC; the max timestamp for
//! `LogAppendTime`, followed by a CRC fix-up). Full record decoding and encoding (needed by
//! compaction and the client) live in [`record`] and [`builder`], and always check counts against
//! the bytes actually present before allocating:
//!
//! * [`varint`]: Kafka's zigzag varints and varlongs.
//! * [`compression`]: gzip, snappy (xerial framing), LZ4 (frame, independent blocks) and zstd,
//!   written as Kafka's Java client writes them, with bounded decompression.
//! * [`record`]: [`Record`], [`RecordHeader`] (duplicate keys kept in order), control records.
//! * [`RecordBatch::records`] / [`RecordBatch::record_iter`]: decompress and decode a batch.
//! * [`builder`]: [`RecordBatchBuilder`] encodes a complete batch with its CRC.

mod attributes;
pub mod builder;
pub mod compression;
mod error;
mod header;
pub mod record;
mod record_iter;
pub mod varint;

pub use attributes::{Attributes, Compression, TimestampType};
pub use builder::RecordBatchBuilder;
pub use compression::{DEFAULT_MAX_DECOMPRESSED, compress, decompress};
pub use error::BatchError;
pub use header::{BatchIter, RecordBatch, RecordBatchMut};
pub use record::{
    ControlRecordType, EndTransactionMarker, MIN_HEADER_SIZE, MIN_RECORD_SIZE, Record, RecordHeader,
};

/// Bytes before `batchLength` counts: `baseOffset` (8) + `batchLength` (4). Kafka's `LOG_OVERHEAD`.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 header, up to and including `recordsCount`.
/// Kafka's `RECORD_BATCH_OVERHEAD`.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The only record format Gregor accepts or writes.
pub const MAGIC_V2: i8 = 2;
/// Producer id of a batch written by a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// Producer epoch of a batch written by a non-idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Base sequence of a batch written by a non-idempotent producer.
pub const NO_SEQUENCE: i32 = -1;
/// Partition leader epoch of a batch the leader has not stamped.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp meaning "none" (`RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// Byte offsets of the header fields, relative to the start of the batch.
pub mod field {
    /// `baseOffset` (i64).
    pub const BASE_OFFSET: usize = 0;
    /// `batchLength` (i32): bytes after this field.
    pub const BATCH_LENGTH: usize = 8;
    /// `partitionLeaderEpoch` (i32), outside the CRC.
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    /// `magic` (i8).
    pub const MAGIC: usize = 16;
    /// `crc` (u32), CRC-32C of `attributes` to the end of the batch.
    pub const CRC: usize = 17;
    /// `attributes` (i16): first byte covered by the CRC.
    pub const ATTRIBUTES: usize = 21;
    /// `lastOffsetDelta` (i32).
    pub const LAST_OFFSET_DELTA: usize = 23;
    /// `baseTimestamp` (i64), or the delete horizon when that attribute bit is set.
    pub const BASE_TIMESTAMP: usize = 27;
    /// `maxTimestamp` (i64).
    pub const MAX_TIMESTAMP: usize = 35;
    /// `producerId` (i64).
    pub const PRODUCER_ID: usize = 43;
    /// `producerEpoch` (i16).
    pub const PRODUCER_EPOCH: usize = 51;
    /// `baseSequence` (i32).
    pub const BASE_SEQUENCE: usize = 53;
    /// `recordsCount` (i32).
    pub const RECORDS_COUNT: usize = 57;
    /// First byte of the (possibly compressed) records.
    pub const RECORDS: usize = 61;
}

use crate::ErrorCode;

/// Why a record batch was rejected. Each variant maps to the Kafka error code a client would get.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a v2 header needs, or fewer than `batchLength` promises.
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch claims or requires.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// `batchLength` is too small to hold the v2 header.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Magic byte other than 2; Gregor stores only v2 batches.
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    InvalidMagic(i8),
    /// CRC-32C over attributes..end does not match the header.
    #[error("record batch CRC mismatch: header says {stored:#010x}, computed {computed:#010x}")]
    CorruptCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// `recordsCount`, `lastOffsetDelta` or a record's offset delta disagree.
    #[error("invalid record count: {0}")]
    InvalidRecordCount(String),
    /// Attributes name a compression codec Kafka does not define.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// A record or header inside the batch is malformed (bad varint, lengths past the end...).
    #[error("malformed record: {0}")]
    MalformedRecord(String),
    /// Compressing or decompressing the records failed.
    #[error("{codec} (de)compression failed: {reason}")]
    Compression {
        /// Codec name, e.g. `lz4`.
        codec: &'static str,
        /// What the codec reported.
        reason: String,
    },
}

impl BatchError {
    /// The Kafka error code a producer receives for this failure, as Apache Kafka chooses it:
    /// structural damage is `CORRUPT_MESSAGE`, content that is well-formed but not acceptable is
    /// `INVALID_RECORD`, and an unknown codec is `UNSUPPORTED_COMPRESSION_TYPE`.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BatchError::Truncated { .. }
            | BatchError::InvalidLength(_)
            | BatchError::InvalidMagic(_)
            | BatchError::CorruptCrc { .. }
            | BatchError::MalformedRecord(_)
            | BatchError::Compression { .. } => ErrorCode::CORRUPT_MESSAGE,
            BatchError::InvalidRecordCount(_) => ErrorCode::INVALID_RECORD,
            BatchError::UnknownCompression(_) => ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
        }
    }
}

//! Typed storage errors, each mapped to the Kafka error code a client should see.

use std::io;
use std::path::PathBuf;

use gregor_protocol::ErrorCode;
use gregor_protocol::batch::BatchError;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A produced batch is malformed or fails its CRC.
    #[error("corrupt record batch: {0}")]
    CorruptBatch(#[from] BatchError),
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge {
        /// Size of the offending batch.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The whole append is larger than a segment can hold (`segment.bytes`).
    #[error("append of {size} bytes exceeds segment.bytes {max}")]
    RecordListTooLarge {
        /// Size of the append.
        size: usize,
        /// The segment size limit.
        max: usize,
    },
    /// Well-formed but unacceptable content: a keyless record on a compacted topic, a control
    /// batch from a client, an empty append.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The requested offset is outside `[log start, log end]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// Offset asked for.
        offset: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Offset the next append will get.
        log_end_offset: i64,
    },
    /// A configuration value is invalid.
    #[error("invalid value {value:?} for config {key}: {reason}")]
    InvalidConfig {
        /// Kafka config key.
        key: String,
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The disk failed under us; the log is offline until the process restarts.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An earlier I/O failure took this log offline (data in the page cache can no longer be
    /// trusted to reach the disk, so nothing more is accepted).
    #[error("log {0} is offline after an earlier storage error")]
    Offline(String),
}

impl LogError {
    /// The Kafka error code for this failure.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            LogError::CorruptBatch(e) => e.error_code(),
            LogError::MessageTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
            LogError::RecordListTooLarge { .. } => ErrorCode::RECORD_LIST_TOO_LARGE,
            LogError::InvalidRecord(_) => ErrorCode::INVALID_RECORD,
            LogError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
            LogError::InvalidConfig { .. } => ErrorCode::INVALID_CONFIG,
            LogError::Io { .. } | LogError::Offline(_) => ErrorCode::KAFKA_STORAGE_ERROR,
        }
    }
}

/// Result alias for log operations.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`, so storage failures say which file broke.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

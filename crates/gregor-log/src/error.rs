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
    /// A producer wrote with an epoch older than the partition has seen: a newer instance
    /// (same transactional id) or the coordinator fenced it.
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// Epoch it wrote with.
        epoch: i16,
        /// Epoch the partition knows.
        current: i16,
    },
    /// A batch does not follow the producer's last sequence: something in between was lost.
    #[error("producer {producer_id} (epoch {epoch}) sent sequence {sequence} after {last}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        epoch: i16,
        /// First sequence of the batch.
        sequence: i32,
        /// Last sequence the partition has.
        last: i32,
    },
    /// A write that does not fit the producer's transaction state (a plain batch inside an
    /// open transaction).
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A transaction marker from a coordinator older than the one that wrote the last marker.
    #[error(
        "transaction marker for producer {producer_id} from coordinator epoch {epoch}, which {current} fenced"
    )]
    TransactionCoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The marker's coordinator epoch.
        epoch: i32,
        /// Coordinator epoch of the last marker.
        current: i32,
    },
    /// A `.snapshot` file that cannot be read; the state is rebuilt from the log instead.
    #[error("corrupt producer snapshot {path}: {reason}")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
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
            LogError::Io { .. } | LogError::Offline(_) | LogError::CorruptSnapshot { .. } => {
                ErrorCode::KAFKA_STORAGE_ERROR
            }
            LogError::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
            LogError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            LogError::InvalidTxnState(_) => ErrorCode::INVALID_TXN_STATE,
            LogError::TransactionCoordinatorFenced { .. } => {
                ErrorCode::TRANSACTION_COORDINATOR_FENCED
            }
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

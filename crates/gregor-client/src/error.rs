//! The client's errors: what went wrong, typed, so callers can tell a retriable broker error
//! from a mistake in their configuration.

use gregor_protocol::ErrorCode;

/// Everything a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A configuration key is unknown or its value is invalid (raised when the client is
    /// built, never later).
    #[error("invalid configuration {key}: {message}")]
    Config {
        /// The Kafka property name.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// No broker could be reached.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why it failed.
        message: String,
    },
    /// A connection broke while requests were in flight.
    #[error("connection to {addr} lost: {message}")]
    Disconnected {
        /// The broker's address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{}{}", .code, .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },
    /// A request or response could not be encoded or decoded, or the broker does not support
    /// any version of an API the client needs.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The operation did not finish within its timeout.
    #[error("timed out after {0} ms: {1}")]
    Timeout(u64, String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A call that does not fit the client's state, e.g. seeking a partition the consumer is
    /// not assigned (Java's `IllegalStateException`): a mistake in the calling code, never
    /// worth retrying.
    #[error("illegal state: {0}")]
    IllegalState(String),
}

impl ClientError {
    /// A broker error from a response's error code (`None` for `NONE`).
    pub fn from_code(code: i16, message: Option<&str>) -> Option<ClientError> {
        (code != 0).then(|| ClientError::Kafka {
            code: ErrorCode(code),
            message: message.map(str::to_string),
        })
    }

    /// The Kafka error code, for broker errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same operation may succeed: transient broker states (leader
    /// moves, coordinator loading, timeouts) and lost connections.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_retriable_code(*code),
            ClientError::Disconnected { .. }
            | ClientError::Connect { .. }
            | ClientError::Timeout(..) => true,
            _ => false,
        }
    }
}

/// Kafka's retriable error codes (those whose exception extends `RetriableException`), as
/// `kafka-protocol`'s error table records them, so the list follows the protocol instead of
/// being kept by hand. Codes this library does not know are not retriable, as in Kafka.
pub fn is_retriable_code(code: ErrorCode) -> bool {
    kafka_protocol::error::ResponseError::try_from_code(code.0).is_some_and(|e| e.is_retriable())
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_codes_follow_kafka() {
        for code in [
            2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 56, 70, 71, 72, 74, 75,
        ] {
            assert!(is_retriable_code(ErrorCode(code)), "{code}");
        }
        for code in [78, 80, 83, 84, 88, 89, 100, 103, 106] {
            assert!(is_retriable_code(ErrorCode(code)), "{code}");
        }
        for code in [-1, 0, 1, 4, 10, 17, 29, 36, 42, 87, 9999] {
            assert!(!is_retriable_code(ErrorCode(code)), "{code}");
        }
    }
}

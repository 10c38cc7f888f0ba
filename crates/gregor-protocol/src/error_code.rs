//! Kafka's numeric error codes, as carried in every response.
//!
//! Typed errors anywhere in Gregor map to one of these so that a Kafka client sees exactly the
//! code Apache Kafka would have sent for the same failure.

use std::fmt;

/// A Kafka protocol error code (`int16` on the wire).
///
/// Kept as a transparent newtype rather than an exhaustive enum so that codes Gregor does not
/// produce yet can still be carried and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

macro_rules! codes {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl ErrorCode {
            $(
                #[doc = concat!("Kafka's `", stringify!($name), "` (", stringify!($value), ").")]
                pub const $name: ErrorCode = ErrorCode($value);
            )*

            /// Kafka's upper-case name for this code, e.g. `CORRUPT_MESSAGE`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($value => stringify!($name),)*
                    _ => "UNKNOWN_SERVER_ERROR",
                }
            }
        }
    };
}

codes! {
    UNKNOWN_SERVER_ERROR = -1,
    NONE = 0,
    OFFSET_OUT_OF_RANGE = 1,
    CORRUPT_MESSAGE = 2,
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    INVALID_FETCH_SIZE = 4,
    LEADER_NOT_AVAILABLE = 5,
    NOT_LEADER_OR_FOLLOWER = 6,
    REQUEST_TIMED_OUT = 7,
    MESSAGE_TOO_LARGE = 10,
    OFFSET_METADATA_TOO_LARGE = 12,
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    COORDINATOR_NOT_AVAILABLE = 15,
    NOT_COORDINATOR = 16,
    RECORD_LIST_TOO_LARGE = 18,
    NOT_ENOUGH_REPLICAS = 19,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    ILLEGAL_GENERATION = 22,
    INCONSISTENT_GROUP_PROTOCOL = 23,
    INVALID_GROUP_ID = 24,
    UNKNOWN_MEMBER_ID = 25,
    INVALID_SESSION_TIMEOUT = 26,
    REBALANCE_IN_PROGRESS = 27,
    INVALID_COMMIT_OFFSET_SIZE = 28,
    INVALID_TIMESTAMP = 32,
    UNSUPPORTED_VERSION = 35,
    INVALID_CONFIG = 40,
    INVALID_REQUEST = 42,
    POLICY_VIOLATION = 44,
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    DUPLICATE_SEQUENCE_NUMBER = 46,
    INVALID_PRODUCER_EPOCH = 47,
    KAFKA_STORAGE_ERROR = 56,
    NON_EMPTY_GROUP = 68,
    GROUP_ID_NOT_FOUND = 69,
    UNSUPPORTED_COMPRESSION_TYPE = 76,
    OFFSET_NOT_AVAILABLE = 78,
    MEMBER_ID_REQUIRED = 79,
    GROUP_MAX_SIZE_REACHED = 81,
    FENCED_INSTANCE_ID = 82,
    GROUP_SUBSCRIBED_TO_TOPIC = 86,
    INVALID_RECORD = 87,
    UNKNOWN_TOPIC_ID = 100,
    FENCED_MEMBER_EPOCH = 110,
    UNRELEASED_INSTANCE_ID = 111,
    UNSUPPORTED_ASSIGNOR = 112,
    STALE_MEMBER_EPOCH = 113,
    INVALID_REGULAR_EXPRESSION = 128,
}

impl ErrorCode {
    /// True for `NONE`.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::NONE
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kafka() {
        assert_eq!(ErrorCode::CORRUPT_MESSAGE.name(), "CORRUPT_MESSAGE");
        assert_eq!(ErrorCode(87).name(), "INVALID_RECORD");
        assert_eq!(ErrorCode(9999).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(
            ErrorCode::MESSAGE_TOO_LARGE.to_string(),
            "MESSAGE_TOO_LARGE (10)"
        );
    }
}

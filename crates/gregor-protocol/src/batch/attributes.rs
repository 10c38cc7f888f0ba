use super::BatchError;

/// The compression codec of a batch (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records stored as is.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy; Kafka's Java client writes xerial framing.
    Snappy,
    /// LZ4 frame format with independent blocks.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec Kafka defines, in id order (for tests and tools that cover them all).
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Kafka's codec id as stored in the attribute bits.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for a Kafka codec id; ids 5–7 are not defined by Kafka.
    pub fn from_id(id: u8) -> Result<Compression, BatchError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(BatchError::UnknownCompression(other)),
        })
    }

    /// Kafka's name for the codec, as used by `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Whose clock a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (`message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

/// The `attributes` field of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    const COMPRESSION_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE: i16 = 0x08;
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;
    const DELETE_HORIZON: i16 = 0x40;

    /// Builds attributes from their parts.
    pub fn new(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
        control: bool,
    ) -> Attributes {
        let mut bits = i16::from(compression.id());
        if timestamp_type == TimestampType::LogAppendTime {
            bits |= Self::TIMESTAMP_TYPE;
        }
        if transactional {
            bits |= Self::TRANSACTIONAL;
        }
        if control {
            bits |= Self::CONTROL;
        }
        Attributes(bits)
    }

    /// The codec; fails for the ids Kafka leaves undefined.
    pub fn compression(self) -> Result<Compression, BatchError> {
        Compression::from_id((self.0 & Self::COMPRESSION_MASK) as u8)
    }

    /// CreateTime or LogAppendTime.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// The batch belongs to a transaction.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// The batch holds a control record (transaction marker).
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// `baseTimestamp` holds the compaction delete horizon (KIP-534).
    pub fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    /// Same attributes with the timestamp type replaced.
    pub fn with_timestamp_type(self, timestamp_type: TimestampType) -> Attributes {
        match timestamp_type {
            TimestampType::CreateTime => Attributes(self.0 & !Self::TIMESTAMP_TYPE),
            TimestampType::LogAppendTime => Attributes(self.0 | Self::TIMESTAMP_TYPE),
        }
    }

    /// Same attributes with the codec replaced.
    pub fn with_compression(self, compression: Compression) -> Attributes {
        Attributes((self.0 & !Self::COMPRESSION_MASK) | i16::from(compression.id()))
    }

    /// Same attributes with the delete-horizon bit set or cleared.
    pub fn with_delete_horizon(self, set: bool) -> Attributes {
        if set {
            Attributes(self.0 | Self::DELETE_HORIZON)
        } else {
            Attributes(self.0 & !Self::DELETE_HORIZON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_bits_follow_kafka() {
        let a = Attributes::new(Compression::Zstd, TimestampType::LogAppendTime, true, true);
        assert_eq!(a.0, 4 | 8 | 16 | 32);
        assert_eq!(a.compression(), Ok(Compression::Zstd));
        assert_eq!(a.timestamp_type(), TimestampType::LogAppendTime);
        assert!(a.is_transactional() && a.is_control() && !a.has_delete_horizon());
        assert!(a.with_delete_horizon(true).has_delete_horizon());
        assert_eq!(
            Attributes(7).compression(),
            Err(BatchError::UnknownCompression(7))
        );
        assert_eq!(
            a.with_timestamp_type(TimestampType::CreateTime)
                .timestamp_type(),
            TimestampType::CreateTime
        );
    }
}

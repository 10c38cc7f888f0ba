//! The key and value schemas of `__transaction_state`, byte for byte as Kafka writes them
//! (`TransactionLogKey` v0, `TransactionLogValue` v0/v1), so Kafka's tooling
//! (`kafka-dump-log --transaction-log-decoder`) reads Gregor's topic and a Kafka broker's
//! topic replays here.
//!
//! Key: `int16 version (0) | string transactionalId`. Value: `int16 version | fields`, version
//! 0 in the classic encoding (what Gregor writes: transaction version 1), version 1 flexible
//! (compact strings and arrays, tagged fields; written by Kafka for transaction version 2 and
//! read here). A null value is a tombstone: the transactional id expired.
//!
//! Decoding never panics and checks every length against what remains before allocating.

use super::TransactionState;
use crate::record_reader::{ReadError, Reader};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION_WRITE: i16 = 0;
const VALUE_VERSION_FLEXIBLE: i16 = 1;

/// Why a `__transaction_state` record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnRecordError {
    /// The bytes do not hold what the schema says (truncated, a bad length, varint or
    /// string).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A version Gregor does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Key or value.
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// A field holds something the schema does not allow.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A string too long for the schema.
    #[error("{0} longer than 32767 bytes")]
    TooLong(&'static str),
}

/// A topic and the partitions of it a transaction wrote to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    /// The topic.
    pub topic: String,
    /// Its partitions.
    pub partitions: Vec<i32>,
}

/// `TransactionLogValue`: a transactional id's producer and its transaction's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    /// Producer id in use.
    pub producer_id: i64,
    /// The producer id before the last epoch exhaustion (v1 tag 0; -1 for none).
    pub previous_producer_id: i64,
    /// The next producer id handed out (v1 tag 1; -1 for none).
    pub next_producer_id: i64,
    /// Epoch of the producer id.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub transaction_timeout_ms: i32,
    /// The state, by Kafka's numbering.
    pub state: TransactionState,
    /// Partitions in the transaction (written as null when the state is Empty, as Kafka does).
    pub partitions: Vec<TopicPartitions>,
    /// Last change.
    pub last_update_timestamp_ms: i64,
    /// When the transaction started (-1 when none).
    pub start_timestamp_ms: i64,
    /// Transaction version the client uses (v1 tag 2; 0 for v0).
    pub client_transaction_version: i16,
}

/// Encodes the key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>, TxnRecordError> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut out, transactional_id, "transactional id")?;
    Ok(out)
}

/// Decodes a key into its transactional id.
pub fn decode_key(bytes: &[u8]) -> Result<String, TxnRecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("key version")?;
    if version != KEY_VERSION {
        return Err(TxnRecordError::UnknownVersion {
            what: "key",
            version,
        });
    }
    Ok(r.string("transactional id")?)
}

impl TransactionLogValue {
    /// Encodes the value (version 0).
    pub fn encode(&self) -> Result<Vec<u8>, TxnRecordError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&VALUE_VERSION_WRITE.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.transaction_timeout_ms.to_be_bytes());
        out.push(self.state.id() as u8);
        if self.state == TransactionState::Empty {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            out.extend_from_slice(&(self.partitions.len() as i32).to_be_bytes());
            for t in &self.partitions {
                put_string(&mut out, &t.topic, "topic")?;
                out.extend_from_slice(&(t.partitions.len() as i32).to_be_bytes());
                for p in &t.partitions {
                    out.extend_from_slice(&p.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&self.last_update_timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.start_timestamp_ms.to_be_bytes());
        Ok(out)
    }

    /// Decodes a value of version 0 or 1.
    pub fn decode(bytes: &[u8]) -> Result<TransactionLogValue, TxnRecordError> {
        let mut r = Reader::new(bytes);
        let version = r.i16("value version")?;
        let flexible = match version {
            VALUE_VERSION_WRITE => false,
            VALUE_VERSION_FLEXIBLE => true,
            version => {
                return Err(TxnRecordError::UnknownVersion {
                    what: "value",
                    version,
                });
            }
        };
        let producer_id = r.i64("producer id")?;
        let producer_epoch = r.i16("producer epoch")?;
        let transaction_timeout_ms = r.i32("transaction timeout")?;
        let state = TransactionState::from_id(r.i8("transaction status")?)
            .ok_or(TxnRecordError::Invalid("transaction status"))?;
        let topics = r.nullable_array_len(flexible, 1, "transaction partitions")?;
        let mut partitions = Vec::new();
        for _ in 0..topics.unwrap_or(0) {
            let topic = r.str(flexible, "topic")?;
            let count = r.array_len(flexible, 1, "partition ids")?;
            let mut ids = Vec::new();
            for _ in 0..count {
                ids.push(r.i32("partition id")?);
            }
            if flexible {
                r.skip_tagged_fields()?;
            }
            partitions.push(TopicPartitions {
                topic,
                partitions: ids,
            });
        }
        let last_update_timestamp_ms = r.i64("last update timestamp")?;
        let start_timestamp_ms = r.i64("start timestamp")?;
        let mut value = TransactionLogValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            transaction_timeout_ms,
            state,
            partitions,
            last_update_timestamp_ms,
            start_timestamp_ms,
            client_transaction_version: 0,
        };
        if flexible {
            for _ in 0..r.uvarint("tag count")? {
                let tag = r.uvarint("tag")?;
                let size = r.uvarint("tag size")? as usize;
                let field = r.take(size, "tagged field")?;
                let mut f = Reader::new(field);
                match tag {
                    0 => value.previous_producer_id = f.i64("previous producer id")?,
                    1 => value.next_producer_id = f.i64("next producer id")?,
                    2 => value.client_transaction_version = f.i16("client txn version")?,
                    _ => {}
                }
            }
        }
        Ok(value)
    }
}

fn put_string(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<(), TxnRecordError> {
    let len = i16::try_from(s.len()).map_err(|_| TxnRecordError::TooLong(field))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TransactionState) -> TransactionLogValue {
        TransactionLogValue {
            producer_id: 4000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 7,
            transaction_timeout_ms: 60_000,
            state,
            partitions: if state == TransactionState::Empty {
                Vec::new()
            } else {
                vec![TopicPartitions {
                    topic: "orders".into(),
                    partitions: vec![0, 3],
                }]
            },
            last_update_timestamp_ms: 1_700_000_000_123,
            start_timestamp_ms: 1_700_000_000_000,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn key_round_trips_in_kafkas_layout() {
        let key = encode_key("tx-1").unwrap();
        assert_eq!(key, [0, 0, 0, 4, b't', b'x', b'-', b'1']);
        assert_eq!(decode_key(&key).unwrap(), "tx-1");
        assert!(decode_key(&[0, 1, 0, 0]).is_err());
        assert!(decode_key(&[0, 0, 0, 9, b'a']).is_err());
    }

    #[test]
    fn value_round_trips_in_every_state() {
        // PrepareEpochFence is in memory only: Kafka never writes it.
        for state in TransactionState::ALL
            .into_iter()
            .filter(|s| *s != TransactionState::PrepareEpochFence)
        {
            let value = sample(state);
            let bytes = value.encode().unwrap();
            assert_eq!(TransactionLogValue::decode(&bytes).unwrap(), value);
        }
    }

    #[test]
    fn empty_state_writes_null_partitions() {
        let bytes = sample(TransactionState::Empty).encode().unwrap();
        // version, producer id, epoch, timeout, status, then the null array (-1).
        assert_eq!(&bytes[2 + 8 + 2 + 4 + 1..][..4], &(-1i32).to_be_bytes());
    }

    #[test]
    fn flexible_value_with_tags_decodes() {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&42i64.to_be_bytes());
        b.extend_from_slice(&3i16.to_be_bytes());
        b.extend_from_slice(&1000i32.to_be_bytes());
        b.push(1); // Ongoing
        b.push(2); // one topic (compact: n + 1)
        b.push(2); // "t" (compact: len + 1)
        b.push(b't');
        b.push(2); // one partition
        b.extend_from_slice(&5i32.to_be_bytes());
        b.push(0); // topic's tags
        b.extend_from_slice(&10i64.to_be_bytes());
        b.extend_from_slice(&9i64.to_be_bytes());
        b.push(2); // two tags
        b.push(0);
        b.push(8);
        b.extend_from_slice(&41i64.to_be_bytes());
        b.push(2);
        b.push(2);
        b.extend_from_slice(&2i16.to_be_bytes());
        let v = TransactionLogValue::decode(&b).unwrap();
        assert_eq!(v.producer_id, 42);
        assert_eq!(v.previous_producer_id, 41);
        assert_eq!(v.client_transaction_version, 2);
        assert_eq!(v.state, TransactionState::Ongoing);
        assert_eq!(v.partitions[0].partitions, vec![5]);
    }

    #[test]
    fn corrupt_values_fail_cleanly() {
        let bytes = sample(TransactionState::Ongoing).encode().unwrap();
        for len in 0..bytes.len() {
            assert!(TransactionLogValue::decode(&bytes[..len]).is_err());
        }
        let mut huge = bytes.clone();
        huge[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(TransactionLogValue::decode(&huge).is_err());
        let mut bad_state = bytes;
        bad_state[16] = 99;
        assert!(TransactionLogValue::decode(&bad_state).is_err());
    }
}

//! Records inside a v2 batch: decoding, encoding and control (transaction marker) records.
//!
//! A record is encoded as (Kafka's `DefaultRecord`):
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//! keyLength varint | key | valueLength varint | value |
//! headerCount varint | (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*
//! ```
//!
//! Lengths of `-1` mean null (keys, values and header values; never header keys). Header keys may
//! repeat and their order matters, so headers are a list, not a map.
//!
//! Decoding treats every count and length as hostile: before allocating room for `N` records or
//! `M` headers it checks that the bytes left could hold them (a record takes at least
//! [`MIN_RECORD_SIZE`] bytes, a header at least [`MIN_HEADER_SIZE`]), and before taking a key,
//! value or header of length `L` it checks `L` against the bytes left. A 61-byte batch claiming
//! `i32::MAX` records or a record claiming a 2 GiB key therefore fails at once without allocating.

use bytes::Bytes;

use super::BatchError;
use super::varint::{
    read_varint, read_varlong, varint_len, varlong_len, write_varint, write_varlong,
};

/// Smallest encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
pub const MIN_RECORD_SIZE: usize = 7;
/// Smallest encoded header: key length and value length, one byte each.
pub const MIN_HEADER_SIZE: usize = 2;

/// One record header. Kafka allows the same key several times in one record, so headers are kept
/// as an ordered list of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (a UTF-8 string in Kafka's clients, kept as raw bytes here; never null).
    pub key: Bytes,
    /// Header value; `None` is distinct from empty.
    pub value: Option<Bytes>,
}

impl RecordHeader {
    /// A header from anything convertible to [`Bytes`] (e.g. `&'static str`, `Vec<u8>`).
    pub fn new(key: impl Into<Bytes>, value: Option<impl Into<Bytes>>) -> RecordHeader {
        RecordHeader {
            key: key.into(),
            value: value.map(Into::into),
        }
    }
}

/// One decoded record, with offset and timestamp still relative to its batch (so that it can be
/// re-encoded byte-for-byte); use [`Record::offset`] and [`Record::timestamp`] for absolute ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record-level attributes; unused by Kafka (always 0), preserved as read.
    pub attributes: i8,
    /// Timestamp minus the batch's `baseTimestamp` (may be negative with a delete horizon).
    pub timestamp_delta: i64,
    /// Offset minus the batch's `baseOffset`.
    pub offset_delta: i32,
    /// Record key; `None` (null) is distinct from empty.
    pub key: Option<Bytes>,
    /// Record value; `None` is a tombstone in compacted topics.
    pub value: Option<Bytes>,
    /// Headers in order, duplicates kept.
    pub headers: Vec<RecordHeader>,
}

pub(crate) fn malformed(msg: impl Into<String>) -> BatchError {
    BatchError::MalformedRecord(msg.into())
}

fn nullable_len(v: &Option<Bytes>) -> usize {
    match v {
        Some(b) => varint_len(b.len() as i32) + b.len(),
        None => 1,
    }
}

fn write_nullable(out: &mut Vec<u8>, v: &Option<Bytes>) {
    match v {
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => write_varint(out, -1),
    }
}

/// Reads a length-prefixed byte string; `-1` is null, other negative lengths are malformed.
fn read_nullable(
    buf: &mut &[u8],
    make: &dyn Fn(&[u8]) -> Bytes,
    what: &str,
) -> Result<Option<Bytes>, BatchError> {
    let len = read_varint(buf)?;
    if len == -1 {
        return Ok(None);
    }
    take_bytes(buf, len, make, what).map(Some)
}

fn take_bytes(
    buf: &mut &[u8],
    len: i32,
    make: &dyn Fn(&[u8]) -> Bytes,
    what: &str,
) -> Result<Bytes, BatchError> {
    if len < 0 {
        return Err(malformed(format!("invalid {what} length {len}")));
    }
    let len = len as usize;
    if len > buf.len() {
        return Err(malformed(format!(
            "{what} length {len} exceeds the {} bytes left",
            buf.len()
        )));
    }
    let (taken, rest) = buf.split_at(len);
    *buf = rest;
    Ok(make(taken))
}

impl Record {
    /// Absolute offset of this record in a batch whose `baseOffset` is `base_offset`.
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.wrapping_add(i64::from(self.offset_delta))
    }

    /// Absolute timestamp given the batch's `baseTimestamp` (CreateTime batches; for
    /// LogAppendTime use [`RecordBatch::record_timestamp`](super::RecordBatch::record_timestamp),
    /// which returns the append time).
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        // Wrapping like Java: hostile deltas must not panic in debug builds.
        base_timestamp.wrapping_add(self.timestamp_delta)
    }

    /// Size of the record body, i.e. the value of its `length` prefix.
    fn body_len(&self) -> usize {
        1 + varlong_len(self.timestamp_delta)
            + varint_len(self.offset_delta)
            + nullable_len(&self.key)
            + nullable_len(&self.value)
            + varint_len(self.headers.len() as i32)
            + self
                .headers
                .iter()
                .map(|h| varint_len(h.key.len() as i32) + h.key.len() + nullable_len(&h.value))
                .sum::<usize>()
    }

    /// Bytes [`Record::encode`] appends: the body plus its varint length prefix.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint_len(body as i32) + body
    }

    /// Appends the record in Kafka's wire format.
    ///
    /// # Panics
    /// If the record is larger than `i32::MAX` bytes, which Kafka cannot represent.
    /// [`RecordBatchBuilder`](super::RecordBatchBuilder) checks this and returns an error instead.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let body = i32::try_from(self.body_len()).expect("record larger than i32::MAX bytes");
        out.reserve(varint_len(body) + body as usize);
        write_varint(out, body);
        out.push(self.attributes as u8);
        write_varlong(out, self.timestamp_delta);
        write_varint(out, self.offset_delta);
        write_nullable(out, &self.key);
        write_nullable(out, &self.value);
        write_varint(out, self.headers.len() as i32);
        for h in &self.headers {
            write_varint(out, h.key.len() as i32);
            out.extend_from_slice(&h.key);
            write_nullable(out, &h.value);
        }
    }

    /// Decodes one record from the front of `buf` and advances `buf` past it. Key, value and
    /// header bytes are copied; [`Record::decode_shared`] shares one buffer instead.
    pub fn decode(buf: &mut &[u8]) -> Result<Record, BatchError> {
        Record::decode_with(buf, &Bytes::copy_from_slice)
    }

    /// Decodes one record from the front of `buf`, advancing it, without copying: key, value
    /// and headers are slices of `source`. `buf` must lie within `source`.
    pub fn decode_shared(source: &Bytes, buf: &mut &[u8]) -> Result<Record, BatchError> {
        Record::decode_with(buf, &|s| source.slice_ref(s))
    }

    fn decode_with(buf: &mut &[u8], make: &dyn Fn(&[u8]) -> Bytes) -> Result<Record, BatchError> {
        let len = read_varint(buf)?;
        if len < 0 || len as usize > buf.len() {
            return Err(malformed(format!(
                "record length {len} with {} bytes left",
                buf.len()
            )));
        }
        let (mut body, rest) = buf.split_at(len as usize);
        let Some((&attributes, tail)) = body.split_first() else {
            return Err(malformed("empty record"));
        };
        body = tail;
        let timestamp_delta = read_varlong(&mut body)?;
        let offset_delta = read_varint(&mut body)?;
        let key = read_nullable(&mut body, make, "key")?;
        let value = read_nullable(&mut body, make, "value")?;
        let count = read_varint(&mut body)?;
        if count < 0 || count as usize > body.len() / MIN_HEADER_SIZE {
            return Err(malformed(format!(
                "{count} headers cannot fit in the {} bytes left",
                body.len()
            )));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let key_len = read_varint(&mut body)?;
            let key = take_bytes(&mut body, key_len, make, "header key")?;
            let value = read_nullable(&mut body, make, "header value")?;
            headers.push(RecordHeader { key, value });
        }
        if !body.is_empty() {
            return Err(malformed(format!(
                "record length {len} leaves {} bytes unread",
                body.len()
            )));
        }
        *buf = rest;
        Ok(Record {
            attributes: attributes as i8,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }

    /// The control type of a record from a control batch, read from its key.
    pub fn control_type(&self) -> Result<ControlRecordType, BatchError> {
        ControlRecordType::parse_key(self.key.as_deref().unwrap_or_default())
    }
}

/// The type of a control record, from its key (`version i16 | type i16`).
///
/// Brokers write `Abort`/`Commit` transaction markers; KRaft's own control records (leader
/// change, snapshot header/footer, voters; ids 2–6) and anything newer are `Unknown(id)`, which
/// consumers must skip, as Kafka's clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// Transaction aborted (type 0).
    Abort,
    /// Transaction committed (type 1).
    Commit,
    /// Any other type id.
    Unknown(i16),
}

impl ControlRecordType {
    /// Key version Kafka writes.
    pub const KEY_VERSION: i16 = 0;
    /// Size of a control record key.
    pub const KEY_SIZE: usize = 4;

    /// The type id stored in the key.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(id) => id,
        }
    }

    /// The type for an id.
    pub fn from_id(id: i16) -> ControlRecordType {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        }
    }

    /// Reads the type from a control record's key, as Kafka's `ControlRecordType.parse` does:
    /// at least 4 bytes, non-negative version (newer versions are read as version 0).
    pub fn parse_key(key: &[u8]) -> Result<ControlRecordType, BatchError> {
        if key.len() < Self::KEY_SIZE {
            return Err(malformed(format!(
                "control record key of {} bytes, need {}",
                key.len(),
                Self::KEY_SIZE
            )));
        }
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(malformed(format!("control record key version {version}")));
        }
        Ok(ControlRecordType::from_id(i16::from_be_bytes([
            key[2], key[3],
        ])))
    }

    /// The key to write for this type (version 0).
    pub fn key_bytes(self) -> [u8; 4] {
        let [v0, v1] = Self::KEY_VERSION.to_be_bytes();
        let [t0, t1] = self.id().to_be_bytes();
        [v0, v1, t0, t1]
    }
}

/// The value of a transaction marker (`version i16 | coordinatorEpoch i32`), Kafka's
/// `EndTransactionMarker`; the broker writes one per partition when a transaction ends, and the
/// producer state needs the coordinator epoch to fence stale coordinators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTransactionMarker {
    /// `Abort` or `Commit`.
    pub control_type: ControlRecordType,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// Value version Kafka writes.
    pub const VALUE_VERSION: i16 = 0;
    /// Size of a version-0 marker value.
    pub const VALUE_SIZE: usize = 6;

    /// Reads a marker from a control record; fails unless it is an abort or commit marker with
    /// a well-formed value.
    pub fn from_record(record: &Record) -> Result<EndTransactionMarker, BatchError> {
        let control_type = record.control_type()?;
        if !matches!(
            control_type,
            ControlRecordType::Abort | ControlRecordType::Commit
        ) {
            return Err(malformed(format!(
                "control type {} is not a transaction marker",
                control_type.id()
            )));
        }
        let value = record.value.as_deref().unwrap_or_default();
        if value.len() < Self::VALUE_SIZE {
            return Err(malformed(format!(
                "transaction marker value of {} bytes, need {}",
                value.len(),
                Self::VALUE_SIZE
            )));
        }
        let version = i16::from_be_bytes([value[0], value[1]]);
        if version < 0 {
            return Err(malformed(format!("transaction marker version {version}")));
        }
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(EndTransactionMarker {
            control_type,
            coordinator_epoch,
        })
    }

    /// The value to write (version 0).
    pub fn value_bytes(&self) -> [u8; 6] {
        let mut out = [0u8; 6];
        out[..2].copy_from_slice(&Self::VALUE_VERSION.to_be_bytes());
        out[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            attributes: 0,
            timestamp_delta: -5,
            offset_delta: 3,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                RecordHeader::new("k", Some("1")),
                RecordHeader::new("k", None::<Bytes>),
                RecordHeader::new("", Some("")),
            ],
        }
    }

    #[test]
    fn encode_decode_round_trip_keeps_duplicate_headers() {
        let record = sample();
        let mut out = Vec::new();
        record.encode(&mut out);
        assert_eq!(out.len(), record.encoded_len());
        out.push(0xaa);
        let mut buf = &out[..];
        assert_eq!(Record::decode(&mut buf).unwrap(), record);
        assert_eq!(buf, [0xaa]);
        let shared = Bytes::from(out.clone());
        let mut buf = &shared[..];
        assert_eq!(Record::decode_shared(&shared, &mut buf).unwrap(), record);
    }

    #[test]
    fn minimal_record_is_seven_bytes() {
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: None,
            value: None,
            headers: vec![],
        };
        assert_eq!(record.encoded_len(), MIN_RECORD_SIZE);
    }

    fn body(parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = Vec::new();
        write_varint(&mut out, body.len() as i32);
        out.extend(body);
        out
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        let mut huge = Vec::new();
        write_varint(&mut huge, i32::MAX); // 2 GiB key
        let rec = body(&[&[0, 0, 0], &huge, &[1, 0]]);
        assert!(matches!(
            Record::decode(&mut &rec[..]),
            Err(BatchError::MalformedRecord(_))
        ));
        let neg = body(&[&[0, 0, 0], &[3], &[1, 0]]); // key length -2
        assert!(Record::decode(&mut &neg[..]).is_err());
        let headers = body(&[&[0, 0, 0, 1, 1], &huge]); // i32::MAX headers
        assert!(Record::decode(&mut &headers[..]).is_err());
        let null_hkey = body(&[&[0, 0, 0, 1, 1, 2, 1, 1]]); // header key length -1
        assert!(Record::decode(&mut &null_hkey[..]).is_err());
        let trailing = body(&[&[0, 0, 0, 1, 1, 0, 9]]);
        assert!(Record::decode(&mut &trailing[..]).is_err());
        let mut long = Vec::new();
        write_varint(&mut long, 100);
        long.extend([0u8; 10]);
        assert!(Record::decode(&mut &long[..]).is_err());
    }

    #[test]
    fn control_keys_and_markers() {
        assert_eq!(ControlRecordType::Commit.key_bytes(), [0, 0, 0, 1]);
        assert_eq!(
            ControlRecordType::parse_key(&[0, 0, 0, 0]),
            Ok(ControlRecordType::Abort)
        );
        assert_eq!(
            ControlRecordType::parse_key(&[0, 1, 0, 2, 9]),
            Ok(ControlRecordType::Unknown(2))
        );
        assert!(ControlRecordType::parse_key(&[0, 0, 0]).is_err());
        assert!(ControlRecordType::parse_key(&[0xff, 0xff, 0, 1]).is_err());
        let marker = EndTransactionMarker {
            control_type: ControlRecordType::Abort,
            coordinator_epoch: 7,
        };
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(Bytes::copy_from_slice(
                &ControlRecordType::Abort.key_bytes(),
            )),
            value: Some(Bytes::copy_from_slice(&marker.value_bytes())),
            headers: vec![],
        };
        assert_eq!(record.control_type(), Ok(ControlRecordType::Abort));
        assert_eq!(EndTransactionMarker::from_record(&record), Ok(marker));
        let mut short = record.clone();
        short.value = Some(Bytes::from_static(&[0, 0, 0]));
        assert!(EndTransactionMarker::from_record(&short).is_err());
    }
}

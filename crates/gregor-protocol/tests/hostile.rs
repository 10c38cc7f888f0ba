//! Hostile input: batches whose counts and lengths lie must fail fast, without allocating what
//! they claim and without panicking.

use gregor_protocol::batch::{
    BatchError, Compression, RECORD_BATCH_OVERHEAD, RecordBatch, RecordBatchBuilder,
    RecordBatchMut, RecordHeader, compress, field, varint::write_varint,
};
use proptest::prelude::*;

const ALL: [Compression; 5] = Compression::ALL;

/// A batch with `header` fields from a real batch but `records` as its records section and
/// `count` as its recordsCount, codec `codec`, and a correct CRC.
fn forge(codec: Compression, count: i32, records: &[u8]) -> Vec<u8> {
    let template = RecordBatchBuilder::new(0, Compression::None)
        .last_offset_delta(count.saturating_sub(1).max(0))
        .build()
        .unwrap();
    let mut out = template[..RECORD_BATCH_OVERHEAD].to_vec();
    out.extend_from_slice(records);
    let len = (out.len() - 12) as i32;
    out[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    let attributes = i16::from(codec.id());
    out[field::ATTRIBUTES..field::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    out[field::RECORDS_COUNT..field::RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    RecordBatchMut::parse(&mut out).unwrap().update_crc();
    out
}

fn sample_batch(codec: Compression) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(0, codec);
    for i in 0..8i64 {
        let headers = [
            RecordHeader::new("h", Some(vec![i as u8; 3])),
            RecordHeader::new("h", None::<Vec<u8>>),
        ];
        let key = format!("key-{i}");
        b.append(
            i,
            1_000 + i,
            Some(key.as_bytes()),
            Some(&[7u8; 40][..]),
            &headers,
        );
    }
    b.build().unwrap()
}

#[test]
fn header_only_batch_claiming_i32_max_records_fails_fast() {
    for codec in ALL {
        let bytes = forge(codec, i32::MAX, &[]);
        assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD);
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.verify_crc().unwrap();
        if codec == Compression::None {
            // Compressed sections give no size bound before decompression.
            assert!(batch.validate_from_client().is_err());
        }
        // Had the count been trusted, this would try to reserve i32::MAX records (hundreds
        // of GB) and abort the test process; an error proves it was checked first.
        let err = batch.records().unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::InvalidRecordCount(_) | BatchError::Compression { .. }
            ),
            "{codec:?}: {err:?}"
        );
    }
}

#[test]
fn plausible_count_beyond_the_bytes_fails_before_decoding() {
    // 10 real records, header claims a million: the count check stops it, whatever the codec.
    let mut records = Vec::new();
    for i in 0..10 {
        let r = gregor_protocol::batch::Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i,
            key: None,
            value: None,
            headers: vec![],
        };
        r.encode(&mut records);
    }
    for codec in ALL {
        let bytes = forge(codec, 1_000_000, &compress(codec, &records).unwrap());
        let err = RecordBatch::parse(&bytes).unwrap().records().unwrap_err();
        assert!(
            matches!(err, BatchError::InvalidRecordCount(_)),
            "{codec:?}: {err:?}"
        );
    }
}

#[test]
fn record_claiming_a_2_gib_key_fails_fast() {
    for codec in ALL {
        // length, attributes, timestamp delta, offset delta, key length 2^31-1, then 3 bytes.
        let mut body = vec![0u8, 0, 0];
        write_varint(&mut body, i32::MAX);
        body.extend_from_slice(b"abc");
        let mut record = Vec::new();
        write_varint(&mut record, body.len() as i32);
        record.extend_from_slice(&body);
        let bytes = forge(codec, 1, &compress(codec, &record).unwrap());
        let err = RecordBatch::parse(&bytes).unwrap().records().unwrap_err();
        assert!(
            matches!(&err, BatchError::MalformedRecord(m) if m.contains("key length 2147483647 exceeds")),
            "{codec:?}: the key length must be checked against the bytes left before copying: {err:?}"
        );
    }
}

#[test]
fn counts_and_lengths_must_match_exactly() {
    for codec in ALL {
        let good = sample_batch(codec);
        let batch = RecordBatch::parse(&good).unwrap();
        let records =
            gregor_protocol::batch::decompress(codec, batch.records_bytes(), 1 << 20).unwrap();
        // One record too few claimed: bytes remain.
        let fewer = forge(codec, 7, &compress(codec, &records).unwrap());
        assert!(RecordBatch::parse(&fewer).unwrap().records().is_err());
        // Records section cut short: runs out.
        let cut = forge(
            codec,
            8,
            &compress(codec, &records[..records.len() - 5]).unwrap(),
        );
        assert!(RecordBatch::parse(&cut).unwrap().records().is_err());
        // Negative count.
        let negative = forge(codec, -1, &compress(codec, &records).unwrap());
        assert!(RecordBatch::parse(&negative).unwrap().records().is_err());
    }
}

#[test]
fn offset_deltas_must_increase_within_last_offset_delta() {
    let mut records = Vec::new();
    for delta in [0, 2, 2] {
        let r = gregor_protocol::batch::Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: delta,
            key: None,
            value: None,
            headers: vec![],
        };
        r.encode(&mut records);
    }
    let bytes = forge(Compression::None, 3, &records);
    let err = RecordBatch::parse(&bytes).unwrap().records().unwrap_err();
    assert!(matches!(err, BatchError::InvalidRecordCount(_)), "{err:?}");
    // Delta beyond lastOffsetDelta (forge sets it to count - 1 = 0).
    let bytes = forge(
        Compression::None,
        1,
        &records[records.len() / 3..records.len() * 2 / 3],
    );
    assert!(RecordBatch::parse(&bytes).unwrap().records().is_err());
}

#[test]
fn decompression_limit_is_respected() {
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    let value = vec![0u8; 64 * 1024];
    for i in 0..64 {
        b.append(i, 0, None, Some(&value), &[]);
    }
    let plain = b.build().unwrap();
    let inner = RecordBatch::parse(&plain).unwrap().records_bytes().to_vec(); // ~4 MiB
    for codec in ALL[1..].iter().copied() {
        let bytes = forge(codec, 64, &compress(codec, &inner).unwrap());
        assert!(bytes.len() < 256 * 1024, "{codec:?} compressed zeros well");
        let batch = RecordBatch::parse(&bytes).unwrap();
        let err = batch.records_with_limit(1024 * 1024).unwrap_err();
        assert!(
            matches!(err, BatchError::Compression { .. }),
            "{codec:?}: {err:?}"
        );
        assert_eq!(batch.records_with_limit(inner.len()).unwrap().len(), 64);
        assert_eq!(batch.records().unwrap().len(), 64);
        // A count that cannot fit the limit fails before decompressing at all.
        assert!(matches!(
            batch.records_with_limit(64 * 7 - 1),
            Err(BatchError::InvalidRecordCount(_))
        ));
    }
}

fn mutations() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Flipping bytes of the (decompressed) records section never panics; when decoding still
    /// succeeds it yields exactly recordsCount records.
    #[test]
    fn mutated_records_never_panic(
        codec in prop::sample::select(ALL.to_vec()),
        muts in mutations(),
        truncate in proptest::option::weighted(0.2, any::<usize>()),
        count in prop_oneof![4 => Just(8i32), 1 => any::<i32>()],
    ) {
        let good = sample_batch(codec);
        let batch = RecordBatch::parse(&good).unwrap();
        let mut inner =
            gregor_protocol::batch::decompress(codec, batch.records_bytes(), 1 << 20).unwrap();
        for (at, x) in muts {
            let at = at % inner.len();
            inner[at] ^= x;
        }
        if let Some(t) = truncate {
            inner.truncate(t % (inner.len() + 1));
        }
        let bytes = forge(codec, count, &compress(codec, &inner).unwrap());
        if let Ok(records) = RecordBatch::parse(&bytes).unwrap().records() {
            prop_assert_eq!(records.len(), count as usize);
        }
    }

    /// Mutating the compressed bytes themselves exercises the codecs' own error paths.
    #[test]
    fn mutated_compressed_bytes_never_panic(
        codec in prop::sample::select(ALL[1..].to_vec()),
        muts in mutations(),
    ) {
        let mut bytes = sample_batch(codec);
        for (at, x) in muts {
            let at = field::RECORDS + at % (bytes.len() - field::RECORDS);
            bytes[at] ^= x;
        }
        let batch = RecordBatch::parse(&bytes).unwrap();
        prop_assert!(batch.verify_crc().is_err());
        let _ = batch.records_with_limit(1 << 20);
    }

    /// Arbitrary bytes after a valid header, any codec and count.
    #[test]
    fn random_records_section_never_panics(
        codec in prop::sample::select(ALL.to_vec()),
        count in any::<i32>(),
        junk in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let bytes = forge(codec, count, &junk);
        let _ = RecordBatch::parse(&bytes).unwrap().records_with_limit(1 << 20);
    }
}

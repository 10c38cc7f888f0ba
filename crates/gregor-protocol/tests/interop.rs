//! Interop with kafka-python: decode the batches it wrote (`tests/fixtures/kafka_python_*.bin`,
//! made by `tests/fixtures/generate.py`) and compare every field with `expected.txt`; and check
//! that our encoder writes the same records (byte-identical when uncompressed).
//!
//! The reverse direction (kafka-python reading our batches) is `tests/compat/test_batch_codec.py`
//! at the repository root.

#[path = "fixtures/spec.rs"]
mod spec;

use gregor_protocol::batch::{
    Compression, NO_PARTITION_LEADER_EPOCH, RecordBatch, TimestampType, decompress,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/kafka_python_{name}.bin")).expect("fixture present")
}

fn expected() -> spec::Expected {
    spec::parse(&std::fs::read_to_string(format!("{FIXTURES}/expected.txt")).unwrap())
}

fn check(bytes: &[u8], codec: Compression, expected: &spec::Expected) {
    let batch = RecordBatch::parse(bytes).unwrap();
    assert_eq!(batch.size(), bytes.len(), "exactly one batch");
    batch.validate_from_client().unwrap();
    batch.validate_stored().unwrap();
    assert_eq!(batch.compression(), Ok(codec));
    assert_eq!(batch.base_offset(), 0);
    assert_ne!(batch.partition_leader_epoch(), NO_PARTITION_LEADER_EPOCH);
    assert_eq!(
        batch.attributes().timestamp_type(),
        TimestampType::CreateTime
    );
    assert!(!batch.attributes().is_transactional());
    assert!(!batch.attributes().is_control());
    assert_eq!(batch.delete_horizon(), None);
    assert_eq!(batch.producer_id(), expected.producer_id);
    assert_eq!(batch.producer_epoch(), expected.producer_epoch);
    assert_eq!(batch.base_sequence(), expected.base_sequence);
    assert_eq!(batch.base_timestamp(), expected.first_timestamp);
    assert_eq!(batch.max_timestamp(), expected.max_timestamp);
    assert_eq!(batch.records_count(), expected.count);
    assert_eq!(batch.last_offset_delta(), expected.count - 1);

    let records = batch.records().unwrap();
    assert_eq!(records.len(), expected.records.len());
    for (got, want) in records.iter().zip(&expected.records) {
        assert_eq!(got.attributes, 0);
        assert_eq!(got.offset_delta, want.offset_delta);
        assert_eq!(
            got.offset(batch.base_offset()),
            i64::from(want.offset_delta)
        );
        assert_eq!(batch.record_timestamp(got), want.timestamp);
        assert_eq!(got.key.as_deref(), want.key.as_deref());
        assert_eq!(got.value.as_deref(), want.value.as_deref());
        let headers: Vec<(&[u8], Option<&[u8]>)> = got
            .headers
            .iter()
            .map(|h| (&h.key[..], h.value.as_deref()))
            .collect();
        let want_headers: Vec<(&[u8], Option<&[u8]>)> = want
            .headers
            .iter()
            .map(|(k, v)| (&k[..], v.as_deref()))
            .collect();
        assert_eq!(headers, want_headers);
    }
}

#[test]
fn fixture_describes_the_tricky_cases() {
    let e = expected();
    let all_headers = e.records.iter().flat_map(|r| &r.headers);
    assert!(e.records.iter().any(|r| r.key.is_none()), "a null key");
    assert!(e.records.iter().any(|r| r.value.is_none()), "a null value");
    assert!(
        e.records.iter().any(|r| r.key.as_deref() == Some(&[][..])),
        "an empty key"
    );
    assert!(
        all_headers.clone().any(|(_, v)| v.is_none()),
        "a null header value"
    );
    assert!(
        e.records.iter().any(|r| {
            r.headers
                .iter()
                .enumerate()
                .any(|(i, (k, _))| r.headers[..i].iter().any(|(k2, _)| k2 == k))
        }),
        "duplicate header keys"
    );
    assert!(
        e.records.iter().any(|r| r.timestamp < e.first_timestamp),
        "a negative delta"
    );
}

#[test]
fn decodes_every_kafka_python_fixture() {
    let expected = expected();
    for (name, codec) in spec::CODECS {
        check(&fixture(name), codec, &expected);
    }
}

#[test]
fn kafka_python_lz4_sets_content_size_and_independent_blocks() {
    let bytes = fixture("lz4");
    let batch = RecordBatch::parse(&bytes).unwrap();
    let flg = batch.records_bytes()[4];
    assert_eq!(flg & 0x20, 0x20, "independent blocks");
    assert_eq!(
        flg & 0x08,
        0x08,
        "content size present: our reader must skip it"
    );
}

#[test]
fn our_encoding_matches_kafka_python() {
    let expected = expected();
    let plain = fixture("none");
    // Uncompressed, with the same header fields, the batches are byte-identical.
    assert_eq!(spec::build(&expected, Compression::None), plain);
    let plain_records = RecordBatch::parse(&plain).unwrap().records_bytes().to_vec();
    for (name, codec) in spec::CODECS {
        let ours = spec::build(&expected, codec);
        check(&ours, codec, &expected);
        // Same records inside, whatever the codec, both ours and kafka-python's.
        for bytes in [&ours, &fixture(name)] {
            let batch = RecordBatch::parse(bytes).unwrap();
            let inner = decompress(codec, batch.records_bytes(), 1 << 20).unwrap();
            assert_eq!(inner, plain_records, "{name}");
        }
    }
}

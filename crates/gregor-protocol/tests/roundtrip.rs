//! Property test: random records × every codec → build → parse → validate → decode, and the
//! decoded records equal what was appended (null/empty/non-empty keys and values, duplicate
//! header keys, extreme timestamps and negative deltas, offset gaps, delete horizons).

use bytes::Bytes;
use gregor_protocol::batch::{
    Compression, RecordBatch, RecordBatchBuilder, RecordHeader, TimestampType,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Input {
    gap: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn nullable_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Some),
        1 => proptest::collection::vec(Just(b'z'), 200..3000).prop_map(Some),
    ]
}

fn header_key() -> impl Strategy<Value = Vec<u8>> {
    // A small alphabet makes duplicate keys common.
    prop_oneof![
        3 => prop::sample::select(vec![&b"a"[..], b"b", b"", b"trace-id"]).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1_600_000_000_000i64..1_800_000_000_000,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0]),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![4 => Just(1i64), 1 => 1i64..5],
        timestamp(),
        nullable_bytes(),
        nullable_bytes(),
        proptest::collection::vec((header_key(), nullable_bytes()), 0..5),
    )
        .prop_map(|(gap, timestamp, key, value, headers)| Input {
            gap,
            timestamp,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn build_parse_decode_round_trip(
        inputs in proptest::collection::vec(input(), 1..30),
        codec in codec(),
        base_offset in prop_oneof![Just(0i64), 0i64..(i64::MAX / 2)],
        first_gap in prop_oneof![3 => Just(0i64), 1 => 0i64..3],
        horizon in proptest::option::weighted(0.2, timestamp()),
        log_append_time in proptest::bool::weighted(0.2),
        producer in (any::<i64>(), any::<i16>(), any::<i32>()),
        transactional: bool,
    ) {
        let ts_type = if log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        let mut builder = RecordBatchBuilder::new(base_offset, codec)
            .producer(producer.0, producer.1, producer.2)
            .transactional(transactional)
            .timestamp_type(ts_type)
            .delete_horizon(horizon)
            .partition_leader_epoch(7);
        let mut offsets = Vec::new();
        let mut offset = base_offset + first_gap;
        for (i, input) in inputs.iter().enumerate() {
            if i > 0 {
                offset += input.gap;
            }
            offsets.push(offset);
            let headers: Vec<RecordHeader> = input
                .headers
                .iter()
                .map(|(k, v)| RecordHeader::new(k.clone(), v.clone()))
                .collect();
            builder.append(offset, input.timestamp, input.key.as_deref(), input.value.as_deref(), &headers);
        }
        prop_assert_eq!(builder.record_count(), inputs.len());
        let bytes = builder.build().unwrap();

        let batch = RecordBatch::parse(&bytes).unwrap();
        prop_assert_eq!(batch.size(), bytes.len());
        batch.validate_stored().unwrap();
        let contiguous = offsets.last().copied() == Some(base_offset + inputs.len() as i64 - 1);
        prop_assert_eq!(batch.validate_from_client().is_ok(), contiguous);
        prop_assert_eq!(batch.compression(), Ok(codec));
        prop_assert_eq!(batch.base_offset(), base_offset);
        prop_assert_eq!(batch.last_offset(), *offsets.last().unwrap());
        prop_assert_eq!(batch.records_count() as usize, inputs.len());
        prop_assert_eq!(batch.producer_id(), producer.0);
        prop_assert_eq!(batch.producer_epoch(), producer.1);
        prop_assert_eq!(batch.base_sequence(), producer.2);
        prop_assert_eq!(batch.attributes().is_transactional(), transactional);
        prop_assert_eq!(batch.attributes().timestamp_type(), ts_type);
        prop_assert_eq!(batch.delete_horizon(), horizon);
        prop_assert_eq!(batch.base_timestamp(), horizon.unwrap_or(inputs[0].timestamp));
        prop_assert_eq!(batch.max_timestamp(), inputs.iter().map(|i| i.timestamp).max().unwrap());

        let records = batch.records().unwrap();
        prop_assert_eq!(records.len(), inputs.len());
        for ((record, input), offset) in records.iter().zip(&inputs).zip(&offsets) {
            prop_assert_eq!(record.offset(batch.base_offset()), *offset);
            prop_assert_eq!(record.timestamp(batch.base_timestamp()), input.timestamp);
            if !log_append_time {
                prop_assert_eq!(batch.record_timestamp(record), input.timestamp);
            }
            prop_assert_eq!(record.key.as_deref(), input.key.as_deref());
            prop_assert_eq!(record.value.as_deref(), input.value.as_deref());
            let headers: Vec<(Bytes, Option<Bytes>)> = record
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            let want: Vec<(Bytes, Option<Bytes>)> = input
                .headers
                .iter()
                .map(|(k, v)| (Bytes::from(k.clone()), v.clone().map(Bytes::from)))
                .collect();
            prop_assert_eq!(headers, want);
        }

        // Re-appending the decoded records (what the cleaner does) reproduces the batch.
        let mut again = RecordBatchBuilder::new(base_offset, codec)
            .producer(producer.0, producer.1, producer.2)
            .transactional(transactional)
            .timestamp_type(ts_type)
            .delete_horizon(horizon)
            .partition_leader_epoch(7);
        for record in &records {
            again.append_record(
                record.offset(batch.base_offset()),
                record.timestamp(batch.base_timestamp()),
                record,
            );
        }
        let rebuilt = again.build().unwrap();
        if codec == Compression::None {
            prop_assert_eq!(rebuilt, bytes);
        } else {
            prop_assert_eq!(RecordBatch::parse(&rebuilt).unwrap().records().unwrap(), records);
        }
    }
}

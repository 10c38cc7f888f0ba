//! Produce with bad batches over a raw socket: each gets Kafka's error code for its partition,
//! nothing is appended, and the connection keeps serving.

mod common;

use std::net::TcpStream;

use bytes::Bytes;
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn exchange(stream: &mut TcpStream, key: ApiKey, version: i16, message: &impl Encodable) -> Bytes {
    let response = common::send(stream, &common::message_frame(key, version, 1, message)).unwrap();
    common::body(response, key, version, 1)
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(value_len: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    b.append(
        0,
        1_700_000_000_000,
        Some(b"k"),
        Some(&vec![b'v'; value_len]),
        &[],
    );
    b.build().unwrap()
}

fn produce(stream: &mut TcpStream, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records.into())),
                ]),
        ]);
    let mut response = exchange(stream, ApiKey::Produce, 9, &request);
    let response = ProduceResponse::decode(&mut response, 9).unwrap();
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_kafkas_error_codes_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let create = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("small"))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("max.message.bytes"))
                            .with_value(Some(StrBytes::from_static_str("1000"))),
                    ]),
            ]);
        let mut created = exchange(&mut s, ApiKey::CreateTopics, 5, &create);
        assert_eq!(
            CreateTopicsResponse::decode(&mut created, 5)
                .unwrap()
                .topics[0]
                .error_code,
            0
        );

        assert_eq!(produce(&mut s, "small", batch(10)), (0, 0));
        assert_eq!(
            produce(&mut s, "small", batch(5000)).0,
            10,
            "MESSAGE_TOO_LARGE"
        );
        let mut corrupt = batch(10);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert_eq!(produce(&mut s, "small", corrupt).0, 2, "CORRUPT_MESSAGE");
        assert_eq!(
            produce(&mut s, "small", vec![0u8; 30]).0,
            2,
            "CORRUPT_MESSAGE for a truncated batch"
        );
        assert_eq!(
            produce(&mut s, "nope", batch(10)).0,
            3,
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        let mut two = batch(10);
        two.extend(batch(10));
        assert_eq!(
            produce(&mut s, "small", two).0,
            87,
            "INVALID_RECORD: one batch per partition"
        );
        // Nothing of that was appended: the next good batch gets offset 1.
        assert_eq!(produce(&mut s, "small", batch(10)), (0, 1));

        // The single node leads from epoch 0: that epoch ends at the log end.
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name("small"))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(0)
                        .with_leader_epoch(0),
                    OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(3)
                        .with_leader_epoch(0),
                ]),
        ]);
        let mut response = exchange(&mut s, ApiKey::OffsetForLeaderEpoch, 4, &request);
        let response = OffsetForLeaderEpochResponse::decode(&mut response, 4).unwrap();
        let answers: Vec<(i16, i32, i64)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            answers,
            vec![(0, 0, 2), (75, -1, -1)],
            "second: UNKNOWN_LEADER_EPOCH"
        );
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

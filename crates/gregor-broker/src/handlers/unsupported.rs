//! Answers to requests at a version Gregor does not implement but can still decode (a newer
//! client that skipped ApiVersions, or an older one below Kafka 4.0's floors): the request's
//! own topics and partitions, each failed with `UNSUPPORTED_VERSION`, so the client gets an
//! error it understands instead of a closed connection. Error fields are only set at versions
//! that carry them.

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;

use gregor_protocol::ErrorCode;

const UNSUPPORTED: i16 = ErrorCode::UNSUPPORTED_VERSION.0;

/// The error response for `request` at `version`, if this API has one.
pub fn respond(request: &RequestKind, version: i16) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::Produce(r) => ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                r.topic_data
                    .iter()
                    .map(|t| {
                        TopicProduceResponse::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partition_responses(
                                t.partition_data
                                    .iter()
                                    .map(|p| {
                                        PartitionProduceResponse::default()
                                            .with_index(p.index)
                                            .with_error_code(UNSUPPORTED)
                                            .with_base_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::Fetch(r) if version >= 7 => {
            ResponseKind::Fetch(FetchResponse::default().with_error_code(UNSUPPORTED))
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(
            FetchResponse::default().with_responses(
                r.topics
                    .iter()
                    .map(|t| {
                        FetchableTopicResponse::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        PartitionData::default()
                                            .with_partition_index(p.partition)
                                            .with_error_code(UNSUPPORTED)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(UNSUPPORTED)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::Metadata(r) => {
            let topics = r
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_error_code(UNSUPPORTED)
                })
                .collect();
            let response = MetadataResponse::default().with_topics(topics);
            ResponseKind::Metadata(if version >= 13 {
                response.with_error_code(UNSUPPORTED)
            } else {
                response
            })
        }
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        OffsetForLeaderTopicResult::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        EpochEndOffset::default()
                                            .with_partition(p.partition)
                                            .with_error_code(UNSUPPORTED)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::DescribeCluster(_) => ResponseKind::DescribeCluster(
            DescribeClusterResponse::default().with_error_code(UNSUPPORTED),
        ),
        // EndTxn v5 needs transaction version 2 (KIP-890 part 2), which Gregor does not offer.
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(UNSUPPORTED)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        RequestKind::ListTransactions(_) => ResponseKind::ListTransactions(
            ListTransactionsResponse::default().with_error_code(UNSUPPORTED),
        ),
        _ => return None,
    })
}

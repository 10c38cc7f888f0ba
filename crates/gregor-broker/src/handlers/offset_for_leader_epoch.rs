//! `OffsetForLeaderEpoch` (key 23, v2–4): where a leader epoch ended, from the partition's
//! leader epoch cache. Consumers use it to validate their position after a leader change
//! (KIP-320); followers will use it to truncate divergent logs.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use gregor_log::{LogManager, TopicPartition};
use gregor_protocol::ErrorCode;

use crate::topics::LEADER_EPOCH;

/// `UNKNOWN_LEADER_EPOCH`: the client knows a newer epoch than this broker.
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// Answers an OffsetForLeaderEpoch request.
pub fn handle(
    request: &OffsetForLeaderEpochRequest,
    logs: &LogManager,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(log) =
                        logs.get_log(&TopicPartition::new(topic.topic.0.as_str(), p.partition))
                    else {
                        return result.with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0);
                    };
                    // Epoch 0 is the only one there is: a client can know a newer one (after
                    // leadership moved elsewhere, in a cluster) but not an older one.
                    if p.current_leader_epoch > LEADER_EPOCH {
                        return result.with_error_code(UNKNOWN_LEADER_EPOCH);
                    }
                    let (epoch, end_offset) = log.end_offset_for_epoch(p.leader_epoch);
                    result.with_leader_epoch(epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

//! `OffsetForLeaderEpoch` (key 23, v2–4): where a leader epoch ended, from the partition's
//! leader epoch cache. Consumers use it to validate their position after a leader change
//! (KIP-320); followers use it to find and truncate what diverged from the leader (KIP-279).
//! Only the leader answers, and only for the leader epoch the caller knows.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use gregor_log::TopicPartition;

use crate::replica::ReplicaManager;

/// Answers an OffsetForLeaderEpoch request.
pub fn handle(
    request: &OffsetForLeaderEpochRequest,
    replicas: &ReplicaManager,
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
                    let tp = TopicPartition::new(topic.topic.0.as_str(), p.partition);
                    let partition = match replicas.leader_partition(&tp) {
                        Ok(partition) => partition,
                        Err(code) => return result.with_error_code(code.0),
                    };
                    if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return result.with_error_code(code.0);
                    }
                    let log = partition.log();
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

//! `OffsetCommit` (key 8, v2–9): stores a group's consumed positions in `__consumer_offsets`.
//! A commit from a member must carry its current generation (classic) or member epoch
//! (KIP-848); a commit with no member and generation -1 (admin tools, `assign()` consumers) is
//! accepted only while the group has no members.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::group::{Committer, GroupCoordinator, OffsetToCommit, PartitionResult};

/// The answer for one partition of a (Txn)OffsetCommit: the group-level error if there is
/// one, else the partition's own.
pub fn partition_error(
    results: &Result<Vec<PartitionResult>, ErrorCode>,
    topic: &str,
    partition: i32,
) -> ErrorCode {
    match results {
        Err(e) => *e,
        Ok(results) => results
            .iter()
            .find(|((t, p), _)| t == topic && *p == partition)
            .map_or(ErrorCode::NONE, |(_, e)| *e),
    }
}

/// Answers an OffsetCommit.
pub fn handle(
    request: &OffsetCommitRequest,
    version: i16,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> OffsetCommitResponse {
    let committer = Committer {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: request.generation_id_or_member_epoch,
        retention_ms: (version <= 4 && request.retention_time_ms >= 0)
            .then_some(request.retention_time_ms),
    };
    let offsets = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let results = coordinator.commit_offsets(&request.group_id, &committer, offsets, now_ms);
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = partition_error(&results, &t.name, p.partition_index);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.0)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.name.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

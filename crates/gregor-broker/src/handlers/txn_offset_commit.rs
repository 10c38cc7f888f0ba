//! `TxnOffsetCommit` (key 28, v0–4): a transactional producer commits a group's consumed
//! positions as part of its transaction (KIP-98, the consume-transform-produce loop). The
//! offsets are written to `__consumer_offsets` in the producer's transaction and become the
//! group's committed offsets only when the transaction commits. From v3 the consumer's member
//! id, generation and instance id are checked against the group (KIP-447), like OffsetCommit.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use gregor_protocol::ErrorCode;

use super::offset_commit::partition_error;
use crate::group::{Committer, GroupCoordinator, OffsetToCommit};

/// Answers a TxnOffsetCommit.
pub fn handle(
    request: &TxnOffsetCommitRequest,
    version: i16,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> TxnOffsetCommitResponse {
    let committer = if version >= 3 {
        Committer {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: request.generation_id,
            retention_ms: None,
        }
    } else {
        Committer {
            generation: -1,
            ..Committer::default()
        }
    };
    let offsets = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let results = coordinator.commit_transactional_offsets(
        &request.group_id,
        request.producer_id.0,
        request.producer_epoch,
        &committer,
        offsets,
        now_ms,
    );
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match partition_error(&results, &t.name, p.partition_index) {
                        // Clients before v2 do not know COORDINATOR_LOAD_IN_PROGRESS here
                        // (KAFKA-7296); Kafka tells them COORDINATOR_NOT_AVAILABLE.
                        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS if version < 2 => {
                            ErrorCode::COORDINATOR_NOT_AVAILABLE
                        }
                        error => error,
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.0)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

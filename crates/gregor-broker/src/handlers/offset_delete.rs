//! `OffsetDelete` (key 47, v0): removes a group's committed offsets for partitions it no
//! longer consumes (`GROUP_SUBSCRIBED_TO_TOPIC` for topics its members still subscribe to).

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use gregor_protocol::ErrorCode;

use crate::group::GroupCoordinator;

/// Answers an OffsetDelete.
pub fn handle(
    request: &OffsetDeleteRequest,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> OffsetDeleteResponse {
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let results = match coordinator.delete_offsets(&request.group_id, partitions, now_ms) {
        Ok(r) => r,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.0),
    };
    let topics = request
        .topics
        .iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let error = results
                                .iter()
                                .find(|((topic, i), _)| {
                                    *topic == *t.name.0 && *i == p.partition_index
                                })
                                .map_or(ErrorCode::NONE, |(_, e)| *e);
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.0)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

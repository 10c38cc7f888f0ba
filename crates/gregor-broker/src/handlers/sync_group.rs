//! `SyncGroup` (key 14, v0–5): the leader hands in the assignment, every member gets its
//! share once it is stored.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::GroupCoordinator;
use crate::group::classic::{Reply, SyncRequest, SyncResult};

/// Starts the sync; the reply may come later.
pub fn start(
    request: &SyncGroupRequest,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> Reply<SyncResult> {
    let text = |s: &Option<StrBytes>| s.as_ref().map(|s| s.to_string());
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        instance_id: text(&request.group_instance_id),
        generation: request.generation_id,
        protocol_type: text(&request.protocol_type),
        protocol_name: text(&request.protocol_name),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    coordinator.sync_group(&request.group_id, sync, now_ms)
}

/// Encodes a sync result for `version`.
pub fn respond(result: SyncResult, version: i16) -> SyncGroupResponse {
    let response = SyncGroupResponse::default()
        .with_error_code(result.error.0)
        .with_assignment(result.assignment);
    if version >= 5 {
        response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol_name.map(StrBytes::from_string))
    } else {
        response
    }
}

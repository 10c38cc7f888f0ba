//! `Heartbeat` (key 12, v0–4): keeps a classic member's session alive and tells it when a
//! rebalance started (`REBALANCE_IN_PROGRESS`).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::group::GroupCoordinator;

/// Answers a Heartbeat.
pub fn handle(
    request: &HeartbeatRequest,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> HeartbeatResponse {
    let error = coordinator.heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        now_ms,
    );
    HeartbeatResponse::default().with_error_code(error.0)
}

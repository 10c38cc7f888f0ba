//! `LeaveGroup` (key 13, v0–5): members leave a classic group (one before v3, a batch
//! identified by member or instance id from v3).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::group::GroupCoordinator;

/// Answers a LeaveGroup.
pub fn handle(
    request: &LeaveGroupRequest,
    version: i16,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> LeaveGroupResponse {
    if version < 3 {
        let error = coordinator.leave_group(
            &request.group_id,
            &[(request.member_id.to_string(), None)],
            now_ms,
        )[0];
        return LeaveGroupResponse::default().with_error_code(error.0);
    }
    let members: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    let errors = coordinator.leave_group(&request.group_id, &members, now_ms);
    let responses = request
        .members
        .iter()
        .zip(&errors)
        .map(|(m, e)| {
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(e.0)
        })
        .collect();
    // As Kafka: a group-level error only for the group itself; unknown members (even of an
    // unknown group) are reported per member.
    LeaveGroupResponse::default().with_members(responses)
}

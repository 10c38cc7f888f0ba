//! `JoinGroup` (key 11, v0–9): a member joins a classic group; the answer comes when the
//! rebalance completes (the request is parked meanwhile).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::GroupCoordinator;
use crate::group::classic::{JoinRequest, JoinResult, Reply};

use super::ClientInfo;

/// Starts the join; the reply may come later.
pub fn start(
    request: &JoinGroupRequest,
    version: i16,
    client: &ClientInfo,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> Reply<JoinResult> {
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id.clone(),
        client_host: client.host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    coordinator.join_group(&request.group_id, join, now_ms)
}

/// Encodes a join result for `version`.
pub fn respond(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            let member = JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                member.with_group_instance_id(m.instance_id.map(StrBytes::from_string))
            } else {
                member
            }
        })
        .collect();
    let response = JoinGroupResponse::default()
        .with_error_code(result.error.0)
        .with_generation_id(result.generation)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members);
    let name = result.protocol_name.map(StrBytes::from_string);
    let response = if version >= 7 {
        response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(name)
    } else {
        // Before v7 the protocol name is not nullable.
        response.with_protocol_name(Some(name.unwrap_or_default()))
    };
    if version >= 9 {
        response.with_skip_assignment(result.skip_assignment)
    } else {
        response
    }
}

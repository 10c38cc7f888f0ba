//! `DescribeGroups` (key 15, v0–5): state, protocol and members of classic groups; members'
//! metadata and assignments only when Stable, as Kafka. An unknown group is reported as
//! `Dead`, as Kafka does at these versions.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::classic::ClassicState;
use crate::group::{GroupCoordinator, GroupKind};

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Answers a DescribeGroups.
pub fn handle(
    request: &DescribeGroupsRequest,
    version: i16,
    coordinator: &GroupCoordinator,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            let described = if version >= 3 {
                described.with_authorized_operations(i32::MIN)
            } else {
                described
            };
            let refused = described.clone();
            coordinator
                .with_group(id, |group| {
                    let Some(group) = group else {
                        return described.with_group_state(StrBytes::from_static_str("Dead"));
                    };
                    let described = described
                        .with_group_state(StrBytes::from_static_str(group.state_name()))
                        .with_protocol_type(s(&group.protocol_type()));
                    let member = |id: &str, instance: Option<&String>, client: &str, host: &str| {
                        let m = DescribedGroupMember::default()
                            .with_member_id(s(id))
                            .with_client_id(s(client))
                            .with_client_host(s(host));
                        if version >= 4 {
                            m.with_group_instance_id(instance.map(|i| s(i)))
                        } else {
                            m
                        }
                    };
                    match &group.kind {
                        GroupKind::Classic(g) => {
                            let stable = g.state() == ClassicState::Stable;
                            let protocol = g.protocol.clone().unwrap_or_default();
                            let members = g
                                .members
                                .values()
                                .map(|m| {
                                    let d = member(
                                        &m.member_id,
                                        m.instance_id.as_ref(),
                                        &m.client_id,
                                        &m.client_host,
                                    );
                                    if stable {
                                        d.with_member_metadata(m.metadata(&protocol))
                                            .with_member_assignment(m.assignment.clone())
                                    } else {
                                        d
                                    }
                                })
                                .collect();
                            described
                                .with_protocol_data(if stable { s(&protocol) } else { s("") })
                                .with_members(members)
                        }
                        GroupKind::Consumer(g) => described.with_members(
                            g.members
                                .values()
                                .map(|m| {
                                    member(
                                        &m.member_id,
                                        m.instance_id.as_ref(),
                                        &m.client_id,
                                        &m.client_host,
                                    )
                                })
                                .collect(),
                        ),
                    }
                })
                .unwrap_or_else(|code| refused.with_error_code(code.0))
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

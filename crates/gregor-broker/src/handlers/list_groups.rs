//! `ListGroups` (key 16, v0–5): every group, filtered by state (v4+, case-insensitive as in
//! Kafka) and type (v5+: classic or consumer).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::GroupCoordinator;

/// Answers a ListGroups.
pub fn handle(
    request: &ListGroupsRequest,
    version: i16,
    coordinator: &GroupCoordinator,
) -> ListGroupsResponse {
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut groups = Vec::new();
    coordinator.for_each_group(|g| {
        if !wanted(&request.states_filter, g.state_name())
            || !wanted(&request.types_filter, g.type_name())
        {
            return;
        }
        let mut listed = ListedGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(g.id.clone())))
            .with_protocol_type(StrBytes::from_string(g.protocol_type()));
        if version >= 4 {
            listed = listed.with_group_state(StrBytes::from_static_str(g.state_name()));
        }
        if version >= 5 {
            listed = listed.with_group_type(StrBytes::from_static_str(g.type_name()));
        }
        groups.push(listed);
    });
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    ListGroupsResponse::default().with_groups(groups)
}

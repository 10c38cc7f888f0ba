//! `DeleteGroups` (key 42, v0–2): deletes empty groups with their offsets
//! (`NON_EMPTY_GROUP` while members remain, `GROUP_ID_NOT_FOUND` for unknown groups).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::group::GroupCoordinator;

/// Answers a DeleteGroups.
pub fn handle(
    request: &DeleteGroupsRequest,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .iter()
        .map(|g| {
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(coordinator.delete_group(g, now_ms).0)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

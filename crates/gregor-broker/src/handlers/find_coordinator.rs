//! `FindCoordinator` (key 10, v0–5): which broker coordinates a group — the leader of the
//! group's `__consumer_offsets` partition — or a transactional id (key type 1) — the leader of
//! the id's `__transaction_state` partition. The first lookup creates the topic.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::group::GroupCoordinator;
use crate::replica::ReplicaManager;
use crate::txn::TransactionCoordinator;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Answers a FindCoordinator request (one key before v4, a batch from v4).
pub fn handle(
    request: &FindCoordinatorRequest,
    version: i16,
    listener: &str,
    replicas: &ReplicaManager,
    coordinator: &GroupCoordinator,
    transactions: &TransactionCoordinator,
) -> FindCoordinatorResponse {
    let find = |key: &StrBytes| -> Coordinator {
        let error = if request.key_type != GROUP_KEY && request.key_type != TRANSACTION_KEY {
            Err((
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                "only group and transaction coordinators exist",
            ))
        } else if key.is_empty() {
            Err((ErrorCode::INVALID_REQUEST, "the coordinator key is empty"))
        } else {
            let found = if request.key_type == GROUP_KEY {
                coordinator.find_coordinator(key)
            } else {
                transactions.find_coordinator(key)
            };
            found
                .map_err(|e| (e, "the coordinator's internal topic is not available"))
                .and_then(|tp| {
                    // The image as of now: the lookup may just have created the topic.
                    let image = replicas.image();
                    let leader = image
                        .partition(&tp.topic, tp.partition)
                        .map_or(-1, |p| p.leader);
                    image
                        .brokers
                        .get(&leader)
                        .filter(|b| !b.fenced)
                        .and_then(|b| b.endpoint(listener))
                        .map(|e| (leader, e.host.clone(), e.port))
                        .ok_or((
                            ErrorCode::COORDINATOR_NOT_AVAILABLE,
                            "the coordinator's partition has no live leader",
                        ))
                })
        };
        let found = Coordinator::default().with_key(key.clone());
        match error {
            Ok((node, host, port)) => found
                .with_node_id(BrokerId(node))
                .with_host(StrBytes::from_string(host))
                .with_port(i32::from(port)),
            Err((code, message)) => found
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::from_static_str(""))
                .with_port(-1)
                .with_error_code(code.0)
                .with_error_message(Some(StrBytes::from_static_str(message))),
        }
    };
    if version >= 4 {
        return FindCoordinatorResponse::default()
            .with_coordinators(request.coordinator_keys.iter().map(find).collect());
    }
    let c = find(&request.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if version >= 1 {
        response.with_error_message(c.error_message)
    } else {
        response
    }
}

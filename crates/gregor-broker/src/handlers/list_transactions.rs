//! `ListTransactions` (key 66, v0–1): the transactional ids this broker coordinates, filtered
//! by state and producer id, and (v1) by how long their transaction has been running
//! (`kafka-transactions.sh list`, `find-hanging`).

use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;

use crate::txn::{TransactionCoordinator, TransactionState};

/// Answers a ListTransactions request.
pub fn handle(
    request: &ListTransactionsRequest,
    version: i16,
    coordinator: &TransactionCoordinator,
    now: i64,
) -> ListTransactionsResponse {
    let all = match coordinator.list() {
        Ok(all) => all,
        Err(code) => return ListTransactionsResponse::default().with_error_code(code.0),
    };
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for filter in &request.state_filters {
        match TransactionState::ALL
            .iter()
            .find(|s| s.name() == filter.as_str())
        {
            Some(s) => states.push(*s),
            None => unknown.push(filter.clone()),
        }
    }
    let min_duration = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    // As Kafka filters: a state filter naming only unknown states matches nothing, and the
    // duration counts from the transaction's start (-1 when none, which always passes).
    let listed = all
        .into_iter()
        .filter(|m| m.state != TransactionState::Dead)
        .filter(|m| request.state_filters.is_empty() || states.contains(&m.state))
        .filter(|m| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(m.producer_id))
        })
        .filter(|m| min_duration < 0 || now.saturating_sub(m.start_ms) > min_duration)
        .map(|m| {
            Listed::default()
                .with_transactional_id(StrBytes::from_string(m.transactional_id).into())
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}

//! `DescribeTransactions` (key 65, v0): the state of transactional ids this broker
//! coordinates (`kafka-transactions.sh describe`).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::txn::TransactionCoordinator;

/// Answers a DescribeTransactions request.
pub fn handle(
    request: &DescribeTransactionsRequest,
    coordinator: &TransactionCoordinator,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .iter()
        .map(|id| {
            let state = TransactionState::default().with_transactional_id(id.clone());
            match coordinator.describe(id) {
                Ok(m) => {
                    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                    for (topic, partition) in &m.partitions {
                        topics.entry(topic).or_default().push(*partition);
                    }
                    state
                        .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(topic, partitions)| {
                                    TopicData::default()
                                        .with_topic(TopicName(StrBytes::from_string(
                                            topic.to_string(),
                                        )))
                                        .with_partitions(partitions)
                                })
                                .collect(),
                        )
                }
                Err(code) => state
                    .with_error_code(code.0)
                    .with_transaction_state(StrBytes::from_static_str(""))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

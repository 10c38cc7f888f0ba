//! `AddPartitionsToTxn` (key 24, v0–5). v0–3 come from producers: the partitions they are
//! about to write join their transaction. v4+ come from brokers, batched over transactions;
//! with `verify_only` (KIP-890 part 1) a partition leader asks whether a transactional produce
//! belongs to an ongoing transaction of that producer, so a late write of a hung or aborted
//! transaction is refused instead of left open.

use std::collections::BTreeSet;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId,
};

use gregor_metadata::MetadataImage;
use gregor_protocol::ErrorCode;

use super::txn_error;
use crate::txn::TransactionCoordinator;

/// First version that knows `PRODUCER_FENCED`.
const PRODUCER_FENCED_VERSION: i16 = 2;
/// First version of the batched, broker-sent form.
const BATCHED_VERSION: i16 = 4;

/// Answers an AddPartitionsToTxn request. Blocks (log writes): call from a blocking thread.
pub fn handle(
    request: &AddPartitionsToTxnRequest,
    version: i16,
    image: &MetadataImage,
    coordinator: &TransactionCoordinator,
    now: i64,
) -> AddPartitionsToTxnResponse {
    if version < BATCHED_VERSION {
        let txn = TxnPartitions {
            transactional_id: &request.v3_and_below_transactional_id,
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            topics: &request.v3_and_below_topics,
            verify_only: false,
        };
        let results = add(&txn, version, image, coordinator, now);
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let results = request
        .transactions
        .iter()
        .map(|t| {
            let txn = TxnPartitions {
                transactional_id: &t.transactional_id,
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                topics: &t.topics,
                verify_only: t.verify_only,
            };
            let topics = add(&txn, version, image, coordinator, now);
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topics)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// One transaction's part of the request, in either form.
struct TxnPartitions<'a> {
    transactional_id: &'a TransactionalId,
    producer_id: i64,
    producer_epoch: i16,
    topics: &'a [AddPartitionsToTxnTopic],
    verify_only: bool,
}

/// One transaction's partitions: verified, or added (all or none; partitions of unknown
/// topics fail the request, the others are `OPERATION_NOT_ATTEMPTED`, as Kafka answers).
fn add(
    txn: &TxnPartitions<'_>,
    version: i16,
    image: &MetadataImage,
    coordinator: &TransactionCoordinator,
    now: i64,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let TxnPartitions {
        transactional_id,
        producer_id,
        producer_epoch,
        topics,
        verify_only,
    } = *txn;
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let codes: Vec<ErrorCode> = if verify_only {
        coordinator.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions)
    } else {
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| image.partition(t, *p).is_none())
            .collect();
        if unknown.iter().any(|u| *u) {
            unknown
                .iter()
                .map(|u| {
                    if *u {
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        ErrorCode::OPERATION_NOT_ATTEMPTED
                    }
                })
                .collect()
        } else {
            let set: BTreeSet<(String, i32)> = partitions.iter().cloned().collect();
            let code = coordinator
                .add_partitions(transactional_id, producer_id, producer_epoch, &set, now)
                .err()
                .unwrap_or(ErrorCode::NONE);
            vec![code; partitions.len()]
        }
    };
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = codes.next().unwrap_or(ErrorCode::NONE);
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(
                                    txn_error(code, version, PRODUCER_FENCED_VERSION).0,
                                )
                        })
                        .collect(),
                )
        })
        .collect()
}

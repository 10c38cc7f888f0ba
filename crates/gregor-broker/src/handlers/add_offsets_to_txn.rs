//! `AddOffsetsToTxn` (key 25, v0–4): the producer will commit a group's offsets in its
//! transaction, so the group's `__consumer_offsets` partition joins the transaction (and gets
//! its marker when the transaction ends).

use std::collections::BTreeSet;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::txn_error;
use crate::group::store::{OFFSETS_TOPIC, partition_for};
use crate::txn::TransactionCoordinator;

/// First version that knows `PRODUCER_FENCED`.
const PRODUCER_FENCED_VERSION: i16 = 2;

/// Answers an AddOffsetsToTxn request; `offsets_partitions` is the partition count of
/// `__consumer_offsets`. Blocks (log write): call from a blocking thread.
pub fn handle(
    request: &AddOffsetsToTxnRequest,
    version: i16,
    offsets_partitions: i32,
    coordinator: &TransactionCoordinator,
    now: i64,
) -> AddOffsetsToTxnResponse {
    let partition = partition_for(&request.group_id, offsets_partitions);
    let partitions = BTreeSet::from([(OFFSETS_TOPIC.to_string(), partition)]);
    let outcome = coordinator.add_partitions(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        &partitions,
        now,
    );
    match outcome {
        Ok(()) => AddOffsetsToTxnResponse::default(),
        Err(code) => AddOffsetsToTxnResponse::default()
            .with_error_code(txn_error(code, version, PRODUCER_FENCED_VERSION).0),
    }
}

//! `EndTxn` (key 26, v0–4): the producer commits or aborts its transaction. Answered once
//! PrepareCommit/PrepareAbort is in `__transaction_state`; the markers follow.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::txn_error;
use crate::txn::{TransactionCoordinator, TransactionResult};

/// First version that knows `PRODUCER_FENCED`.
const PRODUCER_FENCED_VERSION: i16 = 2;

/// Answers an EndTxn request. Blocks (log write): call from a blocking thread.
pub fn handle(
    request: &EndTxnRequest,
    version: i16,
    coordinator: &std::sync::Arc<TransactionCoordinator>,
    now: i64,
) -> EndTxnResponse {
    let result = if request.committed {
        TransactionResult::Commit
    } else {
        TransactionResult::Abort
    };
    let outcome = coordinator.end_transaction(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        result,
        now,
    );
    match outcome {
        Ok(()) => EndTxnResponse::default(),
        Err(code) => EndTxnResponse::default()
            .with_error_code(txn_error(code, version, PRODUCER_FENCED_VERSION).0),
    }
}

//! `InitProducerId` (key 22, v0–5): a producer id and epoch for an idempotent producer, or for
//! a transactional one (fencing its older instances, KIP-360 re-initialisation from v3).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::txn_error;
use crate::txn::{InitRequest, TransactionCoordinator};

/// First version that knows `PRODUCER_FENCED` (older ones get `INVALID_PRODUCER_EPOCH`).
const PRODUCER_FENCED_VERSION: i16 = 4;

/// Answers an InitProducerId request. Blocks (log writes, controller): call from a blocking
/// thread.
pub fn handle(
    request: &InitProducerIdRequest,
    version: i16,
    coordinator: &std::sync::Arc<TransactionCoordinator>,
    now: i64,
) -> InitProducerIdResponse {
    // v3+ carry the producer's current id and epoch; -1/-1 means none.
    let expected = (version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    let init = InitRequest {
        timeout_ms: request.transaction_timeout_ms,
        expected,
    };
    let result = coordinator.init_producer_id(
        request.transactional_id.as_ref().map(|id| id.as_str()),
        init,
        now,
    );
    match result {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(code) => InitProducerIdResponse::default()
            .with_error_code(txn_error(code, version, PRODUCER_FENCED_VERSION).0)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

#[cfg(test)]
mod tests {
    use gregor_protocol::ErrorCode;

    use super::*;

    #[test]
    fn producer_fenced_is_mapped_for_old_versions() {
        assert_eq!(
            txn_error(ErrorCode::PRODUCER_FENCED, 3, PRODUCER_FENCED_VERSION),
            ErrorCode::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            txn_error(ErrorCode::PRODUCER_FENCED, 4, PRODUCER_FENCED_VERSION),
            ErrorCode::PRODUCER_FENCED
        );
    }
}

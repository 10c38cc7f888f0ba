//! The transaction state machine: every transition and refusal, without I/O.

use std::collections::BTreeSet;

use gregor_protocol::ErrorCode;

use super::metadata::{NO_PRODUCER_EPOCH, is_epoch_exhausted};
use super::*;

const NOW: i64 = 1_000_000;

fn fresh() -> TransactionMetadata {
    TransactionMetadata::new("tx", 100, 60_000, NOW)
}

fn init(
    m: &TransactionMetadata,
    expected: Option<(i64, i16)>,
) -> Result<InitTransition, ErrorCode> {
    m.prepare_init(
        InitRequest {
            timeout_ms: 30_000,
            expected,
        },
        || Ok(200),
        NOW + 1,
    )
}

fn ready(t: Result<InitTransition, ErrorCode>) -> TransactionMetadata {
    match t {
        Ok(InitTransition::Ready(m)) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn parts(list: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

/// A transactional id initialised once (epoch 0).
fn initialised() -> TransactionMetadata {
    ready(init(&fresh(), None))
}

/// An ongoing transaction on orders-0.
fn ongoing() -> TransactionMetadata {
    let m = initialised();
    m.prepare_add_partitions(100, 0, &parts(&[("orders", 0)]), NOW + 2)
        .unwrap()
        .unwrap()
}

#[test]
fn states_keep_kafkas_ids_and_names() {
    for (i, s) in TransactionState::ALL.iter().enumerate() {
        assert_eq!(s.id(), i as i8);
        assert_eq!(TransactionState::from_id(i as i8), Some(*s));
    }
    assert_eq!(
        TransactionState::PrepareEpochFence.name(),
        "PrepareEpochFence"
    );
    assert_eq!(TransactionState::from_id(8), None);
}

#[test]
fn first_init_gives_epoch_zero_and_later_inits_bump_it() {
    let m = initialised();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (100, 0, TransactionState::Empty)
    );
    assert_eq!(m.timeout_ms, 30_000);
    let again = ready(init(&m, None));
    assert_eq!((again.producer_id, again.producer_epoch), (100, 1));
    assert_eq!(again.last_producer_epoch, NO_PRODUCER_EPOCH);
}

#[test]
fn init_in_complete_states_bumps_and_clears_the_transaction() {
    for state in [
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
    ] {
        let mut m = ongoing();
        m.state = state;
        let next = ready(init(&m, None));
        assert_eq!(next.state, TransactionState::Empty);
        assert_eq!(next.producer_epoch, 1);
        assert!(next.partitions.is_empty());
        assert_eq!(next.start_ms, -1);
    }
}

#[test]
fn init_while_ongoing_fences_the_old_producer_and_aborts() {
    let m = ongoing();
    match init(&m, None) {
        Ok(InitTransition::FenceAndAbort(next)) => {
            assert_eq!(next.state, TransactionState::PrepareAbort);
            assert_eq!(next.producer_epoch, 1);
            assert_eq!(next.partitions, m.partitions);
            // The old producer's requests are now fenced.
            assert_eq!(
                next.prepare_end(100, 0, TransactionResult::Commit, NOW),
                Err(ErrorCode::PRODUCER_FENCED)
            );
            // The new producer retries until the abort completes.
            assert_eq!(init(&next, None), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
            let done = next.prepare_complete(NOW + 5).unwrap();
            assert_eq!(done.state, TransactionState::CompleteAbort);
            assert_eq!(ready(init(&done, None)).producer_epoch, 2);
        }
        other => panic!("expected a fence, got {other:?}"),
    }
}

#[test]
fn init_during_prepare_states_is_concurrent() {
    for state in [
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::PrepareEpochFence,
        TransactionState::Dead,
    ] {
        let mut m = ongoing();
        m.state = state;
        assert_eq!(init(&m, None), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
    }
}

#[test]
fn exhausted_epoch_rotates_the_producer_id() {
    let mut m = initialised();
    m.producer_epoch = i16::MAX - 1;
    assert!(is_epoch_exhausted(m.producer_epoch));
    let next = ready(init(&m, None));
    assert_eq!((next.producer_id, next.producer_epoch), (200, 0));
    assert_eq!(next.previous_producer_id, 100);
    // A failing allocation is reported.
    let refused = m.prepare_init(
        InitRequest {
            timeout_ms: 1,
            expected: None,
        },
        || Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
        NOW,
    );
    assert_eq!(refused, Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
}

#[test]
fn kip_360_reinit_with_current_epoch_bumps_and_remembers_the_last() {
    let m = ready(init(&initialised(), None)); // epoch 1
    let next = ready(init(&m, Some((100, 1))));
    assert_eq!((next.producer_epoch, next.last_producer_epoch), (2, 1));
    // The answer was lost and the producer retries with its old epoch: same epoch again.
    let retried = ready(init(&next, Some((100, 1))));
    assert_eq!((retried.producer_id, retried.producer_epoch), (100, 2));
    // Any other epoch is fenced, as is another producer id.
    assert_eq!(init(&next, Some((100, 0))), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(init(&next, Some((999, 2))), Err(ErrorCode::PRODUCER_FENCED));
}

#[test]
fn kip_360_accepts_the_previous_producer_id_after_rotation() {
    let mut m = initialised();
    m.producer_epoch = i16::MAX - 1;
    let rotated = ready(init(&m, Some((100, i16::MAX - 1))));
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (200, 0));
    assert_eq!(rotated.last_producer_epoch, i16::MAX - 1);
    // The producer lost the answer and retries with the old id and exhausted epoch.
    let retried = rotated.prepare_init(
        InitRequest {
            timeout_ms: 1,
            expected: Some((100, i16::MAX - 1)),
        },
        || panic!("no new id for a retry"),
        NOW,
    );
    assert!(retried.is_ok(), "{retried:?}");
}

#[test]
fn add_partitions_starts_and_extends_a_transaction() {
    let m = ongoing();
    assert_eq!(m.state, TransactionState::Ongoing);
    assert_eq!(m.start_ms, NOW + 2);
    // Already there: nothing to write.
    assert_eq!(
        m.prepare_add_partitions(100, 0, &parts(&[("orders", 0)]), NOW + 3),
        Ok(None)
    );
    let more = m
        .prepare_add_partitions(100, 0, &parts(&[("orders", 1), ("x", 0)]), NOW + 3)
        .unwrap()
        .unwrap();
    assert_eq!(more.partitions.len(), 3);
    assert_eq!(more.start_ms, NOW + 2, "the start does not move");
}

#[test]
fn add_partitions_refusals() {
    let m = ongoing();
    let p = parts(&[("orders", 1)]);
    assert_eq!(
        m.prepare_add_partitions(7, 0, &p, NOW),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        m.prepare_add_partitions(100, 1, &p, NOW),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    for state in [
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
    ] {
        let mut prepared = m.clone();
        prepared.state = state;
        assert_eq!(
            prepared.prepare_add_partitions(100, 0, &p, NOW),
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        );
    }
    // After completion a new transaction starts afresh.
    let mut done = m
        .prepare_end(100, 0, TransactionResult::Commit, NOW)
        .unwrap()
        .unwrap();
    done = done.prepare_complete(NOW + 1).unwrap();
    let next = done
        .prepare_add_partitions(100, 0, &p, NOW + 9)
        .unwrap()
        .unwrap();
    assert_eq!(next.partitions, p);
    assert_eq!(next.start_ms, NOW + 9);
}

#[test]
fn verify_only_checks_membership_pid_and_epoch() {
    let m = ongoing();
    let tp = ("orders".to_string(), 0);
    assert_eq!(m.verify_partition(100, 0, &tp), ErrorCode::NONE);
    assert_eq!(
        m.verify_partition(100, 0, &("orders".to_string(), 1)),
        ErrorCode::INVALID_TXN_STATE
    );
    assert_eq!(m.verify_partition(100, 1, &tp), ErrorCode::PRODUCER_FENCED);
    assert_eq!(
        m.verify_partition(5, 0, &tp),
        ErrorCode::INVALID_PRODUCER_ID_MAPPING
    );
    let prepared = m
        .prepare_end(100, 0, TransactionResult::Abort, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(
        prepared.verify_partition(100, 0, &tp),
        ErrorCode::CONCURRENT_TRANSACTIONS
    );
    let done = prepared.prepare_complete(NOW).unwrap();
    assert_eq!(
        done.verify_partition(100, 0, &tp),
        ErrorCode::INVALID_TXN_STATE
    );
}

#[test]
fn end_transaction_prepares_then_completes() {
    for (result, prepare, complete) in [
        (
            TransactionResult::Commit,
            TransactionState::PrepareCommit,
            TransactionState::CompleteCommit,
        ),
        (
            TransactionResult::Abort,
            TransactionState::PrepareAbort,
            TransactionState::CompleteAbort,
        ),
    ] {
        let m = ongoing();
        let prepared = m.prepare_end(100, 0, result, NOW + 5).unwrap().unwrap();
        assert_eq!(prepared.state, prepare);
        assert_eq!(prepared.pending_result(), Some(result));
        assert_eq!(
            prepared.partitions, m.partitions,
            "markers need the partitions"
        );
        // A retry while markers are in flight waits.
        assert_eq!(
            prepared.prepare_end(100, 0, result, NOW),
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        );
        let done = prepared.prepare_complete(NOW + 6).unwrap();
        assert_eq!(done.state, complete);
        assert!(done.partitions.is_empty());
        // A retried EndTxn after completion with the same result is fine...
        assert_eq!(done.prepare_end(100, 0, result, NOW), Ok(None));
        // ...with the other result it is not.
        let other = match result {
            TransactionResult::Commit => TransactionResult::Abort,
            TransactionResult::Abort => TransactionResult::Commit,
        };
        assert_eq!(
            done.prepare_end(100, 0, other, NOW),
            Err(ErrorCode::INVALID_TXN_STATE)
        );
        assert_eq!(
            prepared.prepare_end(100, 0, other, NOW),
            Err(ErrorCode::INVALID_TXN_STATE)
        );
    }
}

#[test]
fn end_transaction_refusals() {
    let m = ongoing();
    assert_eq!(
        m.prepare_end(1, 0, TransactionResult::Commit, NOW),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        m.prepare_end(100, 3, TransactionResult::Commit, NOW),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    assert_eq!(
        initialised().prepare_end(100, 0, TransactionResult::Commit, NOW),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    assert_eq!(
        m.prepare_complete(NOW),
        None,
        "only prepared transactions complete"
    );
}

#[test]
fn timed_out_transactions_abort_with_an_epoch_bump() {
    let m = ongoing();
    let start = m.start_ms;
    assert!(m.prepare_timeout_abort(start + 30_000).is_none());
    let aborted = m.prepare_timeout_abort(start + 30_001).unwrap();
    assert_eq!(aborted.state, TransactionState::PrepareAbort);
    assert_eq!(aborted.producer_epoch, 1);
    // The producer that went quiet is fenced when it comes back.
    assert_eq!(
        aborted.prepare_end(100, 0, TransactionResult::Commit, NOW),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    assert!(initialised().prepare_timeout_abort(i64::MAX).is_none());
    // An exhausted epoch is still bumped (to the last one); the next InitProducerId then
    // rotates the producer id.
    let mut exhausted = m.clone();
    exhausted.producer_epoch = i16::MAX - 1;
    let fenced = exhausted.prepare_timeout_abort(start + 30_001).unwrap();
    assert_eq!(fenced.producer_epoch, i16::MAX);
    let done = fenced.prepare_complete(start + 30_002).unwrap();
    let rotated = ready(init(&done, None));
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (200, 0));
}

#[test]
fn idle_ids_expire_but_not_mid_transaction() {
    let m = initialised();
    assert!(!m.is_expired(m.last_update_ms + 999, 1000));
    assert!(m.is_expired(m.last_update_ms + 1000, 1000));
    let o = ongoing();
    assert!(!o.is_expired(i64::MAX, 1000));
}

#[test]
fn metadata_round_trips_through_its_record() {
    let m = ongoing()
        .prepare_add_partitions(100, 0, &parts(&[("a", 2), ("orders", 1)]), NOW + 3)
        .unwrap()
        .unwrap();
    let back = TransactionMetadata::from_record("tx", &m.to_record());
    let mut expected = m.clone();
    expected.last_producer_epoch = NO_PRODUCER_EPOCH;
    assert_eq!(back, expected);
    let record = m.to_record();
    assert_eq!(record.partitions.len(), 2, "grouped by topic");
    let decoded = records::TransactionLogValue::decode(&record.encode().unwrap()).unwrap();
    assert_eq!(decoded, record);
}

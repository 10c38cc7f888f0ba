use gregor_protocol::batch::{ControlRecordType, EndTransactionMarker};

use super::*;

fn batch(pid: i64, epoch: i16, first_seq: i32, count: i32, offset: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id: pid,
        epoch,
        meta: BatchMetadata {
            first_seq,
            last_seq: increment_sequence(first_seq, count - 1),
            first_offset: offset,
            last_offset: offset + i64::from(count) - 1,
            timestamp: 1000 + offset,
        },
        transactional: false,
        marker: None,
    }
}

fn txn(mut b: ProducerBatch) -> ProducerBatch {
    b.transactional = true;
    b
}

fn append(
    state: &mut ProducerStateManager,
    b: &ProducerBatch,
    origin: AppendOrigin,
) -> Result<BatchCheck> {
    let mut staged = state.begin();
    let check = state.check_and_stage(&mut staged, b, origin)?;
    state.commit(staged);
    Ok(check)
}

fn end_txn(
    state: &mut ProducerStateManager,
    pid: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    offset: i64,
) -> Result<Vec<AbortedTxn>> {
    let marker = EndTransactionMarker {
        control_type: if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        },
        coordinator_epoch,
    };
    let mut control = batch(pid, epoch, NO_SEQUENCE, 1, offset);
    control.transactional = true;
    control.marker = Some(marker);
    let mut staged = state.begin();
    state.stage_marker(&mut staged, &control, AppendOrigin::Coordinator)?;
    Ok(state.commit(staged))
}

#[test]
fn sequences_must_follow_and_retries_are_duplicates() {
    let mut s = ProducerStateManager::default();
    let client = AppendOrigin::Client;
    assert_eq!(
        append(&mut s, &batch(1, 0, 0, 3, 0), client).unwrap(),
        BatchCheck::Fresh
    );
    assert_eq!(
        append(&mut s, &batch(1, 0, 3, 2, 3), client).unwrap(),
        BatchCheck::Fresh
    );
    // A retry of the first batch: answered with where it went.
    match append(&mut s, &batch(1, 0, 0, 3, 99), client).unwrap() {
        BatchCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 2)),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // A gap: sequence 6 after 4.
    assert!(matches!(
        append(&mut s, &batch(1, 0, 6, 1, 5), client),
        Err(LogError::OutOfOrderSequence { last: 4, .. })
    ));
    // A new epoch must start at 0; an old epoch is fenced.
    assert!(matches!(
        append(&mut s, &batch(1, 1, 5, 1, 5), client),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    assert_eq!(
        append(&mut s, &batch(1, 1, 0, 1, 5), client).unwrap(),
        BatchCheck::Fresh
    );
    assert!(matches!(
        append(&mut s, &batch(1, 0, 5, 1, 6), client),
        Err(LogError::InvalidProducerEpoch { current: 1, .. })
    ));
    // An unknown producer may start at any sequence (its state expired).
    assert_eq!(
        append(&mut s, &batch(2, 3, 42, 1, 6), client).unwrap(),
        BatchCheck::Fresh
    );
    // Coordinators do not number their batches.
    assert_eq!(
        append(&mut s, &batch(2, 3, 0, 1, 7), AppendOrigin::Coordinator).unwrap(),
        BatchCheck::Fresh
    );
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut s = ProducerStateManager::default();
    for i in 0..7 {
        append(
            &mut s,
            &batch(1, 0, i, 1, i64::from(i)),
            AppendOrigin::Client,
        )
        .unwrap();
    }
    let entry = s.entry(1).unwrap();
    assert_eq!(entry.batches().count(), 5);
    assert_eq!(entry.batches().next().unwrap().first_seq, 2);
    // The sequence wraps from i32::MAX to 0.
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    assert!(in_sequence(i32::MAX, 0));
}

#[test]
fn a_refused_batch_leaves_no_trace() {
    let mut s = ProducerStateManager::default();
    append(&mut s, &batch(1, 0, 0, 1, 0), AppendOrigin::Client).unwrap();
    let before = s.entry(1).cloned();
    let mut staged = s.begin();
    s.check_and_stage(&mut staged, &batch(1, 0, 1, 1, 1), AppendOrigin::Client)
        .unwrap();
    drop(staged);
    assert_eq!(s.entry(1).cloned(), before);
}

#[test]
fn transactions_bound_the_stable_offset_and_aborts_are_indexed() {
    let mut s = ProducerStateManager::default();
    let client = AppendOrigin::Client;
    append(&mut s, &txn(batch(1, 0, 0, 2, 10)), client).unwrap();
    append(&mut s, &txn(batch(2, 0, 0, 1, 12)), client).unwrap();
    append(&mut s, &txn(batch(1, 0, 2, 1, 13)), client).unwrap();
    assert_eq!(s.first_unstable_offset(), Some(10));
    // Inside a transaction a producer may not write plain batches.
    assert!(matches!(
        append(&mut s, &batch(1, 0, 3, 1, 14), client),
        Err(LogError::InvalidTxnState(_))
    ));
    let aborted = end_txn(&mut s, 1, 0, false, 5, 14).unwrap();
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 10,
            last_offset: 14,
            last_stable_offset: 12,
        }]
    );
    assert_eq!(s.first_unstable_offset(), Some(12));
    assert!(end_txn(&mut s, 2, 0, true, 5, 15).unwrap().is_empty());
    assert_eq!(s.first_unstable_offset(), None);
    // A marker from an older coordinator, or for an older producer epoch, is fenced.
    assert!(matches!(
        end_txn(&mut s, 2, 0, true, 4, 16),
        Err(LogError::TransactionCoordinatorFenced { .. })
    ));
    append(&mut s, &batch(2, 1, 0, 1, 16), client).unwrap();
    assert!(matches!(
        end_txn(&mut s, 2, 0, false, 6, 17),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn snapshots_round_trip_and_detect_damage() {
    let mut s = ProducerStateManager::default();
    append(&mut s, &batch(1, 2, 5, 3, 10), AppendOrigin::Client).unwrap();
    append(&mut s, &txn(batch(9, 0, 0, 1, 13)), AppendOrigin::Client).unwrap();
    let mut bytes = snapshot::encode(s.entries());
    let mut loaded = ProducerStateManager::from_entries(snapshot::decode(&bytes).unwrap());
    let entry = loaded.entry(1).unwrap();
    assert_eq!(
        (entry.epoch, entry.last_seq(), entry.last_offset()),
        (2, 7, 12)
    );
    assert_eq!(loaded.first_unstable_offset(), Some(13));
    // The last batch is still recognised as a duplicate after a restart.
    assert!(matches!(
        append(&mut loaded, &batch(1, 2, 5, 3, 50), AppendOrigin::Client),
        Ok(BatchCheck::Duplicate(_))
    ));
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(snapshot::decode(&bytes).is_err());
}

#[test]
fn idle_producers_expire_unless_in_a_transaction() {
    let mut s = ProducerStateManager::default();
    append(&mut s, &batch(1, 0, 0, 1, 0), AppendOrigin::Client).unwrap();
    append(&mut s, &txn(batch(2, 0, 0, 1, 1)), AppendOrigin::Client).unwrap();
    assert_eq!(s.remove_expired(1_000_000, 1000), 1);
    assert!(s.entry(1).is_none());
    assert!(s.entry(2).is_some());
}

#[test]
fn a_batch_of_an_ended_transaction_is_no_duplicate_for_the_next_one() {
    // librdkafka purges a batch it sent but got no answer for when its transaction aborts, and
    // numbers the next transaction's records from that batch's sequence again, in the same
    // epoch: if the batch was written after all, the new one has the same sequence range.
    let mut s = ProducerStateManager::default();
    let client = AppendOrigin::Client;
    append(&mut s, &txn(batch(1, 0, 60, 4, 75)), client).unwrap();
    // Within its transaction a retry is a duplicate.
    assert!(matches!(
        append(&mut s, &txn(batch(1, 0, 60, 4, 99)), client),
        Ok(BatchCheck::Duplicate(m)) if m.first_offset == 75
    ));
    end_txn(&mut s, 1, 0, false, 0, 79).unwrap();
    // After the marker it is new data out of sequence, not a retry to acknowledge unwritten.
    assert!(matches!(
        append(&mut s, &txn(batch(1, 0, 60, 4, 80)), client),
        Err(LogError::OutOfOrderSequence {
            sequence: 60,
            last: 63,
            ..
        })
    ));
    assert_eq!(
        append(&mut s, &txn(batch(1, 0, 64, 4, 80)), client).unwrap(),
        BatchCheck::Fresh
    );
}

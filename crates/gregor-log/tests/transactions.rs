//! Idempotent and transactional producers through the log's public API: duplicates, the first
//! unstable offset, the aborted-transaction index, and rebuilding all of it after a clean
//! restart, a crash (no snapshot at the end), lost index files, and a truncation.

use std::path::Path;

use gregor_log::{AbortedTxn, LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{
    Compression, ControlRecordType, EndTransactionMarker, RecordBatchBuilder,
};

fn producer_batch(pid: i64, epoch: i16, seq: i32, records: usize, txn: bool) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None)
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..records {
        builder.append(i as i64, 1_000, Some(b"k"), Some(b"v"), &[]);
    }
    builder.build().unwrap()
}

fn marker(commit: bool, coordinator_epoch: i32) -> EndTransactionMarker {
    EndTransactionMarker {
        control_type: if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        },
        coordinator_epoch,
    }
}

fn open(path: &Path, clean: bool) -> Log {
    let config = LogConfig::from_pairs([("segment.bytes", "150")]).unwrap();
    let mut options = LoadOptions::new(2_000);
    options.had_clean_shutdown = clean;
    Log::open(
        path.to_path_buf(),
        TopicPartition::new("t", 0),
        config,
        options,
    )
    .unwrap()
}

/// Writes: pid 1 txn (0–2), pid 2 idempotent (3–4), pid 1 abort (5), pid 3 txn (6),
/// with rolls in between (150-byte segments). Returns the log.
fn populate(path: &Path) -> Log {
    let log = open(path, true);
    log.append_as_leader(&mut producer_batch(1, 0, 0, 3, true), 0, 1_000)
        .unwrap();
    log.append_as_leader(&mut producer_batch(2, 0, 0, 2, false), 0, 1_000)
        .unwrap();
    log.append_marker_as_leader(1, 0, marker(false, 4), 0, 1_000)
        .unwrap();
    log.append_as_leader(&mut producer_batch(3, 0, 0, 1, true), 0, 1_000)
        .unwrap();
    log
}

const ABORTED: AbortedTxn = AbortedTxn {
    producer_id: 1,
    first_offset: 0,
    last_offset: 5,
    last_stable_offset: 6,
};

fn check_state(log: &Log) {
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(log.first_unstable_offset(), Some(6));
    assert_eq!(log.aborted_transactions(0, 7), vec![ABORTED]);
    assert_eq!(log.aborted_transactions(6, 7), vec![]);
    assert_eq!(log.aborted_transactions(0, 0), vec![]);
    // A retry of pid 2's batch is answered with where it went, and nothing is written.
    let info = log
        .append_as_leader(&mut producer_batch(2, 0, 0, 2, false), 0, 1_000)
        .unwrap();
    assert!(info.duplicate);
    assert_eq!((info.first_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 7);
    let producers = log.producers();
    assert_eq!(producers.len(), 3);
    let p1 = producers.iter().find(|p| p.producer_id == 1).unwrap();
    assert_eq!(
        (p1.coordinator_epoch, p1.current_txn_first_offset),
        (4, None)
    );
}

#[test]
fn state_survives_clean_restart_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let log = populate(&path);
    assert!(log.segment_base_offsets().len() > 1, "the test wants rolls");
    check_state(&log);
    log.close(3_000).unwrap();
    drop(log);
    assert!(path.join("00000000000000000007.snapshot").exists());
    let log = open(&path, true);
    check_state(&log);
    // A crash: no snapshot at the end; the state is replayed from the last roll's snapshot.
    drop(log);
    std::fs::remove_file(path.join("00000000000000000007.snapshot")).unwrap();
    let log = open(&path, false);
    check_state(&log);
    drop(log);
    // Every snapshot and index lost: everything is re-derived from the batches.
    for entry in std::fs::read_dir(&path).unwrap() {
        let p = entry.unwrap().path();
        let ext = p.extension().and_then(|e| e.to_str());
        if ext == Some("snapshot") || ext == Some("txnindex") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = open(&path, false);
    check_state(&log);
}

#[test]
fn producer_checks_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let log = populate(&dir.path().join("t-0"));
    let code = |e: gregor_log::LogError| e.error_code().0;
    // Out of order: pid 2's next sequence is 2.
    let err = log
        .append_as_leader(&mut producer_batch(2, 0, 5, 1, false), 0, 1_000)
        .unwrap_err();
    assert_eq!(code(err), 45);
    // pid 3 has an open transaction: a plain batch is refused.
    let err = log
        .append_as_leader(&mut producer_batch(3, 0, 1, 1, false), 0, 1_000)
        .unwrap_err();
    assert_eq!(code(err), 48);
    // A marker from an older coordinator epoch is fenced; an older producer epoch too.
    let err = log
        .append_marker_as_leader(1, 0, marker(true, 3), 0, 1_000)
        .unwrap_err();
    assert_eq!(code(err), 52);
    log.append_as_leader(&mut producer_batch(2, 1, 0, 1, false), 0, 1_000)
        .unwrap();
    let err = log
        .append_as_leader(&mut producer_batch(2, 0, 2, 1, false), 0, 1_000)
        .unwrap_err();
    assert_eq!(code(err), 47);
    // Committing pid 3 makes everything stable.
    log.append_marker_as_leader(3, 0, marker(true, 4), 0, 1_000)
        .unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.aborted_transactions(0, i64::MAX), vec![ABORTED]);
}

#[test]
fn truncation_rebuilds_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = populate(&dir.path().join("t-0"));
    // Cut the abort marker: pid 1's transaction is open again.
    log.truncate_to(5, 3_000).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert_eq!(log.aborted_transactions(0, i64::MAX), vec![]);
    // A follower copying a different suffix from the new leader: a commit this time.
    let mut commit = RecordBatchBuilder::new(5, Compression::None)
        .producer(1, 0, -1)
        .transactional(true)
        .control(true)
        .partition_leader_epoch(1);
    let m = marker(true, 5);
    commit.append(
        5,
        1_000,
        Some(&m.control_type.key_bytes()),
        Some(&m.value_bytes()),
        &[],
    );
    log.append_as_follower(&commit.build().unwrap()).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.aborted_transactions(0, i64::MAX), vec![]);
}

/// Keys and values of every data record in the log, in offset order.
fn records(log: &Log) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, usize::MAX, None, true).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        for batch in gregor_protocol::batch::BatchIter::new(&bytes) {
            let batch = batch.unwrap();
            offset = batch.next_offset();
            if batch.attributes().is_control() {
                continue;
            }
            for r in batch.records().unwrap() {
                let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
                out.push((r.offset(batch.base_offset()), value));
            }
        }
    }
    out
}

fn keyed(pid: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None)
        .producer(pid, 0, seq)
        .transactional(true);
    builder.append(0, 1_000, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
    builder.build().unwrap()
}

#[test]
fn compaction_drops_aborted_records_and_stops_at_open_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::from_pairs([
        ("segment.bytes", "150"),
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ])
    .unwrap();
    let log = Log::open(
        dir.path().join("t-0"),
        TopicPartition::new("t", 0),
        config,
        LoadOptions::new(0),
    )
    .unwrap();
    // a=v1 committed (0, marker 1); a=v2 aborted (2, marker 3); b=open (4, never decided).
    log.append_as_leader(&mut keyed(1, 0, "a", "v1"), 0, 1_000)
        .unwrap();
    log.append_marker_as_leader(1, 0, marker(true, 0), 0, 1_000)
        .unwrap();
    log.append_as_leader(&mut keyed(2, 0, "a", "v2"), 0, 1_000)
        .unwrap();
    log.append_marker_as_leader(2, 0, marker(false, 0), 0, 1_000)
        .unwrap();
    log.append_as_leader(&mut keyed(3, 0, "b", "open"), 0, 1_000)
        .unwrap();
    log.append_as_leader(&mut keyed(3, 1, "b", "open2"), 0, 1_000)
        .unwrap();
    assert_eq!(log.first_unstable_offset(), Some(4));
    let stats = gregor_log::LogCleaner
        .clean(&log, Default::default(), 10_000)
        .unwrap()
        .expect("dirty enough to clean");
    // The aborted a=v2 is dropped and does not supersede a=v1; the open transaction's
    // records are past the cleanable range.
    assert_eq!(stats.next_dirty_offset, 4);
    assert_eq!(
        records(&log),
        vec![(0, "v1".into()), (4, "open".into()), (5, "open2".into())]
    );
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);
}

//! Unit tests of the replication model: a `Partition`'s roles, high watermark (advanced only by
//! what every in-sync replica has, counting a member whose removal is still pending), ISR
//! shrink and expansion requests, leader-epoch checks, follower append and truncation, and
//! `ReplicaManager::wait_for_replication` (the `acks=all` wait). Each test builds a real log in
//! a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use gregor_log::{LogConfig, LogManager, TopicPartition};
use gregor_metadata::image::PartitionState;
use gregor_metadata::records::{BrokerId, NO_LEADER};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use tempfile::TempDir;
use uuid::Uuid;

use super::partition::AppendError;
use super::{Partition, ReplicaManager, Role};

/// Broker time used throughout (record timestamps match it).
const NOW: i64 = 1_700_000_000_000;

/// A partition over a fresh log; the directory and manager live as long as it.
struct Fixture {
    partition: Arc<Partition>,
    _logs: LogManager,
    _dir: TempDir,
}

fn fixture(node: BrokerId) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let logs =
        LogManager::open(vec![dir.path().to_path_buf()], |_| LogConfig::default(), 0).unwrap();
    let tp = TopicPartition::new("t", 0);
    let log = logs
        .get_or_create_log(&tp, LogConfig::default(), 0)
        .unwrap();
    let partition = Arc::new(Partition::new(tp, Uuid::from_u128(0x1234), node, log, 0));
    Fixture {
        partition,
        _logs: logs,
        _dir: dir,
    }
}

fn image(
    leader: BrokerId,
    leader_epoch: i32,
    replicas: &[BrokerId],
    isr: &[BrokerId],
    partition_epoch: i32,
) -> PartitionState {
    PartitionState {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        leader,
        leader_epoch,
        partition_epoch,
    }
}

/// A producer's batch of `n` records (offsets assigned by the leader).
fn client_batch(n: i64) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..n {
        builder.append(i, NOW, Some(b"k"), Some(b"v"), &[]);
    }
    builder.build().unwrap()
}

/// A batch as a leader stores it: `n` records from `base`, stamped with `epoch`.
fn stored_batch(base: i64, n: i64, epoch: i32) -> Vec<u8> {
    let mut builder =
        RecordBatchBuilder::new(base, Compression::None).partition_leader_epoch(epoch);
    for i in 0..n {
        builder.append(base + i, NOW, Some(b"k"), Some(b"v"), &[]);
    }
    builder.build().unwrap()
}

/// Node 1 leading in epoch 1 with `isr`, replicas 1, 2, 3, partition epoch 10.
fn leader_with_isr(isr: &[BrokerId]) -> Fixture {
    let f = fixture(1);
    let role = f
        .partition
        .apply_metadata(&image(1, 1, &[1, 2, 3], isr, 10), NOW);
    assert_eq!(role, Some(Role::Leader));
    f
}

fn append(p: &Partition, n: i64, acks: i16, min_insync: i32) -> Result<i64, AppendError> {
    let mut batch = client_batch(n);
    p.append_as_leader(
        &mut batch,
        acks,
        min_insync,
        gregor_log::AppendOrigin::Client,
        NOW,
    )
    .map(|(info, _)| info.last_offset)
}

#[test]
fn high_watermark_waits_for_every_isr_member() {
    let f = leader_with_isr(&[1, 2, 3]);
    let p = &f.partition;
    let progress = p.progress();
    assert_eq!(append(p, 3, -1, 2).unwrap(), 2);
    assert_eq!(p.log().log_end_offset(), 3);
    assert_eq!(p.high_watermark(), 0);

    let (advanced, _) = p.record_follower_fetch(2, 3, true, NOW + 1).unwrap();
    assert!(!advanced);
    assert_eq!(p.high_watermark(), 0);
    assert_eq!(progress.borrow().high_watermark, 0);

    let (advanced, _) = p.record_follower_fetch(3, 3, true, NOW + 2).unwrap();
    assert!(advanced);
    assert_eq!(p.high_watermark(), 3);
    let seen = *progress.borrow();
    assert_eq!(seen.high_watermark, 3);
    assert!(seen.leader);
    assert_eq!(seen.leader_epoch, 1);
    assert_eq!(seen.isr_size, 3);
}

#[test]
fn single_replica_leader_advances_high_watermark_on_append() {
    let f = fixture(1);
    let p = &f.partition;
    p.apply_metadata(&image(1, 0, &[1], &[1], 0), NOW);
    append(p, 4, -1, 1).unwrap();
    assert_eq!(p.high_watermark(), 4);
    assert_eq!(p.progress().borrow().high_watermark, 4);
}

#[test]
fn acks_all_below_min_insync_is_refused_before_appending() {
    let f = leader_with_isr(&[1]);
    let p = &f.partition;
    let err = append(p, 2, -1, 2).unwrap_err();
    assert!(
        matches!(err, AppendError::NotEnoughReplicas { isr: 1, min: 2 }),
        "{err:?}"
    );
    assert_eq!(err.error_code(), ErrorCode::NOT_ENOUGH_REPLICAS);
    assert_eq!(p.log().log_end_offset(), 0);

    // min.insync.replicas does not apply to acks=1 (nor acks=0).
    assert_eq!(append(p, 2, 1, 2).unwrap(), 1);
    assert_eq!(p.log().log_end_offset(), 2);
}

#[test]
fn roles_guard_appends() {
    // A follower refuses producers.
    let f = fixture(2);
    let p = &f.partition;
    assert_eq!(
        p.apply_metadata(&image(1, 3, &[1, 2], &[1, 2], 0), NOW),
        Some(Role::Follower { leader: 1 })
    );
    let err = append(p, 1, 1, 1).unwrap_err();
    assert!(matches!(err, AppendError::NotLeader), "{err:?}");
    assert_eq!(err.error_code(), ErrorCode::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(p.check_leader(), Err(ErrorCode::NOT_LEADER_OR_FOLLOWER));
    // A follower takes the leader's data only in its own epoch.
    assert!(
        !p.append_as_follower(&stored_batch(0, 2, 2), 2, 2, NOW)
            .unwrap()
    );
    assert_eq!(p.log().log_end_offset(), 0);
    assert!(
        p.append_as_follower(&stored_batch(0, 2, 3), 3, 1, NOW)
            .unwrap()
    );
    assert_eq!(p.log().log_end_offset(), 2);
    assert_eq!(p.high_watermark(), 1);

    // A leader refuses what a fetcher of an old epoch would write.
    let f = leader_with_isr(&[1, 2, 3]);
    let p = &f.partition;
    assert!(
        !p.append_as_follower(&stored_batch(0, 2, 0), 0, 2, NOW)
            .unwrap()
    );
    assert!(
        !p.append_as_follower(&stored_batch(0, 2, 1), 1, 2, NOW)
            .unwrap()
    );
    assert_eq!(p.log().log_end_offset(), 0);
    assert_eq!(p.high_watermark(), 0);
}

#[test]
fn lagging_follower_is_dropped_and_counted_until_the_shrink_commits() {
    let f = leader_with_isr(&[1, 2, 3]);
    let p = &f.partition;
    append(p, 3, -1, 2).unwrap();
    // Follower 3 is stuck at 1; follower 2 keeps fetching at the log end.
    p.record_follower_fetch(3, 1, true, NOW + 100).unwrap();
    p.record_follower_fetch(2, 3, true, NOW + 15_000).unwrap();
    assert_eq!(p.high_watermark(), 1);
    assert_eq!(p.maybe_shrink_isr(NOW + 9_000, 10_000), None);

    let change = p.maybe_shrink_isr(NOW + 20_000, 10_000).expect("a shrink");
    assert_eq!(change.new_isr, vec![1, 2]);
    assert_eq!(change.leader_epoch, 1);
    assert_eq!(change.partition_epoch, 10);
    assert_eq!(change.partition, 0);
    assert_eq!(change.topic_id, p.topic_id());
    // One change in flight at a time.
    assert_eq!(p.maybe_shrink_isr(NOW + 21_000, 10_000), None);

    // Pending: the member being dropped still holds the high watermark back.
    p.record_follower_fetch(2, 3, true, NOW + 20_500).unwrap();
    assert_eq!(p.high_watermark(), 1);
    assert_eq!(p.progress().borrow().isr_size, 3);

    p.isr_change_done(Some((1, vec![1, 2], 11)));
    assert_eq!(p.high_watermark(), 3);
    assert_eq!(p.progress().borrow().isr_size, 2);
}

#[test]
fn stale_isr_answer_is_not_adopted() {
    let f = leader_with_isr(&[1, 2, 3]);
    let p = &f.partition;
    append(p, 3, -1, 2).unwrap();
    p.record_follower_fetch(2, 3, true, NOW + 15_000).unwrap();
    assert!(p.maybe_shrink_isr(NOW + 20_000, 10_000).is_some());
    // An answer for another leader epoch, or not newer than what we have, changes nothing.
    p.isr_change_done(Some((0, vec![1, 2], 11)));
    p.isr_change_done(Some((1, vec![1, 2], 10)));
    assert_eq!(p.progress().borrow().isr_size, 3);
    assert_eq!(p.high_watermark(), 0);
}

#[tokio::test]
async fn caught_up_follower_rejoins_only_when_eligible_and_not_right_after_a_refusal() {
    let f = leader_with_isr(&[1, 2]);
    let p = &f.partition;
    append(p, 3, -1, 2).unwrap();
    p.record_follower_fetch(2, 3, true, NOW + 1).unwrap();
    assert_eq!(p.high_watermark(), 3);

    // Not caught up to the high watermark: no expansion.
    let (_, change) = p.record_follower_fetch(3, 2, true, NOW + 2).unwrap();
    assert_eq!(change, None);
    // Caught up but fenced / unregistered: no expansion.
    let (_, change) = p.record_follower_fetch(3, 3, false, NOW + 3).unwrap();
    assert_eq!(change, None);
    // Caught up and eligible.
    let (_, change) = p.record_follower_fetch(3, 3, true, NOW + 4).unwrap();
    let change = change.expect("an expansion");
    assert_eq!(change.new_isr, vec![1, 2, 3]);
    assert_eq!(change.leader_epoch, 1);
    assert_eq!(change.partition_epoch, 10);
    // In flight: not asked twice.
    let (_, change) = p.record_follower_fetch(3, 3, true, NOW + 5).unwrap();
    assert_eq!(change, None);

    // Refused: a pause before asking again.
    p.isr_change_done(None);
    let (_, change) = p.record_follower_fetch(3, 3, true, NOW + 6).unwrap();
    assert_eq!(change, None);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, change) = p.record_follower_fetch(3, 3, true, NOW + 7).unwrap();
    assert_eq!(change.map(|c| c.new_isr), Some(vec![1, 2, 3]));
}

#[test]
fn follower_fetch_is_refused_by_non_leaders_and_for_unknown_replicas() {
    let f = leader_with_isr(&[1, 2, 3]);
    assert_eq!(
        f.partition
            .record_follower_fetch(7, 0, true, NOW)
            .unwrap_err(),
        ErrorCode::NOT_LEADER_OR_FOLLOWER
    );
    let f = fixture(2);
    f.partition
        .apply_metadata(&image(1, 1, &[1, 2], &[1, 2], 0), NOW);
    assert_eq!(
        f.partition
            .record_follower_fetch(1, 0, true, NOW)
            .unwrap_err(),
        ErrorCode::NOT_LEADER_OR_FOLLOWER
    );
}

#[test]
fn new_leader_epoch_starts_at_the_log_end_and_fences_requests() {
    let f = fixture(1);
    let p = &f.partition;
    p.apply_metadata(&image(1, 3, &[1], &[1], 0), NOW);
    append(p, 3, 1, 1).unwrap();
    // A leader change elsewhere and back, in epoch 5.
    assert_eq!(
        p.apply_metadata(&image(2, 4, &[1, 2], &[1, 2], 1), NOW),
        Some(Role::Follower { leader: 2 })
    );
    assert_eq!(
        p.apply_metadata(&image(1, 5, &[1, 2], &[1, 2], 2), NOW),
        Some(Role::Leader)
    );
    assert_eq!(p.leader_epoch(), 5);
    assert_eq!(p.log().latest_epoch(), Some(5));
    // Epoch 4 (in which this replica wrote nothing) ends where epoch 5 starts.
    assert_eq!(p.log().end_offset_for_epoch(4), (3, 3));
    assert_eq!(p.log().end_offset_for_epoch(5), (5, 3));
    append(p, 2, 1, 1).unwrap();
    assert_eq!(p.log().end_offset_for_epoch(4), (3, 3));
    assert_eq!(p.log().end_offset_for_epoch(5), (5, 5));

    assert_eq!(p.check_leader_epoch(4), Err(ErrorCode::FENCED_LEADER_EPOCH));
    assert_eq!(
        p.check_leader_epoch(6),
        Err(ErrorCode::UNKNOWN_LEADER_EPOCH)
    );
    assert_eq!(p.check_leader_epoch(5), Ok(()));
    assert_eq!(p.check_leader_epoch(-1), Ok(()));

    // Only the ISR moving on is not a role change.
    assert_eq!(p.apply_metadata(&image(1, 5, &[1, 2], &[1], 3), NOW), None);
}

#[test]
fn partition_without_leader_is_offline() {
    let f = fixture(1);
    let p = &f.partition;
    p.apply_metadata(&image(1, 1, &[1], &[1], 0), NOW);
    assert_eq!(
        p.apply_metadata(&image(NO_LEADER, 2, &[1], &[1], 1), NOW),
        Some(Role::Offline)
    );
    assert_eq!(p.check_leader(), Err(ErrorCode::NOT_LEADER_OR_FOLLOWER));
    assert!(!p.progress().borrow().leader);
}

#[tokio::test]
async fn wait_for_replication_returns_once_the_high_watermark_passes() {
    let f = leader_with_isr(&[1, 2]);
    let p = Arc::clone(&f.partition);
    let last = append(&p, 3, -1, 2).unwrap();
    let waiter = Arc::clone(&p);
    let wait = tokio::spawn(async move {
        ReplicaManager::wait_for_replication(&waiter, last, 1, 2, Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!wait.is_finished());
    p.record_follower_fetch(2, 2, true, NOW + 1).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !wait.is_finished(),
        "high watermark 2 does not cover offset 2"
    );
    p.record_follower_fetch(2, 3, true, NOW + 2).unwrap();
    assert_eq!(wait.await.unwrap(), Ok(()));
    // Already replicated: returns at once.
    let done = ReplicaManager::wait_for_replication(&p, last, 1, 2, Duration::from_millis(1));
    assert_eq!(done.await, Ok(()));
}

#[tokio::test]
async fn wait_for_replication_fails_when_leadership_is_lost() {
    let f = leader_with_isr(&[1, 2]);
    let p = Arc::clone(&f.partition);
    let last = append(&p, 3, -1, 2).unwrap();
    let waiter = Arc::clone(&p);
    let wait = tokio::spawn(async move {
        ReplicaManager::wait_for_replication(&waiter, last, 1, 2, Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.apply_metadata(&image(2, 2, &[1, 2, 3], &[2, 3], 11), NOW + 1);
    assert_eq!(wait.await.unwrap(), Err(ErrorCode::NOT_LEADER_OR_FOLLOWER));

    // Leading again, but in a later epoch than the append's: still not acknowledged.
    p.apply_metadata(&image(1, 3, &[1], &[1], 12), NOW + 2);
    let wait = ReplicaManager::wait_for_replication(&p, last, 1, 1, Duration::from_secs(10));
    assert_eq!(wait.await, Err(ErrorCode::NOT_LEADER_OR_FOLLOWER));
}

#[tokio::test]
async fn wait_for_replication_times_out() {
    let f = leader_with_isr(&[1, 2]);
    let p = &f.partition;
    let last = append(p, 3, -1, 2).unwrap();
    let wait = ReplicaManager::wait_for_replication(p, last, 1, 2, Duration::from_millis(50));
    assert_eq!(wait.await, Err(ErrorCode::REQUEST_TIMED_OUT));
}

#[tokio::test]
async fn wait_for_replication_reports_an_isr_shrunk_below_min_insync() {
    let f = leader_with_isr(&[1, 2]);
    let p = Arc::clone(&f.partition);
    let last = append(&p, 3, -1, 2).unwrap();
    let waiter = Arc::clone(&p);
    let wait = tokio::spawn(async move {
        ReplicaManager::wait_for_replication(&waiter, last, 1, 2, Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let change = p.maybe_shrink_isr(NOW + 20_000, 10_000).expect("a shrink");
    assert_eq!(change.new_isr, vec![1]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!wait.is_finished(), "the pending removal still counts");
    p.isr_change_done(Some((1, vec![1], 11)));
    assert_eq!(p.high_watermark(), 3);
    assert_eq!(
        wait.await.unwrap(),
        Err(ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    );
}

#[test]
fn follower_truncates_only_in_its_epoch_and_clamps_the_high_watermark() {
    let f = fixture(2);
    let p = &f.partition;
    p.apply_metadata(&image(1, 4, &[1, 2], &[1, 2], 0), NOW);
    assert!(
        p.append_as_follower(&stored_batch(0, 2, 4), 4, 0, NOW)
            .unwrap()
    );
    assert!(
        p.append_as_follower(&stored_batch(2, 3, 4), 4, 5, NOW)
            .unwrap()
    );
    assert_eq!(p.log().log_end_offset(), 5);
    assert_eq!(p.high_watermark(), 5);

    // A truncation decided in another epoch does not land.
    assert_eq!(p.truncate_to(2, 3, NOW).unwrap(), None);
    assert_eq!(p.log().log_end_offset(), 5);

    assert_eq!(p.truncate_to(2, 4, NOW).unwrap(), Some(2));
    assert_eq!(p.log().log_end_offset(), 2);
    assert_eq!(p.high_watermark(), 2);
    assert_eq!(p.progress().borrow().high_watermark, 2);
    // Truncating past the end changes nothing.
    assert_eq!(p.truncate_to(9, 4, NOW).unwrap(), Some(2));

    // A leader never truncates through this path.
    assert_eq!(
        p.apply_metadata(&image(2, 5, &[1, 2], &[2], 1), NOW),
        Some(Role::Leader)
    );
    assert_eq!(p.truncate_to(0, 5, NOW).unwrap(), None);
    assert_eq!(p.log().log_end_offset(), 2);
}

#[test]
fn image_older_than_a_committed_isr_change_is_not_adopted() {
    let f = leader_with_isr(&[1, 2]);
    let p = &f.partition;
    append(p, 3, -1, 2).unwrap();
    p.record_follower_fetch(2, 3, true, NOW + 1).unwrap();
    let (_, change) = p.record_follower_fetch(3, 3, true, NOW + 2).unwrap();
    assert_eq!(change.map(|c| c.partition_epoch), Some(10));
    p.isr_change_done(Some((1, vec![1, 2, 3], 11)));
    assert_eq!(p.progress().borrow().isr_size, 3);

    // This broker's metadata replay lags the controller: an image from before the commit.
    assert_eq!(
        p.apply_metadata(&image(1, 1, &[1, 2, 3], &[1, 2], 10), NOW + 3),
        None
    );
    assert_eq!(p.progress().borrow().isr_size, 3);
    // 3 is in the committed ISR: acks=all must wait for it.
    append(p, 2, -1, 2).unwrap();
    p.record_follower_fetch(2, 5, true, NOW + 4).unwrap();
    assert_eq!(p.high_watermark(), 3);
    // The next change is asked at the committed partition epoch.
    let change = p.maybe_shrink_isr(NOW + 20_000, 10_000).expect("a shrink");
    assert_eq!(change.partition_epoch, 11);
}

#[test]
fn image_at_or_after_a_committed_isr_change_is_adopted() {
    let f = leader_with_isr(&[1, 2]);
    let p = &f.partition;
    append(p, 3, -1, 2).unwrap();
    p.record_follower_fetch(2, 3, true, NOW + 1).unwrap();
    assert!(
        p.record_follower_fetch(3, 3, true, NOW + 2)
            .unwrap()
            .1
            .is_some()
    );
    p.isr_change_done(Some((1, vec![1, 2, 3], 11)));
    p.apply_metadata(&image(1, 1, &[1, 2, 3], &[1, 2, 3], 11), NOW + 3);
    assert_eq!(p.progress().borrow().isr_size, 3);
    p.apply_metadata(&image(1, 1, &[1, 2, 3], &[1, 3], 12), NOW + 4);
    assert_eq!(p.progress().borrow().isr_size, 2);
    // Follower 3 falls behind (a follower at the log end counts as caught up, as in Kafka).
    append(p, 1, 1, 1).unwrap();
    let change = p.maybe_shrink_isr(NOW + 20_000, 10_000).expect("a shrink");
    assert_eq!((change.new_isr, change.partition_epoch), (vec![1], 12));
}

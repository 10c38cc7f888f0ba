//! Transactional offset commits (TxnOffsetCommit, KIP-98/KIP-447) over real storage: pending
//! offsets stay invisible until their transaction's marker commits them, an abort drops them,
//! a reload rebuilds the same state from `__consumer_offsets`, and OffsetFetch with
//! `require_stable` answers `UNSTABLE_OFFSET_COMMIT` while a transaction is open.

use gregor_log::TopicPartition;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{ControlRecordType, EndTransactionMarker};

use super::coordinator::{
    Node, T0, admin, arrived, committed_offset, exists, group_config, group_of_one, join_new,
    join_request, member, offset, sync_request,
};
use crate::group::store::{OFFSETS_TOPIC, partition_for};
use crate::group::{Committer, GroupCoordinator, OffsetToCommit, PartitionResult};
use crate::replica::Role;

const EPOCH: i16 = 3;

fn partition_of(node: &Node, group: &str) -> i32 {
    partition_for(group, node.config.offsets_topic_num_partitions)
}

/// Another group id in the same `__consumer_offsets` partition as `group`.
fn neighbour(node: &Node, group: &str) -> String {
    let partition = partition_of(node, group);
    (0..)
        .map(|i| format!("{group}-neighbour-{i}"))
        .find(|g| partition_of(node, g) == partition)
        .expect("some id lands in every partition")
}

fn txn_commit(
    groups: &GroupCoordinator,
    group: &str,
    producer_id: i64,
    committer: &Committer,
    offsets: Vec<OffsetToCommit>,
) -> Result<Vec<PartitionResult>, ErrorCode> {
    groups.commit_transactional_offsets(group, producer_id, EPOCH, committer, offsets, T0)
}

/// A transactional commit that must succeed for every partition.
fn txn_commit_ok(node: &Node, group: &str, producer_id: i64, offsets: Vec<OffsetToCommit>) {
    let results = txn_commit(&node.groups, group, producer_id, &admin(), offsets).unwrap();
    assert!(
        results.iter().all(|(_, e)| *e == ErrorCode::NONE),
        "{results:?}"
    );
}

fn plain_commit_ok(node: &Node, group: &str, offsets: Vec<OffsetToCommit>) {
    let results = node
        .groups
        .commit_offsets(group, &admin(), offsets, T0)
        .unwrap();
    assert!(
        results.iter().all(|(_, e)| *e == ErrorCode::NONE),
        "{results:?}"
    );
}

/// What the WriteTxnMarkers handler does for the `__consumer_offsets` partition of `group`:
/// writes `producer_id`'s transaction marker there, then tells the coordinator.
fn end_txn(node: &Node, group: &str, producer_id: i64, commit: bool) {
    let partition = partition_of(node, group);
    let control_type = if commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let marker = EndTransactionMarker {
        control_type,
        coordinator_epoch: 0,
    };
    let leader = node
        .node
        .broker
        .replicas
        .leader_partition(&TopicPartition::new(OFFSETS_TOPIC, partition))
        .unwrap();
    leader
        .append_marker(producer_id, EPOCH, marker, 1, T0)
        .unwrap();
    node.groups
        .complete_txn_offsets(partition, producer_id, commit);
}

/// OffsetFetch of one partition with `require_stable`.
fn stable(
    groups: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, ErrorCode> {
    let fetched = groups
        .fetch_offsets(
            group,
            Some(vec![(topic.to_string(), vec![partition])]),
            None,
            true,
        )
        .unwrap();
    assert_eq!(fetched.len(), 1);
    let (_, found) = fetched.into_iter().next().unwrap();
    found.map(|c| c.map(|c| c.offset))
}

#[test]
fn transactional_offsets_show_only_once_the_transaction_commits() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    plain_commit_ok(&node, "g", vec![offset("t", 1, 5, "")]);

    txn_commit_ok(
        &node,
        "g",
        7,
        vec![offset("t", 0, 10, "txn"), offset("t", 1, 11, "")],
    );
    assert_eq!(committed_offset(groups, "g", "t", 0), None, "pending");
    assert_eq!(
        committed_offset(groups, "g", "t", 1),
        Some(5),
        "the last committed offset, not the pending one"
    );
    assert_eq!(
        stable(groups, "g", "t", 0),
        Err(ErrorCode::UNSTABLE_OFFSET_COMMIT)
    );
    assert_eq!(
        stable(groups, "g", "t", 1),
        Err(ErrorCode::UNSTABLE_OFFSET_COMMIT)
    );
    assert_eq!(
        stable(groups, "g", "t", 2),
        Ok(None),
        "nothing pending there"
    );

    // Every partition (topics null): committed ones only, pending ones unstable.
    let all = groups.fetch_offsets("g", None, None, true).unwrap();
    assert_eq!(
        all,
        [(("t".to_string(), 1), Err(ErrorCode::UNSTABLE_OFFSET_COMMIT))]
    );

    // Another producer's marker, or this producer's on another partition, changes nothing.
    end_txn(&node, "g", 8, true);
    let elsewhere = (partition_of(&node, "g") + 1) % node.config.offsets_topic_num_partitions;
    groups.complete_txn_offsets(elsewhere, 7, true);
    assert_eq!(committed_offset(groups, "g", "t", 0), None);

    end_txn(&node, "g", 7, true);
    let c = super::coordinator::committed(groups, "g", "t", 0).unwrap();
    assert_eq!(
        (c.offset, c.leader_epoch, c.metadata.as_str()),
        (10, 7, "txn")
    );
    assert_eq!(stable(groups, "g", "t", 0), Ok(Some(10)));
    assert_eq!(stable(groups, "g", "t", 1), Ok(Some(11)));
}

#[test]
fn an_aborted_transaction_leaves_the_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    plain_commit_ok(&node, "g", vec![offset("t", 0, 5, "")]);
    txn_commit_ok(
        &node,
        "g",
        7,
        vec![offset("t", 0, 10, ""), offset("t", 1, 11, "")],
    );
    end_txn(&node, "g", 7, false);
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(5));
    assert_eq!(committed_offset(groups, "g", "t", 1), None);
    assert_eq!(stable(groups, "g", "t", 0), Ok(Some(5)));
    // A commit marker after the abort finds nothing left to commit.
    end_txn(&node, "g", 7, true);
    assert_eq!(committed_offset(groups, "g", "t", 1), None);
}

/// A plain commit written after the transactional one wins when the transaction commits; one
/// written before it loses (Kafka compares record offsets).
#[test]
fn the_later_written_commit_wins() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    plain_commit_ok(&node, "g", vec![offset("t", 1, 100, "")]);
    txn_commit_ok(
        &node,
        "g",
        7,
        vec![offset("t", 0, 10, ""), offset("t", 1, 11, "")],
    );
    plain_commit_ok(&node, "g", vec![offset("t", 0, 20, "")]);
    end_txn(&node, "g", 7, true);
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(20));
    assert_eq!(committed_offset(groups, "g", "t", 1), Some(11));

    let node = node.restart(T0);
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), Some(20));
    assert_eq!(committed_offset(&node.groups, "g", "t", 1), Some(11));
}

/// Transactions of several producers and groups of one partition, interleaved with plain
/// commits, markers and an OffsetDelete: a reload rebuilds what the live coordinator held,
/// including a transaction still open, whose marker then commits it.
#[test]
fn a_reload_rebuilds_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let h = neighbour(&node, "g");
    plain_commit_ok(&node, "g", vec![offset("t", 0, 5, "")]);
    txn_commit_ok(
        &node,
        "g",
        1,
        vec![offset("t", 0, 10, ""), offset("t", 1, 11, "")],
    );
    txn_commit_ok(&node, "g", 2, vec![offset("t", 2, 12, "")]);
    txn_commit_ok(&node, &h, 2, vec![offset("t", 0, 40, "")]);
    txn_commit_ok(&node, &h, 1, vec![offset("t", 1, 41, "")]);
    plain_commit_ok(&node, "g", vec![offset("t", 1, 21, "")]);
    end_txn(&node, "g", 1, true);
    end_txn(&node, "g", 2, false);
    txn_commit_ok(&node, "g", 3, vec![offset("t", 0, 30, "")]);
    txn_commit_ok(&node, "pruned", 3, vec![offset("t", 0, 50, "")]);
    node.groups
        .delete_offsets("pruned", vec![("t".to_string(), 0)], T0)
        .unwrap();
    txn_commit_ok(&node, "pending-only", 4, vec![offset("t", 2, 60, "")]);

    let snapshot = |node: &Node| {
        let mut seen = Vec::new();
        for group in ["g", h.as_str(), "pruned", "pending-only"] {
            for p in 0..3 {
                seen.push((
                    group.to_string(),
                    p,
                    committed_offset(&node.groups, group, "t", p),
                    stable(&node.groups, group, "t", p),
                ));
            }
        }
        seen
    };
    let live = snapshot(&node);
    let expected = |group: &str, p: i32| {
        live.iter()
            .find(|(g, q, _, _)| g == group && *q == p)
            .map(|(_, _, c, s)| (*c, *s))
            .unwrap()
    };
    assert_eq!(
        expected("g", 0),
        (Some(10), Err(ErrorCode::UNSTABLE_OFFSET_COMMIT))
    );
    assert_eq!(expected("g", 1), (Some(21), Ok(Some(21))));
    assert_eq!(expected("g", 2), (None, Ok(None)));
    assert_eq!(expected(&h, 0), (None, Ok(None)), "aborted");
    assert_eq!(expected(&h, 1), (Some(41), Ok(Some(41))));
    assert_eq!(
        expected("pruned", 0),
        (None, Ok(None)),
        "the tombstone drops it"
    );
    assert_eq!(
        expected("pending-only", 2),
        (None, Err(ErrorCode::UNSTABLE_OFFSET_COMMIT))
    );

    let node = node.restart(T0);
    assert_eq!(snapshot(&node), live);
    assert!(exists(&node.groups, "pending-only"));

    // The open transactions end after the reload.
    end_txn(&node, "g", 3, true);
    end_txn(&node, "pruned", 3, true);
    end_txn(&node, "pending-only", 4, true);
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), Some(30));
    assert_eq!(committed_offset(&node.groups, "pruned", "t", 0), None);
    assert_eq!(
        committed_offset(&node.groups, "pending-only", "t", 2),
        Some(60)
    );
    let node = node.restart(T0);
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), Some(30));
    assert_eq!(committed_offset(&node.groups, "pruned", "t", 0), None);
    assert_eq!(
        committed_offset(&node.groups, "pending-only", "t", 2),
        Some(60)
    );
}

#[test]
fn deleting_a_group_drops_its_open_transactions_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    txn_commit_ok(&node, "g", 7, vec![offset("t", 0, 10, "")]);
    assert!(exists(&node.groups, "g"), "an unknown group is created");
    assert_eq!(node.groups.delete_group("g", T0), ErrorCode::NONE);
    end_txn(&node, "g", 7, true);
    assert!(!exists(&node.groups, "g"));
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), None);
    let node = node.restart(T0);
    assert!(!exists(&node.groups, "g"));
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), None);
}

/// Retention keeps an offset an open transaction is about to replace, and the group.
#[test]
fn retention_waits_for_open_transactions() {
    let config = crate::config::GroupConfig {
        offsets_retention_ms: 1_000,
        offsets_retention_check_interval_ms: 1,
        ..group_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), config);
    plain_commit_ok(
        &node,
        "g",
        vec![offset("t", 0, 5, ""), offset("t", 1, 6, "")],
    );
    txn_commit_ok(&node, "g", 7, vec![offset("t", 0, 10, "")]);
    node.groups.tick(T0 + 10_000);
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), Some(5));
    assert_eq!(committed_offset(&node.groups, "g", "t", 1), None, "expired");
    end_txn(&node, "g", 7, true);
    assert_eq!(committed_offset(&node.groups, "g", "t", 0), Some(10));
}

#[test]
fn members_and_generations_are_checked_like_offset_commit() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    let a = group_of_one(groups, "g", T0);
    let commit =
        |committer: &Committer| txn_commit(groups, "g", 7, committer, vec![offset("t", 0, 1, "")]);

    assert_eq!(commit(&member(&a, 1)).unwrap()[0].1, ErrorCode::NONE);
    assert_eq!(commit(&member(&a, 2)), Err(ErrorCode::ILLEGAL_GENERATION));
    assert_eq!(
        commit(&member("client-ghost", 1)),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    // TxnOffsetCommit before v3 carries no member: accepted, as in Kafka.
    assert_eq!(commit(&admin()).unwrap()[0].1, ErrorCode::NONE);
    // A commit for a group that does not exist, from a member: refused, nothing created.
    assert_eq!(
        txn_commit(
            groups,
            "ghost",
            7,
            &member("m", 1),
            vec![offset("t", 0, 1, "")]
        ),
        Err(ErrorCode::ILLEGAL_GENERATION)
    );
    assert!(!exists(groups, "ghost"));
    assert_eq!(
        txn_commit(groups, "", 7, &admin(), vec![offset("t", 0, 1, "")]),
        Err(ErrorCode::INVALID_GROUP_ID)
    );

    // Static membership: an old instance's member id is fenced.
    let first = arrived(groups.join_group("s", join_request("", Some("i-1")), T0));
    arrived(groups.sync_group(
        "s",
        sync_request(&first.member_id, 1, &[(&first.member_id, "x")]),
        T0,
    ));
    let second = arrived(groups.join_group("s", join_request("", Some("i-1")), T0 + 1));
    assert_ne!(second.member_id, first.member_id);
    let fenced = Committer {
        instance_id: Some("i-1".to_string()),
        ..member(&first.member_id, 1)
    };
    assert_eq!(
        txn_commit(groups, "s", 7, &fenced, vec![offset("t", 0, 1, "")]),
        Err(ErrorCode::FENCED_INSTANCE_ID)
    );

    // A rebalance in progress does not stop transactional commits of the current generation.
    let (_b, _b_join) = join_new(groups, "g", T0 + 100);
    assert_eq!(commit(&member(&a, 1)).unwrap()[0].1, ErrorCode::NONE);

    // Per partition: unknown partitions and oversized metadata.
    let too_long = "x".repeat(node.config.offset_metadata_max_bytes + 1);
    let results = txn_commit(
        groups,
        "other",
        7,
        &admin(),
        vec![
            offset("t", 0, 1, &too_long),
            offset("t", 9, 1, ""),
            offset("t", 1, 1, ""),
        ],
    )
    .unwrap();
    let errors: Vec<ErrorCode> = results.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        errors,
        [
            ErrorCode::OFFSET_METADATA_TOO_LARGE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::NONE
        ]
    );
    end_txn(&node, "other", 7, true);
    assert_eq!(committed_offset(groups, "other", "t", 0), None);
    assert_eq!(committed_offset(groups, "other", "t", 1), Some(1));
}

#[test]
fn only_the_coordinator_takes_transactional_commits() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    let partition = partition_of(&node, "g");
    txn_commit_ok(&node, "g", 7, vec![offset("t", 0, 10, "")]);

    groups.owned.lock().insert(partition, false);
    assert_eq!(
        txn_commit(groups, "g", 7, &admin(), vec![offset("t", 0, 1, "")]),
        Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
    );
    groups.on_roles(
        &[(
            TopicPartition::new(OFFSETS_TOPIC, partition),
            Role::Follower { leader: 2 },
        )],
        T0,
    );
    assert_eq!(
        txn_commit(groups, "g", 7, &admin(), vec![offset("t", 0, 1, "")]),
        Err(ErrorCode::NOT_COORDINATOR)
    );
    assert_eq!(
        groups.fetch_offsets("g", None, None, true),
        Err(ErrorCode::NOT_COORDINATOR)
    );

    // Leadership comes back: the pending offsets are loaded from the log again.
    groups.on_roles(
        &[(TopicPartition::new(OFFSETS_TOPIC, partition), Role::Leader)],
        T0,
    );
    assert_eq!(
        stable(groups, "g", "t", 0),
        Err(ErrorCode::UNSTABLE_OFFSET_COMMIT)
    );
    end_txn(&node, "g", 7, true);
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(10));
}

//! [`GroupCoordinator`] over real storage: a `LogManager` and `TopicRegistry` in a temporary
//! directory with topic "t" (3 partitions). Committed offsets, group state, deletions and
//! retention, including what survives a restart (shut the logs down, open them again, `load`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use gregor_protocol::ErrorCode;
use tokio::sync::oneshot;

use crate::config::{BrokerConfig, GroupConfig};
use crate::group::classic::{ClassicState, JoinRequest, Reply, SyncRequest};
use crate::group::consumer::HeartbeatRequest;
use crate::group::{
    CommittedOffset, Committer, FetchedOffset, GroupCoordinator, GroupKind, OffsetToCommit,
};

/// Wall-clock-like start time of every test, in milliseconds.
pub(super) const T0: i64 = 1_700_000_000_000;
const SESSION_MS: i32 = 30_000;

pub(super) fn group_config() -> GroupConfig {
    GroupConfig {
        offsets_topic_num_partitions: 4,
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

/// A single-node broker core (storage, metadata quorum, replicas) and its group coordinator.
pub(super) struct Node {
    dir: PathBuf,
    pub(super) config: GroupConfig,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) node: crate::node::Node,
    pub(super) groups: Arc<GroupCoordinator>,
}

impl Node {
    /// Opens (or reopens) the node in `dir`, as the broker does: groups load when their
    /// `__consumer_offsets` partitions are led here.
    fn open(dir: &Path, config: GroupConfig) -> Node {
        let (runtime, node) = crate::node::start_on_own_runtime(BrokerConfig {
            log_dirs: vec![dir.to_path_buf()],
            group: config.clone(),
            log_index_size_max_bytes: 64 * 1024,
            // Durability across a crash is not under test: restarts here are orderly.
            log_flush_interval_messages: i64::MAX,
            ..BrokerConfig::default()
        });
        let groups = Arc::clone(&node.broker.groups);
        // As a client's FindCoordinator would: create `__consumer_offsets` if needed, then wait
        // until every partition's groups are loaded (all are led here).
        let g = Arc::clone(&groups);
        runtime
            .block_on(runtime.spawn_blocking(move || g.find_coordinator("probe")))
            .unwrap()
            .unwrap();
        runtime.block_on(async {
            let all_loaded = || {
                (0..config.offsets_topic_num_partitions).all(|p| {
                    let group = probe_group(p, config.offsets_topic_num_partitions);
                    groups.with_group(&group, |_| ()).is_ok()
                })
            };
            while !all_loaded() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        Node {
            dir: dir.to_path_buf(),
            config,
            runtime,
            node,
            groups,
        }
    }

    /// A new node with topic "t" of 3 partitions.
    pub(super) fn start(dir: &Path, config: GroupConfig) -> Node {
        let node = Node::open(dir, config);
        node.runtime
            .block_on(node.node.broker.topics.create(
                "t",
                3,
                1,
                BTreeMap::new(),
                BTreeMap::new(),
                false,
            ))
            .unwrap();
        node
    }

    /// An orderly restart: everything in memory is dropped and rebuilt from the logs.
    pub(super) fn restart(self, _now: i64) -> Node {
        let Node {
            dir,
            config,
            runtime,
            node,
            groups,
        } = self;
        drop(groups);
        runtime.block_on(node.close()).unwrap();
        drop(runtime);
        Node::open(&dir, config)
    }
}

/// A group id that lives in offsets partition `partition`.
pub(super) fn probe_group(partition: i32, partitions: i32) -> String {
    (0..)
        .map(|i| format!("probe-{i}"))
        .find(|g| crate::group::store::partition_for(g, partitions) == partition)
        .expect("some id lands in every partition")
}

pub(super) fn offset(topic: &str, partition: i32, offset: i64, metadata: &str) -> OffsetToCommit {
    OffsetToCommit {
        topic: topic.to_string(),
        partition,
        offset,
        leader_epoch: 7,
        metadata: Some(metadata.to_string()),
    }
}

pub(super) fn admin() -> Committer {
    Committer {
        generation: -1,
        ..Committer::default()
    }
}

pub(super) fn member(member_id: &str, generation: i32) -> Committer {
    Committer {
        member_id: member_id.to_string(),
        generation,
        ..Committer::default()
    }
}

/// The committed offset of `topic`-`partition` in `group`, if any.
pub(super) fn committed(
    groups: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> Option<CommittedOffset> {
    let fetched: Vec<FetchedOffset> = groups
        .fetch_offsets(
            group,
            Some(vec![(topic.to_string(), vec![partition])]),
            None,
            false,
        )
        .unwrap();
    assert_eq!(fetched.len(), 1);
    fetched.into_iter().next().unwrap().1.unwrap()
}

pub(super) fn committed_offset(
    groups: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    committed(groups, group, topic, partition).map(|c| c.offset)
}

pub(super) fn exists(groups: &GroupCoordinator, group: &str) -> bool {
    groups.with_group(group, |g| g.is_some()).unwrap()
}

pub(super) fn join_request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"subscription"))],
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

pub(super) fn sync_request(
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        generation,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

pub(super) fn answered<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

pub(super) fn parked<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a parked answer"),
    }
}

/// Any answer, parked or not, that must be there by now.
pub(super) fn arrived<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(mut rx) => rx.try_recv().expect("the answer should have arrived"),
    }
}

/// A dynamic member joins `group` (MEMBER_ID_REQUIRED, then the real join); returns its id
/// and its parked JoinGroup.
pub(super) fn join_new(
    groups: &GroupCoordinator,
    group: &str,
    now: i64,
) -> (String, oneshot::Receiver<crate::group::classic::JoinResult>) {
    let first = answered(groups.join_group(group, join_request("", None), now));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    let rx = parked(groups.join_group(group, join_request(&first.member_id, None), now));
    (first.member_id, rx)
}

/// A classic group with one member at generation 1, Stable; returns the member id.
pub(super) fn group_of_one(groups: &GroupCoordinator, group: &str, now: i64) -> String {
    let (id, mut rx) = join_new(groups, group, now);
    assert_eq!(rx.try_recv().unwrap().generation, 1);
    let synced = arrived(groups.sync_group(group, sync_request(&id, 1, &[(&id, "assigned")]), now));
    assert_eq!(synced.error, ErrorCode::NONE);
    id
}

pub(super) fn state(groups: &GroupCoordinator, group: &str) -> Option<&'static str> {
    groups
        .with_group(group, |g| g.map(|g| g.state_name()))
        .unwrap()
}

#[test]
fn admin_commit_creates_the_group_and_fetch_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;

    let results = groups
        .commit_offsets(
            "g",
            &admin(),
            vec![offset("t", 0, 42, "checkpoint"), offset("t", 2, 7, "")],
            T0,
        )
        .unwrap();
    assert_eq!(
        results,
        [
            (("t".to_string(), 0), ErrorCode::NONE),
            (("t".to_string(), 2), ErrorCode::NONE)
        ]
    );
    assert_eq!(state(groups, "g"), Some("Empty"));

    let c = committed(groups, "g", "t", 0).expect("committed");
    assert_eq!(
        (c.offset, c.leader_epoch, c.metadata.as_str()),
        (42, 7, "checkpoint")
    );
    assert_eq!(c.commit_timestamp, T0);
    assert_eq!(committed(groups, "g", "t", 1), None, "never committed");
    let all = groups.fetch_offsets("g", None, None, false).unwrap();
    let keys: Vec<_> = all
        .iter()
        .map(|(k, v)| (k.1, v.as_ref().unwrap().as_ref().unwrap().offset))
        .collect();
    assert_eq!(keys, [(0, 42), (2, 7)]);
    assert_eq!(
        committed(groups, "nobody", "t", 0),
        None,
        "unknown group: nothing"
    );

    // A later commit replaces the earlier one.
    groups
        .commit_offsets("g", &admin(), vec![offset("t", 0, 50, "later")], T0 + 1)
        .unwrap();
    let c = committed(groups, "g", "t", 0).unwrap();
    assert_eq!((c.offset, c.metadata.as_str()), (50, "later"));
}

#[test]
fn bad_commits_are_refused_per_partition_or_whole() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;

    let too_long = "x".repeat(node.config.offset_metadata_max_bytes + 1);
    let results = groups
        .commit_offsets(
            "g",
            &admin(),
            vec![
                offset("t", 0, 1, "fine"),
                offset("missing", 0, 1, ""),
                offset("t", 3, 1, ""),
                offset("t", 1, 1, &too_long),
            ],
            T0,
        )
        .unwrap();
    let errors: Vec<ErrorCode> = results.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        errors,
        [
            ErrorCode::NONE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::OFFSET_METADATA_TOO_LARGE
        ]
    );
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(1));
    assert_eq!(committed_offset(groups, "g", "t", 1), None);
    assert_eq!(committed_offset(groups, "g", "missing", 0), None);
    let exact = "x".repeat(node.config.offset_metadata_max_bytes);
    groups
        .commit_offsets("g", &admin(), vec![offset("t", 1, 1, &exact)], T0)
        .unwrap();
    assert_eq!(
        committed_offset(groups, "g", "t", 1),
        Some(1),
        "the limit itself is fine"
    );

    // A member's commit into a group that does not exist.
    let refused = groups.commit_offsets("ghost", &member("m", 1), vec![offset("t", 0, 1, "")], T0);
    assert!(
        matches!(
            refused,
            Err(ErrorCode::ILLEGAL_GENERATION | ErrorCode::GROUP_ID_NOT_FOUND)
        ),
        "{refused:?}"
    );
    assert!(!exists(groups, "ghost"), "no group is created");
    assert_eq!(
        groups.commit_offsets("", &admin(), vec![offset("t", 0, 1, "")], T0),
        Err(ErrorCode::INVALID_GROUP_ID)
    );
}

#[test]
fn stale_generation_commit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    let a = group_of_one(groups, "g", T0);
    let ok = groups.commit_offsets("g", &member(&a, 1), vec![offset("t", 0, 10, "")], T0);
    assert_eq!(ok.unwrap()[0].1, ErrorCode::NONE);

    // A second member: generation 2.
    let (b, mut b_join) = join_new(groups, "g", T0 + 100);
    let mut a_join = parked(groups.join_group("g", join_request(&a, None), T0 + 200));
    assert_eq!(a_join.try_recv().unwrap().generation, 2);
    assert_eq!(b_join.try_recv().unwrap().generation, 2);
    assert_eq!(
        groups.commit_offsets("g", &member(&a, 2), vec![offset("t", 0, 15, "")], T0 + 250),
        Err(ErrorCode::REBALANCE_IN_PROGRESS),
        "no commits while the assignment is being made"
    );
    arrived(groups.sync_group("g", sync_request(&a, 2, &[(&a, "x"), (&b, "y")]), T0 + 300));

    assert_eq!(
        groups.commit_offsets("g", &member(&a, 1), vec![offset("t", 0, 20, "")], T0 + 400),
        Err(ErrorCode::ILLEGAL_GENERATION)
    );
    assert_eq!(
        groups.commit_offsets(
            "g",
            &member("client-ghost", 2),
            vec![offset("t", 0, 20, "")],
            T0 + 400
        ),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        groups.commit_offsets("g", &admin(), vec![offset("t", 0, 20, "")], T0 + 400),
        Err(ErrorCode::UNKNOWN_MEMBER_ID),
        "no admin commits into a group with members"
    );
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(10));

    let ok = groups.commit_offsets("g", &member(&b, 2), vec![offset("t", 0, 20, "")], T0 + 500);
    assert_eq!(ok.unwrap()[0].1, ErrorCode::NONE);
    assert_eq!(committed_offset(groups, "g", "t", 0), Some(20));
}

#[test]
fn delete_group_needs_an_empty_existing_group() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    let member_id = group_of_one(groups, "busy", T0);
    assert_eq!(groups.delete_group("busy", T0), ErrorCode::NON_EMPTY_GROUP);
    assert_eq!(
        groups.delete_group("nobody", T0),
        ErrorCode::GROUP_ID_NOT_FOUND
    );
    assert_eq!(
        groups.heartbeat("busy", &member_id, None, 1, T0),
        ErrorCode::NONE
    );

    groups
        .commit_offsets("idle", &admin(), vec![offset("t", 0, 5, "")], T0)
        .unwrap();
    assert_eq!(groups.delete_group("idle", T0), ErrorCode::NONE);
    assert!(!exists(groups, "idle"));
    assert_eq!(committed_offset(groups, "idle", "t", 0), None);
    assert_eq!(
        groups.delete_group("idle", T0),
        ErrorCode::GROUP_ID_NOT_FOUND
    );

    assert_eq!(
        groups.leave_group("busy", &[(member_id, None)], T0),
        [ErrorCode::NONE]
    );
    assert_eq!(
        groups.delete_group("busy", T0),
        ErrorCode::NONE,
        "empty now"
    );
}

#[test]
fn offsets_groups_deletions_and_offset_deletes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    {
        let groups = &node.groups;
        groups
            .commit_offsets(
                "offsets-only",
                &admin(),
                vec![offset("t", 0, 11, "m0"), offset("t", 1, 12, "m1")],
                T0,
            )
            .unwrap();
        let id = group_of_one(groups, "classic", T0);
        assert_eq!(
            groups.heartbeat("classic", &id, None, 1, T0),
            ErrorCode::NONE
        );
        groups
            .commit_offsets("classic", &member(&id, 1), vec![offset("t", 2, 99, "")], T0)
            .unwrap();
        groups
            .commit_offsets("deleted", &admin(), vec![offset("t", 0, 1, "")], T0)
            .unwrap();
        assert_eq!(groups.delete_group("deleted", T0), ErrorCode::NONE);
        groups
            .commit_offsets(
                "pruned",
                &admin(),
                vec![offset("t", 0, 1, ""), offset("t", 1, 2, "")],
                T0,
            )
            .unwrap();
        let deleted = groups
            .delete_offsets("pruned", vec![("t".to_string(), 0)], T0)
            .unwrap();
        assert_eq!(deleted, [(("t".to_string(), 0), ErrorCode::NONE)]);
    }
    let classic_member = node
        .groups
        .with_group("classic", |g| match &g.unwrap().kind {
            GroupKind::Classic(c) => c.members.keys().next().unwrap().clone(),
            GroupKind::Consumer(_) => panic!("a classic group"),
        })
        .unwrap();

    let node = node.restart(T0 + 1_000);
    let groups = &node.groups;
    let c = committed(groups, "offsets-only", "t", 0).expect("survived");
    assert_eq!(
        (c.offset, c.leader_epoch, c.metadata.as_str()),
        (11, 7, "m0")
    );
    assert_eq!(committed_offset(groups, "offsets-only", "t", 1), Some(12));
    assert_eq!(committed_offset(groups, "classic", "t", 2), Some(99));

    groups
        .with_group("classic", |g| {
            let GroupKind::Classic(c) = &g.expect("the classic group is back").kind else {
                panic!("a classic group");
            };
            assert_eq!(c.state(), ClassicState::Stable);
            assert_eq!(c.generation, 1);
            assert_eq!(c.leader.as_deref(), Some(classic_member.as_str()));
            assert_eq!(c.protocol.as_deref(), Some("range"));
            let m = &c.members[&classic_member];
            assert_eq!(m.assignment, Bytes::from_static(b"assigned"));
            assert_eq!(m.session_timeout_ms, SESSION_MS);
        })
        .unwrap();
    assert_eq!(
        groups.heartbeat("classic", &classic_member, None, 1, T0 + 2_000),
        ErrorCode::NONE,
        "the member carries on after the restart"
    );
    let synced =
        arrived(groups.sync_group("classic", sync_request(&classic_member, 1, &[]), T0 + 2_000));
    assert_eq!(synced.assignment, Bytes::from_static(b"assigned"));

    assert!(!exists(groups, "deleted"), "a deleted group stays deleted");
    assert_eq!(committed_offset(groups, "deleted", "t", 0), None);
    assert_eq!(
        committed_offset(groups, "pruned", "t", 0),
        None,
        "the tombstone holds"
    );
    assert_eq!(committed_offset(groups, "pruned", "t", 1), Some(2));

    // And again, with nothing new in between.
    let node = node.restart(T0 + 3_000);
    assert_eq!(committed_offset(&node.groups, "pruned", "t", 0), None);
    assert_eq!(
        committed_offset(&node.groups, "offsets-only", "t", 1),
        Some(12)
    );
    assert!(!exists(&node.groups, "deleted"));
}

#[test]
fn group_emptied_by_expiry_is_empty_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let id = group_of_one(&node.groups, "g", T0);
    node.groups.tick(T0 + i64::from(SESSION_MS));
    assert_eq!(state(&node.groups, "g"), Some("Empty"));
    let node = node.restart(T0 + 40_000);
    assert_eq!(state(&node.groups, "g"), Some("Empty"));
    assert_eq!(
        node.groups.heartbeat("g", &id, None, 1, T0 + 40_000),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn consumer_group_members_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let joined = node.groups.consumer_heartbeat(
        "cg",
        HeartbeatRequest {
            member_id: "m".to_string(),
            member_epoch: 0,
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(vec!["t".to_string()]),
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            ..HeartbeatRequest::default()
        },
        T0,
    );
    assert_eq!(joined.error, ErrorCode::NONE);
    let owned = joined.assignment.clone().expect("assigned");
    assert_eq!(owned.values().map(|p| p.len()).sum::<usize>(), 3);

    let node = node.restart(T0 + 1_000);
    let again = node.groups.consumer_heartbeat(
        "cg",
        HeartbeatRequest {
            member_id: "m".to_string(),
            member_epoch: joined.member_epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            ..HeartbeatRequest::default()
        },
        T0 + 1_000,
    );
    assert_eq!(again.error, ErrorCode::NONE);
    assert!(again.member_epoch >= joined.member_epoch);
    node.groups
        .with_group("cg", |g| {
            let GroupKind::Consumer(c) = &g.expect("the consumer group is back").kind else {
                panic!("a consumer group");
            };
            assert_eq!(c.members["m"].assigned, owned);
        })
        .unwrap();
}

/// Kafka writes the group when a static member's restart replaces its member id (even with
/// no rebalance), so the new id is the one a reloaded coordinator knows.
#[test]
fn replaced_static_member_id_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let groups = &node.groups;
    let first = arrived(groups.join_group("g", join_request("", Some("instance-1")), T0));
    assert_eq!(first.generation, 1);
    arrived(groups.sync_group(
        "g",
        sync_request(&first.member_id, 1, &[(&first.member_id, "mine")]),
        T0,
    ));
    let second = answered(groups.join_group("g", join_request("", Some("instance-1")), T0 + 100));
    assert_eq!((second.error, second.generation), (ErrorCode::NONE, 1));
    assert_ne!(second.member_id, first.member_id);

    let node = node.restart(T0 + 1_000);
    assert_eq!(
        node.groups
            .heartbeat("g", &second.member_id, Some("instance-1"), 1, T0 + 1_000),
        ErrorCode::NONE,
        "the new member id was written"
    );
    assert_eq!(
        node.groups
            .heartbeat("g", &first.member_id, Some("instance-1"), 1, T0 + 1_000),
        ErrorCode::FENCED_INSTANCE_ID,
        "the old one stays fenced"
    );
}

#[test]
fn offsets_expire_only_for_groups_empty_longer_than_retention() {
    const RETENTION: i64 = 60_000;
    let config = GroupConfig {
        offsets_retention_ms: RETENTION,
        offsets_retention_check_interval_ms: 1_000,
        ..group_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), config);
    let groups = &node.groups;

    // Never had members: retention counts from the commit.
    groups
        .commit_offsets("idle", &admin(), vec![offset("t", 0, 1, "")], T0)
        .unwrap();
    // Has a live member: its offsets stay, however old.
    let busy = group_of_one(groups, "busy", T0);
    groups
        .commit_offsets("busy", &member(&busy, 1), vec![offset("t", 0, 2, "")], T0)
        .unwrap();
    // Had a member until T0 + 10s: retention counts from when it became empty (KIP-211).
    let gone = group_of_one(groups, "left", T0);
    groups
        .commit_offsets("left", &member(&gone, 1), vec![offset("t", 1, 3, "")], T0)
        .unwrap();
    assert_eq!(
        groups.leave_group("left", &[(gone, None)], T0 + 10_000),
        [ErrorCode::NONE]
    );

    let tick = |now: i64| {
        assert_eq!(
            groups.heartbeat("busy", &busy, None, 1, now),
            ErrorCode::NONE
        );
        groups.tick(now);
    };
    // Expiry runs at most once per offsets.retention.check.interval.ms: ticks are 1s apart.
    tick(T0 + RETENTION - 1_000);
    assert_eq!(committed_offset(groups, "idle", "t", 0), Some(1), "not yet");

    tick(T0 + RETENTION);
    assert_eq!(committed_offset(groups, "idle", "t", 0), None);
    assert!(
        !exists(groups, "idle"),
        "a group left with nothing is deleted"
    );
    assert_eq!(
        committed_offset(groups, "left", "t", 1),
        Some(3),
        "empty for 50s only"
    );

    tick(T0 + 10_000 + RETENTION);
    assert_eq!(committed_offset(groups, "left", "t", 1), None);
    assert!(!exists(groups, "left"));

    tick(T0 + 100 * RETENTION);
    assert_eq!(committed_offset(groups, "busy", "t", 0), Some(2));
    assert_eq!(state(groups, "busy"), Some("Stable"));

    let node = node.restart(T0 + 100 * RETENTION + 1);
    assert!(!exists(&node.groups, "idle"), "expiry is written");
    assert!(!exists(&node.groups, "left"));
    assert_eq!(committed_offset(&node.groups, "busy", "t", 0), Some(2));
}

/// A ConsumerGroupHeartbeat refused before the member joins leaves no group behind: the
/// group id stays free for a classic group and ListGroups does not show it.
#[test]
fn refused_first_consumer_join_leaves_no_group() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), group_config());
    let refused = node.groups.consumer_heartbeat(
        "cg",
        HeartbeatRequest {
            member_id: "m".to_string(),
            member_epoch: 0,
            subscribed_topic_names: Some(vec!["t".to_string()]),
            server_assignor: Some("sticky".to_string()),
            ..HeartbeatRequest::default()
        },
        T0,
    );
    assert_eq!(refused.error, ErrorCode::UNSUPPORTED_ASSIGNOR);
    assert!(!exists(&node.groups, "cg"));
    let first = answered(node.groups.join_group("cg", join_request("", None), T0));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
}

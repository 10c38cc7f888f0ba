//! [`ConsumerGroup`] on its own (KIP-848): member epochs, the server assignor, reconciliation
//! that revokes before it assigns, expiry, fencing, and the records that rebuild the group.
//! One topic, "orders", with 6 partitions; time is explicit `now` values in milliseconds.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::ErrorCode;
use uuid::Uuid;

use crate::group::consumer::{
    ConsumerGroup, ConsumerLimits, HeartbeatRequest, HeartbeatResult, LEAVE_EPOCH, MemberState,
    TopicPartitions, TopicView,
};
use crate::group::records::CoordinatorRecord;

const GROUP: &str = "g";
const ORDERS: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
const SESSION_MS: i32 = 45_000;

fn topics() -> TopicView {
    BTreeMap::from([("orders".to_string(), (ORDERS, 6))])
}

fn limits() -> ConsumerLimits {
    ConsumerLimits {
        session_timeout_ms: SESSION_MS,
        max_size: 100,
        assignors: vec!["uniform".to_string(), "range".to_string()],
    }
}

/// Partitions of "orders".
fn parts(partitions: impl IntoIterator<Item = i32>) -> TopicPartitions {
    let set: BTreeSet<i32> = partitions.into_iter().collect();
    if set.is_empty() {
        TopicPartitions::new()
    } else {
        BTreeMap::from([(ORDERS, set)])
    }
}

fn count(p: &TopicPartitions) -> usize {
    p.values().map(BTreeSet::len).sum()
}

fn join_request(member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec!["orders".to_string()]),
        owned: Some(TopicPartitions::new()),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        ..HeartbeatRequest::default()
    }
}

/// A steady heartbeat: nothing changed but the partitions the member reports owning.
fn heartbeat_request(member_id: &str, epoch: i32, owned: TopicPartitions) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        ..HeartbeatRequest::default()
    }
}

/// A group and every record it asked to write, in order.
struct Harness {
    group: ConsumerGroup,
    records: Vec<CoordinatorRecord>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            group: ConsumerGroup::new(0),
            records: Vec::new(),
        }
    }

    fn send(&mut self, request: HeartbeatRequest, now: i64) -> HeartbeatResult {
        let (result, records) = self
            .group
            .heartbeat(GROUP, request, &topics(), &limits(), now);
        self.records.extend(records);
        self.assert_no_partition_owned_twice();
        result
    }

    fn tick(&mut self, now: i64) {
        let records = self.group.tick(GROUP, &topics(), &limits(), now);
        self.records.extend(records);
        self.assert_no_partition_owned_twice();
    }

    /// A partition a member owns (or is still giving up) is in no other member's `assigned`.
    fn assert_no_partition_owned_twice(&self) {
        for a in self.group.members.values() {
            for b in self.group.members.values() {
                if a.member_id == b.member_id {
                    continue;
                }
                for (topic, owned) in a.assigned.iter().chain(&a.pending_revocation) {
                    if let Some(other) = b.assigned.get(topic) {
                        assert!(
                            owned.is_disjoint(other),
                            "{} and {} both hold {:?}",
                            a.member_id,
                            b.member_id,
                            owned.intersection(other).collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
    }

    /// Both members reconciled: "a" holds 3, "b" holds 3. Returns their epochs.
    fn two_reconciled_members(&mut self) -> (i32, i32) {
        let a = self.send(join_request("a"), 0);
        let b = self.send(join_request("b"), 100);
        let a_owned = self.group.members["a"].assigned.clone();
        let a = self.send(heartbeat_request("a", a.member_epoch, a_owned.clone()), 200);
        let a_kept = a.assignment.expect("a is told what to keep");
        let a = self.send(heartbeat_request("a", a.member_epoch, a_kept), 300);
        let b = self.send(heartbeat_request("b", b.member_epoch, parts([])), 400);
        assert_eq!(count(&self.group.members["a"].assigned), 3);
        assert_eq!(count(&self.group.members["b"].assigned), 3);
        (a.member_epoch, b.member_epoch)
    }
}

/// A fresh group rebuilt from `records` as the coordinator does on load.
fn replayed(records: &[CoordinatorRecord]) -> ConsumerGroup {
    let mut group = ConsumerGroup::new(0);
    for record in records {
        group.replay(record, 1_000_000, &limits());
    }
    group.finish_load();
    group
}

fn assert_same_members(live: &ConsumerGroup, loaded: &ConsumerGroup) {
    let ids = |g: &ConsumerGroup| g.members.keys().cloned().collect::<Vec<_>>();
    assert_eq!(ids(live), ids(loaded));
    for (id, m) in &live.members {
        let l = &loaded.members[id];
        assert_eq!(l.member_epoch, m.member_epoch, "{id}'s epoch");
        assert_eq!(l.previous_member_epoch, m.previous_member_epoch, "{id}");
        assert_eq!(l.state, m.state, "{id}'s state");
        assert_eq!(l.assigned, m.assigned, "{id}'s assignment");
        assert_eq!(
            l.pending_revocation, m.pending_revocation,
            "{id}'s revocations"
        );
        assert_eq!(l.subscribed_topic_names, m.subscribed_topic_names, "{id}");
        assert_eq!(l.rebalance_timeout_ms, m.rebalance_timeout_ms, "{id}");
        assert_eq!(l.client_id, m.client_id, "{id}");
    }
    assert!(loaded.group_epoch >= live.group_epoch);
}

#[test]
fn partitions_move_only_after_their_owner_revokes_them() {
    let mut h = Harness::new();

    let a = h.send(join_request("a"), 0);
    assert_eq!(a.error, ErrorCode::NONE);
    assert!(a.member_epoch >= 1);
    assert_eq!(a.assignment, Some(parts(0..6)), "alone, it gets everything");
    let a_epoch = a.member_epoch;

    let b = h.send(join_request("b"), 100);
    assert_eq!(b.error, ErrorCode::NONE);
    assert!(b.member_epoch > a_epoch, "a join bumps the group epoch");
    assert_eq!(
        b.assignment,
        Some(parts([])),
        "everything is still owned by a"
    );
    assert_eq!(
        h.group.members["b"].state,
        MemberState::UnreleasedPartitions
    );

    // a is told to give up half; it keeps its epoch until it has.
    let a = h.send(heartbeat_request("a", a_epoch, parts(0..6)), 200);
    assert_eq!(a.error, ErrorCode::NONE);
    assert_eq!(a.member_epoch, a_epoch);
    let a_kept = a.assignment.expect("the shrunk assignment");
    assert_eq!(count(&a_kept), 3);
    let a_member = &h.group.members["a"];
    assert_eq!(a_member.state, MemberState::UnrevokedPartitions);
    assert_eq!(count(&a_member.pending_revocation), 3);
    let released: TopicPartitions = a_member.pending_revocation.clone();

    // Until then b gets nothing, however often it asks.
    let b2 = h.send(heartbeat_request("b", b.member_epoch, parts([])), 250);
    assert_eq!(b2.error, ErrorCode::NONE);
    assert_eq!(count(&h.group.members["b"].assigned), 0);
    assert!(b2.assignment.is_none_or(|p| p.is_empty()));
    // Nor does a's epoch move while it still reports the revoked partitions.
    let a_again = h.send(heartbeat_request("a", a_epoch, parts(0..6)), 260);
    assert_eq!(a_again.member_epoch, a_epoch);

    // a reports owning only what it kept: its epoch advances.
    let a = h.send(heartbeat_request("a", a_epoch, a_kept.clone()), 300);
    assert_eq!(a.error, ErrorCode::NONE);
    assert!(a.member_epoch > a_epoch);
    assert_eq!(h.group.members["a"].assigned, a_kept);
    assert_eq!(h.group.members["a"].state, MemberState::Stable);

    // b now receives the released partitions.
    let b = h.send(heartbeat_request("b", b.member_epoch, parts([])), 400);
    assert_eq!(b.error, ErrorCode::NONE);
    assert_eq!(b.assignment, Some(released.clone()));
    assert_eq!(h.group.members["b"].state, MemberState::Stable);
    assert_eq!(b.member_epoch, a.member_epoch);
    assert_eq!(h.group.state_name(), "Stable");

    let mut all = a_kept;
    all.entry(ORDERS)
        .or_default()
        .extend(released.get(&ORDERS).into_iter().flatten());
    assert_eq!(all, parts(0..6), "every partition has exactly one owner");
}

#[test]
fn leaving_member_hands_its_partitions_to_the_rest() {
    let mut h = Harness::new();
    let (a_epoch, b_epoch) = h.two_reconciled_members();

    let left = h.send(heartbeat_request("b", LEAVE_EPOCH, parts([])), 1_000);
    assert_eq!(left.error, ErrorCode::NONE);
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    assert!(!h.group.members.contains_key("b"));
    let a_owned = h.group.members["a"].assigned.clone();

    let a = h.send(heartbeat_request("a", a_epoch, a_owned), 1_100);
    assert_eq!(a.error, ErrorCode::NONE);
    assert!(a.member_epoch > a_epoch.max(b_epoch));
    assert_eq!(a.assignment, Some(parts(0..6)));
    assert_eq!(
        h.send(heartbeat_request("b", b_epoch, parts([])), 1_200)
            .error,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn silent_member_is_removed_when_its_session_expires() {
    let mut h = Harness::new();
    let (a_epoch, _) = h.two_reconciled_members();
    // b last heartbeated at 400; a keeps going.
    let a_owned = h.group.members["a"].assigned.clone();
    h.send(heartbeat_request("a", a_epoch, a_owned.clone()), 30_000);
    h.tick(45_399);
    assert_eq!(h.group.members.len(), 2);
    let before = h.records.len();
    h.tick(45_400);
    assert!(!h.group.members.contains_key("b"));
    assert!(
        h.records[before..].iter().any(|r| matches!(
            r,
            CoordinatorRecord::ConsumerGroupMember { member_id, value: None, .. } if member_id == "b"
        )),
        "the expiry is written"
    );
    let a = h.send(heartbeat_request("a", a_epoch, a_owned), 46_000);
    assert_eq!(a.assignment, Some(parts(0..6)));
    assert!(h.group.members.contains_key("a"));
}

#[test]
fn wrong_epoch_is_fenced_and_unknown_member_refused() {
    let mut h = Harness::new();
    let a = h.send(join_request("a"), 0);
    let owned = a.assignment.clone().expect("assigned");

    let fenced = h.send(
        heartbeat_request("a", a.member_epoch + 5, owned.clone()),
        100,
    );
    assert_eq!(fenced.error, ErrorCode::FENCED_MEMBER_EPOCH);
    let fenced = h.send(
        heartbeat_request("a", a.member_epoch - 1, owned.clone()),
        100,
    );
    assert_eq!(fenced.error, ErrorCode::FENCED_MEMBER_EPOCH);

    let unknown = h.send(heartbeat_request("ghost", a.member_epoch, parts([])), 100);
    assert_eq!(unknown.error, ErrorCode::UNKNOWN_MEMBER_ID);
    let unknown = h.send(heartbeat_request("ghost", LEAVE_EPOCH, parts([])), 100);
    assert_eq!(unknown.error, ErrorCode::UNKNOWN_MEMBER_ID);

    let ok = h.send(heartbeat_request("a", a.member_epoch, owned), 200);
    assert_eq!(ok.error, ErrorCode::NONE, "the member is unharmed");
}

#[test]
fn invalid_joins_are_refused() {
    let mut h = Harness::new();
    let unsupported = h.send(
        HeartbeatRequest {
            server_assignor: Some("sticky".to_string()),
            ..join_request("a")
        },
        0,
    );
    assert_eq!(unsupported.error, ErrorCode::UNSUPPORTED_ASSIGNOR);

    let unsubscribed = h.send(
        HeartbeatRequest {
            subscribed_topic_names: None,
            subscribed_regex: None,
            ..join_request("b")
        },
        0,
    );
    assert_eq!(unsubscribed.error, ErrorCode::INVALID_REQUEST);
    assert!(!h.group.members.contains_key("b"));

    let ranged = h.send(
        HeartbeatRequest {
            server_assignor: Some("range".to_string()),
            ..join_request("c")
        },
        0,
    );
    assert_eq!(
        ranged.error,
        ErrorCode::NONE,
        "a configured assignor is fine"
    );
    assert_eq!(h.group.assignor_name, "range");
}

/// Kafka validates a ConsumerGroupHeartbeat before it touches the group: a join refused for
/// its assignor (or its regex) adds no member.
#[test]
fn refused_join_leaves_no_member_behind() {
    let mut h = Harness::new();
    let refused = h.send(
        HeartbeatRequest {
            server_assignor: Some("sticky".to_string()),
            ..join_request("a")
        },
        0,
    );
    assert_eq!(refused.error, ErrorCode::UNSUPPORTED_ASSIGNOR);
    let refused = h.send(
        HeartbeatRequest {
            subscribed_topic_names: None,
            subscribed_regex: Some("(".to_string()),
            ..join_request("b")
        },
        0,
    );
    assert_eq!(refused.error, ErrorCode::INVALID_REGULAR_EXPRESSION);
    assert!(h.group.members.is_empty(), "{:?}", h.group.members.keys());
    assert_eq!(h.group.state_name(), "Empty");
}

#[test]
fn check_epoch_tells_stale_from_fenced() {
    let mut h = Harness::new();
    let epoch = h.send(join_request("a"), 0).member_epoch;
    assert_eq!(h.group.check_epoch("a", epoch), Ok(()));
    assert_eq!(
        h.group.check_epoch("a", epoch - 1),
        Err(ErrorCode::STALE_MEMBER_EPOCH)
    );
    assert_eq!(
        h.group.check_epoch("a", epoch + 1),
        Err(ErrorCode::FENCED_MEMBER_EPOCH)
    );
    assert_eq!(
        h.group.check_epoch("ghost", epoch),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn replayed_records_rebuild_members_epochs_and_assignments() {
    let mut h = Harness::new();
    let a = h.send(join_request("a"), 0);
    h.send(join_request("b"), 100);
    let a = h.send(heartbeat_request("a", a.member_epoch, parts(0..6)), 200);

    // Mid-reconciliation: a is still giving up partitions, b waits for them.
    let loaded = replayed(&h.records);
    assert_same_members(&h.group, &loaded);
    assert_eq!(loaded.members["a"].state, MemberState::UnrevokedPartitions);

    let kept = a.assignment.expect("shrunk");
    let a = h.send(heartbeat_request("a", a.member_epoch, kept.clone()), 300);
    let b_epoch = h.group.members["b"].member_epoch;
    h.send(heartbeat_request("b", b_epoch, parts([])), 400);
    h.send(join_request("c"), 500);
    h.send(heartbeat_request("c", -1, parts([])), 600);

    // Reconciled, with a member that came and left.
    let mut loaded = replayed(&h.records);
    assert_same_members(&h.group, &loaded);
    assert!(!loaded.members.contains_key("c"));

    // The reloaded group accepts a's epoch.
    let (resumed, _) = loaded.heartbeat(
        GROUP,
        heartbeat_request("a", a.member_epoch, kept),
        &topics(),
        &limits(),
        1_000_100,
    );
    assert_eq!(resumed.error, ErrorCode::NONE);
}

/// Kafka stores the target assignment (ConsumerGroupTargetAssignment* records), so a
/// coordinator that reloads a Stable group keeps every partition where it is. Gregor
/// recomputes the target on load; it must then start from what members own, or a restart
/// moves partitions for nothing.
#[test]
fn reloaded_stable_group_keeps_its_assignment() {
    let mut h = Harness::new();
    let (a_epoch, b_epoch) = h.two_reconciled_members();
    let before: Vec<_> = h
        .group
        .members
        .values()
        .map(|m| (m.member_id.clone(), m.assigned.clone()))
        .collect();
    let mut loaded = replayed(&h.records);
    for (id, epoch) in [("a", a_epoch), ("b", b_epoch)] {
        let owned = loaded.members[id].assigned.clone();
        let (result, _) = loaded.heartbeat(
            GROUP,
            heartbeat_request(id, epoch, owned),
            &topics(),
            &limits(),
            1_000_100,
        );
        assert_eq!(result.error, ErrorCode::NONE);
        assert!(
            loaded.members[id].pending_revocation.is_empty(),
            "{id} must revoke nothing"
        );
    }
    let after: Vec<_> = loaded
        .members
        .values()
        .map(|m| (m.member_id.clone(), m.assigned.clone()))
        .collect();
    assert_eq!(before, after);
}

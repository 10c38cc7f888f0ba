//! [`ClassicGroup`] on its own: Kafka's JoinGroup/SyncGroup/Heartbeat/LeaveGroup state
//! machine, with every deadline driven by explicit `now` values (milliseconds) and parked
//! answers checked with `try_recv`.

use bytes::Bytes;
use gregor_protocol::ErrorCode;
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::group::classic::{
    ClassicGroup, ClassicLimits, ClassicState, JoinRequest, JoinResult, Reply, SyncOutcome,
    SyncRequest, SyncResult,
};
use crate::group::records::GroupMetadataValue;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn limits() -> ClassicLimits {
    ClassicLimits {
        initial_rebalance_delay_ms: 0,
        max_size: 100,
    }
}

fn delayed(initial_rebalance_delay_ms: i64) -> ClassicLimits {
    ClassicLimits {
        initial_rebalance_delay_ms,
        ..limits()
    }
}

/// A JoinGroup v4+ from a consumer supporting only the "range" assignor, with `meta` as its
/// subscription.
fn join_request(member_id: &str, meta: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from(meta.to_string()))],
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

/// The same from a static member (`group.instance.id`).
fn static_request(member_id: &str, instance: &str, meta: &str) -> JoinRequest {
    JoinRequest {
        instance_id: Some(instance.to_string()),
        ..join_request(member_id, meta)
    }
}

fn sync_request(member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".to_string()),
        protocol_name: Some("range".to_string()),
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

fn answered<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(_) => panic!("expected an immediate answer, got a parked one"),
    }
}

fn parked<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a parked answer, got an immediate one"),
    }
}

fn arrived<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv()
        .expect("the parked answer should have arrived")
}

fn still_parked<T>(rx: &mut oneshot::Receiver<T>) {
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "the answer should still be parked"
    );
}

/// A SyncGroup that must be answered at once.
fn sync_now(outcome: SyncOutcome) -> SyncResult {
    match outcome {
        SyncOutcome::Reply(reply) => answered(reply),
        SyncOutcome::Persist(..) => panic!("expected an answer, got a record to persist"),
    }
}

/// A follower's SyncGroup, parked until the leader's.
fn sync_parked(outcome: SyncOutcome) -> oneshot::Receiver<SyncResult> {
    match outcome {
        SyncOutcome::Reply(reply) => parked(reply),
        SyncOutcome::Persist(..) => panic!("a follower's sync must not persist"),
    }
}

/// The leader's SyncGroup: the record to write and the leader's parked answer.
fn sync_persist(outcome: SyncOutcome) -> (GroupMetadataValue, oneshot::Receiver<SyncResult>) {
    match outcome {
        SyncOutcome::Persist(record, rx) => (record, rx),
        SyncOutcome::Reply(_) => panic!("the leader's sync should ask to persist the assignment"),
    }
}

/// A new dynamic member: JoinGroup v4+ gets MEMBER_ID_REQUIRED, the rejoin with the given id
/// is parked. Returns the member id and the parked JoinGroup.
fn join_new(
    group: &mut ClassicGroup,
    meta: &str,
    now: i64,
) -> (String, oneshot::Receiver<JoinResult>) {
    let first = answered(group.join(join_request("", meta), limits(), now));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty());
    let rx = parked(group.join(join_request(&first.member_id, meta), limits(), now));
    (first.member_id, rx)
}

/// Leader's sync with `assignments`, written successfully: returns the leader's answer.
fn leader_sync(
    group: &mut ClassicGroup,
    leader: &str,
    generation: i32,
    assignments: &[(&str, &str)],
    now: i64,
) -> SyncResult {
    let (_, mut rx) = sync_persist(group.sync(sync_request(leader, generation, assignments), now));
    group.finish_sync(ErrorCode::NONE, limits(), now);
    arrived(&mut rx)
}

/// A Stable group of one dynamic member at generation 1 (assignment "a1").
fn stable_with_one(now: i64) -> (ClassicGroup, String) {
    let mut group = ClassicGroup::new(now);
    let (a, mut rx) = join_new(&mut group, "meta-a", now);
    assert_eq!(arrived(&mut rx).generation, 1);
    leader_sync(&mut group, &a, 1, &[(a.as_str(), "a1")], now);
    assert_eq!(group.state(), ClassicState::Stable);
    (group, a)
}

/// A Stable group of two dynamic members at generation 2: the leader `a` (assignment "a2")
/// and `b` (assignment "b2").
fn stable_with_two(now: i64) -> (ClassicGroup, String, String) {
    let (mut group, a) = stable_with_one(now);
    let (b, mut b_join) = join_new(&mut group, "meta-b", now);
    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), now));
    assert_eq!(arrived(&mut a_join).generation, 2);
    assert_eq!(arrived(&mut b_join).generation, 2);
    let mut b_sync = sync_parked(group.sync(sync_request(&b, 2, &[]), now));
    leader_sync(&mut group, &a, 2, &[(&a, "a2"), (&b, "b2")], now);
    assert_eq!(arrived(&mut b_sync).error, ErrorCode::NONE);
    assert_eq!(group.state(), ClassicState::Stable);
    (group, a, b)
}

#[test]
fn first_join_requires_member_id_then_completes_with_one_member() {
    let mut group = ClassicGroup::new(0);
    let first = answered(group.join(join_request("", "meta-a"), limits(), 0));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    assert!(
        first.member_id.starts_with("client-"),
        "{}",
        first.member_id
    );
    assert_eq!(
        group.state(),
        ClassicState::Empty,
        "a pending member is no rebalance yet"
    );

    let id = first.member_id;
    let mut rx = parked(group.join(join_request(&id, "meta-a"), limits(), 10));
    let joined = arrived(&mut rx);
    assert_eq!(joined.error, ErrorCode::NONE);
    assert_eq!(joined.generation, 1);
    assert_eq!(joined.leader, id);
    assert_eq!(joined.member_id, id);
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].member_id, id);
    assert_eq!(joined.members[0].metadata, Bytes::from_static(b"meta-a"));
    assert_eq!(group.state(), ClassicState::CompletingRebalance);

    let (record, mut sync) =
        sync_persist(group.sync(sync_request(&id, 1, &[(id.as_str(), "a1")]), 20));
    assert_eq!(record.generation, 1);
    assert_eq!(record.leader.as_deref(), Some(id.as_str()));
    assert_eq!(record.members.len(), 1);
    assert_eq!(record.members[0].assignment, Bytes::from_static(b"a1"));
    still_parked(&mut sync);
    assert_eq!(
        group.state(),
        ClassicState::CompletingRebalance,
        "not Stable before the assignment is written"
    );

    group.finish_sync(ErrorCode::NONE, limits(), 30);
    assert_eq!(group.state(), ClassicState::Stable);
    let synced = arrived(&mut sync);
    assert_eq!(synced.error, ErrorCode::NONE);
    assert_eq!(synced.assignment, Bytes::from_static(b"a1"));
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));
    assert_eq!(group.heartbeat(&id, None, 1, 40), ErrorCode::NONE);
}

#[test]
fn failed_assignment_write_sends_members_back_to_rejoin() {
    let mut group = ClassicGroup::new(0);
    let (a, mut rx) = join_new(&mut group, "meta-a", 0);
    arrived(&mut rx);
    let (_, mut sync) = sync_persist(group.sync(sync_request(&a, 1, &[(&a, "a1")]), 10));
    group.finish_sync(ErrorCode::COORDINATOR_NOT_AVAILABLE, limits(), 10);
    assert_eq!(
        arrived(&mut sync).error,
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    assert!(group.members[&a].assignment.is_empty());
}

#[test]
fn second_member_triggers_rebalance_and_follower_sync_waits_for_leader() {
    let (mut group, a) = stable_with_one(0);

    let (b, mut b_join) = join_new(&mut group, "meta-b", 100);
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    still_parked(&mut b_join);
    assert_eq!(
        group.heartbeat(&a, None, 1, 200),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        sync_now(group.sync(sync_request(&a, 1, &[]), 200)).error,
        ErrorCode::REBALANCE_IN_PROGRESS
    );

    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), 300));
    let leader = arrived(&mut a_join);
    let follower = arrived(&mut b_join);
    assert_eq!(group.state(), ClassicState::CompletingRebalance);
    assert_eq!((leader.generation, follower.generation), (2, 2));
    assert_eq!(leader.leader, a, "the previous leader stays leader");
    assert_eq!(follower.leader, a);
    let members: Vec<(&str, &[u8])> = leader
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.metadata.as_ref()))
        .collect();
    assert_eq!(
        members,
        [(a.as_str(), &b"meta-a"[..]), (b.as_str(), &b"meta-b"[..])]
    );
    assert!(
        follower.members.is_empty(),
        "only the leader gets the members"
    );

    let mut b_sync = sync_parked(group.sync(sync_request(&b, 2, &[]), 400));
    still_parked(&mut b_sync);
    // Heartbeats are fine while the leader computes the assignment.
    assert_eq!(group.heartbeat(&b, None, 2, 450), ErrorCode::NONE);

    let a_sync = leader_sync(&mut group, &a, 2, &[(&a, "a2"), (&b, "b2")], 500);
    assert_eq!(a_sync.assignment, Bytes::from_static(b"a2"));
    let b_synced = arrived(&mut b_sync);
    assert_eq!(b_synced.error, ErrorCode::NONE);
    assert_eq!(b_synced.assignment, Bytes::from_static(b"b2"));
    assert_eq!(group.state(), ClassicState::Stable);
    assert_eq!(group.heartbeat(&a, None, 2, 600), ErrorCode::NONE);
    assert_eq!(group.heartbeat(&b, None, 2, 600), ErrorCode::NONE);
}

#[test]
fn stale_generation_and_unknown_member_are_refused() {
    let (mut group, a, b) = stable_with_two(0);

    assert_eq!(
        group.heartbeat(&a, None, 1, 100),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        group.heartbeat(&b, None, 3, 100),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        sync_now(group.sync(sync_request(&b, 1, &[]), 100)).error,
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        group.heartbeat("client-ghost", None, 2, 100),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        sync_now(group.sync(sync_request("client-ghost", 2, &[]), 100)).error,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(group.check_member(&a, None), Ok(()));
    assert_eq!(
        group.check_member("client-ghost", None),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    // A known member id with a rejoin is handled; an unknown one is refused.
    let rejoin = answered(group.join(join_request("client-ghost", "x"), limits(), 100));
    assert_eq!(rejoin.error, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(group.state(), ClassicState::Stable, "nothing changed");
}

#[test]
fn static_member_with_another_member_id_is_fenced() {
    let mut group = ClassicGroup::new(0);
    let mut rx = parked(group.join(static_request("", "instance-1", "meta"), limits(), 0));
    let joined = arrived(&mut rx);
    assert_eq!(
        joined.generation, 1,
        "static members need no MEMBER_ID_REQUIRED"
    );
    let id = joined.member_id;
    leader_sync(&mut group, &id, 1, &[(&id, "s1")], 0);

    assert_eq!(
        group.heartbeat(&id, Some("instance-1"), 1, 100),
        ErrorCode::NONE
    );
    assert_eq!(
        group.heartbeat("client-other", Some("instance-1"), 1, 100),
        ErrorCode::FENCED_INSTANCE_ID
    );
    assert_eq!(
        group.check_member("client-other", Some("instance-1")),
        Err(ErrorCode::FENCED_INSTANCE_ID)
    );
    let mut sync = sync_request("client-other", 1, &[]);
    sync.instance_id = Some("instance-1".to_string());
    assert_eq!(
        sync_now(group.sync(sync, 100)).error,
        ErrorCode::FENCED_INSTANCE_ID
    );
    let rejoin = answered(group.join(
        static_request("client-other", "instance-1", "meta"),
        limits(),
        100,
    ));
    assert_eq!(rejoin.error, ErrorCode::FENCED_INSTANCE_ID);
    assert_eq!(
        group.leave("client-other", Some("instance-1"), limits(), 100),
        Err(ErrorCode::FENCED_INSTANCE_ID)
    );
    assert_eq!(group.state(), ClassicState::Stable);
}

#[test]
fn silent_member_expires_and_the_rest_rebalance() {
    let (mut group, a, b) = stable_with_two(0);
    // `a` keeps heartbeating, `b` is silent from 0 on.
    assert_eq!(group.heartbeat(&a, None, 2, 5_000), ErrorCode::NONE);
    assert!(!group.tick(limits(), 9_999));
    assert_eq!(group.members.len(), 2, "b's session has not expired yet");

    assert!(
        !group.tick(limits(), 10_000),
        "a member is left: nothing to persist"
    );
    assert!(!group.members.contains_key(&b));
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&a, None, 2, 10_100),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let mut rx = parked(group.join(join_request(&a, "meta-a"), limits(), 10_200));
    let joined = arrived(&mut rx);
    assert_eq!(joined.generation, 3);
    assert_eq!(joined.members.len(), 1);
    assert_eq!(
        group.heartbeat(&b, None, 2, 10_300),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn last_member_expiring_empties_the_group() {
    let (mut group, a) = stable_with_one(0);
    assert!(!group.tick(limits(), 9_999));
    assert!(
        group.tick(limits(), 10_000),
        "the group became Empty: its record must be written"
    );
    assert_eq!(group.state(), ClassicState::Empty);
    assert!(group.is_empty());
    assert_eq!(
        group.generation, 2,
        "emptying the group completes a generation"
    );
    assert_eq!(group.leader, None);
    assert!(group.to_record().members.is_empty());
    assert_eq!(
        group.heartbeat(&a, None, 1, 10_001),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert!(!group.tick(limits(), 20_000), "written once");
}

#[test]
fn member_leaving_makes_the_others_rebalance() {
    let (mut group, a, b) = stable_with_two(0);
    assert_eq!(group.leave(&a, None, limits(), 100), Ok(false));
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&b, None, 2, 200),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let mut rx = parked(group.join(join_request(&b, "meta-b"), limits(), 300));
    let joined = arrived(&mut rx);
    assert_eq!(joined.generation, 3);
    assert_eq!(
        joined.leader, b,
        "the leader left: a remaining member leads"
    );
    assert_eq!(joined.members.len(), 1);

    assert_eq!(group.leave(&b, None, limits(), 400), Ok(true), "now Empty");
    assert_eq!(group.state(), ClassicState::Empty);
}

#[test]
fn leave_by_instance_id_and_unknown_members() {
    let mut group = ClassicGroup::new(0);
    let mut s_rx = parked(group.join(static_request("", "instance-1", "meta"), limits(), 0));
    let s = arrived(&mut s_rx).member_id;
    leader_sync(&mut group, &s, 1, &[(&s, "s1")], 0);
    let (d, mut d_join) = join_new(&mut group, "meta", 100);
    let mut s_join = parked(group.join(static_request(&s, "instance-1", "meta"), limits(), 100));
    arrived(&mut s_join);
    arrived(&mut d_join);
    leader_sync(&mut group, &s, 2, &[(&s, "s2"), (&d, "d2")], 100);

    assert_eq!(
        group.leave("client-ghost", None, limits(), 200),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        group.leave("", Some("instance-unknown"), limits(), 200),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        group.state(),
        ClassicState::Stable,
        "failed leaves change nothing"
    );

    // LeaveGroup v3+: the member named by its instance id only.
    assert_eq!(
        group.leave("", Some("instance-1"), limits(), 300),
        Ok(false)
    );
    assert!(!group.members.contains_key(&s));
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    let mut rx = parked(group.join(join_request(&d, "meta"), limits(), 400));
    assert_eq!(arrived(&mut rx).generation, 3);
}

#[test]
fn static_member_restart_keeps_generation_and_fences_its_old_id() {
    let (mut group, a) = stable_with_one(0);
    let mut s_rx = parked(group.join(static_request("", "instance-1", "meta-s"), limits(), 100));
    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), 100));
    arrived(&mut a_join);
    let old = arrived(&mut s_rx);
    assert_eq!(old.generation, 2);
    let mut s_sync = sync_parked(group.sync(sync_request(&old.member_id, 2, &[]), 100));
    leader_sync(
        &mut group,
        &a,
        2,
        &[(&a, "a2"), (&old.member_id, "s2")],
        100,
    );
    assert_eq!(arrived(&mut s_sync).assignment, Bytes::from_static(b"s2"));

    // The static member's process restarts: no member id, same instance id and protocols.
    let rejoined = answered(group.join(static_request("", "instance-1", "meta-s"), limits(), 200));
    assert_eq!(rejoined.error, ErrorCode::NONE);
    assert_eq!(rejoined.generation, 2, "no rebalance");
    assert_ne!(rejoined.member_id, old.member_id);
    assert!(!rejoined.member_id.is_empty());
    assert_eq!(rejoined.leader, a);
    assert_eq!(group.state(), ClassicState::Stable);
    assert_eq!(group.generation, 2);

    let new = rejoined.member_id;
    assert_eq!(
        group.heartbeat(&old.member_id, Some("instance-1"), 2, 300),
        ErrorCode::FENCED_INSTANCE_ID
    );
    assert_eq!(
        group.heartbeat(&old.member_id, None, 2, 300),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        group.heartbeat(&new, Some("instance-1"), 2, 300),
        ErrorCode::NONE
    );
    assert_eq!(
        group.heartbeat(&a, None, 2, 300),
        ErrorCode::NONE,
        "others undisturbed"
    );
    let mut sync = sync_request(&new, 2, &[]);
    sync.instance_id = Some("instance-1".to_string());
    let synced = sync_now(group.sync(sync, 400));
    assert_eq!(synced.error, ErrorCode::NONE);
    assert_eq!(
        synced.assignment,
        Bytes::from_static(b"s2"),
        "its stored assignment"
    );
}

#[test]
fn static_member_restart_with_new_protocols_rebalances() {
    let mut group = ClassicGroup::new(0);
    let mut rx = parked(group.join(static_request("", "instance-1", "meta"), limits(), 0));
    let old = arrived(&mut rx).member_id;
    leader_sync(&mut group, &old, 1, &[(&old, "s1")], 0);
    let mut rx = parked(group.join(static_request("", "instance-1", "changed"), limits(), 100));
    let joined = arrived(&mut rx);
    assert_eq!(joined.generation, 2);
    assert_ne!(joined.member_id, old);
    assert_eq!(joined.leader, joined.member_id);
}

#[test]
fn initial_rebalance_delay_holds_the_first_join() {
    let limits = delayed(3_000);
    let mut group = ClassicGroup::new(0);
    let mut request = join_request("", "meta");
    request.rebalance_timeout_ms = 10_000;
    request.require_known_member_id = false;
    let mut rx = parked(group.join(request, limits, 0));
    still_parked(&mut rx);
    assert!(!group.tick(limits, 2_999));
    still_parked(&mut rx);
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    assert!(!group.tick(limits, 3_000));
    let joined = arrived(&mut rx);
    assert_eq!(joined.generation, 1);
    assert_eq!(group.state(), ClassicState::CompletingRebalance);
}

#[test]
fn member_joining_during_the_initial_delay_extends_it() {
    let limits = delayed(3_000);
    let mut group = ClassicGroup::new(0);
    let request = |meta: &str| JoinRequest {
        rebalance_timeout_ms: 10_000,
        require_known_member_id: false,
        ..join_request("", meta)
    };
    let mut a = parked(group.join(request("meta-a"), limits, 0));
    let mut b = parked(group.join(request("meta-b"), limits, 1_000));
    // Everyone has joined, yet the delay holds.
    assert!(!group.tick(limits, 2_999));
    still_parked(&mut a);
    assert!(!group.tick(limits, 3_000));
    still_parked(&mut a);
    still_parked(&mut b);
    assert!(!group.tick(limits, 5_999));
    still_parked(&mut a);
    assert!(!group.tick(limits, 6_000));
    let (a, b) = (arrived(&mut a), arrived(&mut b));
    assert_eq!((a.generation, b.generation), (1, 1));
    assert_eq!(a.leader, a.member_id, "the first to join leads");
    assert_eq!(a.members.len(), 2);
}

#[test]
fn initial_delay_never_outlasts_the_rebalance_timeout() {
    let limits = delayed(3_000);
    let mut group = ClassicGroup::new(0);
    let request = |meta: &str| JoinRequest {
        rebalance_timeout_ms: 5_000,
        require_known_member_id: false,
        ..join_request("", meta)
    };
    let mut first = parked(group.join(request("m0"), limits, 0));
    let _m1 = parked(group.join(request("m1"), limits, 1_000));
    // The first window ends with a new member: one more window, of the 2000 ms left.
    assert!(!group.tick(limits, 3_000));
    // More members keep arriving, but the rebalance timeout caps the delay.
    let _m2 = parked(group.join(request("m2"), limits, 3_500));
    let _m3 = parked(group.join(request("m3"), limits, 4_500));
    assert!(!group.tick(limits, 4_999));
    still_parked(&mut first);
    assert!(!group.tick(limits, 5_000));
    assert_eq!(arrived(&mut first).members.len(), 4);
}

#[test]
fn joiner_with_another_protocol_type_or_no_common_protocol_is_refused() {
    let (mut group, _) = stable_with_one(0);
    let mut other_type = join_request("", "meta");
    other_type.protocol_type = "connect".to_string();
    assert_eq!(
        answered(group.join(other_type, limits(), 100)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut other_protocol = join_request("", "meta");
    other_protocol.protocols = vec![("roundrobin".to_string(), Bytes::new())];
    assert_eq!(
        answered(group.join(other_protocol, limits(), 100)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut no_protocol = join_request("", "meta");
    no_protocol.protocols.clear();
    assert_eq!(
        answered(ClassicGroup::new(0).join(no_protocol, limits(), 0)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(group.state(), ClassicState::Stable);
    assert_eq!(group.members.len(), 1);

    // A common protocol is enough, even if not the joiner's first choice.
    let mut both = join_request("", "meta");
    both.protocols
        .insert(0, ("roundrobin".to_string(), Bytes::new()));
    assert_eq!(
        answered(group.join(both, limits(), 100)).error,
        ErrorCode::MEMBER_ID_REQUIRED
    );
}

#[test]
fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_deadline() {
    let (mut group, a, b) = stable_with_two(0);
    let (c, mut c_join) = join_new(&mut group, "meta-c", 1_000);
    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), 1_100));
    // `b` heartbeats (so its session stays alive) but never rejoins.
    for t in [5_000, 14_000, 23_000] {
        assert_eq!(
            group.heartbeat(&b, None, 2, t),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
        assert!(!group.tick(limits(), t));
    }
    assert!(!group.tick(limits(), 1_000 + i64::from(REBALANCE_MS) - 1));
    still_parked(&mut a_join);
    still_parked(&mut c_join);

    assert!(!group.tick(limits(), 1_000 + i64::from(REBALANCE_MS)));
    let leader = arrived(&mut a_join);
    let joined_c = arrived(&mut c_join);
    assert_eq!(
        (leader.error, joined_c.error),
        (ErrorCode::NONE, ErrorCode::NONE)
    );
    assert_eq!((leader.generation, joined_c.generation), (3, 3));
    let ids: Vec<&str> = leader
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(ids, [a.as_str(), c.as_str()]);
    assert!(!group.members.contains_key(&b));
    assert_eq!(
        group.heartbeat(&b, None, 2, 32_000),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn pending_member_that_never_rejoins_blocks_the_rebalance_only_until_its_session_ends() {
    let (mut group, a) = stable_with_one(0);
    let first = answered(group.join(join_request("", "meta-b"), limits(), 1_000));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    // The leader rejoining starts a rebalance, which waits for the expected member too.
    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), 2_000));
    assert_eq!(group.state(), ClassicState::PreparingRebalance);
    assert!(!group.tick(limits(), 10_999));
    still_parked(&mut a_join);
    assert!(!group.tick(limits(), 11_000));
    let joined = arrived(&mut a_join);
    assert_eq!(joined.generation, 2);
    assert_eq!(joined.members.len(), 1);
    // Too late: the id it was given has expired.
    let late = answered(group.join(join_request(&first.member_id, "meta-b"), limits(), 11_500));
    assert_eq!(late.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn full_group_refuses_new_members() {
    let limits = ClassicLimits {
        max_size: 1,
        ..limits()
    };
    let (mut group, _) = stable_with_one(0);
    let refused = answered(group.join(join_request("", "meta-b"), limits, 100));
    assert_eq!(refused.error, ErrorCode::GROUP_MAX_SIZE_REACHED);
    assert_eq!(group.state(), ClassicState::Stable);
}

/// Kafka's pending-sync timeout (`GroupCoordinator.onExpirePendingSync`): a member that has
/// its JoinGroup answer but sends no SyncGroup within the rebalance timeout is removed, so a
/// leader that never sends the assignment cannot hold the group in CompletingRebalance.
#[test]
fn leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let (mut group, a) = stable_with_one(0);
    let (b, mut b_join) = join_new(&mut group, "meta-b", 1_000);
    let mut a_join = parked(group.join(join_request(&a, "meta-a"), limits(), 1_000));
    arrived(&mut a_join);
    arrived(&mut b_join);
    let mut b_sync = sync_parked(group.sync(sync_request(&b, 2, &[]), 1_100));
    // The leader keeps heartbeating but never sends its SyncGroup.
    for t in (5_000..=40_000).step_by(5_000) {
        group.heartbeat(&a, None, 2, t);
        group.tick(limits(), t);
    }
    assert_eq!(
        group.state(),
        ClassicState::PreparingRebalance,
        "still waiting for the leader's assignment"
    );
    assert!(!group.members.contains_key(&a));
    assert_eq!(arrived(&mut b_sync).error, ErrorCode::REBALANCE_IN_PROGRESS);
}

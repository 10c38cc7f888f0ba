//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as Kafka's
//! `GroupMetadata` state machine: Empty → PreparingRebalance → CompletingRebalance → Stable,
//! and Dead once deleted.
//!
//! A rebalance collects every member's JoinGroup (their responses are parked until it
//! completes), elects a leader and a protocol, sends the leader the members' metadata, and
//! waits for the leader's SyncGroup with the assignment, which is written to
//! `__consumer_offsets` before any member learns it. Deadlines (rebalance timeout, session
//! timeouts, the initial rebalance delay) are checked by [`ClassicGroup::tick`], which the
//! coordinator calls a few times a second; nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use gregor_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::records::{GroupMetadataValue, MemberMetadata};

/// Kafka's names for the classic states, as ListGroups and DescribeGroups report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    /// No members (maybe committed offsets).
    Empty,
    /// Collecting JoinGroups.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Everyone has an assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl ClassicState {
    /// The name Kafka's tools print.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup asks, independent of its wire version.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id`: a static member.
    pub instance_id: Option<String>,
    /// The client's `client.id`, prefix of generated member ids.
    pub client_id: String,
    /// The client's address, for DescribeGroups.
    pub client_host: String,
    /// How long the member may stay silent.
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// "consumer" for consumers, anything for other users of the protocol (Connect).
    pub protocol_type: String,
    /// Supported protocols (assignors) in preference order, with the member's metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets `MEMBER_ID_REQUIRED` and a member id (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a rejoining static leader can be told not to reassign.
    pub supports_skip_assignment: bool,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup answer, independent of its wire version.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    /// `NONE` or why the join failed.
    pub error: ErrorCode,
    /// The new generation (-1 on error).
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol (assignor).
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's id (a new one for a first join).
    pub member_id: String,
    /// Everyone, for the leader; empty for the others.
    pub members: Vec<JoinedMember>,
    /// The leader must not compute a new assignment (KIP-814).
    pub skip_assignment: bool,
}

impl JoinResult {
    /// A failed join.
    pub fn error(error: ErrorCode, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    /// `NONE` or why the sync failed.
    pub error: ErrorCode,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment, as the leader encoded it.
    pub assignment: Bytes,
}

impl SyncResult {
    /// A failed sync.
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What a SyncGroup asks, independent of its wire version.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// The generation it joined.
    pub generation: i32,
    /// The protocol type it expects (v5+).
    pub protocol_type: Option<String>,
    /// The protocol it expects (v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignment, by member id (empty from followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// An answer now, or one that comes when the rebalance gets there.
pub enum Reply<T> {
    /// Answered at once.
    Now(T),
    /// Parked until the rebalance completes (or the member is removed).
    Later(oneshot::Receiver<T>),
}

/// What a SyncGroup call needs from the coordinator.
pub enum SyncOutcome {
    /// The answer (or the parked answer).
    Reply(Reply<SyncResult>),
    /// The leader sent the assignment: write `record`, then call
    /// [`ClassicGroup::finish_sync`], and answer with the receiver.
    Persist(GroupMetadataValue, oneshot::Receiver<SyncResult>),
}

/// A member of a classic group.
#[derive(Debug)]
pub struct ClassicMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// `group.instance.id`, for static members.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout it asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout it asked for.
    pub rebalance_timeout_ms: i32,
    /// Its protocols in preference order, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Its current assignment (empty until the leader's SyncGroup).
    pub assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    heartbeat_deadline: i64,
    join_order: u64,
}

impl ClassicMember {
    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// The limits a classic group works within.
#[derive(Debug, Clone, Copy)]
pub struct ClassicLimits {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.max.size`.
    pub max_size: usize,
}

/// The initial delayed join of an empty group: keeps waiting while members keep arriving, up
/// to the rebalance timeout.
#[derive(Debug)]
struct InitialDelay {
    until: i64,
    remaining: i64,
    delay: i64,
    member_added: bool,
}

/// A classic group's whole state.
#[derive(Debug)]
pub struct ClassicGroup {
    state: ClassicState,
    /// When the state last changed (GroupMetadataValue's `currentStateTimestamp`).
    pub state_timestamp: i64,
    /// The generation; bumped by every completed rebalance.
    pub generation: i32,
    /// e.g. "consumer"; `None` for a group that only has offsets.
    pub protocol_type: Option<String>,
    /// The chosen protocol of the current generation.
    pub protocol: Option<String>,
    /// The leader of the current generation.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, ClassicMember>,
    pending_members: BTreeMap<String, i64>,
    static_members: HashMap<String, String>,
    rebalance_deadline: i64,
    initial_delay: Option<InitialDelay>,
    next_join_order: u64,
    /// Members that got their JoinGroup answer but have not sent SyncGroup yet; they are
    /// removed if they have not by `sync_deadline` (a leader that never syncs would otherwise
    /// stall the group).
    pending_sync: BTreeSet<String>,
    sync_deadline: i64,
    /// Changed in a way that must be written though no rebalance happened (a static member
    /// replaced in place).
    dirty: bool,
}

impl ClassicGroup {
    /// A new empty group.
    pub fn new(now: i64) -> ClassicGroup {
        ClassicGroup {
            state: ClassicState::Empty,
            state_timestamp: now,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: 0,
            initial_delay: None,
            next_join_order: 0,
            pending_sync: BTreeSet::new(),
            sync_deadline: 0,
            dirty: false,
        }
    }

    /// Rebuilds a group from its `__consumer_offsets` record, as Kafka does on load: Stable
    /// with its members (their sessions start now) or Empty.
    pub fn from_record(value: &GroupMetadataValue, now: i64) -> ClassicGroup {
        let mut group = ClassicGroup::new(now);
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol = value.protocol.clone();
        group.leader = value.leader.clone();
        if value.current_state_timestamp >= 0 {
            group.state_timestamp = value.current_state_timestamp;
        }
        for m in &value.members {
            let protocol = value.protocol.clone().unwrap_or_default();
            let order = group.next_order();
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                ClassicMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout,
                    rebalance_timeout_ms: if m.rebalance_timeout < 0 {
                        m.session_timeout
                    } else {
                        m.rebalance_timeout
                    },
                    protocols: vec![(protocol, m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    awaiting_join: None,
                    awaiting_sync: None,
                    heartbeat_deadline: now + i64::from(m.session_timeout),
                    join_order: order,
                },
            );
        }
        if !group.members.is_empty() {
            group.state = ClassicState::Stable;
        }
        group
    }

    /// The record that persists this group (GroupMetadataValue).
    pub fn to_record(&self) -> GroupMetadataValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Whether a change must be written although no rebalance happened; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The current state.
    pub fn state(&self) -> ClassicState {
        self.state
    }

    /// Whether nothing but offsets is left.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Marks the group deleted; parked members are told the group is gone.
    pub fn mark_dead(&mut self, now: i64) {
        for member in self.members.values_mut() {
            fail_parked(member, ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        self.transition(ClassicState::Dead, now);
    }

    /// Answers every parked request with `error` (the broker is stopping).
    pub fn fail_all_parked(&mut self, error: ErrorCode) {
        for member in self.members.values_mut() {
            fail_parked(member, error);
        }
    }

    fn transition(&mut self, state: ClassicState, now: i64) {
        self.state = state;
        self.state_timestamp = now;
    }

    fn next_order(&mut self) -> u64 {
        self.next_join_order += 1;
        self.next_join_order
    }

    /// Whether a member's protocols fit the group: same type, and at least one protocol every
    /// member supports.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| has_protocol(m, name)))
    }

    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        request: JoinRequest,
        limits: ClassicLimits,
        now: i64,
    ) -> Reply<JoinResult> {
        let refuse = |error| Reply::Now(JoinResult::error(error, &request.member_id));
        if self.state == ClassicState::Dead {
            return refuse(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        let known = self.members.contains_key(&request.member_id);
        // A member already in the group may switch protocols only through a rebalance, but
        // must still share one with the others; a newcomer must fit the group as it is.
        let fits = if known {
            let others = self
                .members
                .values()
                .filter(|m| m.member_id != request.member_id);
            self.protocol_type.as_deref() == Some(request.protocol_type.as_str())
                && request
                    .protocols
                    .iter()
                    .any(|(name, _)| others.clone().all(|m| has_protocol(m, name)))
        } else {
            self.supports(&request.protocol_type, &request.protocols)
        };
        if !fits {
            return refuse(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        if request.member_id.is_empty() {
            self.join_new_member(request, limits, now)
        } else {
            self.join_known_member(request, limits, now)
        }
    }

    fn join_new_member(
        &mut self,
        request: JoinRequest,
        limits: ClassicLimits,
        now: i64,
    ) -> Reply<JoinResult> {
        if let Some(instance) = &request.instance_id
            && let Some(old_id) = self.static_members.get(instance).cloned()
            && self.members.contains_key(&old_id)
        {
            return self.replace_static_member(&old_id, request, limits, now);
        }
        if self.members.len() + self.pending_members.len() >= limits.max_size {
            return Reply::Now(JoinResult::error(ErrorCode::GROUP_MAX_SIZE_REACHED, ""));
        }
        let member_id = format!(
            "{}-{}",
            request.client_id,
            gregor_protocol::ids::random_id()
        );
        if request.instance_id.is_none() && request.require_known_member_id {
            // KIP-394: the member must come back with this id, so a client that times out
            // and retries does not leave a ghost member behind.
            self.pending_members.insert(
                member_id.clone(),
                now + i64::from(request.session_timeout_ms),
            );
            return Reply::Now(JoinResult::error(ErrorCode::MEMBER_ID_REQUIRED, &member_id));
        }
        self.add_member_and_rebalance(member_id, request, limits, now)
    }

    fn join_known_member(
        &mut self,
        request: JoinRequest,
        limits: ClassicLimits,
        now: i64,
    ) -> Reply<JoinResult> {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(member_id, request, limits, now);
        }
        if let Err(error) = self.check_member(&member_id, request.instance_id.as_deref()) {
            return Reply::Now(JoinResult::error(error, &member_id));
        }
        let member = self.members.get_mut(&member_id).expect("checked");
        let unchanged = member.protocols == request.protocols;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        match self.state {
            ClassicState::PreparingRebalance => {
                self.update_and_park(&member_id, request.protocols, now)
            }
            ClassicState::CompletingRebalance if unchanged => {
                // It lost the JoinGroup response: send the same one again.
                Reply::Now(self.current_join_result(&member_id, false))
            }
            ClassicState::Stable if unchanged && self.leader.as_deref() != Some(&member_id) => {
                Reply::Now(self.current_join_result(&member_id, false))
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                let reply = self.update_and_park(&member_id, request.protocols, now);
                self.prepare_rebalance(limits, now);
                reply
            }
            ClassicState::Empty | ClassicState::Dead => {
                Reply::Now(JoinResult::error(ErrorCode::UNKNOWN_MEMBER_ID, &member_id))
            }
        }
    }

    /// A static member restarting: the new member id takes the old one's place (fencing the
    /// old process) and, if nothing changed, gets its assignment back without a rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        request: JoinRequest,
        limits: ClassicLimits,
        now: i64,
    ) -> Reply<JoinResult> {
        let instance = request.instance_id.clone().expect("static member");
        let mut member = self.members.remove(old_id).expect("known static member");
        fail_parked(&mut member, ErrorCode::FENCED_INSTANCE_ID);
        let new_id = format!(
            "{}-{}",
            request.client_id,
            gregor_protocol::ids::random_id()
        );
        let unchanged = member.protocols == request.protocols;
        member.member_id = new_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(instance, new_id.clone());
        match self.state {
            ClassicState::Stable if unchanged => {
                // The new member id must survive a restart, or the member would be fenced.
                self.dirty = true;
                let skip = was_leader && request.supports_skip_assignment;
                Reply::Now(self.current_join_result(&new_id, skip))
            }
            ClassicState::PreparingRebalance => {
                self.update_and_park(&new_id, request.protocols, now)
            }
            _ => {
                let reply = self.update_and_park(&new_id, request.protocols, now);
                self.prepare_rebalance(limits, now);
                reply
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        limits: ClassicLimits,
        now: i64,
    ) -> Reply<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        let join_order = self.next_order();
        self.members.insert(
            member_id.clone(),
            ClassicMember {
                member_id: member_id.clone(),
                instance_id: request.instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline: now + i64::from(request.session_timeout_ms),
                join_order,
            },
        );
        if let Some(delay) = &mut self.initial_delay {
            delay.member_added = true;
        }
        let reply = self.update_and_park(&member_id, request.protocols, now);
        if self.state != ClassicState::PreparingRebalance {
            self.prepare_rebalance(limits, now);
        }
        reply
    }

    /// Records the member's protocols and parks its JoinGroup until the rebalance completes.
    fn update_and_park(
        &mut self,
        member_id: &str,
        protocols: Vec<(String, Bytes)>,
        now: i64,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = self.members.get_mut(member_id).expect("member exists");
        member.protocols = protocols;
        member.awaiting_join = Some(tx);
        if self.state == ClassicState::PreparingRebalance {
            self.try_complete_join(now);
        }
        Reply::Later(rx)
    }

    /// The JoinGroup answer for the generation in place (a member that rejoins with nothing
    /// new).
    fn current_join_result(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: ErrorCode::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader && (skip_assignment || self.state != ClassicState::Stable) {
                self.joined_members(&protocol)
            } else {
                Vec::new()
            },
            skip_assignment,
        }
    }

    fn joined_members(&self, protocol: &str) -> Vec<JoinedMember> {
        let mut members: Vec<&ClassicMember> = self.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        members
            .into_iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// Checks a member id (and instance id) against the group: `UNKNOWN_MEMBER_ID` or
    /// `FENCED_INSTANCE_ID` when they do not match a member.
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id
            && let Some(current) = self.static_members.get(instance)
            && current != member_id
        {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        let Some(member) = self.members.get(member_id) else {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        Ok(())
    }

    fn prepare_rebalance(&mut self, limits: ClassicLimits, now: i64) {
        if self.state == ClassicState::CompletingRebalance {
            // The assignment being synced is void: members must rejoin.
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS));
                    // Its session counts again from the answer, as after any response.
                    member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
                }
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        let was_empty = self.state == ClassicState::Empty;
        self.transition(ClassicState::PreparingRebalance, now);
        self.rebalance_deadline = now + rebalance_timeout;
        self.pending_sync.clear();
        if was_empty && limits.initial_rebalance_delay_ms > 0 {
            let delay = limits.initial_rebalance_delay_ms.min(rebalance_timeout);
            self.initial_delay = Some(InitialDelay {
                until: now + delay,
                remaining: (rebalance_timeout - delay).max(0),
                delay: limits.initial_rebalance_delay_ms,
                member_added: false,
            });
        } else {
            self.try_complete_join(now);
        }
    }

    /// Completes the join phase once every member has rejoined and no KIP-394 member is still
    /// expected (never during the initial delay).
    fn try_complete_join(&mut self, now: i64) {
        if self.state != ClassicState::PreparingRebalance || self.initial_delay.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        if all_joined && self.pending_members.is_empty() {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped (static ones are kept,
    /// they are expected back), the generation advances, and the JoinGroups are answered.
    /// Returns whether the group became Empty (and so must be written).
    fn complete_join(&mut self, now: i64) -> bool {
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(ClassicState::Empty, now);
            return true;
        }
        self.protocol = Some(self.select_protocol());
        if !self.leader.as_ref().is_some_and(|l| {
            self.members
                .get(l)
                .is_some_and(|m| m.awaiting_join.is_some())
        }) {
            self.leader = self
                .members
                .values()
                .filter(|m| m.awaiting_join.is_some())
                .min_by_key(|m| m.join_order)
                .map(|m| m.member_id.clone());
        }
        self.transition(ClassicState::CompletingRebalance, now);
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = now
            + self
                .members
                .values()
                .map(|m| i64::from(m.rebalance_timeout_ms))
                .max()
                .unwrap_or(0);
        let protocol = self.protocol.clone().unwrap_or_default();
        let everyone = self.joined_members(&protocol);
        let leader = self.leader.clone().unwrap_or_default();
        for member in self.members.values_mut() {
            member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
            if let Some(tx) = member.awaiting_join.take() {
                let is_leader = member.member_id == leader;
                let _ = tx.send(JoinResult {
                    error: ErrorCode::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: member.member_id.clone(),
                    members: if is_leader {
                        everyone.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        false
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for the
    /// first in its own preference order; the most votes win (ties go to the earliest member's
    /// preference).
    fn select_protocol(&self) -> String {
        let mut members: Vec<&ClassicMember> = self.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        let common: Vec<&String> = members[0]
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| members.iter().all(|m| has_protocol(m, name)))
            .collect();
        let mut votes: Vec<(&String, usize)> = common.iter().map(|n| (*n, 0)).collect();
        for m in &members {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| common.contains(&n))
                && let Some(v) = votes.iter_mut().find(|(n, _)| *n == name)
            {
                v.1 += 1;
            }
        }
        let best = votes.iter().map(|(_, c)| *c).max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, c)| *c == best)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    fn remove_member(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if let Some(mut member) = self.members.remove(member_id) {
            fail_parked(&mut member, ErrorCode::UNKNOWN_MEMBER_ID);
            if let Some(instance) = &member.instance_id
                && self.static_members.get(instance).map(String::as_str) == Some(member_id)
            {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// Handles a SyncGroup.
    pub fn sync(&mut self, request: SyncRequest, now: i64) -> SyncOutcome {
        let member_id = request.member_id.as_str();
        let refuse = |error| SyncOutcome::Reply(Reply::Now(SyncResult::error(error)));
        if matches!(self.state, ClassicState::Empty | ClassicState::Dead) {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        if let Err(error) = self.check_member(member_id, request.instance_id.as_deref()) {
            return refuse(error);
        }
        if request.generation != self.generation {
            return refuse(ErrorCode::ILLEGAL_GENERATION);
        }
        let mismatch =
            |asked: &Option<String>, group: &Option<String>| asked.is_some() && asked != group;
        if mismatch(&request.protocol_type, &self.protocol_type)
            || mismatch(&request.protocol_name, &self.protocol)
        {
            return refuse(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        if self.state != ClassicState::PreparingRebalance {
            self.pending_sync.remove(member_id);
        }
        match self.state {
            ClassicState::PreparingRebalance => refuse(ErrorCode::REBALANCE_IN_PROGRESS),
            ClassicState::Stable => {
                let member = self.members.get_mut(member_id).expect("checked");
                member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
                SyncOutcome::Reply(Reply::Now(SyncResult {
                    error: ErrorCode::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: member.assignment.clone(),
                }))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                self.members
                    .get_mut(member_id)
                    .expect("checked")
                    .awaiting_sync = Some(tx);
                if self.leader.as_deref() != Some(member_id) {
                    return SyncOutcome::Reply(Reply::Later(rx));
                }
                let mut assignments: HashMap<String, Bytes> =
                    request.assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
                }
                SyncOutcome::Persist(self.to_record(), rx)
            }
        }
    }

    /// After the leader's assignment was written (or failed to be): members waiting in
    /// SyncGroup get their assignment and the group is Stable, or they get `error` and must
    /// rejoin.
    pub fn finish_sync(&mut self, error: ErrorCode, limits: ClassicLimits, now: i64) {
        if error != ErrorCode::NONE {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(error));
                }
            }
            self.transition(ClassicState::CompletingRebalance, now);
            self.prepare_rebalance(limits, now);
            return;
        }
        self.transition(ClassicState::Stable, now);
        for member in self.members.values_mut() {
            member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResult {
                    error: ErrorCode::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: member.assignment.clone(),
                });
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> ErrorCode {
        if matches!(self.state, ClassicState::Empty | ClassicState::Dead) {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        if let Err(error) = self.check_member(member_id, instance_id) {
            return error;
        }
        if generation != self.generation {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let member = self.members.get_mut(member_id).expect("checked");
        member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
        match self.state {
            ClassicState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            _ => ErrorCode::NONE,
        }
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id for static
    /// members). Returns whether the group became Empty and must be written.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        limits: ClassicLimits,
        now: i64,
    ) -> Result<bool, ErrorCode> {
        if self.state == ClassicState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        let id = match instance_id {
            Some(instance) => {
                let Some(current) = self.static_members.get(instance).cloned() else {
                    return Err(ErrorCode::UNKNOWN_MEMBER_ID);
                };
                if !member_id.is_empty() && member_id != current {
                    return Err(ErrorCode::FENCED_INSTANCE_ID);
                }
                current
            }
            None => {
                if self.pending_members.remove(member_id).is_some() {
                    self.try_complete_join(now);
                    return Ok(false);
                }
                if !self.members.contains_key(member_id) {
                    return Err(ErrorCode::UNKNOWN_MEMBER_ID);
                }
                member_id.to_string()
            }
        };
        self.remove_member(&id);
        Ok(self.after_removal(limits, now))
    }

    /// Rebalances after a member left or expired; returns whether the group became Empty.
    fn after_removal(&mut self, limits: ClassicLimits, now: i64) -> bool {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(limits, now);
                self.state == ClassicState::Empty
            }
            ClassicState::PreparingRebalance => {
                if self.members.is_empty() && self.pending_members.is_empty() {
                    return self.complete_join(now);
                }
                self.try_complete_join(now);
                self.state == ClassicState::Empty
            }
            ClassicState::Empty | ClassicState::Dead => false,
        }
    }

    /// Acts on deadlines: expired sessions, the end of the initial delay and of the rebalance
    /// timeout. Returns whether the group became Empty and must be written.
    pub fn tick(&mut self, limits: ClassicLimits, now: i64) -> bool {
        let mut became_empty = false;
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.heartbeat_deadline <= now
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(member = %id, "classic group member's session expired");
            self.remove_member(&id);
            became_empty |= self.after_removal(limits, now);
        }
        if matches!(
            self.state,
            ClassicState::CompletingRebalance | ClassicState::Stable
        ) && !self.pending_sync.is_empty()
            && now >= self.sync_deadline
        {
            for id in std::mem::take(&mut self.pending_sync) {
                tracing::info!(member = %id, "classic group member never sent SyncGroup; removing it");
                self.remove_member(&id);
            }
            became_empty |= self.after_removal(limits, now);
        }
        if self.state != ClassicState::PreparingRebalance {
            return became_empty;
        }
        if let Some(delay) = &mut self.initial_delay {
            if now < delay.until {
                return became_empty;
            }
            if delay.member_added && delay.remaining > 0 {
                let step = delay.delay.min(delay.remaining);
                delay.until = now + step;
                delay.remaining -= step;
                delay.member_added = false;
                return became_empty;
            }
            return self.complete_join(now) || became_empty;
        }
        if now >= self.rebalance_deadline {
            return self.complete_join(now) || became_empty;
        }
        self.try_complete_join(now);
        became_empty
    }

    /// The topics the members' consumer-protocol subscriptions name, for OffsetDelete's
    /// `GROUP_SUBSCRIBED_TO_TOPIC` check. `None` when the group is not a consumer group.
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut topics = Vec::new();
        for member in self.members.values() {
            topics.extend(super::consumer_protocol::subscription_topics(
                &member.metadata(&protocol),
            ));
        }
        Some(topics)
    }
}

fn has_protocol(member: &ClassicMember, name: &str) -> bool {
    member.protocols.iter().any(|(n, _)| n == name)
}

fn fail_parked(member: &mut ClassicMember, error: ErrorCode) {
    if let Some(tx) = member.awaiting_join.take() {
        let _ = tx.send(JoinResult::error(error, &member.member_id));
    }
    if let Some(tx) = member.awaiting_sync.take() {
        let _ = tx.send(SyncResult::error(error));
    }
}

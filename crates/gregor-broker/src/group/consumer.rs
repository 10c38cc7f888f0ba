//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat): the coordinator computes the
//! assignment with a server-side assignor and hands each member its share in heartbeat
//! responses, one reconciliation step at a time.
//!
//! Epochs: the *group epoch* moves whenever membership, a subscription or a subscribed
//! topic's partition count changes; the *assignment epoch* is the group epoch the target
//! assignment was computed for; a *member epoch* reaches the assignment epoch once the member
//! has given up every partition it must lose. A partition moves only after its previous owner
//! has stopped reporting it, so no two members ever own one at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gregor_protocol::ErrorCode;
use uuid::Uuid;

use super::assignor::{self, MemberSpec, TopicSpec};
use super::records::{
    ConsumerAssignmentValue, ConsumerMemberValue, CoordinatorRecord, member_state,
};

/// Partitions by topic id.
pub type TopicPartitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// A member's reconciliation state (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// It has its whole target assignment.
    Stable,
    /// It must first give up partitions (it keeps its epoch until it does).
    UnrevokedPartitions,
    /// It waits for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    /// From the stored byte; an unknown state reconciles again from scratch.
    fn from_byte(b: i8) -> MemberState {
        match b {
            member_state::UNREVOKED_PARTITIONS => MemberState::UnrevokedPartitions,
            member_state::UNRELEASED_PARTITIONS => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }

    /// The stored byte.
    fn to_byte(self) -> i8 {
        match self {
            MemberState::Stable => member_state::STABLE,
            MemberState::UnrevokedPartitions => member_state::UNREVOKED_PARTITIONS,
            MemberState::UnreleasedPartitions => member_state::UNRELEASED_PARTITIONS,
        }
    }
}

/// Member epoch a member sends to leave.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch a static member sends to leave for a while, keeping its partitions.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    /// Its member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Topics it subscribes to by name.
    pub subscribed_topic_names: Vec<String>,
    /// Or by regular expression (RE2 syntax in Kafka; Rust's `regex` here).
    pub subscribed_regex: Option<String>,
    /// How long it may take to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// The server assignor it asked for.
    pub server_assignor: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// Its epoch before the last bump (a lost response can be retried with it).
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions it owns.
    pub assigned: TopicPartitions,
    /// Partitions it must give up.
    pub pending_revocation: TopicPartitions,
    session_deadline: i64,
    revocation_deadline: Option<i64>,
}

impl ConsumerMember {
    fn record(&self) -> ConsumerMemberValue {
        ConsumerMemberValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    fn assignment_record(&self) -> ConsumerAssignmentValue {
        ConsumerAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.to_byte(),
            assigned_partitions: to_list(&self.assigned),
            partitions_pending_revocation: to_list(&self.pending_revocation),
        }
    }
}

/// What a ConsumerGroupHeartbeat asks, independent of its version.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    /// The member id (empty on a v0 first join: the coordinator makes one).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave, else its epoch.
    pub member_epoch: i32,
    /// `group.instance.id`, when set or changed.
    pub instance_id: Option<String>,
    /// `client.rack`, when set or changed.
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// `None` when unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `None` when unchanged.
    pub subscribed_regex: Option<String>,
    /// `None` when unchanged.
    pub server_assignor: Option<String>,
    /// The partitions the member owns; `None` when unchanged.
    pub owned: Option<TopicPartitions>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatResult {
    /// `NONE` or the reason.
    pub error: ErrorCode,
    /// Details for the error.
    pub message: Option<String>,
    /// The member id.
    pub member_id: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// The member's assignment, when it changed.
    pub assignment: Option<TopicPartitions>,
}

impl HeartbeatResult {
    fn error(error: ErrorCode, message: impl Into<String>, request: &HeartbeatRequest) -> Self {
        HeartbeatResult {
            error,
            message: Some(message.into()),
            member_id: request.member_id.clone(),
            member_epoch: request.member_epoch,
            assignment: None,
        }
    }
}

/// What the group needs to know about topics: name → (id, partition count).
pub type TopicView = BTreeMap<String, (Uuid, i32)>;

/// Limits of consumer groups.
#[derive(Debug, Clone)]
pub struct ConsumerLimits {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<String>,
}

/// A KIP-848 consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    /// Bumped on every membership, subscription or metadata change.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Where every member is headed.
    pub target: BTreeMap<String, TopicPartitions>,
    /// Partition counts of the subscribed topics the target was computed with.
    subscribed: BTreeMap<Uuid, i32>,
    /// When the group last changed state (for offsets retention).
    pub state_timestamp: i64,
    /// The assignor the last target was computed with.
    pub assignor_name: String,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(now: i64) -> ConsumerGroup {
        ConsumerGroup {
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            state_timestamp: now,
            assignor_name: String::new(),
        }
    }

    /// Kafka's group state names: Empty, Assigning, Reconciling, Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Replays a stored record (on load).
    pub fn replay(&mut self, record: &CoordinatorRecord, now: i64, limits: &ConsumerLimits) {
        match record {
            CoordinatorRecord::ConsumerGroupMetadata {
                epoch: Some(epoch), ..
            } => self.group_epoch = *epoch,
            CoordinatorRecord::ConsumerGroupMember {
                member_id, value, ..
            } => match value {
                None => {
                    self.members.remove(member_id);
                }
                Some(v) => {
                    let member = self
                        .members
                        .entry(member_id.clone())
                        .or_insert_with(|| blank_member(member_id, now, limits));
                    member.instance_id = v.instance_id.clone();
                    member.rack_id = v.rack_id.clone();
                    member.client_id = v.client_id.clone();
                    member.client_host = v.client_host.clone();
                    member.subscribed_topic_names = v.subscribed_topic_names.clone();
                    member.subscribed_regex = v.subscribed_topic_regex.clone();
                    member.rebalance_timeout_ms = v.rebalance_timeout_ms;
                    member.server_assignor = v.server_assignor.clone();
                }
            },
            CoordinatorRecord::ConsumerGroupAssignment {
                member_id, value, ..
            } => {
                if let (Some(v), Some(member)) = (value, self.members.get_mut(member_id)) {
                    member.member_epoch = v.member_epoch;
                    member.previous_member_epoch = v.previous_member_epoch;
                    member.state = MemberState::from_byte(v.state);
                    member.assigned = from_list(&v.assigned_partitions);
                    member.pending_revocation = from_list(&v.partitions_pending_revocation);
                }
            }
            _ => {}
        }
    }

    /// After replay. Gregor does not store Kafka's target-assignment records, so the target
    /// starts as what each member owns: the sticky assignor then keeps it, and only real
    /// changes (found at the first heartbeat, which recomputes against the topics) move
    /// partitions.
    pub fn finish_load(&mut self) {
        self.assignment_epoch = self
            .members
            .values()
            .map(|m| m.member_epoch)
            .max()
            .unwrap_or(0)
            .min(self.group_epoch);
        self.target = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.assigned.clone()))
            .collect();
    }

    /// The group's records, for a full rewrite (deletion writes their tombstones).
    pub fn tombstones(&self, group: &str) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        for id in self.members.keys() {
            records.extend(member_tombstones(group, id));
        }
        records.push(CoordinatorRecord::ConsumerGroupMetadata {
            group: group.to_string(),
            epoch: None,
        });
        records
    }

    /// Handles a ConsumerGroupHeartbeat; the records it returns must be written before the
    /// answer goes out.
    pub fn heartbeat(
        &mut self,
        group: &str,
        mut request: HeartbeatRequest,
        topics: &TopicView,
        limits: &ConsumerLimits,
        now: i64,
    ) -> (HeartbeatResult, Vec<CoordinatorRecord>) {
        let mut records = Vec::new();
        if let Some(name) = &request.server_assignor
            && !limits.assignors.iter().any(|a| a == name)
        {
            let result = HeartbeatResult::error(
                ErrorCode::UNSUPPORTED_ASSIGNOR,
                format!("assignor {name} is not one of {:?}", limits.assignors),
                &request,
            );
            return (result, records);
        }
        if let Some(regex) = &request.subscribed_regex
            && let Err(e) = regex::Regex::new(regex)
        {
            let result = HeartbeatResult::error(
                ErrorCode::INVALID_REGULAR_EXPRESSION,
                format!("invalid subscribed topic regex: {e}"),
                &request,
            );
            return (result, records);
        }
        let epoch_before = self.group_epoch;
        match request.member_epoch {
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => {
                return self.leave(group, &request, topics, limits, now);
            }
            0 => {
                if let Err(result) = self.join(group, &mut request, limits, now, &mut records) {
                    return (result, records);
                }
            }
            epoch => {
                let Some(member) = self.members.get(&request.member_id) else {
                    let result = HeartbeatResult::error(
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        "unknown member id",
                        &request,
                    );
                    return (result, records);
                };
                let retry_of_lost_bump = epoch == member.previous_member_epoch
                    && request
                        .owned
                        .as_ref()
                        .is_some_and(|owned| is_subset(owned, &member.assigned));
                if epoch != member.member_epoch && !retry_of_lost_bump {
                    let result = HeartbeatResult::error(
                        ErrorCode::FENCED_MEMBER_EPOCH,
                        format!(
                            "member epoch {epoch} is not the current epoch {}",
                            member.member_epoch
                        ),
                        &request,
                    );
                    return (result, records);
                }
            }
        }
        let member_id = request.member_id.clone();
        let joined = request.member_epoch == 0;
        let old_epoch = self.members[&member_id].member_epoch;
        let old_assigned = self.members[&member_id].assigned.clone();
        if self.update_member(&request, now, limits) || joined {
            records.push(CoordinatorRecord::ConsumerGroupMember {
                group: group.to_string(),
                member_id: member_id.clone(),
                value: Some(self.members[&member_id].record()),
            });
            self.group_epoch += 1;
        }
        let subscribed = self.subscribed_partitions(topics);
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics, limits);
        }
        if self.group_epoch != epoch_before {
            records.push(CoordinatorRecord::ConsumerGroupMetadata {
                group: group.to_string(),
                epoch: Some(self.group_epoch),
            });
        }
        self.reconcile(&member_id, request.owned.as_ref(), now);
        let member = &self.members[&member_id];
        let changed = member.member_epoch != old_epoch || member.assigned != old_assigned;
        if changed || joined {
            records.push(CoordinatorRecord::ConsumerGroupAssignment {
                group: group.to_string(),
                member_id: member_id.clone(),
                value: Some(member.assignment_record()),
            });
        }
        let reported_differs = request
            .owned
            .as_ref()
            .is_some_and(|o| o != &member.assigned);
        let result = HeartbeatResult {
            error: ErrorCode::NONE,
            message: None,
            member_id,
            member_epoch: member.member_epoch,
            assignment: (changed || joined || reported_differs).then(|| member.assigned.clone()),
        };
        (result, records)
    }

    fn join(
        &mut self,
        group: &str,
        request: &mut HeartbeatRequest,
        limits: &ConsumerLimits,
        now: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) -> Result<(), HeartbeatResult> {
        if request.subscribed_topic_names.is_none() && request.subscribed_regex.is_none() {
            return Err(HeartbeatResult::error(
                ErrorCode::INVALID_REQUEST,
                "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
                request,
            ));
        }
        if request.member_id.is_empty() {
            request.member_id = gregor_protocol::ids::to_text(gregor_protocol::ids::random_id());
        }
        if let Some(instance) = request.instance_id.clone()
            && let Some(previous) = self
                .members
                .values()
                .find(|m| {
                    m.instance_id.as_deref() == Some(&instance) && m.member_id != request.member_id
                })
                .cloned()
        {
            if previous.member_epoch != STATIC_LEAVE_EPOCH {
                return Err(HeartbeatResult::error(
                    ErrorCode::UNRELEASED_INSTANCE_ID,
                    format!(
                        "instance id {instance} is still used by member {}",
                        previous.member_id
                    ),
                    request,
                ));
            }
            // A static member coming back: it takes over its predecessor's partitions.
            self.members.remove(&previous.member_id);
            records.extend(member_tombstones(group, &previous.member_id));
            let mut member = previous;
            if let Some(target) = self.target.remove(&member.member_id) {
                self.target.insert(request.member_id.clone(), target);
            }
            member.member_id = request.member_id.clone();
            member.member_epoch = self.assignment_epoch.max(member.previous_member_epoch);
            member.session_deadline = now + i64::from(limits.session_timeout_ms);
            self.members.insert(request.member_id.clone(), member);
            return Ok(());
        }
        if let Some(existing) = self.members.get_mut(&request.member_id) {
            // Rejoining after being fenced or losing its state: it owns nothing now.
            existing.assigned.clear();
            existing.pending_revocation.clear();
            existing.state = MemberState::Stable;
            existing.member_epoch = 0;
            return Ok(());
        }
        if self.members.len() >= limits.max_size {
            return Err(HeartbeatResult::error(
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                format!(
                    "the group has reached its maximum size ({})",
                    limits.max_size
                ),
                request,
            ));
        }
        self.members.insert(
            request.member_id.clone(),
            blank_member(&request.member_id, now, limits),
        );
        Ok(())
    }

    fn leave(
        &mut self,
        group: &str,
        request: &HeartbeatRequest,
        topics: &TopicView,
        limits: &ConsumerLimits,
        now: i64,
    ) -> (HeartbeatResult, Vec<CoordinatorRecord>) {
        let mut records = Vec::new();
        let id = if self.members.contains_key(&request.member_id) {
            request.member_id.clone()
        } else if let Some(m) = request.instance_id.as_deref().and_then(|i| {
            self.members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
        }) {
            m.member_id.clone()
        } else {
            let result =
                HeartbeatResult::error(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member id", request);
            return (result, records);
        };
        if request.member_epoch == STATIC_LEAVE_EPOCH && self.members[&id].instance_id.is_some() {
            // Keeps its partitions until its session expires or it comes back.
            let member = self.members.get_mut(&id).expect("known");
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = STATIC_LEAVE_EPOCH;
            records.push(CoordinatorRecord::ConsumerGroupAssignment {
                group: group.to_string(),
                member_id: id.clone(),
                value: Some(member.assignment_record()),
            });
        } else {
            records.extend(self.remove_member(group, &id, topics, limits, now));
        }
        let result = HeartbeatResult {
            error: ErrorCode::NONE,
            message: None,
            member_id: id,
            member_epoch: request.member_epoch,
            assignment: None,
        };
        (result, records)
    }

    /// Removes a member (left, expired or fenced) and recomputes the target for the others.
    fn remove_member(
        &mut self,
        group: &str,
        member_id: &str,
        topics: &TopicView,
        limits: &ConsumerLimits,
        now: i64,
    ) -> Vec<CoordinatorRecord> {
        self.members.remove(member_id);
        self.target.remove(member_id);
        self.group_epoch += 1;
        self.subscribed = self.subscribed_partitions(topics);
        self.compute_target(topics, limits);
        if self.members.is_empty() {
            self.state_timestamp = now;
        }
        let mut records = member_tombstones(group, member_id);
        records.push(CoordinatorRecord::ConsumerGroupMetadata {
            group: group.to_string(),
            epoch: Some(self.group_epoch),
        });
        records
    }

    /// Applies what the heartbeat says about the member; true if its subscription (or
    /// anything stored) changed.
    fn update_member(
        &mut self,
        request: &HeartbeatRequest,
        now: i64,
        limits: &ConsumerLimits,
    ) -> bool {
        let member = self.members.get_mut(&request.member_id).expect("joined");
        member.session_deadline = now + i64::from(limits.session_timeout_ms);
        let mut changed = false;
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            changed |= member.subscribed_topic_names != names;
            member.subscribed_topic_names = names;
        }
        if let Some(regex) = &request.subscribed_regex {
            let regex = Some(regex.clone()).filter(|r| !r.is_empty());
            changed |= member.subscribed_regex != regex;
            member.subscribed_regex = regex;
        }
        if request.rebalance_timeout_ms >= 0 {
            changed |= member.rebalance_timeout_ms != request.rebalance_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        for (field, new) in [
            (&mut member.instance_id, &request.instance_id),
            (&mut member.rack_id, &request.rack_id),
            (&mut member.server_assignor, &request.server_assignor),
        ] {
            if new.is_some() && field != new {
                *field = new.clone();
                changed = true;
            }
        }
        if member.client_id != request.client_id || member.client_host != request.client_host {
            member.client_id = request.client_id.clone();
            member.client_host = request.client_host.clone();
            changed = true;
        }
        changed
    }

    /// Topic ids a member subscribes to, by name or by regex.
    fn member_topics(member: &ConsumerMember, topics: &TopicView) -> Vec<Uuid> {
        let regex = member
            .subscribed_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
        topics
            .iter()
            .filter(|(name, _)| {
                member.subscribed_topic_names.iter().any(|n| n == *name)
                    || regex
                        .as_ref()
                        .is_some_and(|re| !name.starts_with("__") && re.is_match(name))
            })
            .map(|(_, (id, _))| *id)
            .collect()
    }

    fn subscribed_partitions(&self, topics: &TopicView) -> BTreeMap<Uuid, i32> {
        let ids: BTreeSet<Uuid> = self
            .members
            .values()
            .flat_map(|m| Self::member_topics(m, topics))
            .collect();
        topics
            .values()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, n)| (*id, *n))
            .collect()
    }

    fn compute_target(&mut self, topics: &TopicView, limits: &ConsumerLimits) {
        // The assignor most members ask for, else the configured default.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let name = votes
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(a, _)| (*a).to_string())
            .or_else(|| limits.assignors.first().cloned());
        let chosen = assignor::assignor(name.as_deref())
            .or_else(|| assignor::assignor(None))
            .expect("a default assignor exists");
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack: m.rack_id.clone(),
                subscribed_topics: Self::member_topics(m, topics),
                current: self
                    .target
                    .get(&m.member_id)
                    .map(|t| {
                        t.iter()
                            .map(|(id, p)| (*id, p.iter().copied().collect()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        let topic_specs: Vec<TopicSpec> = topics
            .iter()
            .filter(|(_, (id, _))| self.subscribed.contains_key(id))
            .map(|(name, (id, n))| TopicSpec {
                id: *id,
                name: name.clone(),
                partitions: *n,
            })
            .collect();
        let assignment = chosen.assign(&specs, &topic_specs);
        self.target = assignment
            .into_iter()
            .map(|(member, parts)| {
                (
                    member,
                    parts
                        .into_iter()
                        .filter(|(_, p)| !p.is_empty())
                        .map(|(id, p)| (id, p.into_iter().collect()))
                        .collect(),
                )
            })
            .collect();
        self.assignor_name = chosen.name().to_string();
        self.assignment_epoch = self.group_epoch;
    }

    /// Partitions other members still own or are giving up.
    fn owned_by_others(&self, member_id: &str) -> HashMap<Uuid, BTreeSet<i32>> {
        let mut owned: HashMap<Uuid, BTreeSet<i32>> = HashMap::new();
        for m in self.members.values().filter(|m| m.member_id != member_id) {
            for (id, parts) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                owned.entry(*id).or_default().extend(parts);
            }
        }
        owned
    }

    /// One reconciliation step for a member (Kafka's CurrentAssignmentBuilder): give up
    /// first, then take what is free.
    fn reconcile(&mut self, member_id: &str, reported: Option<&TopicPartitions>, now: i64) {
        let others = self.owned_by_others(member_id);
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("member exists");
        if member.state == MemberState::UnrevokedPartitions {
            let still_owned = match reported {
                Some(owned) => owned.iter().any(|(id, parts)| {
                    member
                        .pending_revocation
                        .get(id)
                        .is_some_and(|p| !p.is_disjoint(parts))
                }),
                None => true,
            };
            if still_owned {
                return;
            }
            member.pending_revocation.clear();
            member.revocation_deadline = None;
        } else if member.member_epoch == assignment_epoch && member.state == MemberState::Stable {
            return;
        }
        let kept: TopicPartitions = intersect(&member.assigned, &target);
        let revoking = difference(&member.assigned, &target);
        if !revoking.is_empty() {
            member.assigned = kept;
            member.pending_revocation = revoking;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline = Some(now + i64::from(member.rebalance_timeout_ms.max(0)));
            return;
        }
        let mut assigned = kept;
        let mut unreleased = false;
        for (id, parts) in &target {
            for p in parts {
                if others.get(id).is_some_and(|o| o.contains(p)) {
                    unreleased = true;
                } else {
                    assigned.entry(*id).or_default().insert(*p);
                }
            }
        }
        if member.member_epoch != assignment_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
        member.assigned = assigned;
        member.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Removes members whose session expired or who did not revoke in time; returns the
    /// records to write.
    pub fn tick(
        &mut self,
        group: &str,
        topics: &TopicView,
        limits: &ConsumerLimits,
        now: i64,
    ) -> Vec<CoordinatorRecord> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.member_id.clone())
            .collect();
        let mut records = Vec::new();
        for id in expired {
            tracing::info!(group, member = %id, "consumer group member expired (session or revocation timeout)");
            records.extend(self.remove_member(group, &id, topics, limits, now));
        }
        records
    }

    /// The member with this id, if any, and its epoch check for OffsetCommit/OffsetFetch:
    /// `UNKNOWN_MEMBER_ID`, or `STALE_MEMBER_EPOCH` for an older epoch and
    /// `FENCED_MEMBER_EPOCH` for a newer one.
    pub fn check_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ErrorCode> {
        let member = self
            .members
            .get(member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        if epoch > member.member_epoch {
            Err(ErrorCode::FENCED_MEMBER_EPOCH)
        } else if epoch < member.member_epoch {
            Err(ErrorCode::STALE_MEMBER_EPOCH)
        } else {
            Ok(())
        }
    }

    /// Names of the topics the members subscribe to (OffsetDelete's check).
    pub fn subscribed_topic_names(&self, topics: &TopicView) -> Vec<String> {
        topics
            .iter()
            .filter(|(_, (id, _))| {
                self.members
                    .values()
                    .any(|m| Self::member_topics(m, topics).contains(id))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

fn blank_member(member_id: &str, now: i64, limits: &ConsumerLimits) -> ConsumerMember {
    ConsumerMember {
        member_id: member_id.to_string(),
        instance_id: None,
        rack_id: None,
        client_id: String::new(),
        client_host: String::new(),
        subscribed_topic_names: Vec::new(),
        subscribed_regex: None,
        rebalance_timeout_ms: -1,
        server_assignor: None,
        member_epoch: 0,
        previous_member_epoch: -1,
        state: MemberState::Stable,
        assigned: BTreeMap::new(),
        pending_revocation: BTreeMap::new(),
        session_deadline: now + i64::from(limits.session_timeout_ms),
        revocation_deadline: None,
    }
}

fn member_tombstones(group: &str, member_id: &str) -> Vec<CoordinatorRecord> {
    vec![
        CoordinatorRecord::ConsumerGroupAssignment {
            group: group.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
        CoordinatorRecord::ConsumerGroupMember {
            group: group.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
    ]
}

fn to_list(parts: &TopicPartitions) -> Vec<(Uuid, Vec<i32>)> {
    parts
        .iter()
        .map(|(id, p)| (*id, p.iter().copied().collect()))
        .collect()
}

fn from_list(list: &[(Uuid, Vec<i32>)]) -> TopicPartitions {
    let mut parts = TopicPartitions::new();
    for (id, p) in list {
        parts.entry(*id).or_default().extend(p.iter().copied());
    }
    parts
}

fn intersect(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    a.iter()
        .filter_map(|(id, parts)| {
            let common: BTreeSet<i32> = b
                .get(id)
                .map(|o| parts.intersection(o).copied().collect())
                .unwrap_or_default();
            (!common.is_empty()).then_some((*id, common))
        })
        .collect()
}

fn difference(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    a.iter()
        .filter_map(|(id, parts)| {
            let rest: BTreeSet<i32> = match b.get(id) {
                Some(o) => parts.difference(o).copied().collect(),
                None => parts.clone(),
            };
            (!rest.is_empty()).then_some((*id, rest))
        })
        .collect()
}

fn is_subset(a: &TopicPartitions, b: &TopicPartitions) -> bool {
    a.iter()
        .all(|(id, parts)| parts.is_empty() || b.get(id).is_some_and(|o| parts.is_subset(o)))
}

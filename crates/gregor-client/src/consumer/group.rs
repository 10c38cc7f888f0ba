//! Group membership over the classic protocol: FindCoordinator, JoinGroup (protocol type
//! "consumer", one protocol per configured assignor with a `ConsumerProtocolSubscription`),
//! SyncGroup (the leader runs the assignor), heartbeats in a background task, LeaveGroup.
//!
//! The heartbeat task never rebalances by itself: it raises flags (`needs_join`, `lost`) and
//! wakes `poll()`, which revokes, rejoins and calls the rebalance listener on the caller's task
//! — as the Java client runs rebalances inside `poll()`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::TopicPartition;
use super::assignor::{self, MemberSubscription};
use crate::cluster::Cluster;
use crate::config::ConsumerConfig;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::protocol_util;

/// The embedded consumer protocol's version we write (Java 3.x writes 3 for both).
const PROTOCOL_VERSION: i16 = 3;

/// Membership state shared with the heartbeat task.
#[derive(Default)]
pub(crate) struct GroupState {
    /// Member id ("" before the first join or after UNKNOWN_MEMBER_ID).
    pub member_id: String,
    /// Current generation; -1 while not in one (joining, or fenced).
    pub generation: i32,
    /// A rebalance is needed (REBALANCE_IN_PROGRESS, fenced, revoked partitions).
    pub needs_join: bool,
    /// The member was fenced: its partitions are lost, not revoked.
    pub lost: bool,
    /// Another consumer with the same `group.instance.id` took this member's place
    /// (FENCED_INSTANCE_ID): fatal, as in the Java client, since rejoining would fence that
    /// other consumer in turn, and the two would take turns forever.
    pub fenced_instance: bool,
    /// Cached coordinator connection.
    pub coordinator: Option<Arc<BrokerConnection>>,
    /// When the application last called `poll()`.
    pub last_poll: Option<Instant>,
}

/// The consumer's membership in `group.id`.
pub(crate) struct Membership {
    pub group_id: String,
    pub instance_id: Option<String>,
    pub state: Arc<Mutex<GroupState>>,
    /// Subscribed topics (empty: assign mode, the group only stores offsets).
    pub topics: Vec<String>,
    /// Generation of the last completed join (sent with owned partitions).
    last_generation: i32,
    wake: Arc<Notify>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    cluster: Arc<Cluster>,
    config: Arc<ConsumerConfig>,
}

impl Membership {
    pub fn new(
        group_id: String,
        cluster: Arc<Cluster>,
        config: Arc<ConsumerConfig>,
        wake: Arc<Notify>,
    ) -> Membership {
        Membership {
            group_id,
            instance_id: config.group_instance_id.clone(),
            state: Arc::new(Mutex::new(GroupState {
                generation: -1,
                ..GroupState::default()
            })),
            topics: Vec::new(),
            last_generation: -1,
            wake,
            heartbeat: None,
            cluster,
            config,
        }
    }

    /// Whether the incremental (cooperative) protocol is used: only when every configured
    /// assignor supports it, as in the Java client.
    pub fn cooperative(&self) -> bool {
        self.config
            .assignors
            .iter()
            .all(|a| a == "cooperative-sticky")
    }

    /// The coordinator, looked up if unknown.
    pub async fn coordinator(&self) -> Result<Arc<BrokerConnection>> {
        cached_coordinator(&self.state, &self.cluster, &self.group_id).await
    }

    /// Forgets the coordinator after NOT_COORDINATOR or a broken connection.
    pub fn coordinator_lost(&self) {
        self.state.lock().coordinator = None;
    }

    /// The rebalance flags: (needs_join, lost). They stay set until [`Self::clear_flags`],
    /// so a `poll()` dropped between reading them and starting the join loses nothing.
    pub fn flags(&self) -> (bool, bool) {
        let state = self.state.lock();
        (state.needs_join, state.lost)
    }

    /// Clears the rebalance flags once a join is about to start.
    pub fn clear_flags(&self) {
        let mut state = self.state.lock();
        state.needs_join = false;
        state.lost = false;
    }

    /// Takes the `lost` flag alone: set by a join that learnt the member was removed while
    /// it still held partitions (see [`Joiner::join`]).
    pub fn take_lost(&self) -> bool {
        std::mem::take(&mut self.state.lock().lost)
    }

    /// FENCED_INSTANCE_ID as an error, once another consumer with this `group.instance.id`
    /// took the member's place; `poll()` reports it instead of rejoining.
    pub fn fenced_error(&self) -> Option<ClientError> {
        self.state
            .lock()
            .fenced_instance
            .then(|| fenced_instance_error(&self.group_id, self.instance_id.as_deref()))
    }

    /// A detached copy of what a join needs (see [`Joiner`]).
    pub fn joiner(&self) -> Joiner {
        self.state.lock().generation = -1;
        Joiner {
            group_id: self.group_id.clone(),
            instance_id: self.instance_id.clone(),
            topics: self.topics.clone(),
            last_generation: self.last_generation,
            state: Arc::clone(&self.state),
            wake: Arc::clone(&self.wake),
            cluster: Arc::clone(&self.cluster),
            config: Arc::clone(&self.config),
        }
    }

    /// Records a completed join: its generation goes with owned partitions next time, and
    /// heartbeats run.
    pub fn finish_join(&mut self, generation: i32) {
        self.last_generation = generation;
        self.start_heartbeat();
    }

    /// Asks for a rebalance on the next `poll()`.
    pub fn request_rejoin(&self) {
        self.state.lock().needs_join = true;
    }

    /// (generation, member id) for commits: -1 and "" in assign mode. While a join is in
    /// progress, the last completed generation: the coordinator's generation only moves on
    /// when the join completes, so a cooperative member still owning partitions (or closing
    /// meanwhile) can commit them, as the Java client does.
    pub fn identity(&self) -> (i32, String) {
        let state = self.state.lock();
        if self.topics.is_empty() {
            (-1, String::new())
        } else if state.generation < 0 {
            (self.last_generation, state.member_id.clone())
        } else {
            (state.generation, state.member_id.clone())
        }
    }

    fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let state = Arc::clone(&self.state);
        let wake = Arc::clone(&self.wake);
        let group = self.group_id.clone();
        let instance = self.instance_id.clone();
        let interval = self.config.heartbeat_interval;
        let max_poll_interval = self.config.max_poll_interval;
        let cluster = Arc::clone(&self.cluster);
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let (member, generation) = {
                    let s = state.lock();
                    (s.member_id.clone(), s.generation)
                };
                if generation < 0 {
                    continue;
                }
                // A lost coordinator is found again here: without heartbeats the member would
                // be dropped from the group without ever hearing of it.
                let coordinator = match cached_coordinator(&state, &cluster, &group).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(%group, error = %e, "coordinator lookup failed");
                        continue;
                    }
                };
                let stalled = state
                    .lock()
                    .last_poll
                    .is_some_and(|t| t.elapsed() > max_poll_interval);
                if stalled {
                    // The application stopped polling: give its partitions to the others, as
                    // the Java client does after max.poll.interval.ms; the next poll rejoins.
                    tracing::warn!(
                        %group,
                        "poll() was not called within max.poll.interval.ms; leaving the group"
                    );
                    {
                        let mut s = state.lock();
                        s.generation = -1;
                        s.needs_join = true;
                        s.lost = true;
                        s.member_id.clear();
                    }
                    if instance.is_none() {
                        send_leave(
                            &coordinator,
                            &group,
                            member,
                            "consumer poll timeout has expired",
                        )
                        .await;
                    }
                    continue;
                }
                let request = HeartbeatRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_generation_id(generation)
                    .with_member_id(StrBytes::from_string(member))
                    .with_group_instance_id(instance.clone().map(StrBytes::from_string));
                let result = coordinator.send(&request, 4).await;
                let mut s = state.lock();
                if s.generation != generation {
                    continue; // a rejoin happened meanwhile
                }
                let code = match result {
                    Ok(r) => ErrorCode(r.error_code),
                    Err(_) => {
                        s.coordinator = None;
                        continue;
                    }
                };
                match code {
                    ErrorCode::NONE => continue,
                    ErrorCode::REBALANCE_IN_PROGRESS => s.needs_join = true,
                    ErrorCode::FENCED_INSTANCE_ID => {
                        // Fatal: no rejoin, no more heartbeats; poll() reports it.
                        s.fenced_instance = true;
                        s.generation = -1;
                        drop(s);
                        wake.notify_waiters();
                        return;
                    }
                    ErrorCode::ILLEGAL_GENERATION => {
                        s.needs_join = true;
                        s.lost = true;
                        s.generation = -1;
                    }
                    ErrorCode::UNKNOWN_MEMBER_ID => {
                        s.needs_join = true;
                        s.lost = true;
                        s.generation = -1;
                        s.member_id.clear();
                    }
                    _ => {
                        s.coordinator = None;
                        continue;
                    }
                }
                drop(s);
                wake.notify_waiters();
            }
        }));
    }

    /// Leaves the group (dynamic members only: a static member keeps its place until
    /// `session.timeout.ms` passes, so a restart does not rebalance) and stops heartbeats.
    pub async fn leave(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let member_id = {
            let mut s = self.state.lock();
            s.generation = -1;
            s.member_id.clone()
        };
        if self.instance_id.is_some() || member_id.is_empty() || self.topics.is_empty() {
            return;
        }
        let Ok(coordinator) = self.coordinator().await else {
            return;
        };
        send_leave(
            &coordinator,
            &self.group_id,
            member_id,
            "the consumer is closing",
        )
        .await;
        self.state.lock().member_id.clear();
    }
}

/// The group's cached coordinator connection, or a new one (then cached) when there is none
/// or it broke: the one place the consumer's calls, its joins and its heartbeats find the
/// coordinator.
pub(crate) async fn cached_coordinator(
    state: &Mutex<GroupState>,
    cluster: &Cluster,
    group: &str,
) -> Result<Arc<BrokerConnection>> {
    let cached = state.lock().coordinator.clone();
    if let Some(c) = cached.filter(|c| !c.is_closed()) {
        return Ok(c);
    }
    let c = coordinator_connection(cluster, group).await?;
    state.lock().coordinator = Some(Arc::clone(&c));
    Ok(c)
}

/// FENCED_INSTANCE_ID for this member, with the ids that clash.
fn fenced_instance_error(group: &str, instance: Option<&str>) -> ClientError {
    ClientError::Kafka {
        code: ErrorCode::FENCED_INSTANCE_ID,
        message: Some(format!(
            "another consumer of group {group} uses group.instance.id {}",
            instance.unwrap_or_default()
        )),
    }
}

/// A connection of the group's own to its coordinator, as the Java client keeps one: a
/// JoinGroup parked there until every member rejoins must not hold up the Fetch requests on
/// the shared connection to the same broker (responses come back in request order).
pub(crate) async fn coordinator_connection(
    cluster: &Cluster,
    group: &str,
) -> Result<Arc<BrokerConnection>> {
    let shared = cluster.coordinator(group, 0).await?;
    let config = cluster.config();
    BrokerConnection::connect(shared.addr(), &config.client_id, config.request_timeout).await
}

/// Sends LeaveGroup for `member_id` (errors are only logged: the session timeout removes the
/// member anyway).
async fn send_leave(
    coordinator: &BrokerConnection,
    group: &str,
    member_id: String,
    reason: &'static str,
) {
    let Ok(version) = coordinator.version::<LeaveGroupRequest>(5) else {
        return;
    };
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    // v0-2 name one member at the top level; v3+ list members (KIP-345).
    let request = if version >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(group_id)
            .with_members(vec![
                MemberIdentity::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_reason(Some(StrBytes::from_static_str(reason)).filter(|_| version >= 5)),
            ])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(group_id)
            .with_member_id(StrBytes::from_string(member_id))
    };
    if let Err(e) = coordinator.send_at(&request, version).await {
        tracing::debug!(%group, error = %e, "LeaveGroup failed");
    }
}

/// What a join needs, detached from the consumer so the join can run in its own task: a
/// `poll()` with a short timeout returns while the rebalance goes on, and picks up its result
/// later (JoinGroup may wait for every member, up to the rebalance timeout).
#[derive(Clone)]
pub(crate) struct Joiner {
    group_id: String,
    instance_id: Option<String>,
    topics: Vec<String>,
    last_generation: i32,
    state: Arc<Mutex<GroupState>>,
    /// Wakes `poll()` when the join ends or partitions are found lost.
    wake: Arc<Notify>,
    cluster: Arc<Cluster>,
    config: Arc<ConsumerConfig>,
}

/// How one JoinGroup + SyncGroup round ended.
enum Round {
    /// This member's assignment.
    Assigned(Vec<TopicPartition>),
    /// Rejoin at once (new member id, rebalance restarted).
    Again,
    /// The coordinator no longer knows this member or its generation: it was removed from the
    /// group, so whatever it still owns may already belong to another member.
    Removed,
}

impl Joiner {
    fn subscription(&self, owned: &[TopicPartition]) -> Bytes {
        let mut by_topic: HashMap<&str, Vec<i32>> = HashMap::new();
        for (t, p) in owned {
            by_topic.entry(t).or_default().push(*p);
        }
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(
                self.topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.clone()))
                    .collect(),
            )
            .with_owned_partitions(
                by_topic
                    .into_iter()
                    .map(|(t, partitions)| {
                        OwnedTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
            .with_generation_id(self.last_generation);
        let mut buf = BytesMut::new();
        buf.put_i16(PROTOCOL_VERSION);
        subscription
            .encode(&mut buf, PROTOCOL_VERSION)
            .expect("a subscription always encodes");
        buf.freeze()
    }

    /// Joins (or rejoins) the group and returns this member's assignment and generation.
    /// `owned` is what the member still holds (empty under the eager protocol, which revokes
    /// everything first). If the coordinator says the member was removed meanwhile, those
    /// partitions are no longer claimed and the `lost` flag tells `poll()` to drop them
    /// ([`Membership::take_lost`]), as the Java client does in cooperative mode.
    pub async fn join(
        mut self,
        mut owned: Vec<TopicPartition>,
    ) -> Result<(Vec<TopicPartition>, i32)> {
        let wake = Arc::clone(&self.wake);
        let result = self.join_rounds(&mut owned).await;
        wake.notify_waiters();
        result
    }

    async fn join_rounds(
        &mut self,
        owned: &mut Vec<TopicPartition>,
    ) -> Result<(Vec<TopicPartition>, i32)> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.try_join(owned).await {
                Ok(Round::Assigned(assigned)) => {
                    return Ok((assigned, self.state.lock().generation));
                }
                Ok(Round::Again) => continue,
                Ok(Round::Removed) => {
                    if !owned.is_empty() {
                        owned.clear();
                        self.state.lock().lost = true;
                        self.wake.notify_waiters();
                    }
                }
                Err(e) if e.code() == Some(ErrorCode::FENCED_INSTANCE_ID) => {
                    self.state.lock().fenced_instance = true;
                    return Err(e);
                }
                Err(e) if e.is_retriable() && attempts < 50 => {
                    // An unreachable cluster is reported soon; a timeout is not: JoinGroup may
                    // wait for slow members longer than request.timeout.ms, and rejoining with
                    // the same member id simply waits again.
                    if matches!(e, ClientError::Connect { .. }) && attempts > 3 {
                        return Err(e);
                    }
                    tracing::debug!(group = %self.group_id, error = %e, "join failed; retrying");
                    self.state.lock().coordinator = None;
                    tokio::time::sleep(self.cluster.config().retry_backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One JoinGroup + SyncGroup round.
    async fn try_join(&mut self, owned: &[TopicPartition]) -> Result<Round> {
        let coordinator = cached_coordinator(&self.state, &self.cluster, &self.group_id).await?;
        let metadata = self.subscription(owned);
        let member_id = self.state.lock().member_id.clone();
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_session_timeout_ms(self.config.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(self.config.max_poll_interval.as_millis() as i32)
            .with_member_id(StrBytes::from_string(member_id))
            .with_group_instance_id(self.instance_id.clone().map(StrBytes::from_string))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(
                self.config
                    .assignors
                    .iter()
                    .map(|name| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        // The coordinator may hold JoinGroup until every member rejoins, up to the rebalance
        // timeout; like the Java client, wait that long plus 5 s before giving up.
        let timeout = self.config.max_poll_interval + Duration::from_secs(5);
        let response = coordinator.send_with_timeout(&request, 9, timeout).await?;
        match ErrorCode(response.error_code) {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                self.state.lock().member_id = response.member_id.to_string();
                return Ok(Round::Again);
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.state.lock().member_id.clear();
                return Ok(Round::Removed);
            }
            ErrorCode::ILLEGAL_GENERATION => return Ok(Round::Removed),
            ErrorCode::REBALANCE_IN_PROGRESS => return Ok(Round::Again),
            code => {
                return Err(ClientError::Kafka {
                    code,
                    message: Some(format!("joining group {}", self.group_id)),
                });
            }
        }
        let member_id = response.member_id.to_string();
        let generation = response.generation_id;
        let protocol = response
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "range".to_string());
        self.state.lock().member_id = member_id.clone();
        let assignments = if response.leader.as_str() == member_id && !response.skip_assignment {
            self.lead(&protocol, &response.members).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id.clone()))
            .with_group_instance_id(self.instance_id.clone().map(StrBytes::from_string))
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_string(protocol)))
            .with_assignments(assignments);
        let response = coordinator.send(&request, 5).await?;
        match ErrorCode(response.error_code) {
            ErrorCode::NONE => {}
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.state.lock().member_id.clear();
                return Ok(Round::Removed);
            }
            ErrorCode::ILLEGAL_GENERATION => return Ok(Round::Removed),
            ErrorCode::REBALANCE_IN_PROGRESS => return Ok(Round::Again),
            code => {
                return Err(ClientError::Kafka {
                    code,
                    message: Some(format!("syncing group {}", self.group_id)),
                });
            }
        }
        let assigned = protocol_util::decode_assignment(&response.assignment)?;
        {
            // `lost` stays: poll() still has to drop what a removal earlier in this join took.
            let mut state = self.state.lock();
            state.generation = generation;
            state.needs_join = false;
        }
        Ok(Round::Assigned(assigned))
    }

    /// The leader's part: read every member's subscription, run the assignor, encode.
    async fn lead(
        &self,
        protocol: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| {
                let mut s = decode_subscription(&m.metadata);
                s.member_id = m.member_id.to_string();
                s.instance_id = m.group_instance_id.as_ref().map(|i| i.to_string());
                s
            })
            .collect();
        let mut counts = HashMap::new();
        for topic in subscriptions.iter().flat_map(|s| &s.topics) {
            if counts.contains_key(topic) {
                continue;
            }
            match self.cluster.topic(topic).await {
                Ok(info) => {
                    counts.insert(topic.clone(), info.partitions.len() as i32);
                }
                Err(e) => tracing::debug!(%topic, error = %e, "subscribed topic not assignable"),
            }
        }
        let assignment = assignor::assign(protocol, &subscriptions, &counts);
        Ok(assignment
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member))
                    .with_assignment(encode_assignment(&tps))
            })
            .collect())
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// Reads a member's `ConsumerProtocolSubscription` (any version; newer ones are read as the
/// newest we know, their extra fields ignored). Unreadable metadata subscribes to nothing.
fn decode_subscription(metadata: &[u8]) -> MemberSubscription {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return MemberSubscription::default();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    let Ok(s) = ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)) else {
        return MemberSubscription::default();
    };
    MemberSubscription {
        member_id: String::new(),
        instance_id: None,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect(),
        generation: if version >= 2 { s.generation_id } else { -1 },
    }
}

fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    let mut by_topic: Vec<(String, Vec<i32>)> = Vec::new();
    for (t, p) in partitions {
        match by_topic.iter_mut().find(|(name, _)| name == t) {
            Some((_, ps)) => ps.push(*p),
            None => by_topic.push((t.clone(), vec![*p])),
        }
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, partitions)| {
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(PROTOCOL_VERSION);
    assignment
        .encode(&mut buf, PROTOCOL_VERSION)
        .expect("an assignment always encodes");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_round_trips() {
        let tps = vec![
            ("a".to_string(), 0),
            ("a".to_string(), 2),
            ("b".to_string(), 1),
        ];
        let decode = protocol_util::decode_assignment;
        assert_eq!(decode(&encode_assignment(&tps)).unwrap(), tps);
        assert!(decode(&[]).unwrap().is_empty());
    }
}

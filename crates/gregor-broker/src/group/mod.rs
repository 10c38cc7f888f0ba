//! The `GroupCoordinator`: consumer groups (classic and KIP-848) and their committed offsets.
//!
//! Every group lives in one partition of `__consumer_offsets` (by Kafka's hash of its id);
//! the coordinator keeps groups in memory and writes every change that must survive a restart
//! (group metadata, member assignments, offsets) to that partition — replicated like an
//! `acks=all` produce — before answering. A broker coordinates the groups of the partitions it
//! leads: when it becomes leader of one it replays it to rebuild its groups, and when
//! leadership moves away it drops them (clients get `NOT_COORDINATOR` and look again).
//!
//! Each group has its own lock, held across the write of its records, so one group's changes
//! reach the log in the order they were made while other groups proceed in parallel. All
//! methods do file I/O or may, so the broker calls them from blocking threads. Deadlines
//! (sessions, rebalance timeouts, offsets retention) are driven by [`GroupCoordinator::tick`].
//!
//! Transactional offset commits (TxnOffsetCommit, KIP-98) are written in the producer's
//! transaction and held per group and producer ([`pending`]) until the transaction's marker in
//! the group's partition commits or aborts them ([`GroupCoordinator::complete_txn_offsets`]
//! live, the marker itself on replay).

pub mod assignor;
pub mod classic;
pub mod consumer;
mod consumer_protocol;
pub mod pending;
pub mod records;
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use gregor_log::TopicPartition;
use gregor_protocol::ErrorCode;
use parking_lot::Mutex;

use crate::config::GroupConfig;
use crate::replica::{ReplicaManager, Role};
use crate::topics::TopicRegistry;
use classic::{
    ClassicGroup, ClassicLimits, ClassicState, JoinRequest, JoinResult, Reply, SyncOutcome,
    SyncRequest, SyncResult,
};
use consumer::{ConsumerGroup, ConsumerLimits, HeartbeatRequest, HeartbeatResult, TopicView};
use pending::{OpenTransactions, PendingOffsets};
use records::{CoordinatorRecord, OffsetCommitValue};
use store::{OFFSETS_TOPIC, OffsetsTopic, Replayed};

/// A committed offset, as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the record before it, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
    /// Explicit expiry (OffsetCommit v1 only), or -1.
    pub expire_timestamp: i64,
    /// Where its record is in `__consumer_offsets`: a committed transaction's offset only
    /// replaces one written before it (Kafka's `recordOffset`).
    pub record_offset: i64,
}

impl CommittedOffset {
    fn from_value(v: &OffsetCommitValue, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp: v.commit_timestamp,
            expire_timestamp: v.expire_timestamp,
            record_offset,
        }
    }

    fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp,
            expire_timestamp: self.expire_timestamp,
        }
    }
}

/// Which protocol a group speaks.
#[derive(Debug)]
pub enum GroupKind {
    /// JoinGroup/SyncGroup (also groups that only hold offsets).
    Classic(ClassicGroup),
    /// KIP-848 ConsumerGroupHeartbeat.
    Consumer(ConsumerGroup),
}

/// A group and its offsets.
#[derive(Debug)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// Its protocol and membership.
    pub kind: GroupKind,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets of transactions not ended yet (TxnOffsetCommit): invisible until committed.
    pending: PendingOffsets,
    /// Deleted (DeleteGroups, or expired): the map entry is about to go.
    dead: bool,
}

impl Group {
    fn new(id: &str, now: i64) -> Group {
        Group {
            id: id.to_string(),
            kind: GroupKind::Classic(ClassicGroup::new(now)),
            offsets: BTreeMap::new(),
            pending: PendingOffsets::default(),
            dead: false,
        }
    }

    /// Whether the group stores any offset, committed or in an open transaction (a group
    /// that does must not be dropped).
    fn holds_offsets(&self) -> bool {
        !self.offsets.is_empty() || !self.pending.is_empty()
    }

    /// Applies an offset tombstone: the committed offset and those of open transactions go.
    fn remove_offset(&mut self, key: &(String, i32)) {
        self.offsets.remove(key);
        self.pending.remove_partition(key);
    }

    /// Applies `producer_id`'s transaction marker to this group's offsets.
    fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        self.pending
            .complete(producer_id, commit, &mut self.offsets);
    }

    /// Kafka's state name (ListGroups, DescribeGroups).
    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state().name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    /// "classic" or "consumer" (ListGroups v5's group type).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    /// The protocol type ListGroups reports: the classic group's (empty for offsets-only
    /// groups), "consumer" for KIP-848 groups.
    pub fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            GroupKind::Consumer(_) => "consumer".to_string(),
        }
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.is_empty(),
            GroupKind::Consumer(g) => g.members.is_empty(),
        }
    }
}

/// A partition and its commit, if any, or why it cannot be answered (`UNSTABLE_OFFSET_COMMIT`)
/// (OffsetFetch).
pub type FetchedOffset = ((String, i32), Result<Option<CommittedOffset>, ErrorCode>);

/// One partition's answer in an OffsetCommit.
pub type PartitionResult = ((String, i32), ErrorCode);

/// An offset to commit: topic, partition, offset, leader epoch, metadata.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client metadata (`None` is stored as empty, as Kafka does).
    pub metadata: Option<String>,
}

/// Who is committing: the member and its generation (classic) or epoch (consumer), or
/// `generation < 0` and no member for an admin/simple-consumer commit.
#[derive(Debug, Clone, Default)]
pub struct Committer {
    /// Member id, or empty.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Generation (classic) or member epoch (consumer); -1 for none.
    pub generation: i32,
    /// OffsetCommit v2–4's `retention_time_ms`, when not -1: these offsets expire that long
    /// after the commit, whatever the group does.
    pub retention_ms: Option<i64>,
}

/// The coordinator for every group.
pub struct GroupCoordinator {
    config: GroupConfig,
    store: OffsetsTopic,
    topics: Arc<TopicRegistry>,
    groups: Mutex<HashMap<String, Arc<Mutex<Group>>>>,
    /// `__consumer_offsets` partitions this broker leads, and whether their groups are loaded:
    /// a group is served here only while its partition is led here.
    owned: Mutex<HashMap<i32, bool>>,
    /// One lock per `__consumer_offsets` partition, held while its groups load, while a
    /// TxnOffsetCommit writes and holds its offsets, and while a transaction marker settles
    /// them: a marker can then never slip between a replay and the groups it rebuilt, nor
    /// between a transactional write and its pending offsets.
    partition_locks: Mutex<HashMap<i32, Arc<Mutex<()>>>>,
    /// Groups with offsets in open transactions, by producer id.
    open_transactions: Mutex<OpenTransactions>,
    next_expiry_check: Mutex<i64>,
}

impl GroupCoordinator {
    /// A coordinator that keeps its state in `__consumer_offsets` (with up to
    /// `replication_factor` replicas). It serves the groups of the offsets partitions this
    /// broker leads, loaded as leadership arrives ([`Self::on_roles`]).
    pub fn new(
        config: GroupConfig,
        replicas: Arc<ReplicaManager>,
        topics: Arc<TopicRegistry>,
        replication_factor: i16,
    ) -> Self {
        let store = OffsetsTopic::new(
            replicas,
            Arc::clone(&topics),
            config.offsets_topic_num_partitions,
            config.offsets_topic_segment_bytes,
            replication_factor,
        );
        GroupCoordinator {
            config,
            store,
            topics,
            groups: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
            partition_locks: Mutex::new(HashMap::new()),
            open_transactions: Mutex::new(OpenTransactions::default()),
            next_expiry_check: Mutex::new(0),
        }
    }

    /// Follows leadership changes of `__consumer_offsets` partitions: a partition led here
    /// has its groups loaded (replayed from its log); one no longer led here has them dropped,
    /// and their parked requests told `NOT_COORDINATOR`. File I/O: call from a blocking thread.
    pub fn on_roles(&self, changes: &[(TopicPartition, Role)], now: i64) {
        for (tp, role) in changes.iter().filter(|(tp, _)| tp.topic == OFFSETS_TOPIC) {
            if *role == Role::Leader {
                self.owned.lock().insert(tp.partition, false);
                match self.load_partition(tp.partition, now) {
                    Ok(loaded) => {
                        tracing::info!(
                            partition = tp.partition,
                            groups = loaded,
                            "now coordinating the groups of {OFFSETS_TOPIC}-{}",
                            tp.partition
                        );
                        if let Some(done) = self.owned.lock().get_mut(&tp.partition) {
                            *done = true;
                        }
                    }
                    Err(e) => {
                        tracing::error!(partition = tp.partition, error = %e, "loading groups failed");
                        self.owned.lock().remove(&tp.partition);
                    }
                }
            } else if self.owned.lock().remove(&tp.partition).is_some() {
                self.unload_partition(tp.partition);
            }
        }
    }

    /// Drops the groups of `partition` (leadership moved away).
    fn unload_partition(&self, partition: i32) {
        let partitions = self.store.partitions();
        let gone: Vec<Arc<Mutex<Group>>> = {
            let mut groups = self.groups.lock();
            let ids: Vec<String> = groups
                .keys()
                .filter(|id| store::partition_for(id, partitions) == partition)
                .cloned()
                .collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        self.open_transactions
            .lock()
            .retain_groups(|id| store::partition_for(id, partitions) != partition);
        for group in &gone {
            if let GroupKind::Classic(g) = &mut group.lock().kind {
                g.fail_all_parked(ErrorCode::NOT_COORDINATOR);
            }
        }
        tracing::info!(
            partition,
            groups = gone.len(),
            "no longer coordinating the groups of {OFFSETS_TOPIC}-{partition}"
        );
    }

    /// Whether this broker coordinates `group` now: `NOT_COORDINATOR` when another broker
    /// leads its partition, `COORDINATOR_LOAD_IN_PROGRESS` while its groups load.
    fn check_owner(&self, group: &str) -> Result<(), ErrorCode> {
        match self.owned.lock().get(&self.store.partition_for(group)) {
            Some(true) => Ok(()),
            Some(false) => Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(ErrorCode::NOT_COORDINATOR),
        }
    }

    /// The lock that serialises loading, transactional commits and transaction markers of
    /// one `__consumer_offsets` partition.
    fn partition_lock(&self, partition: i32) -> Arc<Mutex<()>> {
        Arc::clone(self.partition_locks.lock().entry(partition).or_default())
    }

    fn classic_limits(&self) -> ClassicLimits {
        ClassicLimits {
            initial_rebalance_delay_ms: self.config.initial_rebalance_delay_ms,
            max_size: self.config.max_size,
        }
    }

    fn consumer_limits(&self) -> ConsumerLimits {
        ConsumerLimits {
            session_timeout_ms: self.config.consumer_session_timeout_ms,
            max_size: self.config.consumer_max_size,
            assignors: self.config.consumer_assignors.clone(),
        }
    }

    /// The heartbeat interval KIP-848 members are told to use.
    pub fn consumer_heartbeat_interval_ms(&self) -> i32 {
        self.config.consumer_heartbeat_interval_ms
    }

    /// Rebuilds the groups of one `__consumer_offsets` partition from its log: the latest
    /// record per key wins, a tombstone removes; offsets written in a transaction wait for its
    /// marker (and still wait at the end if the transaction is open).
    fn load_partition(&self, partition: i32, now: i64) -> Result<usize, store::StoreError> {
        let lock = self.partition_lock(partition);
        let _settling = lock.lock();
        let limits = self.consumer_limits();
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut open = OpenTransactions::default();
        {
            self.store.replay(partition, |entry| {
                let (record_offset, producer_id, record) = match entry {
                    Replayed::TxnMarker {
                        producer_id,
                        commit,
                    } => {
                        for id in open.take(producer_id, |_| true) {
                            if let Some(group) = groups.get_mut(&id) {
                                group.complete_txn(producer_id, commit);
                            }
                        }
                        return;
                    }
                    Replayed::Record {
                        offset,
                        producer_id,
                        record,
                    } => (offset, producer_id, record),
                };
                let group = groups
                    .entry(record.group().to_string())
                    .or_insert_with(|| Group::new(record.group(), now));
                group.dead = false;
                match record {
                    CoordinatorRecord::OffsetCommit {
                        topic,
                        partition,
                        value,
                        ..
                    } => match (value, producer_id) {
                        (Some(v), None) => {
                            let committed = CommittedOffset::from_value(&v, record_offset);
                            group.offsets.insert((topic, partition), committed);
                        }
                        (Some(v), Some(producer_id)) => {
                            let committed = CommittedOffset::from_value(&v, record_offset);
                            group
                                .pending
                                .add(producer_id, (topic, partition), committed);
                            open.insert(producer_id, &group.id);
                        }
                        (None, _) => group.remove_offset(&(topic, partition)),
                    },
                    CoordinatorRecord::GroupMetadata { value, .. } => match value {
                        Some(v) => {
                            group.kind = GroupKind::Classic(ClassicGroup::from_record(&v, now))
                        }
                        None => {
                            group.kind = GroupKind::Classic(ClassicGroup::new(now));
                            group.dead = true;
                        }
                    },
                    CoordinatorRecord::ConsumerGroupMetadata { epoch: None, .. } => {
                        group.kind = GroupKind::Classic(ClassicGroup::new(now));
                        group.dead = true;
                    }
                    other => {
                        if !matches!(group.kind, GroupKind::Consumer(_)) {
                            group.kind = GroupKind::Consumer(ConsumerGroup::new(now));
                        }
                        if let GroupKind::Consumer(g) = &mut group.kind {
                            g.replay(&other, now, &limits);
                        }
                    }
                }
            })?;
        }
        let mut loaded = self.groups.lock();
        let mut open = self.open_transactions.lock();
        let mut count = 0;
        for (id, mut group) in groups {
            if let GroupKind::Consumer(g) = &mut group.kind {
                g.finish_load();
            }
            if group.dead && !group.holds_offsets() {
                continue;
            }
            group.dead = false;
            count += 1;
            for producer_id in group.pending.producers() {
                open.insert(producer_id, &id);
            }
            loaded.insert(id, Arc::new(Mutex::new(group)));
        }
        Ok(count)
    }

    /// FindCoordinator for a group: creates `__consumer_offsets` on first use, as Kafka does,
    /// and returns the partition whose leader coordinates the group.
    pub fn find_coordinator(&self, group: &str) -> Result<TopicPartition, ErrorCode> {
        self.store.ensure_created().map_err(|e| {
            tracing::warn!(error = %e, "group coordinator unavailable");
            e.error_code()
        })?;
        Ok(TopicPartition::new(
            OFFSETS_TOPIC,
            self.store.partition_for(group),
        ))
    }

    fn get(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups.lock().get(id).cloned()
    }

    fn get_or_create(&self, id: &str, now: i64) -> Arc<Mutex<Group>> {
        Arc::clone(
            self.groups
                .lock()
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(id, now)))),
        )
    }

    /// Writes `records` for `group` (whose lock the caller holds), in `transactional`'s
    /// transaction if given; returns the offset of the first record, if any was written.
    fn persist(
        &self,
        group: &str,
        records: &[CoordinatorRecord],
        transactional: Option<(i64, i16)>,
        now: i64,
    ) -> Result<Option<i64>, ErrorCode> {
        self.store
            .append(self.store.partition_for(group), records, transactional, now)
            .map_err(|e| {
                tracing::warn!(group, error = %e, "writing group state failed");
                e.error_code()
            })
    }

    /// Writes the classic group's metadata record (after the group became Empty).
    fn persist_classic(&self, group: &Group, now: i64) {
        if let GroupKind::Classic(g) = &group.kind {
            let record = CoordinatorRecord::GroupMetadata {
                group: group.id.clone(),
                value: Some(g.to_record()),
            };
            let _ = self.persist(&group.id, &[record], None, now);
        }
    }

    /// JoinGroup.
    pub fn join_group(&self, group_id: &str, request: JoinRequest, now: i64) -> Reply<JoinResult> {
        let refuse = |error| Reply::Now(JoinResult::error(error, &request.member_id));
        if group_id.is_empty() {
            return refuse(ErrorCode::INVALID_GROUP_ID);
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return refuse(ErrorCode::INVALID_SESSION_TIMEOUT);
        }
        if let Err(e) = self.store.ensure_created() {
            return refuse(e.error_code());
        }
        if let Err(e) = self.check_owner(group_id) {
            return refuse(e);
        }
        let group = self.get_or_create(group_id, now);
        let mut group = group.lock();
        if group.dead {
            return refuse(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if let GroupKind::Consumer(g) = &group.kind {
            if !g.members.is_empty() {
                return refuse(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
            }
            group.kind = GroupKind::Classic(ClassicGroup::new(now));
        }
        let GroupKind::Classic(g) = &mut group.kind else {
            unreachable!("converted above")
        };
        let reply = g.join(request, self.classic_limits(), now);
        if g.take_dirty() {
            self.persist_classic(&group, now);
        }
        reply
    }

    /// SyncGroup: the leader's assignment is written before anyone receives it.
    pub fn sync_group(&self, group_id: &str, request: SyncRequest, now: i64) -> Reply<SyncResult> {
        if let Err(e) = self.check_owner(group_id) {
            return Reply::Now(SyncResult::error(e));
        }
        let Some(group) = self.get(group_id) else {
            return Reply::Now(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID));
        };
        let mut group = group.lock();
        let id = group.id.clone();
        let GroupKind::Classic(g) = &mut group.kind else {
            return Reply::Now(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID));
        };
        match g.sync(request, now) {
            SyncOutcome::Reply(reply) => reply,
            SyncOutcome::Persist(value, rx) => {
                let record = CoordinatorRecord::GroupMetadata {
                    group: id.clone(),
                    value: Some(value),
                };
                let error = match self.persist(&id, &[record], None, now) {
                    Ok(_) => ErrorCode::NONE,
                    Err(e) => e,
                };
                g.finish_sync(error, self.classic_limits(), now);
                Reply::Later(rx)
            }
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> ErrorCode {
        if let Err(e) = self.check_owner(group_id) {
            return e;
        }
        let Some(group) = self.get(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        let mut group = group.lock();
        match &mut group.kind {
            GroupKind::Classic(g) => g.heartbeat(member_id, instance_id, generation, now),
            GroupKind::Consumer(_) => ErrorCode::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup: one result per member, in order.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Vec<ErrorCode> {
        if let Err(e) = self.check_owner(group_id) {
            return vec![e; members.len()];
        }
        let Some(group) = self.get(group_id) else {
            return vec![ErrorCode::UNKNOWN_MEMBER_ID; members.len()];
        };
        let mut group = group.lock();
        let limits = self.classic_limits();
        let mut became_empty = false;
        let results = match &mut group.kind {
            GroupKind::Classic(g) => members
                .iter()
                .map(
                    |(member, instance)| match g.leave(member, instance.as_deref(), limits, now) {
                        Ok(empty) => {
                            became_empty |= empty;
                            ErrorCode::NONE
                        }
                        Err(e) => e,
                    },
                )
                .collect(),
            GroupKind::Consumer(_) => vec![ErrorCode::UNKNOWN_MEMBER_ID; members.len()],
        };
        if became_empty {
            self.persist_classic(&group, now);
        }
        results
    }

    /// ConsumerGroupHeartbeat (KIP-848).
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: HeartbeatRequest,
        now: i64,
    ) -> HeartbeatResult {
        let (member_id, member_epoch) = (request.member_id.clone(), request.member_epoch);
        let refuse = |error: ErrorCode, message: &str| HeartbeatResult {
            error,
            message: Some(message.to_string()),
            member_id: member_id.clone(),
            member_epoch,
            assignment: None,
        };
        if group_id.is_empty() {
            return refuse(ErrorCode::INVALID_GROUP_ID, "the group id is empty");
        }
        if !self.config.consumer_protocol_enabled {
            return refuse(
                ErrorCode::UNSUPPORTED_VERSION,
                "the consumer group protocol is disabled (group.coordinator.rebalance.protocols)",
            );
        }
        if let Err(e) = self.store.ensure_created() {
            return refuse(e.error_code(), "offsets topic unavailable");
        }
        if let Err(e) = self.check_owner(group_id) {
            return refuse(e, "this broker does not coordinate the group");
        }
        let group = self.get_or_create(group_id, now);
        let mut group = group.lock();
        if group.dead {
            // Deleted while this request waited for it: the client retries.
            return refuse(
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                "the group was just deleted",
            );
        }
        if let GroupKind::Classic(g) = &group.kind {
            if !g.is_empty() {
                return refuse(
                    ErrorCode::GROUP_ID_NOT_FOUND,
                    "the group is a classic group with members; it cannot take consumer-protocol members",
                );
            }
            group.kind = GroupKind::Consumer(ConsumerGroup::new(now));
        }
        let view = self.topic_view();
        let limits = self.consumer_limits();
        let id = group.id.clone();
        let GroupKind::Consumer(g) = &mut group.kind else {
            unreachable!("converted above")
        };
        let (result, records) = g.heartbeat(&id, request, &view, &limits, now);
        if g.members.is_empty() && g.group_epoch == 0 && !group.holds_offsets() {
            // A refused first join: nothing to keep.
            group.dead = true;
            self.groups.lock().remove(&id);
        }
        match self.persist(&id, &records, None, now) {
            Ok(_) => result,
            Err(e) => refuse(e, "writing the group state failed"),
        }
    }

    /// Every non-internal topic by name, with its id and partition count.
    fn topic_view(&self) -> TopicView {
        self.topics
            .all()
            .into_iter()
            .filter(|t| t.name != OFFSETS_TOPIC)
            .map(|t| (t.name, (t.id, t.partitions)))
            .collect()
    }

    /// OffsetCommit: per-partition errors, or a group-level error that applies to all.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<OffsetToCommit>,
        now: i64,
    ) -> Result<Vec<PartitionResult>, ErrorCode> {
        self.commit(group_id, committer, None, offsets, now)
    }

    /// TxnOffsetCommit (KIP-98): the offsets are written in the transaction of `producer_id`
    /// at `producer_epoch` and stay invisible to OffsetFetch until its marker commits them
    /// ([`Self::complete_txn_offsets`]). Checked like OffsetCommit, except that a commit
    /// without member and generation (TxnOffsetCommit before v3) is taken into a classic
    /// group with members and a group in the middle of a rebalance takes commits, as in Kafka.
    /// Per-partition errors, or a group-level error that applies to all.
    pub fn commit_transactional_offsets(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committer: &Committer,
        offsets: Vec<OffsetToCommit>,
        now: i64,
    ) -> Result<Vec<PartitionResult>, ErrorCode> {
        let transactional = Some((producer_id, producer_epoch));
        self.commit(group_id, committer, transactional, offsets, now)
    }

    /// A transaction marker for `producer_id` was written and replicated on
    /// `__consumer_offsets` partition `offsets_partition` (the WriteTxnMarkers handler calls
    /// this): on commit the transaction's offsets in every group of that partition become
    /// committed (unless a commit of the same partition was written after them), on abort they
    /// are dropped. Nothing happens for a partition not coordinated here: whoever loads it
    /// replays the marker. File I/O-free, but it may wait for a partition that is loading.
    pub fn complete_txn_offsets(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        let lock = self.partition_lock(offsets_partition);
        let _settling = lock.lock();
        let partitions = self.store.partitions();
        let ids = self.open_transactions.lock().take(producer_id, |id| {
            store::partition_for(id, partitions) == offsets_partition
        });
        for id in ids {
            if let Some(group) = self.get(&id) {
                group.lock().complete_txn(producer_id, commit);
            }
        }
        tracing::debug!(
            partition = offsets_partition,
            producer_id,
            commit,
            "transaction ended for the offsets of {OFFSETS_TOPIC}-{offsets_partition}"
        );
    }

    /// OffsetCommit and TxnOffsetCommit (`transactional`: the producer's id and epoch).
    fn commit(
        &self,
        group_id: &str,
        committer: &Committer,
        transactional: Option<(i64, i16)>,
        offsets: Vec<OffsetToCommit>,
        now: i64,
    ) -> Result<Vec<PartitionResult>, ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        self.check_owner(group_id)?;
        // Taken before the group's lock, as a transaction marker takes them.
        let partition_lock =
            transactional.map(|_| self.partition_lock(self.store.partition_for(group_id)));
        let _settling = partition_lock.as_ref().map(|lock| lock.lock());
        let group = match self.get(group_id) {
            Some(g) => g,
            // No member of a group that does not exist: a "simple" group holding offsets.
            None if committer.generation < 0 => self.get_or_create(group_id, now),
            None => return Err(ErrorCode::ILLEGAL_GENERATION),
        };
        let mut group = group.lock();
        if group.dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        check_committer(&group, committer, transactional.is_some())?;
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for o in offsets {
            let key = (o.topic.clone(), o.partition);
            let known = self
                .topics
                .get(&o.topic)
                .is_some_and(|t| (0..t.partitions).contains(&o.partition));
            let metadata = o.metadata.unwrap_or_default();
            let error = if !known {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            } else if metadata.len() > self.config.offset_metadata_max_bytes {
                ErrorCode::OFFSET_METADATA_TOO_LARGE
            } else {
                let committed = CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata,
                    commit_timestamp: now,
                    expire_timestamp: committer.retention_ms.map_or(-1, |r| now.saturating_add(r)),
                    // Known once written.
                    record_offset: -1,
                };
                records.push(CoordinatorRecord::OffsetCommit {
                    group: group.id.clone(),
                    topic: o.topic,
                    partition: o.partition,
                    value: Some(committed.to_value()),
                });
                accepted.push((key.clone(), committed));
                ErrorCode::NONE
            };
            results.push((key, error));
        }
        let first = match self.persist(&group.id, &records, transactional, now) {
            Ok(first) => first.unwrap_or_default(),
            Err(e) => {
                for (key, error) in &mut results {
                    if accepted.iter().any(|(k, _)| k == key) {
                        *error = e;
                    }
                }
                return Ok(results);
            }
        };
        for ((key, mut committed), record_offset) in accepted.into_iter().zip(first..) {
            committed.record_offset = record_offset;
            match transactional {
                Some((producer_id, _)) => {
                    group.pending.add(producer_id, key, committed);
                    self.open_transactions.lock().insert(producer_id, &group.id);
                }
                None => {
                    group.offsets.insert(key, committed);
                }
            }
        }
        Ok(results)
    }

    /// OffsetFetch for one group: `topics` `None` means every committed partition. With a
    /// member (OffsetFetch v9, consumer groups), its epoch is checked first. With
    /// `require_stable` (OffsetFetch v7+, KIP-447) a partition an open transaction holds an
    /// offset for answers `UNSTABLE_OFFSET_COMMIT`, so a `read_committed` consumer retries
    /// instead of starting from an offset about to change.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(&str, i32)>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, ErrorCode> {
        self.check_owner(group_id)?;
        let group = self.get(group_id);
        let group = group.as_ref().map(|g| g.lock());
        if let (Some(group), Some((member_id, epoch))) = (&group, member)
            && let GroupKind::Consumer(g) = &group.kind
        {
            g.check_epoch(member_id, epoch)?;
        }
        let Some(group) = group else {
            return Ok(topics
                .into_iter()
                .flatten()
                .flat_map(|(topic, partitions)| {
                    partitions
                        .into_iter()
                        .map(move |p| ((topic.clone(), p), Ok(None)))
                })
                .collect());
        };
        let answer = |key: (String, i32)| {
            let found = if require_stable && group.pending.contains(&key) {
                Err(ErrorCode::UNSTABLE_OFFSET_COMMIT)
            } else {
                Ok(group.offsets.get(&key).cloned())
            };
            (key, found)
        };
        Ok(match topics {
            None => group.offsets.keys().cloned().map(answer).collect(),
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .map(answer)
                .collect(),
        })
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
        now: i64,
    ) -> Result<Vec<PartitionResult>, ErrorCode> {
        self.check_owner(group_id)?;
        let Some(group) = self.get(group_id) else {
            return Err(ErrorCode::GROUP_ID_NOT_FOUND);
        };
        let mut group = group.lock();
        if group.dead {
            return Err(ErrorCode::GROUP_ID_NOT_FOUND);
        }
        let subscribed: Vec<String> = match &group.kind {
            GroupKind::Classic(g) if g.state() == ClassicState::Empty => Vec::new(),
            GroupKind::Classic(g) => match g.subscribed_topics() {
                Some(topics) => topics,
                None => return Err(ErrorCode::NON_EMPTY_GROUP),
            },
            GroupKind::Consumer(g) => g.subscribed_topic_names(&self.topic_view()),
        };
        let mut records = Vec::new();
        let results: Vec<PartitionResult> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                let error = if subscribed.contains(&topic) {
                    ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    let key = (topic.clone(), partition);
                    if group.offsets.contains_key(&key) || group.pending.contains(&key) {
                        records.push(offset_tombstone(&group.id, (&topic, partition)));
                    }
                    ErrorCode::NONE
                };
                ((topic, partition), error)
            })
            .collect();
        self.persist(&group.id, &records, None, now)?;
        for r in &records {
            if let CoordinatorRecord::OffsetCommit {
                topic, partition, ..
            } = r
            {
                group.remove_offset(&(topic.clone(), *partition));
            }
        }
        Ok(results)
    }

    /// DeleteGroups for one group: only an empty group can go; its metadata and offsets get
    /// tombstones.
    pub fn delete_group(&self, group_id: &str, now: i64) -> ErrorCode {
        if let Err(e) = self.check_owner(group_id) {
            return e;
        }
        let Some(group) = self.get(group_id) else {
            return ErrorCode::GROUP_ID_NOT_FOUND;
        };
        let mut group = group.lock();
        if group.dead {
            return ErrorCode::GROUP_ID_NOT_FOUND;
        }
        if !group.is_empty() {
            return ErrorCode::NON_EMPTY_GROUP;
        }
        if let Err(e) = self.persist(&group.id, &group_tombstones(&group), None, now) {
            return e;
        }
        self.remove(&mut group, now);
        ErrorCode::NONE
    }

    fn remove(&self, group: &mut Group, now: i64) {
        group.dead = true;
        if let GroupKind::Classic(g) = &mut group.kind {
            g.mark_dead(now);
        }
        self.groups.lock().remove(&group.id);
    }

    /// Runs `f` on a group (for the describe APIs), or answers why this broker cannot.
    pub fn with_group<T>(
        &self,
        group_id: &str,
        f: impl FnOnce(Option<&Group>) -> T,
    ) -> Result<T, ErrorCode> {
        self.check_owner(group_id)?;
        Ok(match self.get(group_id) {
            Some(group) => {
                let group = group.lock();
                f((!group.dead).then_some(&*group))
            }
            None => f(None),
        })
    }

    /// Runs `f` on every group.
    pub fn for_each_group(&self, mut f: impl FnMut(&Group)) {
        let groups: Vec<Arc<Mutex<Group>>> = self.groups.lock().values().cloned().collect();
        for group in groups {
            let group = group.lock();
            if !group.dead {
                f(&group);
            }
        }
    }

    /// Acts on deadlines in every group, and expires old offsets every
    /// `offsets.retention.check.interval.ms`.
    pub fn tick(&self, now: i64) {
        let groups: Vec<Arc<Mutex<Group>>> = self.groups.lock().values().cloned().collect();
        let classic = self.classic_limits();
        let consumer = self.consumer_limits();
        // Only KIP-848 groups need the topics; most ticks have none to look at.
        let mut view: Option<TopicView> = None;
        let expire = {
            let mut next = self.next_expiry_check.lock();
            let due = now >= *next;
            if due {
                *next = now + self.config.offsets_retention_check_interval_ms;
            }
            due
        };
        for group in groups {
            let mut group = group.lock();
            if group.dead {
                continue;
            }
            let id = group.id.clone();
            match &mut group.kind {
                GroupKind::Classic(g) => {
                    if g.tick(classic, now) {
                        self.persist_classic(&group, now);
                    }
                }
                GroupKind::Consumer(g) => {
                    let view = view.get_or_insert_with(|| self.topic_view());
                    let records = g.tick(&id, view, &consumer, now);
                    let _ = self.persist(&id, &records, None, now);
                }
            }
            if expire {
                self.expire_offsets(&mut group, now);
            }
        }
    }

    /// Kafka's offsets retention (KIP-211): an empty group's offsets go once the group has
    /// been empty for `offsets.retention.minutes` (a group that never had members counts from
    /// each commit); a group left with nothing is deleted.
    fn expire_offsets(&self, group: &mut Group, now: i64) {
        if !group.is_empty() {
            return;
        }
        let retention = self.config.offsets_retention_ms;
        let empty_since = match &group.kind {
            GroupKind::Classic(g) if g.protocol_type.is_some() => Some(g.state_timestamp),
            GroupKind::Classic(_) => None,
            GroupKind::Consumer(g) => Some(g.state_timestamp),
        };
        let expired: Vec<(String, i32)> = group
            .offsets
            .iter()
            // Kafka keeps an offset an open transaction is about to replace.
            .filter(|(key, _)| !group.pending.contains(key))
            .filter(|(_, o)| {
                if o.expire_timestamp >= 0 {
                    return o.expire_timestamp <= now;
                }
                let base = empty_since.unwrap_or(o.commit_timestamp);
                base.saturating_add(retention) <= now
            })
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let mut records: Vec<CoordinatorRecord> = expired
            .iter()
            .map(|(topic, partition)| offset_tombstone(&group.id, (topic, *partition)))
            .collect();
        // A group with an open transaction stays, as in Kafka.
        let all_gone = expired.len() == group.offsets.len() && group.pending.is_empty();
        if all_gone {
            records = group_tombstones(group);
        }
        if self.persist(&group.id, &records, None, now).is_err() {
            return;
        }
        tracing::info!(group = %group.id, partitions = expired.len(), "expired committed offsets");
        for key in &expired {
            group.remove_offset(key);
        }
        if all_gone {
            self.remove(group, now);
        }
    }

    /// Answers every parked JoinGroup/SyncGroup (the broker is stopping), so connections can
    /// finish.
    pub fn shutdown(&self) {
        self.for_each_group_mut(|group| {
            if let GroupKind::Classic(g) = &mut group.kind {
                g.fail_all_parked(ErrorCode::NOT_COORDINATOR);
            }
        });
    }

    fn for_each_group_mut(&self, mut f: impl FnMut(&mut Group)) {
        let groups: Vec<Arc<Mutex<Group>>> = self.groups.lock().values().cloned().collect();
        for group in groups {
            f(&mut group.lock());
        }
    }
}

/// Kafka's (Txn)OffsetCommit checks: a commit with a negative generation (admin tools,
/// `assign()` consumers) goes into a group without members; otherwise the member must be in
/// the group at the current generation (classic) or epoch (consumer). A transactional commit
/// without member, generation or instance id (TxnOffsetCommit v0–2) goes into any classic
/// group, and classic transactional commits are taken during a rebalance.
fn check_committer(
    group: &Group,
    committer: &Committer,
    transactional: bool,
) -> Result<(), ErrorCode> {
    match &group.kind {
        GroupKind::Classic(g) => {
            if committer.generation < 0 && g.state() == ClassicState::Empty {
                return Ok(());
            }
            let identified = committer.generation >= 0
                || !committer.member_id.is_empty()
                || committer.instance_id.is_some();
            if identified {
                g.check_member(&committer.member_id, committer.instance_id.as_deref())?;
                if committer.generation != g.generation {
                    return Err(ErrorCode::ILLEGAL_GENERATION);
                }
            } else if !transactional {
                return Err(ErrorCode::UNKNOWN_MEMBER_ID);
            }
            if !transactional && g.state() == ClassicState::CompletingRebalance {
                return Err(ErrorCode::REBALANCE_IN_PROGRESS);
            }
            Ok(())
        }
        GroupKind::Consumer(g) => {
            if committer.generation < 0 && g.members.is_empty() {
                return Ok(());
            }
            match g.check_epoch(&committer.member_id, committer.generation) {
                Err(ErrorCode::STALE_MEMBER_EPOCH) if transactional => {
                    Err(ErrorCode::ILLEGAL_GENERATION)
                }
                checked => checked,
            }
        }
    }
}

/// The tombstone that deletes a group's committed offset of one partition.
fn offset_tombstone(group: &str, (topic, partition): (&str, i32)) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
        value: None,
    }
}

/// Tombstones for everything a group has stored, offsets of open transactions included.
fn group_tombstones(group: &Group) -> Vec<CoordinatorRecord> {
    let mut partitions: BTreeSet<&(String, i32)> = group.offsets.keys().collect();
    partitions.extend(group.pending.partitions());
    let mut records: Vec<CoordinatorRecord> = partitions
        .into_iter()
        .map(|(topic, partition)| offset_tombstone(&group.id, (topic, *partition)))
        .collect();
    match &group.kind {
        GroupKind::Classic(_) => records.push(CoordinatorRecord::GroupMetadata {
            group: group.id.clone(),
            value: None,
        }),
        GroupKind::Consumer(g) => records.extend(g.tombstones(&group.id)),
    }
    records
}

#[cfg(test)]
mod tests;

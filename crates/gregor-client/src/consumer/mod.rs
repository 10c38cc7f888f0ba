//! The consumer: reads records from assigned partitions, or from those a consumer group hands
//! it, with Kafka's semantics and config names.
//!
//! * [`Consumer::assign`] takes partitions directly (no rebalancing); with a `group.id` their
//!   start comes from the group's committed offsets, else from `auto.offset.reset`.
//! * [`Consumer::subscribe`] joins the group through the classic protocol (`JoinGroup` /
//!   `SyncGroup` / `Heartbeat`) with the "range", "roundrobin" or "cooperative-sticky"
//!   assignor, so it can share a group with Java or librdkafka consumers.
//! * [`Consumer::poll`] returns what the background fetchers (one task per leader broker,
//!   one Fetch in flight each) already decoded, and drives rebalances and auto-commits, as the
//!   Java client's `poll` does. Fetching pauses once `fetch.max.bytes` is buffered; with the
//!   answers still in flight, what is buffered stays below about `fetch.max.bytes` plus one
//!   answer per leader broker, each decoded up to `max.partition.fetch.bytes` per partition.
//!   A rebalance runs in its own task, so `poll` keeps its timeout while other members
//!   rejoin, and keeps returning the records of partitions a cooperative rebalance leaves in
//!   place.
//! * Auto-commits run in the background, one at a time; a synchronous commit, a rebalance
//!   and [`Consumer::close`] wait for the one in flight first, so an older commit never lands
//!   after a newer one.
//! * A `group.instance.id` another consumer took over (FENCED_INSTANCE_ID) is fatal: `poll`
//!   reports it from then on instead of rejoining, as in the Java client.
//! * `poll` is cancel-safe: dropped at an `.await`, it loses neither records nor a pending
//!   rebalance.
//! * Heartbeats run in the background every `heartbeat.interval.ms`; a consumer that stops
//!   calling `poll` for `max.poll.interval.ms` leaves the group and later hears its partitions
//!   were lost ([`RebalanceListener::on_partitions_lost`]).
//! * `isolation.level=read_committed` drops records of aborted transactions; control batches
//!   are never returned.
//!
//! ```no_run
//! # async fn demo() -> gregor_client::Result<()> {
//! use std::time::Duration;
//! use gregor_client::config::ConsumerConfig;
//! use gregor_client::consumer::Consumer;
//!
//! let config = ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let mut consumer = Consumer::new(config)?;
//! consumer.subscribe(vec!["invoices".to_string()], None).await?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{}@{}: {:?}", record.partition, record.offset, record.value);
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```

pub mod assignor;
mod fetcher;
mod group;
pub mod offsets;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::ErrorCode;

use crate::cluster::Cluster;
use crate::config::{ConsumerConfig, OffsetReset};
use crate::error::{ClientError, Result};
use fetcher::{Fetcher, PartitionState};
use group::Membership;
use offsets::CommitIdentity;

/// A partition: (topic, partition index).
pub type TopicPartition = (String, i32);

/// What a finished join hands back: this member's assignment and the generation.
type JoinOutcome = (Vec<TopicPartition>, i32);

/// A record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Create time or log-append time, in ms since the epoch, as the batch says.
    pub timestamp: i64,
    /// Whose clock `timestamp` is: the producer's (CreateTime) or the broker's (LogAppendTime).
    pub timestamp_type: gregor_protocol::batch::TimestampType,
    /// Key (`None`: null key).
    pub key: Option<Bytes>,
    /// Value (`None`: null value, a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order; keys may repeat, values may be null.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Told when the group moves partitions to or away from this consumer; called from inside
/// [`Consumer::poll`] (and [`Consumer::close`]), on the caller's task, so an implementation can
/// commit or save state before a partition goes to another member.
pub trait RebalanceListener: Send {
    /// `partitions` are taken away in an orderly rebalance: their offsets were just committed
    /// (with auto-commit); finish work on them.
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]);
    /// `partitions` were added (cooperative) or are the whole new assignment (eager).
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]);
    /// `partitions` were lost: the member was fenced (session expired), another member may
    /// already own them, so nothing can be committed for them. Defaults to revoked.
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}

/// A Kafka consumer.
pub struct Consumer {
    config: Arc<ConsumerConfig>,
    cluster: Arc<Cluster>,
    fetcher: Fetcher,
    group: Option<Membership>,
    listener: Option<Box<dyn RebalanceListener>>,
    last_auto_commit: Instant,
    /// The auto-commit in flight, awaited before any later commit so it cannot land after it.
    auto_commit: Option<tokio::task::JoinHandle<()>>,
    /// A join running in its own task: (assignment, generation) when done.
    pending_join: Option<tokio::task::JoinHandle<Result<JoinOutcome>>>,
    /// A finished join whose assignment `poll` has not applied yet; kept here so a `poll`
    /// dropped while committing before the revocation applies it on the next call.
    joined: Option<JoinOutcome>,
    /// Partition counts of the subscribed topics at the last join, and when they were last
    /// compared with fresh metadata (a change triggers a rebalance, as in the Java client).
    subscribed_counts: HashMap<String, usize>,
    last_metadata_check: Instant,
    next_drain: usize,
    closed: bool,
}

impl Consumer {
    /// A consumer with `config`; nothing is contacted until the first call that needs the
    /// cluster. Must be called inside a tokio runtime (it spawns its fetch tasks there).
    pub fn new(config: ConsumerConfig) -> Result<Consumer> {
        let config = Arc::new(config);
        let cluster = Cluster::new(config.common.clone());
        let fetcher = Fetcher::new(Arc::clone(&cluster), Arc::clone(&config));
        let group = config.group_id.clone().map(|g| {
            Membership::new(
                g,
                Arc::clone(&cluster),
                Arc::clone(&config),
                Arc::clone(&fetcher.data_ready),
            )
        });
        Ok(Consumer {
            config,
            cluster,
            fetcher,
            group,
            listener: None,
            last_auto_commit: Instant::now(),
            auto_commit: None,
            pending_join: None,
            joined: None,
            subscribed_counts: HashMap::new(),
            last_metadata_check: Instant::now(),
            next_drain: 0,
            closed: false,
        })
    }

    /// The cluster this consumer talks to (metadata, connections).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The settings in use.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// Consumes exactly `partitions`, replacing any earlier assignment or subscription (which
    /// is left: the group no longer rebalances this consumer). Partitions kept from the previous
    /// assignment keep their positions.
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        self.check_open()?;
        self.abort_join();
        if let Some(group) = &mut self.group
            && !group.topics.is_empty()
        {
            group.leave().await;
            group.topics.clear();
        }
        self.set_assignment(&partitions.into_iter().collect());
        Ok(())
    }

    fn set_assignment(&mut self, wanted: &BTreeSet<TopicPartition>) {
        let mut shared = self.fetcher.shared.lock();
        let mut dropped = 0;
        shared.partitions.retain(|tp, p| {
            let keep = wanted.contains(tp);
            if !keep {
                dropped += p.buffered_bytes;
            }
            keep
        });
        shared.buffered_bytes -= dropped;
        for tp in wanted {
            shared
                .partitions
                .entry(tp.clone())
                .or_insert_with(PartitionState::new);
        }
        drop(shared);
        self.fetcher.wake.notify_waiters();
    }

    /// The partitions currently assigned, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<_> = self
            .fetcher
            .shared
            .lock()
            .partitions
            .keys()
            .cloned()
            .collect();
        tps.sort();
        tps
    }

    /// Joins `group.id` consuming `topics`; partitions arrive through rebalances driven by
    /// [`Consumer::poll`], and `listener` hears about each. Replaces an earlier assignment.
    pub async fn subscribe(
        &mut self,
        topics: Vec<String>,
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<()> {
        self.check_open()?;
        let Some(group) = &mut self.group else {
            return Err(ClientError::Config {
                key: "group.id".into(),
                message: "subscribe needs a consumer group; set group.id or use assign".into(),
            });
        };
        if topics.is_empty() {
            return Err(ClientError::Config {
                key: "topics".into(),
                message: "subscribe needs at least one topic".into(),
            });
        }
        let from_assign = group.topics.is_empty();
        group.topics = topics;
        if from_assign {
            // Coming from assign mode: start with nothing.
            self.set_assignment(&BTreeSet::new());
        }
        let group = self.group.as_mut().expect("checked above");
        group.request_rejoin();
        self.listener = listener;
        Ok(())
    }

    fn with_partition<T>(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&mut PartitionState) -> T,
    ) -> Result<T> {
        let mut shared = self.fetcher.shared.lock();
        let tp = (topic.to_string(), partition);
        let p = shared
            .partitions
            .get_mut(&tp)
            .ok_or_else(|| not_assigned(&tp))?;
        let result = f(p);
        Ok(result)
    }

    /// Sets the next offset `poll` returns for an assigned partition.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let mut shared = self.fetcher.shared.lock();
        let tp = (topic.to_string(), partition);
        let dropped = shared
            .partitions
            .get_mut(&tp)
            .ok_or_else(|| not_assigned(&tp))?
            .seek(offset);
        shared.buffered_bytes -= dropped;
        drop(shared);
        self.fetcher.wake.notify_waiters();
        Ok(())
    }

    async fn seek_to(&mut self, partitions: &[TopicPartition], timestamp: i64) -> Result<()> {
        let offsets = offsets::list_offsets(
            &self.cluster,
            partitions,
            timestamp,
            self.config.read_committed,
        )
        .await?;
        let ends = if timestamp >= 0 && offsets.values().any(Option::is_none) {
            offsets::list_offsets(
                &self.cluster,
                partitions,
                offsets::LATEST,
                self.config.read_committed,
            )
            .await?
        } else {
            HashMap::new()
        };
        for tp in partitions {
            let offset = offsets
                .get(tp)
                .copied()
                .flatten()
                .or_else(|| ends.get(tp).copied().flatten())
                .unwrap_or(0);
            self.seek(&tp.0, tp.1, offset)?;
        }
        Ok(())
    }

    /// Moves `partitions` (all assigned ones if empty) to their log start.
    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let tps = self.or_all(partitions);
        self.seek_to(&tps, offsets::EARLIEST).await
    }

    /// Moves `partitions` (all assigned ones if empty) to their log end.
    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let tps = self.or_all(partitions);
        self.seek_to(&tps, offsets::LATEST).await
    }

    /// Moves `partitions` (all assigned ones if empty) to the first record with a timestamp at
    /// or after `timestamp_ms` (the log end where there is none).
    pub async fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<()> {
        let tps = self.or_all(partitions);
        self.seek_to(&tps, timestamp_ms.max(0)).await
    }

    fn or_all(&self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        if partitions.is_empty() {
            self.assignment()
        } else {
            partitions.to_vec()
        }
    }

    /// The next offset `poll` returns for an assigned partition, resolving it (committed
    /// offset or `auto.offset.reset`) if not known yet.
    pub async fn position(&mut self, topic: &str, partition: i32) -> Result<i64> {
        if let Some(p) = self.with_partition(topic, partition, |p| p.position)? {
            return Ok(p);
        }
        self.update_positions(true).await?;
        // Resolving succeeded but left no position (the leader's answer lacked the partition):
        // retriable, as Kafka's OFFSET_NOT_AVAILABLE is.
        self.with_partition(topic, partition, |p| p.position)?
            .ok_or_else(|| ClientError::Kafka {
                code: ErrorCode::OFFSET_NOT_AVAILABLE,
                message: Some(format!("no position for {topic}-{partition} yet")),
            })
    }

    /// Stops returning and fetching records of `partitions` until [`Consumer::resume`].
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.with_partition(&tp.0, tp.1, |p| p.paused = true)?;
        }
        Ok(())
    }

    /// Undoes [`Consumer::pause`].
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.with_partition(&tp.0, tp.1, |p| p.paused = false)?;
        }
        self.fetcher.wake.notify_waiters();
        Ok(())
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<_> = self
            .fetcher
            .shared
            .lock()
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        tps.sort();
        tps
    }

    /// Waits up to `timeout` for records and returns at most `max.poll.records` of them (empty
    /// when none came). Also rebalances when the group asks and auto-commits.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        let deadline = Instant::now() + timeout;
        loop {
            // Still polling, for max.poll.interval.ms (a long poll counts as polling).
            if let Some(group) = &self.group {
                group.state.lock().last_poll = Some(Instant::now());
            }
            self.maintain_group(deadline).await?;
            self.maybe_auto_commit();
            self.update_positions(false).await?;
            self.fetcher.ensure_tasks();
            let data_ready = Arc::clone(&self.fetcher.data_ready);
            let notified = data_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let records = self.drain()?;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    /// Hands out buffered records, rotating the starting partition between calls so no
    /// partition starves.
    fn drain(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.config.max_poll_records.max(1);
        let mut shared = self.fetcher.shared.lock();
        let mut keys: Vec<TopicPartition> = shared.partitions.keys().cloned().collect();
        keys.sort();
        for tp in &keys {
            if let Some(e) = shared.partitions.get_mut(tp).and_then(|p| p.error.take()) {
                return Err(e);
            }
        }
        let mut out = Vec::new();
        let mut drained = 0;
        let n = keys.len();
        for i in 0..n {
            let tp = &keys[(self.next_drain + i) % n];
            let p = shared.partitions.get_mut(tp).expect("key exists");
            let Some(mut position) = p.position.filter(|_| !p.paused) else {
                continue;
            };
            while out.len() < max {
                let Some(record) = p.buffer.pop_front() else {
                    break;
                };
                let size = fetcher::record_size(&record);
                p.buffered_bytes -= size;
                drained += size;
                if record.offset < position {
                    continue;
                }
                position = record.offset + 1;
                out.push(record);
            }
            if p.buffer.is_empty() && p.fetch_offset > position {
                // Control batches and compacted-away offsets: move past them too.
                position = p.fetch_offset;
            }
            p.position = Some(position);
            if out.len() >= max {
                self.next_drain = (self.next_drain + i + 1) % n;
                break;
            }
        }
        shared.buffered_bytes -= drained;
        drop(shared);
        if drained > 0 {
            self.fetcher.wake.notify_waiters();
        }
        Ok(out)
    }

    /// Finds leaders and initial positions of partitions that lack them. Retriable failures
    /// (a topic still being created, a leader moving) are retried on the next poll, unless
    /// `strict`.
    async fn update_positions(&mut self, strict: bool) -> Result<()> {
        let (no_leader, no_position): (Vec<TopicPartition>, Vec<(TopicPartition, bool)>) = {
            let shared = self.fetcher.shared.lock();
            (
                shared
                    .partitions
                    .iter()
                    .filter(|(_, p)| p.leader.is_none())
                    .map(|(tp, _)| tp.clone())
                    .collect(),
                shared
                    .partitions
                    .iter()
                    .filter(|(_, p)| p.position.is_none())
                    .map(|(tp, p)| (tp.clone(), p.out_of_range))
                    .collect(),
            )
        };
        let result = async {
            if !no_leader.is_empty() {
                self.find_leaders(&no_leader).await?;
            }
            if !no_position.is_empty() {
                self.init_positions(&no_position).await?;
            }
            Ok::<(), ClientError>(())
        }
        .await;
        match result {
            Err(e) if e.is_retriable() && !strict && !matches!(e, ClientError::Connect { .. }) => {
                tracing::debug!(error = %e, "positions not ready yet");
                Ok(())
            }
            other => other,
        }
    }

    async fn find_leaders(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let topics: BTreeSet<&String> = partitions.iter().map(|(t, _)| t).collect();
        for topic in topics {
            let info = self.cluster.topic(topic).await?;
            let mut shared = self.fetcher.shared.lock();
            for p in &info.partitions {
                if let Some(state) = shared.partitions.get_mut(&(topic.clone(), p.id)) {
                    state.topic_id = info.id;
                    state.leader = (p.leader >= 0).then_some(p.leader);
                }
            }
            if info.partitions.iter().any(|p| p.leader < 0) {
                self.cluster.invalidate(topic);
            }
        }
        Ok(())
    }

    async fn init_positions(&mut self, partitions: &[(TopicPartition, bool)]) -> Result<()> {
        let mut resolved: HashMap<TopicPartition, i64> = HashMap::new();
        let fresh: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(_, out_of_range)| !out_of_range)
            .map(|(tp, _)| tp.clone())
            .collect();
        if let Some(group) = &self.group
            && !fresh.is_empty()
        {
            let coordinator = group.coordinator().await?;
            let committed = offsets::fetch_committed(&coordinator, &group.group_id, &fresh).await?;
            resolved.extend(
                committed
                    .into_iter()
                    .filter_map(|(tp, o)| o.map(|o| (tp, o))),
            );
        }
        let rest: Vec<TopicPartition> = partitions
            .iter()
            .map(|(tp, _)| tp.clone())
            .filter(|tp| !resolved.contains_key(tp))
            .collect();
        if !rest.is_empty() {
            let timestamp = match self.config.auto_offset_reset {
                OffsetReset::Earliest => offsets::EARLIEST,
                OffsetReset::Latest => offsets::LATEST,
                OffsetReset::None => {
                    let tp = &rest[0];
                    return Err(ClientError::Kafka {
                        code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        message: Some(format!(
                            "no valid offset for {}-{} and auto.offset.reset is none",
                            tp.0, tp.1
                        )),
                    });
                }
            };
            let listed =
                offsets::list_offsets(&self.cluster, &rest, timestamp, self.config.read_committed)
                    .await?;
            resolved.extend(listed.into_iter().map(|(tp, o)| (tp, o.unwrap_or(0))));
        }
        let mut shared = self.fetcher.shared.lock();
        let mut dropped = 0;
        for (tp, offset) in resolved {
            if let Some(p) = shared.partitions.get_mut(&tp)
                && p.position.is_none()
            {
                dropped += p.seek(offset);
            }
        }
        shared.buffered_bytes -= dropped;
        drop(shared);
        self.fetcher.wake.notify_waiters();
        Ok(())
    }

    /// Positions of assigned partitions that have one: what a commit without arguments stores.
    fn consumed_offsets(&self) -> HashMap<TopicPartition, i64> {
        self.fetcher
            .shared
            .lock()
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    fn commit_identity(&self, group: &Membership) -> CommitIdentity {
        let (generation, member_id) = group.identity();
        CommitIdentity {
            group: group.group_id.clone(),
            generation,
            member_id,
            instance_id: group.instance_id.clone(),
        }
    }

    fn group(&self) -> Result<&Membership> {
        self.group.as_ref().ok_or_else(|| ClientError::Config {
            key: "group.id".into(),
            message: "committing offsets needs a consumer group; set group.id".into(),
        })
    }

    /// Commits `offsets` (the next offset to read, per partition), or the current positions of
    /// every assigned partition, and waits for the coordinator's answer.
    pub async fn commit_sync(
        &mut self,
        offsets: Option<HashMap<TopicPartition, i64>>,
    ) -> Result<()> {
        self.check_open()?;
        self.settle_auto_commit().await;
        let offsets = offsets.unwrap_or_else(|| self.consumed_offsets());
        let group = self.group()?;
        let identity = self.commit_identity(group);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let coordinator = group.coordinator().await?;
            match offsets::commit(coordinator, identity.clone(), offsets.clone()).await {
                Err(e) if e.is_retriable() && attempt < 5 => {
                    group.coordinator_lost();
                    tokio::time::sleep(self.cluster.config().retry_backoff).await;
                }
                other => return note_fenced(&group.state, other),
            }
        }
    }

    /// Starts committing like [`Consumer::commit_sync`] without waiting; the handle tells how
    /// it went.
    pub fn commit_async(
        &mut self,
        offsets: Option<HashMap<TopicPartition, i64>>,
    ) -> Result<tokio::task::JoinHandle<Result<()>>> {
        self.check_open()?;
        let offsets = offsets.unwrap_or_else(|| self.consumed_offsets());
        let group = self.group()?;
        let identity = self.commit_identity(group);
        let cluster = Arc::clone(&self.cluster);
        let state = Arc::clone(&group.state);
        Ok(tokio::spawn(async move {
            let coordinator = group::cached_coordinator(&state, &cluster, &identity.group).await?;
            let result = offsets::commit(coordinator, identity, offsets).await;
            if result.as_ref().is_err_and(ClientError::is_retriable) {
                state.lock().coordinator = None;
            }
            note_fenced(&state, result)
        }))
    }

    /// Starts an auto-commit when `auto.commit.interval.ms` has passed and the previous one
    /// is done (one at a time, so they land in order).
    fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit
            || self.group.is_none()
            || self.last_auto_commit.elapsed() < self.config.auto_commit_interval
            || self.auto_commit.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        self.last_auto_commit = Instant::now();
        if let Ok(commit) = self.commit_async(None) {
            // Failures are only logged: the next auto-commit stores newer offsets anyway.
            self.auto_commit = Some(tokio::spawn(async move {
                if let Ok(Err(e)) = commit.await {
                    tracing::debug!(error = %e, "auto-commit failed");
                }
            }));
        }
    }

    /// Waits for the auto-commit in flight, if any, so a commit made after it is not
    /// overwritten by it.
    async fn settle_auto_commit(&mut self) {
        if let Some(handle) = self.auto_commit.as_mut() {
            let _ = handle.await;
            self.auto_commit = None;
        }
    }

    /// Auto-commits `partitions` before they go away (errors are logged: the rebalance goes on).
    async fn commit_before_revoke(&mut self, partitions: &[TopicPartition]) {
        if !self.config.enable_auto_commit || partitions.is_empty() {
            return;
        }
        let all = self.consumed_offsets();
        let offsets = partitions
            .iter()
            .filter_map(|tp| all.get(tp).map(|o| (tp.clone(), *o)))
            .collect();
        if let Err(e) = self.commit_sync(Some(offsets)).await {
            tracing::warn!(error = %e, "committing offsets before a rebalance failed");
        }
    }

    /// The group's committed offsets for `partitions` (`None`: nothing committed).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let group = self.group()?;
        let coordinator = group.coordinator().await?;
        offsets::fetch_committed(&coordinator, &group.group_id, partitions).await
    }

    /// Runs a rebalance if the group asked for one (or the subscription is new). The join
    /// itself runs in its own task; while this consumer owns partitions (a cooperative
    /// rebalance) `poll` only checks whether it finished and goes on returning their records,
    /// otherwise it waits for the join at most until `deadline`, so `poll` keeps its timeout
    /// while other members take their time to rejoin.
    async fn maintain_group(&mut self, deadline: Instant) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        if let Some(e) = group.fenced_error() {
            return Err(e);
        }
        if group.topics.is_empty() {
            return Ok(());
        }
        if self.joined.is_none() {
            if self.pending_join.is_none() && !self.start_join().await {
                return Ok(());
            }
            self.drop_lost_partitions();
            match self.finished_join(deadline).await? {
                Some(outcome) => self.joined = Some(outcome),
                None => return Ok(()),
            }
        }
        self.apply_join().await;
        Ok(())
    }

    /// Stops a join in progress (assign, close, drop). Its JoinGroup may still be parked on
    /// the group's coordinator connection, and a broker answers one connection's requests in
    /// order, so that connection is given up: a closing commit or LeaveGroup would otherwise
    /// wait behind it until the rebalance ends or `request.timeout.ms` passes.
    fn abort_join(&mut self) {
        self.joined = None;
        if let Some(join) = self.pending_join.take() {
            join.abort();
            if let Some(group) = &self.group {
                group.coordinator_lost();
            }
        }
    }

    /// Starts a join if the group asked for one (false if it did not), first giving up what
    /// the eager protocol revokes or what was lost. The flags are cleared only once the join
    /// starts, so a `poll` dropped while committing starts it next time.
    async fn start_join(&mut self) -> bool {
        self.check_partition_counts().await;
        let group = self.group.as_ref().expect("called with a group");
        let (needs_join, lost) = group.flags();
        if !needs_join {
            return false;
        }
        let cooperative = group.cooperative();
        let owned = self.assignment();
        if lost && !owned.is_empty() {
            if let Some(l) = &mut self.listener {
                l.on_partitions_lost(&owned);
            }
            self.set_assignment(&BTreeSet::new());
        } else if !cooperative && !owned.is_empty() {
            self.commit_before_revoke(&owned).await;
            if let Some(l) = &mut self.listener {
                l.on_partitions_revoked(&owned);
            }
            self.set_assignment(&BTreeSet::new());
        }
        let owned = self.assignment();
        let group = self.group.as_ref().expect("called with a group");
        group.clear_flags();
        self.pending_join = Some(tokio::spawn(group.joiner().join(owned)));
        true
    }

    /// Drops every partition when the join in progress learnt that the member was removed
    /// from the group while it owned them: another member may own them already.
    fn drop_lost_partitions(&mut self) {
        if !self.group.as_ref().is_some_and(Membership::take_lost) {
            return;
        }
        let owned = self.assignment();
        if owned.is_empty() {
            return;
        }
        if let Some(l) = &mut self.listener {
            l.on_partitions_lost(&owned);
        }
        self.set_assignment(&BTreeSet::new());
    }

    /// The pending join's outcome once it is done (`None`: not yet); see
    /// [`Consumer::maintain_group`] for how long this waits.
    async fn finished_join(&mut self, deadline: Instant) -> Result<Option<JoinOutcome>> {
        let owns_partitions = !self.fetcher.shared.lock().partitions.is_empty();
        let handle = self.pending_join.as_mut().expect("a join is pending");
        if owns_partitions && !handle.is_finished() {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(outcome) = tokio::time::timeout(left, handle).await else {
            return Ok(None); // still joining; the next poll looks again
        };
        self.pending_join = None;
        let group = self.group.as_ref().expect("called with a group");
        match outcome {
            Ok(Ok(done)) => Ok(Some(done)),
            Ok(Err(e)) => {
                group.request_rejoin();
                Err(e)
            }
            Err(e) => {
                group.request_rejoin();
                Err(ClientError::Protocol(format!("join task failed: {e}")))
            }
        }
    }

    /// Applies the finished join in `self.joined`: commits and revokes what moves to another
    /// member (cooperative; a follow-up rebalance then hands it over), takes the rest, and
    /// tells the listener. A `poll` dropped while committing applies it again next time.
    async fn apply_join(&mut self) {
        let (assigned, generation) = self.joined.clone().expect("called after a join");
        self.drop_lost_partitions();
        let assigned: BTreeSet<TopicPartition> = assigned.into_iter().collect();
        let owned: BTreeSet<TopicPartition> = self.assignment().into_iter().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        self.group
            .as_mut()
            .expect("called with a group")
            .finish_join(generation);
        self.commit_before_revoke(&revoked).await;
        self.joined = None;
        if !revoked.is_empty() {
            if let Some(l) = &mut self.listener {
                l.on_partitions_revoked(&revoked);
            }
            if let Some(g) = &self.group {
                g.request_rejoin();
            }
        }
        self.set_assignment(&assigned);
        if let Some(l) = &mut self.listener {
            l.on_partitions_assigned(&added);
        }
        self.record_partition_counts().await;
    }

    /// Remembers the subscribed topics' partition counts after a join, for
    /// [`Consumer::check_partition_counts`].
    async fn record_partition_counts(&mut self) {
        let topics = self
            .group
            .as_ref()
            .map(|g| g.topics.clone())
            .unwrap_or_default();
        let mut counts = HashMap::new();
        for topic in topics {
            if let Ok(info) = self.cluster.topic(&topic).await {
                counts.insert(topic, info.partitions.len());
            }
        }
        self.subscribed_counts = counts;
        self.last_metadata_check = Instant::now();
    }

    /// Every `metadata.max.age.ms`, compares the subscribed topics' partition counts with the
    /// last join's; partitions added (or a subscribed topic created) ask for a rebalance so
    /// the leader assigns them.
    async fn check_partition_counts(&mut self) {
        if self.last_metadata_check.elapsed() < self.config.common.metadata_max_age {
            return;
        }
        self.last_metadata_check = Instant::now();
        let Some(group) = &self.group else {
            return;
        };
        let topics = group.topics.clone();
        let Ok(metadata) = self.cluster.refresh(Some(&topics)).await else {
            return;
        };
        let changed = topics.iter().any(|t| {
            metadata.topics.get(t).map(|info| info.partitions.len())
                != self.subscribed_counts.get(t).copied()
        });
        if changed {
            tracing::debug!(?topics, "subscribed partitions changed; rebalancing");
            group.request_rejoin();
        }
    }

    /// Waits for an auto-commit in flight, commits (with auto-commit), revokes, leaves the
    /// group (dynamic members) and stops the fetchers. The consumer cannot be used afterwards.
    pub async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.abort_join();
        self.settle_auto_commit().await;
        let owned = self.assignment();
        let mut result = Ok(());
        // A member fenced by its own group.instance.id owns nothing any more: no commit, and
        // its partitions are lost rather than revoked (as the Java client closes).
        let fenced = self
            .group
            .as_ref()
            .is_some_and(|g| g.fenced_error().is_some());
        if self.group.is_some() {
            if self.config.enable_auto_commit && !owned.is_empty() && !fenced {
                result = self.commit_sync(None).await;
            }
            if self.group.as_ref().is_some_and(|g| !g.topics.is_empty())
                && let Some(l) = &mut self.listener
            {
                if fenced {
                    l.on_partitions_lost(&owned);
                } else {
                    l.on_partitions_revoked(&owned);
                }
            }
            if let Some(g) = &mut self.group {
                g.leave().await;
            }
        }
        self.closed = true;
        self.fetcher.shutdown();
        result
    }
}

impl Drop for Consumer {
    /// Dropping without [`Consumer::close`] stops the background tasks at once; no commit,
    /// no LeaveGroup (the session timeout removes the member).
    fn drop(&mut self) {
        self.abort_join();
        self.fetcher.shutdown();
    }
}

fn not_assigned(tp: &TopicPartition) -> ClientError {
    ClientError::IllegalState(format!(
        "{}-{} is not assigned to this consumer",
        tp.0, tp.1
    ))
}

/// A commit refused with FENCED_INSTANCE_ID means another consumer took this member's
/// `group.instance.id`: as after a fenced heartbeat, the member stops (poll reports it).
fn note_fenced(
    state: &Arc<parking_lot::Mutex<group::GroupState>>,
    result: Result<()>,
) -> Result<()> {
    if result
        .as_ref()
        .is_err_and(|e| e.code() == Some(ErrorCode::FENCED_INSTANCE_ID))
    {
        state.lock().fenced_instance = true;
    }
    result
}

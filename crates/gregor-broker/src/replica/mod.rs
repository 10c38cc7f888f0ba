//! `ReplicaManager`: the partitions this broker hosts, kept in the roles the metadata gives
//! them.
//!
//! Every committed metadata image is applied here in order: partitions assigned to this broker
//! get a log (created on first sight, with the topic's configs) and become leader, follower or
//! offline; partitions no longer assigned (deleted topics, finished reassignments) stop being
//! fetched and their logs are deleted. Produce and Fetch go through it, so a request for a
//! partition this broker does not lead gets `NOT_LEADER_OR_FOLLOWER`, consumers read only below
//! the high watermark, and `acks=all` waits until the in-sync replicas have the batch.

mod fetcher;
mod isr;
mod partition;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::checkpoint::{read_offsets, write_offsets};
use gregor_log::names::REPLICATION_OFFSET_CHECKPOINT;
use gregor_log::{LogConfig, LogManager, TopicPartition};
use gregor_metadata::MetadataImage;
use gregor_metadata::image::BrokerRegistration;
use gregor_metadata::records::BrokerId;
use gregor_protocol::ErrorCode;
use gregor_protocol::ids;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use fetcher::FetcherConfig;
pub use isr::{
    AlterPartitionSender, channel as alter_partition_channel, run as run_alter_partition,
};
pub use partition::{Partition, Role};

use crate::topics::log_config;
use fetcher::FetcherManager;

/// Settings the replica manager works by.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This broker.
    pub node_id: BrokerId,
    /// Listener followers connect to leaders on (`inter.broker.listener.name`).
    pub inter_broker_listener: String,
    /// `min.insync.replicas` broker default.
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// Follower fetch settings.
    pub fetcher: FetcherConfig,
}

/// An `acks=all` append made as leader and still to be confirmed by the in-sync replicas, with
/// `at`, where its answer goes in the caller's response: handlers append on a blocking thread
/// and wait for all of a request's appends at once ([`ReplicaManager::wait_for_appends`]).
pub struct PendingAppend<T> {
    /// Where the caller answers for this append (positions in its response).
    pub at: T,
    /// The partition appended to.
    pub partition: Arc<Partition>,
    /// The append's last offset: the high watermark must pass it.
    pub last_offset: i64,
    /// The leader epoch the append was made in.
    pub leader_epoch: i32,
    /// The `min.insync.replicas` the append was accepted under.
    pub min_insync: i32,
}

/// See the module docs.
pub struct ReplicaManager {
    config: ReplicaConfig,
    logs: Arc<LogManager>,
    defaults: LogConfig,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    fetchers: FetcherManager,
    /// High watermarks read at start, used when a partition is first hosted.
    checkpointed: Mutex<BTreeMap<TopicPartition, i64>>,
    /// The last image applied, for Metadata answers consistent with the roles.
    image: RwLock<Arc<MetadataImage>>,
    /// Offset of the last image applied.
    applied: watch::Sender<u64>,
    /// Woken on appends and high-watermark moves, for fetches waiting for data (long poll).
    appended: Arc<Notify>,
    alter_partition: AlterPartitionSender,
}

impl ReplicaManager {
    /// A manager over `logs` (already opened and recovered). `alter_partition` carries ISR
    /// changes to the controller.
    pub fn new(
        config: ReplicaConfig,
        logs: Arc<LogManager>,
        defaults: LogConfig,
        alter_partition: AlterPartitionSender,
    ) -> Result<ReplicaManager, gregor_log::LogError> {
        let mut checkpointed = BTreeMap::new();
        for dir in logs.dirs() {
            checkpointed.extend(read_offsets(&dir.join(REPLICATION_OFFSET_CHECKPOINT))?);
        }
        let appended = Arc::new(Notify::new());
        let wake = Arc::clone(&appended);
        Ok(ReplicaManager {
            fetchers: FetcherManager::new(
                config.fetcher.clone(),
                Arc::new(move || wake.notify_waiters()),
            ),
            config,
            logs,
            defaults,
            partitions: RwLock::new(HashMap::new()),
            checkpointed: Mutex::new(checkpointed),
            image: RwLock::new(Arc::new(MetadataImage::default())),
            applied: watch::channel(0).0,
            appended,
            alter_partition,
        })
    }

    /// The storage.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The last applied metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read())
    }

    /// Watches the offset of the last applied image (handlers that changed metadata wait for
    /// their change to be in force here before answering).
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Notified on every append and high-watermark advance.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    /// Wakes long polls (also used at shutdown).
    pub fn wake_fetches(&self) {
        self.appended.notify_waiters();
    }

    /// A hosted partition.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// The hosted partition `tp` if this broker leads it, else the error a client gets:
    /// `NOT_LEADER_OR_FOLLOWER` when the topic exists here or elsewhere, else
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn leader_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode> {
        match self.partition(tp) {
            Some(p) => p.check_leader().map(|()| p),
            None if self.image().partition(&tp.topic, tp.partition).is_some() => {
                Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
            }
            None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    /// `min.insync.replicas` of a topic: its override, else the broker default.
    pub fn min_insync_replicas(&self, topic: &str) -> i32 {
        self.image
            .read()
            .topic_config(topic, "min.insync.replicas")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.config.min_insync_replicas)
    }

    /// Applies a committed metadata image: creates, re-roles and removes hosted partitions.
    /// Returns the role changes (a partition no longer hosted counts as `Offline`). The caller
    /// lets others act on them, then calls [`Self::publish_applied`]. File I/O: call from a
    /// blocking thread.
    pub fn apply(&self, image: Arc<MetadataImage>, now_ms: i64) -> Vec<(TopicPartition, Role)> {
        let mut changes = Vec::new();
        let me = self.config.node_id;
        let mut assigned: HashMap<TopicPartition, ()> = HashMap::new();
        for topic in image.topics.values() {
            let configs = image.topic_configs(&topic.name);
            let config = match log_config(&self.defaults, &configs) {
                Ok(config) => config,
                Err(e) => {
                    tracing::warn!(topic = %topic.name, error = %e, "topic configs not applicable; using broker defaults");
                    self.defaults.clone()
                }
            };
            for (&index, state) in &topic.partitions {
                if !state.replicas.contains(&me) {
                    continue;
                }
                let tp = TopicPartition::new(topic.name.clone(), index);
                assigned.insert(tp.clone(), ());
                let partition = match self.host(&tp, topic.id, &config, now_ms) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(partition = %tp, error = %e, "cannot host partition");
                        continue;
                    }
                };
                if *partition.log().config() != config {
                    partition.log().update_config(config.clone());
                }
                let change = partition.apply_metadata(state, now_ms);
                if let Some(role) = change {
                    changes.push((tp.clone(), role));
                }
                match change {
                    Some(Role::Leader) => {
                        self.fetchers.unfollow(&tp);
                        tracing::info!(partition = %tp, epoch = state.leader_epoch, isr = ?state.isr, "became leader");
                    }
                    Some(Role::Follower { leader }) => {
                        let address = image.brokers.get(&leader).and_then(|b| self.address_of(b));
                        self.fetchers.follow(
                            Arc::clone(&partition),
                            leader,
                            address,
                            state.leader_epoch,
                        );
                        tracing::info!(partition = %tp, leader, epoch = state.leader_epoch, "became follower");
                    }
                    Some(Role::Offline) => {
                        self.fetchers.unfollow(&tp);
                        tracing::warn!(partition = %tp, "partition has no leader");
                    }
                    None => {}
                }
            }
        }
        let gone: Vec<TopicPartition> = self
            .partitions
            .read()
            .keys()
            .filter(|tp| !assigned.contains_key(*tp))
            .cloned()
            .collect();
        for tp in gone {
            self.stop_hosting(&tp);
            changes.push((tp, Role::Offline));
        }
        *self.image.write() = image;
        changes
    }

    /// Announces that the image at `offset` is in force here (handlers waiting for their
    /// change wake up), and wakes long polls so they re-check leadership.
    pub fn publish_applied(&self, offset: u64) {
        self.applied.send_replace(offset);
        self.appended.notify_waiters();
    }

    /// The partition object for `tp`, creating its log (and `partition.metadata`) if needed.
    /// A log left by an older topic of the same name is deleted first.
    fn host(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Arc<Partition>, gregor_log::LogError> {
        if let Some(p) = self.partition(tp) {
            if p.topic_id() == topic_id {
                return Ok(p);
            }
            self.stop_hosting(tp);
        }
        if let Some(log) = self.logs.get_log(tp)
            && read_topic_id(log.dir()).is_some_and(|id| id != topic_id)
        {
            tracing::info!(partition = %tp, "deleting the log of an older topic of the same name");
            self.logs.delete_log(tp)?;
        }
        let log = self.logs.get_or_create_log(tp, config.clone(), now_ms)?;
        if read_topic_id(log.dir()) != Some(topic_id) {
            write_topic_id(log.dir(), topic_id).map_err(|source| gregor_log::LogError::Io {
                path: log.dir().to_path_buf(),
                source,
            })?;
        }
        let hw = self.checkpointed.lock().remove(tp).unwrap_or(0);
        let partition = Arc::new(Partition::new(
            tp.clone(),
            topic_id,
            self.config.node_id,
            log,
            hw,
        ));
        self.partitions
            .write()
            .insert(tp.clone(), Arc::clone(&partition));
        Ok(partition)
    }

    /// Stops fetching `tp`, forgets it and deletes its log (Kafka's StopReplica with delete).
    fn stop_hosting(&self, tp: &TopicPartition) {
        self.fetchers.unfollow(tp);
        if let Some(partition) = self.partitions.write().remove(tp) {
            partition.retire();
        }
        match self.logs.delete_log(tp) {
            Ok(_) => {
                tracing::info!(partition = %tp, "partition no longer hosted here; log deleted")
            }
            Err(e) => tracing::warn!(partition = %tp, error = %e, "deleting log failed"),
        }
    }

    /// `host:port` of `broker`'s inter-broker listener.
    fn address_of(&self, broker: &BrokerRegistration) -> Option<String> {
        broker
            .endpoint(&self.config.inter_broker_listener)
            .map(|e| format!("{}:{}", e.host, e.port))
    }

    /// Periodic ISR shrink check (every half `replica.lag.time.max.ms`, as Kafka's
    /// `isr-expiration` task).
    pub fn shrink_isrs(&self, now_ms: i64) {
        let partitions: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        for partition in partitions {
            if let Some(change) =
                partition.maybe_shrink_isr(now_ms, self.config.replica_lag_time_max_ms)
            {
                self.alter_partition.send(Arc::clone(&partition), change);
            }
        }
    }

    /// A follower fetched `tp` at `fetch_offset`: records its progress (the leader side of
    /// replication). May advance the high watermark (waking waiters) and ask for an ISR
    /// expansion.
    pub fn record_follower_fetch(
        &self,
        partition: &Arc<Partition>,
        replica: BrokerId,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        let eligible = self
            .image
            .read()
            .brokers
            .get(&replica)
            .is_some_and(|b| !b.fenced);
        let (advanced, expand) =
            partition.record_follower_fetch(replica, fetch_offset, eligible, now_ms)?;
        if let Some(change) = expand {
            self.alter_partition.send(Arc::clone(partition), change);
        }
        if advanced {
            self.appended.notify_waiters();
        }
        Ok(())
    }

    /// Waits until the high watermark of `partition` passes `offset` (the last offset of an
    /// `acks=all` append made in `leader_epoch`), the leadership is lost, or `timeout` passes.
    pub async fn wait_for_replication(
        partition: &Partition,
        offset: i64,
        leader_epoch: i32,
        min_insync: i32,
        timeout: Duration,
    ) -> Result<(), ErrorCode> {
        let mut progress = partition.progress();
        let wait = progress
            .wait_for(|p| p.high_watermark > offset || !p.leader || p.leader_epoch != leader_epoch);
        let outcome = match tokio::time::timeout(timeout, wait).await {
            Err(_) => return Err(ErrorCode::REQUEST_TIMED_OUT),
            Ok(Err(_)) => return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            Ok(Ok(p)) => *p,
        };
        if !outcome.leader || outcome.leader_epoch != leader_epoch {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        if (outcome.isr_size as i32) < min_insync {
            return Err(ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
        }
        Ok(())
    }

    /// Waits for each of a request's `pending` appends to reach every in-sync replica, all
    /// within one `timeout` (a request's time runs out once, not per partition), handing
    /// `outcome` each append's `at`, partition and result in order.
    pub async fn wait_for_appends<T>(
        pending: Vec<PendingAppend<T>>,
        timeout: Duration,
        mut outcome: impl FnMut(T, &Partition, Result<(), ErrorCode>),
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        for p in pending {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = Self::wait_for_replication(
                &p.partition,
                p.last_offset,
                p.leader_epoch,
                p.min_insync,
                left,
            )
            .await;
            outcome(p.at, &p.partition, result);
        }
    }

    /// Writes each log directory's `replication-offset-checkpoint` (high watermarks).
    pub fn checkpoint_high_watermarks(&self) -> Result<(), gregor_log::LogError> {
        let partitions: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        for dir in self.logs.dirs() {
            let offsets: BTreeMap<TopicPartition, i64> = partitions
                .iter()
                .filter(|p| p.log().dir().parent() == Some(dir.as_path()))
                .map(|p| (p.topic_partition().clone(), p.high_watermark()))
                .collect();
            write_offsets(&dir.join(REPLICATION_OFFSET_CHECKPOINT), &offsets)?;
        }
        Ok(())
    }

    /// Stops the follower fetchers (shutdown).
    pub fn shutdown(&self) {
        self.fetchers.shutdown();
        if let Err(e) = self.checkpoint_high_watermarks() {
            tracing::warn!(error = %e, "writing high watermarks failed");
        }
    }
}

fn partition_metadata(dir: &Path) -> std::path::PathBuf {
    dir.join("partition.metadata")
}

/// The topic id in Kafka's `partition.metadata` (`version: 0`, `topic_id: <id>`).
pub fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = fs::read_to_string(partition_metadata(dir)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|id| ids::from_text(id.trim()))
}

fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    fs::write(
        partition_metadata(dir),
        format!("version: 0\ntopic_id: {}\n", ids::to_text(id)),
    )
}

#[cfg(test)]
mod tests;

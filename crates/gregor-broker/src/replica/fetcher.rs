//! `ReplicaFetcher`: a follower's copy loop, one task per leader broker (Kafka's
//! `ReplicaFetcherThread`).
//!
//! Each loop fetches, with the Fetch API and this broker's id as `replica_id`, every partition
//! this broker follows on that leader. A partition that just became a follower first asks the
//! leader where its own latest leader epoch ends (OffsetForLeaderEpoch, KIP-101/279) and
//! truncates whatever it holds past that point: records a deposed leader appended but never
//! committed. Only then does it fetch, from its log end offset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_client::connection::BrokerConnection;
use gregor_log::TopicPartition;
use gregor_metadata::records::BrokerId;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId as KafkaBrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use super::partition::Partition;
use crate::now_ms;

/// Fetch version followers send: the newest that still names topics (v13 uses ids).
const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch version followers send (has `replica_id`).
const EPOCH_VERSION: i16 = 4;

/// How a follower fetches (from `replica.fetch.*`).
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// This broker's id, sent as `replica_id`.
    pub node_id: BrokerId,
    /// `replica.fetch.max.bytes`.
    pub max_bytes_per_partition: i32,
    /// `replica.fetch.response.max.bytes`.
    pub max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub max_wait_ms: i32,
    /// `replica.fetch.backoff.ms`.
    pub backoff: Duration,
}

/// One followed partition.
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Must reconcile with the leader's epoch history before fetching.
    truncate: bool,
    /// Do not fetch before this time (after an error).
    retry_after_ms: i64,
}

/// The partitions followed on one leader, shared by the manager and the loop.
struct Shared {
    partitions: Mutex<HashMap<TopicPartition, Followed>>,
    changed: Notify,
}

/// A running fetch loop for one leader.
struct Fetcher {
    shared: Arc<Shared>,
    /// Where the leader is; updated when it re-registers with a new address.
    address: watch::Sender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts, feeds and stops the per-leader fetch loops.
pub struct FetcherManager {
    config: FetcherConfig,
    fetchers: Mutex<HashMap<BrokerId, Fetcher>>,
    /// Woken when a follower append lands, so long-polling consumers look again.
    on_append: Arc<dyn Fn() + Send + Sync>,
}

impl FetcherManager {
    /// A manager with no fetchers yet.
    pub fn new(config: FetcherConfig, on_append: Arc<dyn Fn() + Send + Sync>) -> FetcherManager {
        FetcherManager {
            config,
            fetchers: Mutex::new(HashMap::new()),
            on_append,
        }
    }

    /// Starts following `partition` on `leader` (reachable at `address`) in `leader_epoch`,
    /// truncating first. Replaces any earlier following of the partition.
    pub fn follow(
        &self,
        partition: Arc<Partition>,
        leader: BrokerId,
        address: Option<String>,
        leader_epoch: i32,
    ) {
        let tp = partition.topic_partition().clone();
        self.unfollow(&tp);
        let mut fetchers = self.fetchers.lock();
        let fetcher = fetchers.entry(leader).or_insert_with(|| {
            let shared = Arc::new(Shared {
                partitions: Mutex::new(HashMap::new()),
                changed: Notify::new(),
            });
            let (address, address_rx) = watch::channel(None);
            let task = tokio::spawn(fetch_loop(
                self.config.clone(),
                leader,
                Arc::clone(&shared),
                address_rx,
                Arc::clone(&self.on_append),
            ));
            Fetcher {
                shared,
                address,
                task,
            }
        });
        fetcher.address.send_if_modified(|a| {
            let changed = *a != address;
            *a = address;
            changed
        });
        fetcher.shared.partitions.lock().insert(
            tp,
            Followed {
                partition,
                leader_epoch,
                truncate: true,
                retry_after_ms: 0,
            },
        );
        fetcher.shared.changed.notify_one();
    }

    /// Stops following `tp` (it now leads, went offline or was deleted).
    pub fn unfollow(&self, tp: &TopicPartition) {
        let mut fetchers = self.fetchers.lock();
        let mut idle = Vec::new();
        for (leader, fetcher) in fetchers.iter() {
            let mut partitions = fetcher.shared.partitions.lock();
            if partitions.remove(tp).is_some() && partitions.is_empty() {
                idle.push(*leader);
            }
        }
        for leader in idle {
            if let Some(fetcher) = fetchers.remove(&leader) {
                fetcher.task.abort();
            }
        }
    }

    /// Stops every loop (shutdown).
    pub fn shutdown(&self) {
        for (_, fetcher) in self.fetchers.lock().drain() {
            fetcher.task.abort();
        }
    }
}

/// Fetches from one leader until aborted.
async fn fetch_loop(
    config: FetcherConfig,
    leader: BrokerId,
    shared: Arc<Shared>,
    mut address: watch::Receiver<Option<String>>,
    on_append: Arc<dyn Fn() + Send + Sync>,
) {
    let mut connection: Option<Arc<BrokerConnection>> = None;
    loop {
        if shared.partitions.lock().is_empty() {
            shared.changed.notified().await;
            continue;
        }
        let live = connection.as_ref().filter(|c| !c.is_closed()).cloned();
        let conn = match live {
            Some(conn) if !address.has_changed().unwrap_or(false) => conn,
            _ => {
                let addr = address.borrow_and_update().clone();
                let Some(addr) = addr else {
                    tokio::time::sleep(config.backoff).await;
                    continue;
                };
                let client_id = format!("gregor-replica-fetcher-{}", config.node_id);
                match BrokerConnection::connect(&addr, &client_id, Duration::from_secs(30)).await {
                    Ok(conn) => {
                        connection = Some(Arc::clone(&conn));
                        conn
                    }
                    Err(e) => {
                        tracing::debug!(leader, %addr, error = %e, "cannot reach leader");
                        tokio::time::sleep(config.backoff).await;
                        continue;
                    }
                }
            }
        };
        let pause = match fetch_once(&config, &conn, &shared, &on_append).await {
            Ok(progress) => !progress,
            Err(e) => {
                tracing::debug!(leader, error = %e, "follower fetch failed");
                connection = None;
                true
            }
        };
        if pause {
            tokio::select! {
                _ = tokio::time::sleep(config.backoff) => {}
                _ = shared.changed.notified() => {}
            }
        }
    }
}

/// One round: truncation for partitions that need it, then one Fetch. Returns whether any
/// partition could be fetched (false: all are backing off).
async fn fetch_once(
    config: &FetcherConfig,
    conn: &BrokerConnection,
    shared: &Shared,
    on_append: &Arc<dyn Fn() + Send + Sync>,
) -> Result<bool, gregor_client::error::ClientError> {
    let now = now_ms();
    let (to_truncate, to_fetch): (Vec<_>, Vec<_>) = {
        let partitions = shared.partitions.lock();
        partitions
            .iter()
            .filter(|(_, f)| f.retry_after_ms <= now)
            .map(|(tp, f)| {
                (
                    tp.clone(),
                    Arc::clone(&f.partition),
                    f.leader_epoch,
                    f.truncate,
                )
            })
            .partition(|(_, _, _, truncate)| *truncate)
    };
    if !to_truncate.is_empty() {
        truncate(config, conn, shared, to_truncate).await?;
    }
    if to_fetch.is_empty() {
        return Ok(false);
    }
    let mut topics: HashMap<String, Vec<FetchPartition>> = HashMap::new();
    for (tp, partition, epoch, _) in &to_fetch {
        topics.entry(tp.topic.clone()).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_fetch_offset(partition.log().log_end_offset())
                .with_last_fetched_epoch(partition.log().latest_epoch().unwrap_or(-1))
                .with_log_start_offset(partition.log().log_start_offset())
                .with_partition_max_bytes(config.max_bytes_per_partition),
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(KafkaBrokerId(config.node_id))
        .with_max_wait_ms(config.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(config.max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.send_at(&request, FETCH_VERSION).await?;
    if response.error_code != 0 {
        return Err(
            gregor_client::error::ClientError::from_code(response.error_code, None).unwrap_or_else(
                || gregor_client::error::ClientError::Protocol("fetch failed".into()),
            ),
        );
    }
    let epochs: HashMap<TopicPartition, (Arc<Partition>, i32)> = to_fetch
        .into_iter()
        .map(|(tp, p, e, _)| (tp, (p, e)))
        .collect();
    let mut appends = Vec::new();
    let mut failed = Vec::new();
    let mut diverged = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), data.partition_index);
            let Some((partition, epoch)) = epochs.get(&tp) else {
                continue;
            };
            if data.error_code != 0 {
                failed.push((tp, data.error_code));
                continue;
            }
            if data.diverging_epoch.epoch >= 0 {
                diverged.push((
                    Arc::clone(partition),
                    *epoch,
                    data.diverging_epoch.epoch,
                    data.diverging_epoch.end_offset,
                ));
                continue;
            }
            appends.push((
                Arc::clone(partition),
                *epoch,
                data.high_watermark,
                data.records.unwrap_or_default(),
            ));
        }
    }
    if !diverged.is_empty() {
        tokio::task::spawn_blocking(move || {
            for (partition, epoch, leader_epoch, leader_end) in diverged {
                let target = divergence_point(&partition, leader_epoch, leader_end);
                match partition.truncate_to(target, epoch, now_ms()) {
                    Ok(Some(end)) => tracing::info!(partition = %partition.topic_partition(), truncated_to = end, "follower log diverged from the leader's; truncated"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(partition = %partition.topic_partition(), error = %e, "follower truncation failed"),
                }
            }
        })
        .await
        .ok();
    }
    let appended = tokio::task::spawn_blocking(move || {
        let mut any = false;
        for (partition, epoch, hw, records) in appends {
            match partition.append_as_follower(&records, epoch, hw, now_ms()) {
                Ok(_) => any |= !records.is_empty(),
                Err(e) => tracing::warn!(partition = %partition.topic_partition(), error = %e, "follower append failed"),
            }
        }
        any
    })
    .await
    .unwrap_or(false);
    if appended {
        on_append();
    }
    if !failed.is_empty() {
        let mut partitions = shared.partitions.lock();
        for (tp, code) in failed {
            tracing::debug!(partition = %tp, error = ErrorCode(code).name(), "leader refused follower fetch");
            if let Some(f) = partitions.get_mut(&tp) {
                f.retry_after_ms = now_ms() + config.backoff.as_millis() as i64;
                // Out of range means our log and the leader's disagree: reconcile again.
                f.truncate |= code == ErrorCode::OFFSET_OUT_OF_RANGE.0;
            }
        }
    }
    Ok(true)
}

/// Reconciles each partition's log with the leader's epoch history and truncates the
/// divergent suffix (KIP-279): ask where our latest epoch ends on the leader; if the leader
/// knows that epoch, truncate to that end; if it answers an older epoch, truncate to the
/// lesser of both logs' ends for that epoch.
async fn truncate(
    config: &FetcherConfig,
    conn: &BrokerConnection,
    shared: &Shared,
    partitions: Vec<(TopicPartition, Arc<Partition>, i32, bool)>,
) -> Result<(), gregor_client::error::ClientError> {
    let mut topics: HashMap<String, Vec<OffsetForLeaderPartition>> = HashMap::new();
    let mut asked = HashMap::new();
    for (tp, partition, epoch, _) in &partitions {
        let Some(latest) = partition.log().latest_epoch() else {
            // An empty epoch history: nothing to reconcile, fetch from the log end.
            mark_truncated(shared, tp, *epoch);
            continue;
        };
        asked.insert(tp.clone(), (Arc::clone(partition), *epoch, latest));
        topics.entry(tp.topic.clone()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_leader_epoch(latest),
        );
    }
    if topics.is_empty() {
        return Ok(());
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(KafkaBrokerId(config.node_id))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.send_at(&request, EPOCH_VERSION).await?;
    let mut work = Vec::new();
    for topic in response.topics {
        for result in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), result.partition);
            let Some((partition, epoch, asked_epoch)) = asked.remove(&tp) else {
                continue;
            };
            if result.error_code != 0 {
                tracing::debug!(partition = %tp, error = ErrorCode(result.error_code).name(), "leader refused OffsetForLeaderEpoch");
                if let Some(f) = shared.partitions.lock().get_mut(&tp) {
                    f.retry_after_ms = now_ms() + config.backoff.as_millis() as i64;
                }
                continue;
            }
            work.push((
                tp,
                partition,
                epoch,
                asked_epoch,
                result.leader_epoch,
                result.end_offset,
            ));
        }
    }
    let done = tokio::task::spawn_blocking(move || {
        let mut done = Vec::new();
        for (tp, partition, epoch, asked_epoch, leader_epoch, leader_end) in work {
            let target = if leader_epoch == asked_epoch && leader_end >= 0 {
                leader_end.min(partition.log().log_end_offset())
            } else {
                divergence_point(&partition, leader_epoch, leader_end)
            };
            match partition.truncate_to(target, epoch, now_ms()) {
                Ok(Some(end)) => {
                    tracing::info!(partition = %tp, truncated_to = end, "follower reconciled with leader");
                    done.push((tp, epoch));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = %tp, error = %e, "follower truncation failed"),
            }
        }
        done
    })
    .await
    .unwrap_or_default();
    for (tp, epoch) in done {
        mark_truncated(shared, &tp, epoch);
    }
    Ok(())
}

/// Where our log stops agreeing with the leader's, given the leader's latest epoch at or below
/// ours and where it ends there: the lesser of both logs' ends for that epoch. A leader that
/// knows none of our epochs leaves only what was committed (our high watermark).
fn divergence_point(partition: &Partition, leader_epoch: i32, leader_end: i64) -> i64 {
    let log = partition.log();
    let target = if leader_epoch < 0 || leader_end < 0 {
        partition.high_watermark()
    } else {
        let (_, our_end) = log.end_offset_for_epoch(leader_epoch);
        leader_end.min(our_end.max(0))
    };
    target.min(log.log_end_offset())
}

fn mark_truncated(shared: &Shared, tp: &TopicPartition, epoch: i32) {
    if let Some(f) = shared.partitions.lock().get_mut(tp)
        && f.leader_epoch == epoch
    {
        f.truncate = false;
    }
}

//! `Node`: the broker without its client listeners — storage, the metadata quorum, the hosted
//! replicas, topics and groups — and the background tasks that keep them in step: applying
//! committed metadata, registration and heartbeats, ISR expiry and log housekeeping.
//!
//! Starting joins the metadata quorum (alone, by default), applies the committed metadata to
//! the hosted partitions, registers with the active controller and returns once the controller
//! has unfenced this broker. Stopping is in two steps: [`Node::leave`] moves this broker's
//! leaderships to other replicas (controlled shutdown) while clients are still served, then
//! [`Node::close`] stops the tasks and closes the quorum and the logs cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gregor_log::LogManager;
use gregor_log::names::CLUSTER_METADATA_DIR;
use gregor_metadata::controller::ControllerConfig;
use gregor_metadata::quorum::{MetadataQuorum, NodeRole, QuorumConfig};
use gregor_metadata::records::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::group::GroupCoordinator;
use crate::inter_broker::BrokerChannel;
use crate::lifecycle::{self, Registration, Standing};
use crate::meta_properties;
use crate::now_ms;
use crate::replica::{self, FetcherConfig, ReplicaConfig, ReplicaManager};
use crate::topics::TopicRegistry;
use crate::txn::TransactionCoordinator;
use crate::txn::markers::TransactionMarkerChannelManager;
use crate::txn::producer_id::{ControllerProducerIds, ProducerIdManager};
use crate::txn::state::TransactionStateManager;
use crate::txn::verification::TransactionVerifier;

/// What every connection and background task shares.
pub(crate) struct Broker {
    /// The static configuration (node id, defaults for topics, limits, DescribeConfigs).
    pub(crate) config: BrokerConfig,
    /// From `meta.properties`.
    pub(crate) cluster_id: String,
    /// Every partition's log; closed cleanly on shutdown.
    pub(crate) logs: Arc<LogManager>,
    /// The metadata quorum this node belongs to (and the controller, when it leads).
    pub(crate) quorum: Arc<MetadataQuorum>,
    /// Hosted partitions in their roles.
    pub(crate) replicas: Arc<ReplicaManager>,
    pub(crate) topics: Arc<TopicRegistry>,
    /// Consumer groups and committed offsets.
    pub(crate) groups: Arc<GroupCoordinator>,
    /// Producer ids and transactions.
    pub(crate) txn: Arc<TransactionCoordinator>,
    /// Checks transactional produce requests with their coordinator (KIP-890).
    pub(crate) verifier: Arc<TransactionVerifier>,
    /// Shutdown has begun: long polls answer with what they have instead of waiting.
    pub(crate) stopping: AtomicBool,
}

/// A running node; see the module docs.
pub(crate) struct Node {
    /// What request handlers use.
    pub(crate) broker: Arc<Broker>,
    /// Tasks that end when told to stop.
    tasks: JoinSet<()>,
    /// Sends ISR changes to the controller; it only reacts to leaders, so it is aborted at
    /// close.
    alter_partition: JoinHandle<()>,
    /// Registration and heartbeats; when told to leave it performs the controlled shutdown.
    lifecycle: Option<JoinHandle<()>>,
    leave: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Node {
    /// Starts everything but the client listeners; `endpoints` are the advertised client
    /// listeners this broker registers with. Returns once the broker is unfenced (a node
    /// without the broker role returns once the quorum runs).
    pub(crate) async fn start(
        config: BrokerConfig,
        endpoints: Vec<Endpoint>,
    ) -> Result<Node, BrokerError> {
        let fresh_id = if config.cluster.voters.is_empty() {
            gregor_protocol::ids::to_text(gregor_protocol::ids::random_id())
        } else {
            meta_properties::cluster_id_for_voters(&config.cluster.voters)
        };
        let cluster_id = meta_properties::ensure(&config.log_dirs, config.node_id, fresh_id)?;
        let quorum = Arc::new(start_quorum(&config).await?);
        // Logs open with their topic's configs as far as this node's metadata knows them, so
        // nothing (time retention of a compacted topic, say) runs under broker defaults.
        let image = quorum.image().borrow().clone();
        let defaults = config.default_log_config();
        let dirs = config.log_dirs.clone();
        let logs = tokio::task::spawn_blocking(move || {
            LogManager::open(
                dirs,
                |tp| {
                    crate::topics::log_config(&defaults, &image.topic_configs(&tp.topic))
                        .unwrap_or_else(|_| defaults.clone())
                },
                now_ms(),
            )
        })
        .await
        .expect("log loading does not panic")?;
        let logs = Arc::new(logs);
        let (alter_partition, alter_queue) = replica::alter_partition_channel();
        let replicas = Arc::new(ReplicaManager::new(
            replica_config(&config),
            Arc::clone(&logs),
            config.default_log_config(),
            alter_partition,
        )?);
        let topics = Arc::new(TopicRegistry::new(
            Arc::clone(&quorum),
            Arc::clone(&replicas),
            config.default_log_config(),
        ));
        let groups = Arc::new(GroupCoordinator::new(
            config.group.clone(),
            Arc::clone(&replicas),
            Arc::clone(&topics),
            config.cluster.offsets_topic_replication_factor,
        ));
        // One set of inter-broker connections for transaction markers and KIP-890 verification.
        let channel = Arc::new(BrokerChannel::new(
            replica_config(&config).inter_broker_listener,
            format!("gregor-broker-{}", config.node_id),
            INTER_BROKER_TIMEOUT,
        ));
        let txn = Arc::new(TransactionCoordinator::new(
            config.transaction.clone(),
            TransactionStateManager::new(
                &config.transaction,
                Arc::clone(&replicas),
                Arc::clone(&topics),
            ),
            ProducerIdManager::new(ControllerProducerIds::new(
                Arc::clone(&quorum),
                Arc::clone(&replicas),
                config.node_id,
            )),
            TransactionMarkerChannelManager::new(
                {
                    let replicas = Arc::clone(&replicas);
                    Box::new(move || replicas.image())
                },
                Arc::clone(&channel),
                MARKER_RETRY_BACKOFF,
            ),
        ));
        let verifier = Arc::new(TransactionVerifier::new(
            Arc::clone(&txn),
            Arc::clone(&replicas),
            config.node_id,
            channel,
            config.transaction.partition_verification_enable,
        ));
        let broker = Arc::new(Broker {
            config: config.clone(),
            cluster_id,
            logs,
            quorum,
            replicas,
            topics,
            groups,
            txn,
            verifier,
            stopping: AtomicBool::new(false),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (leave, leave_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(apply_metadata(Arc::clone(&broker), stop_rx.clone()));
        if config.cluster.voters.is_empty() {
            import_legacy_topics(&broker).await?;
        }
        let interval = Duration::from_millis(config.log_retention_check_interval_ms.max(1) as u64);
        tasks.spawn(housekeeping(Arc::clone(&broker), interval, stop_rx.clone()));
        tasks.spawn(isr_expiry(Arc::clone(&broker), stop_rx.clone()));
        tasks.spawn(producer_expiry(Arc::clone(&broker), stop_rx.clone()));
        tasks.spawn(txn_ticks(Arc::clone(&broker), stop_rx.clone()));
        let (standing, mut standing_rx) = watch::channel(Standing::default());
        let alter_partition = tokio::spawn(replica::run_alter_partition(
            alter_queue,
            Arc::clone(&broker.quorum),
            config.node_id,
            standing.subscribe(),
        ));
        let lifecycle = if config.cluster.roles.broker {
            let registration = Registration {
                broker_id: config.node_id,
                incarnation_id: gregor_protocol::ids::random_id(),
                endpoints,
                rack: config.cluster.rack.clone(),
                heartbeat_interval: Duration::from_millis(
                    config.cluster.broker_heartbeat_interval_ms,
                ),
            };
            let task = tokio::spawn(lifecycle::run(
                Arc::clone(&broker.quorum),
                registration,
                broker.replicas.applied(),
                standing,
                leave_rx,
            ));
            tracing::info!(
                node = config.node_id,
                "waiting for the controller to unfence this broker"
            );
            let _ = standing_rx.wait_for(|s| s.unfenced).await;
            // Unfencing elects this broker where it can lead: serve once that is applied here.
            let committed = broker.quorum.image().borrow().offset;
            let _ = broker
                .replicas
                .applied()
                .wait_for(|applied| *applied >= committed)
                .await;
            Some(task)
        } else {
            None
        };
        Ok(Node {
            broker,
            tasks,
            alter_partition,
            lifecycle,
            leave,
            stop,
        })
    }

    /// Turns true when the node stops: accept loops and connections watch it.
    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Controlled shutdown: asks the controller to move this broker's leaderships and waits
    /// for it (bounded), while everything keeps serving.
    pub(crate) async fn leave(&mut self) {
        let _ = self.leave.send(true);
        if let Some(lifecycle) = self.lifecycle.take() {
            let _ = lifecycle.await;
        }
    }

    /// Tells connections and tasks to stop: long polls answer with what they have.
    pub(crate) fn stop(&self) {
        self.broker.stopping.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        self.broker.replicas.wake_fetches();
        self.broker.groups.shutdown();
        self.broker.txn.shutdown();
    }

    /// Waits for the tasks, then closes the fetchers, the quorum and the logs cleanly.
    pub(crate) async fn close(mut self) -> Result<(), BrokerError> {
        self.stop();
        if let Some(lifecycle) = self.lifecycle.take() {
            lifecycle.abort();
        }
        while self.tasks.join_next().await.is_some() {}
        self.alter_partition.abort();
        let _ = (&mut self.alter_partition).await;
        self.broker.replicas.shutdown();
        self.broker.quorum.shutdown().await;
        let logs = Arc::clone(&self.broker.logs);
        tokio::task::spawn_blocking(move || logs.shutdown(now_ms()))
            .await
            .expect("log shutdown does not panic")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Joins the metadata quorum: alone (no `controller.quorum.voters`, the embedded default), as
/// a voter on the first controller listener, or as an observer of the voters (broker-only).
async fn start_quorum(config: &BrokerConfig) -> Result<MetadataQuorum, BrokerError> {
    let cluster = &config.cluster;
    let dir = cluster
        .metadata_log_dir
        .clone()
        .unwrap_or_else(|| config.log_dirs[0].clone())
        .join(CLUSTER_METADATA_DIR);
    let (role, voters) = if cluster.voters.is_empty() {
        (
            NodeRole::Voter,
            [(config.node_id, String::new())].into_iter().collect(),
        )
    } else if cluster.roles.controller {
        (NodeRole::Voter, cluster.voters.clone())
    } else {
        (NodeRole::Observer, cluster.voters.clone())
    };
    let (listener, advertised) = if cluster.voters.is_empty() {
        (None, None)
    } else {
        // Voters serve the quorum on their controller listener; a broker-only observer on
        // the address it is told (its controller listener, port 0 allowed).
        let own = config.controller_listeners.first().ok_or_else(|| {
            BrokerError::Quorum(
                "this node needs a controller listener (named in controller.listener.names) to \
                 take part in the metadata quorum"
                    .into(),
            )
        })?;
        let (tcp, local) = bind(&own.address()).await?;
        let host = if own.host == "0.0.0.0" || own.host.is_empty() {
            "127.0.0.1".to_string()
        } else {
            own.host.clone()
        };
        tracing::info!(
            node = config.node_id,
            "metadata quorum listening on {}://{local}",
            own.name
        );
        (Some(tcp), Some(format!("{host}:{}", local.port())))
    };
    let quorum_config = QuorumConfig {
        node_id: config.node_id,
        role,
        voters,
        listener,
        advertised,
        metadata_dir: dir,
        election_timeout_ms: cluster.election_timeout_ms,
        heartbeat_interval_ms: (cluster.election_timeout_ms / 5).max(20),
        snapshot_every_entries: cluster.snapshot_interval_records,
        controller: ControllerConfig {
            broker_session_timeout_ms: cluster.broker_session_timeout_ms,
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            unclean_leader_election_enable: cluster.unclean_leader_election_enable,
            auto_leader_rebalance_enable: cluster.auto_leader_rebalance_enable,
            leader_imbalance_check_interval_ms: cluster.leader_imbalance_check_interval_ms,
        },
    };
    MetadataQuorum::start(quorum_config)
        .await
        .map_err(|e| BrokerError::Quorum(e.to_string()))
}

/// Binds a listener; returns it with the address it got (port 0 picks a free one).
pub(crate) async fn bind(addr: &str) -> Result<(TcpListener, std::net::SocketAddr), BrokerError> {
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = tcp
        .local_addr()
        .map_err(|source| BrokerError::Io { addr: None, source })?;
    Ok((tcp, local))
}

/// The replica manager's settings from the broker's.
fn replica_config(config: &BrokerConfig) -> ReplicaConfig {
    let cluster = &config.cluster;
    ReplicaConfig {
        node_id: config.node_id,
        inter_broker_listener: cluster
            .inter_broker_listener_name
            .clone()
            .or_else(|| config.listeners.first().map(|l| l.name.clone()))
            .unwrap_or_default(),
        min_insync_replicas: cluster.min_insync_replicas,
        replica_lag_time_max_ms: cluster.replica_lag_time_max_ms,
        fetcher: FetcherConfig {
            node_id: config.node_id,
            max_bytes_per_partition: cluster.replica_fetch_max_bytes,
            max_bytes: cluster.replica_fetch_response_max_bytes,
            max_wait_ms: cluster.replica_fetch_wait_max_ms,
            backoff: Duration::from_millis(cluster.replica_fetch_backoff_ms),
        },
    }
}

/// Applies every committed metadata image, in order, to the hosted partitions and then to
/// the group and transaction coordinators (which follow `__consumer_offsets` and
/// `__transaction_state` leadership).
async fn apply_metadata(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut images = broker.quorum.image();
    loop {
        let image = Arc::clone(&images.borrow_and_update());
        let b = Arc::clone(&broker);
        let applied = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let offset = image.offset;
            let changes = b.replicas.apply(image, now);
            b.groups.on_roles(&changes, now);
            b.txn.on_roles(&changes);
            b.replicas.publish_applied(offset);
        })
        .await;
        if let Err(e) = applied {
            tracing::error!(error = %e, "applying metadata panicked");
        }
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// First start of a single-node broker over a data directory written before the metadata
/// quorum existed: its topics (ids from `partition.metadata`, overrides from `topic-configs`)
/// are written into the metadata log, led by this node, so nothing is lost.
async fn import_legacy_topics(broker: &Arc<Broker>) -> Result<(), BrokerError> {
    use gregor_metadata::records::{
        ConfigRecord, ConfigResource, MetadataRecord, PartitionRecord, TopicRecord,
    };
    // A lone voter elects itself at once; wait for that, then append an empty entry, applied
    // after everything already in the log: the image is then current.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while broker.quorum.leader() != Some(broker.config.node_id) {
        if tokio::time::Instant::now() > deadline {
            return Err(BrokerError::Quorum(
                "this node did not become the controller".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker
        .quorum
        .append(Vec::new())
        .await
        .map_err(|e| BrokerError::Quorum(e.to_string()))?;
    let image = broker.quorum.image().borrow().clone();
    if !image.topics.is_empty() {
        return Ok(());
    }
    let legacy = crate::topics::legacy_topics(&broker.logs)
        .map_err(|e| BrokerError::Topics(e.to_string()))?;
    if legacy.is_empty() {
        return Ok(());
    }
    let me = broker.config.node_id;
    let mut records = Vec::new();
    for topic in &legacy {
        records.push(MetadataRecord::Topic(TopicRecord {
            name: topic.name.clone(),
            topic_id: topic.id,
        }));
        for partition in 0..topic.partitions {
            records.push(MetadataRecord::Partition(PartitionRecord {
                topic_id: topic.id,
                partition,
                replicas: vec![me],
                isr: vec![me],
                removing_replicas: Vec::new(),
                adding_replicas: Vec::new(),
                leader: me,
                leader_epoch: 0,
                partition_epoch: 0,
            }));
        }
        for (name, value) in &topic.configs {
            records.push(MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource::Topic(topic.name.clone()),
                name: name.clone(),
                value: Some(value.clone()),
            }));
        }
    }
    broker
        .quorum
        .append(records)
        .await
        .map_err(|e| BrokerError::Quorum(e.to_string()))?;
    tracing::info!(
        topics = legacy.len(),
        "imported topics of a pre-quorum data directory into the metadata log"
    );
    Ok(())
}

/// Kafka's `isr-expiration` task: every half `replica.lag.time.max.ms`, leaders drop
/// followers that stopped catching up.
async fn isr_expiry(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let period =
        Duration::from_millis((broker.config.cluster.replica_lag_time_max_ms / 2).max(10) as u64);
    every(period, stop, || async {
        broker.replicas.shrink_isrs(now_ms())
    })
    .await;
}

/// The log manager's periodic work, as Kafka's scheduler runs it: retention (time, size, log
/// start), removal of `.deleted` files, compaction, `flush.ms`, and the recovery-point and
/// log-start checkpoints, every `log.retention.check.interval.ms`.
async fn housekeeping(broker: Arc<Broker>, interval: Duration, mut stop: watch::Receiver<bool>) {
    // Not before the metadata has been applied once: until then a log may not have its
    // topic's configs.
    let mut applied = broker.replicas.applied();
    tokio::select! {
        _ = applied.changed() => {}
        _ = stop.changed() => return,
    }
    every(interval, stop, || async {
        let logs = Arc::clone(&broker.logs);
        let replicas = Arc::clone(&broker.replicas);
        let pass = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            logs.run_retention(now);
            logs.run_cleaner(now);
            logs.flush_due(now);
            logs.checkpoint()?;
            replicas.checkpoint_high_watermarks()
        });
        match pass.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "writing log checkpoints failed"),
            Err(e) => tracing::error!(error = %e, "log housekeeping panicked"),
            Ok(Ok(())) => {}
        }
    })
    .await;
}

/// Forgets idle producers (`producer.id.expiration.ms`) every
/// `producer.id.expiration.check.interval.ms`, as Kafka's `PeriodicProducerExpirationCheck`.
async fn producer_expiry(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let expiration_ms = broker.config.producer_id_expiration_ms;
    let interval =
        Duration::from_millis(broker.config.producer_id_expiration_check_interval_ms as u64);
    every(interval, stop, || async {
        let logs = Arc::clone(&broker.logs);
        let expired = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            logs.all_logs()
                .iter()
                .map(|log| log.remove_expired_producers(now, expiration_ms))
                .sum::<usize>()
        });
        if let Ok(n) = expired.await {
            if n > 0 {
                tracing::debug!(expired = n, "forgot idle producers");
            }
        }
    })
    .await;
}

/// How often group deadlines (sessions, rebalance timeouts, delays) are checked: their
/// resolution, a small fraction of the shortest session timeout Kafka allows.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Drives the group coordinator's deadlines on the wall clock. Started with the client
/// listeners (the deadlines concern clients), not by the node itself, so tests can drive
/// the coordinator on their own clock.
pub(crate) async fn group_ticks(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    every(GROUP_TICK, stop, || {
        blocking(&broker, |b| b.groups.tick(now_ms()))
    })
    .await;
}

/// How long a request to another broker may take (Kafka's `request.timeout.ms` default).
const INTER_BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a transaction's markers wait before partitions that did not take them (leader
/// moving or unreachable) are tried again.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How often the transaction coordinator looks at its deadlines; the intervals themselves
/// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`,
/// `transaction.remove.expired.transaction.cleanup.interval.ms`) are checked inside.
const TXN_TICK: Duration = Duration::from_millis(500);

/// Drives the transaction coordinator's deadlines: aborting transactions past their timeout
/// and removing expired transactional ids.
async fn txn_ticks(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    every(TXN_TICK, stop, || {
        blocking(&broker, |b| b.txn.tick(now_ms()))
    })
    .await;
}

/// Runs `work` every `period` until `stop` changes: the loop of the broker's periodic tasks,
/// as Kafka's scheduler runs them (a late run delays the next tick rather than bunching them
/// up). The first run is immediate.
async fn every<F: Future<Output = ()>>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    mut work: impl FnMut() -> F,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        work().await;
    }
}

/// Starts a node with `config` on a runtime of its own, for tests that drive the node's parts
/// from blocking code as the broker does (the runtime must outlive the node).
#[cfg(test)]
pub(crate) fn start_on_own_runtime(config: BrokerConfig) -> (tokio::runtime::Runtime, Node) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime");
    let node = runtime
        .block_on(Node::start(config, Vec::new()))
        .expect("the node starts");
    (runtime, node)
}

/// Runs a handler that does file I/O (appends, fsyncs, reads, directory changes) on tokio's
/// blocking pool, so the async threads keep serving other connections meanwhile.
pub(crate) async fn blocking<T: Send + 'static>(
    broker: &Arc<Broker>,
    work: impl FnOnce(&Broker) -> T + Send + 'static,
) -> T {
    let shared = Arc::clone(broker);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .expect("request handlers do not panic")
}

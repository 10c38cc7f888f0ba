//! Listeners, connections and framing.
//!
//! Every request is a 4-byte big-endian size followed by that many bytes; a size above
//! `socket.request.max.bytes` (or negative), an unknown API key or an undecodable header or body
//! closes that connection with a warning and touches nothing else. Requests on one connection are
//! handled one after another, so responses leave in request order however many a client
//! pipelines. Shutdown stops accepting, lets each connection finish the request it is on, then
//! closes the logs cleanly (flushed, indexes trimmed, clean-shutdown marker written).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Encodable, decode_request_header_from_buffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use gregor_log::LogManager;
use gregor_protocol::ErrorCode;

use crate::api::is_supported;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::group::GroupCoordinator;
use crate::group::classic::Reply;
use crate::handlers::{
    ClientInfo, api_versions, configs, consumer_group_describe, consumer_group_heartbeat,
    create_partitions, create_topics, delete_groups, delete_records, delete_topics,
    describe_cluster, describe_groups, describe_log_dirs, fetch, find_coordinator, heartbeat,
    join_group, leave_group, list_groups, list_offsets, metadata, offset_commit, offset_delete,
    offset_fetch, offset_for_leader_epoch, produce, sync_group, unsupported,
};
use crate::meta_properties;
use crate::topics::TopicRegistry;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What every connection shares.
struct Broker {
    /// The static configuration (node id, defaults for topics, limits, DescribeConfigs).
    config: BrokerConfig,
    /// From `meta.properties`.
    cluster_id: String,
    /// Every partition's log; closed cleanly on shutdown.
    logs: Arc<LogManager>,
    topics: Arc<TopicRegistry>,
    /// Consumer groups and committed offsets.
    groups: GroupCoordinator,
    /// Woken on every append, for fetches waiting for data (long poll), and at shutdown.
    appended: tokio::sync::Notify,
    /// Shutdown has begun: long polls answer with what they have instead of waiting.
    stopping: AtomicBool,
}

/// The address clients are told to use for one listener.
#[derive(Clone)]
struct Advertised {
    host: String,
    port: u16,
}

/// Why a connection is being closed.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("request of {0} bytes is outside 0..=socket.request.max.bytes ({1})")]
    FrameSize(i64, usize),
    #[error("request too short for a header ({0} bytes)")]
    ShortHeader(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{0:?} v{1} is not implemented (not advertised in ApiVersions)")]
    UnsupportedApi(ApiKey, i16),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs a single-node broker until `shutdown` completes, then shuts down cleanly.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    let broker = RunningBroker::start(config).await?;
    shutdown.await;
    broker.shutdown().await
}

/// A started broker: its listeners are bound and serving.
pub struct RunningBroker {
    addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    acceptors: JoinSet<()>,
    broker: Arc<Broker>,
}

impl RunningBroker {
    /// Opens the log directories (recovering them if needed), binds every listener and starts
    /// serving. Logs the ready line with the real ports (port 0 picks a free one).
    pub async fn start(config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
        let cluster_id = meta_properties::ensure(&config.log_dirs, config.node_id)?;
        let log_config = config.default_log_config();
        let dirs = config.log_dirs.clone();
        let logs = tokio::task::spawn_blocking(move || {
            LogManager::open(dirs, |_| log_config.clone(), now_ms())
        })
        .await
        .expect("log loading does not panic")?;
        let logs = Arc::new(logs);
        let topics = TopicRegistry::load(Arc::clone(&logs), config.default_log_config())
            .map_err(|e| BrokerError::Topics(e.to_string()))?;
        let topics = Arc::new(topics);
        let groups =
            GroupCoordinator::new(config.group.clone(), Arc::clone(&logs), Arc::clone(&topics));
        let groups = tokio::task::spawn_blocking(move || {
            let loaded = groups.load(now_ms())?;
            tracing::info!(
                groups = loaded,
                "group coordinator loaded __consumer_offsets"
            );
            Ok::<_, crate::group::store::StoreError>(groups)
        })
        .await
        .expect("group loading does not panic")
        .map_err(|e| BrokerError::Topics(e.to_string()))?;
        let broker = Arc::new(Broker {
            config: config.clone(),
            cluster_id,
            logs,
            topics,
            groups,
            appended: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
        });
        let mut bound = Vec::new();
        for listener in &config.listeners {
            let addr = listener.address();
            let tcp = TcpListener::bind(&addr)
                .await
                .map_err(|source| BrokerError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
            let local = tcp
                .local_addr()
                .map_err(|source| BrokerError::Io { addr: None, source })?;
            let advertised = config
                .advertised_listeners
                .iter()
                .find(|a| a.name == listener.name);
            let host = advertised.map_or_else(|| local.ip().to_string(), |a| a.host.clone());
            // Port 0 asks the OS for a free port: advertise the one it gave.
            let port = advertised.map_or(0, |a| a.port);
            let port = if port == 0 { local.port() } else { port };
            tracing::info!(
                "Gregor broker {} ready: listening on {}://{} (cluster id {})",
                broker.config.node_id,
                listener.name,
                local,
                broker.cluster_id
            );
            bound.push((tcp, local, Advertised { host, port }));
        }
        let (stop, stop_rx) = watch::channel(false);
        let mut acceptors = JoinSet::new();
        let mut addrs = Vec::new();
        for (tcp, local, advertised) in bound {
            addrs.push(local);
            acceptors.spawn(accept_loop(
                tcp,
                advertised,
                Arc::clone(&broker),
                stop_rx.clone(),
            ));
        }
        let interval = Duration::from_millis(config.log_retention_check_interval_ms.max(1) as u64);
        acceptors.spawn(housekeeping(Arc::clone(&broker), interval, stop_rx.clone()));
        acceptors.spawn(group_ticks(Arc::clone(&broker), stop_rx.clone()));
        Ok(RunningBroker {
            addrs,
            stop,
            acceptors,
            broker,
        })
    }

    /// The bound address of each listener, in `listeners` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting, lets connections finish the request they are on, and closes the logs
    /// cleanly (the next start skips recovery).
    pub async fn shutdown(mut self) -> Result<(), BrokerError> {
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = self.stop.send(true);
        self.broker.stopping.store(true, Ordering::Release);
        self.broker.appended.notify_waiters();
        self.broker.groups.shutdown();
        while self.acceptors.join_next().await.is_some() {}
        let logs = Arc::clone(&self.broker.logs);
        tokio::task::spawn_blocking(move || logs.shutdown(now_ms()))
            .await
            .expect("log shutdown does not panic")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// The log manager's periodic work, as Kafka's scheduler runs it: retention (time, size, log
/// start), removal of `.deleted` files, compaction, `flush.ms`, and the recovery-point and
/// log-start checkpoints, every `log.retention.check.interval.ms`.
async fn housekeeping(broker: Arc<Broker>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let logs = Arc::clone(&broker.logs);
        let pass = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            logs.run_retention(now);
            logs.run_cleaner(now);
            logs.flush_due(now);
            logs.checkpoint()
        });
        match pass.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "writing log checkpoints failed"),
            Err(e) => tracing::error!(error = %e, "log housekeeping panicked"),
            Ok(Ok(())) => {}
        }
    }
}

/// How often group deadlines (sessions, rebalance timeouts, delays) are checked: their
/// resolution, a small fraction of the shortest session timeout Kafka allows.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Drives the group coordinator's deadlines.
async fn group_ticks(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(GROUP_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        blocking(&broker, |b| b.groups.tick(now_ms())).await;
    }
}

/// Accepts connections until shutdown, then waits for them to finish their current request.
async fn accept_loop(
    tcp: TcpListener,
    advertised: Advertised,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, peer, advertised.clone(), Arc::clone(&broker), stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Serves one connection until the client leaves, misbehaves, or the broker stops.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    advertised: Advertised,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut read, broker.config.socket_request_max_bytes) => frame,
            _ = stop.changed() => return,
        };
        let result = match frame {
            Ok(None) => return,
            Ok(Some(frame)) => handle(&broker, &advertised, peer, frame).await,
            Err(e) => Err(e),
        };
        let response = match result {
            Ok(Some(response)) => response,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                return;
            }
        };
        if let Err(e) = write.write_all(&response).await {
            tracing::debug!(%peer, error = %e, "client went away");
            return;
        }
    }
}

/// Reads one size-prefixed request; `None` at a clean end of stream.
async fn read_frame(
    read: &mut (impl AsyncReadExt + Unpin),
    max: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    let size = match read.read_i32().await {
        Ok(size) => size,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if size < 0 || size as usize > max {
        return Err(ConnectionError::FrameSize(i64::from(size), max));
    }
    let mut buf = vec![0u8; size as usize];
    read.read_exact(&mut buf).await?;
    Ok(Some(Bytes::from(buf)))
}

/// Decodes, dispatches and encodes one request; the result is the size-prefixed response, or
/// `None` for a request that gets none (Produce with `acks=0`).
async fn handle(
    broker: &Arc<Broker>,
    advertised: &Advertised,
    peer: SocketAddr,
    mut frame: Bytes,
) -> Result<Option<BytesMut>, ConnectionError> {
    if frame.len() < 8 {
        return Err(ConnectionError::ShortHeader(frame.len()));
    }
    let (raw_key, version) = ((&frame[0..2]).get_i16(), (&frame[2..4]).get_i16());
    let correlation_id = (&frame[4..8]).get_i32();
    let key = ApiKey::try_from(raw_key).map_err(|()| ConnectionError::UnknownApiKey(raw_key))?;
    if key == ApiKey::ApiVersions && !is_supported(key, version) {
        let refused = ResponseKind::ApiVersions(api_versions::unsupported_version());
        return encode(correlation_id, ApiKey::ApiVersions, 0, &refused).map(Some);
    }
    let supported = is_supported(key, version);
    if !supported && !decodable(key, version) {
        return Err(ConnectionError::UnsupportedApi(key, version));
    }
    let header = decode_request_header_from_buffer(&mut frame)
        .map_err(|e| ConnectionError::Malformed(e.to_string()))?;
    // Only group members are described by who sent them; built on demand, off the produce
    // and fetch path.
    let client = || ClientInfo {
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        host: format!("/{}", peer.ip()),
    };
    let request = RequestKind::decode(key, &mut frame, version)
        .map_err(|e| ConnectionError::Malformed(e.to_string()))?;
    if !supported {
        return match unsupported::respond(&request, version) {
            Some(response) => encode(correlation_id, key, version, &response).map(Some),
            None => Err(ConnectionError::UnsupportedApi(key, version)),
        };
    }
    let response = match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r)),
        RequestKind::Metadata(r) => {
            // May create topics (auto-creation): file I/O, so off the async threads.
            let advertised = advertised.clone();
            ResponseKind::Metadata(
                blocking(broker, move |b| {
                    let view = cluster_view(b, &advertised);
                    metadata::handle(&r, &view, &b.topics, now_ms())
                })
                .await,
            )
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            blocking(broker, move |b| {
                let defaults = create_topics::Defaults {
                    node_id: b.config.node_id,
                    num_partitions: b.config.num_partitions,
                    replication_factor: b.config.default_replication_factor,
                };
                create_topics::handle(&r, &b.topics, &defaults, now_ms())
            })
            .await,
        ),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let (response, appended) =
                blocking(broker, move |b| produce::handle(&r, &b.logs, now_ms())).await;
            if appended {
                broker.appended.notify_waiters();
            }
            if acks == 0 {
                return Ok(None);
            }
            ResponseKind::Produce(response)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(long_poll_fetch(broker, r, version).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            blocking(broker, move |b| list_offsets::handle(&r, version, &b.logs)).await,
        ),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(&r, &broker.logs))
        }
        RequestKind::DescribeCluster(r) => {
            let view = cluster_view(broker, advertised);
            ResponseKind::DescribeCluster(describe_cluster::handle(&r, &view))
        }
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
            blocking(broker, move |b| {
                create_partitions::handle(&r, &b.topics, b.config.node_id, now_ms())
            })
            .await,
        ),
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(&r, &broker.topics, &broker.config))
        }
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(
            blocking(broker, move |b| configs::alter(&r, &b.topics)).await,
        ),
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            blocking(broker, move |b| configs::incremental_alter(&r, &b.topics)).await,
        ),
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(&r, &broker.logs))
        }
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(
            blocking(broker, move |b| delete_topics::handle(&r, &b.topics)).await,
        ),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(
            blocking(broker, move |b| {
                delete_records::handle(&r, &b.logs, now_ms())
            })
            .await,
        ),
        RequestKind::FindCoordinator(r) => {
            let advertised = advertised.clone();
            ResponseKind::FindCoordinator(
                blocking(broker, move |b| {
                    let view = cluster_view(b, &advertised);
                    find_coordinator::handle(&r, version, &view, &b.groups, now_ms())
                })
                .await,
            )
        }
        RequestKind::JoinGroup(r) => {
            let client = client();
            let reply = blocking(broker, move |b| {
                join_group::start(&r, version, &client, &b.groups, now_ms())
            })
            .await;
            let result = parked(reply, |member| {
                crate::group::classic::JoinResult::error(ErrorCode::NOT_COORDINATOR, member)
            })
            .await;
            ResponseKind::JoinGroup(join_group::respond(result, version))
        }
        RequestKind::SyncGroup(r) => {
            let reply = blocking(broker, move |b| sync_group::start(&r, &b.groups, now_ms())).await;
            let result = parked(reply, |_| {
                crate::group::classic::SyncResult::error(ErrorCode::NOT_COORDINATOR)
            })
            .await;
            ResponseKind::SyncGroup(sync_group::respond(result, version))
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(
            blocking(broker, move |b| heartbeat::handle(&r, &b.groups, now_ms())).await,
        ),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(
            blocking(broker, move |b| {
                leave_group::handle(&r, version, &b.groups, now_ms())
            })
            .await,
        ),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(
            blocking(broker, move |b| {
                offset_commit::handle(&r, version, &b.groups, now_ms())
            })
            .await,
        ),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(
            blocking(broker, move |b| {
                offset_fetch::handle(&r, version, &b.groups)
            })
            .await,
        ),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(
            blocking(broker, move |b| {
                offset_delete::handle(&r, &b.groups, now_ms())
            })
            .await,
        ),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(
            blocking(broker, move |b| list_groups::handle(&r, version, &b.groups)).await,
        ),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(
            blocking(broker, move |b| {
                describe_groups::handle(&r, version, &b.groups)
            })
            .await,
        ),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(
            blocking(broker, move |b| {
                delete_groups::handle(&r, &b.groups, now_ms())
            })
            .await,
        ),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let client = client();
            ResponseKind::ConsumerGroupHeartbeat(
                blocking(broker, move |b| {
                    consumer_group_heartbeat::handle(&r, &client, &b.groups, now_ms())
                })
                .await,
            )
        }
        RequestKind::ConsumerGroupDescribe(r) => ResponseKind::ConsumerGroupDescribe(
            blocking(broker, move |b| {
                consumer_group_describe::handle(&r, version, &b.groups, &b.topics)
            })
            .await,
        ),
        // The catalog check above admits nothing else.
        _ => return Err(ConnectionError::UnsupportedApi(key, version)),
    };
    encode(correlation_id, key, version, &response).map(Some)
}

/// Waits for a parked JoinGroup/SyncGroup answer. The coordinator answers every parked
/// request (at the latest when the rebalance times out or the broker stops); if it dropped
/// one, the client is told to find the coordinator again.
async fn parked<T>(reply: Reply<T>, lost: impl FnOnce(&str) -> T) -> T {
    match reply {
        Reply::Now(result) => result,
        Reply::Later(rx) => rx.await.unwrap_or_else(|_| lost("")),
    }
}

/// Runs a handler that does file I/O (appends, fsyncs, reads, directory changes) on tokio's
/// blocking pool, so the async threads keep serving other connections meanwhile.
async fn blocking<T: Send + 'static>(
    broker: &Arc<Broker>,
    work: impl FnOnce(&Broker) -> T + Send + 'static,
) -> T {
    let shared = Arc::clone(broker);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .expect("request handlers do not panic")
}

/// Whether the message library can read `version` of `key` (so an error answer can be built
/// for a version Gregor does not implement).
fn decodable(key: ApiKey, version: i16) -> bool {
    let range = key.valid_versions();
    (range.min..=range.max).contains(&version)
}

/// What Metadata and DescribeCluster say about this broker, as seen from `advertised`.
fn cluster_view<'a>(broker: &'a Broker, advertised: &'a Advertised) -> metadata::ClusterView<'a> {
    metadata::ClusterView {
        node_id: broker.config.node_id,
        host: &advertised.host,
        port: advertised.port,
        cluster_id: &broker.cluster_id,
        auto_create: broker.config.auto_create_topics_enable,
        num_partitions: broker.config.num_partitions,
    }
}

/// Fetch with long polling: answer at once if `min_bytes` are there, else wait for an append
/// (or `max_wait_ms`) and look again.
async fn long_poll_fetch(
    broker: &Arc<Broker>,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let request = Arc::new(request);
    loop {
        // Registered before reading, so an append between the read and the wait is not missed.
        let appended = broker.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let req = Arc::clone(&request);
        let (response, bytes) = blocking(broker, move |b| {
            fetch::handle(&req, version, &b.logs, &b.topics)
        })
        .await;
        let now = Instant::now();
        let stopping = broker.stopping.load(Ordering::Acquire);
        if bytes >= request.min_bytes.max(0) as usize
            || now >= deadline
            || response.error_code != 0
            || stopping
        {
            return response;
        }
        if tokio::time::timeout(deadline - now, appended)
            .await
            .is_err()
        {
            // Timed out: one last look, in case data arrived just as the wait ended.
            let req = Arc::clone(&request);
            return blocking(broker, move |b| {
                fetch::handle(&req, version, &b.logs, &b.topics).0
            })
            .await;
        }
    }
}

fn encode(
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Result<BytesMut, ConnectionError> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out, key.response_header_version(version))
        .map_err(failed)?;
    response.encode(&mut out, version).map_err(failed)?;
    let size = (out.len() - 4) as i32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

fn failed(e: impl std::fmt::Display) -> ConnectionError {
    ConnectionError::Malformed(format!("cannot encode response: {e}"))
}

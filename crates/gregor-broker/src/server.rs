//! Listeners, connections and framing.
//!
//! Every request is a 4-byte big-endian size followed by that many bytes; a size above
//! `socket.request.max.bytes` (or negative), an unknown API key or an undecodable header or body
//! closes that connection with a warning and touches nothing else. Requests on one connection are
//! handled one after another, so responses leave in request order however many a client
//! pipelines. Shutdown first moves this broker's leaderships to other replicas (controlled
//! shutdown), then stops accepting, lets each connection finish the request it is on, and
//! closes the logs cleanly (flushed, indexes trimmed, clean-shutdown marker written). What runs
//! behind the listeners (quorum, replicas, groups) is the `node` module's.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Encodable, decode_request_header_from_buffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use gregor_metadata::records::Endpoint;
use gregor_protocol::ErrorCode;

use crate::api::is_supported;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::group::classic::Reply;
use crate::group::store::OFFSETS_TOPIC;
use crate::handlers::{
    ClientInfo, add_offsets_to_txn, add_partitions_to_txn, api_versions, configs,
    consumer_group_describe, consumer_group_heartbeat, create_partitions, create_topics,
    delete_groups, delete_records, delete_topics, describe_cluster, describe_groups,
    describe_log_dirs, describe_producers, describe_transactions, elect_leaders, end_txn, fetch,
    find_coordinator, heartbeat, init_producer_id, join_group, leave_group, list_groups,
    list_offsets, list_transactions, metadata, offset_commit, offset_delete, offset_fetch,
    offset_for_leader_epoch, produce, reassignments, sync_group, txn_offset_commit, unsupported,
    write_txn_markers,
};
use crate::node::{Broker, Node, bind, blocking, group_ticks};
use crate::now_ms;

/// The listener a connection came in on (other brokers are described by their endpoint on it).
#[derive(Clone)]
struct Advertised {
    listener: String,
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

/// Runs a broker until `shutdown` completes, then shuts down cleanly.
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
    acceptors: JoinSet<()>,
    node: Node,
}

impl RunningBroker {
    /// Opens the log directories (recovering them if needed), binds every listener, joins the
    /// metadata quorum, registers with the controller and serves once this broker is unfenced.
    /// Logs the ready line with the real ports (port 0 picks a free one).
    pub async fn start(config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
        let mut bound = Vec::new();
        let mut endpoints = Vec::new();
        if config.cluster.roles.broker {
            for listener in &config.listeners {
                let (tcp, local) = bind(&listener.address()).await?;
                let advertised = config
                    .advertised_listeners
                    .iter()
                    .find(|a| a.name == listener.name);
                let host = advertised.map_or_else(|| local.ip().to_string(), |a| a.host.clone());
                // Port 0 asks the OS for a free port: advertise the one it gave.
                let port = advertised.map_or(0, |a| a.port);
                let port = if port == 0 { local.port() } else { port };
                endpoints.push(Endpoint {
                    name: listener.name.clone(),
                    host,
                    port,
                    security_protocol: "PLAINTEXT".into(),
                });
                bound.push((tcp, local, listener.name.clone()));
            }
        }
        let node = Node::start(config.clone(), endpoints).await?;
        let mut acceptors = JoinSet::new();
        let mut addrs = Vec::new();
        for (tcp, local, listener) in bound {
            addrs.push(local);
            tracing::info!(
                "Gregor broker {} ready: listening on {listener}://{local} (cluster id {})",
                config.node_id,
                node.broker.cluster_id
            );
            acceptors.spawn(accept_loop(
                tcp,
                Advertised { listener },
                Arc::clone(&node.broker),
                node.stopped(),
            ));
        }
        acceptors.spawn(group_ticks(Arc::clone(&node.broker), node.stopped()));
        Ok(RunningBroker {
            addrs,
            acceptors,
            node,
        })
    }

    /// The bound address of each listener, in `listeners` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Moves this broker's leaderships away (controlled shutdown), stops accepting, lets
    /// connections finish the request they are on, and closes the logs cleanly (the next
    /// start skips recovery).
    pub async fn shutdown(mut self) -> Result<(), BrokerError> {
        self.node.leave().await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        self.node.stop();
        while self.acceptors.join_next().await.is_some() {}
        self.node.close().await
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
            let image = broker.replicas.image();
            let create =
                metadata::to_auto_create(&r, &image, broker.config.auto_create_topics_enable);
            if !create.is_empty() {
                metadata::auto_create(&broker.topics, create).await;
            }
            let image = broker.replicas.image();
            let view = cluster_view(broker, &image, advertised);
            ResponseKind::Metadata(metadata::handle(&r, &view))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(&r, &broker.topics).await)
        }
        RequestKind::Produce(r) => {
            let (acks, timeout_ms) = (r.acks, r.timeout_ms);
            let refusals = broker.verifier.verify_produce(&r).await;
            let (mut response, pending, appended) = blocking(broker, move |b| {
                produce::append(&r, &b.replicas, &refusals, now_ms())
            })
            .await;
            if appended {
                broker.replicas.wake_fetches();
            }
            if acks == 0 {
                return Ok(None);
            }
            if !pending.is_empty() {
                let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
                produce::await_replication(&mut response, pending, timeout).await;
            }
            ResponseKind::Produce(response)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(long_poll_fetch(broker, r, version).await),
        RequestKind::WriteTxnMarkers(r) => {
            let r = Arc::new(r);
            let request = Arc::clone(&r);
            let (mut response, pending) = blocking(broker, move |b| {
                write_txn_markers::append(&request, &b.replicas, now_ms())
            })
            .await;
            if !pending.is_empty() {
                broker.replicas.wake_fetches();
                let decided =
                    write_txn_markers::await_replication(&mut response, &r, pending).await;
                // Before answering: the producer's next transaction must not be settled by
                // this marker.
                blocking(broker, move |b| {
                    for d in decided
                        .iter()
                        .filter(|d| d.partition.topic == OFFSETS_TOPIC)
                    {
                        b.groups.complete_txn_offsets(
                            d.partition.partition,
                            d.producer_id,
                            d.commit,
                        );
                    }
                })
                .await;
            }
            ResponseKind::WriteTxnMarkers(response)
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(&r, &broker.replicas))
        }
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            blocking(broker, move |b| {
                list_offsets::handle(&r, version, &b.replicas)
            })
            .await,
        ),
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(&r, &broker.replicas),
        ),
        RequestKind::DescribeCluster(r) => {
            let image = broker.replicas.image();
            let view = cluster_view(broker, &image, advertised);
            ResponseKind::DescribeCluster(describe_cluster::handle(&r, &view))
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(&r, &broker.topics).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(&r, &broker.topics, &broker.config))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(configs::alter(&r, &broker.topics).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(&r, &broker.topics).await,
        ),
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(&r, &broker.logs))
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(&r, &broker.topics).await)
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(elect_leaders::handle(&r, version, &broker.quorum).await)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            let image = broker.replicas.image();
            ResponseKind::AlterPartitionReassignments(
                reassignments::alter(&r, version, &image, &broker.quorum).await,
            )
        }
        RequestKind::ListPartitionReassignments(r) => ResponseKind::ListPartitionReassignments(
            reassignments::list(&r, &broker.replicas.image()),
        ),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(
            blocking(broker, move |b| {
                delete_records::handle(&r, &b.replicas, now_ms())
            })
            .await,
        ),
        RequestKind::FindCoordinator(r) => {
            let advertised = advertised.clone();
            ResponseKind::FindCoordinator(
                blocking(broker, move |b| {
                    find_coordinator::handle(
                        &r,
                        version,
                        &advertised.listener,
                        &b.replicas,
                        &b.groups,
                        &b.txn,
                    )
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
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            blocking(broker, move |b| {
                txn_offset_commit::handle(&r, version, &b.groups, now_ms())
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
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(
            blocking(broker, move |b| {
                init_producer_id::handle(&r, version, &b.txn, now_ms())
            })
            .await,
        ),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
            blocking(broker, move |b| {
                let image = b.replicas.image();
                add_partitions_to_txn::handle(&r, version, &image, &b.txn, now_ms())
            })
            .await,
        ),
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(
            blocking(broker, move |b| {
                let partitions = b
                    .topics
                    .get(crate::group::store::OFFSETS_TOPIC)
                    .map_or(b.config.group.offsets_topic_num_partitions, |t| {
                        t.partitions
                    });
                add_offsets_to_txn::handle(&r, version, partitions, &b.txn, now_ms())
            })
            .await,
        ),
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(
            blocking(broker, move |b| {
                end_txn::handle(&r, version, &b.txn, now_ms())
            })
            .await,
        ),
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(&r, &broker.txn))
        }
        RequestKind::ListTransactions(r) => ResponseKind::ListTransactions(
            list_transactions::handle(&r, version, &broker.txn, now_ms()),
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

/// Whether the message library can read `version` of `key` (so an error answer can be built
/// for a version Gregor does not implement).
fn decodable(key: ApiKey, version: i16) -> bool {
    let range = key.valid_versions();
    (range.min..=range.max).contains(&version)
}

/// The cluster as Metadata, DescribeCluster and FindCoordinator describe it to a client on
/// the listener `advertised`.
fn cluster_view<'a>(
    broker: &'a Broker,
    image: &'a gregor_metadata::MetadataImage,
    advertised: &'a Advertised,
) -> metadata::ClusterView<'a> {
    let is_broker = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    let controller_id = broker
        .quorum
        .leader()
        .filter(|id| is_broker(*id))
        .or_else(|| image.live_brokers().next().map(|b| b.id))
        .unwrap_or(-1);
    metadata::ClusterView {
        image,
        listener: &advertised.listener,
        cluster_id: &broker.cluster_id,
        controller_id,
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
        let appended = broker.replicas.appended().notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let req = Arc::clone(&request);
        let (response, bytes) = blocking(broker, move |b| {
            fetch::handle(&req, version, &b.replicas, &b.topics, now_ms())
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
                fetch::handle(&req, version, &b.replicas, &b.topics, now_ms()).0
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

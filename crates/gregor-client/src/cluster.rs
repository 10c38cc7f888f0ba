//! What the client knows of the cluster: brokers, topics, partition leaders, and a
//! connection per broker, opened on first use and replaced when it breaks.
//!
//! Metadata is refreshed on demand: when a topic is not known yet, when a broker answers
//! `NOT_LEADER_OR_FOLLOWER` and the caller asks for a refresh, or once it is older than
//! `metadata.max.age.ms`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::config::CommonConfig;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `node.id`.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub id: i32,
    /// Leader's node id (-1 when there is none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Error reported for this partition (0 for none).
    pub error_code: i16,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Internal topics (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller's node id.
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name (only those fetched so far).
    pub topics: HashMap<String, TopicInfo>,
}

/// What the last Metadata answer said of one topic asked for by name.
struct TopicStatus {
    /// When it was fetched (cached topics older than `metadata.max.age.ms` are fetched again).
    fetched: Instant,
    /// The topic-level error code (0 when the topic is in `metadata.topics`).
    error_code: i16,
}

struct State {
    metadata: ClusterMetadata,
    refreshed: Option<Instant>,
    topics: HashMap<String, TopicStatus>,
    connections: HashMap<String, Arc<BrokerConnection>>,
}

/// The cluster, shared by producer, consumer and admin of one client.
pub struct Cluster {
    config: CommonConfig,
    state: Mutex<State>,
    /// One lock per address serializing connection setup to it, so concurrent callers share
    /// one connection while a slow or dead broker never holds up connecting to the others.
    /// Kept for every address ever used: as many as the cluster has brokers.
    connecting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cluster {
    /// A cluster reached through `config.bootstrap_servers`; nothing is contacted until the
    /// first call.
    pub fn new(config: CommonConfig) -> Arc<Cluster> {
        Arc::new(Cluster {
            config,
            state: Mutex::new(State {
                metadata: ClusterMetadata::default(),
                refreshed: None,
                topics: HashMap::new(),
                connections: HashMap::new(),
            }),
            connecting: Mutex::new(HashMap::new()),
        })
    }

    /// The client settings shared by every part of the client.
    pub fn config(&self) -> &CommonConfig {
        &self.config
    }

    /// The connection to `addr`, opened if needed.
    pub async fn connection_to(&self, addr: &str) -> Result<Arc<BrokerConnection>> {
        if let Some(c) = self
            .state
            .lock()
            .connections
            .get(addr)
            .filter(|c| !c.is_closed())
        {
            return Ok(Arc::clone(c));
        }
        let lock = Arc::clone(self.connecting.lock().entry(addr.to_string()).or_default());
        let _guard = lock.lock().await;
        if let Some(c) = self
            .state
            .lock()
            .connections
            .get(addr)
            .filter(|c| !c.is_closed())
        {
            return Ok(Arc::clone(c));
        }
        let connection =
            BrokerConnection::connect(addr, &self.config.client_id, self.config.request_timeout)
                .await?;
        self.state
            .lock()
            .connections
            .insert(addr.to_string(), Arc::clone(&connection));
        Ok(connection)
    }

    /// The open connection to broker `id`, if there is one: for callers that must not wait
    /// for a connection to be set up (the producer's sender).
    pub fn open_connection(&self, id: i32) -> Option<Arc<BrokerConnection>> {
        let state = self.state.lock();
        let addr = state.metadata.brokers.get(&id)?.addr();
        state
            .connections
            .get(&addr)
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// The connection to broker `id` (metadata must know it).
    pub async fn connection(&self, id: i32) -> Result<Arc<BrokerConnection>> {
        let addr = self
            .state
            .lock()
            .metadata
            .brokers
            .get(&id)
            .map(BrokerInfo::addr);
        let addr = match addr {
            Some(addr) => addr,
            None => {
                self.refresh(None).await?;
                self.state
                    .lock()
                    .metadata
                    .brokers
                    .get(&id)
                    .map(BrokerInfo::addr)
                    .ok_or_else(|| ClientError::Protocol(format!("unknown broker id {id}")))?
            }
        };
        self.connection_to(&addr).await
    }

    /// A connection to any broker: a known one, else the first bootstrap server that answers.
    pub async fn any_connection(&self) -> Result<Arc<BrokerConnection>> {
        let known: Vec<String> = {
            let state = self.state.lock();
            let mut addrs: Vec<String> = state
                .connections
                .iter()
                .filter(|(_, c)| !c.is_closed())
                .map(|(a, _)| a.clone())
                .collect();
            addrs.extend(state.metadata.brokers.values().map(BrokerInfo::addr));
            addrs
        };
        let mut last = None;
        for addr in known.iter().chain(self.config.bootstrap_servers.iter()) {
            match self.connection_to(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config {
            key: "bootstrap.servers".into(),
            message: "no servers given".into(),
        }))
    }

    /// Fetches metadata for `topics` (`None`: every topic) and merges it into the snapshot.
    pub async fn refresh(&self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(self.config.allow_auto_create_topics);
        let connection = self.any_connection().await?;
        let response = connection.send(&request, 12).await?;
        let mut state = self.state.lock();
        state.merge(response, topics.is_none());
        state.refreshed = Some(Instant::now());
        Ok(state.metadata.clone())
    }

    /// The current snapshot, refreshed first if it is older than `metadata.max.age.ms`.
    pub async fn metadata(&self) -> Result<ClusterMetadata> {
        let stale = self
            .state
            .lock()
            .refreshed
            .is_none_or(|t| t.elapsed() > self.config.metadata_max_age);
        if stale {
            let known: Vec<String> = self.state.lock().metadata.topics.keys().cloned().collect();
            return self.refresh(Some(&known)).await;
        }
        Ok(self.state.lock().metadata.clone())
    }

    /// A topic's metadata, fetched if unknown or older than `metadata.max.age.ms` (so a
    /// producer sees partitions added meanwhile). Fails with the topic's own error code
    /// (`TOPIC_AUTHORIZATION_FAILED`, `INVALID_TOPIC_EXCEPTION`…), or
    /// `UNKNOWN_TOPIC_OR_PARTITION` if the cluster does not have it.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo> {
        {
            let state = self.state.lock();
            let fresh = state
                .topics
                .get(name)
                .is_some_and(|s| s.fetched.elapsed() <= self.config.metadata_max_age);
            if let Some(t) = state.metadata.topics.get(name).filter(|_| fresh) {
                return Ok(t.clone());
            }
        }
        self.refresh(Some(&[name.to_string()])).await?;
        let state = self.state.lock();
        if let Some(t) = state.metadata.topics.get(name) {
            return Ok(t.clone());
        }
        let unknown = gregor_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        let code = state
            .topics
            .get(name)
            .map(|s| gregor_protocol::ErrorCode(s.error_code))
            .filter(|c| c.0 != 0 && *c != unknown)
            .unwrap_or(unknown);
        let message = if code == unknown {
            format!("topic {name} does not exist")
        } else {
            format!("topic {name}")
        };
        Err(ClientError::Kafka {
            code,
            message: Some(message),
        })
    }

    /// Forgets a topic, so the next lookup fetches fresh metadata (after
    /// `NOT_LEADER_OR_FOLLOWER`, `UNKNOWN_TOPIC_OR_PARTITION`…).
    pub fn invalidate(&self, topic: &str) {
        let mut state = self.state.lock();
        state.metadata.topics.remove(topic);
        state.topics.remove(topic);
    }

    /// The coordinator of a group (`key_type` 0) or transactional id (1).
    pub async fn coordinator(&self, key: &str, key_type: i8) -> Result<Arc<BrokerConnection>> {
        Ok(self.find_coordinator(key, key_type).await?.1)
    }

    /// The coordinator of a group (`key_type` 0) or transactional id (1), with its broker id.
    pub async fn find_coordinator(
        &self,
        key: &str,
        key_type: i8,
    ) -> Result<(i32, Arc<BrokerConnection>)> {
        let connection = self.any_connection().await?;
        let version = connection.version::<FindCoordinatorRequest>(4)?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_string(key.to_string())])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_key(StrBytes::from_string(key.to_string()))
        };
        let response = connection.send_at(&request, version).await?;
        let (code, message, node, host, port) = match response.coordinators.first() {
            Some(c) if version >= 4 => (
                c.error_code,
                c.error_message.clone(),
                c.node_id.0,
                c.host.to_string(),
                c.port,
            ),
            _ => (
                response.error_code,
                response.error_message.clone(),
                response.node_id.0,
                response.host.to_string(),
                response.port,
            ),
        };
        if let Some(e) = ClientError::from_code(code, message.as_deref()) {
            return Err(e);
        }
        Ok((node, self.connection_to(&format!("{host}:{port}")).await?))
    }
}

impl State {
    /// Takes a Metadata answer in: brokers replaced, topics updated (all of them replaced
    /// when every topic was asked for), and each topic's error code and fetch time kept.
    fn merge(&mut self, response: MetadataResponse, all_topics: bool) {
        let now = Instant::now();
        let metadata = &mut self.metadata;
        metadata.cluster_id = response.cluster_id.map(|c| c.to_string());
        metadata.controller_id = response.controller_id.0;
        metadata.brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                let id = b.node_id.0;
                let info = BrokerInfo {
                    id,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                };
                (id, info)
            })
            .collect();
        if all_topics {
            metadata.topics.clear();
            self.topics.clear();
        }
        for topic in response.topics {
            let Some(name) = topic.name.map(|n| n.0.to_string()) else {
                continue;
            };
            self.topics.insert(
                name.clone(),
                TopicStatus {
                    fetched: now,
                    error_code: topic.error_code,
                },
            );
            if topic.error_code != 0 {
                metadata.topics.remove(&name);
                continue;
            }
            let partitions = partitions_of(topic.partitions);
            metadata.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: topic.topic_id,
                    internal: topic.is_internal,
                    partitions,
                },
            );
        }
    }
}

/// A Metadata answer's partitions of one topic, sorted by index (for the cluster cache and
/// the admin client's `describe_topics` alike).
pub(crate) fn partitions_of(
    partitions: Vec<kafka_protocol::messages::metadata_response::MetadataResponsePartition>,
) -> Vec<PartitionInfo> {
    let mut partitions: Vec<PartitionInfo> = partitions
        .into_iter()
        .map(|p| PartitionInfo {
            id: p.partition_index,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.iter().map(|BrokerId(id)| *id).collect(),
            isr: p.isr_nodes.iter().map(|BrokerId(id)| *id).collect(),
            error_code: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    partitions
}

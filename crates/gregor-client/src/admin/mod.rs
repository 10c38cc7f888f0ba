//! The admin client: topics, configs, consumer groups, offsets and the cluster, as Kafka's
//! `AdminClient` manages them, over the same wire requests.
//!
//! Requests go where Kafka's AdminClient sends them: topic and config changes to the active
//! controller (any broker forwards in KRaft, the controller avoids the hop), group requests to
//! the group's coordinator (`FindCoordinator`), offset listings and record deletion to each
//! partition's leader. Transient states (coordinator loading or moving, leader elections, a
//! dropped connection) are retried until `request.timeout.ms` runs out; everything else comes
//! back at once.
//!
//! Calls about several items (topics, groups, config resources) answer per item, as Kafka's
//! futures do: the outer `Result` says whether the request went through, the inner one whether
//! that item succeeded, with the broker's error code (`ErrorCode::name` gives Kafka's name).
//!
//! ```no_run
//! # async fn demo() -> gregor_client::Result<()> {
//! use gregor_client::admin::{Admin, NewTopic};
//! use gregor_client::config::CommonConfig;
//!
//! let admin = Admin::new(CommonConfig::new("localhost:9092"));
//! let results = admin
//!     .create_topics(&[NewTopic::new("orders", 3, 1).with_config("retention.ms", "60000")], false)
//!     .await?;
//! if let Err(e) = &results["orders"] {
//!     eprintln!("orders: {e}");
//! }
//! # Ok(()) }
//! ```

mod configs;
mod groups;
mod offsets;
mod topics;
mod transactions;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use gregor_protocol::ErrorCode;
use kafka_protocol::messages::DescribeClusterRequest;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{BrokerInfo, Cluster};
use crate::config::CommonConfig;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};

pub use configs::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};
pub use groups::{GroupDescription, GroupListing, MemberDescription, OffsetAndMetadata};
pub use offsets::{ListedOffset, OffsetSpec};
pub use topics::{CreatedTopic, NewTopic, TopicDescription, TopicListing};
pub use transactions::{ProducerState, TransactionDescription, TransactionListing};

/// A topic partition, the unit of offsets and assignments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`, the way Kafka names it in logs.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The cluster as DescribeCluster (or, from older brokers, Metadata) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The active controller's node id, if known.
    pub controller: Option<i32>,
    /// Live brokers, by node id.
    pub brokers: Vec<BrokerInfo>,
}

/// Per-item results of a call about several items, keyed by the item's name.
pub type ItemResults<T> = std::collections::BTreeMap<String, Result<T>>;

/// The admin client. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    /// An admin client for the cluster behind `config.bootstrap_servers`. Like Kafka's admin
    /// client it never creates topics through Metadata (`allow.auto.create.topics` is forced
    /// off). Nothing is contacted until the first call.
    pub fn new(mut config: CommonConfig) -> Admin {
        config.allow_auto_create_topics = false;
        Admin {
            cluster: Cluster::new(config),
        }
    }

    /// The cluster view this client uses (metadata, connections), e.g. to share with tools.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    fn timeout_ms(&self) -> i32 {
        self.cluster
            .config()
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }

    /// The active controller's connection, else any broker's (every broker forwards).
    async fn controller(&self) -> Result<Arc<BrokerConnection>> {
        let metadata = self.cluster.refresh(Some(&[])).await?;
        if metadata.brokers.contains_key(&metadata.controller_id) {
            if let Ok(c) = self.cluster.connection(metadata.controller_id).await {
                return Ok(c);
            }
        }
        self.cluster.any_connection().await
    }

    /// Runs `call` again while it fails with a transient error, until `request.timeout.ms`.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let config = self.cluster.config();
        let deadline = Instant::now() + config.request_timeout;
        loop {
            match call().await {
                Err(e) if is_transient(&e) && Instant::now() + config.retry_backoff < deadline => {
                    tracing::debug!(error = %e, "retrying admin request");
                    tokio::time::sleep(config.retry_backoff).await;
                }
                result => return result,
            }
        }
    }

    /// The cluster id, controller and brokers: DescribeCluster where the broker speaks it,
    /// Metadata otherwise.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.retrying(|| async {
            let connection = self.cluster.any_connection().await?;
            if connection.version::<DescribeClusterRequest>(1).is_ok() {
                let response = connection
                    .send(&DescribeClusterRequest::default(), 1)
                    .await?;
                check(response.error_code, response.error_message.as_deref(), "")?;
                let mut brokers: Vec<BrokerInfo> = response
                    .brokers
                    .into_iter()
                    .map(|b| BrokerInfo {
                        id: b.broker_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    })
                    .collect();
                brokers.sort_by_key(|b| b.id);
                return Ok(ClusterDescription {
                    cluster_id: Some(response.cluster_id.to_string()),
                    controller: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
                    brokers,
                });
            }
            // Metadata with no topics: the cluster cache maps its brokers.
            let metadata = self.cluster.refresh(Some(&[])).await?;
            let mut brokers: Vec<BrokerInfo> = metadata.brokers.into_values().collect();
            brokers.sort_by_key(|b| b.id);
            let controller = metadata.controller_id;
            Ok(ClusterDescription {
                cluster_id: metadata.cluster_id,
                controller: (controller >= 0).then_some(controller),
                brokers,
            })
        })
        .await
    }
}

/// Errors worth retrying in an admin call: Kafka's retriable ones
/// ([`ClientError::is_retriable`]) except unreachable brokers and unknown topics, which are
/// answers a user wants at once (as the Java admin client reports them per topic).
fn is_transient(error: &ClientError) -> bool {
    error.is_retriable()
        && !matches!(error, ClientError::Connect { .. })
        && !matches!(
            error.code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::UNKNOWN_TOPIC_ID)
        )
}

/// A broker error for `item`, or `Ok` for `NONE`.
fn check(code: i16, message: Option<&str>, item: &str) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let detail = match (message.filter(|m| !m.is_empty()), item.is_empty()) {
        (Some(m), true) => m.to_string(),
        (Some(m), false) => format!("{item}: {m}"),
        (None, false) => item.to_string(),
        (None, true) => String::new(),
    };
    Err(ClientError::Kafka {
        code: ErrorCode(code),
        message: (!detail.is_empty()).then_some(detail),
    })
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

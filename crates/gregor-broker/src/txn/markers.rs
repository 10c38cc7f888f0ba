//! `TransactionMarkerChannelManager`: writes a transaction's end markers to every partition it
//! touched.
//!
//! The partitions are grouped by their current leader (from the metadata image) and each
//! leader gets one WriteTxnMarkers (v1) on its inter-broker listener, this broker included,
//! so there is one path for every partition. A partition whose leader is unknown, moved, or
//! unreachable is retried with backoff until its marker is in; one whose topic was deleted is
//! dropped (nobody can read it any more). The coordinator writes CompleteCommit/CompleteAbort
//! only once this returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use gregor_client::connection::BrokerConnection;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use super::TransactionResult;
use crate::replica::ReplicaManager;

/// WriteTxnMarkers version sent (v1: flexible; v2 needs transaction version 2).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long one WriteTxnMarkers may take (the leader waits for its replicas).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The markers of one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnMarkers {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (the bumped one when the coordinator aborted it).
    pub producer_epoch: i16,
    /// Commit or abort.
    pub result: TransactionResult,
    /// The coordinator's epoch, so leaders reject markers of a stale coordinator.
    pub coordinator_epoch: i32,
    /// The partitions to mark.
    pub partitions: BTreeSet<(String, i32)>,
}

/// Sends transaction markers; see the module docs.
pub struct TransactionMarkerChannelManager {
    replicas: Arc<ReplicaManager>,
    listener: String,
    client_id: String,
    backoff: Duration,
    connections: tokio::sync::Mutex<HashMap<String, Arc<BrokerConnection>>>,
}

impl TransactionMarkerChannelManager {
    /// Sends to leaders on `listener` (the inter-broker listener), as broker `node_id`,
    /// waiting `backoff` between rounds that left partitions without their marker.
    pub fn new(
        replicas: Arc<ReplicaManager>,
        listener: String,
        node_id: i32,
        backoff: Duration,
    ) -> TransactionMarkerChannelManager {
        TransactionMarkerChannelManager {
            replicas,
            listener,
            client_id: format!("gregor-txn-markers-{node_id}"),
            backoff,
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Writes `markers` to every partition, retrying until each has its marker or its topic
    /// is gone. Returns false if `still_wanted` turns false first (this broker stopped
    /// coordinating the transaction: the new coordinator re-sends them).
    pub async fn write_markers(
        &self,
        markers: &TxnMarkers,
        still_wanted: impl Fn() -> bool,
    ) -> bool {
        let mut remaining = markers.partitions.clone();
        loop {
            if remaining.is_empty() {
                return true;
            }
            if !still_wanted() {
                return false;
            }
            let image = self.replicas.image();
            let mut by_leader: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
            remaining.retain(|(topic, partition)| {
                if image.topic(topic).is_none() {
                    tracing::info!(topic, partition, "dropping marker for a deleted topic");
                    return false;
                }
                let address = image
                    .partition(topic, *partition)
                    .filter(|p| p.has_leader())
                    .and_then(|p| image.brokers.get(&p.leader))
                    .filter(|b| !b.fenced)
                    .and_then(|b| b.endpoint(&self.listener))
                    .map(|e| format!("{}:{}", e.host, e.port));
                if let Some(address) = address {
                    by_leader
                        .entry(address)
                        .or_default()
                        .push((topic.clone(), *partition));
                }
                true
            });
            for (address, partitions) in by_leader {
                match self.send(&address, markers, &partitions).await {
                    Ok(done) => {
                        for (tp, code) in done {
                            let gone = code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                                && self.replicas.image().topic(&tp.0).is_none();
                            if code == ErrorCode::NONE || gone {
                                remaining.remove(&tp);
                            } else {
                                tracing::debug!(
                                    topic = tp.0,
                                    partition = tp.1,
                                    ?code,
                                    "marker not written yet"
                                );
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%address, error = %e, "cannot send transaction markers");
                        self.connections.lock().await.remove(&address);
                    }
                }
            }
            if !remaining.is_empty() {
                tokio::time::sleep(self.backoff).await;
            }
        }
    }

    /// One WriteTxnMarkers to the leader at `address`; the error of each partition.
    async fn send(
        &self,
        address: &str,
        markers: &TxnMarkers,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), ErrorCode)>, gregor_client::error::ClientError> {
        let conn = self.connection(address).await?;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            topics.entry(topic).or_default().push(*partition);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(markers.producer_id))
            .with_producer_epoch(markers.producer_epoch)
            .with_transaction_result(markers.result == TransactionResult::Commit)
            .with_coordinator_epoch(markers.coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(partitions)
                    })
                    .collect(),
            );
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let response = tokio::time::timeout(
            REQUEST_TIMEOUT,
            conn.send_at(&request, WRITE_TXN_MARKERS_VERSION),
        )
        .await
        .map_err(|_| {
            gregor_client::error::ClientError::Protocol("WriteTxnMarkers timed out".into())
        })??;
        Ok(response
            .markers
            .iter()
            .flat_map(|m| m.topics.iter())
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        (t.name.0.to_string(), p.partition_index),
                        ErrorCode(p.error_code),
                    )
                })
            })
            .collect())
    }

    async fn connection(
        &self,
        address: &str,
    ) -> Result<Arc<BrokerConnection>, gregor_client::error::ClientError> {
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(address).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        let conn = BrokerConnection::connect(address, &self.client_id, REQUEST_TIMEOUT).await?;
        connections.insert(address.to_string(), Arc::clone(&conn));
        Ok(conn)
    }
}

//! `TransactionMarkerChannelManager`: writes a transaction's end markers to every partition it
//! touched.
//!
//! The partitions are grouped by their current leader (from the metadata image) and each
//! leader gets one WriteTxnMarkers (v1) on its inter-broker listener, this broker included,
//! so there is one path for every partition. A partition whose leader is unknown, moved, or
//! unreachable is retried, with a growing backoff, until its marker is in; one whose topic was
//! deleted is dropped (nobody can read it any more). The coordinator writes
//! CompleteCommit/CompleteAbort only once this returns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_client::error::ClientError;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use gregor_metadata::MetadataImage;

use super::TransactionResult;
use crate::inter_broker::BrokerChannel;

/// WriteTxnMarkers version sent (v1: flexible; v2 needs transaction version 2).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// The longest wait between two rounds for partitions still without their marker.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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

/// The current metadata image (the replica manager's, in the broker): where leaders are.
pub type ImageSource = Box<dyn Fn() -> Arc<MetadataImage> + Send + Sync>;

/// Sends transaction markers; see the module docs.
pub struct TransactionMarkerChannelManager {
    image: ImageSource,
    channel: Arc<BrokerChannel>,
    backoff: Duration,
}

impl TransactionMarkerChannelManager {
    /// Sends to the leaders `image` names over `channel` (the broker's inter-broker
    /// connections, shared with KIP-890 verification), waiting `backoff` between rounds that
    /// left partitions without their marker.
    pub fn new(
        image: ImageSource,
        channel: Arc<BrokerChannel>,
        backoff: Duration,
    ) -> TransactionMarkerChannelManager {
        TransactionMarkerChannelManager {
            image,
            channel,
            backoff,
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
        let mut backoff = self.backoff;
        loop {
            if remaining.is_empty() {
                return true;
            }
            if !still_wanted() {
                return false;
            }
            let image = (self.image)();
            let mut by_leader: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
            remaining.retain(|(topic, partition)| {
                if image.topic(topic).is_none() {
                    tracing::info!(topic, partition, "dropping marker for a deleted topic");
                    return false;
                }
                let address = image
                    .partition(topic, *partition)
                    .filter(|p| p.has_leader())
                    .and_then(|p| self.channel.address_of(&image, p.leader));
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
                                && (self.image)().topic(&tp.0).is_none();
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
                    }
                }
            }
            if !remaining.is_empty() {
                // Doubling up to a bound: a leader that stays away is not hammered.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// One WriteTxnMarkers to the leader at `address`; the error of each partition.
    async fn send(
        &self,
        address: &str,
        markers: &TxnMarkers,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), ErrorCode)>, ClientError> {
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
        // The leader waits for its replicas before it answers.
        let response = self
            .channel
            .send_at(address, &request, WRITE_TXN_MARKERS_VERSION)
            .await?;
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::{Buf, BufMut, BytesMut};
    use gregor_metadata::image::{BrokerRegistration, PartitionState, TopicImage};
    use gregor_metadata::records::Endpoint;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsResponse, RequestKind, ResponseHeader, ResponseKind,
        WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    };
    use kafka_protocol::protocol::{Encodable, decode_request_header_from_buffer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the fake leader received: (coordinator epoch, result, partitions) per request.
    type Seen = Arc<parking_lot::Mutex<Vec<(i32, bool, Vec<(String, i32)>)>>>;

    /// A leader that answers ApiVersions and WriteTxnMarkers: the first time it sees
    /// partition `t-1` it says NOT_LEADER_OR_FOLLOWER, `gone-0` is always unknown.
    async fn fake_leader(seen: Seen) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refusals = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, refusals) = (Arc::clone(&seen), Arc::clone(&refusals));
                tokio::spawn(async move {
                    loop {
                        let Ok(size) = stream.read_i32().await else {
                            return;
                        };
                        let mut frame = vec![0u8; size as usize];
                        stream.read_exact(&mut frame).await.unwrap();
                        let mut frame = bytes::Bytes::from(frame);
                        let key = ApiKey::try_from((&frame[0..2]).get_i16()).unwrap();
                        let version = (&frame[2..4]).get_i16();
                        let header = decode_request_header_from_buffer(&mut frame).unwrap();
                        let request = RequestKind::decode(key, &mut frame, version).unwrap();
                        let response = match request {
                            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(versions()),
                            RequestKind::WriteTxnMarkers(r) => {
                                ResponseKind::WriteTxnMarkers(answer(&r, &seen, &refusals))
                            }
                            other => panic!("unexpected {other:?}"),
                        };
                        let mut out = BytesMut::new();
                        out.put_i32(0);
                        ResponseHeader::default()
                            .with_correlation_id(header.correlation_id)
                            .encode(&mut out, key.response_header_version(version))
                            .unwrap();
                        response.encode(&mut out, version).unwrap();
                        let len = (out.len() - 4) as i32;
                        out[0..4].copy_from_slice(&len.to_be_bytes());
                        stream.write_all(&out).await.unwrap();
                    }
                });
            }
        });
        port
    }

    /// The fake leader's answer: `gone` is unknown, `t-1` is refused the first time.
    fn answer(
        request: &WriteTxnMarkersRequest,
        seen: &Seen,
        refusals: &AtomicUsize,
    ) -> WriteTxnMarkersResponse {
        let marker = &request.markers[0];
        let mut partitions = Vec::new();
        let mut topics = Vec::new();
        for t in &marker.topics {
            let name = t.name.0.to_string();
            let mut results = Vec::new();
            for p in &t.partition_indexes {
                partitions.push((name.clone(), *p));
                let code = match (name.as_str(), *p) {
                    ("gone", _) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ("t", 1) if refusals.fetch_add(1, Ordering::SeqCst) == 0 => {
                        ErrorCode::NOT_LEADER_OR_FOLLOWER
                    }
                    _ => ErrorCode::NONE,
                };
                results.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(code.0),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(results),
            );
        }
        seen.lock().push((
            marker.coordinator_epoch,
            marker.transaction_result,
            partitions,
        ));
        WriteTxnMarkersResponse::default().with_markers(vec![
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        ])
    }

    fn versions() -> ApiVersionsResponse {
        let version = |key: ApiKey, max| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_max_version(max)
        };
        ApiVersionsResponse::default().with_api_keys(vec![
            version(ApiKey::ApiVersions, 3),
            version(ApiKey::WriteTxnMarkers, 1),
        ])
    }

    fn image(port: u16, topics: &[(&str, i32)]) -> Arc<MetadataImage> {
        let mut image = MetadataImage::default();
        image.brokers.insert(
            1,
            BrokerRegistration {
                id: 1,
                incarnation_id: uuid::Uuid::nil(),
                epoch: 1,
                endpoints: vec![Endpoint {
                    name: "INTERNAL".into(),
                    host: "127.0.0.1".into(),
                    port,
                    security_protocol: "PLAINTEXT".into(),
                }],
                rack: None,
                fenced: false,
                registered_offset: 0,
            },
        );
        for (i, (name, partitions)) in topics.iter().enumerate() {
            let id = uuid::Uuid::from_u128(i as u128 + 1);
            let partitions: BTreeMap<i32, PartitionState> = (0..*partitions)
                .map(|p| {
                    let leader = PartitionState {
                        replicas: vec![1],
                        isr: vec![1],
                        removing_replicas: vec![],
                        adding_replicas: vec![],
                        leader: 1,
                        leader_epoch: 0,
                        partition_epoch: 0,
                    };
                    (p, leader)
                })
                .collect();
            image.topic_ids.insert(name.to_string(), id);
            image.topics.insert(
                id,
                TopicImage {
                    name: name.to_string(),
                    id,
                    partitions,
                },
            );
        }
        Arc::new(image)
    }

    /// Connections on the images' `INTERNAL` listener.
    fn channel() -> Arc<BrokerChannel> {
        Arc::new(BrokerChannel::new(
            "INTERNAL".into(),
            "gregor-broker-1".into(),
            Duration::from_secs(30),
        ))
    }

    fn markers(partitions: &[(&str, i32)]) -> TxnMarkers {
        TxnMarkers {
            producer_id: 7,
            producer_epoch: 3,
            result: TransactionResult::Commit,
            coordinator_epoch: 5,
            partitions: partitions
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
        }
    }

    #[tokio::test]
    async fn markers_reach_every_partition_retrying_refusals_and_dropping_deleted_topics() {
        let seen: Seen = Arc::default();
        let port = fake_leader(Arc::clone(&seen)).await;
        // "gone" is in the image when the markers start, and deleted while they are sent.
        let deleted = Arc::new(AtomicUsize::new(0));
        let source = Arc::clone(&deleted);
        let manager = TransactionMarkerChannelManager::new(
            Box::new(move || {
                if source.fetch_add(1, Ordering::SeqCst) == 0 {
                    image(port, &[("t", 2), ("gone", 1)])
                } else {
                    image(port, &[("t", 2)])
                }
            }),
            channel(),
            Duration::from_millis(10),
        );
        let done = manager
            .write_markers(&markers(&[("t", 0), ("t", 1), ("gone", 0)]), || true)
            .await;
        assert!(done);
        let seen = seen.lock().clone();
        // One request for the three partitions, then a retry of the refused one.
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, 5, "the coordinator epoch is sent");
        assert!(seen[0].1, "a commit");
        assert_eq!(seen[0].2.len(), 3);
        assert_eq!(seen[1].2, vec![("t".to_string(), 1)]);
    }

    #[tokio::test]
    async fn a_coordinator_that_lost_the_transaction_stops_sending() {
        // No leader is reachable (port 1 refuses), so markers would be retried forever.
        let manager = TransactionMarkerChannelManager::new(
            Box::new(|| image(1, &[("t", 1)])),
            channel(),
            Duration::from_millis(10),
        );
        let tries = AtomicUsize::new(0);
        let done = manager
            .write_markers(&markers(&[("t", 0)]), || {
                tries.fetch_add(1, Ordering::SeqCst) < 3
            })
            .await;
        assert!(!done);
    }

    #[tokio::test]
    async fn markers_of_deleted_topics_are_dropped_without_a_request() {
        let manager = TransactionMarkerChannelManager::new(
            Box::new(|| image(1, &[])),
            channel(),
            Duration::from_millis(10),
        );
        assert!(manager.write_markers(&markers(&[("x", 0)]), || true).await);
    }
}

//! `WriteTxnMarkers` (key 27, v1; Kafka 4 dropped v0): a transaction coordinator asks a partition leader to end
//! a producer's transaction by appending a commit or abort marker (a control batch).
//!
//! The leader checks the marker against the producer's state (an older producer epoch is
//! `INVALID_PRODUCER_EPOCH`, an older coordinator epoch `TRANSACTION_COORDINATOR_FENCED`),
//! appends it like an `acks=all` write and answers once every in-sync replica has it, so a
//! decided transaction stays decided across a leader failover. On `__consumer_offsets`, the
//! transaction's pending offset commits are then made visible (commit) or dropped (abort).
//! [`append`] runs on a blocking thread; [`await_replication`] waits on the async side.

use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use gregor_log::TopicPartition;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{ControlRecordType, EndTransactionMarker};

use crate::replica::{PendingAppend, ReplicaManager};

/// How long a marker may wait for the in-sync replicas (Kafka's `request.timeout.ms` for the
/// coordinator's marker requests is 30 s; the coordinator retries on a timeout).
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A marker appended and waiting for the in-sync replicas; its answer is at these marker,
/// topic and partition positions in the response.
pub type Pending = PendingAppend<(usize, usize, usize)>;

/// A marker written and replicated on a partition: what the group coordinator must learn
/// when the partition is an offsets partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The partition.
    pub partition: TopicPartition,
    /// The producer whose transaction ended.
    pub producer_id: i64,
    /// Commit (true) or abort.
    pub commit: bool,
}

/// Appends every requested marker; returns the response (final unless `Pending` entries
/// remain) and the appends still to confirm.
pub fn append(
    request: &WriteTxnMarkersRequest,
    replicas: &ReplicaManager,
    now_ms: i64,
) -> (WriteTxnMarkersResponse, Vec<Pending>) {
    let mut pending = Vec::new();
    let markers = request
        .markers
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            let marker = EndTransactionMarker {
                control_type: if m.transaction_result {
                    ControlRecordType::Commit
                } else {
                    ControlRecordType::Abort
                },
                coordinator_epoch: m.coordinator_epoch,
            };
            let topics = m
                .topics
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .enumerate()
                        .map(|(pi, &index)| {
                            let tp = TopicPartition::new(t.name.0.as_str(), index);
                            let code = match replicas.leader_partition(&tp) {
                                Err(code) => code,
                                Ok(partition) => {
                                    let min_insync = replicas.min_insync_replicas(&tp.topic);
                                    let appended = partition
                                        .append_marker(
                                            m.producer_id.0,
                                            m.producer_epoch,
                                            marker,
                                            min_insync,
                                            now_ms,
                                        )
                                        .map_err(|e| (e.error_code(), e.to_string()))
                                        .and_then(|(info, epoch)| {
                                            partition
                                                .log()
                                                .flush_if_required(&info, now_ms)
                                                .map(|()| (info, epoch))
                                                .map_err(|e| (e.error_code(), e.to_string()))
                                        });
                                    match appended {
                                        Ok((info, leader_epoch)) => {
                                            pending.push(Pending {
                                                at: (mi, ti, pi),
                                                partition,
                                                last_offset: info.last_offset,
                                                leader_epoch,
                                                min_insync,
                                            });
                                            ErrorCode::NONE
                                        }
                                        Err((code, message)) => {
                                            tracing::debug!(partition = %tp, error = %message, "transaction marker refused");
                                            code
                                        }
                                    }
                                }
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(index)
                                .with_error_code(code.0)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    (
        WriteTxnMarkersResponse::default().with_markers(markers),
        pending,
    )
}

/// Waits for each appended marker to reach every in-sync replica; a partition that does not
/// make it gets its error in `response`. Returns the markers now decided everywhere.
pub async fn await_replication(
    response: &mut WriteTxnMarkersResponse,
    request: &WriteTxnMarkersRequest,
    pending: Vec<Pending>,
) -> Vec<Decided> {
    let mut decided = Vec::new();
    ReplicaManager::wait_for_appends(
        pending,
        REPLICATION_TIMEOUT,
        |(mi, ti, pi), partition, outcome| match outcome {
            Ok(()) => decided.push(Decided {
                partition: partition.topic_partition().clone(),
                producer_id: request.markers[mi].producer_id.0,
                commit: request.markers[mi].transaction_result,
            }),
            Err(code) => {
                response.markers[mi].topics[ti].partitions[pi].error_code = code.0;
            }
        },
    )
    .await;
    decided
}

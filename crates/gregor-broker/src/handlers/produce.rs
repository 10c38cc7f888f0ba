//! `Produce` (key 0, v3–11): appends each partition's record batch on its leader.
//!
//! Batches are validated and stored as sent (gregor-log patches only base offset and leader
//! epoch). A partition this broker does not lead gets `NOT_LEADER_OR_FOLLOWER`. With `acks`
//! other than 0 the append is made durable as the topic's `flush.messages` asks — by default,
//! synced, with concurrent producers sharing one fsync (group commit). With `acks=all` (-1)
//! the ISR must hold `min.insync.replicas` members to accept the batch
//! (`NOT_ENOUGH_REPLICAS`), and the answer waits until every in-sync replica has it (the high
//! watermark passed it) or the request's `timeout_ms` runs out (`REQUEST_TIMED_OUT`).
//! Transactional batches that would open a transaction were first checked with the
//! transaction coordinator (KIP-890, see `txn::verification`); `append` answers the refused
//! ones with the verifier's error. [`append`] runs on a blocking thread (file I/O); [`await_replication`] waits on the async
//! side.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_log::{AppendOrigin, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::BatchIter;

use crate::replica::{PendingAppend, ReplicaManager};
use crate::txn::verification::Refusals;

/// An `acks=all` append waiting for the in-sync replicas; its answer is at these topic and
/// partition positions in the response.
pub type Pending = PendingAppend<(usize, usize)>;

/// Appends every partition's records; returns the response (final unless `Pending` entries
/// remain), the `acks=all` appends still to confirm, and whether anything was appended.
pub fn append(
    request: &ProduceRequest,
    replicas: &ReplicaManager,
    refusals: &Refusals,
    now_ms: i64,
) -> (ProduceResponse, Vec<Pending>, bool) {
    let mut appended = false;
    let mut pending = Vec::new();
    let responses = request
        .topic_data
        .iter()
        .enumerate()
        .map(|(ti, topic)| {
            let partitions = topic
                .partition_data
                .iter()
                .enumerate()
                .map(|(pi, p)| {
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.index);
                    let response = PartitionProduceResponse::default().with_index(p.index);
                    if let Some((code, message)) = refusals.get(&(tp.topic.clone(), tp.partition)) {
                        return failed(response, *code, message.clone());
                    }
                    let partition = match replicas.leader_partition(&tp) {
                        Ok(partition) => partition,
                        Err(code) => {
                            return failed(
                                response,
                                code,
                                "this broker does not lead the partition".into(),
                            );
                        }
                    };
                    let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) else {
                        return failed(response, ErrorCode::INVALID_RECORD, "no records".into());
                    };
                    // Kafka's rule for Produce v3+: exactly one v2 batch per partition.
                    if BatchIter::new(records).nth(1).is_some() {
                        return failed(
                            response,
                            ErrorCode::INVALID_RECORD,
                            "produce requests may carry only one record batch per partition".into(),
                        );
                    }
                    let min_insync = replicas.min_insync_replicas(&tp.topic);
                    let mut batch = records.to_vec();
                    let result = partition
                        .append_as_leader(
                            &mut batch,
                            request.acks,
                            min_insync,
                            AppendOrigin::Client,
                            now_ms,
                        )
                        .map_err(|e| (e.error_code(), e.to_string()))
                        .and_then(|(info, epoch)| {
                            if request.acks != 0 {
                                partition
                                    .log()
                                    .flush_if_required(&info, now_ms)
                                    .map_err(|e| (e.error_code(), e.to_string()))?;
                            }
                            Ok((info, epoch))
                        });
                    match result {
                        Ok((info, epoch)) => {
                            appended = true;
                            if request.acks == -1 {
                                pending.push(Pending {
                                    at: (ti, pi),
                                    partition: Arc::clone(&partition),
                                    last_offset: info.last_offset,
                                    leader_epoch: epoch,
                                    min_insync,
                                });
                            }
                            response
                                .with_base_offset(info.first_offset)
                                .with_log_append_time_ms(info.log_append_time.unwrap_or(-1))
                                .with_log_start_offset(info.log_start_offset)
                        }
                        Err((code, message)) => {
                            tracing::debug!(partition = %tp, error = %message, "produce rejected");
                            failed(response, code, message)
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    (
        ProduceResponse::default().with_responses(responses),
        pending,
        appended,
    )
}

/// Waits for each `acks=all` append to reach every in-sync replica, within `timeout` in all;
/// a partition that does not make it gets its error in `response`.
pub async fn await_replication(
    response: &mut ProduceResponse,
    pending: Vec<Pending>,
    timeout: Duration,
) {
    ReplicaManager::wait_for_appends(pending, timeout, |(ti, pi), _, outcome| {
        if let Err(code) = outcome {
            let slot = &mut response.responses[ti].partition_responses[pi];
            let message = match code {
                ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
                    "written, but the ISR shrank below min.insync.replicas before it was replicated"
                }
                ErrorCode::REQUEST_TIMED_OUT => "the in-sync replicas did not confirm in time",
                _ => "leadership moved before the in-sync replicas confirmed",
            };
            *slot = failed(
                PartitionProduceResponse::default().with_index(slot.index),
                code,
                message.into(),
            );
        }
    })
    .await;
}

fn failed(
    response: PartitionProduceResponse,
    code: ErrorCode,
    message: String,
) -> PartitionProduceResponse {
    response
        .with_error_code(code.0)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)))
}

//! `Fetch` (key 1, v4–16): reads whole batches from each partition's log.
//!
//! Sessionless (KIP-227): every request is served in full and answered with session id 0,
//! which tells clients not to send incremental requests; an incremental request gets
//! `FETCH_SESSION_ID_NOT_FOUND`. Topic ids replace names from v13. Per-partition and response
//! `max_bytes` are honoured, but the first batch found is always returned whole so a consumer
//! can progress past a large batch. This module does one pass; the server repeats it when
//! `min_bytes` is not met, after an append wakes it or `max_wait_ms` runs out (long poll).
//!
//! Only the leader serves a partition. Consumers read below the high watermark, or with
//! `isolation_level=1` (read_committed) below the last stable offset, and then also get the
//! aborted transactions overlapping what they read, so they can drop those records. A follower
//! (`replica_id`, or `ReplicaState` from v15, naming a broker) reads up to the log end, and
//! the offset it fetches at tells the leader how far it has copied: that moves the high
//! watermark and the ISR.

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_log::{Log, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::BatchIter;

use crate::replica::ReplicaManager;
use crate::topics::TopicRegistry;

/// `FETCH_SESSION_ID_NOT_FOUND`.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// `UNKNOWN_TOPIC_ID`.
const UNKNOWN_TOPIC_ID: i16 = 100;

/// The aborted transactions overlapping the batches in `bytes` (read from `fetch_offset`), as
/// a `read_committed` consumer needs them to drop those transactions' records.
fn aborted_in(log: &Log, fetch_offset: i64, bytes: &[u8]) -> Vec<AbortedTransaction> {
    let upper = BatchIter::new(bytes)
        .map_while(|b| b.ok())
        .last()
        .map_or(fetch_offset, |b| b.next_offset());
    log.aborted_transactions(fetch_offset, upper)
        .into_iter()
        .map(|t| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(t.producer_id))
                .with_first_offset(t.first_offset)
        })
        .collect()
}

/// One pass over the requested partitions: the response and the record bytes it carries.
pub fn handle(
    request: &FetchRequest,
    version: i16,
    replicas: &ReplicaManager,
    topics: &TopicRegistry,
    now_ms: i64,
) -> (FetchResponse, usize) {
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    if request.session_id != 0 {
        return (
            FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND),
            0,
        );
    }
    let read_committed = request.isolation_level == 1;
    let mut budget = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0;
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let name = if version >= 13 {
                topics.by_id(topic.topic_id).map(|t| t.name)
            } else {
                Some(topic.topic.0.to_string())
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1);
                    let Some(name) = &name else {
                        return response.with_error_code(UNKNOWN_TOPIC_ID);
                    };
                    let tp = TopicPartition::new(name.clone(), p.partition);
                    let partition = match replicas.leader_partition(&tp) {
                        Ok(partition) => partition,
                        Err(code) => return response.with_error_code(code.0),
                    };
                    if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return response.with_error_code(code.0);
                    }
                    let log = partition.log();
                    let high_watermark = partition.high_watermark();
                    let last_stable_offset = partition.last_stable_offset();
                    let response = response
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(last_stable_offset)
                        .with_log_start_offset(log.log_start_offset())
                        .with_aborted_transactions(Some(Vec::new()));
                    let upper_bound = if replica_id >= 0 {
                        // A follower's fetch offset counts as progress only if its log agrees
                        // with ours up to there: not past our end, and (KIP-320) its last
                        // fetched epoch ends no earlier here. Otherwise it is told where the
                        // logs diverge and truncates; nothing it claims is believed.
                        if p.fetch_offset > log.log_end_offset() {
                            return response
                                .with_error_code(ErrorCode::OFFSET_OUT_OF_RANGE.0)
                                .with_records(Some(Default::default()));
                        }
                        if version >= 12 && p.last_fetched_epoch >= 0 {
                            let (epoch, end) = log.end_offset_for_epoch(p.last_fetched_epoch);
                            if epoch < p.last_fetched_epoch || end < p.fetch_offset {
                                return response
                                    .with_diverging_epoch(
                                        EpochEndOffset::default()
                                            .with_epoch(epoch)
                                            .with_end_offset(end),
                                    )
                                    .with_records(Some(Default::default()));
                            }
                        }
                        if let Err(code) = replicas.record_follower_fetch(
                            &partition,
                            replica_id,
                            p.fetch_offset,
                            now_ms,
                        ) {
                            return response.with_error_code(code.0);
                        }
                        None
                    } else if read_committed {
                        Some(last_stable_offset)
                    } else {
                        Some(high_watermark)
                    };
                    // A follower's fetch may just have moved the high watermark: tell it.
                    let response = if replica_id >= 0 {
                        response
                            .with_high_watermark(partition.high_watermark())
                            .with_last_stable_offset(partition.last_stable_offset())
                    } else {
                        response
                    };
                    let max = (p.partition_max_bytes.max(0) as usize).min(budget);
                    // The first batch goes out whole even past the limits, as in Kafka.
                    match log.read(p.fetch_offset, max, upper_bound, total == 0) {
                        Ok(Some(slice)) => match slice.read_to_vec() {
                            Ok(bytes) => {
                                total += bytes.len();
                                budget = budget.saturating_sub(bytes.len());
                                let response = if read_committed && replica_id < 0 {
                                    response.with_aborted_transactions(Some(aborted_in(
                                        log,
                                        p.fetch_offset,
                                        &bytes,
                                    )))
                                } else {
                                    response
                                };
                                response.with_records(Some(bytes.into()))
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "fetch read failed");
                                response
                                    .with_error_code(ErrorCode::KAFKA_STORAGE_ERROR.0)
                                    .with_records(Some(Default::default()))
                            }
                        },
                        Ok(None) => response.with_records(Some(Default::default())),
                        Err(e) => response
                            .with_error_code(e.error_code().0)
                            .with_records(Some(Default::default())),
                    }
                })
                .collect();
            let topic_name = if version >= 13 {
                TopicName(StrBytes::default())
            } else {
                topic.topic.clone()
            };
            FetchableTopicResponse::default()
                .with_topic(topic_name)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(responses),
        total,
    )
}

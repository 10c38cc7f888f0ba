//! `Produce` (key 0, v3–11): appends each partition's record batch to its log.
//!
//! Batches are validated and stored as sent (gregor-log patches only base offset and leader
//! epoch). With `acks` other than 0 the response waits until the append is durable as the
//! topic's `flush.messages` asks — by default, synced, with concurrent producers sharing one
//! fsync (group commit). Runs on a blocking thread: appends and fsyncs are file I/O.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_log::{LogManager, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::BatchIter;

use crate::topics::LEADER_EPOCH;

/// Appends every partition's records; returns the response and whether anything was appended
/// (to wake long-polling fetches).
pub fn handle(request: &ProduceRequest, logs: &LogManager, now_ms: i64) -> (ProduceResponse, bool) {
    let mut appended = false;
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.index);
                    let response = PartitionProduceResponse::default().with_index(p.index);
                    let Some(log) = logs.get_log(&tp) else {
                        return failed(
                            response,
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                            "unknown topic or partition".into(),
                        );
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
                    let mut batch = records.to_vec();
                    let result = log
                        .append_as_leader(&mut batch, LEADER_EPOCH, now_ms)
                        .and_then(|info| {
                            if request.acks != 0 {
                                log.flush_if_required(&info, now_ms)?;
                            }
                            Ok(info)
                        });
                    match result {
                        Ok(info) => {
                            appended = true;
                            response
                                .with_base_offset(info.first_offset)
                                .with_log_append_time_ms(info.log_append_time.unwrap_or(-1))
                                .with_log_start_offset(info.log_start_offset)
                        }
                        Err(e) => {
                            tracing::debug!(partition = %tp, error = %e, "produce rejected");
                            failed(response, e.error_code(), e.to_string())
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
        appended,
    )
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

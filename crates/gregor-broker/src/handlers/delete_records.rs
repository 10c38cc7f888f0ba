//! `DeleteRecords` (key 21, v0–2): moves partitions' log start offsets forward. Offset -1
//! means the high watermark (the log end, on this single node).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use gregor_log::{LogManager, TopicPartition};
use gregor_protocol::ErrorCode;

/// Answers a DeleteRecords request.
pub fn handle(
    request: &DeleteRecordsRequest,
    logs: &LogManager,
    now_ms: i64,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(log) = logs.get_log(&TopicPartition::new(
                        topic.name.0.as_str(),
                        p.partition_index,
                    )) else {
                        return result.with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0);
                    };
                    let offset = if p.offset == -1 {
                        log.log_end_offset()
                    } else {
                        p.offset
                    };
                    match log.delete_records_before(offset, now_ms) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => result.with_error_code(e.error_code().0),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

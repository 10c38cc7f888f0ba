//! `DeleteRecords` (key 21, v0–2): moves partitions' log start offsets forward. Offset -1
//! means the high watermark; nothing at or past it may be deleted. Only the leader deletes;
//! followers follow its log start offset as they fetch.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use gregor_log::TopicPartition;
use gregor_protocol::ErrorCode;

use crate::replica::ReplicaManager;

/// Answers a DeleteRecords request.
pub fn handle(
    request: &DeleteRecordsRequest,
    replicas: &ReplicaManager,
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
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                    let partition = match replicas.leader_partition(&tp) {
                        Ok(partition) => partition,
                        Err(code) => return result.with_error_code(code.0),
                    };
                    let log = partition.log();
                    // Kafka deletes only below the high watermark: -1 means up to it.
                    let high_watermark = partition.high_watermark();
                    let offset = if p.offset == -1 {
                        high_watermark
                    } else {
                        p.offset
                    };
                    if offset > high_watermark {
                        return result.with_error_code(ErrorCode::OFFSET_OUT_OF_RANGE.0);
                    }
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

//! `ListOffsets` (key 2, v1–8): offsets by time — the earliest (-2), the latest (-1), the record
//! with the largest timestamp (-3), or the first record at or after a timestamp — from the partition leader. "Latest" is the end of what consumers may read: the
//! high watermark, or the last stable offset for `isolation_level=1` (read_committed).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use gregor_log::TopicPartition;

use crate::replica::ReplicaManager;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Answers a ListOffsets request.
pub fn handle(
    request: &ListOffsetsRequest,
    version: i16,
    replicas: &ReplicaManager,
) -> ListOffsetsResponse {
    // The leader epoch field exists from v4; setting it earlier would not encode.
    let epoch = |e: i32| if version >= 4 { e } else { -1 };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                    let refused = |code: gregor_protocol::ErrorCode| {
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code.0)
                            .with_offset(-1)
                            .with_timestamp(-1)
                    };
                    let partition = match replicas.leader_partition(&tp) {
                        Ok(partition) => partition,
                        Err(code) => return refused(code),
                    };
                    if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return refused(code);
                    }
                    let log = partition.log();
                    let leader_epoch = partition.leader_epoch();
                    let found = match p.timestamp {
                        // What consumers may read up to: the high watermark, or the last
                        // stable offset for read_committed.
                        LATEST if request.isolation_level == 1 => {
                            Ok(Some((-1, partition.last_stable_offset())))
                        }
                        LATEST => Ok(Some((-1, partition.high_watermark()))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, log.log_start_offset()))),
                        MAX_TIMESTAMP => log.max_timestamp_offset(),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => Ok(None),
                    };
                    match found {
                        Ok(Some((timestamp, offset))) => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(epoch(leader_epoch)),
                        Ok(None) => response
                            .with_timestamp(-1)
                            .with_offset(-1)
                            .with_leader_epoch(-1),
                        Err(e) => response
                            .with_error_code(e.error_code().0)
                            .with_timestamp(-1)
                            .with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

//! `DescribeLogDirs` (key 35, v1–4): which log directory holds which partitions, and how big
//! they are. Volume sizes are reported as unknown (-1), which Kafka allows, until the broker
//! reads file system statistics.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_log::LogManager;

/// Answers a DescribeLogDirs request (`topics` absent = every partition).
pub fn handle(request: &DescribeLogDirsRequest, logs: &LogManager) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| {
        request.topics.as_ref().is_none_or(|topics| {
            topics
                .iter()
                .any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&partition))
        })
    };
    let all = logs.all_logs();
    let results = logs
        .dirs()
        .iter()
        .map(|dir| {
            let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for log in all
                .iter()
                .filter(|l| l.dir().parent() == Some(dir.as_path()))
            {
                let tp = log.topic_partition();
                if wanted(&tp.topic, tp.partition) {
                    by_topic.entry(tp.topic.clone()).or_default().push(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_partition_size(log.size_in_bytes() as i64)
                            .with_offset_lag(0),
                    );
                }
            }
            let topics = by_topic
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect();
            DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(dir.display().to_string()))
                .with_topics(topics)
                .with_total_bytes(-1)
                .with_usable_bytes(-1)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

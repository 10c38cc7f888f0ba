//! Offsets on the broker side: ListOffsets (log start, log end, by timestamp) from partition
//! leaders, and the group's committed offsets (OffsetFetch / OffsetCommit) from its
//! coordinator.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::cluster::Cluster;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::protocol_util;

/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST: i64 = -2;
/// ListOffsets' special timestamp for the log end offset (the high watermark).
pub const LATEST: i64 = -1;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Asks each partition's leader for the offset at `timestamp` ([`EARLIEST`], [`LATEST`] or
/// milliseconds: the first offset whose timestamp is at least that). A partition with no such
/// record maps to `None`. A partition without a leader fails with the retriable
/// `LEADER_NOT_AVAILABLE`.
pub async fn list_offsets(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
    read_committed: bool,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let queries = partitions
        .iter()
        .map(|tp| (tp.clone(), timestamp))
        .collect();
    let listed = protocol_util::list_offsets(cluster, queries, read_committed).await?;
    Ok(listed
        .into_iter()
        .map(|(tp, l)| (tp, (l.offset >= 0).then_some(l.offset)))
        .collect())
}

/// The group's committed offsets for `partitions` (`None`: nothing committed).
pub async fn fetch_committed(
    coordinator: &BrokerConnection,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut topics: HashMap<&str, Vec<i32>> = HashMap::new();
    for tp in partitions {
        topics.entry(&tp.0).or_default().push(tp.1);
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(
            topics
                .into_iter()
                .map(|(name, partition_indexes)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(name))
                        .with_partition_indexes(partition_indexes)
                })
                .collect(),
        ));
    // v8+ moves everything into a per-group array; v7 is enough for one group.
    let response = coordinator.send(&request, 7).await?;
    if let Some(e) = ClientError::from_code(response.error_code, None) {
        return Err(e);
    }
    let mut out = HashMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            if let Some(e) = ClientError::from_code(p.error_code, None) {
                return Err(e);
            }
            out.insert(
                (topic.name.0.to_string(), p.partition_index),
                (p.committed_offset >= 0).then_some(p.committed_offset),
            );
        }
    }
    Ok(out)
}

/// Who commits: the member's identity in its group generation (`-1` and an empty member id
/// for a consumer that only assigns partitions).
#[derive(Debug, Clone)]
pub struct CommitIdentity {
    /// `group.id`.
    pub group: String,
    /// Generation, or -1.
    pub generation: i32,
    /// Member id, or empty.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
}

/// Commits `offsets` (the next offset to consume, per partition) for the group.
pub async fn commit(
    coordinator: Arc<BrokerConnection>,
    identity: CommitIdentity,
    offsets: HashMap<TopicPartition, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut topics: HashMap<String, Vec<OffsetCommitRequestPartition>> = HashMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(identity.group)))
        .with_generation_id_or_member_epoch(identity.generation)
        .with_member_id(StrBytes::from_string(identity.member_id))
        .with_group_instance_id(identity.instance_id.map(StrBytes::from_string))
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = coordinator.send(&request, 9).await?;
    for topic in response.topics {
        for p in topic.partitions {
            if let Some(e) = ClientError::from_code(p.error_code, None) {
                return Err(e);
            }
        }
    }
    Ok(())
}

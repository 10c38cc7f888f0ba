//! Protocol pieces the consumer and the admin client both need: grouping partitions by
//! leader, ListOffsets, and reading the consumer protocol's assignment. One copy, so a fix
//! (such as refusing leaderless partitions) reaches both.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Buf;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::cluster::Cluster;
use crate::consumer::TopicPartition;
use crate::error::{ClientError, Result};

/// Groups `items` by the leader of the partition `key` names: leader id → items. A partition
/// that does not exist is `UNKNOWN_TOPIC_OR_PARTITION`; one without a leader is
/// `LEADER_NOT_AVAILABLE` (retriable, and its topic's metadata is dropped so a retry looks it
/// up again) instead of a request to broker -1.
pub(crate) async fn by_leader<T>(
    cluster: &Cluster,
    items: Vec<T>,
    key: impl Fn(&T) -> (&str, i32),
) -> Result<BTreeMap<i32, Vec<T>>> {
    let topics: BTreeSet<String> = items.iter().map(|i| key(i).0.to_string()).collect();
    let mut infos = HashMap::new();
    for topic in topics {
        let info = cluster.topic(&topic).await?;
        infos.insert(topic, info);
    }
    let mut grouped: BTreeMap<i32, Vec<T>> = BTreeMap::new();
    for item in items {
        let (topic, partition) = key(&item);
        let leader = infos
            .get(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.id == partition))
            .map(|p| p.leader)
            .ok_or_else(|| ClientError::Kafka {
                code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                message: Some(format!("{topic}-{partition} does not exist")),
            })?;
        if leader < 0 {
            cluster.invalidate(topic);
            return Err(ClientError::Kafka {
                code: ErrorCode::LEADER_NOT_AVAILABLE,
                message: Some(format!("{topic}-{partition} has no leader")),
            });
        }
        grouped.entry(leader).or_default().push(item);
    }
    Ok(grouped)
}

/// One partition's ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record matches a timestamp lookup.
    pub offset: i64,
    /// The matching record's timestamp (-1 for the log start and end).
    pub timestamp: i64,
    /// The leader epoch of that offset, if the broker knows it.
    pub leader_epoch: Option<i32>,
}

/// Asks each partition's leader for the offset at a timestamp (-2: log start, -1: log end,
/// -3: the largest timestamp, else milliseconds: the first record at or after it). Fails with
/// the first partition error, dropping that topic's metadata so a retry finds a moved leader.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    queries: Vec<(TopicPartition, i64)>,
    read_committed: bool,
) -> Result<HashMap<TopicPartition, ListedOffset>> {
    let mut out = HashMap::new();
    for (leader, queries) in by_leader(cluster, queries, |((t, p), _)| (t.as_str(), *p)).await? {
        let mut topics: BTreeMap<String, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for ((topic, partition), timestamp) in queries {
            topics.entry(topic).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp),
            );
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(i8::from(read_committed))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = cluster.connection(leader).await?.send(&request, 8).await?;
        for topic in response.topics {
            let name = topic.name.0.to_string();
            for p in topic.partitions {
                if p.error_code != 0 {
                    cluster.invalidate(&name);
                    return Err(ClientError::Kafka {
                        code: ErrorCode(p.error_code),
                        message: Some(format!("listing offsets of {name}-{}", p.partition_index)),
                    });
                }
                out.insert(
                    (name.clone(), p.partition_index),
                    ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Reads a consumer-protocol assignment (a 2-byte version, then the body at that version;
/// newer versions are read as the newest known, their extra fields ignored). Empty bytes
/// assign nothing.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>> {
    if bytes.len() < 2 {
        return Ok(Vec::new());
    }
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    let version = buf.get_i16().clamp(0, 3);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| ClientError::Protocol(format!("ConsumerProtocolAssignment: {e}")))?;
    Ok(assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect())
}

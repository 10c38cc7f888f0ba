//! `OffsetFetch` (key 9, v1–9): a group's committed offsets (one group before v8, a batch of
//! groups from v8). A partition without a commit answers offset -1 with no error, as Kafka.
//! With `require_stable` (v7+, KIP-447) a partition with an offset in an open transaction
//! answers `UNSTABLE_OFFSET_COMMIT` (partition level, every version that has the flag), so a
//! `read_committed` consumer retries until the transaction ends.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::group::{CommittedOffset, GroupCoordinator};

/// A partition's commit, if any, or its error.
type PartitionOffset = Result<Option<CommittedOffset>, ErrorCode>;

/// A topic's partitions with their commits.
type TopicOffsets = (String, Vec<(i32, PartitionOffset)>);

/// One group's committed offsets, grouped by topic, or the group's error.
type Fetched = Result<Vec<TopicOffsets>, ErrorCode>;

fn fetch(
    coordinator: &GroupCoordinator,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(&str, i32)>,
    require_stable: bool,
) -> Fetched {
    let flat = coordinator.fetch_offsets(group, topics, member, require_stable)?;
    let mut by_topic: Vec<TopicOffsets> = Vec::new();
    for ((topic, partition), committed) in flat {
        match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, parts)) => parts.push((partition, committed)),
            None => by_topic.push((topic, vec![(partition, committed)])),
        }
    }
    Ok(by_topic)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// What a partition's answer carries: error, offset, leader epoch, metadata (-1, -1, "" when
/// there is no commit or an error, as Kafka answers).
struct Answer {
    error: ErrorCode,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<StrBytes>,
}

impl Answer {
    /// The answer for `found`; the leader epoch only from v5, which carries it.
    fn new(found: PartitionOffset, version: i16) -> Answer {
        let (error, committed) = match found {
            Ok(c) => (ErrorCode::NONE, c),
            Err(e) => (e, None),
        };
        Answer {
            error,
            offset: committed.as_ref().map_or(-1, |c| c.offset),
            leader_epoch: committed
                .as_ref()
                .filter(|_| version >= 5)
                .map_or(-1, |c| c.leader_epoch),
            metadata: Some(StrBytes::from_string(
                committed.map(|c| c.metadata).unwrap_or_default(),
            )),
        }
    }
}

/// Answers an OffsetFetch.
pub fn handle(
    request: &OffsetFetchRequest,
    version: i16,
    coordinator: &GroupCoordinator,
) -> OffsetFetchResponse {
    let require_stable = version >= 7 && request.require_stable;
    if version < 8 {
        let topics = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let fetched = fetch(coordinator, &request.group_id, topics, None, require_stable);
        let (error, fetched) = match fetched {
            Ok(f) => (ErrorCode::NONE, f),
            Err(e) => (e, Vec::new()),
        };
        let topics = fetched
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(name(&topic))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, found)| {
                                let a = Answer::new(found, version);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(a.error.0)
                                    .with_committed_offset(a.offset)
                                    .with_committed_leader_epoch(a.leader_epoch)
                                    .with_metadata(a.metadata)
                            })
                            .collect(),
                    )
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        return if version >= 2 {
            response.with_error_code(error.0)
        } else {
            response
        };
    }
    let groups = request
        .groups
        .iter()
        .map(|g| {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let member = g
                .member_id
                .as_deref()
                .filter(|m| !m.is_empty() && g.member_epoch >= 0)
                .map(|m| (m, g.member_epoch));
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            match fetch(coordinator, &g.group_id, topics, member, require_stable) {
                Err(e) => group.with_error_code(e.0),
                Ok(fetched) => group.with_topics(
                    fetched
                        .into_iter()
                        .map(|(topic, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name(&topic))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, found)| {
                                            let a = Answer::new(found, version);
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_error_code(a.error.0)
                                                .with_committed_offset(a.offset)
                                                .with_committed_leader_epoch(a.leader_epoch)
                                                .with_metadata(a.metadata)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

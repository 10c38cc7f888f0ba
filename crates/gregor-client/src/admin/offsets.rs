//! Log offsets per partition (ListOffsets: earliest, latest, by timestamp — for lag and
//! offset resets) and record deletion (DeleteRecords), each sent to the partition's leader.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, DeleteRecordsRequest, ListOffsetsRequest, TopicName};

use super::{Admin, TopicPartition, check, text};
use crate::error::{ClientError, Result};

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark): where the next record will go.
    Latest,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this (ms since the epoch); -1 in the
    /// answer when no record is that recent.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// The answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 if no record matches a timestamp lookup).
    pub offset: i64,
    /// The matching record's timestamp (-1 for earliest/latest).
    pub timestamp: i64,
    /// The leader epoch of that offset, if known.
    pub leader_epoch: Option<i32>,
}

impl Admin {
    /// The partitions' leaders, grouped: leader id → partitions. Unknown topics or partitions
    /// are `UNKNOWN_TOPIC_OR_PARTITION`, partitions without a leader `LEADER_NOT_AVAILABLE`.
    async fn by_leader<'a, V>(
        &self,
        items: &'a BTreeMap<TopicPartition, V>,
    ) -> Result<BTreeMap<i32, Vec<(&'a TopicPartition, &'a V)>>> {
        let mut topics: Vec<String> = items.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        let metadata = self.cluster.refresh(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, Vec<_>> = BTreeMap::new();
        for (tp, value) in items {
            let partition = metadata
                .topics
                .get(&tp.topic)
                .and_then(|t| t.partitions.iter().find(|p| p.id == tp.partition))
                .ok_or_else(|| ClientError::Kafka {
                    code: gregor_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    message: Some(format!("partition {tp} does not exist")),
                })?;
            if partition.leader < 0 {
                return Err(ClientError::Kafka {
                    code: gregor_protocol::ErrorCode::LEADER_NOT_AVAILABLE,
                    message: Some(format!("partition {tp} has no leader")),
                });
            }
            by_leader
                .entry(partition.leader)
                .or_default()
                .push((tp, value));
        }
        Ok(by_leader)
    }

    /// Looks up offsets per partition (ListOffsets, read_uncommitted). Fails with the first
    /// partition's error, if any.
    pub async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        self.retrying(|| async {
            let mut answers = BTreeMap::new();
            for (leader, items) in self.by_leader(specs).await? {
                let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
                for (tp, spec) in items {
                    topics.entry(&tp.topic).or_default().push(
                        ListOffsetsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(spec.timestamp()),
                    );
                }
                let request = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                ListOffsetsTopic::default()
                                    .with_name(TopicName(text(name)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    );
                let response = self
                    .cluster
                    .connection(leader)
                    .await?
                    .send(&request, 8)
                    .await?;
                for t in response.topics {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                        if p.error_code != 0 {
                            self.cluster.invalidate(&tp.topic);
                        }
                        check(p.error_code, None, &format!("partition {tp}"))?;
                        answers.insert(
                            tp,
                            ListedOffset {
                                offset: p.offset,
                                timestamp: p.timestamp,
                                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                            },
                        );
                    }
                }
            }
            Ok(answers)
        })
        .await
    }

    /// Deletes records before the given offsets (-1: the high watermark), advancing each
    /// partition's log start; answers the new log start offsets (DeleteRecords).
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.retrying(|| async {
            let mut answers = BTreeMap::new();
            for (leader, items) in self.by_leader(before).await? {
                let mut topics: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
                for (tp, offset) in items {
                    topics.entry(&tp.topic).or_default().push(
                        DeleteRecordsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_offset(*offset),
                    );
                }
                let request = DeleteRecordsRequest::default()
                    .with_timeout_ms(self.timeout_ms())
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                DeleteRecordsTopic::default()
                                    .with_name(TopicName(text(name)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    );
                let response = self
                    .cluster
                    .connection(leader)
                    .await?
                    .send(&request, 2)
                    .await?;
                for t in response.topics {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                        if p.error_code != 0 {
                            self.cluster.invalidate(&tp.topic);
                        }
                        check(p.error_code, None, &format!("partition {tp}"))?;
                        answers.insert(tp, p.low_watermark);
                    }
                }
            }
            Ok(answers)
        })
        .await
    }
}

//! Log offsets per partition (ListOffsets: earliest, latest, by timestamp — for lag and
//! offset resets) and record deletion (DeleteRecords), each sent to the partition's leader.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};

use super::{Admin, TopicPartition, check, text};
use crate::error::Result;
use crate::protocol_util;

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

pub use crate::protocol_util::ListedOffset;

impl Admin {
    /// The partitions' leaders, grouped: leader id → partitions. Unknown topics or partitions
    /// are `UNKNOWN_TOPIC_OR_PARTITION`, partitions without a leader `LEADER_NOT_AVAILABLE`.
    pub(super) async fn by_leader<'a, V>(
        &self,
        items: &'a BTreeMap<TopicPartition, V>,
    ) -> Result<BTreeMap<i32, Vec<(&'a TopicPartition, &'a V)>>> {
        let mut topics: Vec<String> = items.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        // Admin calls act on what the cluster is now, not on a cached view.
        self.cluster.refresh(Some(&topics)).await?;
        protocol_util::by_leader(&self.cluster, items.iter().collect(), |(tp, _)| {
            (tp.topic.as_str(), tp.partition)
        })
        .await
    }

    /// A partition's answer from its leader: the partition, or its error. An error also
    /// forgets the topic's metadata, so a retry looks the leader up again.
    pub(super) fn answered(
        &self,
        topic: &str,
        partition: i32,
        code: i16,
        message: Option<&str>,
    ) -> Result<TopicPartition> {
        let tp = TopicPartition::new(topic.to_string(), partition);
        if code != 0 {
            self.cluster.invalidate(&tp.topic);
        }
        check(code, message, &format!("partition {tp}"))?;
        Ok(tp)
    }

    /// Looks up offsets per partition (ListOffsets, read_uncommitted). Fails with the first
    /// partition's error, if any.
    pub async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        self.retrying(|| async {
            let topics: Vec<String> = specs.keys().map(|tp| tp.topic.clone()).collect();
            self.cluster.refresh(Some(&topics)).await?;
            let queries = specs
                .iter()
                .map(|(tp, spec)| ((tp.topic.clone(), tp.partition), spec.timestamp()))
                .collect();
            let found = protocol_util::list_offsets(&self.cluster, queries, false).await?;
            Ok(found
                .into_iter()
                .map(|((topic, partition), offset)| (TopicPartition::new(topic, partition), offset))
                .collect())
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
                        let tp = self.answered(&t.name.0, p.partition_index, p.error_code, None)?;
                        answers.insert(tp, p.low_watermark);
                    }
                }
            }
            Ok(answers)
        })
        .await
    }
}

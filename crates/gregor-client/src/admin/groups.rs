//! Consumer groups and their committed offsets: ListGroups, DescribeGroups, DeleteGroups,
//! OffsetFetch, OffsetCommit (as an admin: generation -1, no member) and OffsetDelete, each
//! sent to the group's coordinator.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};

use super::{Admin, ItemResults, TopicPartition, check, text};
use crate::error::{ClientError, Result};
use crate::protocol_util;

/// A group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer` for consumer groups, `connect`…, empty for groups only storing offsets.
    pub protocol_type: String,
    /// State (`Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Dead`…), if
    /// the broker reports it.
    pub state: String,
    /// `classic` or `consumer` (KIP-848), if the broker reports it.
    pub group_type: String,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of static members.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's address as the coordinator saw it (`/127.0.0.1`).
    pub host: String,
    /// Assigned partitions, decoded from the consumer protocol's assignment (empty while the
    /// group rebalances or for non-consumer protocols).
    pub assignment: Vec<TopicPartition>,
}

/// A group's state, protocol and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State name as Kafka reports it.
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Chosen protocol: the assignor (`range`, `cooperative-sticky`, `uniform`…) for
    /// consumer groups.
    pub protocol: String,
    /// `classic` for groups of JoinGroup/SyncGroup members, `consumer` for KIP-848 groups.
    pub group_type: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record, if known.
    pub leader_epoch: Option<i32>,
    /// Metadata the committer attached.
    pub metadata: String,
}

/// Decodes a consumer-protocol assignment; bytes that are not one assign nothing.
fn decode_assignment(bytes: &[u8]) -> Vec<TopicPartition> {
    protocol_util::decode_assignment(bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partition)| TopicPartition::new(topic, partition))
        .collect()
}

impl Admin {
    /// Every group on every broker, optionally only those in one of `states` (compared
    /// case-insensitively, e.g. `Stable`, `Empty`).
    pub async fn list_groups(&self, states: &[String]) -> Result<Vec<GroupListing>> {
        let metadata = self.cluster.refresh(Some(&[])).await?;
        let mut ids: Vec<i32> = metadata.brokers.keys().copied().collect();
        ids.sort_unstable();
        let mut groups = BTreeMap::new();
        for id in ids {
            let response = self
                .retrying(|| async {
                    let connection = self.cluster.connection(id).await?;
                    let version = connection.version::<ListGroupsRequest>(5)?;
                    let mut request = ListGroupsRequest::default();
                    if version >= 4 {
                        request =
                            request.with_states_filter(states.iter().map(|s| text(s)).collect());
                    }
                    let response = connection.send_at(&request, version).await?;
                    check(response.error_code, None, &format!("broker {id}"))?;
                    Ok(response)
                })
                .await?;
            for g in response.groups {
                let listing = GroupListing {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: g.group_state.to_string(),
                    group_type: g.group_type.to_string(),
                };
                let wanted = states.is_empty()
                    || listing.state.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&listing.state));
                if wanted {
                    groups.insert(listing.group_id.clone(), listing);
                }
            }
        }
        Ok(groups.into_values().collect())
    }

    /// State, protocol and members of each group. A group the coordinator does not know
    /// (`Dead`) is `GROUP_ID_NOT_FOUND`, as Kafka's admin client reports it.
    pub async fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Result<ItemResults<GroupDescription>> {
        let mut results = ItemResults::new();
        for group in group_ids {
            if let Some(described) = self.describe_consumer_group(group).await? {
                results.insert(group.clone(), Ok(described));
                continue;
            }
            let response = self
                .retrying(|| async {
                    let request =
                        DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
                    let response = self
                        .cluster
                        .coordinator(group, 0)
                        .await?
                        .send(&request, 5)
                        .await?;
                    // Coordinator moves are retried; other errors are the group's result.
                    if let Some(g) = response.groups.first() {
                        if matches!(g.error_code, 14..=16) {
                            check(g.error_code, g.error_message.as_deref(), group)?;
                        }
                    }
                    Ok(response)
                })
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e @ ClientError::Kafka { .. }) => {
                    results.insert(group.clone(), Err(e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let result = match response.groups.into_iter().next() {
                None => Err(ClientError::Protocol(format!(
                    "no description of group '{group}'"
                ))),
                Some(g) => check(
                    g.error_code,
                    g.error_message.as_deref(),
                    &format!("group '{group}'"),
                )
                .and_then(|()| {
                    if g.group_state.as_str() == "Dead" {
                        return Err(ClientError::Kafka {
                            code: gregor_protocol::ErrorCode::GROUP_ID_NOT_FOUND,
                            message: Some(format!("group '{group}' does not exist")),
                        });
                    }
                    let consumer = g.protocol_type.as_str() == "consumer";
                    Ok(GroupDescription {
                        group_id: g.group_id.0.to_string(),
                        state: g.group_state.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        protocol: g.protocol_data.to_string(),
                        group_type: "classic".to_string(),
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberDescription {
                                member_id: m.member_id.to_string(),
                                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                                client_id: m.client_id.to_string(),
                                host: m.client_host.to_string(),
                                assignment: if consumer {
                                    decode_assignment(&m.member_assignment)
                                } else {
                                    Vec::new()
                                },
                            })
                            .collect(),
                    })
                }),
            };
            results.insert(group.clone(), result);
        }
        Ok(results)
    }

    /// A KIP-848 group through ConsumerGroupDescribe, whose members' assignments the classic
    /// DescribeGroups does not carry. `None` when the broker lacks the API or the group is not
    /// a consumer-protocol group (classic or unknown: `GROUP_ID_NOT_FOUND`), so the caller
    /// asks DescribeGroups, as Kafka's admin client does.
    async fn describe_consumer_group(&self, group: &str) -> Result<Option<GroupDescription>> {
        let described = self
            .retrying(|| async {
                let connection = self.cluster.coordinator(group, 0).await?;
                if connection
                    .version::<ConsumerGroupDescribeRequest>(1)
                    .is_err()
                {
                    return Ok(None);
                }
                let request = ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![GroupId(text(group))]);
                let response = connection.send(&request, 1).await?;
                let Some(g) = response.groups.into_iter().next() else {
                    return Ok(None);
                };
                match g.error_code {
                    0 => Ok(Some(g)),
                    // Retried: the coordinator is moving or loading.
                    14..=16 => {
                        check(g.error_code, g.error_message.as_deref(), group).map(|()| None)
                    }
                    _ => Ok(None),
                }
            })
            .await?;
        Ok(described.map(|g| GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: "consumer".to_string(),
            protocol: g.assignor_name.to_string(),
            group_type: "consumer".to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: m
                        .assignment
                        .topic_partitions
                        .into_iter()
                        .flat_map(|tp| {
                            let topic = tp.topic_name.0.to_string();
                            tp.partitions
                                .into_iter()
                                .map(move |p| TopicPartition::new(topic.clone(), p))
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    /// Deletes groups with no members, and their offsets (DeleteGroups). A group with
    /// members is `NON_EMPTY_GROUP`; an unknown one `GROUP_ID_NOT_FOUND`.
    pub async fn delete_groups(&self, group_ids: &[String]) -> Result<ItemResults<()>> {
        let mut results = ItemResults::new();
        for group in group_ids {
            let result = self
                .retrying(|| async {
                    let request = DeleteGroupsRequest::default()
                        .with_groups_names(vec![GroupId(text(group))]);
                    let response = self
                        .cluster
                        .coordinator(group, 0)
                        .await?
                        .send(&request, 2)
                        .await?;
                    let code = response.results.first().map_or(0, |r| r.error_code);
                    check(code, None, &format!("group '{group}'"))
                })
                .await;
            match result {
                Err(e) if !matches!(e, ClientError::Kafka { .. }) => return Err(e),
                result => {
                    results.insert(group.clone(), result);
                }
            }
        }
        Ok(results)
    }

    /// The group's committed offsets, every partition it has one for (OffsetFetch).
    pub async fn list_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let response = self
            .retrying(|| async {
                let request = OffsetFetchRequest::default()
                    .with_group_id(GroupId(text(group)))
                    .with_topics(None);
                let response = self
                    .cluster
                    .coordinator(group, 0)
                    .await?
                    .send(&request, 7)
                    .await?;
                check(response.error_code, None, &format!("group '{group}'"))?;
                Ok(response)
            })
            .await?;
        let mut offsets = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                check(
                    p.error_code,
                    None,
                    &format!("group '{group}' partition {tp}"),
                )?;
                if p.committed_offset >= 0 {
                    offsets.insert(
                        tp,
                        OffsetAndMetadata {
                            offset: p.committed_offset,
                            leader_epoch: (p.committed_leader_epoch >= 0)
                                .then_some(p.committed_leader_epoch),
                            metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                        },
                    );
                }
            }
        }
        Ok(offsets)
    }

    /// Commits offsets for a group as an admin (OffsetCommit with generation -1 and no member
    /// id), which Kafka only accepts while the group has no members: an active group answers
    /// `UNKNOWN_MEMBER_ID` (or a similar error), reported for the first failed partition.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(text(""))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(text(""))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(text(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        self.retrying(|| async {
            let response = self
                .cluster
                .coordinator(group, 0)
                .await?
                .send(&request, 9)
                .await?;
            for t in &response.topics {
                for p in &t.partitions {
                    check(
                        p.error_code,
                        None,
                        &format!(
                            "group '{group}' partition {}-{}",
                            t.name.0, p.partition_index
                        ),
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes the group's committed offsets of the given partitions (OffsetDelete); refused
    /// with `GROUP_SUBSCRIBED_TO_TOPIC` while members consume the topic.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let mut by_topic: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().insert(tp.partition);
        }
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(text(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        OffsetDeleteRequestPartition::default()
                                            .with_partition_index(p)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        self.retrying(|| async {
            let response = self
                .cluster
                .coordinator(group, 0)
                .await?
                .send(&request, 0)
                .await?;
            check(response.error_code, None, &format!("group '{group}'"))?;
            for t in &response.topics {
                for p in &t.partitions {
                    check(
                        p.error_code,
                        None,
                        &format!(
                            "group '{group}' partition {}-{}",
                            t.name.0, p.partition_index
                        ),
                    )?;
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn assignment_is_decoded_at_its_version() {
        for version in 0..=3i16 {
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                Assigned::default()
                    .with_topic(TopicName(text("t")))
                    .with_partitions(vec![0, 2]),
            ]);
            let mut bytes = bytes::BytesMut::new();
            bytes::BufMut::put_i16(&mut bytes, version);
            assignment.encode(&mut bytes, version).unwrap();
            assert_eq!(
                decode_assignment(&bytes),
                [TopicPartition::new("t", 0), TopicPartition::new("t", 2)],
                "v{version}"
            );
        }
        assert!(decode_assignment(&[]).is_empty());
        assert!(decode_assignment(&[0, 1, 0xff]).is_empty());
    }
}

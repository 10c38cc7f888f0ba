//! `AlterPartitionReassignments` (key 45, v0–1) and `ListPartitionReassignments` (key 46, v0):
//! moving partition replicas between brokers (KIP-455). The controller adds the target
//! replicas, which copy the log as followers; once all of them are in the ISR it drops the
//! replicas no longer wanted (electing a new leader if needed). A `null` replica list cancels an
//! ongoing reassignment. Listing reads the ongoing ones from the metadata image.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use gregor_metadata::MetadataImage;
use gregor_metadata::controller::{ControllerRequest, ControllerResponse, ItemError};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_protocol::ErrorCode;

/// How long the controller may take when the request gives no timeout.
const DEFAULT_TIMEOUT_MS: i32 = 60_000;

/// Answers an AlterPartitionReassignments request.
pub async fn alter(
    request: &AlterPartitionReassignmentsRequest,
    version: i16,
    image: &MetadataImage,
    quorum: &MetadataQuorum,
) -> AlterPartitionReassignmentsResponse {
    // KIP-860 (v1): a reassignment may change the replication factor only when allowed.
    let allow_rf_change = version < 1 || request.allow_replication_factor_change;
    let mut results: BTreeMap<(String, i32), Result<(), ItemError>> = BTreeMap::new();
    let mut asked = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let name = topic.name.0.to_string();
            let target: Option<Vec<i32>> =
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            if let (Some(target), Some(current)) =
                (&target, image.partition(&name, p.partition_index))
            {
                let original = current.replicas.len() - current.adding_replicas.len();
                if !allow_rf_change && target.len() != original {
                    results.insert(
                        (name, p.partition_index),
                        Err(ItemError::new(
                            ErrorCode::INVALID_REPLICATION_FACTOR,
                            "the reassignment would change the replication factor, and \
                             allow_replication_factor_change is false",
                        )),
                    );
                    continue;
                }
            }
            asked.push((name, p.partition_index, target));
        }
    }
    let timeout = if request.timeout_ms > 0 {
        request.timeout_ms
    } else {
        DEFAULT_TIMEOUT_MS
    };
    if !asked.is_empty() {
        let outcome = quorum
            .request(
                ControllerRequest::AlterPartitionReassignments {
                    reassignments: asked,
                },
                std::time::Duration::from_millis(timeout as u64),
            )
            .await;
        match outcome {
            Ok(ControllerResponse::Reassigned(answers)) => results.extend(answers),
            other => {
                tracing::warn!(outcome = ?other, "AlterPartitionReassignments failed at the controller");
                return AlterPartitionReassignmentsResponse::default()
                    .with_error_code(ErrorCode::REQUEST_TIMED_OUT.0)
                    .with_error_message(Some(StrBytes::from_static_str(
                        "the controller did not answer",
                    )));
            }
        }
    }
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for ((topic, partition), result) in results {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(e) => (e.code, Some(StrBytes::from_string(e.message))),
        };
        by_topic.entry(topic).or_default().push(
            ReassignablePartitionResponse::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    let response = AlterPartitionReassignmentsResponse::default().with_responses(
        by_topic
            .into_iter()
            .map(|(name, partitions)| {
                ReassignableTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    if version >= 1 {
        response.with_allow_replication_factor_change(request.allow_replication_factor_change)
    } else {
        response
    }
}

/// Answers a ListPartitionReassignments request from the metadata image.
pub fn list(
    request: &ListPartitionReassignmentsRequest,
    image: &MetadataImage,
) -> ListPartitionReassignmentsResponse {
    let ids = |ids: &[i32]| ids.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
    let wanted: Option<BTreeMap<&str, &[i32]>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.partition_indexes.as_slice()))
            .collect()
    });
    let topics = image
        .topic_ids
        .iter()
        .filter_map(|(name, id)| image.topics.get(id).map(|t| (name, t)))
        .filter_map(|(name, topic)| {
            let filter = match &wanted {
                Some(w) => Some(*w.get(name.as_str())?),
                None => None,
            };
            let partitions: Vec<OngoingPartitionReassignment> = topic
                .partitions
                .iter()
                .filter(|(index, _)| filter.is_none_or(|f| f.contains(index)))
                .filter(|(_, p)| !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty())
                .map(|(&index, p)| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(index)
                        .with_replicas(ids(&p.replicas))
                        .with_adding_replicas(ids(&p.adding_replicas))
                        .with_removing_replicas(ids(&p.removing_replicas))
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(partitions)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

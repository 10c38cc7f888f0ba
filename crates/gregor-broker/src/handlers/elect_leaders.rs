//! `ElectLeaders` (key 43, v0–2): preferred (0) or unclean (1) leader election, decided by the
//! active controller. No partition list means every partition (for preferred elections Kafka
//! then reports only partitions whose leader moved or could not).

use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_metadata::controller::{ControllerRequest, ControllerResponse, ElectionType};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_protocol::ErrorCode;

/// How long the controller may take when the request gives no timeout.
const DEFAULT_TIMEOUT_MS: i32 = 30_000;

/// Answers an ElectLeaders request.
pub async fn handle(
    request: &ElectLeadersRequest,
    version: i16,
    quorum: &MetadataQuorum,
) -> ElectLeadersResponse {
    let election_type = match request.election_type {
        0 => ElectionType::Preferred,
        1 => ElectionType::Unclean,
        _ => {
            return ElectLeadersResponse::default().with_error_code(ErrorCode::INVALID_REQUEST.0);
        }
    };
    let partitions = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect::<Vec<_>>()
    });
    let timeout = if request.timeout_ms > 0 {
        request.timeout_ms
    } else {
        DEFAULT_TIMEOUT_MS
    };
    let outcome = quorum
        .request(
            ControllerRequest::ElectLeaders {
                election_type,
                partitions,
            },
            std::time::Duration::from_millis(timeout as u64),
        )
        .await;
    let results = match outcome {
        Ok(ControllerResponse::LeadersElected(results)) => results,
        other => {
            tracing::warn!(outcome = ?other, "ElectLeaders failed at the controller");
            let code = if version >= 1 {
                ErrorCode::REQUEST_TIMED_OUT
            } else {
                ErrorCode::NONE
            };
            return ElectLeadersResponse::default().with_error_code(code.0);
        }
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), result) in results {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(e) => (e.code, Some(StrBytes::from_string(e.message))),
        };
        by_topic.entry(topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(partitions)
            })
            .collect(),
    )
}

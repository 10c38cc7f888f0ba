//! `CreatePartitions` (key 37, v0–3): grows topics to a new partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::topics::{TopicError, TopicRegistry};

/// Answers a CreatePartitions request. Explicit assignments must place replicas on this
/// broker only.
pub fn handle(
    request: &CreatePartitionsRequest,
    topics: &TopicRegistry,
    node_id: i32,
    now_ms: i64,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let misplaced =
                t.assignments.iter().flatten().find(|a| {
                    a.broker_ids.iter().any(|b| b.0 != node_id) || a.broker_ids.len() != 1
                });
            let outcome = match misplaced {
                Some(a) => Err(TopicError::InvalidReplicationFactor(
                    a.broker_ids.len() as i16
                )),
                None => {
                    topics.add_partitions(t.name.0.as_str(), t.count, request.validate_only, now_ms)
                }
            };
            match outcome {
                Ok(_) => result,
                Err(e) => result
                    .with_error_code(e.error_code().0)
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

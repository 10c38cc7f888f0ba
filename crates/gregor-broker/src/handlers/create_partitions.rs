//! `CreatePartitions` (key 37, v0–3): grows topics to a new partition count, through the
//! active controller (which places the new replicas unless the request assigns them).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::topics::TopicRegistry;

/// Answers a CreatePartitions request.
pub async fn handle(
    request: &CreatePartitionsRequest,
    topics: &TopicRegistry,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let assignments = t.assignments.as_ref().map(|a| {
            a.iter()
                .map(|p| p.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        let outcome = topics
            .add_partitions(
                t.name.0.as_str(),
                t.count,
                assignments,
                request.validate_only,
            )
            .await;
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(e.error_code().0)
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

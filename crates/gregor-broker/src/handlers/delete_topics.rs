//! `DeleteTopics` (key 20, v1–6): deletes topics by name (or by id from v6), through the
//! active controller.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::topics::TopicRegistry;

/// `UNKNOWN_TOPIC_ID`.
const UNKNOWN_TOPIC_ID: i16 = 100;

/// Answers a DeleteTopics request.
pub async fn handle(request: &DeleteTopicsRequest, topics: &TopicRegistry) -> DeleteTopicsResponse {
    // v6 lists topics as (name or id) states; earlier versions as names.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if request.topics.is_empty() {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let result = DeletableTopicResult::default().with_topic_id(id);
        let Some(name) = name.or_else(|| topics.by_id(id).map(|t| t.name)) else {
            responses.push(result.with_error_code(UNKNOWN_TOPIC_ID));
            continue;
        };
        let result = result.with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
        responses.push(match topics.delete(&name).await {
            Ok(topic) => result.with_topic_id(topic.id),
            Err(e) => result
                .with_error_code(e.error_code().0)
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

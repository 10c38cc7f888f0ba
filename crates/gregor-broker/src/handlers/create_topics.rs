//! `CreateTopics` (key 19, v2–7): creates topics through the active controller.
//!
//! `num_partitions`/`replication_factor` of -1 take the broker defaults (`num.partitions`,
//! `default.replication.factor`); an explicit replica assignment replaces both; replicas are
//! otherwise spread over the live brokers by the controller; `validate_only` checks without
//! creating. Errors are per topic, with Kafka's codes and a message.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::topics::{Topic, TopicError, TopicRegistry};

/// Answers a CreateTopics request.
pub async fn handle(request: &CreateTopicsRequest, topics: &TopicRegistry) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicated: HashSet<&str> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.as_str()))
        .map(|t| t.name.0.as_str())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let name = t.name.0.as_str();
        let result = CreatableTopicResult::default().with_name(t.name.clone());
        if duplicated.contains(name) {
            results.push(
                result
                    .with_error_code(ErrorCode::INVALID_REQUEST.0)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "topic '{name}' appears more than once in the request"
                    )))),
            );
            continue;
        }
        results.push(match create_one(t, topics, request.validate_only).await {
            Ok((topic, replication_factor)) => result
                .with_topic_id(topic.id)
                .with_num_partitions(topic.partitions)
                .with_replication_factor(replication_factor),
            Err(e) => result
                .with_error_code(e.error_code().0)
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    t: &CreatableTopic,
    topics: &TopicRegistry,
    validate_only: bool,
) -> Result<(Topic, i16), TopicError> {
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            TopicError::InvalidConfig(format!("null value for config {}", c.name.as_str()))
        })?;
        configs.insert(c.name.as_str().to_string(), value.as_str().to_string());
    }
    let assignments: BTreeMap<i32, Vec<i32>> = t
        .assignments
        .iter()
        .map(|a| {
            (
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    if !assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
        return Err(TopicError::Refused {
            code: ErrorCode::INVALID_REQUEST,
            message: "both a replica assignment and a partition count or replication factor \
                      were given"
                .into(),
        });
    }
    topics
        .create(
            t.name.0.as_str(),
            t.num_partitions,
            t.replication_factor,
            assignments,
            configs,
            validate_only,
        )
        .await
}

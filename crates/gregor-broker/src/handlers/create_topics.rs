//! `CreateTopics` (key 19, v2–7): creates topics on this single node.
//!
//! `num_partitions`/`replication_factor` of -1 take the broker defaults (`num.partitions`,
//! `default.replication.factor`); an explicit replica assignment must place every partition on
//! this broker alone; `validate_only` checks without creating. Errors are per topic, with
//! Kafka's codes and a message.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::topics::{TopicError, TopicRegistry};

/// Broker defaults CreateTopics falls back to.
pub struct Defaults {
    /// `node.id`.
    pub node_id: i32,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub replication_factor: i16,
}

/// Answers a CreateTopics request.
pub fn handle(
    request: &CreateTopicsRequest,
    topics: &TopicRegistry,
    defaults: &Defaults,
    now_ms: i64,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicated: HashSet<&str> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.as_str()))
        .map(|t| t.name.0.as_str())
        .collect();
    let results = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if duplicated.contains(name) {
                return result
                    .with_error_code(ErrorCode::INVALID_REQUEST.0)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "topic '{name}' appears more than once in the request"
                    ))));
            }
            let outcome = create_one(t, topics, defaults, request.validate_only, now_ms);
            match outcome {
                Ok((topic, replication_factor)) => result
                    .with_topic_id(topic.id)
                    .with_num_partitions(topic.partitions)
                    .with_replication_factor(replication_factor),
                Err(e) => result
                    .with_error_code(e.error_code().0)
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

fn create_one(
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    topics: &TopicRegistry,
    defaults: &Defaults,
    validate_only: bool,
    now_ms: i64,
) -> Result<(crate::topics::Topic, i16), TopicError> {
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            TopicError::InvalidConfig(format!("null value for config {}", c.name.as_str()))
        })?;
        configs.insert(c.name.as_str().to_string(), value.as_str().to_string());
    }
    let (partitions, replication_factor) = if t.assignments.is_empty() {
        let partitions = if t.num_partitions == -1 {
            defaults.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            defaults.replication_factor
        } else {
            t.replication_factor
        };
        (partitions, rf)
    } else {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(TopicError::InvalidConfig(
                "both a replica assignment and a partition count or replication factor were given"
                    .into(),
            ));
        }
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes != (0..indexes.len() as i32).collect::<Vec<_>>() {
            return Err(TopicError::InvalidPartitions(format!(
                "the replica assignment must number partitions 0..n without gaps, got {indexes:?}"
            )));
        }
        for a in &t.assignments {
            if a.broker_ids.iter().any(|b| b.0 != defaults.node_id) || a.broker_ids.is_empty() {
                return Err(TopicError::InvalidReplicationFactor(
                    a.broker_ids.len() as i16
                ));
            }
        }
        (
            indexes.len() as i32,
            t.assignments[0].broker_ids.len() as i16,
        )
    };
    let topic = topics.create(
        t.name.0.as_str(),
        partitions,
        replication_factor,
        configs,
        validate_only,
        now_ms,
    )?;
    Ok((topic, replication_factor))
}

//! `DescribeConfigs` (key 32, v1–4), `AlterConfigs` (key 33, v0–2) and
//! `IncrementalAlterConfigs` (key 44, v0–1) for topics, and DescribeConfigs for the broker.
//!
//! A topic's value comes from its override (source `TOPIC_CONFIG`), else from the broker's
//! `server.properties` synonym (`STATIC_BROKER_CONFIG`, e.g. `log.retention.ms` for
//! `retention.ms`), else Kafka's default (`DEFAULT_CONFIG`); synonyms list that chain, as
//! Kafka does. Dynamic broker configs are not supported yet: altering a broker resource is
//! refused with `INVALID_REQUEST`.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use gregor_log::config::LOG_CONFIG_KEYS;
use gregor_protocol::ErrorCode;

use crate::config::{BrokerConfig, log_config_synonyms};
use crate::topics::{TopicError, TopicRegistry};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const INVALID_REQUEST: i16 = 42;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka's `ConfigType` code of a topic-level key (DescribeConfigs v3+).
fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => 7,            // LIST
        "message.timestamp.type" => 2,    // STRING
        "min.cleanable.dirty.ratio" => 6, // DOUBLE
        "max.message.bytes" | "segment.bytes" | "segment.index.bytes" | "index.interval.bytes" => 3, // INT
        _ => 5, // LONG
    }
}

/// Answers a DescribeConfigs request.
pub fn describe(
    request: &DescribeConfigsRequest,
    topics: &TopicRegistry,
    broker: &BrokerConfig,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |key: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            match r.resource_type {
                TOPIC => match topics.get(r.resource_name.as_str()) {
                    Some(topic) => {
                        let mut configs: Vec<_> = LOG_CONFIG_KEYS
                            .iter()
                            .filter(|k| wanted(k))
                            .map(|key| {
                                describe_topic_key(
                                    key,
                                    &topic.configs,
                                    topics,
                                    broker,
                                    request.include_synonyms,
                                )
                            })
                            .collect();
                        // Overrides Gregor stores but does not apply yet are reported as set.
                        configs.extend(
                            topic
                                .configs
                                .iter()
                                .filter(|(k, _)| {
                                    !LOG_CONFIG_KEYS.contains(&k.as_str()) && wanted(k)
                                })
                                .map(|(k, v)| {
                                    DescribeConfigsResourceResult::default()
                                        .with_name(text(k.clone()))
                                        .with_value(Some(text(v.clone())))
                                        .with_config_source(SOURCE_TOPIC)
                                        .with_config_type(2)
                                }),
                        );
                        result.with_configs(configs)
                    }
                    None => result
                        .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                        .with_error_message(Some(text(format!(
                            "topic '{}' does not exist",
                            r.resource_name.as_str()
                        )))),
                },
                BROKER
                    if r.resource_name.is_empty()
                        || r.resource_name.as_str() == broker.node_id.to_string() =>
                {
                    let configs = broker
                        .static_configs
                        .iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(text(k.clone()))
                                .with_value(Some(text(v.clone())))
                                .with_config_source(SOURCE_STATIC_BROKER)
                                .with_read_only(true)
                                .with_config_type(2)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                _ => result
                    .with_error_code(INVALID_REQUEST)
                    .with_error_message(Some(text("unsupported resource type or unknown broker"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_topic_key(
    key: &str,
    overrides: &BTreeMap<String, String>,
    topics: &TopicRegistry,
    broker: &BrokerConfig,
    include_synonyms: bool,
) -> DescribeConfigsResourceResult {
    let default_value = topics.defaults().get(key);
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(key) {
        synonyms.push(
            DescribeConfigsSynonym::default()
                .with_name(text(key))
                .with_value(Some(text(v.clone())))
                .with_source(SOURCE_TOPIC),
        );
    }
    for synonym in log_config_synonyms(key) {
        if let Some(v) = broker.static_configs.get(*synonym) {
            synonyms.push(
                DescribeConfigsSynonym::default()
                    .with_name(text(*synonym))
                    .with_value(Some(text(v.clone())))
                    .with_source(SOURCE_STATIC_BROKER),
            );
        }
    }
    let default_name = log_config_synonyms(key).first().copied().unwrap_or(key);
    synonyms.push(
        DescribeConfigsSynonym::default()
            .with_name(text(default_name))
            .with_value(default_value.clone().map(text))
            .with_source(SOURCE_DEFAULT),
    );
    let (value, source) = match overrides.get(key) {
        Some(v) => (Some(v.clone()), SOURCE_TOPIC),
        None if synonyms.len() > 1 => (default_value, SOURCE_STATIC_BROKER),
        None => (default_value, SOURCE_DEFAULT),
    };
    DescribeConfigsResourceResult::default()
        .with_name(text(key))
        .with_value(value.map(text))
        .with_config_source(source)
        .with_config_type(config_type(key))
        .with_synonyms(if include_synonyms {
            synonyms
        } else {
            Vec::new()
        })
}

/// One resource's outcome for the two alter APIs.
fn outcome(result: Result<(), TopicError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => (e.error_code().0, Some(text(e.to_string()))),
    }
}

fn refuse_non_topic(resource_type: i8) -> Option<(i16, Option<StrBytes>)> {
    (resource_type != TOPIC).then(|| {
        (
            INVALID_REQUEST,
            Some(text(
                "only topic configs can be altered; dynamic broker configs are not supported yet",
            )),
        )
    })
}

/// AlterConfigs: the given set replaces all of a topic's overrides.
pub async fn alter(request: &AlterConfigsRequest, topics: &TopicRegistry) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let (code, message) = match refuse_non_topic(r.resource_type) {
            Some(refused) => refused,
            None => {
                let configs = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                outcome(
                    topics
                        .set_configs(r.resource_name.as_str(), configs, request.validate_only)
                        .await,
                )
            }
        };
        responses.push(
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The overrides a topic has after applying IncrementalAlterConfigs operations: SET (0),
/// DELETE (1), APPEND (2) and SUBTRACT (3) on list values.
fn apply_operations(
    topics: &TopicRegistry,
    r: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
) -> Result<BTreeMap<String, String>, (i16, Option<StrBytes>)> {
    let name = r.resource_name.as_str();
    let Some(topic) = topics.get(name) else {
        return Err(outcome(Err(TopicError::Unknown(name.to_string()))));
    };
    let mut configs = topic.configs.clone();
    for c in &r.configs {
        let key = c.name.to_string();
        let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
        let current = configs
            .get(&key)
            .cloned()
            .or_else(|| topics.defaults().get(&key))
            .unwrap_or_default();
        let mut items: Vec<String> = current
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        match c.config_operation {
            0 => {
                configs.insert(key, value);
            }
            1 => {
                configs.remove(&key);
            }
            2 => {
                for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
                    }
                }
                configs.insert(key, items.join(","));
            }
            3 => {
                let remove: Vec<&str> = value.split(',').map(str::trim).collect();
                items.retain(|i| !remove.contains(&i.as_str()));
                configs.insert(key, items.join(","));
            }
            op => {
                return Err((
                    INVALID_REQUEST,
                    Some(text(format!("unknown config operation {op}"))),
                ));
            }
        }
    }
    Ok(configs)
}

/// IncrementalAlterConfigs.
pub async fn incremental_alter(
    request: &IncrementalAlterConfigsRequest,
    topics: &TopicRegistry,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let (code, message) = match refuse_non_topic(r.resource_type) {
            Some(refused) => refused,
            None => match apply_operations(topics, r) {
                Ok(configs) => outcome(
                    topics
                        .set_configs(r.resource_name.as_str(), configs, request.validate_only)
                        .await,
                ),
                Err(refused) => refused,
            },
        };
        responses.push(
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

//! Topics: create, delete, list, describe, add partitions (CreateTopics, DeleteTopics,
//! Metadata, CreatePartitions).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest, TopicName,
};
use uuid::Uuid;

use super::{Admin, ItemResults, check, text};
use crate::cluster::PartitionInfo;
use crate::error::{ClientError, Result};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 for the broker's `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic-level config overrides (`retention.ms`, `cleanup.policy`…).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with explicit partitions and replication factor (-1 for broker defaults).
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a config override.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// What the broker created (or, with `validate_only`, would create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Topic id (nil when the broker does not report it, e.g. validate-only).
    pub topic_id: Uuid,
    /// Partitions.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// A topic in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Internal topics (`__consumer_offsets`, `__transaction_state`) are flagged so tools can
    /// leave them out.
    pub internal: bool,
}

/// A topic's partitions, leaders, replicas and in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Whether it is internal.
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

impl Admin {
    /// Creates topics (CreateTopics). With `validate_only` the broker checks the request and
    /// reports what it would create without creating anything.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<ItemResults<CreatedTopic>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(text(&t.name)))
                            .with_num_partitions(t.num_partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(text(k))
                                            .with_value(Some(text(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self
            .retrying(|| async { self.controller().await?.send(&request, 7).await })
            .await?;
        let mut results = ItemResults::new();
        for t in response.topics {
            let name = t.name.0.to_string();
            let result = check(
                t.error_code,
                t.error_message.as_deref(),
                &format!("topic '{name}'"),
            )
            .map(|()| CreatedTopic {
                topic_id: t.topic_id,
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
            });
            results.insert(name, result);
        }
        if !validate_only {
            for t in topics {
                self.cluster.invalidate(&t.name);
            }
        }
        Ok(results)
    }

    /// Deletes topics by name (DeleteTopics).
    pub async fn delete_topics(&self, names: &[String]) -> Result<ItemResults<()>> {
        let response = self
            .retrying(|| async {
                let connection = self.controller().await?;
                let version = connection.version::<DeleteTopicsRequest>(6)?;
                let request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
                // v6 names topics in `topics` (by name or id), older versions in `topic_names`.
                let request = if version >= 6 {
                    request.with_topics(
                        names
                            .iter()
                            .map(|n| {
                                DeleteTopicState::default().with_name(Some(TopicName(text(n))))
                            })
                            .collect(),
                    )
                } else {
                    request.with_topic_names(names.iter().map(|n| TopicName(text(n))).collect())
                };
                connection.send_at(&request, version).await
            })
            .await?;
        let mut results = ItemResults::new();
        for t in response.responses {
            let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
            let result = check(
                t.error_code,
                t.error_message.as_deref(),
                &format!("topic '{name}'"),
            );
            self.cluster.invalidate(&name);
            results.insert(name, result);
        }
        Ok(results)
    }

    /// Every topic, internal ones flagged, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicListing>> {
        let response = self
            .retrying(|| async {
                let request = MetadataRequest::default()
                    .with_topics(None)
                    .with_allow_auto_topic_creation(false);
                self.cluster
                    .any_connection()
                    .await?
                    .send(&request, 12)
                    .await
            })
            .await?;
        let mut topics: Vec<TopicListing> = response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicListing {
                    name: t.name?.0.to_string(),
                    topic_id: t.topic_id,
                    internal: t.is_internal,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Partitions, leaders, replicas and ISR of the named topics (Metadata; never creates
    /// them). A topic that does not exist is `UNKNOWN_TOPIC_OR_PARTITION`.
    pub async fn describe_topics(&self, names: &[String]) -> Result<ItemResults<TopicDescription>> {
        let request = MetadataRequest::default()
            .with_topics(Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(text(n)))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(false);
        let response = self
            .retrying(|| async {
                self.cluster
                    .any_connection()
                    .await?
                    .send(&request, 12)
                    .await
            })
            .await?;
        let mut results = ItemResults::new();
        for t in response.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            let result = check(
                t.error_code,
                None,
                &format!("topic '{name}' does not exist"),
            )
            .map(|()| {
                let partitions = crate::cluster::partitions_of(t.partitions);
                TopicDescription {
                    name: name.clone(),
                    topic_id: t.topic_id,
                    internal: t.is_internal,
                    partitions,
                }
            });
            results.insert(name, result);
        }
        for name in names {
            results.entry(name.clone()).or_insert_with(|| {
                Err(ClientError::Kafka {
                    code: gregor_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    message: Some(format!("topic '{name}' does not exist")),
                })
            });
        }
        Ok(results)
    }

    /// Grows topics to the given partition counts (CreatePartitions); partitions can only
    /// be added, never removed (`INVALID_PARTITIONS`).
    pub async fn create_partitions(
        &self,
        counts: &BTreeMap<String, i32>,
        validate_only: bool,
    ) -> Result<ItemResults<()>> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(
                counts
                    .iter()
                    .map(|(name, count)| {
                        CreatePartitionsTopic::default()
                            .with_name(TopicName(text(name)))
                            .with_count(*count)
                            .with_assignments(None)
                    })
                    .collect(),
            );
        let response = self
            .retrying(|| async { self.controller().await?.send(&request, 3).await })
            .await?;
        let mut results = ItemResults::new();
        for t in response.results {
            let name = t.name.0.to_string();
            self.cluster.invalidate(&name);
            let result = check(
                t.error_code,
                t.error_message.as_deref(),
                &format!("topic '{name}'"),
            );
            results.insert(name, result);
        }
        Ok(results)
    }
}

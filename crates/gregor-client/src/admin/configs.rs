//! Topic and broker configs: DescribeConfigs, AlterConfigs (replace the whole set) and
//! IncrementalAlterConfigs (set, delete, append, subtract single keys).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    alter_configs_request, incremental_alter_configs_request,
};

use super::{Admin, check, text};
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};

/// A resource that has configs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id as a string (`""` for the cluster-wide default).
    Broker(String),
}

impl ConfigResource {
    /// Kafka's `ConfigResource.Type` code.
    fn type_code(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) => 4,
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            ConfigResource::Topic(n) | ConfigResource::Broker(n) => n,
        }
    }

    /// The resource in words (`topic 'orders'`, `broker '1'`), for messages to users, so the
    /// library and the tools name resources the same way.
    pub fn describe(&self) -> String {
        match self {
            ConfigResource::Topic(n) => format!("topic '{n}'"),
            ConfigResource::Broker(n) => format!("broker '{n}'"),
        }
    }
}

/// Where a config's value comes from (Kafka's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A topic-level override.
    DynamicTopic,
    /// A per-broker dynamic override.
    DynamicBroker,
    /// The cluster-wide dynamic broker default.
    DynamicDefaultBroker,
    /// `server.properties`.
    StaticBroker,
    /// Kafka's built-in default.
    Default,
    /// Anything else the broker reports.
    Unknown,
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            _ => ConfigSource::Unknown,
        }
    }

    /// Kafka's name for it, as `kafka-configs --describe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::Unknown => "UNKNOWN",
        }
    }
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key (`retention.ms`).
    pub name: String,
    /// Value; `None` for sensitive values or unset ones.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed at runtime.
    pub read_only: bool,
    /// Whether the value is hidden (passwords).
    pub sensitive: bool,
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets a key.
    Set(String, String),
    /// Removes an override, back to the default.
    Delete(String),
    /// Appends to a list-valued key.
    Append(String, String),
    /// Removes from a list-valued key.
    Subtract(String, String),
}

/// Per-resource results of a config call.
pub type ConfigResults<T> = BTreeMap<ConfigResource, Result<T>>;

impl Admin {
    /// The broker a resource's request goes to: the broker itself for broker resources (its
    /// own configs live there), else any.
    async fn config_connection(
        &self,
        resource: Option<&ConfigResource>,
    ) -> Result<std::sync::Arc<BrokerConnection>> {
        if let Some(ConfigResource::Broker(id)) = resource {
            if let Ok(id) = id.parse::<i32>() {
                return self.cluster.connection(id).await;
            }
        }
        self.controller().await
    }

    /// The configs of each resource (DescribeConfigs, all keys).
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<ConfigResults<Vec<ConfigEntry>>> {
        let mut results = ConfigResults::new();
        // One request per broker resource (it must reach that broker), one for all topics.
        let (brokers, topics): (Vec<_>, Vec<_>) = resources
            .iter()
            .partition(|r| matches!(r, ConfigResource::Broker(_)));
        let mut batches: Vec<Vec<&ConfigResource>> = brokers.into_iter().map(|b| vec![b]).collect();
        if !topics.is_empty() {
            batches.push(topics);
        }
        for batch in batches {
            let request = DescribeConfigsRequest::default().with_resources(
                batch
                    .iter()
                    .map(|r| {
                        DescribeConfigsResource::default()
                            .with_resource_type(r.type_code())
                            .with_resource_name(text(r.name()))
                            .with_configuration_keys(None)
                    })
                    .collect(),
            );
            let response = self
                .retrying(|| async {
                    self.config_connection(batch.first().copied())
                        .await?
                        .send(&request, 4)
                        .await
                })
                .await?;
            for (resource, r) in batch.iter().zip(response.results) {
                let result = check(
                    r.error_code,
                    r.error_message.as_deref(),
                    &resource.describe(),
                )
                .map(|()| {
                    let mut entries: Vec<ConfigEntry> = r
                        .configs
                        .into_iter()
                        .map(|c| ConfigEntry {
                            name: c.name.to_string(),
                            value: c.value.map(|v| v.to_string()),
                            source: ConfigSource::from_code(c.config_source),
                            read_only: c.read_only,
                            sensitive: c.is_sensitive,
                        })
                        .collect();
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                    entries
                });
                results.insert((*resource).clone(), result);
            }
        }
        Ok(results)
    }

    /// Replaces each resource's whole set of overrides (AlterConfigs, deprecated in Kafka in
    /// favour of [`Admin::incremental_alter_configs`]): keys not given return to defaults.
    pub async fn alter_configs(
        &self,
        configs: &BTreeMap<ConfigResource, BTreeMap<String, String>>,
        validate_only: bool,
    ) -> Result<ConfigResults<()>> {
        let mut results = ConfigResults::new();
        for (resource, entries) in configs {
            let request = AlterConfigsRequest::default()
                .with_validate_only(validate_only)
                .with_resources(vec![
                    alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(resource.type_code())
                        .with_resource_name(text(resource.name()))
                        .with_configs(
                            entries
                                .iter()
                                .map(|(k, v)| {
                                    alter_configs_request::AlterableConfig::default()
                                        .with_name(text(k))
                                        .with_value(Some(text(v)))
                                })
                                .collect(),
                        ),
                ]);
            let response = self
                .retrying(|| async {
                    self.config_connection(Some(resource))
                        .await?
                        .send(&request, 2)
                        .await
                })
                .await?;
            results.insert(
                resource.clone(),
                first_result(&response.responses, resource),
            );
        }
        Ok(results)
    }

    /// Changes single keys of each resource (IncrementalAlterConfigs), leaving the others.
    pub async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Result<ConfigResults<()>> {
        let mut results = ConfigResults::new();
        for (resource, ops) in changes {
            let configs = ops
                .iter()
                .map(|op| {
                    let (name, code, value) = match op {
                        AlterConfigOp::Set(k, v) => (k, 0, Some(v)),
                        AlterConfigOp::Delete(k) => (k, 1, None),
                        AlterConfigOp::Append(k, v) => (k, 2, Some(v)),
                        AlterConfigOp::Subtract(k, v) => (k, 3, Some(v)),
                    };
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(text(name))
                        .with_config_operation(code)
                        .with_value(value.map(|v| text(v)))
                })
                .collect();
            let request = IncrementalAlterConfigsRequest::default()
                .with_validate_only(validate_only)
                .with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(resource.type_code())
                        .with_resource_name(text(resource.name()))
                        .with_configs(configs),
                ]);
            let response = self
                .retrying(|| async {
                    self.config_connection(Some(resource))
                        .await?
                        .send(&request, 1)
                        .await
                })
                .await?;
            let result = match response.responses.first() {
                Some(r) => check(
                    r.error_code,
                    r.error_message.as_deref(),
                    &resource.describe(),
                ),
                None => Err(ClientError::Protocol(format!(
                    "no result for {}",
                    resource.describe()
                ))),
            };
            results.insert(resource.clone(), result);
        }
        Ok(results)
    }
}

fn first_result(
    responses: &[kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse],
    resource: &ConfigResource,
) -> Result<()> {
    match responses.first() {
        Some(r) => check(
            r.error_code,
            r.error_message.as_deref(),
            &resource.describe(),
        ),
        None => Err(ClientError::Protocol(format!(
            "no result for {}",
            resource.describe()
        ))),
    }
}

//! `TopicRegistry`: topics as the metadata image describes them, and the requests that change
//! them.
//!
//! Reads (`get`, `by_id`, `all`) come from the last metadata image this broker applied, so they
//! agree with the partitions it hosts. Changes (create, add partitions, configs, delete) are
//! checked here first (names, config keys and values, as Kafka's broker does before forwarding),
//! then decided by the active controller, and answered once this broker has applied the result:
//! a client that creates a topic and produces to it at once finds it.
//!
//! Data directories written before the metadata quorum existed kept topics in
//! `partition.metadata` files and a `topic-configs` file; [`legacy_topics`] reads them so the
//! broker can import them into the metadata log once, on its first start.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::config::LOG_CONFIG_KEYS;
use gregor_log::{LogConfig, LogManager};
use gregor_metadata::MetadataImage;
use gregor_metadata::controller::{
    ConfigOp, ControllerRequest, ControllerResponse, ItemError, NewPartitions, NewTopic,
};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_metadata::records::{BrokerId, ConfigResource};
use gregor_protocol::ErrorCode;
use uuid::Uuid;

use crate::replica::{ReplicaManager, read_topic_id};

/// Kafka's limit on topic name length (so `<topic>-<partition>` fits a file name).
const MAX_NAME_LENGTH: usize = 249;
/// File in the first log directory where pre-quorum brokers kept topic config overrides.
const LEGACY_TOPIC_CONFIGS: &str = "topic-configs";
/// How long a metadata change may take, end to end.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic id (Kafka's `Uuid`).
    pub id: Uuid,
    /// Number of partitions, `0..partitions`.
    pub partitions: i32,
    /// Config overrides set on the topic (`retention.ms`, `cleanup.policy`…).
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    fn from_image(image: &MetadataImage, id: Uuid) -> Option<Topic> {
        let topic = image.topics.get(&id)?;
        Some(Topic {
            name: topic.name.clone(),
            id,
            partitions: topic.partitions.len() as i32,
            configs: image.topic_configs(&topic.name),
        })
    }
}

/// Why a topic change was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopicError {
    /// The name breaks Kafka's rules.
    #[error("{0}")]
    InvalidName(String),
    /// A config key or value is not acceptable.
    #[error("{0}")]
    InvalidConfig(String),
    /// No such topic.
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    /// The controller refused (existing topic, bad partition count or replication factor…).
    #[error("{message}")]
    Refused {
        /// Kafka error code.
        code: ErrorCode,
        /// Why.
        message: String,
    },
}

impl TopicError {
    /// The Kafka error code for this failure.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TopicError::InvalidName(_) => ErrorCode::INVALID_TOPIC_EXCEPTION,
            TopicError::InvalidConfig(_) => ErrorCode::INVALID_CONFIG,
            TopicError::Unknown(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            TopicError::Refused { code, .. } => *code,
        }
    }
}

impl From<ItemError> for TopicError {
    fn from(e: ItemError) -> Self {
        TopicError::Refused {
            code: ErrorCode(e.code),
            message: e.message,
        }
    }
}

/// The controller could not be reached or did not answer in time.
fn unavailable(e: impl std::fmt::Display) -> TopicError {
    TopicError::Refused {
        code: ErrorCode::REQUEST_TIMED_OUT,
        message: format!("the controller did not answer: {e}"),
    }
}

fn unexpected(response: ControllerResponse) -> TopicError {
    TopicError::Refused {
        code: ErrorCode::UNKNOWN_SERVER_ERROR,
        message: format!("unexpected controller answer {response:?}"),
    }
}

/// The LogConfig of a topic: broker defaults plus the topic's overrides, each checked.
pub fn log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicError> {
    let mut config = defaults.clone();
    for (k, v) in overrides {
        if !LOG_CONFIG_KEYS.contains(&k.as_str()) {
            check_unapplied(k, v)?;
            continue;
        }
        config
            .set(k, v)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
    }
    Ok(config)
}

/// Kafka topic configs Gregor accepts, stores and reports but does not act on yet, with the
/// values Kafka would accept. Tools set them routinely (`min.insync.replicas`,
/// `compression.type`), so refusing them would break topic creation; see docs/divergences.md.
fn check_unapplied(key: &str, value: &str) -> Result<(), TopicError> {
    let invalid = |why: &str| {
        Err(TopicError::InvalidConfig(format!(
            "invalid value {value:?} for config {key}: {why}"
        )))
    };
    let long = value.trim().parse::<i64>();
    match key {
        "compression.type" => match value.trim() {
            "uncompressed" | "zstd" | "lz4" | "snappy" | "gzip" | "producer" => Ok(()),
            _ => invalid("expected uncompressed, zstd, lz4, snappy, gzip or producer"),
        },
        "min.insync.replicas" => match long {
            Ok(n) if n >= 1 => Ok(()),
            _ => invalid("must be an integer of at least 1"),
        },
        "unclean.leader.election.enable"
        | "preallocate"
        | "message.downconversion.enable"
        | "remote.storage.enable" => match value.trim() {
            "true" | "false" => Ok(()),
            _ => invalid("expected true or false"),
        },
        "max.compaction.lag.ms"
        | "segment.jitter.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.difference.max.ms" => match long {
            Ok(n) if n >= 0 => Ok(()),
            _ => invalid("must be a non-negative integer"),
        },
        "local.retention.ms" | "local.retention.bytes" => match long {
            Ok(n) if n >= -2 => Ok(()),
            _ => invalid("must be an integer of at least -2"),
        },
        "leader.replication.throttled.replicas"
        | "follower.replication.throttled.replicas"
        | "message.format.version" => Ok(()),
        _ => Err(TopicError::InvalidConfig(format!(
            "unknown topic config {key}"
        ))),
    }
}

/// Checks a topic name as Kafka's `Topic.validate` does.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let invalid = |why: String| Err(TopicError::InvalidName(why));
    if name.is_empty() {
        return invalid("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return invalid(format!("topic name cannot be '{name}'"));
    }
    if name.len() > MAX_NAME_LENGTH {
        return invalid(format!(
            "topic name is longer than {MAX_NAME_LENGTH} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(format!(
            "topic name '{name}' contains '{c}'; only ASCII alphanumerics, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Topics: see the module docs.
pub struct TopicRegistry {
    quorum: Arc<MetadataQuorum>,
    replicas: Arc<ReplicaManager>,
    defaults: LogConfig,
}

impl TopicRegistry {
    /// Topics as `replicas` last applied them; changes through `quorum`'s controller.
    pub fn new(
        quorum: Arc<MetadataQuorum>,
        replicas: Arc<ReplicaManager>,
        defaults: LogConfig,
    ) -> TopicRegistry {
        TopicRegistry {
            quorum,
            replicas,
            defaults,
        }
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Topic> {
        let image = self.replicas.image();
        let id = *image.topic_ids.get(name)?;
        Topic::from_image(&image, id)
    }

    /// A topic by id.
    pub fn by_id(&self, id: Uuid) -> Option<Topic> {
        Topic::from_image(&self.replicas.image(), id)
    }

    /// Every topic, by name.
    pub fn all(&self) -> Vec<Topic> {
        let image = self.replicas.image();
        image
            .topic_ids
            .values()
            .filter_map(|id| Topic::from_image(&image, *id))
            .collect()
    }

    /// The broker-level defaults topics start from.
    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// Checks overrides the way topic creation and config changes do.
    pub fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, TopicError> {
        log_config(&self.defaults, overrides)
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`). `partitions`
    /// and `replication_factor` of -1 take the broker defaults; `assignments` (partition →
    /// replicas) replaces both.
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: BTreeMap<i32, Vec<BrokerId>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(Topic, i16), TopicError> {
        validate_name(name)?;
        self.log_config(&configs)?;
        let request = ControllerRequest::CreateTopics {
            topics: vec![NewTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor,
                assignments,
                configs: configs.clone(),
            }],
            validate_only,
        };
        let response = self.request(request).await?;
        let ControllerResponse::TopicsCreated(mut results) = response else {
            return Err(unexpected(response));
        };
        let (_, result) = results.pop().ok_or_else(|| unavailable("no result"))?;
        let created = result?;
        let topic = Topic {
            name: name.to_string(),
            id: created.topic_id,
            partitions: created.num_partitions,
            configs,
        };
        if !validate_only {
            let id = created.topic_id;
            self.wait_for(|image| image.topics.contains_key(&id)).await;
            tracing::info!(
                topic = name,
                partitions = topic.partitions,
                replication_factor = created.replication_factor,
                "created topic"
            );
        }
        Ok((topic, created.replication_factor))
    }

    /// Adds partitions to a topic (CreatePartitions): `count` is the new total.
    pub async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let request = ControllerRequest::CreatePartitions {
            topics: vec![NewPartitions {
                name: name.to_string(),
                count,
                assignments,
            }],
            validate_only,
        };
        let response = self.request(request).await?;
        let ControllerResponse::PartitionsCreated(mut results) = response else {
            return Err(unexpected(response));
        };
        let (_, result) = results.pop().ok_or_else(|| unavailable("no result"))?;
        result?;
        if !validate_only {
            self.wait_for(|image| {
                image
                    .topic(name)
                    .is_some_and(|t| t.partitions.len() as i32 >= count)
            })
            .await;
        }
        Ok(())
    }

    /// Replaces a topic's config overrides (AlterConfigs, IncrementalAlterConfigs).
    pub async fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let current = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.log_config(&configs)?;
        let mut ops: Vec<ConfigOp> = current
            .configs
            .keys()
            .filter(|k| !configs.contains_key(*k))
            .map(|k| ConfigOp::Delete(k.clone()))
            .collect();
        ops.extend(
            configs
                .iter()
                .filter(|(k, v)| current.configs.get(*k) != Some(v))
                .map(|(k, v)| ConfigOp::Set(k.clone(), v.clone())),
        );
        if ops.is_empty() {
            return Ok(());
        }
        let resource = ConfigResource::Topic(name.to_string());
        let request = ControllerRequest::AlterConfigs {
            resources: vec![(resource, ops)],
            validate_only,
        };
        let response = self.request(request).await?;
        let ControllerResponse::ConfigsAltered(mut results) = response else {
            return Err(unexpected(response));
        };
        let (_, result) = results.pop().ok_or_else(|| unavailable("no result"))?;
        result?;
        if !validate_only {
            self.wait_for(|image| image.topic_configs(name) == configs)
                .await;
            tracing::info!(topic = name, "updated topic configs");
        }
        Ok(())
    }

    /// Deletes a topic. Every replica deletes its logs when it applies the removal (the
    /// partition directories are renamed with Kafka's `-delete` suffix and removed).
    pub async fn delete(&self, name: &str) -> Result<Topic, TopicError> {
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let request = ControllerRequest::DeleteTopics {
            names: vec![name.to_string()],
        };
        let response = self.request(request).await?;
        let ControllerResponse::TopicsDeleted(mut results) = response else {
            return Err(unexpected(response));
        };
        let (_, result) = results.pop().ok_or_else(|| unavailable("no result"))?;
        let id = result?;
        self.wait_for(|image| !image.topics.contains_key(&id)).await;
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    async fn request(&self, request: ControllerRequest) -> Result<ControllerResponse, TopicError> {
        self.quorum
            .request(request, CHANGE_TIMEOUT)
            .await
            .map_err(unavailable)
    }

    /// Waits (boundedly) until this broker has applied an image where `done` holds, so the
    /// client's next request sees its change here.
    async fn wait_for(&self, done: impl Fn(&MetadataImage) -> bool) {
        let mut applied = self.replicas.applied();
        let wait = async {
            loop {
                if done(&self.replicas.image()) {
                    return;
                }
                if applied.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(CHANGE_TIMEOUT, wait).await.is_err() {
            tracing::warn!("metadata change committed but not yet applied on this broker");
        }
    }
}

/// A topic found in a data directory written before the metadata quorum.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyTopic {
    /// Name.
    pub name: String,
    /// Id from `partition.metadata`.
    pub id: Uuid,
    /// Partition count (highest partition directory + 1).
    pub partitions: i32,
    /// Overrides from `topic-configs`.
    pub configs: BTreeMap<String, String>,
}

/// The topics a pre-quorum single-node broker left in `logs`' directories.
pub fn legacy_topics(logs: &LogManager) -> Result<Vec<LegacyTopic>, std::io::Error> {
    let mut configs = read_legacy_configs(&logs.dirs()[0].join(LEGACY_TOPIC_CONFIGS))?;
    let mut topics: BTreeMap<String, LegacyTopic> = BTreeMap::new();
    for log in logs.all_logs() {
        let tp = log.topic_partition();
        let Some(id) = read_topic_id(log.dir()) else {
            continue;
        };
        let topic = topics
            .entry(tp.topic.clone())
            .or_insert_with(|| LegacyTopic {
                name: tp.topic.clone(),
                id,
                partitions: 0,
                configs: configs.remove(&tp.topic).unwrap_or_default(),
            });
        topic.partitions = topic.partitions.max(tp.partition + 1);
    }
    Ok(topics.into_values().collect())
}

fn read_legacy_configs(
    path: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, std::io::Error> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some((topic, (key, value))) = line
            .split_once(' ')
            .and_then(|(topic, kv)| kv.split_once('=').map(|kv| (topic, kv)))
        {
            configs
                .entry(topic.to_string())
                .or_default()
                .insert(key.to_string(), value.to_string());
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafkas_rules() {
        assert!(validate_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "a b", "tópico", "x/y", &"a".repeat(250)] {
            assert_eq!(
                validate_name(bad).unwrap_err().error_code(),
                ErrorCode(17),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn configs_are_checked_against_kafkas_keys_and_values() {
        let defaults = LogConfig::default();
        let check = |k: &str, v: &str| {
            log_config(&defaults, &[(k.to_string(), v.to_string())].into())
                .map(|c| c.retention_ms)
                .map_err(|e| e.error_code())
        };
        assert_eq!(check("retention.ms", "1000"), Ok(1000));
        assert!(
            check("min.insync.replicas", "2").is_ok(),
            "known Kafka configs are accepted"
        );
        assert!(check("compression.type", "zstd").is_ok());
        assert_eq!(check("no.such.config", "1"), Err(ErrorCode::INVALID_CONFIG));
        assert_eq!(
            check("compression.type", "brotli"),
            Err(ErrorCode::INVALID_CONFIG)
        );
        assert_eq!(
            check("retention.ms", "soon"),
            Err(ErrorCode::INVALID_CONFIG)
        );
        assert_eq!(
            check("min.insync.replicas", "0"),
            Err(ErrorCode::INVALID_CONFIG)
        );
    }

    #[test]
    fn legacy_topics_are_found_with_ids_and_configs() {
        let root = tempfile::tempdir().unwrap();
        let logs =
            LogManager::open(vec![root.path().to_path_buf()], |_| LogConfig::default(), 0).unwrap();
        let id = gregor_protocol::ids::random_id();
        for p in 0..2 {
            let tp = gregor_log::TopicPartition::new("events", p);
            let log = logs
                .get_or_create_log(&tp, LogConfig::default(), 0)
                .unwrap();
            fs::write(
                log.dir().join("partition.metadata"),
                format!(
                    "version: 0\ntopic_id: {}\n",
                    gregor_protocol::ids::to_text(id)
                ),
            )
            .unwrap();
        }
        fs::write(
            root.path().join("topic-configs"),
            "events retention.ms=1000\n",
        )
        .unwrap();
        let found = legacy_topics(&logs).unwrap();
        assert_eq!(
            found,
            vec![LegacyTopic {
                name: "events".into(),
                id,
                partitions: 2,
                configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            }]
        );
    }
}

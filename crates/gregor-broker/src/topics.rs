//! `TopicRegistry`: the topics a single-node broker hosts, with their ids and config overrides.
//!
//! Until the metadata quorum exists (issue 6), topics live where Kafka keeps their per-partition
//! traces: each partition directory holds Kafka's `partition.metadata` (`version: 0`,
//! `topic_id: <id>`), and the registry is rebuilt at startup from the partition directories the
//! `LogManager` found. Per-topic config overrides are kept in `topic-configs` in the first log
//! directory (`topic key=value` lines), and applied to every partition's `LogConfig`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gregor_log::config::LOG_CONFIG_KEYS;
use gregor_log::{LogConfig, LogManager, TopicPartition};
use gregor_protocol::ErrorCode;
use parking_lot::RwLock;
use uuid::Uuid;

use gregor_protocol::ids;

/// Kafka's limit on topic name length (so `<topic>-<partition>` fits a file name).
const MAX_NAME_LENGTH: usize = 249;
/// File in the first log directory holding topic config overrides.
const TOPIC_CONFIGS: &str = "topic-configs";

/// One hosted topic.
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

/// Why a topic could not be created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopicError {
    /// A topic with that name exists.
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    /// The name breaks Kafka's rules.
    #[error("{0}")]
    InvalidName(String),
    /// Partition count below 1, or not above the current count when adding partitions.
    #[error("{0}")]
    InvalidPartitions(String),
    /// More replicas than brokers.
    #[error("replication factor {0} is larger than the number of brokers (1)")]
    InvalidReplicationFactor(i16),
    /// A config key or value is not acceptable.
    #[error("{0}")]
    InvalidConfig(String),
    /// No such topic.
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    /// The disk failed while creating or deleting the logs.
    #[error("{0}")]
    Storage(String),
}

impl TopicError {
    /// The Kafka error code for this failure.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TopicError::AlreadyExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
            TopicError::InvalidName(_) => ErrorCode::INVALID_TOPIC_EXCEPTION,
            TopicError::InvalidPartitions(_) => ErrorCode::INVALID_PARTITIONS,
            TopicError::InvalidReplicationFactor(_) => ErrorCode::INVALID_REPLICATION_FACTOR,
            TopicError::InvalidConfig(_) => ErrorCode::INVALID_CONFIG,
            TopicError::Unknown(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            TopicError::Storage(_) => ErrorCode::KAFKA_STORAGE_ERROR,
        }
    }
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

/// The hosted topics.
pub struct TopicRegistry {
    logs: Arc<LogManager>,
    defaults: LogConfig,
    configs_file: PathBuf,
    topics: RwLock<BTreeMap<String, Topic>>,
}

fn partition_metadata(dir: &Path) -> PathBuf {
    dir.join("partition.metadata")
}

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = fs::read_to_string(partition_metadata(dir)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|id| ids::from_text(id.trim()))
}

fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    fs::write(
        partition_metadata(dir),
        format!("version: 0\ntopic_id: {}\n", ids::to_text(id)),
    )
}

impl TopicRegistry {
    /// Rebuilds the registry from the logs the `LogManager` loaded, and applies each topic's
    /// config overrides to its logs.
    pub fn load(logs: Arc<LogManager>, defaults: LogConfig) -> Result<TopicRegistry, TopicError> {
        let configs_file = logs.dirs()[0].join(TOPIC_CONFIGS);
        let mut configs = read_configs(&configs_file)?;
        let mut topics: BTreeMap<String, Topic> = BTreeMap::new();
        for log in logs.all_logs() {
            let tp = log.topic_partition();
            let id = match read_topic_id(log.dir()) {
                Some(id) => id,
                None => {
                    let id = topics.get(&tp.topic).map_or_else(ids::random_id, |t| t.id);
                    write_topic_id(log.dir(), id)
                        .map_err(|e| TopicError::Storage(e.to_string()))?;
                    id
                }
            };
            let topic = topics.entry(tp.topic.clone()).or_insert_with(|| Topic {
                name: tp.topic.clone(),
                id,
                partitions: 0,
                configs: configs.remove(&tp.topic).unwrap_or_default(),
            });
            topic.partitions = topic.partitions.max(tp.partition + 1);
        }
        let registry = TopicRegistry {
            logs,
            defaults,
            configs_file,
            topics: RwLock::new(topics),
        };
        for topic in registry.topics.read().values() {
            let config = registry.log_config(&topic.configs)?;
            for p in 0..topic.partitions {
                if let Some(log) = registry
                    .logs
                    .get_log(&TopicPartition::new(topic.name.clone(), p))
                {
                    log.update_config(config.clone());
                    lead(&log)?;
                }
            }
        }
        Ok(registry)
    }

    /// The LogConfig of a topic: broker defaults plus the topic's overrides.
    pub fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, TopicError> {
        let mut config = self.defaults.clone();
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

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Topic> {
        self.topics.read().get(name).cloned()
    }

    /// A topic by id.
    pub fn by_id(&self, id: Uuid) -> Option<Topic> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, by name.
    pub fn all(&self) -> Vec<Topic> {
        self.topics.read().values().cloned().collect()
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Topic, TopicError> {
        validate_name(name)?;
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        if replication_factor > 1 || replication_factor == 0 || replication_factor < -1 {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        let config = self.log_config(&configs)?;
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let topic = Topic {
            name: name.to_string(),
            id: ids::random_id(),
            partitions,
            configs,
        };
        if validate_only {
            return Ok(topic);
        }
        for p in 0..partitions {
            let log = self
                .logs
                .get_or_create_log(&TopicPartition::new(name, p), config.clone(), now_ms)
                .map_err(|e| TopicError::Storage(e.to_string()))?;
            write_topic_id(log.dir(), topic.id).map_err(|e| TopicError::Storage(e.to_string()))?;
            lead(&log)?;
        }
        topics.insert(name.to_string(), topic.clone());
        write_configs(&self.configs_file, &topics)?;
        tracing::info!(topic = name, partitions, id = %ids::to_text(topic.id), "created topic");
        Ok(topic)
    }
}

/// This single node leads every partition from epoch 0 on: the epoch is recorded at the log end
/// when the partition is created or loaded, so OffsetForLeaderEpoch answers as a Kafka leader.
fn lead(log: &gregor_log::Log) -> Result<(), TopicError> {
    if log.latest_epoch().is_none() {
        log.assign_epoch_start_offset(LEADER_EPOCH, log.log_end_offset())
            .map_err(|e| TopicError::Storage(e.to_string()))?;
    }
    Ok(())
}

/// The leader epoch of every partition on this single node.
pub const LEADER_EPOCH: i32 = 0;

impl TopicRegistry {
    /// Adds partitions to a topic (CreatePartitions): `count` is the new total.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Topic, TopicError> {
        let mut topics = self.topics.write();
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let first_new = topic.partitions;
        if count <= first_new {
            return Err(TopicError::InvalidPartitions(format!(
                "topic {name} has {first_new} partitions; the new count {count} must be larger \
                 (partitions can only be added)"
            )));
        }
        let grown = Topic {
            partitions: count,
            ..topic
        };
        if validate_only {
            return Ok(grown);
        }
        let config = self.log_config(&grown.configs)?;
        for p in first_new..count {
            let log = self
                .logs
                .get_or_create_log(&TopicPartition::new(name, p), config.clone(), now_ms)
                .map_err(|e| TopicError::Storage(e.to_string()))?;
            write_topic_id(log.dir(), grown.id).map_err(|e| TopicError::Storage(e.to_string()))?;
            lead(&log)?;
        }
        topics.insert(name.to_string(), grown.clone());
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(grown)
    }

    /// Replaces a topic's config overrides (AlterConfigs, IncrementalAlterConfigs): checked,
    /// persisted, and applied to every partition's log at once.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let mut topics = self.topics.write();
        let topic = topics
            .get_mut(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let config = self.log_config(&configs)?;
        if validate_only {
            return Ok(());
        }
        topic.configs = configs;
        let partitions = topic.partitions;
        write_configs(&self.configs_file, &topics)?;
        for p in 0..partitions {
            if let Some(log) = self.logs.get_log(&TopicPartition::new(name, p)) {
                log.update_config(config.clone());
            }
        }
        tracing::info!(topic = name, "updated topic configs");
        Ok(())
    }

    /// The broker-level defaults topics start from.
    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// Deletes a topic: it leaves the registry at once, and each partition's directory is
    /// renamed with Kafka's `-delete` suffix and removed.
    pub fn delete(&self, name: &str) -> Result<Topic, TopicError> {
        let mut topics = self.topics.write();
        let topic = topics
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        write_configs(&self.configs_file, &topics)?;
        drop(topics);
        for p in 0..topic.partitions {
            self.logs
                .delete_log(&TopicPartition::new(name, p))
                .map_err(|e| TopicError::Storage(e.to_string()))?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }
}

fn read_configs(path: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>, TopicError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(TopicError::Storage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .split_once(' ')
            .and_then(|(topic, kv)| kv.split_once('=').map(|(k, v)| (topic, k, v)));
        let (topic, key, value) = parsed.ok_or_else(|| {
            TopicError::Storage(format!("malformed line in {}: {line:?}", path.display()))
        })?;
        configs
            .entry(topic.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }
    Ok(configs)
}

/// Rewrites the overrides file atomically (write, fsync, rename).
fn write_configs(path: &Path, topics: &BTreeMap<String, Topic>) -> Result<(), TopicError> {
    let mut text = String::new();
    for topic in topics.values() {
        for (k, v) in &topic.configs {
            text.push_str(&format!("{} {k}={v}\n", topic.name));
        }
    }
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut &file, text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| TopicError::Storage(format!("cannot write {}: {e}", path.display())))
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
    fn create_persists_ids_and_configs_across_reload() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let logs = Arc::new(LogManager::open(dirs.clone(), |_| LogConfig::default(), 0).unwrap());
        let registry = TopicRegistry::load(Arc::clone(&logs), LogConfig::default()).unwrap();
        let configs: BTreeMap<String, String> =
            [("retention.ms".to_string(), "1000".to_string())].into();
        let created = registry
            .create("events", 3, 1, configs.clone(), false, 0)
            .unwrap();
        assert_eq!(
            registry
                .create("events", 1, 1, BTreeMap::new(), false, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode(36)
        );
        assert_eq!(
            registry
                .create("x", 0, 1, BTreeMap::new(), false, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode(37)
        );
        assert_eq!(
            registry
                .create("x", 1, 3, BTreeMap::new(), false, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode(38)
        );
        let stored: BTreeMap<String, String> = [
            ("min.insync.replicas".to_string(), "2".to_string()),
            ("compression.type".to_string(), "zstd".to_string()),
        ]
        .into();
        assert!(
            registry.create("stored", 1, 1, stored, true, 0).is_ok(),
            "known Kafka configs are accepted"
        );
        let unknown: BTreeMap<String, String> =
            [("no.such.config".to_string(), "1".to_string())].into();
        assert_eq!(
            registry
                .create("x", 1, 1, unknown, true, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode::INVALID_CONFIG
        );
        let bad_compression: BTreeMap<String, String> =
            [("compression.type".to_string(), "brotli".to_string())].into();
        assert_eq!(
            registry
                .create("x", 1, 1, bad_compression, true, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode::INVALID_CONFIG
        );
        let bad: BTreeMap<String, String> =
            [("retention.ms".to_string(), "soon".to_string())].into();
        assert_eq!(
            registry
                .create("x", 1, 1, bad, false, 0)
                .unwrap_err()
                .error_code(),
            ErrorCode::INVALID_CONFIG
        );
        assert!(
            registry
                .create("dry", 1, 1, BTreeMap::new(), true, 0)
                .is_ok()
        );
        assert!(
            registry.get("dry").is_none(),
            "validate_only creates nothing"
        );
        logs.shutdown(0).unwrap();
        drop(registry);
        drop(logs);
        let logs = Arc::new(LogManager::open(dirs, |_| LogConfig::default(), 0).unwrap());
        let registry = TopicRegistry::load(Arc::clone(&logs), LogConfig::default()).unwrap();
        let reloaded = registry.get("events").unwrap();
        assert_eq!(
            registry.delete("nope").unwrap_err().error_code(),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        assert_eq!(reloaded, created);
        let log = logs.get_log(&TopicPartition::new("events", 2)).unwrap();
        assert_eq!(log.config().retention_ms, 1000);
        let text = fs::read_to_string(log.dir().join("partition.metadata")).unwrap();
        assert_eq!(
            text,
            format!("version: 0\ntopic_id: {}\n", ids::to_text(created.id))
        );
    }
}

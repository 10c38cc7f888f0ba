//! Broker settings under Kafka's broker-level keys, with Kafka's defaults.
//!
//! `gregor broker --config server.properties --override key=value` must accept the files and
//! flags people already use with `kafka-server-start`, so [`BrokerConfig`] reads Java
//! `.properties` text (the `properties` submodule) and knows Kafka's keys by their Kafka names.
//! A few defaults differ on purpose: `listeners=PLAINTEXT://127.0.0.1:9092`,
//! `log.dirs=./gregor-data` and `node.id=1`, so that `gregor broker` alone is a working
//! single-node cluster; and `log.flush.interval.messages=1`, so that every acknowledged write
//! is on disk (see `docs/divergences.md`).
//!
//! As in Kafka, a key the broker does not know is ignored and reported back (the caller logs
//! it), while a known key with a bad value is an error that names the key, the value and what
//! was expected, raised before anything binds or touches a disk. Settings of features Gregor
//! has not built yet (TLS/SASL listeners, dynamic controller quorums) are refused with an error
//! that says so, never silently dropped.
//!
//! The `log.*` keys are the broker-wide defaults of the topic-level keys;
//! [`BrokerConfig::default_log_config`] turns them into a [`LogConfig`] through Kafka's
//! synonyms ([`log_config_synonyms`]).
//!
//! ```
//! use gregor_broker::config::BrokerConfig;
//!
//! let file = "listeners=PLAINTEXT://127.0.0.1:0\n\
//!             log.retention.hours=24\n\
//!             zookeeper.connect=zk:2181\n";
//! let overrides = [("num.partitions".to_string(), "3".to_string())];
//! let (config, ignored) = BrokerConfig::from_properties(file, &overrides).unwrap();
//! assert_eq!(config.listeners[0].port, 0); // the OS picks a free port at bind time
//! assert_eq!(config.default_log_config().retention_ms, 24 * 60 * 60 * 1000);
//! assert_eq!(config.num_partitions, 3);
//! assert_eq!(ignored, ["zookeeper.connect"]); // unknown keys are the caller's to log
//!
//! let err = BrokerConfig::from_properties("node.id=abc", &[]).unwrap_err();
//! assert_eq!(err.key(), Some("node.id"));
//! ```

mod cluster;
mod group;
mod listener;
mod properties;
mod transaction;

use std::collections::BTreeMap;
use std::path::PathBuf;

use gregor_log::{CleanupPolicy, LogConfig};
use gregor_protocol::batch::TimestampType;

pub use cluster::{ClusterConfig, ProcessRoles};
pub use group::GroupConfig;
pub use listener::Listener;
pub use transaction::TransactionConfig;

/// Why a configuration was refused. Every variant names the key, so the user can find the
/// line to fix; the CLI prints it as `error: <message>` and exits 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A known key has a value that does not parse or is out of range.
    #[error("invalid value {value:?} for configuration {key}: expected {expected}")]
    InvalidValue {
        /// The Kafka key, e.g. `node.id`.
        key: String,
        /// The value as given.
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// Values that parse but do not fit together (duplicate listeners, an advertised
    /// listener that does not exist…).
    #[error("invalid configuration {key}: {message}")]
    Invalid {
        /// The key to change.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A valid Kafka setting for a feature Gregor has not built yet.
    #[error("unsupported configuration {key}={value}: {message}")]
    Unsupported {
        /// The key concerned.
        key: String,
        /// The value as given.
        value: String,
        /// What is missing and what to use instead.
        message: String,
    },
    /// The properties text itself is malformed (only a bad `\uXXXX` escape can be).
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number in the properties text.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The key the error is about, if any, so that tools can point at it.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Unsupported { key, .. } => Some(key),
            ConfigError::Syntax { .. } => None,
        }
    }
}

/// Every broker-level key Gregor reads. Anything else in a properties file is ignored and
/// reported, as Kafka's broker does with unknown keys.
pub const BROKER_CONFIG_KEYS: &[&str] = &[
    "node.id",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "log.retention.hours",
    "log.retention.minutes",
    "log.retention.ms",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.roll.hours",
    "log.roll.ms",
    "log.cleanup.policy",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
    "log.segment.delete.delay.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.scheduler.interval.ms",
    "log.message.timestamp.type",
    "message.max.bytes",
    "socket.request.max.bytes",
    "log.retention.check.interval.ms",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
    "num.network.threads",
    "num.io.threads",
];

/// The broker keys that set the default of a topic-level key, highest precedence first, as
/// Kafka lists them as synonyms in `DescribeConfigs` (`retention.ms` ← `log.retention.ms`,
/// `log.retention.minutes`, `log.retention.hours`). Empty for a key without broker synonyms.
pub fn log_config_synonyms(topic_key: &str) -> &'static [&'static str] {
    match topic_key {
        "segment.bytes" => &["log.segment.bytes"],
        "segment.ms" => &["log.roll.ms", "log.roll.hours"],
        "segment.index.bytes" => &["log.index.size.max.bytes"],
        "index.interval.bytes" => &["log.index.interval.bytes"],
        "retention.ms" => &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        "retention.bytes" => &["log.retention.bytes"],
        "file.delete.delay.ms" => &["log.segment.delete.delay.ms"],
        "cleanup.policy" => &["log.cleanup.policy"],
        "min.cleanable.dirty.ratio" => &["log.cleaner.min.cleanable.ratio"],
        "delete.retention.ms" => &["log.cleaner.delete.retention.ms"],
        "min.compaction.lag.ms" => &["log.cleaner.min.compaction.lag.ms"],
        "max.message.bytes" => &["message.max.bytes"],
        "message.timestamp.type" => &["log.message.timestamp.type"],
        "flush.messages" => &["log.flush.interval.messages"],
        "flush.ms" => &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        _ => &[],
    }
}

const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";
const DEFAULT_LOG_DIRS: &str = "./gregor-data";
const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const HOUR_MS: i64 = 60 * 60 * 1000;
const MINUTE_MS: i64 = 60 * 1000;

/// Everything the broker process is configured with. Field docs name the Kafka key and its
/// default; values are resolved (precedence between synonyms applied), so the rest of the
/// broker never looks at raw keys.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (Gregor: 1): this node's id in metadata and `meta.properties`.
    pub node_id: i32,
    /// `listeners` (Gregor: `PLAINTEXT://127.0.0.1:9092`): the client-facing endpoints to bind.
    /// Listeners named in `controller.listener.names` are not here but in
    /// [`controller_listeners`](Self::controller_listeners).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners` (default: `listeners`): what Metadata tells clients. A listener
    /// with an empty host is advertised under this machine's host name, as Kafka does.
    pub advertised_listeners: Vec<Listener>,
    /// Listeners named in `controller.listener.names`: the first serves the metadata quorum
    /// (Raft and requests to the active controller). Bound only when the node is a controller
    /// in a quorum of several voters (`controller.quorum.voters`).
    pub controller_listeners: Vec<Listener>,
    /// `log.dirs` (falls back to `log.dir`; Gregor: `./gregor-data`): partition directories.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions` (1): partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `default.replication.factor` (1): replicas of an auto-created topic.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable` (true): Metadata for an unknown topic creates it.
    pub auto_create_topics_enable: bool,
    /// `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours` (168):
    /// resolved to milliseconds; any negative value becomes -1 (keep forever).
    pub log_retention_ms: i64,
    /// `log.retention.bytes` (-1 = unlimited).
    pub log_retention_bytes: i64,
    /// `log.segment.bytes` (1 GiB).
    pub log_segment_bytes: u64,
    /// `log.roll.ms`, else `log.roll.hours` (168), in milliseconds.
    pub log_roll_ms: i64,
    /// `log.cleanup.policy` (delete).
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.index.interval.bytes` (4096).
    pub log_index_interval_bytes: u64,
    /// `log.index.size.max.bytes` (10 MiB).
    pub log_index_size_max_bytes: u64,
    /// `log.segment.delete.delay.ms` (60000).
    pub log_segment_delete_delay_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (0.5).
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.cleaner.delete.retention.ms` (1 day).
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (0).
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.flush.interval.messages` (Gregor: 1, Kafka: `Long.MAX_VALUE`; see
    /// `docs/divergences.md`).
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms` (`Long.MAX_VALUE`).
    pub log_flush_interval_ms: i64,
    /// `log.message.timestamp.type` (CreateTime).
    pub log_message_timestamp_type: TimestampType,
    /// `message.max.bytes` (1048588): largest record batch a topic accepts by default.
    pub message_max_bytes: usize,
    /// `socket.request.max.bytes` (104857600): largest request frame; bigger closes the
    /// connection.
    pub socket_request_max_bytes: usize,
    /// The group coordinator's `group.*` and `offsets.*` keys.
    pub group: GroupConfig,
    /// The transaction coordinator's `transaction.*` and `transactional.id.*` keys.
    pub transaction: TransactionConfig,
    /// Roles, controller quorum, replication and leader election.
    pub cluster: ClusterConfig,
    /// `log.retention.check.interval.ms` (300000): how often retention runs.
    pub log_retention_check_interval_ms: i64,
    /// `producer.id.expiration.ms` (86400000): how long a partition remembers an idle
    /// idempotent producer (one with no open transaction); a retry after that cannot be
    /// recognised as a duplicate.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms` (600000): how often idle producers are
    /// forgotten.
    pub producer_id_expiration_check_interval_ms: i64,
    /// `num.network.threads` (3): accepted for compatibility only; the tokio runtime sizes
    /// itself to the machine's cores.
    pub num_network_threads: i32,
    /// `num.io.threads` (8): accepted for compatibility only, like `num.network.threads`.
    pub num_io_threads: i32,
    /// The known keys that the file or an override set, with their values as written, so that
    /// `DescribeConfigs` can tell `STATIC_BROKER_CONFIG` from `DEFAULT_CONFIG` sources.
    pub static_configs: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    /// Gregor's defaults: a single-node cluster on `127.0.0.1:9092` with data in
    /// `./gregor-data`, what `gregor broker` runs with no arguments.
    fn default() -> Self {
        let listener = Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
        };
        BrokerConfig {
            node_id: 1,
            listeners: vec![listener.clone()],
            advertised_listeners: vec![listener],
            controller_listeners: Vec::new(),
            log_dirs: vec![PathBuf::from(DEFAULT_LOG_DIRS)],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            log_retention_ms: 168 * HOUR_MS,
            log_retention_bytes: -1,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 168 * HOUR_MS,
            log_cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            log_index_interval_bytes: 4096,
            log_index_size_max_bytes: 10 * 1024 * 1024,
            log_segment_delete_delay_ms: 60_000,
            log_cleaner_min_cleanable_ratio: 0.5,
            log_cleaner_delete_retention_ms: 24 * HOUR_MS,
            log_cleaner_min_compaction_lag_ms: 0,
            log_flush_interval_messages: 1,
            log_flush_interval_ms: i64::MAX,
            log_message_timestamp_type: TimestampType::CreateTime,
            message_max_bytes: 1024 * 1024 + 12,
            socket_request_max_bytes: 100 * 1024 * 1024,
            group: GroupConfig::default(),
            transaction: TransactionConfig::default(),
            cluster: ClusterConfig::default(),
            log_retention_check_interval_ms: 300_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            num_network_threads: 3,
            num_io_threads: 8,
            static_configs: BTreeMap::new(),
        }
    }
}

/// Typed access to the known keys that were set, with errors that name the key.
struct Props<'a>(&'a BTreeMap<String, String>);

impl Props<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn bad(&self, key: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: self.get(key).unwrap_or_default().to_string(),
            expected: expected.into(),
        }
    }

    /// An optional Kafka INT of at least `min`.
    fn opt_int(&self, key: &str, min: i32) -> Result<Option<i32>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        match raw.parse::<i32>() {
            Ok(v) if v >= min => Ok(Some(v)),
            _ => Err(self.bad(key, format!("an integer from {min} to {}", i32::MAX))),
        }
    }

    fn int(&self, key: &str, default: i32, min: i32) -> Result<i32, ConfigError> {
        Ok(self.opt_int(key, min)?.unwrap_or(default))
    }

    /// A byte size: a Kafka INT (so at most 2 GiB - 1, as in Kafka) with `min >= 0`.
    fn size(&self, key: &str, default: i32, min: i32) -> Result<u64, ConfigError> {
        debug_assert!(min >= 0);
        Ok(self.int(key, default, min)?.unsigned_abs().into())
    }

    /// An optional Kafka LONG of at least `min`.
    fn opt_long(&self, key: &str, min: i64) -> Result<Option<i64>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(v) if v >= min => Ok(Some(v)),
            _ if min == i64::MIN => Err(self.bad(key, "a 64-bit integer")),
            _ => Err(self.bad(key, format!("an integer of at least {min}"))),
        }
    }

    fn long(&self, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
        Ok(self.opt_long(key, min)?.unwrap_or(default))
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(self.bad(key, "true or false")),
        }
    }

    /// A comma-separated list; empty entries are dropped.
    fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// This machine's host name, which Kafka advertises for a listener bound to every interface
/// (`PLAINTEXT://:9092`) when `advertised.listeners` does not say otherwise.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl BrokerConfig {
    /// Reads Java `.properties` text (a `server.properties` file; empty for none), then applies
    /// `overrides` (from `--override key=value`) on top. Returns the config and the keys that
    /// were ignored because the broker does not know them, in first-seen order, for the caller
    /// to log as Kafka does.
    pub fn from_properties(
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let entries = properties::parse(text)?;
        let mut known = BTreeMap::new();
        let mut ignored: Vec<String> = Vec::new();
        let all = entries.into_iter().map(|e| (e.key, e.value)).chain(
            overrides
                .iter()
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string())),
        );
        for (key, value) in all {
            if BROKER_CONFIG_KEYS.contains(&key.as_str())
                || group::GROUP_CONFIG_KEYS.contains(&key.as_str())
                || transaction::TRANSACTION_CONFIG_KEYS.contains(&key.as_str())
                || cluster::CLUSTER_CONFIG_KEYS.contains(&key.as_str())
            {
                known.insert(key, value);
            } else if !ignored.contains(&key) {
                ignored.push(key);
            }
        }
        Ok((Self::from_known(known)?, ignored))
    }

    /// Builds the config from known keys only; unset keys take their defaults.
    fn from_known(set: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let p = Props(&set);
        let node_id = p.int("node.id", 1, 0)?;
        let cluster = ClusterConfig::parse(&p, node_id)?;
        let Listeners {
            broker: listeners,
            advertised: advertised_listeners,
            controller: controller_listeners,
        } = resolve_listeners(&p, &cluster)?;
        check_bootstrap_servers(&p, &cluster, &listeners, &controller_listeners)?;

        let log_retention_ms = match p.opt_long("log.retention.ms", i64::MIN)? {
            Some(ms) => ms,
            None => match p.opt_int("log.retention.minutes", i32::MIN)? {
                Some(minutes) => i64::from(minutes) * MINUTE_MS,
                None => i64::from(p.int("log.retention.hours", 168, i32::MIN)?) * HOUR_MS,
            },
        };
        let log_roll_ms = match p.opt_long("log.roll.ms", 1)? {
            Some(ms) => ms,
            None => i64::from(p.int("log.roll.hours", 168, 1)?) * HOUR_MS,
        };
        let log_flush_interval_ms = match p.opt_long("log.flush.interval.ms", 0)? {
            Some(ms) => ms,
            None => p.long("log.flush.scheduler.interval.ms", i64::MAX, 0)?,
        };
        let log_cleanup_policy = match p.get("log.cleanup.policy") {
            None => CleanupPolicy {
                delete: true,
                compact: false,
            },
            Some(v) => CleanupPolicy::parse(v)
                .ok_or_else(|| p.bad("log.cleanup.policy", "delete, compact or compact,delete"))?,
        };
        let log_message_timestamp_type = match p.get("log.message.timestamp.type") {
            None | Some("CreateTime") => TimestampType::CreateTime,
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            Some(_) => {
                return Err(p.bad("log.message.timestamp.type", "CreateTime or LogAppendTime"));
            }
        };
        let log_cleaner_min_cleanable_ratio = match p.get("log.cleaner.min.cleanable.ratio") {
            None => 0.5,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| p.bad("log.cleaner.min.cleanable.ratio", "a number from 0 to 1"))?,
        };
        let replication = p.int("default.replication.factor", 1, 1)?;
        let default_replication_factor = i16::try_from(replication).map_err(|_| {
            p.bad(
                "default.replication.factor",
                format!("an integer from 1 to {}", i16::MAX),
            )
        })?;

        Ok(BrokerConfig {
            node_id,
            listeners,
            advertised_listeners,
            controller_listeners,
            log_dirs: resolve_log_dirs(&p)?,
            num_partitions: p.int("num.partitions", 1, 1)?,
            default_replication_factor,
            auto_create_topics_enable: p.boolean("auto.create.topics.enable", true)?,
            log_retention_ms: log_retention_ms.max(-1),
            log_retention_bytes: p.long("log.retention.bytes", -1, -1)?,
            // Kafka's floor is the legacy record overhead, as for `segment.bytes`.
            log_segment_bytes: p.size("log.segment.bytes", 1 << 30, 14)?,
            log_roll_ms,
            log_cleanup_policy,
            log_index_interval_bytes: p.size("log.index.interval.bytes", 4096, 0)?,
            // One time-index entry (12 bytes) is the least an index can hold.
            log_index_size_max_bytes: p.size("log.index.size.max.bytes", 10 * 1024 * 1024, 12)?,
            log_segment_delete_delay_ms: p.long("log.segment.delete.delay.ms", 60_000, 0)?,
            log_cleaner_min_cleanable_ratio,
            log_cleaner_delete_retention_ms: p.long(
                "log.cleaner.delete.retention.ms",
                24 * HOUR_MS,
                0,
            )?,
            log_cleaner_min_compaction_lag_ms: p.long("log.cleaner.min.compaction.lag.ms", 0, 0)?,
            log_flush_interval_messages: p.long("log.flush.interval.messages", 1, 1)?,
            log_flush_interval_ms,
            log_message_timestamp_type,
            message_max_bytes: p.size("message.max.bytes", 1024 * 1024 + 12, 0)? as usize,
            socket_request_max_bytes: p.size("socket.request.max.bytes", 100 * 1024 * 1024, 1)?
                as usize,
            group: GroupConfig::parse(&p)?,
            transaction: TransactionConfig::parse(&p)?,
            cluster,
            log_retention_check_interval_ms: p.long(
                "log.retention.check.interval.ms",
                300_000,
                1,
            )?,
            producer_id_expiration_ms: p.long("producer.id.expiration.ms", 86_400_000, 1)?,
            producer_id_expiration_check_interval_ms: p.long(
                "producer.id.expiration.check.interval.ms",
                600_000,
                1,
            )?,
            num_network_threads: p.int("num.network.threads", 3, 1)?,
            num_io_threads: p.int("num.io.threads", 8, 1)?,
            static_configs: set.clone(),
        })
    }

    /// The topic-level defaults these broker settings imply: what a topic without its own
    /// overrides runs with. Built field by field (no `..Default`), so a new `LogConfig`
    /// setting cannot be forgotten here.
    pub fn default_log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.log_segment_bytes,
            segment_ms: self.log_roll_ms,
            segment_index_bytes: self.log_index_size_max_bytes,
            index_interval_bytes: self.log_index_interval_bytes,
            retention_ms: self.log_retention_ms,
            retention_bytes: self.log_retention_bytes,
            file_delete_delay_ms: self.log_segment_delete_delay_ms,
            cleanup_policy: self.log_cleanup_policy,
            min_cleanable_dirty_ratio: self.log_cleaner_min_cleanable_ratio,
            delete_retention_ms: self.log_cleaner_delete_retention_ms,
            min_compaction_lag_ms: self.log_cleaner_min_compaction_lag_ms,
            max_message_bytes: self.message_max_bytes,
            message_timestamp_type: self.log_message_timestamp_type,
            flush_messages: self.log_flush_interval_messages,
            flush_ms: self.log_flush_interval_ms,
        }
    }
}

/// `controller.quorum.bootstrap.servers` (KIP-853's dynamic quorums) is not built: Kafka's
/// single-node files that point it at this node's own controller listener are accepted (the
/// node is then its own quorum), anything else asks for `controller.quorum.voters`.
fn check_bootstrap_servers(
    p: &Props<'_>,
    cluster: &ClusterConfig,
    listeners: &[Listener],
    controller_listeners: &[Listener],
) -> Result<(), ConfigError> {
    let servers = p.list("controller.quorum.bootstrap.servers");
    if servers.is_empty() {
        return Ok(());
    }
    let unsupported = || ConfigError::Unsupported {
        key: "controller.quorum.bootstrap.servers".into(),
        value: p
            .get("controller.quorum.bootstrap.servers")
            .unwrap_or_default()
            .into(),
        message: "dynamic controller quorums are not built yet; list the voters in \
                  controller.quorum.voters instead"
            .into(),
    };
    let [server] = servers[..] else {
        return Err(unsupported());
    };
    let port = server
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .ok_or_else(|| {
            p.bad(
                "controller.quorum.bootstrap.servers",
                "servers written as host:port, e.g. localhost:9093",
            )
        })?;
    let mut own = listeners.iter().chain(controller_listeners);
    if !cluster.voters.is_empty() || !own.any(|l| l.port == port) {
        return Err(unsupported());
    }
    Ok(())
}

/// The three listener lists of [`BrokerConfig`], resolved together because each depends on
/// the others.
struct Listeners {
    broker: Vec<Listener>,
    advertised: Vec<Listener>,
    controller: Vec<Listener>,
}

/// Resolves `listeners`, `advertised.listeners`, `controller.listener.names` and
/// `listener.security.protocol.map`.
fn resolve_listeners(p: &Props<'_>, cluster: &ClusterConfig) -> Result<Listeners, ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: key.into(),
        message,
    };
    let all =
        listener::parse_listeners("listeners", p.get("listeners").unwrap_or(DEFAULT_LISTENERS))?;
    for (i, a) in all.iter().enumerate() {
        if let Some(b) = all[i + 1..]
            .iter()
            .find(|b| b.port != 0 && b.port == a.port)
        {
            return Err(invalid(
                "listeners",
                format!("{a} and {b} use the same port; each listener needs its own port"),
            ));
        }
    }
    let controller_names: Vec<String> = p
        .list("controller.listener.names")
        .into_iter()
        .map(str::to_ascii_uppercase)
        .collect();
    let (controller, broker): (Vec<Listener>, Vec<Listener>) = all
        .into_iter()
        .partition(|l| controller_names.contains(&l.name));
    if broker.is_empty() && cluster.roles.broker {
        return Err(invalid(
            "listeners",
            "no client listener is configured (listeners named in controller.listener.names \
             serve only the controller quorum); add one such as PLAINTEXT://127.0.0.1:9092"
                .into(),
        ));
    }
    if cluster.roles.controller && !cluster.voters.is_empty() && controller.is_empty() {
        return Err(invalid(
            "controller.listener.names",
            "a controller in a quorum of several voters needs a controller listener: name one \
             of listeners in controller.listener.names, e.g. CONTROLLER://127.0.0.1:9093"
                .into(),
        ));
    }
    if let Some(name) = &cluster.inter_broker_listener_name
        && cluster.roles.broker
        && !broker.iter().any(|l| &l.name == name)
    {
        return Err(invalid(
            "inter.broker.listener.name",
            format!("{name} is not one of the client listeners in listeners"),
        ));
    }

    // Security protocols: only PLAINTEXT is built.
    let map_text = p
        .get("listener.security.protocol.map")
        .unwrap_or(DEFAULT_PROTOCOL_MAP);
    let mut protocols = BTreeMap::new();
    for entry in map_text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once(':').and_then(|(name, protocol)| {
            let protocol = protocol.trim().to_ascii_uppercase();
            SECURITY_PROTOCOLS
                .contains(&protocol.as_str())
                .then(|| (name.trim().to_ascii_uppercase(), protocol))
        });
        let (name, protocol) = parsed.ok_or_else(|| {
            p.bad(
                "listener.security.protocol.map",
                "NAME:PROTOCOL pairs with protocols among PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
            )
        })?;
        protocols.insert(name, protocol);
    }
    for listener in &broker {
        match protocols.get(&listener.name).map(String::as_str) {
            Some("PLAINTEXT") => {}
            Some(protocol) => {
                return Err(ConfigError::Unsupported {
                    key: "listeners".into(),
                    value: listener.to_string(),
                    message: format!(
                        "security protocol {protocol} is not supported yet; only PLAINTEXT \
                         listeners are"
                    ),
                });
            }
            None => {
                return Err(invalid(
                    "listener.security.protocol.map",
                    format!(
                        "listener {} has no security protocol; add {}:PLAINTEXT",
                        listener.name, listener.name
                    ),
                ));
            }
        }
    }

    // Advertised listeners: a subset of the client listeners, never the 0.0.0.0 meta-address.
    let explicit = p
        .get("advertised.listeners")
        .filter(|v| !v.trim().is_empty());
    let advertised_raw = match explicit {
        Some(v) => listener::parse_listeners("advertised.listeners", v)?,
        None => broker.clone(),
    };
    let mut advertised = Vec::new();
    for mut l in advertised_raw {
        if controller_names.contains(&l.name) {
            continue;
        }
        if !broker.iter().any(|b| b.name == l.name) {
            return Err(invalid(
                "advertised.listeners",
                format!("{l} names no listener in listeners; advertise only listeners it defines"),
            ));
        }
        if l.host.is_empty() {
            l.host = local_hostname();
        } else if l.host == "0.0.0.0" || l.host == "::" {
            let origin = if explicit.is_some() {
                ""
            } else {
                " (taken from listeners, as advertised.listeners is not set)"
            };
            return Err(invalid(
                "advertised.listeners",
                format!(
                    "{l}{origin} uses the non-routable meta-address {}; set advertised.listeners \
                     to an address clients can reach, e.g. PLAINTEXT://127.0.0.1:{}",
                    l.host, l.port
                ),
            ));
        }
        advertised.push(l);
    }

    let bind_all = |mut l: Listener| {
        if l.host.is_empty() {
            l.host = "0.0.0.0".into();
        }
        l
    };
    Ok(Listeners {
        broker: broker.into_iter().map(bind_all).collect(),
        advertised,
        controller: controller.into_iter().map(bind_all).collect(),
    })
}

/// `log.dirs`, else `log.dir`, else Gregor's `./gregor-data`.
fn resolve_log_dirs(p: &Props<'_>) -> Result<Vec<PathBuf>, ConfigError> {
    let key = if p.get("log.dirs").is_some() || p.get("log.dir").is_none() {
        "log.dirs"
    } else {
        "log.dir"
    };
    let value = p.get(key).unwrap_or(DEFAULT_LOG_DIRS);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in value.split(',').map(str::trim) {
        if dir.is_empty() {
            return Err(p.bad(key, "a comma-separated list of directories"));
        }
        let dir = PathBuf::from(dir);
        if dirs.contains(&dir) {
            return Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("directory {} is listed twice", dir.display()),
            });
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests;

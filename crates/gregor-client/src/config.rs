//! Client settings under Kafka's client property names, with the Java client's defaults.
//!
//! Every config can be built two ways: from `key=value` pairs as users write them for any
//! Kafka client (`bootstrap.servers`, `acks`, `linger.ms`, `group.id`…), or with the typed
//! setters. An unknown key or a bad value is an error when the config is built — a typo must
//! not silently become a default.
//!
//! ```
//! use gregor_client::config::ProducerConfig;
//!
//! let config = ProducerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("acks", "all"),
//!     ("linger.ms", "5"),
//! ])
//! .unwrap();
//! assert_eq!(config.acks, -1);
//! let err = ProducerConfig::from_properties([("bootstrap.servers", "b:9092"), ("lingr.ms", "5")])
//!     .unwrap_err();
//! assert!(err.to_string().contains("lingr.ms"));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_protocol::batch::Compression;

use crate::error::{ClientError, Result};

/// Settings every client (producer, consumer, admin) shares.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    /// `bootstrap.servers`: `host:port` list to learn the cluster from.
    pub bootstrap_servers: Vec<String>,
    /// `client.id` (default "gregor-client"): shown in broker logs and group descriptions.
    pub client_id: String,
    /// `request.timeout.ms` (30000): how long one request may wait for its response.
    pub request_timeout: Duration,
    /// `metadata.max.age.ms` (300000): metadata older than this is refreshed.
    pub metadata_max_age: Duration,
    /// `retry.backoff.ms` (100): pause before retrying a retriable failure.
    pub retry_backoff: Duration,
    /// `allow.auto.create.topics` (true): metadata requests may create topics, if the broker
    /// allows it.
    pub allow_auto_create_topics: bool,
}

impl CommonConfig {
    /// Defaults with the given bootstrap servers.
    pub fn new(bootstrap_servers: &str) -> CommonConfig {
        CommonConfig {
            bootstrap_servers: split_list(bootstrap_servers),
            client_id: "gregor-client".to_string(),
            request_timeout: Duration::from_millis(30_000),
            metadata_max_age: Duration::from_millis(300_000),
            retry_backoff: Duration::from_millis(100),
            allow_auto_create_topics: true,
        }
    }

    fn apply(&mut self, props: &mut Props) -> Result<()> {
        if let Some(servers) = props.take("bootstrap.servers") {
            self.bootstrap_servers = split_list(&servers);
        }
        if self.bootstrap_servers.is_empty() {
            return Err(config_error(
                "bootstrap.servers",
                "at least one host:port is required",
            ));
        }
        if let Some(bad) = self.bootstrap_servers.iter().find(|s| !is_host_port(s)) {
            return Err(config_error(
                "bootstrap.servers",
                &format!("{bad:?} is not host:port"),
            ));
        }
        if let Some(id) = props.take("client.id") {
            self.client_id = id;
        }
        props.millis("request.timeout.ms", 1, &mut self.request_timeout)?;
        props.millis("metadata.max.age.ms", 0, &mut self.metadata_max_age)?;
        props.millis("retry.backoff.ms", 0, &mut self.retry_backoff)?;
        props.boolean(
            "allow.auto.create.topics",
            &mut self.allow_auto_create_topics,
        )?;
        Ok(())
    }

    /// Builds from properties that may only hold common keys (the admin client's).
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<CommonConfig> {
        let mut props = Props::new(pairs);
        let mut config = CommonConfig::new("");
        config.apply(&mut props)?;
        props.finish()?;
        Ok(config)
    }
}

/// Producer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `acks` (all = -1): 0 (no answer), 1 (leader) or -1 (all in-sync replicas).
    pub acks: i16,
    /// `linger.ms` (5, as Kafka 4): how long a batch waits for more records.
    pub linger: Duration,
    /// `batch.size` (16384): bytes per partition batch before it is sent.
    pub batch_size: usize,
    /// `compression.type` (none): codec for batches.
    pub compression: Compression,
    /// `retries` (`Integer.MAX_VALUE`): retries of a retriable failure, within
    /// `delivery.timeout.ms`.
    pub retries: u32,
    /// `delivery.timeout.ms` (120000): upper bound on reporting a record's result.
    pub delivery_timeout: Duration,
    /// `max.in.flight.requests.per.connection` (5).
    pub max_in_flight: usize,
    /// `max.request.size` (1048576): largest request (and so batch) sent.
    pub max_request_size: usize,
    /// `enable.idempotence`: Gregor's broker does not implement idempotence yet, so it defaults
    /// to false; setting it true is refused until it does.
    pub enable_idempotence: bool,
}

impl ProducerConfig {
    /// Defaults with the given bootstrap servers.
    pub fn new(bootstrap_servers: &str) -> ProducerConfig {
        ProducerConfig {
            common: CommonConfig::new(bootstrap_servers),
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            compression: Compression::None,
            retries: i32::MAX as u32,
            delivery_timeout: Duration::from_millis(120_000),
            max_in_flight: 5,
            max_request_size: 1_048_576,
            enable_idempotence: false,
        }
    }

    /// Builds from Kafka producer properties.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ProducerConfig> {
        let mut props = Props::new(pairs);
        let mut config = ProducerConfig::new("");
        config.common.apply(&mut props)?;
        if let Some(acks) = props.take("acks") {
            config.acks = match acks.as_str() {
                "all" | "-1" => -1,
                "0" => 0,
                "1" => 1,
                _ => return Err(config_error("acks", "expected all, -1, 0 or 1")),
            };
        }
        props.millis("linger.ms", 0, &mut config.linger)?;
        props.at_least("batch.size", 0, &mut config.batch_size)?;
        if let Some(codec) = props.take("compression.type") {
            config.compression = Compression::ALL
                .into_iter()
                .find(|c| c.name() == codec)
                .ok_or_else(|| {
                    config_error(
                        "compression.type",
                        "expected none, gzip, snappy, lz4 or zstd",
                    )
                })?;
        }
        props.number("retries", &mut config.retries)?;
        props.millis("delivery.timeout.ms", 0, &mut config.delivery_timeout)?;
        props.at_least(
            "max.in.flight.requests.per.connection",
            1,
            &mut config.max_in_flight,
        )?;
        props.number("max.request.size", &mut config.max_request_size)?;
        props.boolean("enable.idempotence", &mut config.enable_idempotence)?;
        if config.enable_idempotence {
            return Err(config_error(
                "enable.idempotence",
                "idempotent producers are not supported yet (Gregor issue 7); set it to false",
            ));
        }
        props.finish()?;
        Ok(config)
    }
}

/// Where a consumer starts when its group has no committed offset (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
    /// Fail with `OFFSET_OUT_OF_RANGE`.
    None,
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `group.id`: needed for `subscribe` and commits.
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `enable.auto.commit` (true).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5000).
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` (latest).
    pub auto_offset_reset: OffsetReset,
    /// `session.timeout.ms` (45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3000).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (300000): also the rebalance timeout sent in JoinGroup.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy` (range, cooperative-sticky as Kafka 3+ lists them):
    /// assignor names in preference order: range, roundrobin, cooperative-sticky.
    pub assignors: Vec<String>,
    /// `fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms` (500).
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes` (52428800).
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes` (1048576).
    pub max_partition_fetch_bytes: i32,
    /// `max.poll.records` (500).
    pub max_poll_records: usize,
    /// `isolation.level` (read_uncommitted): `true` for read_committed.
    pub read_committed: bool,
}

impl ConsumerConfig {
    /// Defaults with the given bootstrap servers.
    pub fn new(bootstrap_servers: &str) -> ConsumerConfig {
        ConsumerConfig {
            common: CommonConfig::new(bootstrap_servers),
            group_id: None,
            group_instance_id: None,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5000),
            auto_offset_reset: OffsetReset::Latest,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3000),
            max_poll_interval: Duration::from_millis(300_000),
            assignors: vec!["range".into(), "cooperative-sticky".into()],
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            max_poll_records: 500,
            read_committed: false,
        }
    }

    /// Builds from Kafka consumer properties.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ConsumerConfig> {
        let mut props = Props::new(pairs);
        let mut config = ConsumerConfig::new("");
        config.common.apply(&mut props)?;
        config.group_id = props.take("group.id").filter(|g| !g.is_empty());
        config.group_instance_id = props.take("group.instance.id").filter(|g| !g.is_empty());
        props.boolean("enable.auto.commit", &mut config.enable_auto_commit)?;
        props.millis(
            "auto.commit.interval.ms",
            0,
            &mut config.auto_commit_interval,
        )?;
        if let Some(reset) = props.take("auto.offset.reset") {
            config.auto_offset_reset = match reset.as_str() {
                "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                "latest" | "largest" | "end" => OffsetReset::Latest,
                "none" | "error" => OffsetReset::None,
                _ => {
                    return Err(config_error(
                        "auto.offset.reset",
                        "expected earliest, latest or none",
                    ));
                }
            };
        }
        props.millis("session.timeout.ms", 1, &mut config.session_timeout)?;
        props.millis("heartbeat.interval.ms", 1, &mut config.heartbeat_interval)?;
        props.millis("max.poll.interval.ms", 1, &mut config.max_poll_interval)?;
        if let Some(list) = props.take("partition.assignment.strategy") {
            config.assignors = split_list(&list)
                .into_iter()
                .map(|a| assignor_name(&a))
                .collect::<Result<_>>()?;
            if config.assignors.is_empty() {
                return Err(config_error(
                    "partition.assignment.strategy",
                    "at least one assignor is required",
                ));
            }
        }
        props.at_least("fetch.min.bytes", 0, &mut config.fetch_min_bytes)?;
        props.millis("fetch.max.wait.ms", 0, &mut config.fetch_max_wait)?;
        props.at_least("fetch.max.bytes", 0, &mut config.fetch_max_bytes)?;
        props.at_least(
            "max.partition.fetch.bytes",
            0,
            &mut config.max_partition_fetch_bytes,
        )?;
        props.at_least("max.poll.records", 1, &mut config.max_poll_records)?;
        if let Some(level) = props.take("isolation.level") {
            config.read_committed = match level.as_str() {
                "read_committed" => true,
                "read_uncommitted" => false,
                _ => {
                    return Err(config_error(
                        "isolation.level",
                        "expected read_committed or read_uncommitted",
                    ));
                }
            };
        }
        if config.heartbeat_interval >= config.session_timeout {
            return Err(config_error(
                "heartbeat.interval.ms",
                "must be lower than session.timeout.ms",
            ));
        }
        props.finish()?;
        Ok(config)
    }
}

/// Typed builder methods: one per setting, named like the field, taking the typed value
/// (`ProducerConfig::new("host:9092").acks(-1).linger(Duration::from_millis(10))`), for code
/// that prefers types to Kafka's property strings.
macro_rules! setters {
    ($config:ident { $($name:ident => $($path:ident).+ : $ty:ty, $key:literal;)* }) => {
        impl $config {
            $(
                #[doc = concat!("Sets `", $key, "`.")]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$($path).+ = value;
                    self
                }
            )*
        }
    };
}

setters!(CommonConfig {
    client_id => client_id: String, "client.id";
    request_timeout => request_timeout: Duration, "request.timeout.ms";
    metadata_max_age => metadata_max_age: Duration, "metadata.max.age.ms";
    retry_backoff => retry_backoff: Duration, "retry.backoff.ms";
    allow_auto_create_topics => allow_auto_create_topics: bool, "allow.auto.create.topics";
});

setters!(ProducerConfig {
    client_id => common.client_id: String, "client.id";
    request_timeout => common.request_timeout: Duration, "request.timeout.ms";
    acks => acks: i16, "acks";
    linger => linger: Duration, "linger.ms";
    batch_size => batch_size: usize, "batch.size";
    compression => compression: Compression, "compression.type";
    retries => retries: u32, "retries";
    delivery_timeout => delivery_timeout: Duration, "delivery.timeout.ms";
    max_in_flight => max_in_flight: usize, "max.in.flight.requests.per.connection";
    max_request_size => max_request_size: usize, "max.request.size";
});

setters!(ConsumerConfig {
    client_id => common.client_id: String, "client.id";
    request_timeout => common.request_timeout: Duration, "request.timeout.ms";
    group_id => group_id: Option<String>, "group.id";
    group_instance_id => group_instance_id: Option<String>, "group.instance.id";
    enable_auto_commit => enable_auto_commit: bool, "enable.auto.commit";
    auto_commit_interval => auto_commit_interval: Duration, "auto.commit.interval.ms";
    auto_offset_reset => auto_offset_reset: OffsetReset, "auto.offset.reset";
    session_timeout => session_timeout: Duration, "session.timeout.ms";
    heartbeat_interval => heartbeat_interval: Duration, "heartbeat.interval.ms";
    max_poll_interval => max_poll_interval: Duration, "max.poll.interval.ms";
    assignors => assignors: Vec<String>, "partition.assignment.strategy";
    fetch_max_wait => fetch_max_wait: Duration, "fetch.max.wait.ms";
    max_poll_records => max_poll_records: usize, "max.poll.records";
    read_committed => read_committed: bool, "isolation.level";
});

/// An assignor's protocol name from its Java class name or short name.
fn assignor_name(name: &str) -> Result<String> {
    let short = name.rsplit('.').next().unwrap_or(name);
    Ok(match short {
        "range" | "RangeAssignor" => "range",
        "roundrobin" | "RoundRobinAssignor" => "roundrobin",
        "cooperative-sticky" | "CooperativeStickyAssignor" => "cooperative-sticky",
        _ => {
            return Err(config_error(
                "partition.assignment.strategy",
                &format!(
                    "unknown assignor {name:?}; expected range, roundrobin or cooperative-sticky"
                ),
            ));
        }
    }
    .to_string())
}

fn config_error(key: &str, message: &str) -> ClientError {
    ClientError::Config {
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// The pairs being read: each known key is taken out; what remains at the end is unknown.
struct Props(BTreeMap<String, String>);

impl Props {
    fn new<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Props {
        Props(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().trim().to_string(), v.as_ref().trim().to_string()))
                .collect(),
        )
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str, into: &mut T) -> Result<()> {
        if let Some(v) = self.take(key) {
            *into = v
                .parse()
                .map_err(|_| config_error(key, &format!("{v:?} is not a valid number")))?;
        }
        Ok(())
    }

    /// A number no lower than `min` (Kafka's `atLeast` validators): an out-of-range value is
    /// an error naming the key rather than a client that misbehaves later.
    fn at_least<T>(&mut self, key: &str, min: T, into: &mut T) -> Result<()>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let mut value = *into;
        self.number(key, &mut value)?;
        if value < min {
            return Err(config_error(
                key,
                &format!("{value} is below the minimum {min}"),
            ));
        }
        *into = value;
        Ok(())
    }

    /// A duration in milliseconds, at least `min_ms`.
    fn millis(&mut self, key: &str, min_ms: u64, into: &mut Duration) -> Result<()> {
        let mut ms: u64 = into.as_millis() as u64;
        self.at_least(key, min_ms, &mut ms)?;
        *into = Duration::from_millis(ms);
        Ok(())
    }

    fn boolean(&mut self, key: &str, into: &mut bool) -> Result<()> {
        if let Some(v) = self.take(key) {
            *into = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(config_error(key, "expected true or false")),
            };
        }
        Ok(())
    }

    /// Fails on the first key nobody took.
    fn finish(self) -> Result<()> {
        match self.0.into_keys().next() {
            Some(key) => Err(config_error(&key, "unknown configuration key")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_defaults_and_mistakes() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "a:1, b:2"),
            ("group.id", "g"),
            ("auto.offset.reset", "earliest"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            ),
        ])
        .unwrap();
        assert_eq!(c.common.bootstrap_servers, ["a:1", "b:2"]);
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.assignors, ["roundrobin"]);
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        for (key, value) in [
            ("bootstrap.servers", "nohostport"),
            ("auto.offset.reset", "sometimes"),
            ("enable.auto.commit", "yes"),
            ("fetch.min.bytes", "-x"),
            ("partition.assignment.strategy", "sticky-ish"),
            ("no.such.key", "1"),
        ] {
            let mut pairs = vec![("bootstrap.servers", "h:1")];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            let err = ConsumerConfig::from_properties(pairs).unwrap_err();
            assert!(
                matches!(&err, ClientError::Config { key: k, .. } if k == key),
                "{key}: {err}"
            );
        }
        let p = ProducerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("compression.type", "zstd"),
            ("acks", "1"),
        ])
        .unwrap();
        assert_eq!((p.compression, p.acks), (Compression::Zstd, 1));
        assert!(
            ProducerConfig::from_properties([("bootstrap.servers", "h:1"), ("acks", "2")]).is_err()
        );
        assert!(CommonConfig::from_properties([("client.id", "x")]).is_err());
    }

    #[test]
    fn out_of_range_numbers_name_their_key() {
        let consumer = |key, value| {
            ConsumerConfig::from_properties([("bootstrap.servers", "h:1"), (key, value)])
        };
        let producer = |key, value| {
            ProducerConfig::from_properties([("bootstrap.servers", "h:1"), (key, value)])
        };
        let refused = [
            ("fetch.min.bytes", consumer("fetch.min.bytes", "-1").err()),
            ("fetch.max.bytes", consumer("fetch.max.bytes", "-5").err()),
            (
                "max.partition.fetch.bytes",
                consumer("max.partition.fetch.bytes", "-1").err(),
            ),
            ("max.poll.records", consumer("max.poll.records", "0").err()),
            (
                "max.poll.interval.ms",
                consumer("max.poll.interval.ms", "0").err(),
            ),
            (
                "request.timeout.ms",
                consumer("request.timeout.ms", "0").err(),
            ),
            (
                "request.timeout.ms",
                producer("request.timeout.ms", "0").err(),
            ),
            ("batch.size", producer("batch.size", "-1").err()),
            ("linger.ms", producer("linger.ms", "-1").err()),
            (
                "max.in.flight.requests.per.connection",
                producer("max.in.flight.requests.per.connection", "0").err(),
            ),
        ];
        for (key, err) in refused {
            let err = err.unwrap_or_else(|| panic!("{key} accepted"));
            assert!(
                matches!(&err, ClientError::Config { key: k, .. } if k == key),
                "{key}: {err}"
            );
        }
        // Kafka's minimums themselves are accepted (batch.size=0 turns batching off).
        let p = producer("batch.size", "0").unwrap();
        assert_eq!(p.batch_size, 0);
        let c = consumer("fetch.min.bytes", "0").unwrap();
        assert_eq!(c.fetch_min_bytes, 0);
        assert_eq!(
            consumer("max.poll.records", "1").unwrap().max_poll_records,
            1
        );
    }

    #[test]
    fn typed_builder_sets_the_same_fields() {
        let typed = ConsumerConfig::new("h:1")
            .group_id(Some("g".into()))
            .auto_offset_reset(OffsetReset::Earliest)
            .session_timeout(Duration::from_secs(10))
            .client_id("app".into());
        let parsed = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("group.id", "g"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("client.id", "app"),
        ])
        .unwrap();
        assert_eq!(typed, parsed);
        let p = ProducerConfig::new("h:1")
            .acks(1)
            .compression(Compression::Lz4);
        assert_eq!((p.acks, p.compression), (1, Compression::Lz4));
    }
}

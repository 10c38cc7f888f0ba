//! The group coordinator's broker-level keys (`group.*`, `offsets.*`), with Kafka's defaults.

use super::{ConfigError, MINUTE_MS, Props};

/// Every key [`GroupConfig`] reads; the broker knows these besides `BROKER_CONFIG_KEYS`.
pub(super) const GROUP_CONFIG_KEYS: &[&str] = &[
    "offsets.topic.num.partitions",
    "offsets.topic.segment.bytes",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.coordinator.rebalance.protocols",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.min.heartbeat.interval.ms",
    "group.consumer.max.heartbeat.interval.ms",
    "group.consumer.session.timeout.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.max.session.timeout.ms",
    "group.consumer.assignors",
    "group.consumer.max.size",
];

/// How consumer groups and committed offsets behave. Field docs name the Kafka key and its
/// default.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions` (50): partitions of `__consumer_offsets`; a group lives in
    /// partition `abs(hash(group.id)) % this`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.segment.bytes` (100 MiB): kept small so compaction can clean it often.
    pub offsets_topic_segment_bytes: u64,
    /// `offsets.retention.minutes` (7 days), in milliseconds: how long an empty group's
    /// offsets are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (600000): how often expired offsets are removed.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes` (4096): longest commit metadata string.
    pub offset_metadata_max_bytes: usize,
    /// `group.initial.rebalance.delay.ms` (3000): how long the first rebalance of an empty
    /// classic group waits for more members, so a starting fleet does not rebalance per member.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (6000): shortest session a classic member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000): longest session a classic member may ask for.
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (`Integer.MAX_VALUE`): members a classic group admits.
    pub max_size: usize,
    /// `group.coordinator.rebalance.protocols` (classic,consumer): which protocols are on.
    pub consumer_protocol_enabled: bool,
    /// `group.consumer.heartbeat.interval.ms` (5000): the interval KIP-848 members are told.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (45000): a KIP-848 member silent this long is
    /// removed.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.assignors` (uniform,range): server assignors; the first is the default.
    pub consumer_assignors: Vec<String>,
    /// `group.consumer.max.size` (`Integer.MAX_VALUE`): members a consumer group admits.
    pub consumer_max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_retention_ms: 7 * 24 * 60 * MINUTE_MS,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            consumer_protocol_enabled: true,
            consumer_heartbeat_interval_ms: 5000,
            consumer_session_timeout_ms: 45_000,
            consumer_assignors: vec!["uniform".into(), "range".into()],
            consumer_max_size: i32::MAX as usize,
        }
    }
}

impl GroupConfig {
    /// Reads the group keys that were set, defaulting the rest.
    pub(super) fn parse(p: &Props<'_>) -> Result<GroupConfig, ConfigError> {
        let d = GroupConfig::default();
        let min_session_timeout_ms = p.int("group.min.session.timeout.ms", 6000, 0)?;
        let max_session_timeout_ms = p.int("group.max.session.timeout.ms", 1_800_000, 0)?;
        if min_session_timeout_ms > max_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "group.min.session.timeout.ms".into(),
                message: format!(
                    "{min_session_timeout_ms} is above group.max.session.timeout.ms ({max_session_timeout_ms})"
                ),
            });
        }
        let mut consumer_protocol_enabled = false;
        for protocol in p.list("group.coordinator.rebalance.protocols") {
            match protocol {
                "classic" => {}
                "consumer" => consumer_protocol_enabled = true,
                _ => {
                    return Err(p.bad(
                        "group.coordinator.rebalance.protocols",
                        "a list of classic and consumer",
                    ));
                }
            }
        }
        if p.get("group.coordinator.rebalance.protocols").is_none() {
            consumer_protocol_enabled = true;
        }
        let mut consumer_assignors: Vec<String> = p
            .list("group.consumer.assignors")
            .into_iter()
            .map(str::to_string)
            .collect();
        if consumer_assignors.is_empty() {
            consumer_assignors = d.consumer_assignors.clone();
        }
        if let Some(bad) = consumer_assignors
            .iter()
            .find(|a| !matches!(a.as_str(), "uniform" | "range"))
        {
            return Err(ConfigError::Invalid {
                key: "group.consumer.assignors".into(),
                message: format!("unknown assignor {bad:?}; Gregor has uniform and range"),
            });
        }
        let consumer_heartbeat_interval_ms = bounded(
            p,
            "group.consumer.heartbeat.interval.ms",
            5000,
            5000,
            15_000,
        )?;
        let consumer_session_timeout_ms = bounded(
            p,
            "group.consumer.session.timeout.ms",
            45_000,
            45_000,
            60_000,
        )?;
        Ok(GroupConfig {
            offsets_topic_num_partitions: p.int("offsets.topic.num.partitions", 50, 1)?,
            offsets_topic_segment_bytes: p.size("offsets.topic.segment.bytes", 100 << 20, 1)?,
            offsets_retention_ms: p
                .long("offsets.retention.minutes", 7 * 24 * 60, 1)?
                .saturating_mul(MINUTE_MS),
            offsets_retention_check_interval_ms: p.long(
                "offsets.retention.check.interval.ms",
                d.offsets_retention_check_interval_ms,
                1,
            )?,
            offset_metadata_max_bytes: p.int("offset.metadata.max.bytes", 4096, 0)? as usize,
            initial_rebalance_delay_ms: i64::from(p.int(
                "group.initial.rebalance.delay.ms",
                3000,
                0,
            )?),
            min_session_timeout_ms,
            max_session_timeout_ms,
            max_size: p.int("group.max.size", i32::MAX, 1)? as usize,
            consumer_protocol_enabled,
            consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms,
            consumer_assignors,
            consumer_max_size: p.int("group.consumer.max.size", i32::MAX, 1)? as usize,
        })
    }
}

/// A KIP-848 timeout with Kafka's `min.`/`max.` companion keys
/// (`group.consumer.min.session.timeout.ms`…): the value must lie between them.
fn bounded(
    p: &Props<'_>,
    key: &str,
    default: i32,
    default_min: i32,
    default_max: i32,
) -> Result<i32, ConfigError> {
    let (prefix, rest) = key.split_at("group.consumer.".len());
    let min_key = format!("{prefix}min.{rest}");
    let max_key = format!("{prefix}max.{rest}");
    let min = p.int(&min_key, default_min, 1)?;
    let max = p.int(&max_key, default_max, 1)?;
    let value = p.int(key, default.clamp(min.min(max), max), 1)?;
    if value < min || value > max {
        return Err(ConfigError::Invalid {
            key: key.to_string(),
            message: format!("{value} must lie between {min_key} ({min}) and {max_key} ({max})"),
        });
    }
    Ok(value)
}

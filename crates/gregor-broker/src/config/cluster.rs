//! The cluster keys: roles, the controller quorum, replication and leader election, with
//! Kafka's defaults (KRaft mode).

use std::collections::BTreeMap;

use super::{ConfigError, Props};

/// Every key [`ClusterConfig`] reads; the broker knows these besides `BROKER_CONFIG_KEYS`.
pub(super) const CLUSTER_CONFIG_KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "inter.broker.listener.name",
    "min.insync.replicas",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.backoff.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "broker.rack",
    "metadata.log.dir",
    "metadata.log.max.snapshot.interval.records",
    "offsets.topic.replication.factor",
];

/// Which roles this node plays (`process.roles`). Unset means both, Gregor's embedded default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves clients and hosts partitions.
    pub broker: bool,
    /// Votes in the metadata quorum and may become the active controller.
    pub controller: bool,
}

/// How the node takes part in the cluster. Field docs name the Kafka key and its default.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `process.roles` (Gregor: `broker,controller`).
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`: voter id → `host:port` of its controller listener. Empty
    /// means a quorum of this node alone, with no controller listener needed.
    pub voters: BTreeMap<i32, String>,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: u64,
    /// `inter.broker.listener.name` (default: the first client listener): where followers
    /// fetch from leaders.
    pub inter_broker_listener_name: Option<String>,
    /// `min.insync.replicas` (1): the default of the topic key; `acks=all` writes need this
    /// many in-sync replicas.
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms` (30000): a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes` (1 MiB): per-partition bytes a follower asks for.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): bytes per follower fetch response.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500): how long a follower fetch waits for data.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.backoff.ms` (1000): pause after a failed follower fetch.
    pub replica_fetch_backoff_ms: u64,
    /// `unclean.leader.election.enable` (false).
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable` (true).
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (300), in ms.
    pub leader_imbalance_check_interval_ms: i64,
    /// `broker.session.timeout.ms` (9000): a broker silent this long is fenced.
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms` (2000).
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `metadata.log.dir` (default: the first of `log.dirs`): holds `__cluster_metadata-0`.
    pub metadata_log_dir: Option<std::path::PathBuf>,
    /// `metadata.log.max.snapshot.interval.records` (Gregor: 20000): entries between snapshots.
    pub snapshot_interval_records: u64,
    /// `offsets.topic.replication.factor` (3, capped at the live brokers as Kafka does when
    /// fewer are up): replicas of `__consumer_offsets`.
    pub offsets_topic_replication_factor: i16,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            roles: ProcessRoles {
                broker: true,
                controller: true,
            },
            voters: BTreeMap::new(),
            election_timeout_ms: 1000,
            inter_broker_listener_name: None,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1024 * 1024,
            replica_fetch_response_max_bytes: 10 * 1024 * 1024,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 1000,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            rack: None,
            metadata_log_dir: None,
            snapshot_interval_records: 20_000,
            offsets_topic_replication_factor: 3,
        }
    }
}

impl ClusterConfig {
    /// Reads the cluster keys; `node_id` is checked against the voters.
    pub(super) fn parse(p: &Props<'_>, node_id: i32) -> Result<ClusterConfig, ConfigError> {
        let defaults = ClusterConfig::default();
        let roles = parse_roles(p)?;
        let voters = parse_voters(p)?;
        if roles.controller && !voters.is_empty() && !voters.contains_key(&node_id) {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.voters".into(),
                message: format!(
                    "node.id {node_id} has the controller role but is not among the voters"
                ),
            });
        }
        if !roles.controller && voters.is_empty() {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.voters".into(),
                message: "a node without the controller role needs controller.quorum.voters \
                          to find the quorum"
                    .into(),
            });
        }
        let replication = p.int("offsets.topic.replication.factor", 3, 1)?;
        Ok(ClusterConfig {
            roles,
            voters,
            election_timeout_ms: p.int("controller.quorum.election.timeout.ms", 1000, 1)? as u64,
            inter_broker_listener_name: p
                .get("inter.broker.listener.name")
                .map(|n| n.trim().to_ascii_uppercase()),
            min_insync_replicas: p.int("min.insync.replicas", 1, 1)?,
            replica_lag_time_max_ms: p.long("replica.lag.time.max.ms", 30_000, 1)?,
            replica_fetch_max_bytes: p.int("replica.fetch.max.bytes", 1024 * 1024, 0)?,
            replica_fetch_response_max_bytes: p.int(
                "replica.fetch.response.max.bytes",
                10 * 1024 * 1024,
                0,
            )?,
            replica_fetch_wait_max_ms: p.int("replica.fetch.wait.max.ms", 500, 0)?,
            replica_fetch_backoff_ms: p.int("replica.fetch.backoff.ms", 1000, 0)? as u64,
            unclean_leader_election_enable: p.boolean("unclean.leader.election.enable", false)?,
            auto_leader_rebalance_enable: p.boolean("auto.leader.rebalance.enable", true)?,
            leader_imbalance_check_interval_ms: i64::from(p.int(
                "leader.imbalance.check.interval.seconds",
                300,
                1,
            )?) * 1000,
            broker_session_timeout_ms: p.long("broker.session.timeout.ms", 9000, 1)?,
            broker_heartbeat_interval_ms: p.int("broker.heartbeat.interval.ms", 2000, 1)? as u64,
            rack: p.get("broker.rack").map(|r| r.trim().to_string()),
            metadata_log_dir: p.get("metadata.log.dir").map(std::path::PathBuf::from),
            snapshot_interval_records: p.long(
                "metadata.log.max.snapshot.interval.records",
                defaults.snapshot_interval_records as i64,
                1,
            )? as u64,
            offsets_topic_replication_factor: i16::try_from(replication)
                .map_err(|_| p.bad("offsets.topic.replication.factor", "at most 32767"))?,
        })
    }
}

fn parse_roles(p: &Props<'_>) -> Result<ProcessRoles, ConfigError> {
    let (mut broker, mut controller) = (false, false);
    for role in p.list("process.roles") {
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            _ => return Err(p.bad("process.roles", "a list of the roles broker and controller")),
        }
    }
    if !broker && !controller {
        (broker, controller) = (true, true);
    }
    Ok(ProcessRoles { broker, controller })
}

/// `controller.quorum.voters`: `id@host:port` entries.
fn parse_voters(p: &Props<'_>) -> Result<BTreeMap<i32, String>, ConfigError> {
    let mut voters = BTreeMap::new();
    for voter in p.list("controller.quorum.voters") {
        let parsed = voter.split_once('@').and_then(|(id, addr)| {
            let (host, port) = addr.rsplit_once(':')?;
            port.parse::<u16>().ok()?;
            let id = id.trim().parse::<i32>().ok().filter(|id| *id >= 0)?;
            (!host.is_empty()).then(|| (id, addr.trim().to_string()))
        });
        let (id, addr) = parsed.ok_or_else(|| {
            p.bad(
                "controller.quorum.voters",
                "voters written as id@host:port, e.g. 1@localhost:9093",
            )
        })?;
        if voters.insert(id, addr).is_some() {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.voters".into(),
                message: format!("voter {id} is listed twice"),
            });
        }
    }
    Ok(voters)
}

//! The transaction coordinator's broker-level keys (`transaction.*`, `transactional.id.*`),
//! with Kafka's defaults.

use super::{ConfigError, Props};

/// Every key [`TransactionConfig`] reads; the broker knows these besides `BROKER_CONFIG_KEYS`.
pub(super) const TRANSACTION_CONFIG_KEYS: &[&str] = &[
    "transactional.id.expiration.ms",
    "transaction.max.timeout.ms",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "transaction.partition.verification.enable",
];

/// How transactions behave. Field docs name the Kafka key and its default.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionConfig {
    /// `transactional.id.expiration.ms` (7 days): a transactional id idle this long (no
    /// transaction in flight) is forgotten, so abandoned ids do not pile up.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.max.timeout.ms` (900000): the longest `transaction.timeout.ms` a producer
    /// may ask for, so a stuck producer cannot block `read_committed` consumers for long.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`; a
    /// transactional id lives in partition `abs(hash(id)) % this`.
    pub log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3), capped at the live brokers.
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2), capped at the replication factor.
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (100 MiB): kept small so compaction runs often.
    pub log_segment_bytes: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often
    /// transactions past their timeout are looked for and aborted.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000): how often
    /// expired transactional ids are removed.
    pub remove_expired_interval_ms: i64,
    /// `transaction.partition.verification.enable` (true): partition leaders check with the
    /// coordinator before a transactional batch opens a transaction (KIP-890 part 1).
    pub partition_verification_enable: bool,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            transactional_id_expiration_ms: 604_800_000,
            max_timeout_ms: 900_000,
            log_num_partitions: 50,
            log_replication_factor: 3,
            log_min_isr: 2,
            log_segment_bytes: 100 << 20,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            partition_verification_enable: true,
        }
    }
}

impl TransactionConfig {
    /// Reads the transaction keys that were set, defaulting the rest.
    pub(super) fn parse(p: &Props<'_>) -> Result<TransactionConfig, ConfigError> {
        let d = TransactionConfig::default();
        let replication_factor = p.int(
            "transaction.state.log.replication.factor",
            i32::from(d.log_replication_factor),
            1,
        )?;
        let log_replication_factor = i16::try_from(replication_factor).map_err(|_| {
            p.bad(
                "transaction.state.log.replication.factor",
                "a replication factor up to 32767",
            )
        })?;
        Ok(TransactionConfig {
            transactional_id_expiration_ms: p.long(
                "transactional.id.expiration.ms",
                d.transactional_id_expiration_ms,
                1,
            )?,
            max_timeout_ms: p.int("transaction.max.timeout.ms", d.max_timeout_ms, 1)?,
            log_num_partitions: p.int(
                "transaction.state.log.num.partitions",
                d.log_num_partitions,
                1,
            )?,
            log_replication_factor,
            log_min_isr: p.int("transaction.state.log.min.isr", d.log_min_isr, 1)?,
            log_segment_bytes: p.size("transaction.state.log.segment.bytes", 100 << 20, 1)?,
            abort_timed_out_interval_ms: p.long(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                d.abort_timed_out_interval_ms,
                1,
            )?,
            remove_expired_interval_ms: p.long(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                d.remove_expired_interval_ms,
                1,
            )?,
            partition_verification_enable: p.boolean(
                "transaction.partition.verification.enable",
                d.partition_verification_enable,
            )?,
        })
    }
}

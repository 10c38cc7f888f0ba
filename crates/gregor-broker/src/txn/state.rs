//! `TransactionStateManager`: the transactional ids this broker coordinates, kept in memory
//! and in `__transaction_state`.
//!
//! A transactional id lives in one partition of `__transaction_state` (by Kafka's hash of the
//! id). This broker coordinates the ids of the partitions it leads: when it becomes leader it
//! replays the partition (latest record per id wins, a tombstone removes), and when leadership
//! moves away it drops them. The coordinator epoch of a partition is its leader epoch, so
//! markers of a deposed coordinator are refused by the partition leaders.

use std::collections::HashMap;
use std::sync::Arc;

use gregor_protocol::ErrorCode;
use parking_lot::Mutex;

use super::metadata::TransactionMetadata;
use super::records::{self, TransactionLogValue};
use crate::config::TransactionConfig;
use crate::group::store::partition_for;
use crate::internal_topic::{
    InternalRecord, InternalTopic, InternalTopicError, InternalTopicSpec, Replayed,
};
use crate::replica::ReplicaManager;
use crate::topics::TopicRegistry;

/// Kafka's name for the transaction log.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// A transactional id's metadata, locked while a change to it is written.
pub type SharedMetadata = Arc<Mutex<TransactionMetadata>>;

/// Whether a partition of the log is being loaded or served, and in which coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    Loading,
    Loaded { coordinator_epoch: i32 },
}

/// Keeps the coordinated transactional ids; see the module docs.
pub struct TransactionStateManager {
    log: InternalTopic,
    txns: Mutex<HashMap<String, SharedMetadata>>,
    owned: Mutex<HashMap<i32, Ownership>>,
}

impl TransactionStateManager {
    /// The manager of `__transaction_state` as `config` describes it.
    pub fn new(
        config: &TransactionConfig,
        replicas: Arc<ReplicaManager>,
        topics: Arc<TopicRegistry>,
    ) -> TransactionStateManager {
        let spec = InternalTopicSpec {
            name: TRANSACTION_STATE_TOPIC,
            partitions: config.log_num_partitions,
            replication_factor: config.log_replication_factor,
            min_insync_replicas: Some(config.log_min_isr),
            segment_bytes: config.log_segment_bytes,
            // As Kafka creates it: a transaction's state must never come from a replica that
            // missed acknowledged writes, and its small records are not worth compressing.
            extra_configs: &[
                ("unclean.leader.election.enable", "false"),
                ("compression.type", "uncompressed"),
            ],
        };
        TransactionStateManager {
            log: InternalTopic::new(spec, replicas, topics),
            txns: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
        }
    }

    /// The partition of `__transaction_state` that holds `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.log.partitions())
    }

    /// Creates the log if needed (first FindCoordinator or InitProducerId, as Kafka does).
    pub fn ensure_created(&self) -> Result<(), InternalTopicError> {
        self.log.ensure_created()
    }

    /// The coordinator epoch for `transactional_id` if this broker coordinates it now:
    /// `NOT_COORDINATOR` when another broker leads its partition,
    /// `COORDINATOR_LOAD_IN_PROGRESS` while the partition loads.
    pub fn coordinator_epoch(&self, transactional_id: &str) -> Result<i32, ErrorCode> {
        self.partition_epoch(self.partition_for(transactional_id))
    }

    pub(super) fn partition_epoch(&self, partition: i32) -> Result<i32, ErrorCode> {
        match self.owned.lock().get(&partition) {
            Some(Ownership::Loaded { coordinator_epoch }) => Ok(*coordinator_epoch),
            Some(Ownership::Loading) => Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(ErrorCode::NOT_COORDINATOR),
        }
    }

    /// Whether a partition is being loaded (ListTransactions cannot answer completely).
    pub fn is_loading(&self) -> bool {
        self.owned.lock().values().any(|o| *o == Ownership::Loading)
    }

    /// Whether this broker still coordinates `transactional_id` in `coordinator_epoch`.
    pub fn still_coordinates(&self, transactional_id: &str, coordinator_epoch: i32) -> bool {
        self.coordinator_epoch(transactional_id) == Ok(coordinator_epoch)
    }

    /// The metadata of `transactional_id`, if known here.
    pub fn get(&self, transactional_id: &str) -> Option<SharedMetadata> {
        self.txns.lock().get(transactional_id).cloned()
    }

    /// The metadata of `transactional_id`, created with `create` if unknown.
    pub fn get_or_insert(
        &self,
        transactional_id: &str,
        create: impl FnOnce() -> TransactionMetadata,
    ) -> SharedMetadata {
        Arc::clone(
            self.txns
                .lock()
                .entry(transactional_id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(create()))),
        )
    }

    /// Forgets `transactional_id` (expired and tombstoned).
    pub fn remove(&self, transactional_id: &str) {
        self.txns.lock().remove(transactional_id);
    }

    /// Every coordinated transactional id whose partition is loaded.
    pub fn loaded(&self) -> Vec<SharedMetadata> {
        let owned = self.owned.lock().clone();
        let partitions = self.log.partitions();
        self.txns
            .lock()
            .iter()
            .filter(|(id, _)| {
                matches!(
                    owned.get(&partition_for(id, partitions)),
                    Some(Ownership::Loaded { .. })
                )
            })
            .map(|(_, m)| Arc::clone(m))
            .collect()
    }

    /// Writes `metadata` (or a tombstone, `None`) for `transactional_id` to its partition,
    /// replicated to every in-sync replica. Blocks: call from a blocking thread.
    pub fn write(
        &self,
        transactional_id: &str,
        metadata: Option<&TransactionMetadata>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let failed = |e: &dyn std::fmt::Display| {
            tracing::warn!(transactional_id, error = %e, "writing transaction state failed");
        };
        let key = records::encode_key(transactional_id).map_err(|e| {
            failed(&e);
            ErrorCode::INVALID_REQUEST
        })?;
        let value = match metadata {
            Some(m) => Some(m.to_record().encode().map_err(|e| {
                failed(&e);
                ErrorCode::INVALID_REQUEST
            })?),
            None => None,
        };
        self.log
            .append(
                self.partition_for(transactional_id),
                &[InternalRecord { key, value }],
                None,
                now,
            )
            .map_err(|e| {
                failed(&e);
                e.error_code()
            })?;
        Ok(())
    }

    /// Starts coordinating `partition`: replays it and returns the coordinator epoch and the
    /// loaded ids (the caller completes those left in a Prepare state). File I/O: call from a
    /// blocking thread.
    pub fn load_partition(
        &self,
        partition: i32,
    ) -> Result<(i32, Vec<SharedMetadata>), InternalTopicError> {
        self.owned.lock().insert(partition, Ownership::Loading);
        let mut loaded: HashMap<String, TransactionMetadata> = HashMap::new();
        let replayed = self.log.replay(partition, |record| {
            let Replayed::Data { key, value, .. } = record else {
                return;
            };
            let id = match records::decode_key(key) {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(partition, error = %e, "skipping an undecodable key");
                    return;
                }
            };
            match value.map(TransactionLogValue::decode) {
                None => {
                    loaded.remove(&id);
                }
                Some(Ok(v)) => {
                    loaded.insert(id.clone(), TransactionMetadata::from_record(&id, &v));
                }
                Some(Err(e)) => {
                    tracing::warn!(
                        partition,
                        transactional_id = id,
                        error = %e,
                        "skipping an undecodable value"
                    )
                }
            }
        });
        if let Err(e) = replayed {
            self.owned.lock().remove(&partition);
            return Err(e);
        }
        let Some(coordinator_epoch) = self.log.leader_epoch(partition) else {
            self.owned.lock().remove(&partition);
            return Err(InternalTopicError::NotLeader {
                topic: TRANSACTION_STATE_TOPIC,
                partition,
            });
        };
        let shared: Vec<SharedMetadata> = {
            let mut txns = self.txns.lock();
            loaded
                .into_iter()
                .filter(|(_, m)| m.state != super::TransactionState::Dead)
                .map(|(id, m)| {
                    let m = Arc::new(Mutex::new(m));
                    txns.insert(id, Arc::clone(&m));
                    m
                })
                .collect()
        };
        self.owned
            .lock()
            .insert(partition, Ownership::Loaded { coordinator_epoch });
        Ok((coordinator_epoch, shared))
    }

    /// Stops coordinating `partition` (leadership moved away); returns whether it was.
    pub fn unload_partition(&self, partition: i32) -> bool {
        if self.owned.lock().remove(&partition).is_none() {
            return false;
        }
        let partitions = self.log.partitions();
        self.txns
            .lock()
            .retain(|id, _| partition_for(id, partitions) != partition);
        true
    }
}

//! The `TransactionCoordinator`: producer ids, transactional ids and their transactions
//! (Kafka's exactly-once: KIP-98, with KIP-360's epoch bumps and KIP-890 part 1's
//! verification).
//!
//! Every transactional id lives in one partition of `__transaction_state`; the broker leading
//! that partition coordinates it ([`state::TransactionStateManager`]). Each change of a
//! transaction is written there, replicated like an `acks=all` produce, before it takes effect
//! and before the producer hears of it, so a coordinator elected from the ISR continues where
//! the old one stopped. Ending a transaction is two-phase: PrepareCommit/PrepareAbort is
//! written (and answered), then the markers go to every partition of the transaction
//! ([`markers::TransactionMarkerChannelManager`]), then CompleteCommit/CompleteAbort is
//! written. A coordinator that loads a partition with a transaction still in a Prepare state
//! sends its markers again and completes it.
//!
//! Each transactional id has its own lock, held across the write of its change, so one id's
//! changes reach the log in order while other ids proceed in parallel. Methods that write do
//! file I/O and wait for replication: call them from blocking threads. Deadlines (transaction
//! timeouts, id expiration) are driven by [`TransactionCoordinator::tick`].

#[cfg(test)]
mod coordinator_tests;
pub mod markers;
pub mod metadata;
pub mod producer_id;
pub mod records;
pub mod state;
#[cfg(test)]
mod tests;
pub mod verification;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gregor_log::TopicPartition;
use gregor_protocol::ErrorCode;
use parking_lot::Mutex;

use crate::config::TransactionConfig;
use crate::now_ms;
use crate::replica::Role;
use markers::{TransactionMarkerChannelManager, TxnMarkers};
pub use metadata::{
    InitRequest, InitTransition, TransactionMetadata, TransactionResult, TransactionState,
};
use producer_id::ProducerIdManager;
use state::{SharedMetadata, TRANSACTION_STATE_TOPIC, TransactionStateManager};

/// How long a failed write of a transaction's completion waits before it is tried again.
const COMPLETE_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The coordinator of every transactional id this broker leads the log partition of.
pub struct TransactionCoordinator {
    config: TransactionConfig,
    state: TransactionStateManager,
    producer_ids: ProducerIdManager,
    markers: TransactionMarkerChannelManager,
    /// Where marker sends run.
    runtime: tokio::runtime::Handle,
    next_abort_check: Mutex<i64>,
    next_expiry_check: Mutex<i64>,
    stopping: AtomicBool,
}

impl TransactionCoordinator {
    /// A coordinator keeping its state in `state`, handing out ids from `producer_ids` and
    /// ending transactions through `markers`. Must be called within the broker's runtime.
    pub fn new(
        config: TransactionConfig,
        state: TransactionStateManager,
        producer_ids: ProducerIdManager,
        markers: TransactionMarkerChannelManager,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            state,
            producer_ids,
            markers,
            runtime: tokio::runtime::Handle::current(),
            next_abort_check: Mutex::new(0),
            next_expiry_check: Mutex::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Follows leadership changes of `__transaction_state` partitions: a partition led here
    /// is loaded (and its prepared transactions completed), one no longer led here is
    /// dropped. File I/O: call from a blocking thread.
    pub fn on_roles(self: &Arc<Self>, changes: &[(TopicPartition, Role)]) {
        for (tp, role) in changes
            .iter()
            .filter(|(tp, _)| tp.topic == TRANSACTION_STATE_TOPIC)
        {
            if *role != Role::Leader {
                if self.state.unload_partition(tp.partition) {
                    tracing::info!(
                        partition = tp.partition,
                        "no longer coordinating the transactions of {TRANSACTION_STATE_TOPIC}-{}",
                        tp.partition
                    );
                }
                continue;
            }
            match self.state.load_partition(tp.partition) {
                Ok((coordinator_epoch, loaded)) => {
                    tracing::info!(
                        partition = tp.partition,
                        coordinator_epoch,
                        transactional_ids = loaded.len(),
                        "now coordinating the transactions of {TRANSACTION_STATE_TOPIC}-{}",
                        tp.partition
                    );
                    for txn in loaded {
                        let m = txn.lock();
                        if m.state.is_prepared() {
                            self.send_markers(&m, coordinator_epoch);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        partition = tp.partition,
                        error = %e,
                        "loading transactions failed"
                    )
                }
            }
        }
    }

    /// FindCoordinator for a transactional id: creates `__transaction_state` on first use,
    /// as Kafka does, and returns the partition whose leader coordinates the id.
    pub fn find_coordinator(&self, transactional_id: &str) -> Result<TopicPartition, ErrorCode> {
        self.state.ensure_created().map_err(|e| {
            tracing::warn!(error = %e, "transaction coordinator unavailable");
            e.error_code()
        })?;
        Ok(TopicPartition::new(
            TRANSACTION_STATE_TOPIC,
            self.state.partition_for(transactional_id),
        ))
    }

    /// InitProducerId: a fresh producer id for an idempotent producer (no transactional id),
    /// else the transactional id's producer id with a new epoch, fencing older instances.
    /// `Err(CONCURRENT_TRANSACTIONS)` while a transaction of the id is still being ended
    /// (including one this call aborted to fence its producer): the producer retries.
    pub fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: Option<&str>,
        request: InitRequest,
        now: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        let Some(id) = transactional_id else {
            let producer_id = self.generate_producer_id()?;
            return Ok((producer_id, 0));
        };
        if id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        if request.timeout_ms <= 0 || request.timeout_ms > self.config.max_timeout_ms {
            return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        let coordinator_epoch = self.state.coordinator_epoch(id).inspect_err(|code| {
            // A producer that skipped FindCoordinator still gets the log created, as in Kafka;
            // it is told to look for its coordinator either way.
            if *code == ErrorCode::NOT_COORDINATOR
                && let Err(e) = self.state.ensure_created()
            {
                tracing::warn!(error = %e, "transaction coordinator unavailable");
            }
        })?;
        let txn = match self.state.get(id) {
            Some(txn) => txn,
            None => {
                let producer_id = self.generate_producer_id()?;
                self.state.get_or_insert(id, || {
                    TransactionMetadata::new(id, producer_id, request.timeout_ms, now)
                })
            }
        };
        let mut m = txn.lock();
        match m.prepare_init(request, || self.generate_producer_id(), now)? {
            InitTransition::Ready(next) => {
                self.state.write(id, Some(&next), now)?;
                *m = next;
                Ok((m.producer_id, m.producer_epoch))
            }
            InitTransition::FenceAndAbort(next) => {
                self.state.write(id, Some(&next), now)?;
                *m = next;
                tracing::info!(
                    transactional_id = id,
                    producer_id = m.producer_id,
                    epoch = m.producer_epoch,
                    "fenced the previous producer: aborting its transaction"
                );
                self.send_markers(&m, coordinator_epoch);
                Err(ErrorCode::CONCURRENT_TRANSACTIONS)
            }
        }
    }

    fn generate_producer_id(&self) -> Result<i64, ErrorCode> {
        self.producer_ids.generate().map_err(|e| {
            tracing::warn!(error = %e, "no producer id");
            e.error_code()
        })
    }

    /// The metadata of a transactional id coordinated here, for a request of its producer.
    fn coordinated(&self, transactional_id: &str) -> Result<(i32, SharedMetadata), ErrorCode> {
        let coordinator_epoch = self.state.coordinator_epoch(transactional_id)?;
        let txn = self
            .state
            .get(transactional_id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        Ok((coordinator_epoch, txn))
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): adds `partitions` to the producer's transaction, starting it if needed.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<(String, i32)>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let (_, txn) = self.coordinated(transactional_id)?;
        let mut m = txn.lock();
        if let Some(next) =
            m.prepare_add_partitions(producer_id, producer_epoch, partitions, now)?
        {
            self.state.write(transactional_id, Some(&next), now)?;
            *m = next;
        }
        Ok(())
    }

    /// KIP-890 verification for a partition leader (AddPartitionsToTxn v4+ `verify_only`): the
    /// error of each partition, `NONE` where it is in the producer's ongoing transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<ErrorCode> {
        match self.coordinated(transactional_id) {
            Ok((_, txn)) => {
                let m = txn.lock();
                partitions
                    .iter()
                    .map(|tp| m.verify_partition(producer_id, producer_epoch, tp))
                    .collect()
            }
            Err(code) => vec![code; partitions.len()],
        }
    }

    /// EndTxn: writes PrepareCommit/PrepareAbort and answers; the markers and the completion
    /// follow in the background. A retry after completion with the same result succeeds.
    pub fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        now: i64,
    ) -> Result<(), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        let (coordinator_epoch, txn) = self.coordinated(transactional_id)?;
        let mut m = txn.lock();
        if let Some(next) = m.prepare_end(producer_id, producer_epoch, result, now)? {
            self.state.write(transactional_id, Some(&next), now)?;
            *m = next;
            self.send_markers(&m, coordinator_epoch);
        }
        Ok(())
    }

    /// DescribeTransactions: the metadata of `transactional_id`, `TRANSACTIONAL_ID_NOT_FOUND`
    /// if this coordinator does not know it.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionMetadata, ErrorCode> {
        self.state.coordinator_epoch(transactional_id)?;
        self.state
            .get(transactional_id)
            .map(|txn| txn.lock().clone())
            .ok_or(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND)
    }

    /// ListTransactions: every transactional id coordinated here;
    /// `COORDINATOR_LOAD_IN_PROGRESS` while a partition loads.
    pub fn list(&self) -> Result<Vec<TransactionMetadata>, ErrorCode> {
        if self.state.is_loading() {
            return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        Ok(self
            .state
            .loaded()
            .iter()
            .map(|txn| txn.lock().clone())
            .collect())
    }

    /// Periodic work: aborts transactions past their timeout (every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`) and removes expired
    /// transactional ids (every `transaction.remove.expired.transaction.cleanup.interval.ms`).
    /// File I/O: call from a blocking thread.
    pub fn tick(self: &Arc<Self>, now: i64) {
        if due(
            &self.next_abort_check,
            now,
            self.config.abort_timed_out_interval_ms,
        ) {
            self.abort_timed_out(now);
        }
        if due(
            &self.next_expiry_check,
            now,
            self.config.remove_expired_interval_ms,
        ) {
            self.remove_expired(now);
        }
    }

    fn abort_timed_out(self: &Arc<Self>, now: i64) {
        for txn in self.state.loaded() {
            let mut m = txn.lock();
            let Some(next) = m.prepare_timeout_abort(now) else {
                continue;
            };
            let Ok(coordinator_epoch) = self.state.coordinator_epoch(&m.transactional_id) else {
                continue;
            };
            if self
                .state
                .write(&m.transactional_id, Some(&next), now)
                .is_ok()
            {
                tracing::info!(
                    transactional_id = m.transactional_id,
                    timeout_ms = m.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                *m = next;
                self.send_markers(&m, coordinator_epoch);
            }
        }
    }

    fn remove_expired(&self, now: i64) {
        for txn in self.state.loaded() {
            let mut m = txn.lock();
            if !m.is_expired(now, self.config.transactional_id_expiration_ms) {
                continue;
            }
            let id = m.transactional_id.clone();
            if self.state.write(&id, None, now).is_ok() {
                tracing::info!(transactional_id = id, "transactional id expired");
                m.state = TransactionState::Dead;
                self.state.remove(&id);
            }
        }
    }

    /// Sends the markers of `m` (in a Prepare state) in the background, then completes it.
    fn send_markers(self: &Arc<Self>, m: &TransactionMetadata, coordinator_epoch: i32) {
        let Some(result) = m.pending_result() else {
            return;
        };
        let markers = TxnMarkers {
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            result,
            coordinator_epoch,
            partitions: m.partitions.clone(),
        };
        let id = m.transactional_id.clone();
        let me = Arc::clone(self);
        self.runtime.spawn(async move {
            let wanted = || me.is_wanted(&id, coordinator_epoch);
            if !me.markers.write_markers(&markers, wanted).await {
                return;
            }
            let done = Arc::clone(&me);
            let _ = tokio::task::spawn_blocking(move || done.complete(&id, &markers)).await;
        });
    }

    fn is_wanted(&self, transactional_id: &str, coordinator_epoch: i32) -> bool {
        !self.stopping.load(Ordering::Acquire)
            && self
                .state
                .still_coordinates(transactional_id, coordinator_epoch)
    }

    /// Writes CompleteCommit/CompleteAbort once every marker of the transaction is in; retries
    /// while this broker still coordinates the transaction.
    fn complete(&self, transactional_id: &str, markers: &TxnMarkers) {
        while self.is_wanted(transactional_id, markers.coordinator_epoch) {
            let Some(txn) = self.state.get(transactional_id) else {
                return;
            };
            let mut m = txn.lock();
            if m.producer_id != markers.producer_id
                || m.producer_epoch != markers.producer_epoch
                || m.pending_result() != Some(markers.result)
            {
                return;
            }
            let Some(next) = m.prepare_complete(now_ms()) else {
                return;
            };
            match self
                .state
                .write(transactional_id, Some(&next), next.last_update_ms)
            {
                Ok(()) => {
                    *m = next;
                    return;
                }
                Err(ErrorCode::NOT_COORDINATOR) => return,
                Err(_) => {
                    drop(m);
                    std::thread::sleep(COMPLETE_RETRY_BACKOFF);
                }
            }
        }
    }

    /// Stops retrying marker sends and completions (broker shutdown).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }
}

/// Whether a periodic check is due at `now`; schedules the next one `interval_ms` later.
fn due(next: &Mutex<i64>, now: i64, interval_ms: i64) -> bool {
    let mut next = next.lock();
    if now < *next {
        return false;
    }
    *next = now.saturating_add(interval_ms);
    true
}

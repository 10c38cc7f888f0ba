//! `TransactionMetadata`: one transactional id's producer and transaction, and the state
//! machine its requests drive.
//!
//! Every change is *prepared* first: a method returns the metadata as it will be, the
//! coordinator writes that to `__transaction_state` and only then makes it current (and
//! answers), as Kafka's `prepareTransitionTo`/`completeTransitionTo` do. The methods here do no
//! I/O and take the clock as an argument, so the whole state machine is unit-tested.

use std::collections::BTreeSet;

use gregor_protocol::ErrorCode;

use super::records::{TopicPartitions, TransactionLogValue};

/// A producer epoch of "none" (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// A producer id of "none" (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;

/// A transaction's state, with Kafka's numbering (stored in `TransactionLogValue`) and names
/// (DescribeTransactions, ListTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction in progress (after InitProducerId).
    Empty,
    /// Partitions were added: the producer is writing.
    Ongoing,
    /// EndTxn(commit) was written: markers are being sent.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence was written: markers are being sent.
    PrepareAbort,
    /// Every partition has its commit marker.
    CompleteCommit,
    /// Every partition has its abort marker.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// A new producer instance fences an ongoing transaction: about to abort it. Never
    /// written (the abort is written as PrepareAbort with the bumped epoch).
    PrepareEpochFence,
}

impl TransactionState {
    /// Every state, in Kafka's numbering.
    pub const ALL: [TransactionState; 8] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
        TransactionState::Dead,
        TransactionState::PrepareEpochFence,
    ];

    /// Kafka's id of the state (`TransactionState.id`).
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's id `id`.
    pub fn from_id(id: i8) -> Option<TransactionState> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (what admin clients show and filter on).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether markers are (to be) sent for the transaction.
    pub fn is_prepared(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        )
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionResult {
    /// Its writes become visible to `read_committed` consumers.
    Commit,
    /// Its writes are skipped by `read_committed` consumers.
    Abort,
}

impl TransactionResult {
    /// The state that is written before the markers are sent.
    fn prepare_state(self) -> TransactionState {
        match self {
            TransactionResult::Commit => TransactionState::PrepareCommit,
            TransactionResult::Abort => TransactionState::PrepareAbort,
        }
    }

    /// The state that is written once every marker is in.
    pub fn complete_state(self) -> TransactionState {
        match self {
            TransactionResult::Commit => TransactionState::CompleteCommit,
            TransactionResult::Abort => TransactionState::CompleteAbort,
        }
    }
}

/// What InitProducerId asks besides the transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRequest {
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// KIP-360: the producer id and epoch the producer had, when it re-initialises.
    pub expected: Option<(i64, i16)>,
}

/// What InitProducerId does once validated.
#[derive(Debug, Clone, PartialEq)]
pub enum InitTransition {
    /// Write this Empty metadata, then answer with its producer id and epoch.
    Ready(TransactionMetadata),
    /// An ongoing transaction is fenced: write this PrepareAbort (with the bumped epoch),
    /// send its abort markers, and tell the producer `CONCURRENT_TRANSACTIONS` to retry.
    FenceAndAbort(TransactionMetadata),
}

/// A transactional id's producer and its current transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionMetadata {
    /// The producer's `transactional.id`.
    pub transactional_id: String,
    /// Producer id in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), or -1.
    pub previous_producer_id: i64,
    /// Epoch of `producer_id`.
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a producer retrying InitProducerId after a lost
    /// answer (KIP-360) is recognised; -1 when none (not stored in the log).
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// The state.
    pub state: TransactionState,
    /// Partitions the transaction wrote to (or will, once added).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started (-1 when none).
    pub start_ms: i64,
    /// Last change.
    pub last_update_ms: i64,
}

/// Whether another epoch can be handed out for the producer id (Kafka keeps the last one for
/// fencing, so rotation happens one epoch early).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TransactionMetadata {
    /// A transactional id seen for the first time: `producer_id`, no epoch yet, Empty.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
        }
    }

    /// The metadata a log record describes.
    pub fn from_record(transactional_id: &str, value: &TransactionLogValue) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: value.transaction_timeout_ms,
            state: value.state,
            partitions: value
                .partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
                .collect(),
            start_ms: value.start_timestamp_ms,
            last_update_ms: value.last_update_timestamp_ms,
        }
    }

    /// The log record of this metadata.
    pub fn to_record(&self) -> TransactionLogValue {
        let mut partitions: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in &self.partitions {
            match partitions.last_mut() {
                Some(t) if &t.topic == topic => t.partitions.push(*partition),
                _ => partitions.push(TopicPartitions {
                    topic: topic.clone(),
                    partitions: vec![*partition],
                }),
            }
        }
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_ms,
            start_timestamp_ms: self.start_ms,
            client_transaction_version: 0,
        }
    }

    fn transit(&self, state: TransactionState, now: i64) -> TransactionMetadata {
        let mut next = self.clone();
        next.state = state;
        next.last_update_ms = now;
        next
    }

    /// InitProducerId for this transactional id. `new_producer_id` is called only when the
    /// epoch is exhausted and the producer id must rotate.
    pub fn prepare_init(
        &self,
        request: InitRequest,
        new_producer_id: impl FnOnce() -> Result<i64, ErrorCode>,
        now: i64,
    ) -> Result<InitTransition, ErrorCode> {
        if let Some((pid, epoch)) = request.expected {
            let known = self.producer_epoch == NO_PRODUCER_EPOCH
                || pid == self.producer_id
                || (pid == self.previous_producer_id && is_epoch_exhausted(epoch));
            if !known {
                return Err(ErrorCode::PRODUCER_FENCED);
            }
        }
        match self.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence
            | TransactionState::Dead => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            TransactionState::Ongoing => {
                // A new instance of the producer: fence the old one and abort what it was
                // doing.
                Ok(InitTransition::FenceAndAbort(
                    self.prepare_fenced_abort(now),
                ))
            }
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort => {
                let mut next = self.transit(TransactionState::Empty, now);
                next.timeout_ms = request.timeout_ms;
                next.partitions.clear();
                next.start_ms = -1;
                let expected_epoch = request.expected.map(|(_, e)| e);
                if is_epoch_exhausted(self.producer_epoch)
                    && expected_epoch.is_none_or(|e| e == self.producer_epoch)
                {
                    next.previous_producer_id = self.producer_id;
                    next.producer_id = new_producer_id()?;
                    next.producer_epoch = 0;
                    next.last_producer_epoch = if expected_epoch.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    return Ok(InitTransition::Ready(next));
                }
                match expected_epoch {
                    None => {
                        next.producer_epoch = self.producer_epoch + 1;
                        next.last_producer_epoch = NO_PRODUCER_EPOCH;
                    }
                    Some(e)
                        if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch =>
                    {
                        next.producer_epoch = self.producer_epoch + 1;
                        next.last_producer_epoch = self.producer_epoch;
                    }
                    // A retry whose answer was lost: hand out the same epoch again.
                    Some(e) if e == self.last_producer_epoch => {}
                    Some(_) => return Err(ErrorCode::PRODUCER_FENCED),
                }
                Ok(InitTransition::Ready(next))
            }
        }
    }

    /// Checks that a request comes from the producer in use: `INVALID_PRODUCER_ID_MAPPING`
    /// for another producer id, `PRODUCER_FENCED` for another epoch.
    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), ErrorCode> {
        if producer_id != self.producer_id {
            Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
        } else if producer_epoch != self.producer_epoch {
            Err(ErrorCode::PRODUCER_FENCED)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is already in the
    /// ongoing transaction (nothing to write), else the Ongoing metadata to write.
    pub fn prepare_add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<(String, i32)>,
        now: i64,
    ) -> Result<Option<TransactionMetadata>, ErrorCode> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            TransactionState::Dead => Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
            TransactionState::Ongoing if partitions.is_subset(&self.partitions) => Ok(None),
            state => {
                let mut next = self.transit(TransactionState::Ongoing, now);
                if state != TransactionState::Ongoing {
                    next.partitions.clear();
                    next.start_ms = now;
                }
                next.partitions.extend(partitions.iter().cloned());
                Ok(Some(next))
            }
        }
    }

    /// KIP-890 verification (AddPartitionsToTxn v4+ `verify_only`): whether `partition` is
    /// in this producer's ongoing transaction.
    pub fn verify_partition(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
    ) -> ErrorCode {
        if let Err(code) = self.check_producer(producer_id, producer_epoch) {
            return code;
        }
        match self.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence => ErrorCode::CONCURRENT_TRANSACTIONS,
            TransactionState::Ongoing if self.partitions.contains(partition) => ErrorCode::NONE,
            _ => ErrorCode::INVALID_TXN_STATE,
        }
    }

    /// EndTxn from the producer: `Ok(None)` for a retry of a transaction already completed
    /// with the same result, else the Prepare metadata to write before sending markers.
    pub fn prepare_end(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        now: i64,
    ) -> Result<Option<TransactionMetadata>, ErrorCode> {
        self.check_producer(producer_id, producer_epoch)?;
        use TransactionResult::{Abort, Commit};
        use TransactionState::*;
        match (self.state, result) {
            (Ongoing, _) => Ok(Some(self.transit(result.prepare_state(), now))),
            (CompleteCommit, Commit) | (CompleteAbort, Abort) => Ok(None),
            (PrepareCommit, Commit) | (PrepareAbort, Abort) | (PrepareEpochFence, _) => {
                Err(ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            (Dead, _) => Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
            _ => Err(ErrorCode::INVALID_TXN_STATE),
        }
    }

    /// The coordinator aborts a transaction that outlived its timeout: the epoch is bumped so
    /// the producer, which may still be writing, is fenced.
    pub fn prepare_timeout_abort(&self, now: i64) -> Option<TransactionMetadata> {
        if !self.is_timed_out(now) {
            return None;
        }
        Some(self.prepare_fenced_abort(now))
    }

    /// PrepareAbort with the epoch bumped, so the producer that ran the transaction is
    /// fenced. The bump may take the last epoch (`i16::MAX`): the next InitProducerId then
    /// rotates the producer id, as Kafka's `prepareFenceProducerEpoch` does.
    fn prepare_fenced_abort(&self, now: i64) -> TransactionMetadata {
        let mut next = self.transit(TransactionState::PrepareAbort, now);
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.last_producer_epoch = NO_PRODUCER_EPOCH;
        next
    }

    /// Whether the transaction is Ongoing for longer than its timeout.
    pub fn is_timed_out(&self, now: i64) -> bool {
        self.state == TransactionState::Ongoing
            && self.start_ms >= 0
            && now.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }

    /// The completed metadata once every marker of a Prepare state is in.
    pub fn prepare_complete(&self, now: i64) -> Option<TransactionMetadata> {
        let result = match self.state {
            TransactionState::PrepareCommit => TransactionResult::Commit,
            TransactionState::PrepareAbort => TransactionResult::Abort,
            _ => return None,
        };
        let mut next = self.transit(result.complete_state(), now);
        next.partitions.clear();
        Some(next)
    }

    /// Whether the transactional id has been idle for `expiration_ms` with no transaction in
    /// flight, and can be removed (`transactional.id.expiration.ms`).
    pub fn is_expired(&self, now: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        ) && now.saturating_sub(self.last_update_ms) >= expiration_ms
    }

    /// How the transaction ends, in a Prepare state.
    pub fn pending_result(&self) -> Option<TransactionResult> {
        match self.state {
            TransactionState::PrepareCommit => Some(TransactionResult::Commit),
            TransactionState::PrepareAbort => Some(TransactionResult::Abort),
            _ => None,
        }
    }
}

//! `TransactionVerifier`: KIP-890 part 1, the partition leader's defence against hanging
//! transactions.
//!
//! A transactional batch that would open a transaction in a partition (its producer has no
//! open transaction there in that epoch) is only appended once the transaction coordinator
//! confirms the partition is in the producer's ongoing transaction (AddPartitionsToTxn v4
//! with `verify_only`, or a direct call when this broker coordinates the id). Without it, a
//! produce request delayed past its transaction's abort would open a transaction no marker
//! ever ends, and every `read_committed` consumer of the partition would stall at it.
//! Refusals are answered as Kafka does: `INVALID_TXN_STATE` when the partition is not in the
//! transaction, `NOT_ENOUGH_REPLICAS` (retried by every client without a metadata refresh)
//! when the coordinator could not answer. `transaction.partition.verification.enable=false`
//! turns it off.
//!
//! Kafka also guards the window between the answer and the append (a `VerificationGuard`
//! kept in the producer state); Gregor does not, so a transaction aborted in that window of
//! microseconds can still be reopened by the verified batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gregor_log::TopicPartition;
use gregor_metadata::records::BrokerId;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::RecordBatch;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::TransactionCoordinator;
use crate::inter_broker::BrokerChannel;
use crate::replica::ReplicaManager;

/// The first AddPartitionsToTxn version with the brokers' batched, `verify_only` form.
const VERIFY_VERSION: i16 = 4;

/// Checks transactional produce requests with the coordinator; see the module docs.
pub struct TransactionVerifier {
    coordinator: Arc<TransactionCoordinator>,
    replicas: Arc<ReplicaManager>,
    node_id: BrokerId,
    channel: Arc<BrokerChannel>,
    enabled: bool,
}

/// A partition of a Produce refused before its append: its error and why.
pub type Refusals = HashMap<(String, i32), (ErrorCode, String)>;

impl TransactionVerifier {
    /// A verifier for this broker (`node_id`) asking `coordinator` directly or, for ids
    /// another broker coordinates, over `channel`; `enabled` is
    /// `transaction.partition.verification.enable`.
    pub fn new(
        coordinator: Arc<TransactionCoordinator>,
        replicas: Arc<ReplicaManager>,
        node_id: BrokerId,
        channel: Arc<BrokerChannel>,
        enabled: bool,
    ) -> TransactionVerifier {
        TransactionVerifier {
            coordinator,
            replicas,
            node_id,
            channel,
            enabled,
        }
    }

    /// The partitions of `request` that may not be appended: those opening a transaction the
    /// coordinator does not know them to be in.
    pub async fn verify_produce(self: &Arc<Self>, request: &ProduceRequest) -> Refusals {
        let mut refusals = Refusals::new();
        let Some(transactional_id) = request.transactional_id.as_ref().map(|t| t.0.to_string())
        else {
            return refusals;
        };
        if !self.enabled {
            return refusals;
        }
        let mut producer: Option<(i64, i16)> = None;
        let mut unverified = Vec::new();
        for topic in &request.topic_data {
            for p in &topic.partition_data {
                let Some(batch) = p
                    .records
                    .as_deref()
                    .and_then(|r| RecordBatch::parse(r).ok())
                else {
                    continue;
                };
                if batch.producer_id() < 0 || !batch.attributes().is_transactional() {
                    continue;
                }
                let key = (topic.name.0.to_string(), p.index);
                let this = (batch.producer_id(), batch.producer_epoch());
                if *producer.get_or_insert(this) != this {
                    refusals.insert(
                        key,
                        (
                            ErrorCode::INVALID_PRODUCER_ID_MAPPING,
                            "transactional records of more than one producer in one request".into(),
                        ),
                    );
                    continue;
                }
                if !self.in_open_transaction(&key, this) {
                    unverified.push(key);
                }
            }
        }
        let Some((producer_id, producer_epoch)) = producer else {
            return refusals;
        };
        if unverified.is_empty() {
            return refusals;
        }
        let codes = self
            .ask(&transactional_id, producer_id, producer_epoch, &unverified)
            .await;
        for (key, code) in unverified.into_iter().zip(codes) {
            let refusal = match code {
                ErrorCode::NONE => continue,
                ErrorCode::INVALID_TXN_STATE => (
                    code,
                    "Partition was not added to the transaction".to_string(),
                ),
                ErrorCode::CONCURRENT_TRANSACTIONS
                | ErrorCode::NETWORK_EXCEPTION
                | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                | ErrorCode::COORDINATOR_NOT_AVAILABLE
                | ErrorCode::NOT_COORDINATOR => (
                    ErrorCode::NOT_ENOUGH_REPLICAS,
                    format!(
                        "Unable to verify the partition has been added to the transaction. \
                         Underlying error: {}",
                        code.name()
                    ),
                ),
                other => (other, "transaction verification failed".to_string()),
            };
            refusals.insert(key, refusal);
        }
        refusals
    }

    /// Whether the producer already has an open transaction in the partition in this epoch
    /// (then its batch only continues it and needs no verification).
    fn in_open_transaction(
        &self,
        (topic, partition): &(String, i32),
        (id, epoch): (i64, i16),
    ) -> bool {
        let tp = TopicPartition::new(topic.as_str(), *partition);
        self.replicas.leader_partition(&tp).is_ok_and(|p| {
            p.log()
                .producer(id)
                .is_some_and(|e| e.epoch == epoch && e.current_txn_first_offset.is_some())
        })
    }

    /// The coordinator's answer for each partition (`NETWORK_EXCEPTION` when it cannot be
    /// reached).
    async fn ask(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<ErrorCode> {
        let all = |code: ErrorCode| vec![code; partitions.len()];
        let this = Arc::clone(self);
        let id = transactional_id.to_string();
        // Finding the coordinator may create `__transaction_state` (a controller round trip).
        let found = tokio::task::spawn_blocking(move || this.coordinator.find_coordinator(&id))
            .await
            .unwrap_or(Err(ErrorCode::COORDINATOR_NOT_AVAILABLE));
        let tp = match found {
            Ok(tp) => tp,
            Err(code) => return all(code),
        };
        let image = self.replicas.image();
        let Some(leader) = image
            .partition(&tp.topic, tp.partition)
            .filter(|p| p.has_leader())
            .map(|p| p.leader)
        else {
            return all(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        };
        if leader == self.node_id {
            let (this, id, partitions) = (
                Arc::clone(self),
                transactional_id.to_string(),
                partitions.to_vec(),
            );
            return tokio::task::spawn_blocking(move || {
                this.coordinator
                    .verify_partitions(&id, producer_id, producer_epoch, &partitions)
            })
            .await
            .unwrap_or_else(|_| all(ErrorCode::COORDINATOR_NOT_AVAILABLE));
        }
        let Some(address) = self.channel.address_of(&image, leader) else {
            return all(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        };
        match self
            .ask_remote(
                &address,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
            )
            .await
        {
            Some(codes) => codes,
            None => all(ErrorCode::NETWORK_EXCEPTION),
        }
    }

    /// AddPartitionsToTxn v4 `verify_only` to the coordinator at `address`; `None` if it
    /// could not be asked.
    async fn ask_remote(
        &self,
        address: &str,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Option<Vec<ErrorCode>> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            topics.entry(topic).or_default().push(*partition);
        }
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_string(),
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_verify_only(true)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                ),
        ]);
        let response = self
            .channel
            .send_at(address, &request, VERIFY_VERSION)
            .await
            .ok()?;
        if response.error_code != 0 {
            return Some(vec![ErrorCode(response.error_code); partitions.len()]);
        }
        let mut codes: HashMap<(String, i32), ErrorCode> = HashMap::new();
        for result in &response.results_by_transaction {
            for t in &result.topic_results {
                for p in &t.results_by_partition {
                    codes.insert(
                        (t.name.0.to_string(), p.partition_index),
                        ErrorCode(p.partition_error_code),
                    );
                }
            }
        }
        Some(
            partitions
                .iter()
                .map(|tp| {
                    codes
                        .get(tp)
                        .copied()
                        .unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR)
                })
                .collect(),
        )
    }
}

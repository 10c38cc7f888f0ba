//! Transactions and the producers behind them, for `gregor transactions` (Kafka's
//! `kafka-transactions.sh`): ListTransactions (every broker's coordinator), DescribeTransactions
//! (the transactional id's coordinator) and DescribeProducers (each partition's leader).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId,
};

use super::{Admin, ItemResults, TopicPartition, check, text};
use crate::error::{ClientError, Result};

/// A transactional id in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The `transactional.id`.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`,
    /// `CompleteAbort`, `Dead` or `PrepareEpochFence`.
    pub state: String,
    /// The broker coordinating it.
    pub coordinator_id: i32,
}

/// What a coordinator knows of a transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The broker coordinating it.
    pub coordinator_id: i32,
    /// State name, as in [`TransactionListing::state`].
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch), -1 if none is open.
    pub start_time_ms: i64,
    /// Partitions in the open transaction.
    pub partitions: Vec<TopicPartition>,
}

/// A producer a partition leader remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Its latest epoch.
    pub producer_epoch: i32,
    /// Sequence of its last batch (-1 if none).
    pub last_sequence: i32,
    /// Timestamp of its last batch.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last transaction marker (-1 if none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction in the partition, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

impl Admin {
    /// Every transactional id on every broker, optionally only those in one of `states`
    /// and, if `producer_ids` is not empty, with one of those producer ids.
    pub async fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
    ) -> Result<Vec<TransactionListing>> {
        let metadata = self.cluster.refresh(Some(&[])).await?;
        let mut ids: Vec<i32> = metadata.brokers.keys().copied().collect();
        ids.sort_unstable();
        let mut listings = BTreeMap::new();
        for id in ids {
            let response = self
                .retrying(|| async {
                    let request = ListTransactionsRequest::default()
                        .with_state_filters(states.iter().map(|s| text(s)).collect())
                        .with_producer_id_filters(
                            producer_ids.iter().map(|&p| ProducerId(p)).collect(),
                        );
                    let response = self.cluster.connection(id).await?.send(&request, 0).await?;
                    check(response.error_code, None, &format!("broker {id}"))?;
                    Ok(response)
                })
                .await?;
            for t in response.transaction_states {
                listings.insert(
                    t.transactional_id.0.to_string(),
                    TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                        coordinator_id: id,
                    },
                );
            }
        }
        Ok(listings.into_values().collect())
    }

    /// The state of each transactional id, from its coordinator. An unknown id is
    /// `TRANSACTIONAL_ID_NOT_FOUND`.
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[String],
    ) -> Result<ItemResults<TransactionDescription>> {
        let mut results = ItemResults::new();
        for id in transactional_ids {
            let described = self
                .retrying(|| async {
                    let (coordinator_id, connection) = self.cluster.find_coordinator(id, 1).await?;
                    let request = DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(text(id))]);
                    let response = connection.send(&request, 0).await?;
                    let state =
                        response
                            .transaction_states
                            .into_iter()
                            .next()
                            .ok_or_else(|| {
                                ClientError::Protocol(format!(
                                    "no description of transaction '{id}'"
                                ))
                            })?;
                    // Coordinator moves are retried; other errors are the id's result.
                    if matches!(state.error_code, 14..=16) {
                        check(state.error_code, None, id)?;
                    }
                    Ok((coordinator_id, state))
                })
                .await;
            let result = described.and_then(|(coordinator_id, s)| {
                check(s.error_code, None, &format!("transaction '{id}'"))?;
                Ok(TransactionDescription {
                    coordinator_id,
                    state: s.transaction_state.to_string(),
                    producer_id: s.producer_id.0,
                    producer_epoch: s.producer_epoch,
                    timeout_ms: s.transaction_timeout_ms,
                    start_time_ms: s.transaction_start_time_ms,
                    partitions: s
                        .topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|&p| TopicPartition::new(t.topic.0.to_string(), p))
                        })
                        .collect(),
                })
            });
            match result {
                Err(e @ ClientError::Kafka { .. }) => results.insert(id.clone(), Err(e)),
                Err(e) => return Err(e),
                Ok(d) => results.insert(id.clone(), Ok(d)),
            };
        }
        Ok(results)
    }

    /// The producers each partition's leader remembers (DescribeProducers).
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Vec<ProducerState>>> {
        let items: BTreeMap<TopicPartition, ()> =
            partitions.iter().map(|tp| (tp.clone(), ())).collect();
        self.retrying(|| async {
            let mut answers = BTreeMap::new();
            for (leader, items) in self.by_leader(&items).await? {
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (tp, ()) in items {
                    topics.entry(&tp.topic).or_default().push(tp.partition);
                }
                let request = DescribeProducersRequest::default().with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            TopicRequest::default()
                                .with_name(TopicName(text(name)))
                                .with_partition_indexes(partitions)
                        })
                        .collect(),
                );
                let response = self
                    .cluster
                    .connection(leader)
                    .await?
                    .send(&request, 0)
                    .await?;
                for t in response.topics {
                    for p in t.partitions {
                        let tp = self.answered(
                            &t.name.0,
                            p.partition_index,
                            p.error_code,
                            p.error_message.as_deref(),
                        )?;
                        let producers = p
                            .active_producers
                            .into_iter()
                            .map(|s| ProducerState {
                                producer_id: s.producer_id.0,
                                producer_epoch: s.producer_epoch,
                                last_sequence: s.last_sequence,
                                last_timestamp: s.last_timestamp,
                                coordinator_epoch: s.coordinator_epoch,
                                current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                    .then_some(s.current_txn_start_offset),
                            })
                            .collect();
                        answers.insert(tp, producers);
                    }
                }
            }
            Ok(answers)
        })
        .await
    }
}

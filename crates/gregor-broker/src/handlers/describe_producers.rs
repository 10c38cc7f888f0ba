//! `DescribeProducers` (key 61, v0): the idempotent and transactional producers a partition
//! leader remembers — id, epoch, last sequence and timestamp, the coordinator epoch of their
//! last marker and where their open transaction starts — for `kafka-transactions
//! describe-producers` and for finding hanging transactions.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use gregor_log::TopicPartition;

use crate::replica::ReplicaManager;

/// Answers from this broker's leader replicas.
pub fn handle(
    request: &DescribeProducersRequest,
    replicas: &ReplicaManager,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    let tp = TopicPartition::new(t.name.0.as_str(), index);
                    match replicas.leader_partition(&tp) {
                        Err(code) => response.with_error_code(code.0),
                        Ok(partition) => {
                            let mut producers = partition.log().producers();
                            producers.sort_by_key(|p| p.producer_id);
                            response.with_active_producers(
                                producers
                                    .into_iter()
                                    .map(|p| {
                                        ProducerState::default()
                                            .with_producer_id(ProducerId(p.producer_id))
                                            .with_producer_epoch(i32::from(p.epoch))
                                            .with_last_sequence(p.last_seq())
                                            .with_last_timestamp(p.last_timestamp)
                                            .with_coordinator_epoch(p.coordinator_epoch)
                                            .with_current_txn_start_offset(
                                                p.current_txn_first_offset.unwrap_or(-1),
                                            )
                                    })
                                    .collect(),
                            )
                        }
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

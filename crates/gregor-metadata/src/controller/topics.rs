//! Topic lifecycle: CreateTopics, CreatePartitions, DeleteTopics and config changes.
//! Each topic (resource) succeeds or fails on its own; the successful ones share one batch.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::ErrorCode;
use uuid::Uuid;

use crate::records::{
    BrokerId, ConfigRecord, ConfigResource, MetadataRecord, NO_LEADER, PartitionRecord, TopicRecord,
};

use super::election::Batch;
use super::placement::{check_assignment, place, seed_of};
use super::{
    ConfigOp, Controller, ControllerResponse, CreatedTopic, ItemError, NewPartitions, NewTopic,
};

/// Names given more than once in one request (Kafka rejects all their occurrences).
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut dup = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            dup.insert(name.to_string());
        }
    }
    dup
}

fn duplicate_error(name: &str) -> ItemError {
    ItemError::new(
        ErrorCode::INVALID_REQUEST,
        format!("Topic '{name}' appears more than once in the request."),
    )
}

fn unknown_topic(name: &str) -> ItemError {
    ItemError::new(
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        format!("Topic '{name}' does not exist."),
    )
}

/// The partition record for new replicas: live replicas form the ISR, the first leads.
fn new_partition(
    batch: &Batch<'_>,
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<BrokerId>,
) -> PartitionRecord {
    let isr: Vec<BrokerId> = replicas
        .iter()
        .copied()
        .filter(|r| batch.is_live(*r))
        .collect();
    PartitionRecord {
        topic_id,
        partition,
        leader: isr.first().copied().unwrap_or(NO_LEADER),
        isr,
        replicas,
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

impl Controller {
    pub(super) fn create_topics(
        &mut self,
        batch: &mut Batch<'_>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> ControllerResponse {
        ControllerResponse::TopicsCreated(per_name(
            topics,
            |t| &t.name,
            |t| self.create_topic(batch, t, validate_only),
        ))
    }

    fn create_topic(
        &mut self,
        batch: &mut Batch<'_>,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, ItemError> {
        if batch.image().topic_ids.contains_key(&topic.name) {
            return Err(ItemError::new(
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let assignment = if topic.assignments.is_empty() {
            let partitions = match topic.num_partitions {
                -1 => self.config.num_partitions,
                n => n,
            };
            if partitions < 1 {
                return Err(ItemError::new(
                    ErrorCode::INVALID_PARTITIONS,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
            let replication_factor = match topic.replication_factor {
                -1 => self.config.default_replication_factor,
                n => n,
            };
            place(
                &batch.live_brokers(),
                0,
                partitions,
                replication_factor,
                seed_of(&topic.name),
            )?
        } else {
            if topic.num_partitions != -1 || topic.replication_factor != -1 {
                return Err(ItemError::new(
                    ErrorCode::INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. \
                     Both cannot be used at the same time.",
                ));
            }
            manual_assignment(batch, &topic.assignments)?
        };
        let created = CreatedTopic {
            topic_id: Uuid::nil(),
            num_partitions: assignment.len() as i32,
            replication_factor: assignment[0].len() as i16,
        };
        if validate_only {
            return Ok(created);
        }
        let topic_id = gregor_protocol::ids::random_id();
        batch.push(MetadataRecord::Topic(TopicRecord {
            name: topic.name.clone(),
            topic_id,
        }));
        for (partition, replicas) in assignment.into_iter().enumerate() {
            let record = new_partition(batch, topic_id, partition as i32, replicas);
            batch.push(MetadataRecord::Partition(record));
        }
        for (name, value) in &topic.configs {
            batch.push(MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource::Topic(topic.name.clone()),
                name: name.clone(),
                value: Some(value.clone()),
            }));
        }
        Ok(CreatedTopic {
            topic_id,
            ..created
        })
    }

    pub(super) fn create_partitions(
        &mut self,
        batch: &mut Batch<'_>,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> ControllerResponse {
        ControllerResponse::PartitionsCreated(per_name(
            topics,
            |t| &t.name,
            |t| self.create_partitions_of(batch, t, validate_only),
        ))
    }

    fn create_partitions_of(
        &mut self,
        batch: &mut Batch<'_>,
        request: &NewPartitions,
        validate_only: bool,
    ) -> Result<(), ItemError> {
        let topic = batch
            .image()
            .topic(&request.name)
            .ok_or_else(|| unknown_topic(&request.name))?;
        let topic_id = topic.id;
        let current = topic.partitions.len() as i32;
        if request.count < current {
            return Err(ItemError::new(
                ErrorCode::INVALID_PARTITIONS,
                format!(
                    "Topic currently has {current} partitions, which is higher than the \
                     requested {}.",
                    request.count
                ),
            ));
        }
        if request.count == current {
            return Err(ItemError::new(
                ErrorCode::INVALID_PARTITIONS,
                format!("Topic already has {current} partitions."),
            ));
        }
        // The target replication factor of partition 0 (its replicas minus any being removed).
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map(|p| p.replicas.len() - p.removing_replicas.len())
            .unwrap_or(1) as i16;
        let additional = request.count - current;
        let assignment = match &request.assignments {
            Some(assignments) => {
                if assignments.len() as i32 != additional {
                    return Err(ItemError::new(
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "Attempted to add {additional} additional partition(s), but only \
                             {} assignment(s) were specified.",
                            assignments.len()
                        ),
                    ));
                }
                for (i, replicas) in assignments.iter().enumerate() {
                    let partition = current + i as i32;
                    check_assignment(batch.image(), partition, replicas, |b| batch.is_live(b))?;
                    if replicas.len() != replication_factor as usize {
                        return Err(ItemError::new(
                            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                            format!(
                                "The manual partition assignment includes a partition with {} \
                                 replica(s), but this is not consistent with previous \
                                 partitions, which have {replication_factor} replica(s).",
                                replicas.len()
                            ),
                        ));
                    }
                }
                assignments.clone()
            }
            None => place(
                &batch.live_brokers(),
                current,
                additional,
                replication_factor,
                seed_of(&request.name),
            )?,
        };
        if validate_only {
            return Ok(());
        }
        for (i, replicas) in assignment.into_iter().enumerate() {
            let record = new_partition(batch, topic_id, current + i as i32, replicas);
            batch.push(MetadataRecord::Partition(record));
        }
        Ok(())
    }

    pub(super) fn delete_topics(
        &mut self,
        batch: &mut Batch<'_>,
        names: Vec<String>,
    ) -> ControllerResponse {
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            let result = match batch.image().topic_ids.get(&name) {
                Some(&topic_id) => {
                    batch.push(MetadataRecord::RemoveTopic { topic_id });
                    Ok(topic_id)
                }
                None => Err(unknown_topic(&name)),
            };
            results.push((name, result));
        }
        ControllerResponse::TopicsDeleted(results)
    }

    pub(super) fn alter_configs(
        &mut self,
        batch: &mut Batch<'_>,
        resources: Vec<(ConfigResource, Vec<ConfigOp>)>,
        validate_only: bool,
    ) -> ControllerResponse {
        let mut results = Vec::with_capacity(resources.len());
        for (resource, ops) in resources {
            if let ConfigResource::Topic(name) = &resource
                && !batch.image().topic_ids.contains_key(name)
            {
                let error = unknown_topic(name);
                results.push((resource, Err(error)));
                continue;
            }
            if !validate_only {
                for op in ops {
                    let (name, value) = match op {
                        ConfigOp::Set(key, value) => (key, Some(value)),
                        ConfigOp::Delete(key) => (key, None),
                    };
                    batch.push(MetadataRecord::Config(ConfigRecord {
                        resource: resource.clone(),
                        name,
                        value,
                    }));
                }
            }
            results.push((resource, Ok(())));
        }
        ControllerResponse::ConfigsAltered(results)
    }
}

/// Checks a CreateTopics manual assignment: partitions `0..n` without gaps, each valid and all
/// of the same replication factor.
fn manual_assignment(
    batch: &Batch<'_>,
    assignments: &BTreeMap<i32, Vec<BrokerId>>,
) -> Result<Vec<Vec<BrokerId>>, ItemError> {
    let invalid = |message: String| ItemError::new(ErrorCode::INVALID_REPLICA_ASSIGNMENT, message);
    for (expected, partition) in assignments.keys().enumerate() {
        if *partition != expected as i32 {
            return Err(invalid(format!(
                "Partitions of a manual assignment must be consecutive from 0; partition \
                 {expected} is missing."
            )));
        }
    }
    let first_len = assignments.values().next().map_or(0, Vec::len);
    for (partition, replicas) in assignments {
        check_assignment(batch.image(), *partition, replicas, |b| batch.is_live(b))?;
        if replicas.len() != first_len {
            return Err(invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have {first_len} \
                 replica(s).",
                replicas.len()
            )));
        }
    }
    Ok(assignments.values().cloned().collect())
}

/// Decides each item of a per-topic request in order; a name given more than once is refused
/// for every copy (`INVALID_REQUEST`), as Kafka does.
fn per_name<T, R>(
    items: Vec<T>,
    name: impl Fn(&T) -> &String,
    mut decide: impl FnMut(&T) -> Result<R, ItemError>,
) -> Vec<(String, Result<R, ItemError>)> {
    let dup = duplicates(items.iter().map(|t| name(t).as_str()));
    items
        .iter()
        .map(|item| {
            let result = if dup.contains(name(item)) {
                Err(duplicate_error(name(item)))
            } else {
                decide(item)
            };
            (name(item).clone(), result)
        })
        .collect()
}

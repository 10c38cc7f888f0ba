//! Partition requests (Kafka's `ReplicationControlManager`): AlterPartition from leaders,
//! ElectLeaders, AlterPartitionReassignments, and the periodic preferred-leader rebalance.

use std::collections::BTreeSet;

use crate::image::PartitionState;
use crate::records::{BrokerId, NO_LEADER};
use gregor_protocol::ErrorCode;

use super::brokers::check_epoch;
use super::election::Batch;
use super::{AlteredPartition, Controller, ControllerResponse, ElectionType, IsrChange, ItemError};

fn unknown_partition(topic: &str, partition: i32) -> ItemError {
    ItemError::new(
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        format!("Partition {topic}-{partition} does not exist."),
    )
}

fn altered(p: &PartitionState) -> AlteredPartition {
    AlteredPartition {
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        isr: p.isr.clone(),
        partition_epoch: p.partition_epoch,
    }
}

impl Controller {
    pub(super) fn alter_partition(
        &mut self,
        batch: &mut Batch<'_>,
        broker_id: BrokerId,
        broker_epoch: i64,
        changes: Vec<IsrChange>,
    ) -> ControllerResponse {
        if let Err(e) = check_epoch(batch.image(), broker_id, broker_epoch) {
            return ControllerResponse::PartitionsAltered(Err(e));
        }
        let results = changes
            .into_iter()
            .map(|change| {
                let result = self.alter_isr(batch, broker_id, &change);
                (change.topic_id, change.partition, result)
            })
            .collect();
        ControllerResponse::PartitionsAltered(Ok(results))
    }

    fn alter_isr(
        &mut self,
        batch: &mut Batch<'_>,
        broker_id: BrokerId,
        change: &IsrChange,
    ) -> Result<AlteredPartition, ItemError> {
        let Some(p) = batch
            .image()
            .topics
            .get(&change.topic_id)
            .and_then(|t| t.partitions.get(&change.partition))
        else {
            return Err(ItemError::new(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!(
                    "Partition {} of topic {} does not exist.",
                    change.partition, change.topic_id
                ),
            ));
        };
        let name = format!("{}-{}", change.topic_id, change.partition);
        // Epochs ahead of ours mean the requester heard from a newer controller.
        if change.leader_epoch > p.leader_epoch || change.partition_epoch > p.partition_epoch {
            return Err(ItemError::new(
                ErrorCode::NOT_CONTROLLER,
                format!("{name}: the request's epochs are newer than this controller's."),
            ));
        }
        if change.leader_epoch < p.leader_epoch {
            return Err(ItemError::new(
                ErrorCode::FENCED_LEADER_EPOCH,
                format!(
                    "{name}: leader epoch {} is older than the current {}.",
                    change.leader_epoch, p.leader_epoch
                ),
            ));
        }
        if broker_id != p.leader {
            return Err(ItemError::new(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                format!(
                    "{name}: broker {broker_id} is not the leader ({}).",
                    p.leader
                ),
            ));
        }
        if change.partition_epoch < p.partition_epoch {
            return Err(ItemError::new(
                ErrorCode::INVALID_UPDATE_VERSION,
                format!(
                    "{name}: partition epoch {} is older than the current {}.",
                    change.partition_epoch, p.partition_epoch
                ),
            ));
        }
        let distinct: BTreeSet<BrokerId> = change.new_isr.iter().copied().collect();
        if distinct.len() != change.new_isr.len()
            || !change.new_isr.iter().all(|r| p.replicas.contains(r))
        {
            return Err(ItemError::new(
                ErrorCode::INVALID_REQUEST,
                format!("{name}: invalid ISR {:?}.", change.new_isr),
            ));
        }
        if !change.new_isr.contains(&p.leader) {
            return Err(ItemError::new(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "{name}: the ISR {:?} must include the leader.",
                    change.new_isr
                ),
            ));
        }
        let current: BTreeSet<BrokerId> = p.isr.iter().copied().collect();
        if let Some(ineligible) = change.new_isr.iter().find(|r| !batch.is_live(**r)) {
            return Err(ItemError::new(
                ErrorCode::INELIGIBLE_REPLICA,
                format!("{name}: replica {ineligible} is fenced or not registered."),
            ));
        }
        if distinct == current {
            return Ok(altered(p));
        }
        let mut new = p.clone();
        new.isr = change.new_isr.clone();
        batch.try_complete(&mut new);
        batch.change(change.topic_id, change.partition, &new);
        let p = &batch.image().topics[&change.topic_id].partitions[&change.partition];
        Ok(altered(p))
    }

    pub(super) fn elect_leaders(
        &mut self,
        batch: &mut Batch<'_>,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> ControllerResponse {
        let all = partitions.is_none();
        let wanted = partitions.unwrap_or_else(|| {
            batch
                .image()
                .topic_ids
                .iter()
                .flat_map(|(name, id)| {
                    batch.image().topics[id]
                        .partitions
                        .keys()
                        .map(|p| (name.clone(), *p))
                })
                .collect()
        });
        let mut results = Vec::new();
        for (topic, partition) in wanted {
            let result = self.elect_one(batch, election_type, &topic, partition);
            let not_needed =
                matches!(&result, Err(e) if e.code == ErrorCode::ELECTION_NOT_NEEDED.0);
            if !(all && not_needed) {
                results.push(((topic, partition), result));
            }
        }
        ControllerResponse::LeadersElected(results)
    }

    fn elect_one(
        &mut self,
        batch: &mut Batch<'_>,
        election_type: ElectionType,
        topic: &str,
        partition: i32,
    ) -> Result<(), ItemError> {
        let Some(topic_id) = batch.image().topic_ids.get(topic).copied() else {
            return Err(unknown_partition(topic, partition));
        };
        let Some(mut p) = batch.image().partition(topic, partition).cloned() else {
            return Err(unknown_partition(topic, partition));
        };
        let not_needed = || {
            ItemError::new(
                ErrorCode::ELECTION_NOT_NEEDED,
                format!("Leader election not needed for {topic}-{partition}."),
            )
        };
        match election_type {
            ElectionType::Preferred => match batch.preferred(&mut p) {
                Ok(()) => {}
                Err(true) => return Err(not_needed()),
                Err(false) => {
                    return Err(ItemError::new(
                        ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE,
                        format!(
                            "The preferred leader of {topic}-{partition} is not live or not \
                             in the ISR."
                        ),
                    ));
                }
            },
            ElectionType::Unclean => {
                if p.leader != NO_LEADER && batch.is_live(p.leader) {
                    return Err(not_needed());
                }
                batch.elect(&mut p, true);
                if p.leader == NO_LEADER {
                    return Err(ItemError::new(
                        ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                        format!("No replica of {topic}-{partition} is live."),
                    ));
                }
            }
        }
        batch.change(topic_id, partition, &p);
        Ok(())
    }

    pub(super) fn reassign(
        &mut self,
        batch: &mut Batch<'_>,
        reassignments: Vec<(String, i32, Option<Vec<BrokerId>>)>,
    ) -> ControllerResponse {
        let results = reassignments
            .into_iter()
            .map(|(topic, partition, target)| {
                let result = reassign_one(batch, &topic, partition, target);
                ((topic, partition), result)
            })
            .collect();
        ControllerResponse::Reassigned(results)
    }

    /// Moves leadership back to preferred replicas wherever possible.
    pub(super) fn rebalance(&mut self, batch: &mut Batch<'_>) {
        let candidates = batch.partitions_where(|p| p.preferred_leader() != Some(p.leader));
        for (topic_id, _, index, mut p) in candidates {
            if batch.preferred(&mut p).is_ok() {
                batch.change(topic_id, index, &p);
            }
        }
    }
}

fn reassign_one(
    batch: &mut Batch<'_>,
    topic: &str,
    partition: i32,
    target: Option<Vec<BrokerId>>,
) -> Result<(), ItemError> {
    let Some(topic_id) = batch.image().topic_ids.get(topic).copied() else {
        return Err(unknown_partition(topic, partition));
    };
    let Some(mut p) = batch.image().partition(topic, partition).cloned() else {
        return Err(unknown_partition(topic, partition));
    };
    let in_progress = !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty();
    // The replicas before any reassignment in progress.
    let original: Vec<BrokerId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    match target {
        None => {
            if !in_progress {
                return Err(ItemError::new(
                    ErrorCode::NO_REASSIGNMENT_IN_PROGRESS,
                    format!("No reassignment of {topic}-{partition} is in progress."),
                ));
            }
            revert(batch, &mut p, original);
        }
        Some(target) => {
            let invalid = |message: String| {
                Err(ItemError::new(
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    message,
                ))
            };
            let distinct: BTreeSet<BrokerId> = target.iter().copied().collect();
            if target.is_empty() {
                return invalid(format!(
                    "The target replicas of {topic}-{partition} are empty."
                ));
            }
            if distinct.len() != target.len() {
                return invalid(format!(
                    "The target replicas {target:?} of {topic}-{partition} contain duplicates."
                ));
            }
            if let Some(unknown) = target
                .iter()
                .find(|r| !batch.image().brokers.contains_key(r))
            {
                return invalid(format!(
                    "The target replicas of {topic}-{partition} include broker {unknown}, but \
                     no such broker is registered."
                ));
            }
            if target == original {
                // Back to where it started: the same as a cancellation (or nothing to do).
                if in_progress {
                    revert(batch, &mut p, original);
                }
            } else {
                let removing: Vec<BrokerId> = original
                    .iter()
                    .copied()
                    .filter(|r| !target.contains(r))
                    .collect();
                let adding: Vec<BrokerId> = target
                    .iter()
                    .copied()
                    .filter(|r| !original.contains(r))
                    .collect();
                p.replicas = target.iter().chain(&removing).copied().collect();
                // A replaced reassignment's adding replicas that are no longer wanted leave
                // the ISR with it.
                p.isr.retain(|r| p.replicas.contains(r));
                p.adding_replicas = adding;
                p.removing_replicas = removing;
                if p.isr.is_empty() || !p.replicas.contains(&p.leader) {
                    restore_isr(batch, &mut p);
                }
                batch.try_complete(&mut p);
            }
        }
    }
    batch.change(topic_id, partition, &p);
    Ok(())
}

/// Cancels `p`'s reassignment: back to `original`, adding replicas out of the ISR.
fn revert(batch: &Batch<'_>, p: &mut PartitionState, original: Vec<BrokerId>) {
    p.replicas = original;
    p.isr.retain(|r| p.replicas.contains(r));
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    restore_isr(batch, p);
}

/// After the replica set changed under `p`: an ISR emptied by it restarts from one live
/// replica (an unclean start, as Kafka does), and a leader no longer in it is replaced.
fn restore_isr(batch: &Batch<'_>, p: &mut PartitionState) {
    if p.isr.is_empty() {
        let first = batch
            .any_live_replica(p)
            .or_else(|| p.replicas.first().copied());
        p.isr = first.into_iter().collect();
    }
    if !p.isr.contains(&p.leader) {
        p.leader = NO_LEADER;
    }
    batch.elect(p, false);
}

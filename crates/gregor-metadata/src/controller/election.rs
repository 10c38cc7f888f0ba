//! Partition state changes: the working image a request's records are decided against, leader
//! election, ISR shrinking when a broker goes away, and reassignment completion.
//!
//! Every decision is made on a whole desired [`PartitionState`]; [`Batch::change`] turns it into
//! the smallest [`PartitionChangeRecord`] (no record at all when nothing changed), with `leader`
//! set only when the leader really changes or a replica leaves the replica set (Kafka bumps the
//! leader epoch for both), so the leader epoch never moves on a mere ISR change.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::image::{MetadataImage, PartitionState};
use crate::records::{BrokerId, ConfigResource, MetadataRecord, NO_LEADER, PartitionChangeRecord};

use super::ControllerConfig;

/// Kafka's key for unclean leader election, as a topic or broker config.
pub(super) const UNCLEAN_KEY: &str = "unclean.leader.election.enable";

/// The records one request produces, and the image they lead to. Later decisions in the same
/// request see earlier ones; the base image is cloned only once something changes.
pub(super) struct Batch<'a> {
    base: &'a MetadataImage,
    scratch: Option<MetadataImage>,
    records: Vec<MetadataRecord>,
    /// Brokers being fenced by this batch before their `FenceBroker` record is written: they
    /// may neither lead nor stay in an ISR they are not the last member of.
    leaving: BTreeSet<BrokerId>,
}

impl<'a> Batch<'a> {
    pub(super) fn new(base: &'a MetadataImage) -> Batch<'a> {
        Batch {
            base,
            scratch: None,
            records: Vec::new(),
            leaving: BTreeSet::new(),
        }
    }

    /// The image with this batch's records applied.
    pub(super) fn image(&self) -> &MetadataImage {
        self.scratch.as_ref().unwrap_or(self.base)
    }

    pub(super) fn push(&mut self, record: MetadataRecord) {
        let offset = self.base.offset + self.records.len() as u64 + 1;
        let image = self.scratch.get_or_insert_with(|| self.base.clone());
        image.apply(&record, offset);
        self.records.push(record);
    }

    pub(super) fn into_records(self) -> Vec<MetadataRecord> {
        self.records
    }

    /// Registered, unfenced and not being fenced: may lead and be in an ISR.
    pub(super) fn is_live(&self, broker: BrokerId) -> bool {
        !self.leaving.contains(&broker)
            && self.image().brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Live brokers, by id.
    pub(super) fn live_brokers(&self) -> Vec<BrokerId> {
        self.image()
            .live_brokers()
            .map(|b| b.id)
            .filter(|id| !self.leaving.contains(id))
            .collect()
    }

    /// Writes the change from the partition's current state to `new`, if there is one.
    /// Returns whether a record was written.
    pub(super) fn change(&mut self, topic_id: Uuid, partition: i32, new: &PartitionState) -> bool {
        let Some(current) = self
            .image()
            .topics
            .get(&topic_id)
            .and_then(|t| t.partitions.get(&partition))
        else {
            return false;
        };
        let differs = |a: &Vec<BrokerId>, b: &Vec<BrokerId>| (a != b).then(|| b.clone());
        let record = PartitionChangeRecord {
            topic_id,
            partition,
            isr: differs(&current.isr, &new.isr),
            // As Kafka does, a replica leaving the replica set also bumps the leader epoch
            // (with the leader unchanged), so the removed replica's fetches are fenced.
            leader: (current.leader != new.leader
                || current.replicas.iter().any(|r| !new.replicas.contains(r)))
            .then_some(new.leader),
            replicas: differs(&current.replicas, &new.replicas),
            removing_replicas: differs(&current.removing_replicas, &new.removing_replicas),
            adding_replicas: differs(&current.adding_replicas, &new.adding_replicas),
        };
        if record
            == (PartitionChangeRecord {
                topic_id,
                partition,
                ..Default::default()
            })
        {
            return false;
        }
        self.push(MetadataRecord::PartitionChange(record));
        true
    }

    /// Every partition, as (topic id, topic name, index, state), cloned so the batch can change
    /// them while iterating.
    pub(super) fn partitions_where(
        &self,
        mut wanted: impl FnMut(&PartitionState) -> bool,
    ) -> Vec<(Uuid, String, i32, PartitionState)> {
        let mut out = Vec::new();
        for topic in self.image().topics.values() {
            for (index, p) in &topic.partitions {
                if wanted(p) {
                    out.push((topic.id, topic.name.clone(), *index, p.clone()));
                }
            }
        }
        out
    }

    /// Whether unclean election is allowed for `topic`: the topic's config, else the dynamic
    /// cluster-wide broker config, else the controller's.
    pub(super) fn unclean_allowed(&self, config: &ControllerConfig, topic: &str) -> bool {
        let image = self.image();
        let configured = image
            .configs
            .get(&ConfigResource::Topic(topic.to_string()))
            .and_then(|c| c.get(UNCLEAN_KEY))
            .or_else(|| {
                image
                    .configs
                    .get(&ConfigResource::Broker(None))
                    .and_then(|c| c.get(UNCLEAN_KEY))
            });
        match configured {
            Some(value) => value.trim().eq_ignore_ascii_case("true"),
            None => config.unclean_leader_election_enable,
        }
    }

    /// The first live ISR member in replica order: a clean leader.
    pub(super) fn clean_leader(&self, p: &PartitionState) -> Option<BrokerId> {
        p.replicas
            .iter()
            .copied()
            .find(|r| p.isr.contains(r) && self.is_live(*r))
    }

    /// The first live replica in replica order, in the ISR or not.
    pub(super) fn any_live_replica(&self, p: &PartitionState) -> Option<BrokerId> {
        p.replicas.iter().copied().find(|r| self.is_live(*r))
    }

    /// Gives `p` a leader if its current one is missing or not live: a live ISR member, else
    /// (when `unclean`) any live replica with the ISR reset to it, else [`NO_LEADER`].
    pub(super) fn elect(&self, p: &mut PartitionState, unclean: bool) {
        if p.leader != NO_LEADER && self.is_live(p.leader) && p.isr.contains(&p.leader) {
            return;
        }
        if let Some(leader) = self.clean_leader(p) {
            p.leader = leader;
        } else if let Some(leader) = unclean.then(|| self.any_live_replica(p)).flatten() {
            p.leader = leader;
            p.isr = vec![leader];
        } else {
            p.leader = NO_LEADER;
        }
    }

    /// Takes `broker` out of every ISR (keeping it when it is the last member, as Kafka does
    /// without ELR) and moves every leadership it holds to a live ISR member.
    pub(super) fn evacuate(&mut self, config: &ControllerConfig, broker: BrokerId) {
        self.leaving.insert(broker);
        let affected = self.partitions_where(|p| p.leader == broker || p.isr.contains(&broker));
        for (topic_id, name, index, mut p) in affected {
            if p.isr.len() > 1 {
                p.isr.retain(|r| *r != broker);
            }
            let unclean = self.unclean_allowed(config, &name);
            self.elect(&mut p, unclean);
            self.change(topic_id, index, &p);
        }
        self.leaving.remove(&broker);
    }

    /// Fences `broker` (moving its leaderships and ISR memberships first).
    pub(super) fn fence(&mut self, config: &ControllerConfig, broker: BrokerId) {
        let Some(epoch) = self.image().brokers.get(&broker).map(|b| b.epoch) else {
            return;
        };
        self.evacuate(config, broker);
        self.push(MetadataRecord::FenceBroker {
            broker_id: broker,
            broker_epoch: epoch,
        });
    }

    /// Elects leaders for leaderless partitions that have a live candidate.
    pub(super) fn recover_leaderless(&mut self, config: &ControllerConfig) {
        let leaderless = self.partitions_where(|p| p.leader == NO_LEADER);
        for (topic_id, name, index, mut p) in leaderless {
            let unclean = self.unclean_allowed(config, &name);
            self.elect(&mut p, unclean);
            self.change(topic_id, index, &p);
        }
    }

    /// Completes the reassignments whose adding replicas have all joined the ISR.
    pub(super) fn complete_reassignments(&mut self) {
        let moving = self
            .partitions_where(|p| !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty());
        for (topic_id, _, index, mut p) in moving {
            if self.try_complete(&mut p) {
                self.change(topic_id, index, &p);
            }
        }
    }

    /// Completes `p`'s reassignment in place if every adding replica is in the ISR and the
    /// ISR keeps a member of the target: replicas become the target, the ISR loses removed
    /// replicas, and a leader outside the target hands over to a live target ISR member.
    pub(super) fn try_complete(&self, p: &mut PartitionState) -> bool {
        if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
            return false;
        }
        if !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
            return false;
        }
        let target: Vec<BrokerId> = p
            .replicas
            .iter()
            .copied()
            .filter(|r| !p.removing_replicas.contains(r))
            .collect();
        let isr: Vec<BrokerId> = p
            .isr
            .iter()
            .copied()
            .filter(|r| target.contains(r))
            .collect();
        if isr.is_empty() || target.is_empty() {
            return false;
        }
        p.replicas = target;
        p.isr = isr;
        p.adding_replicas.clear();
        p.removing_replicas.clear();
        if !p.replicas.contains(&p.leader) {
            p.leader = NO_LEADER;
        }
        self.elect(p, false);
        true
    }

    /// Moves leadership to the preferred replica if it is live, in the ISR and not leading.
    /// `Err(true)` = already the leader, `Err(false)` = not available.
    pub(super) fn preferred(&self, p: &mut PartitionState) -> Result<(), bool> {
        let Some(preferred) = p.preferred_leader() else {
            return Err(false);
        };
        if p.leader == preferred {
            return Err(true);
        }
        if !self.is_live(preferred) || !p.isr.contains(&preferred) {
            return Err(false);
        }
        p.leader = preferred;
        Ok(())
    }
}

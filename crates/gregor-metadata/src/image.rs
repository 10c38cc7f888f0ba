//! `MetadataImage`: the cluster as the committed metadata log describes it, up to some offset.
//!
//! Every node applies committed records to its image in log order, so all nodes that reached
//! the same offset hold the same image. Brokers serve `Metadata`, `DescribeCluster` and
//! `DescribeConfigs` from it and decide which partitions they lead or follow by it; the active
//! controller validates requests against it. The image is also the Raft snapshot: it is
//! serializable, and a node that installs a snapshot replaces its image wholesale.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::{
    BrokerId, ConfigResource, Endpoint, MetadataRecord, NO_LEADER, PartitionChangeRecord,
    PartitionRecord,
};

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub id: BrokerId,
    /// The process run that registered.
    pub incarnation_id: Uuid,
    /// Epoch of the registration.
    pub epoch: i64,
    /// Where clients reach it.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and are left out of `Metadata`'s broker list.
    pub fenced: bool,
    /// Metadata offset of the registration: the broker has caught up once it applied this far.
    pub registered_offset: u64,
}

impl BrokerRegistration {
    /// The endpoint for `listener`, if the broker has one.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Replica brokers, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<BrokerId>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<BrokerId>,
    /// Leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Partition epoch.
    pub partition_epoch: i32,
}

impl PartitionState {
    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// The preferred leader: the first replica.
    pub fn preferred_leader(&self) -> Option<BrokerId> {
        self.replicas.first().copied()
    }

    fn apply(&mut self, change: &PartitionChangeRecord) {
        if let Some(isr) = &change.isr {
            self.isr = isr.clone();
        }
        if let Some(leader) = change.leader {
            self.leader = leader;
            self.leader_epoch += 1;
        }
        if let Some(replicas) = &change.replicas {
            self.replicas = replicas.clone();
        }
        if let Some(removing) = &change.removing_replicas {
            self.removing_replicas = removing.clone();
        }
        if let Some(adding) = &change.adding_replicas {
            self.adding_replicas = adding.clone();
        }
        self.partition_epoch += 1;
    }
}

impl From<&PartitionRecord> for PartitionState {
    fn from(record: &PartitionRecord) -> Self {
        PartitionState {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            removing_replicas: record.removing_replicas.clone(),
            adding_replicas: record.adding_replicas.clone(),
            leader: record.leader,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
        }
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionState>,
}

/// The whole cluster metadata at [`MetadataImage::offset`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Offset (Raft log index) of the last record applied; 0 for an empty log.
    pub offset: u64,
    /// Registered brokers by id.
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    /// Topics by id.
    pub topics: BTreeMap<Uuid, TopicImage>,
    /// Topic ids by name.
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Config overrides per resource.
    #[serde(with = "pairs")]
    pub configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// Next broker epoch to hand out: registrations get increasing epochs.
    pub next_broker_epoch: i64,
    /// First producer id not yet handed out in a block.
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// Applies one committed record found at `offset`. Records referring to something that no
    /// longer exists (a change to a deleted topic, a fence of a newer registration) are ignored:
    /// the controller validated them against the image of their time, and the log is the truth.
    pub fn apply(&mut self, record: &MetadataRecord, offset: u64) {
        self.offset = offset;
        match record {
            MetadataRecord::RegisterBroker(r) => {
                self.next_broker_epoch = self.next_broker_epoch.max(r.broker_epoch + 1);
                self.brokers.insert(
                    r.broker_id,
                    BrokerRegistration {
                        id: r.broker_id,
                        incarnation_id: r.incarnation_id,
                        epoch: r.broker_epoch,
                        endpoints: r.endpoints.clone(),
                        rack: r.rack.clone(),
                        fenced: r.fenced,
                        registered_offset: offset,
                    },
                );
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                if self.brokers.get(broker_id).map(|b| b.epoch) == Some(*broker_epoch) {
                    self.brokers.remove(broker_id);
                }
            }
            MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch,
            }
            | MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => {
                let fenced = matches!(record, MetadataRecord::FenceBroker { .. });
                if let Some(broker) = self.brokers.get_mut(broker_id)
                    && broker.epoch == *broker_epoch
                {
                    broker.fenced = fenced;
                }
            }
            MetadataRecord::Topic(t) => {
                self.topic_ids.insert(t.name.clone(), t.topic_id);
                self.topics.insert(
                    t.topic_id,
                    TopicImage {
                        name: t.name.clone(),
                        id: t.topic_id,
                        partitions: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition(p) => {
                if let Some(topic) = self.topics.get_mut(&p.topic_id) {
                    topic
                        .partitions
                        .insert(p.partition, PartitionState::from(p));
                }
            }
            MetadataRecord::PartitionChange(change) => {
                if let Some(partition) = self
                    .topics
                    .get_mut(&change.topic_id)
                    .and_then(|t| t.partitions.get_mut(&change.partition))
                {
                    partition.apply(change);
                }
            }
            MetadataRecord::Config(c) => {
                let configs = self.configs.entry(c.resource.clone()).or_default();
                match &c.value {
                    Some(value) => {
                        configs.insert(c.name.clone(), value.clone());
                    }
                    None => {
                        configs.remove(&c.name);
                    }
                }
                if configs.is_empty() {
                    self.configs.remove(&c.resource);
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(topic) = self.topics.remove(topic_id) {
                    self.topic_ids.remove(&topic.name);
                    self.configs.remove(&ConfigResource::Topic(topic.name));
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// One partition of the topic called `name`.
    pub fn partition(&self, name: &str, partition: i32) -> Option<&PartitionState> {
        self.topic(name).and_then(|t| t.partitions.get(&partition))
    }

    /// One config override of a topic, without copying the topic's others.
    pub fn topic_config(&self, name: &str, key: &str) -> Option<&str> {
        self.configs
            .get(&ConfigResource::Topic(name.to_string()))
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }

    /// Config overrides of a topic (empty if none).
    pub fn topic_configs(&self, name: &str) -> BTreeMap<String, String> {
        self.configs
            .get(&ConfigResource::Topic(name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Registered brokers that are not fenced: the ones that may lead and that clients are told of.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

/// Serializes a map whose keys are not strings as a list of pairs, so the image can be JSON.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ConfigRecord, RegisterBrokerRecord, TopicRecord};

    fn register(id: BrokerId, epoch: i64) -> MetadataRecord {
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: Uuid::from_u128(id as u128),
            broker_epoch: epoch,
            endpoints: vec![],
            rack: None,
            fenced: true,
        })
    }

    #[test]
    fn partition_changes_bump_epochs_as_kafka_does() {
        let mut image = MetadataImage::default();
        let id = Uuid::from_u128(7);
        image.apply(
            &MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: id,
            }),
            1,
        );
        image.apply(
            &MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: 0,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                removing_replicas: vec![],
                adding_replicas: vec![],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            }),
            2,
        );
        let shrink = PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            isr: Some(vec![1, 2]),
            ..Default::default()
        };
        image.apply(&MetadataRecord::PartitionChange(shrink), 3);
        let p = image.partition("t", 0).unwrap();
        assert_eq!(
            (p.leader_epoch, p.partition_epoch, p.isr.clone()),
            (0, 1, vec![1, 2])
        );
        let failover = PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            isr: Some(vec![2]),
            leader: Some(2),
            ..Default::default()
        };
        image.apply(&MetadataRecord::PartitionChange(failover), 4);
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
        assert_eq!(image.offset, 4);
    }

    #[test]
    fn fencing_applies_only_to_the_current_registration() {
        let mut image = MetadataImage::default();
        image.apply(&register(1, 5), 1);
        image.apply(
            &MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 5,
            },
            2,
        );
        assert!(!image.brokers[&1].fenced);
        image.apply(&register(1, 9), 3);
        assert_eq!(image.next_broker_epoch, 10);
        // A stale unfence for the old registration must not unfence the new one.
        image.apply(
            &MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 5,
            },
            4,
        );
        assert!(image.brokers[&1].fenced);
        assert_eq!(image.brokers[&1].registered_offset, 3);
        assert_eq!(image.live_brokers().count(), 0);
    }

    #[test]
    fn removing_a_topic_drops_its_name_and_configs() {
        let mut image = MetadataImage::default();
        let id = Uuid::from_u128(1);
        image.apply(
            &MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: id,
            }),
            1,
        );
        image.apply(
            &MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            }),
            2,
        );
        assert_eq!(image.topic_configs("t")["retention.ms"], "1000");
        let json = serde_json::to_string(&image).unwrap();
        assert_eq!(serde_json::from_str::<MetadataImage>(&json).unwrap(), image);
        image.apply(&MetadataRecord::RemoveTopic { topic_id: id }, 3);
        assert!(image.topic("t").is_none());
        assert!(image.configs.is_empty());
    }
}

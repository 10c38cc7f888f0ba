//! The controller driven against an image that applies what it decides, as the quorum would.

mod brokers;
mod partitions;
mod random;
mod topics;

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::ErrorCode;
use uuid::Uuid;

use super::*;
use crate::image::PartitionState;
use crate::records::NO_LEADER;

const SESSION: i64 = 9_000;

struct Cluster {
    image: MetadataImage,
    controller: Controller,
    now: i64,
    epochs: BTreeMap<BrokerId, i64>,
    /// Leader changes and fences applied so far.
    leader_changes: usize,
    fences: usize,
}

fn config() -> ControllerConfig {
    ControllerConfig {
        broker_session_timeout_ms: SESSION,
        auto_leader_rebalance_enable: false,
        ..ControllerConfig::default()
    }
}

fn code(e: &ItemError) -> ErrorCode {
    ErrorCode(e.code)
}

/// Leader ∈ ISR ⊆ replicas (or no leader), ISR never empty, no fenced leader.
fn check_invariants(image: &MetadataImage) {
    for topic in image.topics.values() {
        for (index, p) in &topic.partitions {
            let at = format!("{}-{index}: {p:?}", topic.name);
            assert!(!p.isr.is_empty(), "empty ISR at {at}");
            assert!(
                p.isr.iter().all(|r| p.replicas.contains(r)),
                "ISR ⊄ replicas at {at}"
            );
            let distinct: BTreeSet<_> = p.isr.iter().collect();
            assert_eq!(distinct.len(), p.isr.len(), "duplicate ISR member at {at}");
            if p.leader != NO_LEADER {
                assert!(p.isr.contains(&p.leader), "leader outside the ISR at {at}");
                let broker = image.brokers.get(&p.leader);
                assert!(broker.is_some_and(|b| !b.fenced), "fenced leader at {at}");
            }
        }
    }
}

impl Cluster {
    fn new(config: ControllerConfig) -> Cluster {
        let image = MetadataImage::default();
        let controller = Controller::new(config, 0);
        Cluster {
            image,
            controller,
            now: 0,
            epochs: BTreeMap::new(),
            leader_changes: 0,
            fences: 0,
        }
    }

    /// `n` registered, unfenced brokers 1..=n and the cluster defaults.
    fn with_brokers(n: i32) -> Cluster {
        Cluster::with_config(n, config())
    }

    fn with_config(n: i32, config: ControllerConfig) -> Cluster {
        let mut c = Cluster::new(config);
        for id in 1..=n {
            c.register(id);
            assert!(!c.heartbeat(id).is_fenced);
        }
        c
    }

    fn apply(&mut self, records: &[MetadataRecord]) {
        for record in records {
            match record {
                MetadataRecord::PartitionChange(change) if change.leader.is_some() => {
                    self.leader_changes += 1
                }
                MetadataRecord::FenceBroker { .. } => self.fences += 1,
                _ => {}
            }
            let offset = self.image.offset + 1;
            self.image.apply(record, offset);
        }
        check_invariants(&self.image);
    }

    fn request_with_records(
        &mut self,
        request: ControllerRequest,
    ) -> (ControllerResponse, Vec<MetadataRecord>) {
        let (response, records) = self.controller.handle(&self.image, request, self.now);
        self.apply(&records);
        (response, records)
    }

    fn request(&mut self, request: ControllerRequest) -> ControllerResponse {
        self.request_with_records(request).0
    }

    fn tick(&mut self) -> Vec<MetadataRecord> {
        let records = self.controller.tick(&self.image, self.now);
        self.apply(&records);
        records
    }

    fn register(&mut self, id: BrokerId) -> i64 {
        self.register_as(id, Uuid::from_u128(id as u128)).unwrap()
    }

    fn register_as(&mut self, id: BrokerId, incarnation: Uuid) -> Result<i64, ItemError> {
        let response = self.request(ControllerRequest::RegisterBroker {
            broker_id: id,
            incarnation_id: incarnation,
            endpoints: vec![],
            rack: None,
        });
        let ControllerResponse::Registered(result) = response else {
            panic!("{response:?}")
        };
        if let Ok(epoch) = result {
            self.epochs.insert(id, epoch);
        }
        result
    }

    fn heartbeat_full(
        &mut self,
        id: BrokerId,
        offset: u64,
        want_fence: bool,
        want_shutdown_now: bool,
    ) -> Result<HeartbeatReply, ItemError> {
        let response = self.request(ControllerRequest::BrokerHeartbeat {
            broker_id: id,
            broker_epoch: self.epochs.get(&id).copied().unwrap_or(-1),
            current_metadata_offset: offset,
            want_fence,
            want_shutdown_now,
        });
        let ControllerResponse::Heartbeat(result) = response else {
            panic!("{response:?}")
        };
        result
    }

    fn heartbeat(&mut self, id: BrokerId) -> HeartbeatReply {
        self.heartbeat_full(id, self.image.offset, false, false)
            .unwrap()
    }

    /// Time passes; `alive` keep heartbeating every second.
    fn advance(&mut self, ms: i64, alive: &[BrokerId]) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 1_000).min(end);
            for id in alive {
                self.heartbeat(*id);
            }
            self.tick();
        }
    }

    fn create_topic(&mut self, topic: NewTopic) -> Result<CreatedTopic, ItemError> {
        let response = self.request(ControllerRequest::CreateTopics {
            topics: vec![topic],
            validate_only: false,
        });
        let ControllerResponse::TopicsCreated(mut results) = response else {
            panic!("{response:?}")
        };
        results.remove(0).1
    }

    fn create(&mut self, name: &str, partitions: i32, rf: i16) -> Uuid {
        self.create_topic(new_topic(name, partitions, rf))
            .unwrap()
            .topic_id
    }

    fn part(&self, name: &str, p: i32) -> PartitionState {
        self.image.partition(name, p).unwrap().clone()
    }

    fn fenced(&self, id: BrokerId) -> bool {
        self.image.brokers[&id].fenced
    }

    fn alter_isr(
        &mut self,
        broker: BrokerId,
        name: &str,
        p: i32,
        new_isr: Vec<BrokerId>,
    ) -> Result<AlteredPartition, ItemError> {
        let state = self.part(name, p);
        self.alter_isr_at(
            broker,
            name,
            p,
            new_isr,
            state.leader_epoch,
            state.partition_epoch,
        )
    }

    fn alter_isr_at(
        &mut self,
        broker: BrokerId,
        name: &str,
        p: i32,
        new_isr: Vec<BrokerId>,
        leader_epoch: i32,
        partition_epoch: i32,
    ) -> Result<AlteredPartition, ItemError> {
        let topic_id = self.image.topic_ids[name];
        let response = self.request(ControllerRequest::AlterPartition {
            broker_id: broker,
            broker_epoch: self.epochs[&broker],
            changes: vec![IsrChange {
                topic_id,
                partition: p,
                leader_epoch,
                new_isr,
                partition_epoch,
            }],
        });
        let ControllerResponse::PartitionsAltered(Ok(mut results)) = response else {
            panic!("{response:?}")
        };
        results.remove(0).2
    }

    fn elect(
        &mut self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<((String, i32), Result<(), ItemError>)> {
        let response = self.request(ControllerRequest::ElectLeaders {
            election_type: kind,
            partitions,
        });
        let ControllerResponse::LeadersElected(results) = response else {
            panic!("{response:?}")
        };
        results
    }

    fn reassign(
        &mut self,
        name: &str,
        p: i32,
        target: Option<Vec<BrokerId>>,
    ) -> Result<(), ItemError> {
        let response = self.request(ControllerRequest::AlterPartitionReassignments {
            reassignments: vec![(name.to_string(), p, target)],
        });
        let ControllerResponse::Reassigned(mut results) = response else {
            panic!("{response:?}")
        };
        results.remove(0).1
    }

    fn set_topic_config(&mut self, name: &str, key: &str, value: &str) {
        let response = self.request(ControllerRequest::AlterConfigs {
            resources: vec![(
                ConfigResource::Topic(name.into()),
                vec![ConfigOp::Set(key.into(), value.into())],
            )],
            validate_only: false,
        });
        assert!(matches!(&response, ControllerResponse::ConfigsAltered(r) if r[0].1.is_ok()));
    }
}

fn new_topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: BTreeMap::new(),
        configs: BTreeMap::new(),
    }
}

fn manual(name: &str, assignments: &[&[BrokerId]]) -> NewTopic {
    NewTopic {
        assignments: assignments
            .iter()
            .enumerate()
            .map(|(i, r)| (i as i32, r.to_vec()))
            .collect(),
        ..new_topic(name, -1, -1)
    }
}

/// Broker `a` is the only ISR member and goes away while `b`, out of sync, is live.
fn only_out_of_sync_replica_left(c: &mut Cluster) -> (BrokerId, BrokerId) {
    let p = c.part("t", 0);
    let (a, b) = (p.leader, p.replicas[1]);
    c.advance(SESSION + 1_000, &[a]);
    c.heartbeat(b); // back, unfenced, but not in the ISR
    assert!(!c.fenced(b));
    assert_eq!(c.part("t", 0).isr, vec![a]);
    c.advance(SESSION + 1_000, &[b]);
    assert!(c.fenced(a));
    (a, b)
}

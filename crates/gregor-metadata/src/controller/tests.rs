//! The controller driven against an image that applies what it decides, as the quorum would.

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
        let controller = Controller::new(config, &image, 0);
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

// ---------------------------------------------------------------- brokers

#[test]
fn registration_heartbeat_and_unfencing() {
    let mut c = Cluster::new(config());
    let epoch = c.register(1);
    assert_eq!(epoch, 0);
    assert!(c.fenced(1));
    let registered_at = c.image.brokers[&1].registered_offset;

    // Not caught up yet: stays fenced, nothing written.
    let (response, records) = c.request_with_records(ControllerRequest::BrokerHeartbeat {
        broker_id: 1,
        broker_epoch: epoch,
        current_metadata_offset: registered_at - 1,
        want_fence: false,
        want_shutdown_now: false,
    });
    assert!(records.is_empty());
    let ControllerResponse::Heartbeat(Ok(reply)) = response else {
        panic!("{response:?}")
    };
    assert!(!reply.is_caught_up && reply.is_fenced && !reply.should_shutdown);

    // Caught up but wants to stay fenced.
    let reply = c.heartbeat_full(1, registered_at, true, false).unwrap();
    assert!(reply.is_caught_up && reply.is_fenced);
    assert!(c.fenced(1));

    // Caught up: unfenced.
    let reply = c.heartbeat(1);
    assert!(reply.is_caught_up && !reply.is_fenced);
    assert!(!c.fenced(1));

    // Epochs increase with every registration.
    assert_eq!(c.register(2), 1);

    // Stale epoch and unknown broker.
    c.epochs.insert(1, epoch + 7);
    let err = c
        .heartbeat_full(1, c.image.offset, false, false)
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::STALE_BROKER_EPOCH);
    let err = c.heartbeat_full(9, 0, false, false).unwrap_err();
    assert_eq!(code(&err), ErrorCode::BROKER_ID_NOT_REGISTERED);
}

#[test]
fn duplicate_registration_needs_an_expired_session_or_a_fenced_broker() {
    let mut c = Cluster::with_brokers(1);
    let other = Uuid::from_u128(99);
    let err = c.register_as(1, other).unwrap_err();
    assert_eq!(code(&err), ErrorCode::DUPLICATE_BROKER_REGISTRATION);

    // The same incarnation may register again (a retry): new epoch, fenced.
    let old_epoch = c.epochs[&1];
    let epoch = c.register(1);
    assert!(epoch > old_epoch);
    assert!(c.fenced(1));

    // Fenced: a new incarnation may take over.
    assert!(c.register_as(1, other).is_ok());
    c.heartbeat(1);
    assert!(!c.fenced(1));

    // Live again, then silent past its session: a new incarnation may take over.
    assert!(c.register_as(1, Uuid::from_u128(5)).is_err());
    c.now += SESSION + 1;
    assert!(c.register_as(1, Uuid::from_u128(5)).is_ok());
}

#[test]
fn reregistration_hands_over_leadership_first() {
    let mut c = Cluster::with_brokers(2);
    c.create("t", 1, 2);
    let leader = c.part("t", 0).leader;
    c.register(leader); // restarted
    let p = c.part("t", 0);
    assert_ne!(p.leader, leader);
    assert_eq!(p.isr.len(), 1);
    assert_eq!(p.leader_epoch, 1);
}

#[test]
fn expired_session_fences_and_moves_leaders_with_an_epoch_bump() {
    let mut c = Cluster::with_brokers(3);
    c.create("t", 6, 3);
    let before: Vec<PartitionState> = (0..6).map(|p| c.part("t", p)).collect();

    // Within the session nothing happens.
    c.advance(SESSION, &[2, 3]);
    assert!(!c.fenced(1));
    c.advance(2_000, &[2, 3]);
    assert!(c.fenced(1));
    assert!(!c.fenced(2) && !c.fenced(3));

    for (p, old) in before.iter().enumerate() {
        let now = c.part("t", p as i32);
        assert!(!now.isr.contains(&1));
        assert_ne!(now.leader, 1);
        if old.leader == 1 {
            assert_eq!(now.leader_epoch, old.leader_epoch + 1);
            // The next live ISR member in replica order.
            let expected = old.replicas.iter().find(|r| **r != 1).copied().unwrap();
            assert_eq!(now.leader, expected);
        } else {
            assert_eq!(now.leader, old.leader);
            assert_eq!(now.leader_epoch, old.leader_epoch);
        }
        assert_eq!(now.partition_epoch, old.partition_epoch + 1);
    }

    // A new controller gives every broker a full session from its start.
    c.controller = Controller::new(config(), &c.image, c.now);
    c.now += SESSION;
    assert!(c.tick().is_empty());
    c.now += 1;
    assert!(!c.tick().is_empty());
}

#[test]
fn the_last_isr_member_stays_and_leads_again_when_back() {
    let mut c = Cluster::with_brokers(2);
    c.create("t", 1, 2);
    let p = c.part("t", 0);
    let (first, second) = (p.leader, p.replicas[1]);

    c.advance(SESSION + 1_000, &[first]);
    assert!(c.fenced(second));
    assert_eq!(c.part("t", 0).isr, vec![first]);

    c.advance(SESSION + 1_000, &[]);
    assert!(c.fenced(first));
    let p = c.part("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![first]));

    // The out-of-sync replica returning changes nothing (unclean election is off).
    assert!(!c.heartbeat(second).is_fenced);
    assert_eq!(c.part("t", 0).leader, NO_LEADER);

    // The last ISR member returning leads again.
    let epoch = c.part("t", 0).leader_epoch;
    assert!(!c.heartbeat(first).is_fenced);
    let p = c.part("t", 0);
    assert_eq!((p.leader, p.leader_epoch), (first, epoch + 1));
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

#[test]
fn unclean_election_is_off_by_default() {
    let mut c = Cluster::with_brokers(2);
    c.create("t", 1, 2);
    let (a, _) = only_out_of_sync_replica_left(&mut c);
    let p = c.part("t", 0);
    assert_eq!((p.leader, p.isr), (NO_LEADER, vec![a]));
}

#[test]
fn unclean_election_by_controller_config() {
    let mut c = Cluster::with_config(
        2,
        ControllerConfig {
            unclean_leader_election_enable: true,
            ..config()
        },
    );
    c.create("t", 1, 2);
    let (_, b) = only_out_of_sync_replica_left(&mut c);
    let p = c.part("t", 0);
    assert_eq!((p.leader, p.isr), (b, vec![b]));
}

#[test]
fn unclean_election_by_topic_config_both_ways() {
    let mut c = Cluster::with_brokers(2);
    c.create("t", 1, 2);
    c.set_topic_config("t", "unclean.leader.election.enable", "true");
    let (_, b) = only_out_of_sync_replica_left(&mut c);
    assert_eq!(c.part("t", 0).leader, b);

    // A topic may also refuse what the controller allows.
    let mut c = Cluster::with_config(
        2,
        ControllerConfig {
            unclean_leader_election_enable: true,
            ..config()
        },
    );
    c.create("t", 1, 2);
    c.set_topic_config("t", "unclean.leader.election.enable", "false");
    only_out_of_sync_replica_left(&mut c);
    assert_eq!(c.part("t", 0).leader, NO_LEADER);

    // Enabling it later lets the tick elect.
    c.set_topic_config("t", "unclean.leader.election.enable", "true");
    assert!(
        c.tick()
            .iter()
            .any(|r| matches!(r, MetadataRecord::PartitionChange(_)))
    );
    assert_ne!(c.part("t", 0).leader, NO_LEADER);
}

#[test]
fn controlled_shutdown_moves_everything_away_then_fences() {
    let mut c = Cluster::with_brokers(3);
    c.create("t", 6, 3);
    c.create("single", 3, 1);
    let offset = c.image.offset;
    let reply = c.heartbeat_full(1, offset, false, true).unwrap();
    assert!(reply.is_fenced && reply.should_shutdown);
    assert!(c.fenced(1));
    for p in 0..6 {
        let state = c.part("t", p);
        assert_ne!(state.leader, 1);
        assert!(!state.isr.contains(&1));
    }
    for p in 0..3 {
        let state = c.part("single", p);
        if state.replicas == vec![1] {
            assert_eq!((state.leader, state.isr), (NO_LEADER, vec![1]));
        }
    }
    // Asking again changes nothing.
    let (_, records) = c.request_with_records(ControllerRequest::BrokerHeartbeat {
        broker_id: 1,
        broker_epoch: c.epochs[&1],
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown_now: true,
    });
    assert!(records.is_empty());
}

// ---------------------------------------------------------------- topics

fn leaders_and_hosts(
    c: &Cluster,
    name: &str,
) -> (BTreeMap<BrokerId, usize>, BTreeMap<BrokerId, usize>) {
    let mut leaders = BTreeMap::new();
    let mut hosts = BTreeMap::new();
    for p in c.image.topic(name).unwrap().partitions.values() {
        *leaders.entry(p.leader).or_default() += 1;
        for r in &p.replicas {
            *hosts.entry(*r).or_default() += 1;
        }
        let distinct: BTreeSet<_> = p.replicas.iter().collect();
        assert_eq!(distinct.len(), p.replicas.len());
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!(p.isr, p.replicas);
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
    }
    (leaders, hosts)
}

#[test]
fn placement_spreads_leaders_and_replicas_evenly() {
    let mut c = Cluster::with_brokers(3);
    c.create("six", 6, 3);
    let (leaders, hosts) = leaders_and_hosts(&c, "six");
    assert_eq!(leaders, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
    assert_eq!(hosts, BTreeMap::from([(1, 6), (2, 6), (3, 6)]));

    let mut c = Cluster::with_brokers(4);
    for name in ["a", "b", "c", "twelve"] {
        c.create(name, 12, 2);
        let (leaders, hosts) = leaders_and_hosts(&c, name);
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![3; 4],
            "{name}"
        );
        assert_eq!(
            hosts.values().copied().collect::<Vec<_>>(),
            vec![6; 4],
            "{name}"
        );
    }

    // Growing a topic keeps the rotation going.
    let response = c.request(ControllerRequest::CreatePartitions {
        topics: vec![NewPartitions {
            name: "twelve".into(),
            count: 16,
            assignments: None,
        }],
        validate_only: false,
    });
    assert!(matches!(&response, ControllerResponse::PartitionsCreated(r) if r[0].1.is_ok()));
    let (leaders, hosts) = leaders_and_hosts(&c, "twelve");
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![4; 4]);
    assert_eq!(hosts.values().copied().collect::<Vec<_>>(), vec![8; 4]);

    // Placement is reproducible.
    let mut again = Cluster::with_brokers(4);
    again.create("twelve", 12, 2);
    for p in 0..12 {
        assert_eq!(
            again.part("twelve", p).replicas,
            c.part("twelve", p).replicas
        );
    }
}

#[test]
fn placement_uses_only_live_brokers_and_checks_the_factor() {
    let mut c = Cluster::with_brokers(3);
    c.advance(SESSION + 1_000, &[1, 2]);
    assert!(c.fenced(3));
    let err = c.create_topic(new_topic("t", 3, 3)).unwrap_err();
    assert_eq!(code(&err), ErrorCode::INVALID_REPLICATION_FACTOR);
    assert_eq!(
        err.message,
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
         cannot be reached because only 2 broker(s) are registered."
    );
    c.create("t", 4, 2);
    assert!(
        c.image
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .all(|p| !p.replicas.contains(&3))
    );

    let err = c.create_topic(new_topic("u", 1, 0)).unwrap_err();
    assert_eq!(code(&err), ErrorCode::INVALID_REPLICATION_FACTOR);
    let err = c.create_topic(new_topic("u", 0, 1)).unwrap_err();
    assert_eq!(code(&err), ErrorCode::INVALID_PARTITIONS);

    // Defaults.
    let created = c.create_topic(new_topic("d", -1, -1)).unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (1, 1));
}

#[test]
fn create_topics_answers_each_topic_on_its_own() {
    let mut c = Cluster::with_brokers(3);
    c.create("exists", 1, 1);
    let mut with_config = new_topic("configured", 2, 2);
    with_config
        .configs
        .insert("retention.ms".into(), "1000".into());
    let (response, records) = c.request_with_records(ControllerRequest::CreateTopics {
        topics: vec![
            new_topic("exists", 1, 1),
            with_config,
            new_topic("dup", 1, 1),
            new_topic("dup", 1, 1),
        ],
        validate_only: false,
    });
    let ControllerResponse::TopicsCreated(results) = response else {
        panic!()
    };
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::TOPIC_ALREADY_EXISTS
    );
    let created = results[1].1.as_ref().unwrap();
    assert_eq!(c.image.topic_ids["configured"], created.topic_id);
    assert_eq!(
        code(results[2].1.as_ref().unwrap_err()),
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(
        code(results[3].1.as_ref().unwrap_err()),
        ErrorCode::INVALID_REQUEST
    );
    // Topic, two partitions, one config.
    assert_eq!(records.len(), 4);
    assert_eq!(c.image.topic_configs("configured")["retention.ms"], "1000");

    // validate_only writes nothing.
    let (response, records) = c.request_with_records(ControllerRequest::CreateTopics {
        topics: vec![new_topic("v", 3, 3)],
        validate_only: true,
    });
    assert!(records.is_empty());
    assert!(matches!(&response, ControllerResponse::TopicsCreated(r) if r[0].1.is_ok()));
    assert!(c.image.topic("v").is_none());
}

#[test]
fn manual_assignments_are_checked() {
    let mut c = Cluster::with_brokers(3);
    let cases: Vec<(NewTopic, ErrorCode)> = vec![
        (
            NewTopic {
                assignments: BTreeMap::from([(0, vec![1]), (2, vec![2])]),
                ..new_topic("gap", -1, -1)
            },
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            manual("dup", &[&[1, 1]]),
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            manual("unknown", &[&[1, 7]]),
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            manual("empty", &[&[]]),
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            manual("ragged", &[&[1, 2], &[3]]),
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            NewTopic {
                num_partitions: 2,
                ..manual("both", &[&[1]])
            },
            ErrorCode::INVALID_REQUEST,
        ),
    ];
    for (topic, expected) in cases {
        let name = topic.name.clone();
        let err = c.create_topic(topic).unwrap_err();
        assert_eq!(code(&err), expected, "{name}: {err:?}");
    }
    assert!(c.image.topics.is_empty());

    let created = c.create_topic(manual("ok", &[&[3, 1], &[2, 3]])).unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (2, 2));
    assert_eq!(c.part("ok", 0).leader, 3);
    assert_eq!(c.part("ok", 1).replicas, vec![2, 3]);

    // A fenced replica is left out of the ISR; an all-fenced assignment is refused.
    c.advance(SESSION + 1_000, &[1, 2]);
    c.create_topic(manual("partly", &[&[3, 1]])).unwrap();
    let p = c.part("partly", 0);
    assert_eq!((p.leader, p.isr), (1, vec![1]));
    let err = c.create_topic(manual("fenced", &[&[3]])).unwrap_err();
    assert_eq!(code(&err), ErrorCode::INVALID_REPLICA_ASSIGNMENT);
}

#[test]
fn create_partitions_delete_topics_and_configs() {
    let mut c = Cluster::with_brokers(3);
    c.create("t", 2, 2);
    let grow = |name: &str, count: i32, assignments: Option<Vec<Vec<BrokerId>>>| {
        ControllerRequest::CreatePartitions {
            topics: vec![NewPartitions {
                name: name.into(),
                count,
                assignments,
            }],
            validate_only: false,
        }
    };
    let first_error = |response: ControllerResponse| match response {
        ControllerResponse::PartitionsCreated(r) => r[0].1.clone().err().map(|e| code(&e)),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        first_error(c.request(grow("nope", 3, None))),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert_eq!(
        first_error(c.request(grow("t", 2, None))),
        Some(ErrorCode::INVALID_PARTITIONS)
    );
    assert_eq!(
        first_error(c.request(grow("t", 1, None))),
        Some(ErrorCode::INVALID_PARTITIONS)
    );
    assert_eq!(
        first_error(c.request(grow("t", 4, Some(vec![vec![1, 2]])))),
        Some(ErrorCode::INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        first_error(c.request(grow("t", 3, Some(vec![vec![1]])))),
        Some(ErrorCode::INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        first_error(c.request(grow("t", 3, Some(vec![vec![1, 9]])))),
        Some(ErrorCode::INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        first_error(c.request(grow("t", 3, Some(vec![vec![3, 1]])))),
        None
    );
    assert_eq!(c.part("t", 2).replicas, vec![3, 1]);
    assert_eq!(first_error(c.request(grow("t", 5, None))), None);
    assert_eq!(c.image.topic("t").unwrap().partitions.len(), 5);
    assert!(
        c.image
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .all(|p| p.replicas.len() == 2)
    );

    // Configs: unknown topic refused, broker resources accepted, delete = None.
    let response = c.request(ControllerRequest::AlterConfigs {
        resources: vec![
            (
                ConfigResource::Topic("nope".into()),
                vec![ConfigOp::Set("a".into(), "1".into())],
            ),
            (
                ConfigResource::Topic("t".into()),
                vec![
                    ConfigOp::Set("retention.ms".into(), "5".into()),
                    ConfigOp::Set("segment.ms".into(), "6".into()),
                    ConfigOp::Delete("segment.ms".into()),
                ],
            ),
            (
                ConfigResource::Broker(Some(42)),
                vec![ConfigOp::Set("x".into(), "y".into())],
            ),
        ],
        validate_only: false,
    });
    let ControllerResponse::ConfigsAltered(results) = response else {
        panic!()
    };
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(results[1].1.is_ok() && results[2].1.is_ok());
    assert_eq!(
        c.image.topic_configs("t"),
        BTreeMap::from([("retention.ms".to_string(), "5".to_string())])
    );
    let (_, records) = c.request_with_records(ControllerRequest::AlterConfigs {
        resources: vec![(
            ConfigResource::Broker(None),
            vec![ConfigOp::Set("x".into(), "y".into())],
        )],
        validate_only: true,
    });
    assert!(records.is_empty());

    // Delete.
    let id = c.image.topic_ids["t"];
    let response = c.request(ControllerRequest::DeleteTopics {
        names: vec!["t".into(), "t".into(), "nope".into()],
    });
    let ControllerResponse::TopicsDeleted(results) = response else {
        panic!()
    };
    assert_eq!(results[0].1, Ok(id));
    assert_eq!(
        code(results[1].1.as_ref().unwrap_err()),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        code(results[2].1.as_ref().unwrap_err()),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(c.image.topics.is_empty());
}

// ---------------------------------------------------------------- AlterPartition

#[test]
fn alter_partition_accepts_and_rejects_like_kafka() {
    let mut c = Cluster::with_brokers(3);
    c.create("t", 1, 3);
    let p = c.part("t", 0);
    let leader = p.leader;
    let follower = p.replicas[1];
    let other = p.replicas[2];

    // Shrink: partition epoch moves, leader epoch does not.
    let shrunk = c.alter_isr(leader, "t", 0, vec![leader, other]).unwrap();
    assert_eq!(
        shrunk,
        AlteredPartition {
            leader,
            leader_epoch: 0,
            isr: vec![leader, other],
            partition_epoch: 1
        }
    );
    // The same ISR again: answered, nothing written.
    let (le, pe) = (0, 1);
    let topic_id = c.image.topic_ids["t"];
    let (response, records) = c.request_with_records(ControllerRequest::AlterPartition {
        broker_id: leader,
        broker_epoch: c.epochs[&leader],
        changes: vec![IsrChange {
            topic_id,
            partition: 0,
            leader_epoch: le,
            new_isr: vec![other, leader],
            partition_epoch: pe,
        }],
    });
    assert!(records.is_empty());
    assert!(
        matches!(response, ControllerResponse::PartitionsAltered(Ok(r)) if r[0].2 == Ok(shrunk.clone()))
    );

    let reject = |c: &mut Cluster, broker, isr: Vec<BrokerId>, le, pe| {
        code(&c.alter_isr_at(broker, "t", 0, isr, le, pe).unwrap_err())
    };
    assert_eq!(
        reject(&mut c, leader, vec![leader], le, pe - 1),
        ErrorCode::INVALID_UPDATE_VERSION
    );
    assert_eq!(
        reject(&mut c, leader, vec![leader], le, pe + 1),
        ErrorCode::NOT_CONTROLLER
    );
    assert_eq!(
        reject(&mut c, follower, vec![follower], le, pe),
        ErrorCode::NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        reject(&mut c, leader, vec![other], le, pe),
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(
        reject(&mut c, leader, vec![leader, 9], le, pe),
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(
        reject(&mut c, leader, vec![leader, leader], le, pe),
        ErrorCode::INVALID_REQUEST
    );

    // A fenced replica may not join.
    c.advance(SESSION + 1_000, &[leader, other]);
    assert!(c.fenced(follower));
    let p = c.part("t", 0);
    assert_eq!(
        code(
            &c.alter_isr(leader, "t", 0, vec![leader, other, follower])
                .unwrap_err()
        ),
        ErrorCode::INELIGIBLE_REPLICA
    );
    assert_eq!(c.part("t", 0), p);

    // Unknown partition, and a stale broker epoch fails the whole request.
    assert_eq!(
        code(
            &c.alter_isr_at(leader, "t", 0, vec![leader], 0, 0)
                .err()
                .unwrap()
        ),
        ErrorCode::INVALID_UPDATE_VERSION
    );
    let response = c.request(ControllerRequest::AlterPartition {
        broker_id: leader,
        broker_epoch: c.epochs[&leader] + 1,
        changes: vec![],
    });
    assert!(
        matches!(response, ControllerResponse::PartitionsAltered(Err(e)) if code(&e) == ErrorCode::STALE_BROKER_EPOCH)
    );
    let response = c.request(ControllerRequest::AlterPartition {
        broker_id: leader,
        broker_epoch: c.epochs[&leader],
        changes: vec![IsrChange {
            topic_id: Uuid::from_u128(1),
            partition: 0,
            leader_epoch: 0,
            new_isr: vec![leader],
            partition_epoch: 0,
        }],
    });
    assert!(
        matches!(response, ControllerResponse::PartitionsAltered(Ok(r)) if code(r[0].2.as_ref().unwrap_err()) == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );

    // After a failover the old leader's epoch is fenced.
    c.heartbeat(follower);
    c.advance(SESSION + 1_000, &[follower, other]);
    let p = c.part("t", 0);
    assert_eq!(p.leader, other);
    c.heartbeat(leader);
    assert_eq!(
        reject(&mut c, leader, vec![leader, other], 0, p.partition_epoch),
        ErrorCode::FENCED_LEADER_EPOCH
    );
    // The new leader expands the ISR.
    let expanded = c
        .alter_isr(other, "t", 0, vec![other, follower, leader])
        .unwrap();
    assert_eq!(expanded.leader_epoch, p.leader_epoch);
    assert_eq!(expanded.partition_epoch, p.partition_epoch + 1);
}

// ---------------------------------------------------------------- elections

#[test]
fn preferred_election_and_auto_rebalance() {
    let mut c = Cluster::with_config(
        3,
        ControllerConfig {
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 30_000,
            ..config()
        },
    );
    c.create("t", 6, 3);
    let b = c.part("t", 0).replicas[0];
    // The two partitions `b` prefers.
    let mine: Vec<i32> = (0..6)
        .filter(|p| c.part("t", *p).replicas[0] == b)
        .collect();
    assert_eq!(mine.len(), 2);
    let results = c.elect(
        ElectionType::Preferred,
        Some(vec![("t".into(), 0), ("nope".into(), 0)]),
    );
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::ELECTION_NOT_NEEDED
    );
    assert_eq!(
        code(results[1].1.as_ref().unwrap_err()),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    // Everything is balanced: nothing to report for "all partitions".
    assert!(c.elect(ElectionType::Preferred, None).is_empty());

    // `b` loses its leaderships, comes back, but is not in the ISR yet.
    let others: Vec<BrokerId> = (1..=3).filter(|x| *x != b).collect();
    c.advance(SESSION + 1_000, &others);
    c.heartbeat(b);
    assert!(mine.iter().all(|p| c.part("t", *p).leader != b));
    let results = c.elect(ElectionType::Preferred, Some(vec![("t".into(), mine[0])]));
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE
    );
    let results = c.elect(ElectionType::Preferred, None);
    assert_eq!(results.len(), 2);

    // It rejoins every ISR; an explicit election moves one partition back.
    for p in 0..6 {
        let state = c.part("t", p);
        let mut isr = state.isr.clone();
        isr.push(b);
        c.alter_isr(state.leader, "t", p, isr).unwrap();
    }
    let epoch = c.part("t", mine[0]).leader_epoch;
    let results = c.elect(ElectionType::Preferred, Some(vec![("t".into(), mine[0])]));
    assert!(results[0].1.is_ok());
    let p = c.part("t", mine[0]);
    assert_eq!((p.leader, p.leader_epoch), (b, epoch + 1));

    // The other is moved back by the periodic rebalance, not before its interval.
    assert_ne!(c.part("t", mine[1]).leader, b);
    c.advance(30_000 - c.now % 30_000 - 1_000, &[1, 2, 3]);
    assert_ne!(c.part("t", mine[1]).leader, b);
    c.advance(1_000, &[1, 2, 3]);
    for p in 0..6 {
        let state = c.part("t", p);
        assert_eq!(state.leader, state.replicas[0]);
    }
}

#[test]
fn unclean_election_on_request() {
    let mut c = Cluster::with_brokers(2);
    c.create("t", 1, 2);
    let results = c.elect(ElectionType::Unclean, Some(vec![("t".into(), 0)]));
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::ELECTION_NOT_NEEDED
    );
    let (_, b) = only_out_of_sync_replica_left(&mut c);
    assert_eq!(c.part("t", 0).leader, NO_LEADER);
    let results = c.elect(ElectionType::Unclean, None);
    assert_eq!(results.len(), 1);
    assert!(results[0].1.is_ok());
    let p = c.part("t", 0);
    assert_eq!((p.leader, p.isr), (b, vec![b]));

    // Nobody live: not available.
    c.advance(SESSION + 1_000, &[]);
    let results = c.elect(ElectionType::Unclean, Some(vec![("t".into(), 0)]));
    assert_eq!(
        code(results[0].1.as_ref().unwrap_err()),
        ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE
    );
}

// ---------------------------------------------------------------- reassignment

#[test]
fn reassignment_starts_completes_and_cancels() {
    let mut c = Cluster::with_brokers(4);
    c.create_topic(manual("t", &[&[1, 2], &[1, 2]])).unwrap();

    // Validation.
    for bad in [vec![], vec![3, 3], vec![3, 9]] {
        let err = c.reassign("t", 0, Some(bad)).unwrap_err();
        assert_eq!(code(&err), ErrorCode::INVALID_REPLICA_ASSIGNMENT);
    }
    assert_eq!(
        code(&c.reassign("t", 0, None).unwrap_err()),
        ErrorCode::NO_REASSIGNMENT_IN_PROGRESS
    );
    assert_eq!(
        code(&c.reassign("nope", 0, Some(vec![1])).unwrap_err()),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );

    // Start: [1, 2] → [3, 4].
    c.reassign("t", 0, Some(vec![3, 4])).unwrap();
    let p = c.part("t", 0);
    assert_eq!(p.replicas, vec![3, 4, 1, 2]);
    assert_eq!(p.adding_replicas, vec![3, 4]);
    assert_eq!(p.removing_replicas, vec![1, 2]);
    assert_eq!((p.leader, p.leader_epoch), (1, 0));

    // One new replica catches up: not done yet.
    c.alter_isr(1, "t", 0, vec![1, 2, 3]).unwrap();
    assert_eq!(c.part("t", 0).adding_replicas, vec![3, 4]);
    // Both: done, leadership moves into the target.
    let altered = c.alter_isr(1, "t", 0, vec![1, 2, 3, 4]).unwrap();
    let p = c.part("t", 0);
    assert_eq!(p.replicas, vec![3, 4]);
    assert_eq!(p.isr, vec![3, 4]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert_eq!((p.leader, p.leader_epoch), (3, 1));
    assert_eq!(altered.leader, 3);

    // Cancel: back to the original replicas.
    c.reassign("t", 1, Some(vec![2, 3])).unwrap();
    let p = c.part("t", 1);
    assert_eq!(
        (
            p.replicas.clone(),
            p.adding_replicas.clone(),
            p.removing_replicas.clone()
        ),
        (vec![2, 3, 1], vec![3], vec![1])
    );
    c.alter_isr(1, "t", 1, vec![1, 2]).unwrap(); // no change in membership beyond order
    c.reassign("t", 1, None).unwrap();
    let p = c.part("t", 1);
    assert_eq!(p.replicas, vec![2, 1]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert_eq!(p.leader, 1);

    // A target whose new replicas are already in sync (a pure removal) completes at once.
    c.reassign("t", 1, Some(vec![2])).unwrap();
    let p = c.part("t", 1);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![2], vec![2], 2)
    );

    // Completion noticed by the tick too (ISR already held the new replica).
    let topic_id = c.image.topic_ids["t"];
    let mut records = vec![MetadataRecord::PartitionChange(
        crate::records::PartitionChangeRecord {
            topic_id,
            partition: 0,
            replicas: Some(vec![1, 3, 4]),
            isr: Some(vec![3, 4, 1]),
            adding_replicas: Some(vec![1]),
            removing_replicas: Some(vec![4]),
            ..Default::default()
        },
    )];
    c.apply(&records);
    records = c.tick();
    assert_eq!(records.len(), 1);
    let p = c.part("t", 0);
    assert_eq!((p.replicas, p.isr, p.leader), (vec![1, 3], vec![3, 1], 3));
    // Same leader, but a replica left: the leader epoch moves (as in Kafka).
    assert_eq!(p.leader_epoch, 2);
}

// ---------------------------------------------------------------- producer ids

#[test]
fn producer_id_blocks() {
    let mut c = Cluster::with_brokers(2);
    let allocate = |c: &mut Cluster, broker: BrokerId, epoch: i64| match c.request(
        ControllerRequest::AllocateProducerIds {
            broker_id: broker,
            broker_epoch: epoch,
        },
    ) {
        ControllerResponse::ProducerIds(result) => result,
        other => panic!("{other:?}"),
    };
    let (e1, e2) = (c.epochs[&1], c.epochs[&2]);
    assert_eq!(allocate(&mut c, 1, e1), Ok((0, 1000)));
    assert_eq!(allocate(&mut c, 2, e2), Ok((1000, 1000)));
    assert_eq!(c.image.next_producer_id, 2000);
    let err = allocate(&mut c, 1, e1 + 5).unwrap_err();
    assert_eq!(code(&err), ErrorCode::STALE_BROKER_EPOCH);
    let err = allocate(&mut c, 7, 0).unwrap_err();
    assert_eq!(code(&err), ErrorCode::STALE_BROKER_EPOCH);
}

// ---------------------------------------------------------------- random operations

/// xorshift64*: a small deterministic generator for the random walk below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn invariants_hold_over_random_operations() {
    let (mut leader_changes, mut fences) = (0, 0);
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let brokers = 5;
        let mut c = Cluster::with_config(
            brokers,
            ControllerConfig {
                unclean_leader_election_enable: seed % 3 == 0,
                auto_leader_rebalance_enable: true,
                leader_imbalance_check_interval_ms: 5_000,
                ..config()
            },
        );
        let mut alive: BTreeSet<BrokerId> = (1..=brokers).collect();
        let mut topics = 0;
        for _ in 0..300 {
            let broker = rng.below(brokers as u64) as i32 + 1;
            match rng.below(10) {
                0 => {
                    let rf = rng.below(3) as i16 + 1;
                    let partitions = rng.below(4) as i32 + 1;
                    if c.create_topic(new_topic(&format!("t{topics}"), partitions, rf))
                        .is_ok()
                    {
                        topics += 1;
                    }
                }
                1 => {
                    // Crash (heartbeats stop) or return.
                    if !alive.remove(&broker) {
                        alive.insert(broker);
                        if rng.below(2) == 0 {
                            c.register(broker);
                        }
                    }
                }
                2 => {
                    if alive.contains(&broker) {
                        let _ = c.heartbeat_full(broker, c.image.offset, false, true);
                        alive.remove(&broker);
                    }
                }
                3 | 4 => {
                    // A leader changes its ISR to a random subset containing itself.
                    let all = c
                        .image
                        .topics
                        .values()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|(i, p)| (t.name.clone(), *i, p.clone()))
                        })
                        .collect::<Vec<_>>();
                    if all.is_empty() {
                        continue;
                    }
                    let (name, index, p) = all[rng.below(all.len() as u64) as usize].clone();
                    if p.leader == NO_LEADER {
                        continue;
                    }
                    let mut isr: Vec<BrokerId> = p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| *r == p.leader || rng.below(2) == 0)
                        .collect();
                    isr.sort_unstable();
                    let _ = c.alter_isr(p.leader, &name, index, isr);
                }
                5 => {
                    let kind = if rng.below(2) == 0 {
                        ElectionType::Preferred
                    } else {
                        ElectionType::Unclean
                    };
                    c.elect(kind, None);
                }
                6 => {
                    if topics > 0 {
                        let name = format!("t{}", rng.below(topics));
                        let target: Vec<BrokerId> =
                            (1..=brokers).filter(|_| rng.below(2) == 0).collect();
                        let target = (!target.is_empty()).then_some(target);
                        let _ = c.reassign(&name, 0, target);
                    }
                }
                7 => {
                    if topics > 0 && rng.below(4) == 0 {
                        let name = format!("t{}", rng.below(topics));
                        c.request(ControllerRequest::DeleteTopics { names: vec![name] });
                    }
                }
                _ => {
                    let ms = rng.below(4_000) as i64;
                    let alive: Vec<BrokerId> = alive.iter().copied().collect();
                    c.advance(ms.max(1), &alive);
                }
            }
            // Fenced brokers are never in an ISR of more than one member.
            for topic in c.image.topics.values() {
                for p in topic.partitions.values() {
                    if p.isr.len() > 1 {
                        assert!(
                            p.isr.iter().all(|r| !c.image.brokers[r].fenced),
                            "seed {seed}: fenced member in {p:?}"
                        );
                    }
                }
            }
        }
        leader_changes += c.leader_changes;
        fences += c.fences;
    }
    // The walk did exercise failover.
    assert!(
        leader_changes > 100 && fences > 50,
        "{leader_changes} {fences}"
    );
}

//! AlterPartition, ElectLeaders, reassignments, producer ids.

use super::*;

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

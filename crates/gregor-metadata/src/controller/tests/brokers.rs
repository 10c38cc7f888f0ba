//! Registration, heartbeats, fencing, elections on failure, controlled shutdown.

use super::*;

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
    c.controller = Controller::new(config(), c.now);
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

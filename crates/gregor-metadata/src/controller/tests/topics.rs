//! CreateTopics (placement, manual assignments), CreatePartitions, DeleteTopics, configs.

use super::*;

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

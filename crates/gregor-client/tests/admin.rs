//! The admin client against a real in-process broker: every call, and the errors a user
//! meets (unknown topics and groups, bad partition counts, busy groups), with Kafka's codes.

mod common;

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_client::admin::{
    Admin, AlterConfigOp, ConfigResource, ConfigSource, NewTopic, OffsetSpec, TopicPartition,
};
use gregor_client::config::CommonConfig;
use gregor_client::{ClientError, Cluster};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, LeaveGroupRequest, ProduceRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn code(e: &ClientError) -> &'static str {
    e.code().unwrap_or(ErrorCode(-1)).name()
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// Appends `count` records with the given timestamps to partition `partition`.
async fn produce(cluster: &Cluster, topic: &str, partition: i32, timestamps: &[i64]) {
    let mut batch = RecordBatchBuilder::new(0, Compression::None);
    for (i, ts) in timestamps.iter().enumerate() {
        batch.append(i as i64, *ts, None, Some(b"v"), &[]);
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(batch.build().unwrap()))),
                ]),
        ]);
    let response = cluster
        .connection(1)
        .await
        .unwrap()
        .send(&request, 9)
        .await
        .unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_partitions_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=2\n").await;
    let admin = Admin::new(CommonConfig::new(&common::bootstrap(&broker)));

    // Validate-only creates nothing.
    let dry = admin
        .create_topics(&[NewTopic::new("dry", 4, 1)], true)
        .await
        .unwrap();
    assert_eq!(dry["dry"].as_ref().unwrap().num_partitions, 4);
    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "dry")
    );

    // Create with configs, and with broker defaults (-1).
    let created = admin
        .create_topics(
            &[
                NewTopic::new("orders", 3, 1).with_config("retention.ms", "60000"),
                NewTopic::new("defaults", -1, -1),
            ],
            false,
        )
        .await
        .unwrap();
    let orders = created["orders"].as_ref().unwrap();
    assert_eq!((orders.num_partitions, orders.replication_factor), (3, 1));
    assert!(!orders.topic_id.is_nil());
    assert_eq!(created["defaults"].as_ref().unwrap().num_partitions, 2);

    // Per-item errors with Kafka's names.
    let again = admin
        .create_topics(
            &[NewTopic::new("orders", 1, 1), NewTopic::new("bad", 0, 1)],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code(again["orders"].as_ref().unwrap_err()),
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        code(again["bad"].as_ref().unwrap_err()),
        "INVALID_PARTITIONS"
    );
    let bad_rf = admin
        .create_topics(&[NewTopic::new("rf", 1, 3)], false)
        .await
        .unwrap();
    assert_eq!(
        code(bad_rf["rf"].as_ref().unwrap_err()),
        "INVALID_REPLICATION_FACTOR"
    );
    let bad_config = admin
        .create_topics(
            &[NewTopic::new("cfg", 1, 1).with_config("retention.ms", "soon")],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code(bad_config["cfg"].as_ref().unwrap_err()),
        "INVALID_CONFIG"
    );

    // Listing flags internal topics; describing shows leaders, replicas, ISR.
    let listing = admin.list_topics().await.unwrap();
    let names: Vec<&str> = listing.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"orders") && names.contains(&"defaults"),
        "{names:?}"
    );
    assert!(
        listing
            .iter()
            .filter(|t| t.internal)
            .all(|t| t.name.starts_with("__"))
    );
    let described = admin
        .describe_topics(&["orders".into(), "missing".into()])
        .await
        .unwrap();
    let orders = described["orders"].as_ref().unwrap();
    assert_eq!(orders.partitions.len(), 3);
    assert!(!orders.internal);
    for p in &orders.partitions {
        assert_eq!(
            (p.leader, p.replicas.as_slice(), p.isr.as_slice()),
            (1, &[1][..], &[1][..])
        );
    }
    assert_eq!(
        code(described["missing"].as_ref().unwrap_err()),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    // The admin client never auto-creates through Metadata.
    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "missing")
    );

    // Partitions grow, never shrink.
    let grown = admin
        .create_partitions(&BTreeMap::from([("orders".to_string(), 5)]), false)
        .await
        .unwrap();
    grown["orders"].as_ref().unwrap();
    let described = admin.describe_topics(&["orders".into()]).await.unwrap();
    assert_eq!(described["orders"].as_ref().unwrap().partitions.len(), 5);
    let shrink = admin
        .create_partitions(
            &BTreeMap::from([("orders".to_string(), 2), ("missing".to_string(), 4)]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code(shrink["orders"].as_ref().unwrap_err()),
        "INVALID_PARTITIONS"
    );
    assert_eq!(
        code(shrink["missing"].as_ref().unwrap_err()),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Configs: the override, a default, and broker configs.
    let orders_res = ConfigResource::Topic("orders".into());
    let configs = admin
        .describe_configs(&[
            orders_res.clone(),
            ConfigResource::Broker("1".into()),
            ConfigResource::Topic("missing".into()),
        ])
        .await
        .unwrap();
    let topic_configs = configs[&orders_res].as_ref().unwrap();
    let retention = topic_configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let cleanup = topic_configs
        .iter()
        .find(|c| c.name == "cleanup.policy")
        .unwrap();
    assert_eq!(cleanup.value.as_deref(), Some("delete"));
    assert_ne!(cleanup.source, ConfigSource::DynamicTopic);
    let broker_configs = configs[&ConfigResource::Broker("1".into())]
        .as_ref()
        .unwrap();
    assert!(
        broker_configs
            .iter()
            .any(|c| c.name == "num.partitions" && c.value.as_deref() == Some("2"))
    );
    assert_eq!(
        code(
            configs[&ConfigResource::Topic("missing".into())]
                .as_ref()
                .unwrap_err()
        ),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Incremental: set one key, delete another, leave the rest.
    let changes = BTreeMap::from([(
        orders_res.clone(),
        vec![
            AlterConfigOp::Set("cleanup.policy".into(), "compact".into()),
            AlterConfigOp::Delete("retention.ms".into()),
        ],
    )]);
    let altered = admin
        .incremental_alter_configs(&changes, false)
        .await
        .unwrap();
    altered[&orders_res].as_ref().unwrap();
    let configs = admin
        .describe_configs(std::slice::from_ref(&orders_res))
        .await
        .unwrap();
    let entries = configs[&orders_res].as_ref().unwrap();
    let get = |k: &str| entries.iter().find(|c| c.name == k).unwrap().clone();
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("compact"));
    assert_eq!(get("cleanup.policy").source, ConfigSource::DynamicTopic);
    assert_ne!(get("retention.ms").source, ConfigSource::DynamicTopic);
    let bad = BTreeMap::from([(
        orders_res.clone(),
        vec![AlterConfigOp::Set("retention.ms".into(), "x".into())],
    )]);
    let refused = admin.incremental_alter_configs(&bad, false).await.unwrap();
    assert_eq!(
        code(refused[&orders_res].as_ref().unwrap_err()),
        "INVALID_CONFIG"
    );

    // Broker resources are sent to that broker; Gregor refuses dynamic broker configs.
    let broker_res = ConfigResource::Broker("1".into());
    let refused = admin
        .incremental_alter_configs(
            &BTreeMap::from([(
                broker_res.clone(),
                vec![AlterConfigOp::Set("log.retention.ms".into(), "1000".into())],
            )]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code(refused[&broker_res].as_ref().unwrap_err()),
        "INVALID_REQUEST"
    );

    // Legacy AlterConfigs replaces the whole set.
    let replaced = admin
        .alter_configs(
            &BTreeMap::from([(
                orders_res.clone(),
                BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            )]),
            false,
        )
        .await
        .unwrap();
    replaced[&orders_res].as_ref().unwrap();
    let configs = admin
        .describe_configs(std::slice::from_ref(&orders_res))
        .await
        .unwrap();
    let entries = configs[&orders_res].as_ref().unwrap();
    let get = |k: &str| entries.iter().find(|c| c.name == k).unwrap().clone();
    assert_eq!(get("retention.ms").value.as_deref(), Some("1000"));
    assert_ne!(get("cleanup.policy").source, ConfigSource::DynamicTopic);

    // Delete, then it is gone; deleting again is an error.
    let deleted = admin
        .delete_topics(&["defaults".into(), "missing".into()])
        .await
        .unwrap();
    deleted["defaults"].as_ref().unwrap();
    assert_eq!(
        code(deleted["missing"].as_ref().unwrap_err()),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "defaults")
    );

    // The cluster.
    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.controller, Some(1));
    assert!(cluster.cluster_id.is_some());
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].addr(), common::bootstrap(&broker));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "").await;
    let admin = Admin::new(CommonConfig::new(&common::bootstrap(&broker)));
    admin
        .create_topics(&[NewTopic::new("t", 2, 1)], false)
        .await
        .unwrap()["t"]
        .as_ref()
        .unwrap();
    produce(admin.cluster(), "t", 0, &[1000, 2000, 3000, 4000]).await;

    let specs = BTreeMap::from([
        (tp("t", 0), OffsetSpec::Earliest),
        (tp("t", 1), OffsetSpec::Latest),
    ]);
    let offsets = admin.list_offsets(&specs).await.unwrap();
    assert_eq!(offsets[&tp("t", 0)].offset, 0);
    assert_eq!(offsets[&tp("t", 1)].offset, 0);
    let lookup = |spec| BTreeMap::from([(tp("t", 0), spec)]);
    let at = |spec| {
        let admin = &admin;
        async move { admin.list_offsets(&lookup(spec)).await.unwrap()[&tp("t", 0)] }
    };
    assert_eq!(at(OffsetSpec::Latest).await.offset, 4);
    assert_eq!(at(OffsetSpec::Timestamp(2500)).await.offset, 2);
    assert_eq!(at(OffsetSpec::Timestamp(2000)).await.offset, 1);
    assert_eq!(at(OffsetSpec::Timestamp(9999)).await.offset, -1);
    let max = at(OffsetSpec::MaxTimestamp).await;
    assert_eq!((max.offset, max.timestamp), (3, 4000));

    let err = admin
        .list_offsets(&BTreeMap::from([(tp("t", 7), OffsetSpec::Latest)]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UNKNOWN_TOPIC_OR_PARTITION");
    let err = admin
        .list_offsets(&BTreeMap::from([(tp("nope", 0), OffsetSpec::Latest)]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UNKNOWN_TOPIC_OR_PARTITION");

    // DeleteRecords moves the log start; the earliest offset follows.
    let low = admin
        .delete_records(&BTreeMap::from([(tp("t", 0), 2)]))
        .await
        .unwrap();
    assert_eq!(low[&tp("t", 0)], 2);
    assert_eq!(at(OffsetSpec::Earliest).await.offset, 2);
    let err = admin
        .delete_records(&BTreeMap::from([(tp("t", 0), 99)]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "OFFSET_OUT_OF_RANGE");
    broker.shutdown().await.unwrap();
}

/// A classic consumer-group member made by hand: JoinGroup (twice, as KIP-394 asks), then
/// SyncGroup giving itself `partitions` of `topic`. Returns the member id.
async fn join(cluster: &Cluster, group: &str, topic: &str, partitions: Vec<i32>) -> String {
    let connection = cluster.coordinator(group, 0).await.unwrap();
    let mut member_id = String::new();
    let joined = loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(StrBytes::from_string(member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            ]);
        let response = connection.send(&request, 5).await.unwrap();
        if response.error_code == ErrorCode::MEMBER_ID_REQUIRED.0 {
            member_id = response.member_id.to_string();
            continue;
        }
        assert_eq!(response.error_code, 0);
        break response;
    };
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        AssignedPartitions::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(partitions),
    ]);
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    assignment.encode(&mut bytes, 0).unwrap();
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(bytes.freeze()),
        ]);
    let synced = connection.send(&request, 3).await.unwrap();
    assert_eq!(synced.error_code, 0);
    joined.member_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "").await;
    let bootstrap = common::bootstrap(&broker);
    let admin = Admin::new(CommonConfig::new(&bootstrap));
    admin
        .create_topics(&[NewTopic::new("t", 3, 1)], false)
        .await
        .unwrap()["t"]
        .as_ref()
        .unwrap();

    // Offsets of a group with no members can be set, read and deleted by an admin.
    let offsets = BTreeMap::from([(tp("t", 0), 5), (tp("t", 1), 7)]);
    admin.alter_group_offsets("idle", &offsets).await.unwrap();
    let committed = admin.list_group_offsets("idle").await.unwrap();
    assert_eq!(committed.len(), 2);
    assert_eq!(committed[&tp("t", 0)].offset, 5);
    assert_eq!(committed[&tp("t", 1)].offset, 7);
    admin
        .delete_group_offsets("idle", &[tp("t", 1)])
        .await
        .unwrap();
    let committed = admin.list_group_offsets("idle").await.unwrap();
    assert_eq!(committed.keys().collect::<Vec<_>>(), [&tp("t", 0)]);
    assert!(admin.list_group_offsets("never").await.unwrap().is_empty());

    // A group with a member: described with its client id, host and decoded assignment.
    let mut member_config = CommonConfig::new(&bootstrap);
    member_config.client_id = "member-client".into();
    let member_cluster = Cluster::new(member_config);
    let member_id = join(&member_cluster, "busy", "t", vec![0, 2]).await;

    let listed = admin.list_groups(&[]).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|g| g.group_id.as_str()).collect();
    assert!(ids.contains(&"idle") && ids.contains(&"busy"), "{ids:?}");
    let stable = admin.list_groups(&["stable".into()]).await.unwrap();
    assert_eq!(
        stable
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["busy"]
    );
    assert_eq!(stable[0].protocol_type, "consumer");

    let described = admin
        .describe_groups(&["busy".into(), "idle".into(), "ghost".into()])
        .await
        .unwrap();
    let busy = described["busy"].as_ref().unwrap();
    assert_eq!(
        (busy.state.as_str(), busy.protocol.as_str()),
        ("Stable", "range")
    );
    assert_eq!(busy.members.len(), 1);
    let member = &busy.members[0];
    assert_eq!(member.member_id, member_id);
    assert_eq!(member.client_id, "member-client");
    assert!(member.host.contains("127.0.0.1"), "{}", member.host);
    assert_eq!(member.assignment, [tp("t", 0), tp("t", 2)]);
    let idle = described["idle"].as_ref().unwrap();
    assert_eq!(idle.state, "Empty");
    assert!(idle.members.is_empty());
    assert_eq!(
        code(described["ghost"].as_ref().unwrap_err()),
        "GROUP_ID_NOT_FOUND"
    );

    // An active group refuses admin commits and deletion.
    let err = admin
        .alter_group_offsets("busy", &BTreeMap::from([(tp("t", 0), 1)]))
        .await
        .unwrap_err();
    assert!(err.code().is_some(), "{err}");
    let deleted = admin
        .delete_groups(&["busy".into(), "idle".into(), "ghost".into()])
        .await
        .unwrap();
    assert_eq!(
        code(deleted["busy"].as_ref().unwrap_err()),
        "NON_EMPTY_GROUP"
    );
    deleted["idle"].as_ref().unwrap();
    assert_eq!(
        code(deleted["ghost"].as_ref().unwrap_err()),
        "GROUP_ID_NOT_FOUND"
    );
    assert!(admin.list_group_offsets("idle").await.unwrap().is_empty());

    // Once the member leaves, the group is empty and can be reset and deleted.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("busy")))
        .with_member_id(StrBytes::from_string(member_id));
    let left = member_cluster
        .coordinator("busy", 0)
        .await
        .unwrap()
        .send(&leave, 2)
        .await
        .unwrap();
    assert_eq!(left.error_code, 0);
    admin
        .alter_group_offsets("busy", &BTreeMap::from([(tp("t", 2), 3)]))
        .await
        .unwrap();
    assert_eq!(
        admin.list_group_offsets("busy").await.unwrap()[&tp("t", 2)].offset,
        3
    );
    admin.delete_groups(&["busy".into()]).await.unwrap()["busy"]
        .as_ref()
        .unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_cluster_fails_fast() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    // With a 10-minute request timeout, only failing at once (no retry loop until the
    // timeout) finishes within the generous bound below.
    let mut config = CommonConfig::new(&addr);
    config.request_timeout = std::time::Duration::from_secs(600);
    let admin = Admin::new(config);
    let calls = async {
        let err = admin.list_topics().await.unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
        let err = admin.describe_groups(&["g".into()]).await.unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), calls)
        .await
        .expect("an unreachable cluster fails at once, not after the request timeout");
}

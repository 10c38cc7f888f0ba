//! Every advertised API at every advertised version: a request encoded at that version gets a
//! response that decodes at that version. Catches response fields set outside the versions that
//! carry them (which the encoder rejects, and which would close the client's connection).

mod common;

use std::net::TcpStream;

use bytes::Bytes;
use gregor_broker::SUPPORTED_APIS;
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions as ElectLeadersTopicPartitions;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch() -> Bytes {
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    b.append(0, 1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    b.build().unwrap().into()
}

/// A representative request for `key` at `version`, touching topic "t" partition 0.
fn request(key: ApiKey, version: i16, topic_id: uuid::Uuid) -> RequestKind {
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::Metadata => {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("t"))),
            ])))
        }
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(&format!("c{version}")))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]))
        }
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(name("t"))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch())),
                        ]),
                ]),
        ),
        ApiKey::Fetch => {
            let topic = if version >= 13 {
                FetchTopic::default().with_topic_id(topic_id)
            } else {
                FetchTopic::default().with_topic(name("t"))
            };
            RequestKind::Fetch(
                FetchRequest::default()
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![topic.with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(0)
                                .with_partition_max_bytes(1 << 20),
                        ])]),
            )
        }
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default().with_name(name("t")).with_partitions(vec![
                ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1),
                ListOffsetsPartition::default().with_partition_index(0).with_timestamp(0),
            ]),
        ]))
        }
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(
                vec![
            OffsetForLeaderTopic::default().with_topic(name("t")).with_partitions(vec![
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0),
            ]),
        ],
            ))
        }
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default()
                .with_include_synonyms(version >= 1)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("t")),
                ]),
        ),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(
            ElectLeadersRequest::default()
                .with_timeout_ms(5000)
                .with_topic_partitions(Some(vec![
                    ElectLeadersTopicPartitions::default()
                        .with_topic(name("t"))
                        .with_partitions(vec![0]),
                ])),
        ),
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000),
        ),
        ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::default().with_timeout_ms(5000),
        ),
        ApiKey::WriteTxnMarkers => {
            RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default().with_markers(vec![
                WritableTxnMarker::default()
                    .with_producer_id(ProducerId(7))
                    .with_transaction_result(false)
                    .with_topics(vec![
                        WritableTxnMarkerTopic::default()
                            .with_name(name("t"))
                            .with_partition_indexes(vec![0]),
                    ]),
            ]))
        }
        ApiKey::DescribeProducers => {
            RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(vec![
                kafka_protocol::messages::describe_producers_request::TopicRequest::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0]),
            ]))
        }
        key if is_group_api(key) => group_request(key, version),
        key if is_txn_api(key) => txn_request(key, version),
        other => panic!("add a sample request for {other:?}"),
    }
}

fn is_group_api(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::TxnOffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::OffsetDelete
            | ApiKey::ListGroups
            | ApiKey::DescribeGroups
            | ApiKey::DeleteGroups
            | ApiKey::ConsumerGroupHeartbeat
            | ApiKey::ConsumerGroupDescribe
    )
}

fn is_txn_api(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::InitProducerId
            | ApiKey::AddPartitionsToTxn
            | ApiKey::AddOffsetsToTxn
            | ApiKey::EndTxn
            | ApiKey::DescribeTransactions
            | ApiKey::ListTransactions
    )
}

/// Transaction requests: an idempotent InitProducerId gets a producer id; the others name a
/// transactional id nobody initialised, so they get its errors in their own shape.
fn txn_request(key: ApiKey, version: i16) -> RequestKind {
    let tx = || TransactionalId(text("tx"));
    match key {
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::AddPartitionsToTxn => {
            use kafka_protocol::messages::add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let topics = vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![0]),
            ];
            RequestKind::AddPartitionsToTxn(if version >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(tx())
                        .with_producer_id(ProducerId(1))
                        .with_verify_only(true)
                        .with_topics(topics),
                ])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(tx())
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_topics(topics)
            })
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(tx())
                .with_group_id(group("g")),
        ),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(tx())),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![tx()]),
        ),
        ApiKey::ListTransactions => {
            RequestKind::ListTransactions(ListTransactionsRequest::default())
        }
        other => unreachable!("{other:?} is not a transaction API"),
    }
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Group requests that reach the interesting answers: a static JoinGroup completes at once
/// (its leader response lists members with instance ids), an admin OffsetCommit stores an
/// offset that OffsetFetch returns with its leader epoch, a TxnOffsetCommit leaves an open
/// transaction that OffsetFetch with `require_stable` reports unstable, a KIP-848 join gets an
/// assignment.
fn group_request(key: ApiKey, version: i16) -> RequestKind {
    match key {
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![text("g")])
        } else {
            FindCoordinatorRequest::default().with_key(text("g"))
        }),
        ApiKey::JoinGroup => {
            let join = JoinGroupRequest::default()
                .with_group_id(group(&format!("j{version}")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(text("range"))
                        .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\0")),
                ]);
            let join = if version >= 1 {
                join.with_rebalance_timeout_ms(10_000)
            } else {
                join
            };
            RequestKind::JoinGroup(if version >= 5 {
                join.with_group_instance_id(Some(text("instance")))
            } else {
                join
            })
        }
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(group("j9"))
                .with_member_id(text("unknown")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group("j9"))
                .with_member_id(text("unknown")),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(if version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group("j9"))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(text("unknown")),
                ])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group("j9"))
                .with_member_id(text("unknown"))
        }),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(group("c"))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(text("m"))),
                        ]),
                ]),
        ),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(text("tx")))
                .with_group_id(group("tc"))
                .with_producer_id(ProducerId(1000))
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(text("m"))),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(if version >= 8 {
            OffsetFetchRequest::default()
                .with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(group("c")),
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(group("tc")),
                ])
                .with_require_stable(true)
        } else if version == 7 {
            OffsetFetchRequest::default()
                .with_group_id(group("tc"))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name("t"))
                        .with_partition_indexes(vec![0]),
                ]))
                .with_require_stable(true)
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group("c"))
                .with_topics((version >= 2).then(Vec::new))
        }),
        ApiKey::OffsetDelete => {
            RequestKind::OffsetDelete(OffsetDeleteRequest::default().with_group_id(group("nope")))
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![
                group("c"),
                group("j9"),
                group("none"),
            ]))
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group("none")]),
        ),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&format!("k{version}")))
                .with_member_id(text(&format!("member-{version}")))
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![name("t")])),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("k0"), group("c")]),
        ),
        other => unreachable!("{other:?} is not a group API"),
    }
}

fn exchange(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &RequestKind,
) -> Option<ResponseKind> {
    let frame = common::frame(key, version, 5, |buf| request.encode(buf, version).unwrap());
    let mut body = common::body(common::send(stream, &frame)?, key, version, 5);
    Some(ResponseKind::decode(key, &mut body, version).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_at_every_advertised_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let mut setup = TcpStream::connect(addr).unwrap();
        let created = exchange(
            &mut setup,
            ApiKey::CreateTopics,
            7,
            &RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                    CreatableTopic::default()
                        .with_name(name("t"))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ])),
        );
        let Some(ResponseKind::CreateTopics(created)) = created else {
            panic!("no CreateTopics response")
        };
        let topic_id = created.topics[0].topic_id;
        let mut failures = Vec::new();
        for api in SUPPORTED_APIS {
            for version in api.min..=api.max {
                let mut stream = TcpStream::connect(addr).unwrap();
                if exchange(
                    &mut stream,
                    api.key,
                    version,
                    &request(api.key, version, topic_id),
                )
                .is_none()
                {
                    failures.push(format!("{:?} v{version}", api.key));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "connection closed instead of a response: {failures:?}"
        );

        // A version the library knows but Gregor does not advertise: UNSUPPORTED_VERSION (35)
        // in the response's own shape, not a closed connection.
        for (key, version) in [
            (ApiKey::Produce, 12),
            (ApiKey::ListOffsets, 9),
            (ApiKey::Fetch, 17),
            (ApiKey::Metadata, 13),
            (ApiKey::Metadata, 3),
            (ApiKey::EndTxn, 5),
        ] {
            let mut stream = TcpStream::connect(addr).unwrap();
            let response = exchange(&mut stream, key, version, &request(key, version, topic_id));
            let code = match response {
                Some(ResponseKind::Produce(r)) => r.responses[0].partition_responses[0].error_code,
                Some(ResponseKind::ListOffsets(r)) => r.topics[0].partitions[0].error_code,
                Some(ResponseKind::Fetch(r)) => r.error_code,
                Some(ResponseKind::Metadata(r)) => r.topics[0].error_code,
                Some(ResponseKind::EndTxn(r)) => r.error_code,
                other => panic!("{key:?} v{version}: {other:?}"),
            };
            assert_eq!(code, 35, "{key:?} v{version}");
        }
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

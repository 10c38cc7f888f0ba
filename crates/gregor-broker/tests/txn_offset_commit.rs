//! TxnOffsetCommit over the wire: the offsets of an open transaction are not served, and
//! OffsetFetch with `require_stable` answers `UNSTABLE_OFFSET_COMMIT` (88) for them at the
//! partition level, in the single-group (v7) and the batched (v8+) shape.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const ILLEGAL_GENERATION: i16 = 22;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn exchange<R: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &impl kafka_protocol::protocol::Encodable,
) -> R {
    let frame = common::message_frame(key, version, 9, request);
    let mut body = common::body(common::send(stream, &frame).unwrap(), key, version, 9);
    R::decode(&mut body, version).unwrap()
}

fn txn_commit(group: &str, generation: i32, member: &str) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text("tx")))
        .with_group_id(GroupId(text(group)))
        .with_producer_id(ProducerId(5))
        .with_producer_epoch(0)
        .with_generation_id(generation)
        .with_member_id(text(member))
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text("t")))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42),
                ]),
        ])
}

fn partition_error(response: &TxnOffsetCommitResponse) -> i16 {
    response.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transaction_offsets_are_unstable() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let _: CreateTopicsResponse = exchange(
            &mut stream,
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(TopicName(text("t")))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        );
        let _: FindCoordinatorResponse = exchange(
            &mut stream,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![text("g")]),
        );
        // The offsets topic was just created: its groups load in the background.
        let deadline = Instant::now() + Duration::from_secs(30);
        let committed = loop {
            let r: TxnOffsetCommitResponse = exchange(
                &mut stream,
                ApiKey::TxnOffsetCommit,
                3,
                &txn_commit("g", -1, ""),
            );
            if partition_error(&r) != COORDINATOR_LOAD_IN_PROGRESS || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(partition_error(&committed), 0);

        let fetch_v7 = |stream: &mut TcpStream, require_stable: bool| {
            let r: OffsetFetchResponse = exchange(
                stream,
                ApiKey::OffsetFetch,
                7,
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(text("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(text("t")))
                            .with_partition_indexes(vec![0]),
                    ]))
                    .with_require_stable(require_stable),
            );
            assert_eq!(r.error_code, 0);
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.committed_offset)
        };
        assert_eq!(fetch_v7(&mut stream, true), (UNSTABLE_OFFSET_COMMIT, -1));
        assert_eq!(fetch_v7(&mut stream, false), (0, -1), "not committed yet");

        let r: OffsetFetchResponse = exchange(
            &mut stream,
            ApiKey::OffsetFetch,
            8,
            &OffsetFetchRequest::default()
                .with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(text("g")))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(TopicName(text("t")))
                                .with_partition_indexes(vec![0]),
                        ])),
                ])
                .with_require_stable(true),
        );
        assert_eq!(r.groups[0].error_code, 0);
        assert_eq!(
            r.groups[0].topics[0].partitions[0].error_code,
            UNSTABLE_OFFSET_COMMIT
        );

        // v3+ carries the member: a member's commit to a group that does not exist is refused.
        let r: TxnOffsetCommitResponse = exchange(
            &mut stream,
            ApiKey::TxnOffsetCommit,
            3,
            &txn_commit("ghost", 4, "m"),
        );
        assert_eq!(partition_error(&r), ILLEGAL_GENERATION);
        // Before v3 there is no member to check: the group is created to hold the offsets.
        let r: TxnOffsetCommitResponse = exchange(
            &mut stream,
            ApiKey::TxnOffsetCommit,
            0,
            &txn_commit("ghost", -1, ""),
        );
        assert_eq!(partition_error(&r), 0);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

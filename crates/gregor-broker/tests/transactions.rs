//! The transaction coordinator end to end on one broker, over the wire: FindCoordinator for a
//! transactional id, InitProducerId (and its epoch bumps), AddPartitionsToTxn (and KIP-890
//! verification), EndTxn, DescribeTransactions, ListTransactions, and the coordinator's state
//! surviving a restart (replayed from `__transaction_state`).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const NOT_COORDINATOR: i16 = 16;
const LOAD_IN_PROGRESS: i16 = 14;
const NOT_AVAILABLE: i16 = 15;
const PRODUCER_FENCED: i16 = 90;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;

fn create_topic(addr: SocketAddr) {
    let create = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(text("t")))
            .with_num_partitions(2)
            .with_replication_factor(1),
    ]);
    call(
        addr,
        ApiKey::CreateTopics,
        7,
        RequestKind::CreateTopics(create),
    );
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn call(addr: SocketAddr, key: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
    let mut stream = TcpStream::connect(addr).unwrap();
    let frame = common::frame(key, version, 9, |buf| request.encode(buf, version).unwrap());
    let response = common::send(&mut stream, &frame).expect("a response");
    let mut body = common::body(response, key, version, 9);
    ResponseKind::decode(key, &mut body, version).unwrap()
}

/// Retries `attempt` while the coordinator is not ready yet (it creates and loads its topic).
fn until_ready<T>(mut attempt: impl FnMut() -> (i16, T)) -> (i16, T) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, value) = attempt();
        let retriable = matches!(code, NOT_COORDINATOR | LOAD_IN_PROGRESS | NOT_AVAILABLE);
        if !retriable || Instant::now() > deadline {
            return (code, value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn init(addr: SocketAddr, version: i16, expected: (i64, i16)) -> (i16, (i64, i16)) {
    init_with_timeout(addr, version, expected, 60_000)
}

fn init_with_timeout(
    addr: SocketAddr,
    version: i16,
    expected: (i64, i16),
    timeout_ms: i32,
) -> (i16, (i64, i16)) {
    until_ready(|| {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(text("tx"))))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(expected.0))
            .with_producer_epoch(expected.1);
        match call(
            addr,
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(request),
        ) {
            ResponseKind::InitProducerId(r) => (r.error_code, (r.producer_id.0, r.producer_epoch)),
            other => panic!("{other:?}"),
        }
    })
}

fn add_partitions(addr: SocketAddr, version: i16, pid: i64, epoch: i16) -> i16 {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text("tx")))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text("t")))
                .with_partitions(vec![0]),
        ]);
    match call(
        addr,
        ApiKey::AddPartitionsToTxn,
        version,
        RequestKind::AddPartitionsToTxn(request),
    ) {
        ResponseKind::AddPartitionsToTxn(r) => {
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        }
        other => panic!("{other:?}"),
    }
}

fn verify(addr: SocketAddr, pid: i64, epoch: i16, partitions: Vec<i32>) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(text("tx")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(text("t")))
                    .with_partitions(partitions),
            ]),
    ]);
    match call(
        addr,
        ApiKey::AddPartitionsToTxn,
        5,
        RequestKind::AddPartitionsToTxn(request),
    ) {
        ResponseKind::AddPartitionsToTxn(r) => r.results_by_transaction[0].topic_results[0]
            .results_by_partition
            .iter()
            .map(|p| p.partition_error_code)
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn describe(addr: SocketAddr) -> describe_transactions_response::TransactionState {
    let (_, state) = until_ready(|| {
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(text("tx"))]);
        match call(
            addr,
            ApiKey::DescribeTransactions,
            0,
            RequestKind::DescribeTransactions(request),
        ) {
            ResponseKind::DescribeTransactions(mut r) => {
                let s = r.transaction_states.remove(0);
                (s.error_code, s)
            }
            other => panic!("{other:?}"),
        }
    });
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_coordinated_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    let (pid, epoch) = tokio::task::spawn_blocking(move || {
        create_topic(addr);
        // The first lookup creates __transaction_state; this broker leads every partition.
        let (code, node) = until_ready(|| {
            let request = FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_key(text("tx"));
            match call(
                addr,
                ApiKey::FindCoordinator,
                3,
                RequestKind::FindCoordinator(request),
            ) {
                ResponseKind::FindCoordinator(r) => (r.error_code, r.node_id.0),
                other => panic!("{other:?}"),
            }
        });
        assert_eq!((code, node), (0, 1));

        let (code, (pid, epoch)) = init(addr, 4, (-1, -1));
        assert_eq!((code, epoch), (0, 0));
        assert!(pid >= 0);
        // A new instance of the producer bumps the epoch; KIP-360 with the current epoch too.
        let (code, (same, epoch)) = init(addr, 4, (-1, -1));
        assert_eq!((code, same, epoch), (0, pid, 1));
        let (code, (_, epoch)) = init(addr, 4, (pid, 1));
        assert_eq!((code, epoch), (0, 2));
        let (code, _) = init(addr, 4, (pid, 0));
        assert_eq!(code, PRODUCER_FENCED);
        let (code, _) = init(addr, 3, (pid, 0));
        assert_eq!(
            code, INVALID_PRODUCER_EPOCH,
            "v3 does not know PRODUCER_FENCED"
        );

        // The fenced epoch cannot add partitions; the current one can.
        assert_eq!(add_partitions(addr, 3, pid, 1), PRODUCER_FENCED);
        assert_eq!(add_partitions(addr, 1, pid, 1), INVALID_PRODUCER_EPOCH);
        assert_eq!(add_partitions(addr, 3, pid, 2), 0);
        assert_eq!(verify(addr, pid, 2, vec![0, 1]), vec![0, INVALID_TXN_STATE]);
        assert_eq!(verify(addr, pid, 1, vec![0]), vec![PRODUCER_FENCED]);

        let listed = match call(
            addr,
            ApiKey::ListTransactions,
            1,
            RequestKind::ListTransactions(
                ListTransactionsRequest::default()
                    .with_state_filters(vec![text("Ongoing"), text("Bogus")])
                    .with_duration_filter(-1),
            ),
        ) {
            ResponseKind::ListTransactions(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(listed.error_code, 0);
        assert_eq!(listed.unknown_state_filters, vec![text("Bogus")]);
        assert_eq!(listed.transaction_states.len(), 1);
        assert_eq!(listed.transaction_states[0].producer_id.0, pid);

        let described = describe(addr);
        assert_eq!(described.transaction_state.as_str(), "Ongoing");
        assert_eq!(described.topics[0].partitions, vec![0]);

        let end = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(text("tx")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(2)
            .with_committed(true);
        match call(addr, ApiKey::EndTxn, 3, RequestKind::EndTxn(end)) {
            ResponseKind::EndTxn(r) => assert_eq!(r.error_code, 0),
            other => panic!("{other:?}"),
        }
        let state = describe(addr).transaction_state;
        assert!(
            ["PrepareCommit", "CompleteCommit"].contains(&state.as_str()),
            "{state:?}"
        );
        (pid, 2)
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();

    // A restarted coordinator replays __transaction_state: same producer, same epoch.
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let described = describe(addr);
        assert_eq!(described.error_code, 0);
        assert_eq!(
            (described.producer_id.0, described.producer_epoch),
            (pid, epoch)
        );
        assert!(
            ["PrepareCommit", "CompleteCommit"].contains(&described.transaction_state.as_str()),
            "{described:?}"
        );
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let props = format!(
        "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\n\
         transaction.abort.timed.out.transaction.cleanup.interval.ms=50\n\
         transaction.max.timeout.ms=5000\n",
        dir.path().display()
    );
    let (config, _) = gregor_broker::config::BrokerConfig::from_properties(&props, &[]).unwrap();
    let broker = gregor_broker::RunningBroker::start(config).await.unwrap();
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        create_topic(addr);
        let (code, _) = init_with_timeout(addr, 4, (-1, -1), 5001);
        assert_eq!(code, INVALID_TRANSACTION_TIMEOUT);
        let (code, (pid, epoch)) = init_with_timeout(addr, 4, (-1, -1), 300);
        assert_eq!((code, epoch), (0, 0));
        assert_eq!(add_partitions(addr, 3, pid, 0), 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        let described = loop {
            let d = describe(addr);
            if d.transaction_state.as_str() != "Ongoing" || Instant::now() > deadline {
                break d;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            ["PrepareAbort", "CompleteAbort"].contains(&described.transaction_state.as_str()),
            "{described:?}"
        );
        assert_eq!(described.producer_epoch, 1, "the abort bumps the epoch");
        // The producer that went quiet is fenced.
        assert_eq!(add_partitions(addr, 3, pid, 0), PRODUCER_FENCED);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

//! Connections, version negotiation, metadata and coordinator lookup against a real broker.

mod common;

use gregor_client::config::CommonConfig;
use gregor_client::{ClientError, Cluster};
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::ApiVersionsRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_versions_and_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=3\n").await;
    let cluster = Cluster::new(CommonConfig::new(&common::bootstrap(&broker)));

    // Auto-creation through metadata, as librdkafka and the Java client do it.
    let topic = cluster.topic("auto").await.unwrap();
    assert_eq!(topic.partitions.len(), 3);
    assert!(topic.partitions.iter().all(|p| p.leader == 1));
    let metadata = cluster.metadata().await.unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    assert!(metadata.cluster_id.is_some());

    // The highest version both sides speak is chosen, capped by the caller.
    let connection = cluster.any_connection().await.unwrap();
    assert_eq!(connection.version::<ApiVersionsRequest>(2).unwrap(), 2);
    assert_eq!(connection.version::<ApiVersionsRequest>(99).unwrap(), 4);

    // Many requests in flight on one connection all find their answers.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let connection = connection.clone();
            tokio::spawn(async move { connection.send(&ApiVersionsRequest::default(), 3).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().error_code, 0);
    }

    cluster.coordinator("some-group", 0).await.unwrap();
    let err = cluster.coordinator("txn", 1).await.err().unwrap();
    assert_eq!(err.code(), Some(ErrorCode::COORDINATOR_NOT_AVAILABLE));
    assert!(err.is_retriable());
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_bootstrap_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let cluster = Cluster::new(CommonConfig::new(&addr));
    let err = cluster.refresh(None).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}

//! Connections, version negotiation, metadata and coordinator lookup against a real broker.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_client::config::CommonConfig;
use gregor_client::{Admin, ClientError, Cluster};
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::StrBytes;

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
    // Transactional ids have their coordinator too (the first lookup creates
    // `__transaction_state`), and its id comes back with it.
    let (node, _) = cluster.find_coordinator("txn", 1).await.unwrap();
    assert_eq!(node, 1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_timed_out_request_leaves_the_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "").await;
    let cluster = Cluster::new(CommonConfig::new(&common::bootstrap(&broker)));
    let connection = cluster.any_connection().await.unwrap();

    // A frame of several MiB cannot be written in one go: cancelling its request right after
    // the first poll used to leave half of it on the socket, garbling every later request.
    let big = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_string("a".repeat(8 << 20)))
        .with_client_software_version(StrBytes::from_static_str("1"));
    for _ in 0..3 {
        let cancelled = connection.send(&big, 3);
        tokio::pin!(cancelled);
        let _ = futures_poll_once(cancelled.as_mut()).await;
    }
    let err = connection
        .send_with_timeout(&big, 3, Duration::from_millis(1))
        .await
        .err();
    assert!(
        matches!(err, None | Some(ClientError::Timeout(1, _))),
        "{err:?}"
    );
    let answer = connection
        .send(&ApiVersionsRequest::default(), 3)
        .await
        .unwrap();
    assert_eq!(answer.error_code, 0);
    assert!(!connection.is_closed());
    broker.shutdown().await.unwrap();
}

/// Polls `future` once, then drops interest in it (as a `select!` or timeout would).
async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_does_not_hold_up_connecting_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "").await;
    // Accepts TCP connections (the kernel does) but never answers ApiVersions.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let mut config = CommonConfig::new(&common::bootstrap(&broker));
    config.request_timeout = Duration::from_secs(10);
    let cluster = Cluster::new(config);

    let stuck = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.connection_to(&silent_addr).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster
        .connection_to(&common::bootstrap(&broker))
        .await
        .unwrap();
    // Had it waited for the silent broker's connect, that one would have timed out first.
    assert!(!stuck.is_finished());
    stuck.abort();
    drop(silent);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_errors_are_kept_and_cached_topics_expire() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), "num.partitions=1\n").await;
    let mut config = CommonConfig::new(&common::bootstrap(&broker));
    config.metadata_max_age = Duration::ZERO;
    let cluster = Cluster::new(config.clone());

    // The topic's own error, not a blanket (retriable) UNKNOWN_TOPIC_OR_PARTITION.
    let err = cluster.topic("no/such name").await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::INVALID_TOPIC_EXCEPTION),
        "{err}"
    );
    assert!(!err.is_retriable());

    // A topic older than metadata.max.age.ms is fetched again: added partitions show.
    assert_eq!(cluster.topic("grows").await.unwrap().partitions.len(), 1);
    let admin = Admin::new(config);
    admin
        .create_partitions(&BTreeMap::from([("grows".to_string(), 3)]), false)
        .await
        .unwrap()["grows"]
        .as_ref()
        .unwrap();
    assert_eq!(cluster.topic("grows").await.unwrap().partitions.len(), 3);
    broker.shutdown().await.unwrap();
}

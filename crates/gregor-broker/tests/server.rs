//! The broker's network layer over raw sockets: ApiVersions (including the v0 answer to an
//! unsupported version), Metadata, bad frames that must close only their own connection, and a
//! clean shutdown.

mod common;

use std::net::{SocketAddr, TcpStream};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn frame(key: ApiKey, version: i16, correlation_id: i32, message: &impl Encodable) -> Vec<u8> {
    common::message_frame(key, version, correlation_id, message)
}

/// Sends raw bytes and reads one response frame; `None` if the broker closed the connection.
fn exchange(stream: &mut TcpStream, request: &[u8]) -> Option<Bytes> {
    common::send(stream, request)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
}

fn api_versions(stream: &mut TcpStream, version: i16) -> ApiVersionsResponse {
    // Versions the client library cannot encode are sent as v3 bodies with the version patched,
    // as a newer client would send them.
    let mut request = frame(
        ApiKey::ApiVersions,
        version.min(3),
        7,
        &ApiVersionsRequest::default(),
    );
    request[6..8].copy_from_slice(&version.to_be_bytes());
    let mut response = exchange(stream, &request).unwrap();
    assert_eq!(response.get_i32(), 7, "correlation id");
    // ApiVersions responses always use header v0, and a v0 body when the version was refused.
    let body_version = if version > 4 { 0 } else { version };
    ApiVersionsResponse::decode(&mut response, body_version).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_metadata_bad_frames_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let mut client = connect(addr);
        for version in [0, 3, 4] {
            let response = api_versions(&mut client, version);
            assert_eq!(response.error_code, 0);
            let keys: Vec<(i16, i16, i16)> = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect();
            assert!(
                keys.contains(&(18, 0, 4)) && keys.contains(&(3, 4, 12)),
                "{keys:?}"
            );
            assert_eq!(keys.len(), gregor_broker::SUPPORTED_APIS.len());
        }
        // An ApiVersions version the broker does not know: v0 body, UNSUPPORTED_VERSION, catalog.
        let refused = api_versions(&mut client, 9);
        assert_eq!(refused.error_code, 35);
        assert!(!refused.api_keys.is_empty());

        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(vec![
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("missing")))),
            ]));
        let mut response =
            exchange(&mut client, &frame(ApiKey::Metadata, 12, 8, &request)).unwrap();
        assert_eq!(response.get_i32(), 8);
        let _tagged = response.get_u8(); // flexible response header: empty tagged fields
        let metadata = MetadataResponse::decode(&mut response, 12).unwrap();
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].port, i32::from(addr.port()));
        assert_eq!(metadata.brokers[0].host.as_str(), "127.0.0.1");
        assert_eq!(metadata.cluster_id.as_ref().map(|c| c.len()), Some(22));
        assert_eq!(
            metadata.topics[0].error_code, 3,
            "UNKNOWN_TOPIC_OR_PARTITION"
        );

        // Each kind of bad input closes its own connection only.
        let mut unknown_key = frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default());
        unknown_key[4..6].copy_from_slice(&999i16.to_be_bytes());
        let oversized = 200_000_000i32.to_be_bytes().to_vec();
        let negative = (-5i32).to_be_bytes().to_vec();
        let short = [0, 0, 0, 3, 0, 18, 0].to_vec();
        let mut garbage_body = frame(ApiKey::Metadata, 12, 2, &MetadataRequest::default());
        let len = garbage_body.len();
        garbage_body[14..len].fill(0xff);
        for bad in [unknown_key, oversized, negative, short, garbage_body] {
            let mut victim = connect(addr);
            assert!(
                exchange(&mut victim, &bad).is_none(),
                "connection must be closed"
            );
        }
        assert_eq!(
            api_versions(&mut client, 3).error_code,
            0,
            "other connections carry on"
        );
        assert_eq!(
            api_versions(&mut connect(addr), 3).error_code,
            0,
            "new connections work"
        );
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    assert!(dir.path().join("meta.properties").exists());
}

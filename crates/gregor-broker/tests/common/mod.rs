//! Raw-socket helpers shared by the broker's integration tests: start a broker on a free port,
//! frame a request, read a response.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_broker::RunningBroker;
use gregor_broker::config::BrokerConfig;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A single-node broker on 127.0.0.1 with a free port and its data in `dir`; a group's first
/// rebalance does not wait for more members (`group.initial.rebalance.delay.ms=0`).
pub async fn start(dir: &std::path::Path) -> RunningBroker {
    let props = format!(
        "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\ngroup.initial.rebalance.delay.ms=0\n",
        dir.display()
    );
    let (config, _) = BrokerConfig::from_properties(&props, &[]).unwrap();
    RunningBroker::start(config).await.unwrap()
}

/// A size-prefixed request: header for `key`/`version`, then whatever `body` writes.
pub fn frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: impl FnOnce(&mut BytesMut),
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body(&mut buf);
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// A size-prefixed request whose body is a message encoded at `version`.
pub fn message_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    message: &impl Encodable,
) -> Vec<u8> {
    frame(key, version, correlation_id, |buf| {
        message.encode(buf, version).unwrap()
    })
}

/// Sends raw bytes and reads one response frame (correlation id first); `None` if the broker
/// closed the connection.
pub fn send(stream: &mut TcpStream, request: &[u8]) -> Option<Bytes> {
    stream.write_all(request).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// Strips the response header (correlation id, checked, and tagged fields when flexible).
pub fn body(mut response: Bytes, key: ApiKey, version: i16, correlation_id: i32) -> Bytes {
    assert_eq!(response.get_i32(), correlation_id, "correlation id");
    if key.response_header_version(version) >= 1 {
        response.advance(1); // no tagged fields
    }
    response
}

//! `gregor-client`: an async Rust client for Gregor and any other Kafka-compatible cluster.
//!
//! - [`config`]: settings under Kafka's client property names (`bootstrap.servers`, `acks`,
//!   `group.id`…), validated when built.
//! - [`connection`]: one pipelined connection per broker, with API version negotiation.
//! - [`producer`]: batching, partitioning (Kafka's murmur2), retries; results as futures.
//! - [`consumer`]: assigned partitions or a consumer group (classic protocol: range,
//!   roundrobin, cooperative-sticky), fetching ahead of `poll`, commits, seeks,
//!   `read_committed`.
//! - [`admin`]: topics, configs, consumer groups, offsets and the cluster, as Kafka's
//!   `AdminClient` manages them.
//! - [`serialization`]: keys and values to bytes and back, with the Java client's encodings.
//! - [`cluster`]: brokers, topics and leaders from Metadata; connections by broker id;
//!   group coordinators.
//! - [`error`]: typed errors, telling retriable broker errors from mistakes.
//!
//! Requests and responses are `kafka-protocol`'s message types; record batches are
//! `gregor-protocol`'s.

pub mod admin;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod producer;
mod protocol_util;
pub mod serialization;

pub use admin::Admin;
pub use cluster::Cluster;
pub use consumer::{Consumer, ConsumerRecord, RebalanceListener};
pub use error::{ClientError, Result};
/// Kafka error codes, as `ClientError::code` reports them.
pub use gregor_protocol::ErrorCode;
pub use producer::{Producer, ProducerRecord, RecordMetadata};
pub use serialization::{Deserializer, Serializer};

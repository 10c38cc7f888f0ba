//! Gregor's broker: the Kafka protocol server that real Kafka clients talk to.
//!
//! Layers, each in its own module:
//! - [`config`]: broker settings under Kafka's keys (`listeners`, `log.dirs`, `node.id`…).
//! - `api`: the API catalog — which Kafka APIs and versions Gregor implements. `ApiVersions`
//!   answers from it, so only what is built is advertised.
//! - `server`: listeners, connections and framing (size-prefixed requests, bounded by
//!   `socket.request.max.bytes`), answered in order per connection.
//! - `handlers`: one module per Kafka API, turning a decoded request into a response.
//! - `group`: the GroupCoordinator (classic and KIP-848 consumer groups, committed offsets in
//!   `__consumer_offsets`), serving the groups of the offsets partitions this broker leads.
//! - `txn`: the TransactionCoordinator (producer ids, transactional ids and their transactions in
//!   `__transaction_state`, end markers sent to the partition leaders), serving the
//!   transactional ids of the transaction log partitions this broker leads.
//! - `internal_topic`: the compacted internal topics coordinators keep their state in
//!   (creation, `acks=all` appends, replay).
//! - `replica`: the ReplicaManager — hosted partitions as leaders or followers, high
//!   watermarks, ISR changes, follower fetchers.
//! - `lifecycle`: registration with the controller, heartbeats, controlled shutdown.
//! - `topics`: topics as the metadata image describes them, and changes through the
//!   controller (`gregor-metadata` holds the quorum and the controller).
//!
//! The storage engine is `gregor-log`; this crate holds no file format knowledge.

mod api;
pub mod config;
mod error;
mod group;
mod handlers;
mod inter_broker;
mod internal_topic;
mod lifecycle;
mod meta_properties;
mod node;
mod record_reader;
mod replica;
mod server;
mod topics;
mod txn;

pub use api::{ApiSupport, SUPPORTED_APIS};
pub use error::BrokerError;
pub use server::{RunningBroker, run};

/// Wall-clock time in milliseconds since the epoch, as Kafka timestamps are.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

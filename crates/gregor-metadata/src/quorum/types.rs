//! The openraft type configuration of the metadata quorum, and the small conversions between
//! Kafka's `node.id` (`i32`) and openraft's node id (`u64`).
//!
//! One Raft entry carries one controller decision: a `Vec<MetadataRecord>` applied atomically.
//! Nodes are [`BasicNode`]s whose `addr` is the `host:port` of their CONTROLLER listener.

use std::io::Cursor;

use openraft::BasicNode;

use crate::records::MetadataRecord;

openraft::declare_raft_types!(
    /// The openraft types of the metadata quorum: entries carry `Vec<MetadataRecord>`, applying
    /// one answers the image offset it reached, snapshots are in-memory JSON bytes.
    pub TypeConfig:
        D = Vec<MetadataRecord>,
        R = u64,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// openraft's node id: Kafka's non-negative `node.id` widened.
pub type RaftNodeId = u64;

/// A log entry of the metadata log.
pub type LogEntry = openraft::Entry<TypeConfig>;

/// The openraft handle of this node.
pub type RaftHandle = openraft::Raft<TypeConfig>;

/// openraft's storage error for our node id.
pub type StorageError = openraft::StorageError<RaftNodeId>;

/// openraft's log id for our node id.
pub type LogId = openraft::LogId<RaftNodeId>;

/// Kafka `node.id` → openraft id (callers validated `id >= 0`).
pub fn raft_id(id: i32) -> RaftNodeId {
    u64::try_from(id).unwrap_or_default()
}

/// openraft id → Kafka `node.id` (ids only ever come from [`raft_id`]).
pub fn kafka_id(id: RaftNodeId) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

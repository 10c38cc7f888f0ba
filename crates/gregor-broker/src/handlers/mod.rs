//! One module per Kafka API: each turns a decoded request into its response.

pub mod api_versions;
pub mod configs;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod reassignments;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unsupported;
pub mod write_txn_markers;

/// Who sent a request: what group members are described with.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The request header's `client.id`.
    pub client_id: String,
    /// The client's address, as Kafka shows it (`/127.0.0.1`).
    pub host: String,
}

//! One module per Kafka API: each turns a decoded request into its response.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
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
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
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

/// A transaction coordinator's error as version `version` of an API that learned
/// `PRODUCER_FENCED` in `fenced_since` can express it: older clients get
/// `INVALID_PRODUCER_EPOCH`, which they handle the same way (as Kafka maps it).
pub fn txn_error(
    code: gregor_protocol::ErrorCode,
    version: i16,
    fenced_since: i16,
) -> gregor_protocol::ErrorCode {
    if code == gregor_protocol::ErrorCode::PRODUCER_FENCED && version < fenced_since {
        gregor_protocol::ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

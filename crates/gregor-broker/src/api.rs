//! The API catalog: every Kafka API Gregor implements, with the version range it implements
//! fully. `ApiVersions` is answered from this table and nothing else, so a client never sees an
//! API or version that is not built (DESIGN.md principle 1).

use kafka_protocol::messages::ApiKey;

/// One implemented API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSupport {
    /// The Kafka API.
    pub key: ApiKey,
    /// Lowest version implemented.
    pub min: i16,
    /// Highest version implemented.
    pub max: i16,
}

/// What Gregor implements today. Version floors follow Kafka 4.0 (KIP-896) where clients allow.
pub const SUPPORTED_APIS: &[ApiSupport] = &[
    ApiSupport {
        key: ApiKey::Metadata,
        min: 4,
        max: 12,
    },
    ApiSupport {
        key: ApiKey::ApiVersions,
        min: 0,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::CreateTopics,
        min: 2,
        max: 7,
    },
    ApiSupport {
        key: ApiKey::Produce,
        min: 3,
        max: 11,
    },
    ApiSupport {
        key: ApiKey::Fetch,
        min: 4,
        max: 16,
    },
    ApiSupport {
        key: ApiKey::ListOffsets,
        min: 1,
        max: 8,
    },
    ApiSupport {
        key: ApiKey::DeleteTopics,
        min: 1,
        max: 6,
    },
    ApiSupport {
        key: ApiKey::ElectLeaders,
        min: 0,
        max: 2,
    },
    ApiSupport {
        key: ApiKey::AlterPartitionReassignments,
        min: 0,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::ListPartitionReassignments,
        min: 0,
        max: 0,
    },
    ApiSupport {
        key: ApiKey::DeleteRecords,
        min: 0,
        max: 2,
    },
    ApiSupport {
        key: ApiKey::OffsetForLeaderEpoch,
        min: 2,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::CreatePartitions,
        min: 0,
        max: 3,
    },
    ApiSupport {
        key: ApiKey::DescribeCluster,
        min: 0,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::DescribeConfigs,
        min: 1,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::AlterConfigs,
        min: 0,
        max: 2,
    },
    ApiSupport {
        key: ApiKey::IncrementalAlterConfigs,
        min: 0,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::DescribeLogDirs,
        min: 1,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::FindCoordinator,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::JoinGroup,
        min: 0,
        max: 9,
    },
    ApiSupport {
        key: ApiKey::SyncGroup,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::Heartbeat,
        min: 0,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::LeaveGroup,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::OffsetCommit,
        min: 2,
        max: 9,
    },
    ApiSupport {
        key: ApiKey::OffsetFetch,
        min: 1,
        max: 9,
    },
    ApiSupport {
        key: ApiKey::TxnOffsetCommit,
        min: 0,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::OffsetDelete,
        min: 0,
        max: 0,
    },
    ApiSupport {
        key: ApiKey::ListGroups,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::DescribeGroups,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::DeleteGroups,
        min: 0,
        max: 2,
    },
    ApiSupport {
        key: ApiKey::ConsumerGroupHeartbeat,
        min: 0,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::ConsumerGroupDescribe,
        min: 0,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::WriteTxnMarkers,
        min: 1,
        max: 1,
    },
    ApiSupport {
        key: ApiKey::DescribeProducers,
        min: 0,
        max: 0,
    },
    ApiSupport {
        key: ApiKey::InitProducerId,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::AddPartitionsToTxn,
        min: 0,
        max: 5,
    },
    ApiSupport {
        key: ApiKey::AddOffsetsToTxn,
        min: 0,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::EndTxn,
        min: 0,
        max: 4,
    },
    ApiSupport {
        key: ApiKey::DescribeTransactions,
        min: 0,
        max: 0,
    },
    ApiSupport {
        key: ApiKey::ListTransactions,
        min: 0,
        max: 1,
    },
];

/// The implemented range of `key`, if Gregor implements it at all.
pub fn support_for(key: ApiKey) -> Option<ApiSupport> {
    SUPPORTED_APIS.iter().copied().find(|s| s.key == key)
}

/// Whether `version` of `key` is implemented.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    support_for(key).is_some_and(|s| (s.min..=s.max).contains(&version))
}

//! One module per Kafka API: each turns a decoded request into its response.

pub mod api_versions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

//! `ApiVersions` (key 18): what this broker implements, straight from the API catalog.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use gregor_protocol::ErrorCode;

use crate::api::SUPPORTED_APIS;

fn catalog() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect()
}

/// The normal answer: every implemented API with its version range.
pub fn handle(_request: &ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ErrorCode::NONE.0)
        .with_api_keys(catalog())
}

/// The answer to an `ApiVersions` request at a version Gregor does not implement: error
/// `UNSUPPORTED_VERSION` with the catalog, to be encoded at version 0, which every client can
/// read and then retry at a version both sides know (KIP-511).
pub fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UNSUPPORTED_VERSION.0)
        .with_api_keys(catalog())
}

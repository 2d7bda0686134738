//! ApiVersions: exactly the APIs and versions of `versions::SERVED`.

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

use crate::versions::SERVED;

pub fn served_keys() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|s| {
            ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.advertised_from).with_max_version(s.max)
        })
        .collect()
}

pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(served_keys())
}

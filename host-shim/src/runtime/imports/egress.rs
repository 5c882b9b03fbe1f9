//! `egress`: the outbound HTTP records. The plugin has no call that sends:
//! it hands requests to the host (`deliveries`, a command's `call`), so no
//! instance waits on the network. Here: conversions between the WIT records
//! and the host's egress types.

use crate::egress::{
    EgressError as HostEgressError, OutboundRequest as HostRequest,
    OutboundResponse as HostResponse,
};
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::egress::{
    EgressError, Host, OutboundRequest, OutboundResponse, Signing,
};
use crate::runtime::bindings::types::Header;
use crate::store::deliveries::StoredSigning;
use std::time::Duration;

impl Host for CallState {}

pub(crate) fn request_from_wit(r: OutboundRequest) -> HostRequest {
    HostRequest {
        method: r.method,
        url: r.url,
        headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: r.body,
        timeout: r.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
    }
}

pub(crate) fn signing_from_wit(signing: Vec<Signing>) -> Vec<StoredSigning> {
    signing
        .into_iter()
        .map(|s| match s {
            Signing::Slack(secret) => StoredSigning::Slack(secret),
            Signing::StandardWebhooks(secrets) => StoredSigning::StandardWebhooks(secrets),
        })
        .collect()
}

pub(crate) fn result_to_wit(
    r: Result<HostResponse, HostEgressError>,
) -> Result<OutboundResponse, EgressError> {
    match r {
        Ok(r) => Ok(OutboundResponse {
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            body: r.body,
            truncated: r.truncated,
            elapsed_ms: u32::try_from(r.elapsed.as_millis()).unwrap_or(u32::MAX),
        }),
        Err(HostEgressError::Refused(m)) => Err(EgressError::Refused(m)),
        Err(HostEgressError::InvalidUrl(m)) => Err(EgressError::InvalidUrl(m)),
        Err(HostEgressError::Timeout(m)) => Err(EgressError::Timeout(m)),
        Err(HostEgressError::Connect(m)) => Err(EgressError::Connect(m)),
        Err(HostEgressError::Other(m)) => Err(EgressError::Other(m)),
    }
}

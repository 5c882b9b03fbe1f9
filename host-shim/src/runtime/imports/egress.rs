//! `egress`: outbound HTTP through the host's policed client. Every call is
//! noted in the log the harness reads.

use crate::app::OutboundCall;
use crate::egress::{
    EgressError as HostEgressError, OutboundRequest as HostRequest,
    OutboundResponse as HostResponse,
};
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::egress::{
    EgressError, Host, OutboundRequest, OutboundResponse,
};
use crate::runtime::bindings::types::Header;
use std::time::Duration;

fn to_host(r: OutboundRequest) -> HostRequest {
    HostRequest {
        method: r.method,
        url: r.url,
        headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: r.body,
        timeout: r.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
    }
}

fn to_wit(r: Result<HostResponse, HostEgressError>) -> Result<OutboundResponse, EgressError> {
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

fn not_granted() -> EgressError {
    EgressError::Refused("the plugin's manifest does not request the `egress` permission".into())
}

impl CallState {
    fn note(&self, method: &str, url: &str, result: &Result<OutboundResponse, EgressError>) {
        let (status, error, elapsed_ms) = match result {
            Ok(r) => (Some(r.status), None, r.elapsed_ms),
            Err(e) => (None, Some(format!("{e:?}")), 0),
        };
        self.app.events.outbound(OutboundCall {
            method: method.into(),
            url: url.into(),
            status,
            error,
            elapsed_ms,
        });
    }
}

impl Host for CallState {
    async fn send(&mut self, request: OutboundRequest) -> Result<OutboundResponse, EgressError> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        let (method, url) = (request.method.clone(), request.url.clone());
        let result = to_wit(self.app.egress().send(to_host(request)).await);
        self.note(&method, &url, &result);
        result
    }

    async fn send_all(
        &mut self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, EgressError>> {
        if !self.grants.egress {
            return requests.iter().map(|_| Err(not_granted())).collect();
        }
        let labels: Vec<(String, String)> = requests
            .iter()
            .map(|r| (r.method.clone(), r.url.clone()))
            .collect();
        let results: Vec<_> = self
            .app
            .egress()
            .send_all(requests.into_iter().map(to_host).collect())
            .await
            .into_iter()
            .map(to_wit)
            .collect();
        for ((method, url), result) in labels.iter().zip(&results) {
            self.note(method, url, result);
        }
        results
    }
}

//! Grafana's unified alerting webhook contact point: Alertmanager's group payload with
//! Grafana's additions (`dashboardURL`, `panelURL`, `silenceURL` per alert), so it posts as
//! `alertmanager` does. The secret is checked against the `Authorization` header (bearer or
//! basic) or the contact point's HMAC signature, `X-Grafana-Alerting-Signature` (hex
//! HMAC-SHA256 of the body; its optional timestamp header is not supported).

use super::{Source, authorization_matches, hmac_hex_matches, str_at};

pub const SOURCE: Source = Source {
    name: "grafana",
    display_name: "Grafana alerting",
    username: "Grafana",
    icon_url: "",
    required_header: None,
    signature_header: "X-Grafana-Alerting-Signature",
    events: &["firing", "resolved"],
    event: |inbound| str_at(inbound.json, "/status").to_owned(),
    verify: |inbound, secret| {
        authorization_matches(secret, inbound.header("Authorization"))
            || hmac_hex_matches(
                secret,
                inbound.body,
                inbound.header("X-Grafana-Alerting-Signature"),
                "",
            )
    },
    render: super::alertmanager::render,
    recognizes: |inbound| {
        inbound.json.get("groupKey").is_some() && inbound.json.get("alerts").is_some()
    },
};

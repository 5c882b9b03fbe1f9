//! `config.json` in Mattermost's shape. Only the settings the shim acts on are
//! modelled; unknown sections are ignored on read, missing ones take defaults.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Config {
    pub service_settings: ServiceSettings,
    pub switchboard_settings: SwitchboardSettings,
    pub plugin_settings: PluginSettings,
    /// Outbound delivery retries and limits (the shim's own section).
    pub delivery_settings: crate::deliveries::DeliverySettings,
}

/// Mattermost's `ServiceSettings`, the part integrations depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceSettings {
    /// Base of `response_url` and of links the plugin builds.
    #[serde(rename = "SiteURL")]
    pub site_url: String,
    /// Where the server listens. Default `127.0.0.1:8065`: loopback only, so a
    /// first start never exposes an admin token to the network.
    pub listen_address: String,
    pub enable_incoming_webhooks: bool,
    pub enable_outgoing_webhooks: bool,
    pub enable_commands: bool,
    /// Off by default, as in Mattermost: integrations cannot pose as others.
    pub enable_post_username_override: bool,
    pub enable_post_icon_override: bool,
    pub enable_outgoing_o_auth_connections: bool,
    /// Host names, IPs and CIDRs (space or comma separated) that outbound
    /// integration calls may reach although they are internal addresses.
    pub allowed_untrusted_internal_connections: String,
    /// Seconds for each outbound integration call (and a dialog trigger's life).
    pub outgoing_integration_requests_timeout: u32,
    /// Request bodies above this (+512 bytes) are refused with 413.
    pub maximum_payload_size_bytes: u64,
    /// Fills `detailed_error` in error envelopes; off in production.
    pub enable_developer: bool,
    /// Enables `/plugins/switchboard/test/*` fault routes used by tests.
    pub enable_testing: bool,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            site_url: "http://localhost:8065".into(),
            listen_address: "127.0.0.1:8065".into(),
            enable_incoming_webhooks: true,
            enable_outgoing_webhooks: true,
            enable_commands: true,
            enable_post_username_override: false,
            enable_post_icon_override: false,
            enable_outgoing_o_auth_connections: false,
            allowed_untrusted_internal_connections: String::new(),
            outgoing_integration_requests_timeout: 30,
            maximum_payload_size_bytes: 300_000,
            enable_developer: false,
            enable_testing: false,
        }
    }
}

/// Settings of the shim itself (not Mattermost's): how the plugin is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SwitchboardSettings {
    /// Linear memory one plugin call may use. 64 MiB is far above what the
    /// plugin needs for a 300 kB payload and low enough that a runaway call
    /// cannot starve the server.
    pub plugin_memory_limit_mib: u32,
    /// Wall-clock limit of one plugin call, host calls included. No call
    /// waits on an outbound request (the host sends them), so it need not
    /// cover `OutgoingIntegrationRequestsTimeout`.
    pub plugin_call_timeout_seconds: u32,
    /// Longest post message in runes (Mattermost's `MaxPostSize`).
    pub max_post_size: u32,
}

impl Default for SwitchboardSettings {
    fn default() -> Self {
        SwitchboardSettings {
            plugin_memory_limit_mib: 64,
            plugin_call_timeout_seconds: 60,
            max_post_size: 16383,
        }
    }
}

/// The plugin's own settings, as Mattermost keeps them under
/// `PluginSettings.Plugins.<id>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PluginSettings {
    pub plugins: serde_json::Map<String, serde_json::Value>,
}

impl Config {
    /// Reads `path`, or writes the defaults there when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Config> {
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let config = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
            Ok(config)
        } else {
            let config = Config::default();
            config.save(path)?;
            Ok(config)
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Applies a JSON merge patch (`PUT /api/v4/config/patch`): objects merge
    /// key by key, anything else replaces.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Config, String> {
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        merge(&mut current, patch);
        serde_json::from_value(current).map_err(|e| e.to_string())
    }
}

fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mattermost_names_round_trip() {
        let c = Config::default();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["ServiceSettings"]["SiteURL"], "http://localhost:8065");
        assert_eq!(v["ServiceSettings"]["MaximumPayloadSizeBytes"], 300000);
        assert_eq!(
            v["ServiceSettings"]["EnableOutgoingOAuthConnections"],
            false
        );
        assert_eq!(serde_json::from_value::<Config>(v).unwrap(), c);
    }

    #[test]
    fn patch_merges_and_rejects_wrong_types() {
        let c = Config::default();
        let p = c
            .patched(&serde_json::json!({"ServiceSettings": {"EnablePostUsernameOverride": true}}))
            .unwrap();
        assert!(p.service_settings.enable_post_username_override);
        assert!(p.service_settings.enable_incoming_webhooks);
        assert!(
            c.patched(&serde_json::json!({"ServiceSettings": {"EnableCommands": "yes"}}))
                .is_err()
        );
    }
}

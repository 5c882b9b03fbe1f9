//! `settings`: the part of the configuration the plugin may read.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::settings::{Host, ServerSettings};

impl Host for CallState {
    async fn get(&mut self) -> ServerSettings {
        let config = self.app.config();
        let s = &config.service_settings;
        ServerSettings {
            site_url: s.site_url.trim_end_matches('/').to_string(),
            enable_incoming_webhooks: s.enable_incoming_webhooks,
            enable_outgoing_webhooks: s.enable_outgoing_webhooks,
            enable_commands: s.enable_commands,
            enable_post_username_override: s.enable_post_username_override,
            enable_post_icon_override: s.enable_post_icon_override,
            enable_outgoing_oauth_connections: s.enable_outgoing_o_auth_connections,
            enable_developer: s.enable_developer,
            enable_testing: s.enable_testing,
            outgoing_integration_requests_timeout: s.outgoing_integration_requests_timeout,
            maximum_payload_size_bytes: s.maximum_payload_size_bytes,
            max_post_size: config.switchboard_settings.max_post_size,
            plugin_settings: config
                .plugin_settings
                .plugins
                .get(crate::manifest::PLUGIN_ID)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "{}".into()),
        }
    }
}

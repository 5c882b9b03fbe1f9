//! `config.json` in Mattermost's shape. Only the settings the shim acts on are
//! modelled; missing ones take defaults, and every other key is kept as read
//! and written back, so a patch or a save never loses what the shim ignores.

mod deliveries;
mod logs;

pub use deliveries::DeliverySettings;
pub use logs::LogSettings;

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Config {
    pub service_settings: ServiceSettings,
    pub switchboard_settings: SwitchboardSettings,
    pub plugin_settings: PluginSettings,
    pub sql_settings: SqlSettings,
    /// Prometheus metrics on a listener of their own.
    pub metrics_settings: MetricsSettings,
    /// Outbound delivery retries and limits (the shim's own section).
    pub delivery_settings: DeliverySettings,
    /// Uploaded transform components' sandbox (the shim's own section).
    pub transform_settings: TransformSettings,
    /// Mattermost's console log settings (`crate::logs`). Read at start.
    pub log_settings: LogSettings,
    /// The whole document as read or last patched, unmodelled keys included.
    #[serde(skip)]
    raw: serde_json::Value,
}

/// What `GET /api/v4/config` shows instead of a secret, as Mattermost does.
pub const FAKE_SETTING: &str = "********************************";

/// Mattermost's `SqlSettings`: which database holds everything
/// (`DriverName`, `DataSource`) and the key secrets are sealed with.
/// All three are read at start only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SqlSettings {
    /// `sqlite3` (the default: one file, `switchboard.db`, in the data
    /// directory) or `postgres` (a server every node of a cluster shares).
    pub driver_name: String,
    /// For `postgres`: a libpq connection string, as a URL
    /// (`postgres://user:pass@host:port/db?sslmode=disable`) or as
    /// `key=value` pairs. Unused for `sqlite3`. A secret: the API shows it
    /// masked.
    pub data_source: String,
    /// The key secrets are encrypted with in the database (the plugin's kv
    /// values). Generated on first start; kept out of the database so a copy
    /// of `switchboard.db` alone reveals no secret. Changing it makes the
    /// stored secrets unreadable, so it is read at start only.
    pub at_rest_encrypt_key: String,
}

/// The default database: the embedded SQLite file.
pub const DRIVER_SQLITE: &str = "sqlite3";
/// A PostgreSQL server named by `SqlSettings.DataSource`.
pub const DRIVER_POSTGRES: &str = "postgres";

impl Default for SqlSettings {
    fn default() -> Self {
        SqlSettings {
            driver_name: DRIVER_SQLITE.into(),
            data_source: String::new(),
            at_rest_encrypt_key: String::new(),
        }
    }
}

impl SqlSettings {
    /// Whether this names a PostgreSQL database (anything else but an empty
    /// or `sqlite3` driver is refused at start).
    pub fn is_postgres(&self) -> bool {
        self.driver_name == DRIVER_POSTGRES
    }
}

/// Mattermost's `MetricsSettings`: Prometheus metrics at `/metrics` on a
/// listener of their own, apart from the API. Read at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MetricsSettings {
    /// Off by default, as in Mattermost.
    pub enable: bool,
    /// Where `/metrics` is served; Mattermost's default `:8067` is every
    /// interface, port 8067.
    pub listen_address: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enable: false,
            listen_address: ":8067".into(),
        }
    }
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
    /// Lets `POST /api/v4/bots` create bots (off, as in Mattermost).
    pub enable_bot_account_creation: bool,
    /// Disables a user's bots when the user is deactivated.
    pub disable_bots_when_owner_is_deactivated: bool,
    /// Personal access tokens for people (bots' tokens work regardless). On,
    /// unlike Mattermost: the first start hands the admin a token.
    pub enable_user_access_tokens: bool,
    /// Lets third-party apps sign users in with OAuth 2.0 (on, as in Mattermost).
    #[serde(rename = "EnableOAuthServiceProvider")]
    pub enable_oauth_service_provider: bool,
    /// Lets OAuth clients register themselves at `POST
    /// /api/v4/oauth/apps/register` (RFC 7591). Off, as in Mattermost: anyone
    /// could then create apps.
    pub enable_dynamic_client_registration: bool,
    /// Glob patterns every self-registered redirect URI must match (`*`
    /// within one path segment, `**` anything); empty allows any http(s) URI.
    #[serde(rename = "DCRRedirectURIAllowlist")]
    pub dcr_redirect_uri_allowlist: Vec<String>,
    /// How long an OAuth access token lives (Mattermost's SSO session length).
    #[serde(rename = "SessionLengthSSOInHours")]
    pub session_length_sso_in_hours: u32,
    /// Seconds a request's body may take to arrive, once its handler starts
    /// reading it (Mattermost's default, 300); slower bodies get 408.
    pub read_timeout: u32,
    /// Seconds a connection may wait for its next request's header to be
    /// complete: a new connection that sends nothing, an idle keep-alive
    /// connection and an unfinished header are all closed after it.
    pub idle_timeout: u32,
    /// Seconds a write of an answer may make no progress (a client that
    /// stopped reading) before the connection is closed (default 300).
    pub write_timeout: u32,
    /// Failed sign-ins in a row that lock an account (Mattermost's default,
    /// 10); a success before the limit, or a password update, unlocks it.
    /// 0 is read as 1.
    pub maximum_login_attempts: u32,
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
            enable_bot_account_creation: false,
            disable_bots_when_owner_is_deactivated: true,
            enable_user_access_tokens: true,
            enable_oauth_service_provider: true,
            enable_dynamic_client_registration: false,
            dcr_redirect_uri_allowlist: Vec::new(),
            session_length_sso_in_hours: 720,
            read_timeout: 300,
            idle_timeout: 60,
            write_timeout: 300,
            maximum_login_attempts: 10,
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
    /// Seconds a websocket may stay open without authenticating before the
    /// server closes it. Mattermost's fixed 5 s; a lower value frees idle
    /// sockets sooner, a higher one suits very slow clients.
    pub websocket_auth_timeout_seconds: u32,
    /// Plugin calls that run at once (instance slots reserved at start). The
    /// default, 32, is many times this 2-core machine's cores, so calls that
    /// wait on the store or the network still leave work for both; a slot
    /// holds at most `PluginMemoryLimitMiB`. Read at start.
    pub plugin_pool_size: u32,
    /// Calls that may wait for a free slot; one more answers 503 at once.
    /// Read at start.
    pub plugin_queue_size: u32,
    /// How long a call waits for a slot before it answers 503. Read at start.
    pub plugin_queue_timeout_milliseconds: u32,
    /// Open HTTP connections at most; one more is answered 503 and closed.
    /// Read at start.
    pub max_connections: u32,
    /// Seconds a stop (SIGTERM, SIGINT) lets requests in flight finish
    /// before their connections are cut. Read at start.
    pub graceful_shutdown_timeout_seconds: u32,
    /// Dynamic client registrations (`POST /api/v4/oauth/apps/register`)
    /// one client IP may ask for per minute; more answer 429.
    pub dynamic_client_registrations_per_minute: u32,
    /// The first start's admin and team (`docs/OPERATIONS.md`, "First
    /// start"); the environment's `SWITCHBOARD_*` variables win over these.
    pub first_start: FirstStartSettings,
}

/// `SwitchboardSettings.FirstStart`: what the first start creates, so an
/// installer can sign in at once. Empty fields take the defaults (`admin`, a
/// random password written to `<data>/admin-password`, `switchboard`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FirstStartSettings {
    pub admin_username: String,
    /// Removed from the file once a start has read it.
    pub admin_password: String,
    pub admin_email: String,
    pub team_name: String,
    pub team_display_name: String,
}

impl Default for SwitchboardSettings {
    fn default() -> Self {
        SwitchboardSettings {
            plugin_memory_limit_mib: 64,
            plugin_call_timeout_seconds: 60,
            max_post_size: 16383,
            websocket_auth_timeout_seconds: 5,
            plugin_pool_size: 32,
            plugin_queue_size: 1024,
            plugin_queue_timeout_milliseconds: 10_000,
            max_connections: 4096,
            graceful_shutdown_timeout_seconds: 30,
            dynamic_client_registrations_per_minute: 20,
            first_start: FirstStartSettings::default(),
        }
    }
}

/// How uploaded transform components (issue 25) are run: each call in a
/// sandbox of its own with these bounds (docs/TRANSFORMS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TransformSettings {
    /// Linear memory one call may use.
    pub memory_limit_mib: u32,
    /// Wall-clock limit of one call, in milliseconds.
    pub timeout_milliseconds: u32,
    /// Wasm fuel one call may burn (about one unit per instruction): the CPU
    /// bound, which a busy machine cannot stretch the way it stretches the
    /// wall deadline.
    pub fuel: u64,
    /// Calls that run at once; more wait their turn within their deadline.
    /// The default, 2, is this machine's cores: hostile transforms can take
    /// those, never the server's other work queued on tokio's workers.
    pub max_concurrent: u32,
    /// Largest component an admin may upload, in bytes.
    pub max_component_bytes: u64,
}

impl Default for TransformSettings {
    fn default() -> Self {
        TransformSettings {
            memory_limit_mib: 32,
            timeout_milliseconds: 1000,
            fuel: 2_000_000_000,
            max_concurrent: 2,
            max_component_bytes: 16 << 20,
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
    /// A missing `SqlSettings.AtRestEncryptKey` is generated and saved.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Config> {
        let mut config = if path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let raw: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
            Config::from_document(raw)
                .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
        } else {
            Config::default()
        };
        if config.ensure_at_rest_key() || !path.exists() {
            config.save(path)?;
        }
        Ok(config)
    }

    /// Generates the at-rest key when there is none; says whether it did.
    pub fn ensure_at_rest_key(&mut self) -> bool {
        if !self.sql_settings.at_rest_encrypt_key.is_empty() {
            return false;
        }
        self.sql_settings.at_rest_encrypt_key = hex::encode(rand::random::<[u8; 16]>());
        true
    }

    /// The typed view of a whole `config.json` document, which it keeps.
    pub fn from_document(raw: serde_json::Value) -> Result<Config, String> {
        let mut config: Config = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        config.raw = raw;
        Ok(config)
    }

    /// The whole document: the keys as read, with the modelled ones as they
    /// are now.
    pub fn document(&self) -> serde_json::Value {
        let mut doc = match &self.raw {
            serde_json::Value::Object(_) => self.raw.clone(),
            _ => serde_json::Value::Object(Default::default()),
        };
        merge(
            &mut doc,
            &serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        );
        doc
    }

    /// The document as the API shows it: secrets replaced by [`FAKE_SETTING`].
    pub fn sanitized_document(&self) -> serde_json::Value {
        let mut doc = self.document();
        if let Some(sql) = doc.get_mut("SqlSettings").and_then(|v| v.as_object_mut()) {
            for secret in ["AtRestEncryptKey", "DataSource"] {
                if let Some(value) = sql.get_mut(secret)
                    && value.as_str().is_some_and(|s| !s.is_empty())
                {
                    *value = FAKE_SETTING.into();
                }
            }
        }
        if let Some(value) = doc
            .pointer_mut("/SwitchboardSettings/FirstStart/AdminPassword")
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            *value = FAKE_SETTING.into();
        }
        doc
    }

    /// Writes the document, readable by the owner only (it holds the at-rest key).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&self.document())?;
        let tmp = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&tmp)?, text.as_bytes())?;
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Applies a JSON merge patch (`PUT /api/v4/config/patch`): objects merge
    /// key by key, anything else replaces; keys the shim does not model are
    /// kept. The at-rest key cannot be changed through a patch (it is read at
    /// start, and a new one would make the stored secrets unreadable).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Config, String> {
        let mut doc = self.document();
        merge(&mut doc, patch);
        let mut config = Config::from_document(doc)?;
        config.sql_settings.at_rest_encrypt_key = self.sql_settings.at_rest_encrypt_key.clone();
        if let Some(sql) = config
            .raw
            .get_mut("SqlSettings")
            .and_then(|v| v.as_object_mut())
        {
            sql.insert(
                "AtRestEncryptKey".into(),
                self.sql_settings.at_rest_encrypt_key.clone().into(),
            );
        }
        Ok(config)
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
        assert_eq!(v["MetricsSettings"]["Enable"], false);
        assert_eq!(v["MetricsSettings"]["ListenAddress"], ":8067");
        assert_eq!(serde_json::from_value::<Config>(v).unwrap(), c);
    }

    #[test]
    fn the_first_start_password_is_hidden_from_the_api() {
        let mut c = Config::default();
        assert_eq!(
            c.sanitized_document()["SwitchboardSettings"]["FirstStart"]["AdminPassword"],
            ""
        );
        c.switchboard_settings.first_start.admin_password = "chosen-password".into();
        let shown = c.sanitized_document();
        assert_eq!(
            shown["SwitchboardSettings"]["FirstStart"]["AdminPassword"],
            FAKE_SETTING
        );
        assert!(!shown.to_string().contains("chosen-password"));
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

    #[test]
    fn unmodelled_keys_survive_patches_and_saves_and_the_key_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"TeamSettings":{"SiteName":"Ours","MaxUsersPerTeam":50},
                "ServiceSettings":{"EnableLinkPreviews":true,"EnableCommands":false},
                "PluginSettings":{"Enable":true,"Plugins":{}}}"#,
        )
        .unwrap();
        let config = Config::load_or_create(&path).unwrap();
        let key = config.sql_settings.at_rest_encrypt_key.clone();
        assert_eq!(key.len(), 32, "a key is generated on first start");
        assert!(!config.service_settings.enable_commands);

        let patched = config
            .patched(&serde_json::json!({
                "ServiceSettings": {"EnableCommands": true},
                "TeamSettings": {"SiteName": "Renamed"},
                "SqlSettings": {"AtRestEncryptKey": "attacker-chosen"}
            }))
            .unwrap();
        patched.save(&path).unwrap();
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved["TeamSettings"]["SiteName"], "Renamed");
        assert_eq!(saved["TeamSettings"]["MaxUsersPerTeam"], 50);
        assert_eq!(saved["ServiceSettings"]["EnableLinkPreviews"], true);
        assert_eq!(saved["ServiceSettings"]["EnableCommands"], true);
        assert_eq!(saved["PluginSettings"]["Enable"], true);
        assert_eq!(saved["SqlSettings"]["AtRestEncryptKey"], key.as_str());
        // The API never shows the key.
        assert_eq!(
            patched.sanitized_document()["SqlSettings"]["AtRestEncryptKey"],
            FAKE_SETTING
        );
        let again = Config::load_or_create(&path).unwrap();
        assert_eq!(again.sql_settings.at_rest_encrypt_key, key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}

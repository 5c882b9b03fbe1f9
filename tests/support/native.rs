//! The plugin linked natively into the host, without wasm: its `Host` trait
//! answered straight from the shim's `App`, as the component's imports do.
//! The benchmarks' baseline for what the sandbox costs (`make bench`).

use std::sync::Arc;
use switchboard_host_shim::app::{App, Scope};
use switchboard_host_shim::store::{self, StoreError};
use switchboard_plugin::host::{
    Channel, ChannelType, Header, Host, HostError, Job, Level, MetricSample, MetricSummary,
    PermissionScope, Post, ServerSettings, Signing, Team, TransformFailure, TransformRequest, User,
};

/// The host's `App` as the plugin's `Host`. Calls block (a write waits for
/// its commit), so run the plugin on a blocking thread.
pub struct NativeHost {
    pub app: Arc<App>,
}

fn error(e: StoreError) -> HostError {
    match e {
        StoreError::NotFound(m) => HostError::NotFound(m),
        StoreError::Conflict(m) => HostError::Conflict(m),
        StoreError::Invalid(m) => HostError::Invalid(m),
        StoreError::Db(m) | StoreError::Unavailable(m) => HostError::Unavailable(m),
    }
}

fn post_out(p: store::Post) -> Post {
    Post {
        id: p.id,
        create_at: p.create_at,
        update_at: p.update_at,
        delete_at: p.delete_at,
        user_id: p.user_id,
        channel_id: p.channel_id,
        root_id: p.root_id,
        message: p.message,
        post_type: p.post_type,
        props: p.props,
        metadata: p.metadata,
        is_pinned: p.is_pinned,
    }
}

fn post_in(p: Post) -> store::Post {
    store::Post {
        id: p.id,
        create_at: p.create_at,
        update_at: p.update_at,
        edit_at: 0,
        delete_at: p.delete_at,
        user_id: p.user_id,
        channel_id: p.channel_id,
        root_id: p.root_id,
        message: p.message,
        post_type: p.post_type,
        props: p.props,
        metadata: p.metadata,
        is_pinned: p.is_pinned,
    }
}

fn channel_out(c: store::Channel) -> Channel {
    Channel {
        id: c.id,
        team_id: c.team_id,
        name: c.name,
        display_name: c.display_name,
        channel_type: match c.channel_type {
            store::ChannelType::Open => ChannelType::Open,
            store::ChannelType::Private => ChannelType::Private,
            store::ChannelType::Direct => ChannelType::Direct,
            store::ChannelType::Group => ChannelType::Group,
        },
        header: c.header,
        purpose: c.purpose,
        creator_id: c.creator_id,
        create_at: c.create_at,
        update_at: c.update_at,
        delete_at: c.delete_at,
    }
}

fn user_out(u: store::User) -> User {
    User {
        id: u.id,
        username: u.username,
        email: u.email,
        nickname: u.nickname,
        first_name: u.first_name,
        last_name: u.last_name,
        roles: u.roles,
        is_bot: u.is_bot,
        create_at: u.create_at,
        delete_at: u.delete_at,
    }
}

fn team_out(t: store::Team) -> Team {
    Team {
        id: t.id,
        name: t.name,
        display_name: t.display_name,
        create_at: t.create_at,
        delete_at: t.delete_at,
    }
}

impl Host for NativeHost {
    fn settings(&self) -> ServerSettings {
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
                .get(switchboard_host_shim::manifest::PLUGIN_ID)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "{}".into()),
        }
    }
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.app.events.log(level, message);
    }

    fn metric_add(&self, key: &str, sample: MetricSample) {
        let now = self.app.clock.now_millis();
        self.app
            .metrics
            .add(key, sample.failed, sample.posts, sample.latency_us, now);
    }
    fn metric_get(&self, key: &str) -> Option<MetricSummary> {
        self.app.metrics.get(key).map(|s| MetricSummary {
            requests: s.requests,
            failures: s.failures,
            posts: s.posts,
            last_at: s.last_at,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
        })
    }
    fn metric_remove(&self, key: &str) {
        self.app.metrics.remove(key)
    }

    fn create_post(&self, post: Post) -> Result<Post, HostError> {
        self.app
            .create_post(post_in(post))
            .map(post_out)
            .map_err(error)
    }
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        self.app
            .create_ephemeral(user_id, post_in(post))
            .map(post_out)
            .map_err(error)
    }
    fn post(&self, id: &str) -> Result<Post, HostError> {
        self.app.store.post(id).map(post_out).map_err(error)
    }
    fn update_post(&self, post: Post) -> Result<Post, HostError> {
        self.app
            .update_post(post_in(post))
            .map(post_out)
            .map_err(error)
    }
    fn delete_post(&self, id: &str) -> Result<Post, HostError> {
        let author = self.app.store.post(id).map_err(error)?.user_id;
        self.app
            .delete_post(id, &author)
            .map(post_out)
            .map_err(error)
    }
    fn create_post_owing_hook(&self, post: Post) -> Result<Post, HostError> {
        let post = post_in(post);
        let set_online = post.props_json()["from_webhook"] != "true";
        self.app
            .create_post_owing_hook(post, set_online)
            .map(post_out)
            .map_err(error)
    }
    fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        self.app
            .notify_user(user_id, post_in(post))
            .map(post_out)
            .map_err(error)
    }

    fn channel(&self, id: &str) -> Result<Channel, HostError> {
        self.app.store.channel(id).map(channel_out).map_err(error)
    }
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError> {
        self.app
            .store
            .channel_by_name(team_id, name)
            .map(channel_out)
            .map_err(error)
    }
    fn direct_channel(&self, user_a: &str, user_b: &str) -> Result<Channel, HostError> {
        self.app
            .store
            .direct_channel(user_a, user_b)
            .map(channel_out)
            .map_err(error)
    }
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError> {
        self.app
            .store
            .is_channel_member(channel_id, user_id)
            .map_err(error)
    }
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.app
            .store
            .add_channel_member(channel_id, user_id)
            .map_err(error)
    }
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.app
            .store
            .remove_channel_member(channel_id, user_id)
            .map_err(error)
    }
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError> {
        let mut channel = self.app.store.channel(channel_id).map_err(error)?;
        if let Some(header) = header {
            channel.header = header.to_string();
        }
        if let Some(purpose) = purpose {
            channel.purpose = purpose.to_string();
        }
        self.app.store.update_channel(&channel).map_err(error)?;
        self.channel(channel_id)
    }
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError> {
        Ok(self
            .app
            .store
            .public_channels(team_id)
            .map_err(error)?
            .into_iter()
            .map(channel_out)
            .collect())
    }

    fn user(&self, id: &str) -> Result<User, HostError> {
        self.app.store.user(id).map(user_out).map_err(error)
    }
    fn user_by_username(&self, username: &str) -> Result<User, HostError> {
        self.app
            .store
            .user_by_username(username)
            .map(user_out)
            .map_err(error)
    }
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError> {
        let scope = match scope {
            PermissionScope::System => Scope::System,
            PermissionScope::Team(id) => Scope::Team(id.clone()),
            PermissionScope::Channel(id) => Scope::Channel(id.clone()),
        };
        switchboard_host_shim::app::permissions::has_permission(
            &self.app.store,
            user_id,
            permission,
            &scope,
        )
        .map_err(error)
    }

    fn team(&self, id: &str) -> Result<Team, HostError> {
        self.app.store.team(id).map(team_out).map_err(error)
    }
    fn team_by_name(&self, name: &str) -> Result<Team, HostError> {
        self.app
            .store
            .team_by_name(name)
            .map(team_out)
            .map_err(error)
    }
    fn is_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, HostError> {
        Ok(self
            .app
            .store
            .team_member(team_id, user_id)
            .map_err(error)?
            .is_some())
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.app.store.kv_get(key).map_err(error)
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.app.store.kv_set(key, value).map_err(error)
    }
    fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.app.store.kv_delete(key).map_err(error)
    }
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError> {
        self.app.store.kv_list(prefix, offset, limit).map_err(error)
    }
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError> {
        self.app
            .store
            .kv_compare_and_set(key, expected, new)
            .map_err(error)
    }
    fn kv_set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl_seconds: u64,
    ) -> Result<(), HostError> {
        self.app
            .store
            .kv_set_with_expiry(key, value, ttl_seconds)
            .map_err(error)
    }
    fn kv_compare_and_set_with_expiry(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_seconds: u64,
    ) -> Result<bool, HostError> {
        self.app
            .store
            .kv_compare_and_set_with_expiry(key, expected, new, ttl_seconds)
            .map_err(error)
    }

    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError> {
        use switchboard_host_shim::queue::{EnqueueError, NewJob};
        let jobs = jobs
            .into_iter()
            .map(|job| NewJob {
                id: job.id,
                group: job.group,
                request: switchboard_host_shim::egress::OutboundRequest {
                    method: job.request.method,
                    url: job.request.url,
                    headers: job
                        .request
                        .headers
                        .into_iter()
                        .map(|Header { name, value }| (name, value))
                        .collect(),
                    body: job.request.body,
                    timeout: job
                        .request
                        .timeout_ms
                        .map(|ms| std::time::Duration::from_millis(u64::from(ms))),
                },
                signing: stored_signing(job.signing),
                continuation: job.continuation,
                max_attempts: job.max_attempts,
                max_age_seconds: job.max_age_seconds,
            })
            .collect();
        let settings = &self.app.config().delivery_settings;
        let queue = &self.app.deliveries;
        queue
            .enqueue(&self.app.store, settings, jobs)
            .map_err(|e| match e {
                EnqueueError::Full { active, limit } => HostError::Unavailable(format!(
                    "the delivery queue is full ({active} of {limit})"
                )),
                EnqueueError::Invalid(why) => HostError::Invalid(why),
                EnqueueError::Store(e) => error(e),
            })
    }
    fn redeliver(
        &self,
        group: &str,
        id: &str,
        new_id: &str,
        signing: Vec<Signing>,
    ) -> Result<(), HostError> {
        let signing = Some(stored_signing(signing));
        let settings = &self.app.config().delivery_settings;
        self.app
            .deliveries
            .redeliver(&self.app.store, settings, group, id, new_id, signing)
            .map_err(error)
    }
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError> {
        self.app.store.cancel_deliveries(group).map_err(error)
    }
    fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        self.app.seal_for_client(purpose, plaintext)
    }
    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, HostError> {
        self.app
            .open_from_client(purpose, sealed)
            .ok_or_else(|| HostError::Invalid(format!("not a value sealed for {purpose}")))
    }
    fn publish_to_user(&self, user_id: &str, event: &str, data: &str) -> Result<(), HostError> {
        let data = serde_json::from_str(data)
            .map_err(|_| HostError::Invalid("event data is not JSON".into()))?;
        self.app.store.user(user_id).map_err(error)?;
        self.app.events.to_user(user_id, event, data);
        Ok(())
    }
    /// The native baseline runs no transform components.
    fn run_transform(
        &self,
        _id: &str,
        _request: &TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        Err(TransformFailure::NotFound)
    }
}

fn stored_signing(
    signing: Vec<Signing>,
) -> Vec<switchboard_host_shim::store::deliveries::StoredSigning> {
    use switchboard_host_shim::store::deliveries::StoredSigning;
    signing
        .into_iter()
        .map(|s| match s {
            Signing::Slack(secret) => StoredSigning::Slack(secret),
            Signing::StandardWebhooks(secrets) => StoredSigning::StandardWebhooks(secrets),
        })
        .collect()
}

//! What the plugin needs from its host, as one trait. The component implements
//! it over the WIT imports; native tests implement it in memory.

pub use crate::glue::exports::switchboard::plugin::commands::CommandCall;
pub use crate::glue::exports::switchboard::plugin::delivery_results::{Attempt, DeliveryResult};
pub use crate::glue::exports::switchboard::plugin::interactive::InteractiveCall;
pub use crate::glue::switchboard::plugin::deliveries::Job;
pub use crate::glue::switchboard::plugin::egress::{
    EgressError, OutboundRequest, OutboundResponse, Signing,
};
pub use crate::glue::switchboard::plugin::log::Level;
pub use crate::glue::switchboard::plugin::metrics::{
    Sample as MetricSample, Summary as MetricSummary,
};
pub use crate::glue::switchboard::plugin::settings::ServerSettings;
pub use crate::glue::switchboard::plugin::transforms::{TransformFailure, TransformRequest};
pub use crate::glue::switchboard::plugin::types::{
    AppError, Channel, ChannelType, Error as HostError, Header, PermissionScope, Post, Team, User,
};

/// The host's capabilities, grouped as the WIT interfaces are. Time and
/// randomness come from WASI, so they are not here.
pub trait Host {
    fn settings(&self) -> ServerSettings;
    fn log(&self, level: Level, message: &str);
    /// Per-integration counters, kept by the host in memory (no store write).
    fn metric_add(&self, key: &str, sample: MetricSample);
    fn metric_get(&self, key: &str) -> Option<MetricSummary>;
    fn metric_remove(&self, key: &str);

    fn create_post(&self, post: Post) -> Result<Post, HostError>;
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError>;
    fn post(&self, id: &str) -> Result<Post, HostError>;
    fn update_post(&self, post: Post) -> Result<Post, HostError>;
    fn delete_post(&self, id: &str) -> Result<Post, HostError>;
    /// Stores a post that runs the post hook (outgoing webhooks) after this
    /// call; the post and that debt are one write, so a crash loses neither.
    fn create_post_owing_hook(&self, post: Post) -> Result<Post, HostError>;
    /// A notice from the server's system bot to one user, in their DM.
    fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, HostError>;

    fn channel(&self, id: &str) -> Result<Channel, HostError>;
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError>;
    fn direct_channel(&self, user_a: &str, user_b: &str) -> Result<Channel, HostError>;
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError>;
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError>;
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError>;
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError>;
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError>;

    fn user(&self, id: &str) -> Result<User, HostError>;
    fn user_by_username(&self, username: &str) -> Result<User, HostError>;
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError>;

    fn team(&self, id: &str) -> Result<Team, HostError>;
    fn team_by_name(&self, name: &str) -> Result<Team, HostError>;
    fn is_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, HostError>;

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError>;
    fn kv_delete(&self, key: &str) -> Result<(), HostError>;
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError>;
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError>;
    /// [`Host::kv_set`] of a key that expires `ttl_seconds` from now (0:
    /// never): then it reads as absent, and the host deletes it.
    fn kv_set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl_seconds: u64,
    ) -> Result<(), HostError>;
    /// [`Host::kv_compare_and_set`] whose written value expires
    /// `ttl_seconds` from now (0: never); an expired key compares as absent.
    fn kv_compare_and_set_with_expiry(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_seconds: u64,
    ) -> Result<bool, HostError>;

    /// Hands the host deliveries to store (all or none), send (with
    /// retries) and report back through `delivery-results.on-result`.
    /// Returns at once.
    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError>;
    /// Sends a settled delivery of `group` again as the new delivery `new_id`.
    fn redeliver(
        &self,
        group: &str,
        id: &str,
        new_id: &str,
        signing: Vec<Signing>,
    ) -> Result<(), HostError>;
    /// Drops a group's deliveries not yet settled.
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError>;

    /// Seals `plaintext` for `purpose` under a key only the host holds
    /// (base64 text); [`Host::open`] gives it back.
    fn seal(&self, purpose: &str, plaintext: &[u8]) -> String;
    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, HostError>;
    /// An event (`open_dialog`) to one user's connected clients only.
    fn publish_to_user(&self, user_id: &str, event: &str, data: &str) -> Result<(), HostError>;

    /// Runs the uploaded transform component `id` on a sender's request:
    /// `Some(json)` is a payload to post, `None` drops the request.
    fn run_transform(
        &self,
        id: &str,
        request: &TransformRequest,
    ) -> Result<Option<String>, TransformFailure>;

    /// Milliseconds since the Unix epoch, as Mattermost timestamps are.
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

impl HostError {
    pub fn detail(&self) -> &str {
        match self {
            HostError::NotFound(s)
            | HostError::Forbidden(s)
            | HostError::Invalid(s)
            | HostError::Conflict(s)
            | HostError::Unavailable(s) => s,
        }
    }
}

/// Empty post with the defaults a new post starts from.
pub fn new_post(user_id: &str, channel_id: &str, message: String) -> Post {
    Post {
        id: String::new(),
        create_at: 0,
        update_at: 0,
        delete_at: 0,
        user_id: user_id.to_string(),
        channel_id: channel_id.to_string(),
        root_id: String::new(),
        message,
        post_type: String::new(),
        props: "{}".to_string(),
        metadata: "{}".to_string(),
        is_pinned: false,
    }
}

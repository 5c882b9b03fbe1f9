//! An in-memory `Host` for native unit tests of the plugin's logic: users,
//! channels and a kv map, with created posts recorded for assertions.

use crate::host::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

pub struct FakeHost {
    pub settings: RefCell<ServerSettings>,
    pub users: RefCell<Vec<User>>,
    pub channels: RefCell<Vec<Channel>>,
    pub members: RefCell<Vec<(String, String)>>,
    pub kv: RefCell<BTreeMap<String, Vec<u8>>>,
    /// The expiry each key was last written with, in seconds; keys written
    /// without one are not here.
    pub kv_ttl: RefCell<BTreeMap<String, u64>>,
    pub posts: RefCell<Vec<Post>>,
    /// Ephemeral posts, with the user each was shown to.
    pub ephemerals: RefCell<Vec<(String, Post)>>,
    /// Users who hold every permission.
    pub admins: RefCell<Vec<String>>,
    /// Outbound requests sent, in order.
    pub sent: RefCell<Vec<OutboundRequest>>,
    /// Answers for the next outbound requests, first first; with none left a
    /// request fails as refused.
    pub replies: RefCell<Vec<Result<OutboundResponse, EgressError>>>,
    /// Posts the plugin asked the host to run the post hook for.
    pub notified: RefCell<Vec<String>>,
    /// How each command call asked to be signed, in order.
    pub signings: RefCell<Vec<Vec<Signing>>>,
    /// Deliveries enqueued, in order.
    pub jobs: RefCell<Vec<Job>>,
    /// `(group, id, new_id)` of each redelivery asked for.
    pub redelivered: RefCell<Vec<(String, String, String)>>,
    /// `(user, event, data)` of each client event published.
    pub published: RefCell<Vec<(String, String, String)>>,
    /// What each uploaded transform component answers, by id; others are not found.
    pub transforms: RefCell<BTreeMap<String, Result<Option<String>, TransformFailure>>>,
    /// Metric samples added, by key.
    pub metrics: RefCell<BTreeMap<String, Vec<MetricSample>>>,
    /// How many `kv_get` calls were made.
    pub kv_reads: std::cell::Cell<usize>,
    /// The keys `kv_get` was called with, in order.
    pub kv_get_log: RefCell<Vec<String>>,
    /// Lines logged, in order.
    pub logs: RefCell<Vec<(Level, String)>>,
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a host does with a command: `execute`, and for a custom command send
/// its request (recorded in `sent`, answered from `replies`) and `respond`.
pub fn run_command(
    host: &FakeHost,
    args: &crate::commands::CommandArgs,
) -> Result<String, crate::api::ApiError> {
    match crate::commands::execute(host, args)? {
        crate::commands::Outcome::Done(json) => Ok(json),
        crate::commands::Outcome::Call(call) => {
            host.signings.borrow_mut().push(call.signing.clone());
            let answer = host.answer(call.request);
            crate::commands::execute::respond(host, args, &call.continuation, answer)
        }
    }
}

impl FakeHost {
    /// Records an outbound request and takes the next queued answer; with
    /// none left it fails as refused.
    pub fn answer(&self, request: OutboundRequest) -> Result<OutboundResponse, EgressError> {
        let url = request.url.clone();
        self.sent.borrow_mut().push(request);
        let mut replies = self.replies.borrow_mut();
        if replies.is_empty() {
            return Err(EgressError::Refused(format!(
                "no network in unit tests: {url}"
            )));
        }
        replies.remove(0)
    }
}

/// An outbound response with one `Content-Type` header (none when empty).
pub fn reply(status: u16, content_type: &str, body: &str) -> OutboundResponse {
    let headers = if content_type.is_empty() {
        vec![]
    } else {
        vec![Header {
            name: "Content-Type".into(),
            value: content_type.into(),
        }]
    };
    OutboundResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
        truncated: false,
        elapsed_ms: 1,
    }
}

pub fn settings() -> ServerSettings {
    ServerSettings {
        site_url: "http://localhost:8065".into(),
        enable_incoming_webhooks: true,
        enable_outgoing_webhooks: true,
        enable_commands: true,
        enable_post_username_override: false,
        enable_post_icon_override: false,
        enable_outgoing_oauth_connections: false,
        enable_developer: true,
        enable_testing: false,
        outgoing_integration_requests_timeout: 30,
        maximum_payload_size_bytes: 300_000,
        max_post_size: 16383,
        plugin_settings: "{}".into(),
    }
}

pub fn user(id: &str, username: &str) -> User {
    User {
        id: id.into(),
        username: username.into(),
        email: String::new(),
        nickname: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        roles: "system_user".into(),
        is_bot: false,
        create_at: 1,
        delete_at: 0,
    }
}

pub fn channel(id: &str, team_id: &str, name: &str, channel_type: ChannelType) -> Channel {
    Channel {
        id: id.into(),
        team_id: team_id.into(),
        name: name.into(),
        display_name: name.into(),
        channel_type,
        header: String::new(),
        purpose: String::new(),
        creator_id: String::new(),
        create_at: 1,
        update_at: 1,
        delete_at: 0,
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            settings: RefCell::new(settings()),
            users: RefCell::default(),
            channels: RefCell::default(),
            members: RefCell::default(),
            kv: RefCell::default(),
            kv_ttl: RefCell::default(),
            posts: RefCell::default(),
            ephemerals: RefCell::default(),
            admins: RefCell::default(),
            sent: RefCell::default(),
            replies: RefCell::default(),
            notified: RefCell::default(),
            signings: RefCell::default(),
            jobs: RefCell::default(),
            redelivered: RefCell::default(),
            published: RefCell::default(),
            transforms: RefCell::default(),
            metrics: RefCell::default(),
            kv_reads: Default::default(),
            kv_get_log: RefCell::default(),
            logs: RefCell::default(),
        }
    }
}

fn not_found(what: &str) -> HostError {
    HostError::NotFound(what.to_string())
}

impl Host for FakeHost {
    fn settings(&self) -> ServerSettings {
        self.settings.borrow().clone()
    }
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
    fn metric_add(&self, key: &str, sample: MetricSample) {
        self.metrics
            .borrow_mut()
            .entry(key.to_owned())
            .or_default()
            .push(sample);
    }
    fn metric_get(&self, key: &str) -> Option<MetricSummary> {
        let metrics = self.metrics.borrow();
        let samples = metrics.get(key)?;
        let mut latencies: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
        latencies.sort_unstable();
        let at = |q: f64| latencies[((q * latencies.len() as f64).ceil() as usize).max(1) - 1];
        Some(MetricSummary {
            requests: samples.len() as u64,
            failures: samples.iter().filter(|s| s.failed).count() as u64,
            posts: samples.iter().map(|s| u64::from(s.posts)).sum(),
            last_at: self.now_millis(),
            p50_us: at(0.5),
            p99_us: at(0.99),
        })
    }
    fn metric_remove(&self, key: &str) {
        self.metrics.borrow_mut().remove(key);
    }

    fn create_post(&self, mut post: Post) -> Result<Post, HostError> {
        if post.id.is_empty() {
            post.id = crate::ids::new_id();
        } else if self.posts.borrow().iter().any(|p| p.id == post.id) {
            return Err(HostError::Conflict(format!("post {} exists", post.id)));
        }
        self.posts.borrow_mut().push(post.clone());
        Ok(post)
    }
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        self.ephemerals
            .borrow_mut()
            .push((user_id.into(), post.clone()));
        Ok(post)
    }
    fn post(&self, id: &str) -> Result<Post, HostError> {
        self.posts
            .borrow()
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }
    fn update_post(&self, post: Post) -> Result<Post, HostError> {
        if let Some(stored) = self.posts.borrow_mut().iter_mut().find(|p| p.id == post.id) {
            *stored = post.clone();
        }
        Ok(post)
    }
    fn delete_post(&self, id: &str) -> Result<Post, HostError> {
        let mut posts = self.posts.borrow_mut();
        let post = posts
            .iter_mut()
            .find(|p| p.id == id && p.delete_at == 0)
            .ok_or_else(|| not_found("post"))?;
        post.delete_at = 1;
        Ok(post.clone())
    }
    /// Stored like any post, by the fake host's system bot `system-bot`.
    fn notify_user(&self, user_id: &str, mut post: Post) -> Result<Post, HostError> {
        post.user_id = "system-bot".into();
        post.channel_id = format!("system-bot__{user_id}");
        self.create_post(post)
    }

    fn create_post_owing_hook(&self, post: Post) -> Result<Post, HostError> {
        let post = self.create_post(post)?;
        self.notified.borrow_mut().push(post.id.clone());
        Ok(post)
    }

    fn channel(&self, id: &str) -> Result<Channel, HostError> {
        self.channels
            .borrow()
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError> {
        self.channels
            .borrow()
            .iter()
            .find(|c| c.team_id == team_id && c.name == name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }
    fn direct_channel(&self, a: &str, b: &str) -> Result<Channel, HostError> {
        let name = if a <= b {
            format!("{a}__{b}")
        } else {
            format!("{b}__{a}")
        };
        if let Ok(c) = self.channel_by_name("", &name) {
            return Ok(c);
        }
        let c = channel(&crate::ids::new_id(), "", &name, ChannelType::Direct);
        self.channels.borrow_mut().push(c.clone());
        Ok(c)
    }
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError> {
        Ok(self
            .members
            .borrow()
            .iter()
            .any(|(c, u)| c == channel_id && u == user_id))
    }
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.members
            .borrow_mut()
            .push((channel_id.into(), user_id.into()));
        Ok(())
    }
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.members
            .borrow_mut()
            .retain(|(c, u)| !(c == channel_id && u == user_id));
        Ok(())
    }
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError> {
        let mut channels = self.channels.borrow_mut();
        let c = channels
            .iter_mut()
            .find(|c| c.id == channel_id)
            .ok_or_else(|| not_found(channel_id))?;
        if let Some(h) = header {
            c.header = h.into();
        }
        if let Some(p) = purpose {
            c.purpose = p.into();
        }
        Ok(c.clone())
    }
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError> {
        Ok(self
            .channels
            .borrow()
            .iter()
            .filter(|c| c.team_id == team_id && c.channel_type == ChannelType::Open)
            .cloned()
            .collect())
    }

    fn user(&self, id: &str) -> Result<User, HostError> {
        self.users
            .borrow()
            .iter()
            .find(|u| u.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }
    fn user_by_username(&self, username: &str) -> Result<User, HostError> {
        let wanted = username.to_lowercase();
        self.users
            .borrow()
            .iter()
            .find(|u| u.username == wanted)
            .cloned()
            .ok_or_else(|| not_found(username))
    }
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError> {
        if self.admins.borrow().iter().any(|a| a == user_id) {
            return Ok(true);
        }
        Ok(match scope {
            PermissionScope::Channel(c) => {
                self.is_channel_member(c, user_id)?
                    && !permission.contains("others")
                    && !permission.starts_with("bypass")
            }
            _ => false,
        })
    }

    fn team(&self, id: &str) -> Result<Team, HostError> {
        Ok(Team {
            id: id.into(),
            name: "team".into(),
            display_name: "Team".into(),
            create_at: 1,
            delete_at: 0,
        })
    }
    fn team_by_name(&self, name: &str) -> Result<Team, HostError> {
        Err(not_found(name))
    }
    fn is_team_member(&self, _team_id: &str, _user_id: &str) -> Result<bool, HostError> {
        Ok(true)
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.kv_reads.set(self.kv_reads.get() + 1);
        self.kv_get_log.borrow_mut().push(key.to_owned());
        Ok(self.kv.borrow().get(key).cloned())
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.kv_set_with_expiry(key, value, 0)
    }
    fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.kv.borrow_mut().remove(key);
        self.kv_ttl.borrow_mut().remove(key);
        Ok(())
    }
    fn kv_set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl_seconds: u64,
    ) -> Result<(), HostError> {
        self.kv.borrow_mut().insert(key.into(), value.to_vec());
        let mut ttl = self.kv_ttl.borrow_mut();
        match ttl_seconds {
            0 => ttl.remove(key),
            n => ttl.insert(key.into(), n),
        };
        Ok(())
    }
    fn kv_compare_and_set_with_expiry(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_seconds: u64,
    ) -> Result<bool, HostError> {
        if self.kv.borrow().get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => self.kv_set_with_expiry(key, v, ttl_seconds)?,
            None => self.kv_delete(key)?,
        }
        Ok(true)
    }
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError> {
        Ok(self
            .kv
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError> {
        self.kv_compare_and_set_with_expiry(key, expected, new, 0)
    }

    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError> {
        for job in jobs {
            // As the host: a known id is skipped.
            if !self.jobs.borrow().iter().any(|j| j.id == job.id) {
                self.jobs.borrow_mut().push(job);
            }
        }
        Ok(())
    }
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError> {
        let before = self.jobs.borrow().len();
        self.jobs.borrow_mut().retain(|j| j.group != group);
        Ok((before - self.jobs.borrow().len()) as u32)
    }
    /// Not encryption: a marked, purpose-bound encoding, enough to test that
    /// the plugin seals, opens and refuses what it did not seal.
    fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        format!("sealed:{purpose}:{}", hex_encode(plaintext))
    }
    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, HostError> {
        sealed
            .strip_prefix(&format!("sealed:{purpose}:"))
            .and_then(hex_decode)
            .ok_or_else(|| HostError::Invalid("not sealed".into()))
    }
    fn publish_to_user(&self, user_id: &str, event: &str, data: &str) -> Result<(), HostError> {
        self.published
            .borrow_mut()
            .push((user_id.into(), event.into(), data.into()));
        Ok(())
    }
    fn run_transform(
        &self,
        id: &str,
        _request: &TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        self.transforms
            .borrow()
            .get(id)
            .cloned()
            .unwrap_or(Err(TransformFailure::NotFound))
    }
    fn redeliver(
        &self,
        group: &str,
        id: &str,
        new_id: &str,
        _signing: Vec<Signing>,
    ) -> Result<(), HostError> {
        self.redelivered
            .borrow_mut()
            .push((group.into(), id.into(), new_id.into()));
        Ok(())
    }
}

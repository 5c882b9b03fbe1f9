//! The thin layer between the WIT bindings and the plugin's plain-Rust core:
//! `WitHost` forwards the `Host` trait to the imports, `Plugin` serves the exports.

use crate::host::{
    AppError, Channel, DeliveryResult, EgressError, Header, HostError, Job, Level, MetricSample,
    MetricSummary, OutboundResponse, PermissionScope, Post, ServerSettings, Signing, Team,
    TransformFailure, TransformRequest, User,
};

wit_bindgen::generate!({
    world: "switchboard",
    path: "../wit",
    generate_all,
});

use exports::switchboard::plugin::{
    commands, delivery_results, hooks, http, interactive, lifecycle,
};
use switchboard::plugin as imports;

/// The real host, reached through the component's imports. Made per export
/// call: the settings are read once per call (a webhook consults them at
/// several steps), and a host that reuses instances still has each call see
/// the configuration current at its start.
pub(crate) struct WitHost {
    settings: std::cell::OnceCell<ServerSettings>,
}

impl WitHost {
    fn for_call() -> WitHost {
        WitHost {
            settings: std::cell::OnceCell::new(),
        }
    }
}

impl crate::host::Host for WitHost {
    fn settings(&self) -> ServerSettings {
        self.settings.get_or_init(imports::settings::get).clone()
    }
    fn log(&self, level: Level, message: &str) {
        imports::log::write(level, message)
    }
    fn metric_add(&self, key: &str, sample: MetricSample) {
        imports::metrics::add(key, sample)
    }
    fn metric_get(&self, key: &str) -> Option<MetricSummary> {
        imports::metrics::get(key)
    }
    fn metric_remove(&self, key: &str) {
        imports::metrics::remove(key)
    }

    fn create_post(&self, post: Post) -> Result<Post, HostError> {
        imports::posts::create(&post)
    }
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        imports::posts::create_ephemeral(user_id, &post)
    }
    fn post(&self, id: &str) -> Result<Post, HostError> {
        imports::posts::get(id)
    }
    fn update_post(&self, post: Post) -> Result<Post, HostError> {
        imports::posts::update(&post)
    }
    fn delete_post(&self, id: &str) -> Result<Post, HostError> {
        imports::posts::delete(id)
    }
    fn create_post_owing_hook(&self, post: Post) -> Result<Post, HostError> {
        imports::posts::create_owing_hook(&post)
    }
    fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        imports::posts::notify_user(user_id, &post)
    }

    fn channel(&self, id: &str) -> Result<Channel, HostError> {
        imports::channels::get(id)
    }
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError> {
        imports::channels::get_by_name(team_id, name)
    }
    fn direct_channel(&self, user_a: &str, user_b: &str) -> Result<Channel, HostError> {
        imports::channels::get_or_create_direct(user_a, user_b)
    }
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError> {
        imports::channels::is_member(channel_id, user_id)
    }
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        imports::channels::add_member(channel_id, user_id)
    }
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        imports::channels::remove_member(channel_id, user_id)
    }
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError> {
        imports::channels::patch(channel_id, header, purpose)
    }
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError> {
        imports::channels::list_public(team_id)
    }

    fn user(&self, id: &str) -> Result<User, HostError> {
        imports::users::get(id)
    }
    fn user_by_username(&self, username: &str) -> Result<User, HostError> {
        imports::users::get_by_username(username)
    }
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError> {
        imports::users::has_permission(user_id, permission, scope)
    }

    fn team(&self, id: &str) -> Result<Team, HostError> {
        imports::teams::get(id)
    }
    fn team_by_name(&self, name: &str) -> Result<Team, HostError> {
        imports::teams::get_by_name(name)
    }
    fn is_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, HostError> {
        imports::teams::is_member(team_id, user_id)
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        imports::kv::get(key)
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        imports::kv::set(key, value)
    }
    fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        imports::kv::delete(key)
    }
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError> {
        imports::kv::list_keys(prefix, offset, limit)
    }
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError> {
        imports::kv::compare_and_set(key, expected, new)
    }
    fn kv_set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl_seconds: u64,
    ) -> Result<(), HostError> {
        imports::kv::set_with_expiry(key, value, ttl_seconds)
    }
    fn kv_compare_and_set_with_expiry(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_seconds: u64,
    ) -> Result<bool, HostError> {
        imports::kv::compare_and_set_with_expiry(key, expected, new, ttl_seconds)
    }

    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError> {
        imports::deliveries::enqueue(&jobs)
    }
    fn redeliver(
        &self,
        group: &str,
        id: &str,
        new_id: &str,
        signing: Vec<Signing>,
    ) -> Result<(), HostError> {
        imports::deliveries::redeliver_signed(group, id, new_id, &signing)
    }
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError> {
        imports::deliveries::cancel(group)
    }

    fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        imports::sealing::seal(purpose, plaintext)
    }
    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, HostError> {
        imports::sealing::open(purpose, sealed)
    }
    fn publish_to_user(&self, user_id: &str, event: &str, data: &str) -> Result<(), HostError> {
        imports::client_events::publish_to_user(user_id, event, data)
    }
    fn run_transform(
        &self,
        id: &str,
        request: &TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        imports::transforms::run(id, request)
    }
}

struct Plugin;

impl http::Guest for Plugin {
    fn handle(request: http::Request) -> http::Response {
        crate::routes::route(&WitHost::for_call(), &request.into()).into()
    }
}

impl From<crate::api::Response> for http::Response {
    fn from(response: crate::api::Response) -> Self {
        http::Response {
            status: response.status,
            headers: response
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            body: response.body,
        }
    }
}

impl hooks::Guest for Plugin {
    fn message_has_been_posted(post: Post) {
        crate::outgoing::fire(&WitHost::for_call(), &post);
    }
}

impl commands::Guest for Plugin {
    fn execute(args: commands::CommandArgs) -> Result<commands::CommandOutcome, AppError> {
        match crate::commands::execute(&WitHost::for_call(), &args.into()) {
            Ok(crate::commands::Outcome::Done(json)) => Ok(commands::CommandOutcome::Done(json)),
            Ok(crate::commands::Outcome::Call(call)) => Ok(commands::CommandOutcome::Call(call)),
            Err(e) => Err(AppError::from(e)),
        }
    }

    fn respond(
        args: commands::CommandArgs,
        continuation: Vec<u8>,
        answer: Result<OutboundResponse, EgressError>,
    ) -> Result<String, AppError> {
        crate::commands::execute::respond(&WitHost::for_call(), &args.into(), &continuation, answer)
            .map_err(AppError::from)
    }
}

impl interactive::Guest for Plugin {
    fn start(request: http::Request) -> interactive::InteractiveOutcome {
        match crate::actions::start(&WitHost::for_call(), &request.into()) {
            crate::actions::Outcome::Done(response) => {
                interactive::InteractiveOutcome::Done(response.into())
            }
            crate::actions::Outcome::Call(call) => interactive::InteractiveOutcome::Call(call),
        }
    }

    fn respond(
        request: http::Request,
        continuation: Vec<u8>,
        answer: Result<OutboundResponse, EgressError>,
    ) -> http::Response {
        crate::actions::respond(&WitHost::for_call(), &request.into(), &continuation, answer).into()
    }
}

impl delivery_results::Guest for Plugin {
    fn on_result(delivery: DeliveryResult) {
        crate::outgoing::on_result(&WitHost::for_call(), &delivery);
    }
}

impl lifecycle::Guest for Plugin {
    fn activate() -> Result<(), String> {
        Ok(())
    }
    fn configuration_changed() {}
}

impl From<commands::CommandArgs> for crate::commands::CommandArgs {
    fn from(a: commands::CommandArgs) -> Self {
        crate::commands::CommandArgs {
            user_id: a.user_id,
            channel_id: a.channel_id,
            team_id: a.team_id,
            root_id: a.root_id,
            parent_id: a.parent_id,
            command: a.command,
        }
    }
}

impl From<http::Request> for crate::api::Request {
    fn from(r: http::Request) -> Self {
        crate::api::Request {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            body_too_large: r.body_too_large,
            user_id: r.user_id,
            request_id: r.request_id,
        }
    }
}

// Exported symbols carry WIT names (`switchboard:plugin/http@0.3.2#handle`)
// that a native linker rejects; natively the crate is only a library for tests.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

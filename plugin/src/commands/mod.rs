//! Slash commands: custom command definitions and their management routes
//! (`manage`), running a command line (`execute`), the built-in commands,
//! `response_url` follow-ups, and autocomplete. Spec §5.

pub mod autocomplete;
pub mod builtin;
pub mod execute;
pub mod manage;
pub mod model;
pub mod parse;
pub mod registry;
pub mod response;
pub mod response_url;

pub use execute::{CommandArgs, Outcome, execute};
pub use model::Command;
pub use response::CommandResponse;

use crate::host::{Host, HostError, Post};

/// Creates a post a command puts in a channel as a real message: an
/// `in_channel` response, `/echo`, `/msg`. Every such post goes through here,
/// because these are the posts that fire outgoing webhooks.
///
/// Outgoing webhooks run after this call, like for any user's post, so the
/// command's reply does not wait on their callbacks; the host stores the post
/// and that debt in one write, so a crash cannot lose them.
pub(crate) fn create_in_channel(host: &dyn Host, post: Post) -> Result<Post, HostError> {
    host.create_post_owing_hook(post)
}

/// `api.command.disabled.app_error` unless `EnableCommands` is on.
pub(crate) fn require_enabled(host: &dyn Host) -> Result<(), crate::api::ApiError> {
    if host.settings().enable_commands {
        Ok(())
    } else {
        Err(crate::api::ApiError::new(
            501,
            "api.command.disabled.app_error",
            "Commands have been disabled by the system admin.",
        ))
    }
}

//! Switchboard: Mattermost's integrations feature set as one WASI component.
//! The logic is plain Rust over the [`host::Host`] trait; `glue` binds it to WIT.

pub mod action_cookie;
pub mod actions;
pub mod api;
pub mod commands;
pub mod console;
pub mod definitions;
pub mod dialogs;
pub mod host;
pub mod ids;
pub mod incoming;
pub mod json;
pub mod outbound;
pub mod outgoing;
pub mod routes;
pub mod slack;
pub mod sources;
pub mod split;
pub mod store;
pub mod trigger_id;
pub mod webhook_post;

mod glue;

#[cfg(test)]
mod testing;

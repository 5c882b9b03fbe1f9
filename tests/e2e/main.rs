//! End-to-end tests: the compiled component in the real shim, over real HTTP
//! on loopback. Run `make component` first (`make test` does).

mod beyond;
mod bots;
mod clients;
mod cluster;
mod cluster_bus;
mod commands;
mod console;
mod copy_database;
mod deliveries;
mod foundation;
mod hardening;
mod incoming;
mod incoming_manage;
mod interactive;
mod kv_expiry;
mod load;
mod login;
mod metrics;
mod nodes;
mod oauth;
mod oauth_outgoing;
mod outgoing;
mod posts_since;
mod processes;
mod reactions;
mod release;
mod slow_socket;
mod sources;
mod system_bot;
mod tokens;
mod transform_components;
mod transforms;
mod websocket;

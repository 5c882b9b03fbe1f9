//! End-to-end tests: the compiled component in the real shim, over real HTTP
//! on loopback. Run `make component` first (`make test` does).

mod commands;
mod deliveries;
mod foundation;
mod incoming;
mod incoming_manage;
mod outgoing;
mod processes;
mod websocket;

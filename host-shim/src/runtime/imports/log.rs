//! `log`: plugin log lines, kept for the harness and written through tracing.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::log::{Host, Level};

impl Host for CallState {
    async fn write(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.app.events.log(level, &message);
    }
}

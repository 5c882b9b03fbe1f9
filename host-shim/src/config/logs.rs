//! `LogSettings`: Mattermost's console log settings, which `crate::logs`
//! installs at start.

use serde::{Deserialize, Serialize};

/// Mattermost's `LogSettings`, the console part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogSettings {
    /// `DEBUG`, `INFO` (the default, as Mattermost recommends), `WARN` or `ERROR`.
    pub console_level: String,
    /// One JSON object a line instead of text for people.
    pub console_json: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            console_level: "INFO".into(),
            console_json: false,
        }
    }
}

impl LogSettings {
    /// The `tracing` filter for `ConsoleLevel`: the level for this server's
    /// own lines (the library, the binary, the plugin's and the egress
    /// lines), INFO at most for its dependencies.
    pub fn filter(&self) -> anyhow::Result<String> {
        let level = match self.console_level.to_ascii_uppercase().as_str() {
            "DEBUG" => "debug",
            "INFO" => "info",
            "WARN" => "warn",
            "ERROR" => "error",
            other => anyhow::bail!(
                "LogSettings.ConsoleLevel is {other:?}; use DEBUG, INFO, WARN or ERROR"
            ),
        };
        let others = if level == "debug" { "info" } else { level };
        Ok(format!(
            "{others},switchboard_host_shim={level},host_shim={level},plugin={level},egress={level},wasmtime=warn,cranelift=warn"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_levels_map_to_filters_and_others_are_refused() {
        let with = |level: &str| LogSettings {
            console_level: level.into(),
            console_json: false,
        };
        let debug = with("debug").filter().unwrap();
        assert!(
            debug.starts_with("info,switchboard_host_shim=debug"),
            "{debug}"
        );
        assert!(with("WARN").filter().unwrap().starts_with("warn,"));
        assert!(with("ERROR").filter().unwrap().contains("plugin=error"));
        assert!(
            LogSettings::default()
                .filter()
                .unwrap()
                .starts_with("info,")
        );
        assert!(with("TRACE").filter().is_err());
    }
}

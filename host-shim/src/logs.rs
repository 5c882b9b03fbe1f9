//! The server's console log: Mattermost's `LogSettings.ConsoleLevel` and
//! `ConsoleJson` (one JSON object a line: `timestamp`, `level`, `msg`,
//! `caller` and the event's fields), with `RUST_LOG` overriding the level for
//! developers. Dependencies never log below INFO, whatever the level: their
//! debug lines carry URLs and headers this crate does not control.

use crate::config::LogSettings;
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the console log for `settings`; `RUST_LOG`, when set, replaces
/// the level filter (not the format).
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::try_new(settings.filter()?)?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = if settings.console_json {
        builder.event_format(JsonLines).try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log: {e}"))
}

/// Writes each event as one JSON object on one line.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", json_line(event, std::time::SystemTime::now()))
    }
}

/// The line's object: the fixed keys first, then the event's fields (a
/// field named like a fixed key is kept under `field.<name>`).
fn json_line(event: &Event<'_>, at: std::time::SystemTime) -> Value {
    let mut fields = Fields(Map::new());
    event.record(&mut fields);
    let meta = event.metadata();
    let mut line = Map::new();
    line.insert("timestamp".into(), timestamp(at).into());
    line.insert(
        "level".into(),
        meta.level().as_str().to_ascii_lowercase().into(),
    );
    line.insert(
        "msg".into(),
        fields.0.remove("message").unwrap_or_else(|| "".into()),
    );
    line.insert("caller".into(), meta.target().into());
    for (key, value) in fields.0 {
        let key = if line.contains_key(&key) {
            format!("field.{key}")
        } else {
            key
        };
        line.insert(key, value);
    }
    Value::Object(line)
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Mattermost's log time: `2006-01-02 15:04:05.000 Z`, in UTC.
fn timestamp(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_mattermosts_utc_format() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000 Z");
        // 2024-02-29 23:59:58.250 UTC: a leap day.
        let at = UNIX_EPOCH + Duration::from_millis(1_709_251_198_250);
        assert_eq!(timestamp(at), "2024-02-29 23:59:58.250 Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_798_761_600);
        assert_eq!(timestamp(at), "2027-01-01 00:00:00.000 Z");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_timestamp_level_msg_and_fields() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                status = 200u64,
                route = "/hooks/{id}",
                ok = true,
                "one \"quoted\" line"
            );
            tracing::debug!(target: "plugin", level = "x", "second");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["msg"], "one \"quoted\" line");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["route"], "/hooks/{id}");
        assert_eq!(lines[0]["ok"], true);
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with(" Z"));
        assert_eq!(lines[1]["caller"], "plugin");
        assert_eq!(lines[1]["level"], "debug");
        assert_eq!(lines[1]["field.level"], "x");
    }
}

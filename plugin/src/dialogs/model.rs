//! The dialog Mattermost clients render (`model.Dialog`), decoded for
//! validation only: what is shown to the client is the integration's JSON as sent.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dialog {
    pub callback_id: String,
    pub title: String,
    pub introduction_text: String,
    pub icon_url: String,
    pub elements: Vec<Element>,
    pub submit_label: String,
    pub notify_on_cancel: bool,
    pub state: String,
    pub source_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Element {
    pub display_name: String,
    pub name: String,
    #[serde(rename = "type")]
    pub element_type: String,
    pub subtype: String,
    pub default: String,
    pub placeholder: String,
    pub help_text: String,
    pub optional: bool,
    pub min_length: i64,
    pub max_length: i64,
    pub data_source: String,
    pub data_source_url: String,
    pub options: Vec<DialogOption>,
    pub multiselect: bool,
    pub refresh: bool,
    pub datetime_config: Value,
    pub min_date: String,
    pub max_date: String,
    pub time_interval: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DialogOption {
    pub text: String,
    pub value: String,
}

/// Go leaves a field at its zero value for `null`; serde refuses it, so
/// nulls are dropped (at every depth) before decoding.
pub fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

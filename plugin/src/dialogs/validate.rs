//! Dialog validation (spec §8.2). As in Mattermost, the rules are advisory:
//! a dialog that breaks them is still opened, and the rules broken come back
//! as warnings, which the open route logs and names in a response header.
//! Only Switchboard's own element cap refuses a dialog (docs/COMPATIBILITY.md).

use super::model::{Dialog, Element};
use crate::api::ApiError;
use crate::commands::model::is_valid_http_url;
use std::collections::HashSet;
use std::fmt;

/// Most elements a dialog may have. Mattermost sets none; no client renders
/// hundreds usefully, and each costs the user's client memory.
pub const MAX_ELEMENTS: usize = 100;

const TEXT_SUBTYPES: &[&str] = &["", "text", "email", "number", "tel", "url", "password"];

/// Longest part of an integration's value a warning repeats, in characters.
const SHOWN_CHARS: usize = 40;

/// One rule a dialog breaks: where (`title`, `elements[2] "notify"`) and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub place: String,
    pub rule: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.rule)
    }
}

/// An integration's value quoted for a warning, cut to [`SHOWN_CHARS`].
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Checks a dialog: refuses one over [`MAX_ELEMENTS`], and returns every
/// advisory rule it breaks (the first per element), in order.
pub fn check(dialog: &Dialog) -> Result<Vec<Warning>, ApiError> {
    if dialog.elements.len() > MAX_ELEMENTS {
        return Err(ApiError::new(
            400,
            "interactive_message.dialog.invalid.app_error",
            format!(
                "Invalid dialog: a dialog may have at most {MAX_ELEMENTS} elements, this one has {}",
                dialog.elements.len()
            ),
        ));
    }
    let mut warnings = Vec::new();
    let mut warn = |place: String, rule: String| warnings.push(Warning { place, rule });
    let len = dialog.title.len();
    if len == 0 || len > 24 {
        warn("title".into(), "must be 1 to 24 bytes".into());
    }
    if !dialog.icon_url.is_empty() && !is_valid_http_url(&dialog.icon_url) {
        warn("icon_url".into(), "must be an http(s) URL".into());
    }
    let mut names = HashSet::new();
    for (index, element) in dialog.elements.iter().enumerate() {
        let place = || format!("elements[{index}] {}", quoted(&element.name));
        if let Err(rule) = check_element(element) {
            warn(place(), rule);
        }
        if !names.insert(element.name.as_str()) {
            warn(place(), "name is used by an earlier element".into());
        }
    }
    Ok(warnings)
}

fn at_most(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} must be at most {max} bytes"));
    }
    Ok(())
}

fn check_element(e: &Element) -> Result<(), String> {
    if e.display_name.is_empty() || e.display_name.len() > 24 {
        return Err("display_name must be 1 to 24 bytes".into());
    }
    if e.name.is_empty() || e.name.len() > 300 {
        return Err("name must be 1 to 300 bytes".into());
    }
    at_most("help_text", &e.help_text, 150)?;
    if e.min_length < 0 || e.max_length < 0 || e.min_length > e.max_length {
        return Err("min_length must be between 0 and max_length".into());
    }
    if e.multiselect && e.element_type != "select" {
        return Err("multiselect is only for select elements".into());
    }
    let values: Vec<&str> = e.options.iter().map(|o| o.value.as_str()).collect();
    match e.element_type.as_str() {
        "text" | "textarea" => {
            let max = if e.element_type == "text" { 150 } else { 3000 };
            at_most("default", &e.default, max)?;
            at_most("placeholder", &e.placeholder, max)?;
            if !TEXT_SUBTYPES.contains(&e.subtype.as_str()) {
                return Err(format!(
                    "subtype {} is not one of {TEXT_SUBTYPES:?}",
                    quoted(&e.subtype)
                ));
            }
        }
        "select" => {
            at_most("default", &e.default, 3000)?;
            at_most("placeholder", &e.placeholder, 3000)?;
            match e.data_source.as_str() {
                "" => {
                    if e.options
                        .iter()
                        .any(|o| o.text.is_empty() || o.value.is_empty())
                    {
                        return Err("every option needs a text and a value".into());
                    }
                    let defaults: Vec<String> = if e.multiselect {
                        e.default
                            .replace(' ', "")
                            .split(',')
                            .filter(|d| !d.is_empty())
                            .map(str::to_string)
                            .collect()
                    } else if e.default.is_empty() {
                        Vec::new()
                    } else {
                        vec![e.default.clone()]
                    };
                    if let Some(d) = defaults.iter().find(|d| !values.contains(&d.as_str())) {
                        return Err(format!(
                            "default {} is not among the options' values",
                            quoted(d)
                        ));
                    }
                }
                "users" | "channels" => {}
                "dynamic" => {
                    if !e.options.is_empty() {
                        return Err("a dynamic select takes no options".into());
                    }
                    if !is_lookup_url(&e.data_source_url) {
                        return Err(
                            "data_source_url must be an http(s) URL or a /plugins/ path".into()
                        );
                    }
                }
                other => {
                    return Err(format!(
                        "data_source {} is not one of users, channels, dynamic",
                        quoted(other)
                    ));
                }
            }
        }
        "bool" => {
            if !["", "true", "false"].contains(&e.default.as_str()) {
                return Err("default must be \"\", \"true\" or \"false\"".into());
            }
            at_most("placeholder", &e.placeholder, 150)?;
        }
        "radio" => {
            if !e.default.is_empty() && !values.contains(&e.default.as_str()) {
                return Err(format!(
                    "default {} is not among the options' values",
                    quoted(&e.default)
                ));
            }
        }
        "date" => {
            for (what, value) in [
                ("default", &e.default),
                ("min_date", &e.min_date),
                ("max_date", &e.max_date),
            ] {
                if !value.is_empty() && !is_date(value) && !is_relative(value) {
                    return Err(format!(
                        "{what} {} is not YYYY-MM-DD or a relative date",
                        quoted(value)
                    ));
                }
            }
        }
        "datetime" => {
            if !e.default.is_empty() && !is_datetime(&e.default) && !is_relative(&e.default) {
                return Err(format!(
                    "default {} is not a datetime or a relative date",
                    quoted(&e.default)
                ));
            }
            // 0 is "not set" (the client's default of 60), not a rule broken.
            let t = e.time_interval;
            if t != 0 && !((1..=1440).contains(&t) && 1440 % t == 0) {
                return Err("time_interval must be 1 to 1440 minutes and divide 1440".into());
            }
        }
        other => {
            return Err(format!(
                "type {} is not a dialog element type",
                quoted(other)
            ));
        }
    }
    Ok(())
}

/// Mattermost's lookup-URL rule: http(s), or a `/plugins/` path that does not
/// climb out (`..`) or hide a host (`//`).
pub fn is_lookup_url(url: &str) -> bool {
    is_valid_http_url(url)
        || (url.starts_with("/plugins/") && !url.contains("..") && !url.contains("//"))
}

/// `YYYY-MM-DD`, a real day.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r).and_then(|p| {
            p.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| p.parse::<u32>().ok())
                .flatten()
        })
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// `today`, `tomorrow`, `yesterday` or `[+-]N[dwm]`.
fn is_relative(s: &str) -> bool {
    if ["today", "tomorrow", "yesterday"].contains(&s) {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    let Some(n) = rest
        .strip_suffix('d')
        .or_else(|| rest.strip_suffix('w'))
        .or_else(|| rest.strip_suffix('m'))
    else {
        return false;
    };
    !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
}

/// `2006-01-02T15:04:05Z`, `…T15:04:05-07:00`, `…T15:04:05` or `…T15:04`.
fn is_datetime(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = if let Some(c) = time.strip_suffix('Z') {
        (c, "")
    } else if time.len() > 8 && matches!(time.as_bytes()[8], b'+' | b'-') {
        (&time[..8], &time[8..])
    } else {
        (time, "")
    };
    let hm = |p: &str, max: u32| p.len() == 2 && p.parse::<u32>().is_ok_and(|v| v <= max);
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = match parts.as_slice() {
        [h, m] => zone.is_empty() && !time.ends_with('Z') && hm(h, 23) && hm(m, 59),
        [h, m, sec] => hm(h, 23) && hm(m, 59) && hm(sec, 59),
        _ => false,
    };
    let zone_ok = zone.is_empty()
        || matches!(zone[1..].split_once(':'), Some((h, m)) if hm(h, 14) && hm(m, 59));
    clock_ok && zone_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogs::model::DialogOption;

    fn element(name: &str, kind: &str) -> Element {
        Element {
            display_name: "Field".into(),
            name: name.into(),
            element_type: kind.into(),
            ..Element::default()
        }
    }

    fn dialog(elements: Vec<Element>) -> Dialog {
        Dialog {
            title: "Title".into(),
            elements,
            ..Dialog::default()
        }
    }

    /// The one warning `d` gets, which must hold `words`.
    #[track_caller]
    fn warned(d: &Dialog, words: &str) {
        let warnings = check(d).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let shown = warnings[0].to_string();
        assert!(shown.contains(words), "{shown} lacks {words}");
    }

    #[test]
    fn every_type_valid_passes() {
        let mut select = element("s", "select");
        select.options = vec![DialogOption {
            text: "A".into(),
            value: "a".into(),
        }];
        select.default = "a".into();
        let mut dynamic = element("dy", "select");
        dynamic.data_source = "dynamic".into();
        dynamic.data_source_url = "http://x/lookup".into();
        let mut date = element("d", "date");
        date.default = "2024-02-29".into();
        date.min_date = "-2w".into();
        let mut dt = element("dt", "datetime");
        dt.default = "2024-01-02T15:04:05-07:00".into();
        dt.time_interval = 30;
        let d = dialog(vec![
            element("t", "text"),
            element("ta", "textarea"),
            select,
            dynamic,
            element("b", "bool"),
            element("r", "radio"),
            date,
            dt,
        ]);
        assert_eq!(check(&d).unwrap(), Vec::new());
    }

    #[test]
    fn each_rule_is_a_named_warning() {
        let mut untitled = dialog(vec![element("a", "text")]);
        untitled.title = String::new();
        warned(&untitled, "title: must be 1 to 24 bytes");
        warned(
            &dialog(vec![element("a", "color")]),
            "elements[0] \"a\": type \"color\"",
        );
        warned(
            &dialog(vec![element("a", "text"), element("a", "bool")]),
            "elements[1] \"a\": name is used",
        );
        let mut e = element("a", "text");
        e.subtype = "phone".into();
        warned(&dialog(vec![e]), "subtype");
        let mut e = element("a", "text");
        e.min_length = 5;
        warned(&dialog(vec![e]), "min_length");
        let mut e = element("a", "bool");
        e.multiselect = true;
        warned(&dialog(vec![e]), "multiselect");
        let mut e = element("a", "select");
        e.default = "zzz".into();
        warned(&dialog(vec![e]), "default \"zzz\"");
        let mut e = element("a", "select");
        e.data_source = "dynamic".into();
        warned(&dialog(vec![e]), "data_source_url");
        let mut e = element("a", "date");
        e.default = "2023-02-29".into();
        warned(&dialog(vec![e]), "default");
        let mut e = element("a", "datetime");
        e.time_interval = 7;
        warned(&dialog(vec![e]), "time_interval");
    }

    #[test]
    fn every_broken_rule_is_listed_and_long_values_are_cut() {
        let mut bad_type = element(&"n".repeat(300), "colour");
        bad_type.display_name = "Colour".into();
        let mut bad_default = element("b", "radio");
        bad_default.default = "x".repeat(3000);
        let mut d = dialog(vec![bad_type, element("ok", "text"), bad_default]);
        d.icon_url = "ftp://x/i.png".into();
        let warnings = check(&d).unwrap();
        let places: Vec<&str> = warnings.iter().map(|w| w.place.as_str()).collect();
        assert_eq!(places.len(), 3, "{warnings:?}");
        assert_eq!(places[0], "icon_url");
        assert_eq!(places[1], format!("elements[0] \"{}\"...", "n".repeat(40)));
        assert_eq!(places[2], "elements[2] \"b\"");
        assert!(warnings[2].rule.len() < 100, "{}", warnings[2].rule);
    }

    #[test]
    fn only_the_element_cap_refuses() {
        let many = (0..=MAX_ELEMENTS)
            .map(|i| element(&format!("e{i}"), "text"))
            .collect();
        let err = check(&dialog(many)).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.id, "interactive_message.dialog.invalid.app_error");
        assert!(
            err.message.contains("at most 100 elements"),
            "{}",
            err.message
        );
        let most = (0..MAX_ELEMENTS)
            .map(|i| element(&format!("e{i}"), "text"))
            .collect();
        assert_eq!(check(&dialog(most)).unwrap(), Vec::new());
    }

    #[test]
    fn dates_and_lookup_urls() {
        assert!(is_relative("+3d") && is_relative("today") && !is_relative("3d"));
        assert!(is_datetime("2024-01-02T15:04") && is_datetime("2024-01-02T15:04:05Z"));
        assert!(!is_datetime("2024-01-02T25:04") && !is_datetime("2024-01-02"));
        assert!(is_lookup_url("/plugins/x/lookup") && !is_lookup_url("/plugins/../x"));
        assert!(!is_lookup_url("/plugins//evil.com"));
    }
}

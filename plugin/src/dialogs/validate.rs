//! Dialog validation (spec §8.2). Mattermost only logs a warning for an
//! invalid dialog and opens it anyway; here it is refused with a 400 that
//! names the element and the rule (docs/COMPATIBILITY.md says why).

use super::model::{Dialog, Element};
use crate::api::ApiError;
use crate::commands::model::is_valid_http_url;
use std::collections::HashSet;

/// Most elements a dialog may have. Mattermost sets none; no client renders
/// hundreds usefully, and each costs the user's client memory.
pub const MAX_ELEMENTS: usize = 100;

const TEXT_SUBTYPES: &[&str] = &["", "text", "email", "number", "tel", "url", "password"];

fn invalid(message: String) -> ApiError {
    ApiError::new(
        400,
        "interactive_message.dialog.invalid.app_error",
        format!("Invalid dialog: {message}"),
    )
}

/// Checks a dialog; the error names the first rule broken.
pub fn check(dialog: &Dialog) -> Result<(), ApiError> {
    let len = dialog.title.len();
    if len == 0 || len > 24 {
        return Err(invalid("title must be 1 to 24 bytes".into()));
    }
    if !dialog.icon_url.is_empty() && !is_valid_http_url(&dialog.icon_url) {
        return Err(invalid("icon_url must be an http(s) URL".into()));
    }
    if dialog.elements.len() > MAX_ELEMENTS {
        return Err(invalid(format!(
            "a dialog may have at most {MAX_ELEMENTS} elements, this one has {}",
            dialog.elements.len()
        )));
    }
    let mut names = HashSet::new();
    for (index, element) in dialog.elements.iter().enumerate() {
        check_element(element)
            .map_err(|rule| invalid(format!("element {index} ({:?}): {rule}", element.name)))?;
        if !names.insert(element.name.as_str()) {
            return Err(invalid(format!(
                "element {index} ({:?}): name is used by an earlier element",
                element.name
            )));
        }
    }
    Ok(())
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
                    "subtype {:?} is not one of {TEXT_SUBTYPES:?}",
                    e.subtype
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
                        return Err(format!("default {d:?} is not among the options' values"));
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
                        "data_source {other:?} is not one of users, channels, dynamic"
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
                    "default {:?} is not among the options' values",
                    e.default
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
                        "{what} {value:?} is not YYYY-MM-DD or a relative date"
                    ));
                }
            }
        }
        "datetime" => {
            if !e.default.is_empty() && !is_datetime(&e.default) && !is_relative(&e.default) {
                return Err(format!(
                    "default {:?} is not a datetime or a relative date",
                    e.default
                ));
            }
            // 0 is "not set" (the client's default of 60), not a rule broken.
            let t = e.time_interval;
            if t != 0 && !((1..=1440).contains(&t) && 1440 % t == 0) {
                return Err("time_interval must be 1 to 1440 minutes and divide 1440".into());
            }
        }
        other => return Err(format!("type {other:?} is not a dialog element type")),
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

    #[track_caller]
    fn refused(d: &Dialog, words: &str) {
        let err = check(d).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains(words), "{} lacks {words}", err.message);
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
        check(&d).unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        refused(&Dialog::default(), "title");
        refused(
            &dialog(vec![element("a", "color")]),
            "element 0 (\"a\"): type",
        );
        refused(
            &dialog(vec![element("a", "text"), element("a", "bool")]),
            "element 1",
        );
        let mut e = element("a", "text");
        e.subtype = "phone".into();
        refused(&dialog(vec![e]), "subtype");
        let mut e = element("a", "text");
        e.min_length = 5;
        refused(&dialog(vec![e]), "min_length");
        let mut e = element("a", "bool");
        e.multiselect = true;
        refused(&dialog(vec![e]), "multiselect");
        let mut e = element("a", "select");
        e.default = "zzz".into();
        refused(&dialog(vec![e]), "default");
        let mut e = element("a", "select");
        e.data_source = "dynamic".into();
        refused(&dialog(vec![e]), "data_source_url");
        let mut e = element("a", "date");
        e.default = "2023-02-29".into();
        refused(&dialog(vec![e]), "default");
        let mut e = element("a", "datetime");
        e.time_interval = 7;
        refused(&dialog(vec![e]), "time_interval");
        let many = (0..=MAX_ELEMENTS)
            .map(|i| element(&format!("e{i}"), "text"))
            .collect();
        refused(&dialog(many), "at most 100 elements");
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

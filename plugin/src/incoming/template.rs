//! Template transforms: a hook's Jinja templates (minijinja), rendered field by field into an
//! incoming-webhook payload built as a JSON value, never as JSON text, so a sender's value
//! is only ever a string inside one field. Bounded: source size, fuel per field, output.

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value as Jinja};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Work one field's render may do (minijinja's fuel: about one per instruction). A loop over
/// a thousand-item list with some formatting fits many times over; `{% for i in range(10**9) %}`
/// does not.
pub const FUEL_PER_FIELD: u64 = 200_000;
/// Work a whole render may do: shared equally among the members (and `when`), so a template
/// of many members is bounded as one of few, well inside the plugin call's deadline.
pub const FUEL_PER_RENDER: u64 = 1_000_000;
/// The largest rendered field, and the largest rendered payload, in bytes.
pub const MAX_FIELD_OUTPUT: usize = 64 * 1024;
pub const MAX_OUTPUT: usize = 256 * 1024;
/// The template's own size (all fields), and its attachments and fields per attachment.
pub const MAX_SOURCE: usize = 64 * 1024;
pub const MAX_ATTACHMENTS: usize = 20;
pub const MAX_FIELDS: usize = 20;

/// The hook's `"transform": {"template": {...}}`: each member a Jinja template, `when` a Jinja
/// expression (false drops the request). Empty members are left out of the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Template {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub when: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// The thing the request is about: the first post with a key starts a thread, later
    /// ones with the same key reply in it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thread_key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentTemplate>,
}

/// One attachment: its string members are templates, `fields` a list of field templates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentTemplate {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldTemplate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldTemplate {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub short: bool,
}

impl AttachmentTemplate {
    fn members(&self) -> [(&'static str, &String); 13] {
        [
            ("fallback", &self.fallback),
            ("color", &self.color),
            ("pretext", &self.pretext),
            ("author_name", &self.author_name),
            ("author_link", &self.author_link),
            ("author_icon", &self.author_icon),
            ("title", &self.title),
            ("title_link", &self.title_link),
            ("text", &self.text),
            ("image_url", &self.image_url),
            ("thumb_url", &self.thumb_url),
            ("footer", &self.footer),
            ("footer_icon", &self.footer_icon),
        ]
    }
}

/// Where a template went wrong: the field (`attachments[0].fields[1].value`), and in its
/// source the line and column (1-based) when the engine knows them.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub field: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.field)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(column) = self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a template sees of the request.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The body parsed as JSON, else its text.
    pub body: Value,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    /// What the hook's built-in source would post for this request (`text`, `attachments`,
    /// `thread`, `event`), or null.
    pub post: Value,
}

impl Context {
    pub fn new(query: &str, headers: &[(String, String)], body: &[u8], post: Value) -> Context {
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let mut joined: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            joined
                .entry(name.to_ascii_lowercase())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        let query = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Context {
            body,
            headers: joined,
            query,
            post,
        }
    }

    fn jinja(&self) -> Jinja {
        minijinja::context! {
            body => Jinja::from(Serde(&self.body)),
            headers => Jinja::from(Serde(&self.headers)),
            query => Jinja::from(Serde(&self.query)),
            post => Jinja::from(Serde(&self.post)),
        }
    }
}

/// A rendered template: the payload (as a sender would have posted it) and the thread key.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub payload: Value,
    pub thread_key: String,
}

/// Why a render failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The template raised an error (a bad filter argument, `raise`…).
    Template(TemplateError),
    /// A field used up its fuel (`fuel`: its share).
    Fuel { field: String, fuel: u64 },
    /// A field or the whole payload rendered larger than its bound.
    Output { field: String, limit: usize },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Template(e) => e.fmt(f),
            RenderError::Fuel { field, fuel } => write!(
                f,
                "{field}: the template used up its fuel ({fuel} steps for this member)"
            ),
            RenderError::Output { field, limit } => {
                write!(f, "{field}: the rendered output is over {limit} bytes")
            }
        }
    }
}

fn environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    // `body.a.b` of a body without `a` is empty, not an error: senders leave members out.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(fuel));
    env.set_debug(true);
    env
}

/// The engine's error as ours: the line, and the column from the error's byte range.
fn located(field: &str, source: &str, err: &minijinja::Error) -> TemplateError {
    let column = err.range().and_then(|range| {
        let before = source.get(..range.start)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Some(before[line_start..].chars().count() + 1)
    });
    TemplateError {
        field: field.to_owned(),
        line: err.line(),
        column,
        message: err
            .detail()
            .map_or_else(|| err.kind().to_string(), str::to_owned),
    }
}

impl Template {
    /// Each non-empty template member but `when`, by its path.
    fn members(&self) -> Vec<(String, &str)> {
        let mut members = Vec::new();
        for (name, source) in [
            ("text", &self.text),
            ("username", &self.username),
            ("icon_url", &self.icon_url),
            ("channel", &self.channel),
            ("thread_key", &self.thread_key),
        ] {
            members.push((name.to_owned(), source.as_str()));
        }
        for (i, attachment) in self.attachments.iter().enumerate() {
            for (name, source) in attachment.members() {
                members.push((format!("attachments[{i}].{name}"), source.as_str()));
            }
            for (j, field) in attachment.fields.iter().enumerate() {
                members.push((
                    format!("attachments[{i}].fields[{j}].title"),
                    field.title.as_str(),
                ));
                members.push((
                    format!("attachments[{i}].fields[{j}].value"),
                    field.value.as_str(),
                ));
            }
        }
        members.retain(|(_, source)| !source.is_empty());
        members
    }

    /// Whether every member compiles and the template is within its bounds: checked when a
    /// hook is saved.
    pub fn check(&self) -> Result<(), TemplateError> {
        let bound = |message: String| TemplateError {
            field: "template".into(),
            line: None,
            column: None,
            message,
        };
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(bound(format!("more than {MAX_ATTACHMENTS} attachments")));
        }
        if self.attachments.iter().any(|a| a.fields.len() > MAX_FIELDS) {
            return Err(bound(format!(
                "an attachment with more than {MAX_FIELDS} fields"
            )));
        }
        let members = self.members();
        let size = self.when.len() + members.iter().map(|(_, s)| s.len()).sum::<usize>();
        if size > MAX_SOURCE {
            return Err(bound(format!("over {MAX_SOURCE} bytes of template")));
        }
        let env = environment(FUEL_PER_FIELD);
        if !self.when.is_empty() {
            env.compile_expression(&self.when)
                .map_err(|e| located("when", &self.when, &e))?;
        }
        for (name, source) in &members {
            env.template_from_str(source)
                .map_err(|e| located(name, source, &e))?;
        }
        Ok(())
    }

    /// The payload for this request, or `None` when `when` is false.
    pub fn render(&self, context: &Context) -> Result<Option<Rendered>, RenderError> {
        let members = self.members();
        let shares = members.len() as u64 + u64::from(!self.when.is_empty());
        let fuel = (FUEL_PER_RENDER / shares.max(1)).min(FUEL_PER_FIELD);
        let env = environment(fuel);
        let ctx = context.jinja();
        let fail = |field: &str, source: &str, e: minijinja::Error| {
            if e.kind() == ErrorKind::OutOfFuel {
                RenderError::Fuel {
                    field: field.to_owned(),
                    fuel,
                }
            } else {
                RenderError::Template(located(field, source, &e))
            }
        };
        if !self.when.is_empty() {
            let verdict = env
                .compile_expression(&self.when)
                .and_then(|expr| expr.eval(ctx.clone()))
                .map_err(|e| fail("when", &self.when, e))?;
            if !verdict.is_true() {
                return Ok(None);
            }
        }
        let mut rendered: BTreeMap<String, String> = BTreeMap::new();
        let mut total = 0;
        for (name, source) in members {
            let out = env
                .template_from_str(source)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| fail(&name, source, e))?;
            if out.len() > MAX_FIELD_OUTPUT {
                return Err(RenderError::Output {
                    field: name,
                    limit: MAX_FIELD_OUTPUT,
                });
            }
            total += out.len();
            if total > MAX_OUTPUT {
                return Err(RenderError::Output {
                    field: "template".into(),
                    limit: MAX_OUTPUT,
                });
            }
            rendered.insert(name, out);
        }
        Ok(Some(self.assemble(&mut rendered)))
    }

    /// The payload from the rendered strings: each one a JSON string member, so nothing a
    /// sender wrote can become a member of its own.
    fn assemble(&self, rendered: &mut BTreeMap<String, String>) -> Rendered {
        let mut take = |path: &str| rendered.remove(path).unwrap_or_default();
        let mut payload = Map::new();
        for name in ["text", "username", "icon_url", "channel"] {
            let value = take(name);
            if !value.is_empty() {
                payload.insert(name.to_owned(), Value::String(value));
            }
        }
        let thread_key = take("thread_key").trim().to_owned();
        let attachments: Vec<Value> = self
            .attachments
            .iter()
            .enumerate()
            .map(|(i, attachment)| {
                let mut object = Map::new();
                for (name, _) in attachment.members() {
                    let value = take(&format!("attachments[{i}].{name}"));
                    if !value.is_empty() {
                        object.insert(name.to_owned(), Value::String(value));
                    }
                }
                let fields: Vec<Value> = attachment
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(j, field)| {
                        json!({
                            "title": take(&format!("attachments[{i}].fields[{j}].title")),
                            "value": take(&format!("attachments[{i}].fields[{j}].value")),
                            "short": field.short,
                        })
                    })
                    .collect();
                if !fields.is_empty() {
                    object.insert("fields".to_owned(), Value::Array(fields));
                }
                Value::Object(object)
            })
            .collect();
        if !attachments.is_empty() {
            payload.insert("attachments".to_owned(), Value::Array(attachments));
        }
        Rendered {
            payload: Value::Object(payload),
            thread_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(body: &str) -> Context {
        Context::new(
            "env=prod",
            &[("X-Event".into(), "deploy".into())],
            body.as_bytes(),
            Value::Null,
        )
    }

    fn template(text: &str) -> Template {
        Template {
            text: text.into(),
            ..Template::default()
        }
    }

    #[test]
    fn fields_render_from_body_headers_and_query() {
        let t = Template {
            text:
                "{{ body.service }} {{ headers['x-event'] }} to {{ query.env }}{{ body.no.such }}"
                    .into(),
            attachments: vec![AttachmentTemplate {
                title: "{{ body.service | upper }}".into(),
                fields: vec![FieldTemplate {
                    title: "Version".into(),
                    value: "{{ body.version }}".into(),
                    short: true,
                }],
                ..AttachmentTemplate::default()
            }],
            ..Template::default()
        };
        let out = t
            .render(&context(r#"{"service":"api","version":"1.2"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(
            out.payload,
            json!({"text": "api deploy to prod", "attachments": [{"title": "API",
                   "fields": [{"title": "Version", "value": "1.2", "short": true}]}]})
        );
        // A body that is not JSON is its text.
        let out = template("got {{ body }}")
            .render(&context("plain words"))
            .unwrap()
            .unwrap();
        assert_eq!(out.payload["text"], "got plain words");
    }

    #[test]
    fn a_senders_value_stays_one_string() {
        let t = Template {
            text: "{{ body.msg }}".into(),
            ..Template::default()
        };
        let evil = r#"{"msg": "hi\", \"channel\": \"x"}"#;
        let out = t.render(&context(evil)).unwrap().unwrap();
        assert_eq!(out.payload, json!({"text": "hi\", \"channel\": \"x"}));
    }

    #[test]
    fn when_false_drops() {
        let mut t = template("x");
        t.when = "body.status == 'firing'".into();
        assert_eq!(t.render(&context(r#"{"status":"ok"}"#)).unwrap(), None);
        assert!(
            t.render(&context(r#"{"status":"firing"}"#))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_template_that_does_not_compile_names_field_line_and_column() {
        let mut t = template("ok");
        t.attachments = vec![AttachmentTemplate {
            text: "line one\n  {{ body.x | }}".into(),
            ..AttachmentTemplate::default()
        }];
        let err = t.check().unwrap_err();
        assert_eq!(err.field, "attachments[0].text");
        assert_eq!(err.line, Some(2));
        assert!(err.column.is_some_and(|c| c > 1), "{err}");
        let mut t = template("ok");
        t.when = "body.x ==".into();
        assert_eq!(t.check().unwrap_err().field, "when");
        assert!(template("{{ a }} {% if x %}y{% endif %}").check().is_ok());
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let t = template(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        );
        assert!(t.check().is_ok());
        assert_eq!(
            t.render(&context("{}")).unwrap_err(),
            RenderError::Fuel {
                field: "text".into(),
                fuel: FUEL_PER_FIELD,
            }
        );
    }

    /// Many members share one budget: thirty members that each loop 50 000 times pass one
    /// by one but not together.
    #[test]
    fn members_share_the_render_budget() {
        let busy = "{% for i in range(50000) %}{% endfor %}x";
        assert!(template(busy).render(&context("{}")).is_ok());
        let t = Template {
            attachments: (0..3)
                .map(|_| AttachmentTemplate {
                    fields: (0..5)
                        .map(|_| FieldTemplate {
                            title: busy.into(),
                            value: busy.into(),
                            short: false,
                        })
                        .collect(),
                    ..AttachmentTemplate::default()
                })
                .collect(),
            ..Template::default()
        };
        assert!(matches!(
            t.render(&context("{}")).unwrap_err(),
            RenderError::Fuel { fuel: 33_333, .. }
        ));
    }

    #[test]
    fn output_is_bounded() {
        let t = template("{{ 'x' * 70000 }}");
        assert!(matches!(
            t.render(&context("{}")).unwrap_err(),
            RenderError::Output { .. }
        ));
    }
}

//! How command results are printed: aligned tables and field lists for people, the API's JSON as
//! is for scripts (`--json`). Data goes to stdout, remarks to stderr, so `$(…)` captures only data.
//!
//! A handful of columns and a field list need no table crate: widths are counted in characters
//! and every cell is made printable first (values come from the vault and from end users).

use std::io::Write;

use serde_json::Value;

use crate::client::printable;

/// A table column: its header and the dotted path of the field it shows.
pub type Column = (&'static str, &'static str);

/// What a command produced.
pub enum Outcome {
    /// A list page `{data, next_cursor}`: a table of these columns.
    Page { page: Value, columns: &'static [Column] },
    /// One object: its fields, one per line, with an optional remark on stderr.
    Record { value: Value, note: Option<String> },
    /// An object holding a secret shown once: people get just that field on stdout (so
    /// `X=$(tokenvault …)` captures it) and the note on stderr; `--json` gets the whole object.
    Secret { value: Value, field: &'static str, note: String },
    /// Done, nothing to show (`204`): the note goes to stderr.
    Done { note: String },
    /// Already written to stdout (e.g. an export's JSON lines).
    Written,
}

impl Outcome {
    pub fn record(value: Value) -> Outcome {
        Outcome::Record { value, note: None }
    }

    pub fn done(note: impl Into<String>) -> Outcome {
        Outcome::Done { note: note.into() }
    }
}

pub fn print(outcome: Outcome, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match outcome {
        Outcome::Page { page, columns } => {
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&page)?)?;
            } else {
                let rows = page["data"].as_array().map(Vec::as_slice).unwrap_or_default();
                write!(out, "{}", table(columns, rows))?;
                if let Some(cursor) = page["next_cursor"].as_str() {
                    eprintln!("more results: repeat with --after {}", printable(cursor));
                }
            }
        }
        Outcome::Record { value, note } => {
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                write!(out, "{}", fields(&value))?;
            }
            if let Some(note) = note {
                eprintln!("{note}");
            }
        }
        Outcome::Secret { value, field, note } => {
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                eprintln!("{note}");
                writeln!(out, "{}", value[field].as_str().unwrap_or_default())?;
            }
        }
        Outcome::Done { note } => eprintln!("{note}"),
        Outcome::Written => {}
    }
    out.flush()?;
    Ok(())
}

/// A value as one cell: strings as they are, lists joined with commas, `-` for nothing.
pub fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => value.to_string(),
    };
    printable(&text)
}

fn lookup<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |v, key| v.get(key).unwrap_or(&Value::Null))
}

/// An aligned table with a header line; the last column is not padded.
pub fn table(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> =
        rows.iter().map(|row| columns.iter().map(|(_, path)| cell(lookup(row, path))).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|(header, _)| header.chars().count()).collect();
    for row in &cells {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let mut text = String::new();
    let headers: Vec<String> = columns.iter().map(|(header, _)| (*header).to_owned()).collect();
    for row in std::iter::once(&headers).chain(&cells) {
        let mut line = String::new();
        for (i, (value, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(value);
            } else {
                line.push_str(value);
                line.extend(std::iter::repeat_n(' ', width - value.chars().count() + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// An object's fields, one `name  value` line each, `id` first.
pub fn fields(value: &Value) -> String {
    let Some(object) = value.as_object() else {
        return format!("{}\n", cell(value));
    };
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    entries.sort_by_key(|(name, _)| *name != "id");
    let width = entries.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for (name, value) in entries {
        let name = printable(name);
        text.push_str(&format!("{name:width$}  {}\n", cell(value)));
    }
    text
}

pub const APP_COLUMNS: &[Column] =
    &[("ID", "id"), ("NAME", "name"), ("RETURN_ORIGINS", "return_origins"), ("CREATED_AT", "created_at")];
pub const API_KEY_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("SCOPES", "scopes"),
    ("AGENT_ID", "agent_id"),
    ("EXPIRES_AT", "expires_at"),
    ("CREATED_AT", "created_at"),
    ("LAST_USED_AT", "last_used_at"),
    ("REVOKED_AT", "revoked_at"),
];
pub const AGENT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("DESCRIPTION", "description"),
    ("CREATED_AT", "created_at"),
];
pub const DELEGATION_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("AGENT_ID", "agent_id"),
    ("GRANT_ID", "grant_id"),
    ("PROXY_ONLY", "proxy_only"),
    ("METHODS", "methods"),
    ("PATHS", "paths"),
    ("EXPIRES_AT", "expires_at"),
    ("REVOKED_AT", "revoked_at"),
];
pub const ADMIN_TOKEN_COLUMNS: &[Column] =
    &[("ID", "id"), ("NAME", "name"), ("CREATED_AT", "created_at"), ("REVOKED_AT", "revoked_at")];
pub const KEY_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("STATE", "state"),
    ("SEALED_VALUES", "sealed_values"),
    ("CREATED_AT", "created_at"),
    ("RETIRED_AT", "retired_at"),
];
pub const PROVIDER_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "display_name"),
    ("CATEGORY", "category"),
    ("ENVIRONMENTS", "environments"),
    ("SCOPES_CONFIGURABLE", "scopes_configurable"),
];
pub const PROVIDER_CONFIG_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("KEY", "key"),
    ("PROVIDER", "provider"),
    ("ENVIRONMENT", "environment"),
    ("CLIENT_ID", "client_id"),
    ("REDIRECT_URI", "redirect_uri"),
];
pub const GRANT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("PROVIDER", "provider"),
    ("END_USER", "end_user_id"),
    ("ACCOUNT", "account.id"),
    ("STATUS", "status"),
    ("EXPIRES_AT", "expires_at"),
];
pub const OPERATOR_COLUMNS: &[Column] =
    &[("ID", "id"), ("EMAIL", "email"), ("ROLE", "role"), ("CREATED_AT", "created_at")];
pub const APPROVAL_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("STATUS", "status"),
    ("GRANT_ID", "grant_id"),
    ("METHOD", "request.method"),
    ("PATH", "request.path"),
    ("AGENT", "requested_by.agent_id"),
    ("EXPIRES_AT", "expires_at"),
];
pub const POLICY_COLUMNS: &[Column] =
    &[("ID", "id"), ("TARGET", "target_type"), ("TARGET_ID", "target_id"), ("RULES", "rules")];
pub const SECRET_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("END_USER", "end_user_id"),
    ("STYLE", "style"),
    ("STATUS", "status"),
    ("BASE_URLS", "base_urls"),
];
pub const WEBHOOK_COLUMNS: &[Column] =
    &[("ID", "id"), ("URL", "url"), ("EVENTS", "events"), ("CREATED_AT", "created_at")];
pub const DELIVERY_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("ENDPOINT", "endpoint_id"),
    ("EVENT", "event_type"),
    ("STATE", "state"),
    ("ATTEMPTS", "attempts"),
    ("LAST_STATUS", "last_status"),
    ("CREATED_AT", "created_at"),
];
pub const AUDIT_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("ACTION", "action"),
    ("OUTCOME", "outcome"),
    ("GRANT", "grant_id"),
    ("ACTOR", "actor.id"),
    ("METHOD", "method"),
    ("PATH", "path"),
    ("STATUS", "upstream_status"),
];
pub const PROFILE_COLUMNS: &[Column] =
    &[("NAME", "name"), ("URL", "url"), ("CREDENTIALS", "credentials"), ("IN_USE", "in_use")];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_and_cells_are_printable() {
        let rows = [json!({"id": "a", "name": "x\u{1b}y", "tags": ["p", "q"]}), json!({"id": "long-id", "tags": []})];
        let text = table(&[("ID", "id"), ("NAME", "name"), ("TAGS", "tags")], &rows);
        assert_eq!(text, "ID       NAME  TAGS\na        x?y   p,q\nlong-id  -     -\n");
    }

    #[test]
    fn fields_put_the_id_first() {
        let text = fields(&json!({"name": "acme", "id": "app_1", "nested": {"a": 1}}));
        assert_eq!(text, "id      app_1\nname    acme\nnested  {\"a\":1}\n");
    }
}

//! From a stream's JSON Schema to typed destination columns, and how a table that
//! already exists is brought in line with a stream's columns.

use connector_api::{ConfiguredStream, SyncMode};
use serde_json::Value;

/// The column types destinations know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `type: string`.
    Text,
    /// `type: integer`.
    Integer,
    /// `type: number`.
    Real,
    /// `type: boolean`.
    Boolean,
    /// `type: string, format: date-time`.
    Timestamp,
    /// Objects, arrays, and anything with more than one non-null type.
    Json,
}

impl ColumnType {
    /// The lowercase name used in docs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
        }
    }

    /// The column type a property schema asks for.
    pub fn of(property: &Value) -> ColumnType {
        if let Some(variants) =
            property.get("anyOf").or_else(|| property.get("oneOf")).and_then(Value::as_array)
        {
            let non_null: Vec<&Value> =
                variants.iter().filter(|v| v.get("type").and_then(Value::as_str) != Some("null")).collect();
            return match non_null.as_slice() {
                [one] => ColumnType::of(one),
                _ => ColumnType::Json,
            };
        }
        let types: Vec<&str> = match property.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
            _ => Vec::new(),
        };
        match types.as_slice() {
            ["string"] => match property.get("format").and_then(Value::as_str) {
                Some("date-time") => ColumnType::Timestamp,
                _ => ColumnType::Text,
            },
            ["integer"] => ColumnType::Integer,
            ["number"] => ColumnType::Real,
            ["boolean"] => ColumnType::Boolean,
            _ => ColumnType::Json,
        }
    }
}

/// One column of a stream's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The record property it holds.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// The property's description, for docs.
    pub description: String,
}

impl Column {
    /// This column's cell of `record`, a record of `stream`; a value of the wrong type
    /// is the source's error, naming the stream and the field.
    pub fn cell_of<'a>(&self, stream: &str, record: &'a Value) -> connector_api::Result<Cell<'a>> {
        cell(self.ty, record.get(&self.name)).map_err(|reason| {
            connector_api::Error::new(
                connector_api::ErrorKind::Source,
                format!("stream {stream}, field {}: {reason}", self.name),
            )
            .with_context("stream", stream.to_string())
        })
    }
}

/// The columns of a record schema: primary-key columns first, then the rest in the
/// schema's property order.
pub fn columns(schema: &Value, primary_key: &[String]) -> Vec<Column> {
    let mut cols: Vec<Column> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| Column {
                    name: name.clone(),
                    ty: ColumnType::of(p),
                    description: p.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    cols.sort_by_key(|c| primary_key.iter().position(|k| *k == c.name).unwrap_or(usize::MAX));
    cols
}

/// The column naming the connector instance a row belongs to (`qlik-sense:acme.eu.qlikcloud.com`):
/// first in every table and part of its primary key, so tenants share tables without touching
/// each other's rows.
pub const INSTANCE: &str = "_instance";
/// When the run that wrote the row read it.
pub const EXTRACTED_AT: &str = "_extracted_at";
/// The run that wrote the row.
pub const RUN_ID: &str = "_run_id";

/// How an existing table must change to take a stream's columns: columns to add, and
/// columns the connector no longer sends, which are kept (NULL in new rows), never
/// dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    /// Columns to add, with their declared type.
    pub add: Vec<(String, String)>,
    /// Columns only the table has, with their declared type.
    pub kept: Vec<(String, String)>,
}

/// Compares `existing` columns (name, declared type) of `table` with `plan`'s, where
/// `type_name` is the destination's declared type of a column type. A column whose type
/// changed is an error: converting it could lose data someone relies on.
pub fn reconcile(
    table: &str,
    plan: &StreamPlan,
    existing: &[(String, String)],
    type_name: fn(ColumnType) -> &'static str,
) -> connector_api::Result<Reconciled> {
    let declared = |name: &str| existing.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str());
    let changed: Vec<String> = plan
        .columns
        .iter()
        .filter_map(|c| {
            let was = declared(&c.name)?;
            (!was.eq_ignore_ascii_case(type_name(c.ty)))
                .then(|| format!("{} was {was}, is now {}", c.name, type_name(c.ty)))
        })
        .collect();
    if !changed.is_empty() {
        return Err(connector_api::Error::new(
            connector_api::ErrorKind::Config,
            format!("table {table}: column type changed: {}", changed.join("; ")),
        )
        .with_context("stream", plan.stream.clone())
        .with_hint(format!(
            "The connector's schema changed. Check what reads {table}, then rename the table (or drop it) and rerun to reload it"
        )));
    }
    let mut wanted: Vec<(String, String)> =
        plan.columns.iter().map(|c| (c.name.clone(), type_name(c.ty).to_string())).collect();
    wanted.push((EXTRACTED_AT.into(), type_name(ColumnType::Timestamp).into()));
    wanted.push((RUN_ID.into(), type_name(ColumnType::Text).into()));
    let add = wanted.into_iter().filter(|(n, _)| declared(n).is_none()).collect();
    let kept = existing
        .iter()
        .filter(|(n, _)| {
            !plan.columns.iter().any(|c| c.name == *n)
                && ![INSTANCE, EXTRACTED_AT, RUN_ID].contains(&n.as_str())
        })
        .cloned()
        .collect();
    Ok(Reconciled { add, kept })
}

/// What a destination needs to know to load one stream.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Stream name.
    pub stream: String,
    /// Table name without schema: `<connector>__<stream>` for SQLite, `<stream>` in the
    /// connector's PostgreSQL schema.
    pub connector: String,
    /// Full refresh (stage and swap) or incremental (upsert).
    pub sync_mode: SyncMode,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// Columns from the record schema.
    pub columns: Vec<Column>,
}

impl StreamPlan {
    /// Plans loading `stream` for connector `connector_id`.
    pub fn new(connector_id: &str, stream: &ConfiguredStream) -> Self {
        StreamPlan {
            stream: stream.stream.name.clone(),
            connector: sql_name(connector_id),
            sync_mode: stream.sync_mode,
            primary_key: stream.stream.primary_key.clone(),
            columns: columns(&stream.stream.json_schema, &stream.stream.primary_key),
        }
    }

    /// The table's primary key: the instance, then the stream's own key. With the instance
    /// first, what a run does to its own tenant's rows (count them before and after, delete
    /// them for a full refresh) reads one range of the key's index instead of the whole
    /// table, so a small tenant's run beside a large one costs what its own rows cost: a
    /// 2,000-user tenant's run beside a 1.5-million-row one took 0.38 s instead of 0.63 s
    /// in PostgreSQL and 0.19 s instead of 0.59 s in SQLite, growing with the hub before.
    /// The price is at load: SQLite's loads cost the same, PostgreSQL's index inserts about
    /// 7% more (1,000,000 rows: 1.93 -> 2.11 s), as each comparison starts with the equal
    /// instance. Tables made before keep their key; both work.
    pub fn table_key(&self) -> Vec<String> {
        std::iter::once(INSTANCE.to_string()).chain(self.primary_key.iter().cloned()).collect()
    }

    /// Every column a row of this stream fills, in load order: the instance, the
    /// stream's columns, then when and by which run it was extracted.
    pub fn load_columns(&self) -> Vec<&str> {
        std::iter::once(INSTANCE)
            .chain(self.columns.iter().map(|c| c.name.as_str()))
            .chain([EXTRACTED_AT, RUN_ID])
            .collect()
    }

    /// Fails on the first of `records` (the stream's records after the first `before`)
    /// that cannot be stored, naming the field, the value (shortened) and the record's
    /// position in the stream: a row without its primary key cannot be told apart from
    /// another or replaced later, and an unreadable timestamp would be refused by one
    /// destination and kept by another. Every destination checks the same way, before
    /// anything is written; a value of another type than its column's is refused by the
    /// destination's own conversion ([`Column::cell_of`]), which fails the stream too.
    pub fn check_records(&self, records: &[Value], before: u64) -> connector_api::Result<()> {
        for (i, record) in records.iter().enumerate() {
            let position = before + i as u64 + 1;
            let bad = |field: &str, reason: String| {
                connector_api::Error::new(
                    connector_api::ErrorKind::Source,
                    format!("stream {}: record {position}, field `{field}`: {reason}", self.stream),
                )
                .with_context("stream", self.stream.clone())
                .with_hint("The source sent a record this stream's schema does not allow; the stream's previous rows are kept. Report the record to the source's owner")
            };
            for key in &self.primary_key {
                match record.get(key) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    Some(Value::Number(_)) => {}
                    None => return Err(bad(key, "the primary key is missing".into())),
                    Some(other) => return Err(bad(key, format!("the primary key is {}", shown(other)))),
                }
            }
            for col in self.columns.iter().filter(|c| c.ty == ColumnType::Timestamp) {
                if let Some(Value::String(text)) = record.get(&col.name)
                    && !is_timestamp(text)
                {
                    return Err(bad(
                        &col.name,
                        format!("not an RFC 3339 timestamp ({})", shown(&Value::String(text.clone()))),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The primary keys a full refresh has seen so far, as 128-bit hashes (two SipHash keys):
/// a repeated key is found before anything is written, the same way on every
/// destination, in about 32 bytes per record.
#[derive(Debug, Default)]
pub struct SeenKeys {
    hashers: Option<(std::hash::RandomState, std::hash::RandomState)>,
    seen: std::collections::HashSet<(u64, u64)>,
}

impl SeenKeys {
    /// Adds the keys of `records` (the stream's records after the first `before`) of
    /// `plan`; fails on the first key already seen, naming it and the record.
    pub fn add(&mut self, plan: &StreamPlan, records: &[Value], before: u64) -> connector_api::Result<()> {
        for (i, record) in records.iter().enumerate() {
            let key = key_values(plan, record);
            if !self.insert(&key_text(&key)) {
                return Err(connector_api::Error::new(
                    connector_api::ErrorKind::Source,
                    format!(
                        "stream {}: record {} repeats the primary key ({}) of an earlier record of this full refresh",
                        plan.stream,
                        before + i as u64 + 1,
                        plan.primary_key.iter().zip(&key).map(|(k, v)| format!("{k} = {}", shown(v))).collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_context("stream", plan.stream.clone())
                .with_hint("The source listed one row twice; the stream's previous rows are kept. Rerun; if it repeats, report it to the source's owner"));
            }
        }
        Ok(())
    }

    /// Adds the key whose canonical text is `key` (see [`key_text`]); false when it was
    /// already there.
    pub fn insert(&mut self, key: &str) -> bool {
        let hash = self.hash(key);
        self.seen.insert(hash)
    }

    /// The 128-bit hash of `key`.
    pub fn hash(&mut self, key: &str) -> (u64, u64) {
        use std::hash::BuildHasher;
        let (a, b) = self.hashers.get_or_insert_with(Default::default);
        (a.hash_one(key), b.hash_one(key))
    }
}

/// The primary-key values of `record` of `plan`, missing ones as null.
pub fn key_values<'a>(plan: &StreamPlan, record: &'a Value) -> Vec<&'a Value> {
    plan.primary_key.iter().map(|k| record.get(k).unwrap_or(&Value::Null)).collect()
}

/// The canonical text of a primary key: its values as a JSON array, strings and
/// numbers alike as text (`["42","a"]`), so a key read back from a CSV cell matches
/// the one a record was written with.
pub fn key_text(values: &[&Value]) -> String {
    let texts: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    serde_json::to_string(&texts).unwrap_or_default()
}

/// Whether `text` is an RFC 3339 timestamp, or a calendar date (`2021-09-30`, which
/// Qlik sends for some fields its definitions call dates and which every destination
/// reads as midnight UTC).
fn is_timestamp(text: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339).is_ok()
        || time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// `value` for an error message: its JSON, cut to 60 characters.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A connector id or stream name as an SQL identifier fragment (`qlik-sense` →
/// `qlik_sense`).
pub fn sql_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// A record value converted for a column.
#[derive(Debug, PartialEq)]
pub enum Cell<'a> {
    /// Absent or null.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// A boolean.
    Bool(bool),
    /// Text borrowed from the record.
    Text(&'a str),
    /// Text made from the record (a number in a text column).
    Owned(String),
    /// Serialised JSON.
    Json(String),
}

/// Converts `value` for a column of type `ty`; a value of the wrong type is an error
/// naming what was expected, never silently coerced.
pub fn cell(ty: ColumnType, value: Option<&Value>) -> Result<Cell<'_>, String> {
    let Some(value) = value else { return Ok(Cell::Null) };
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let wrong = || format!("expected {}, got {}", ty.as_str(), json_type(value));
    Ok(match ty {
        // A number in a text column (an id sent as 42 instead of "42") is kept as its
        // text: nothing is lost, and keys stay comparable.
        ColumnType::Text if value.is_number() => Cell::Owned(value.to_string()),
        ColumnType::Text | ColumnType::Timestamp => {
            let text = value.as_str().ok_or_else(wrong)?;
            // PostgreSQL refuses NUL in text; every destination stores U+FFFD instead,
            // so a hub reads the same whatever it runs on.
            if text.contains('\0') { Cell::Owned(text.replace('\0', "\u{FFFD}")) } else { Cell::Text(text) }
        }
        ColumnType::Integer => Cell::Int(value.as_i64().ok_or_else(wrong)?),
        ColumnType::Real => Cell::Real(value.as_f64().ok_or_else(wrong)?),
        ColumnType::Boolean => Cell::Bool(value.as_bool().ok_or_else(wrong)?),
        ColumnType::Json => {
            let text = value.to_string();
            if text.contains("\\u0000") {
                Cell::Json(without_nul(value).to_string())
            } else {
                Cell::Json(text)
            }
        }
    })
}

/// `value` with every NUL in its strings and keys replaced by U+FFFD (see [`cell`]).
fn without_nul(value: &Value) -> Value {
    let clean = |s: &str| s.replace('\0', "\u{FFFD}");
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (clean(k), without_nul(v))).collect()),
        other => other.clone(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_types_map_to_columns() {
        let schema = json!({"properties": {
            "name": {"type": "string"},
            "id": {"type": "string"},
            "n": {"type": ["integer", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "x": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "tags": {"type": "array"},
            "ok": {"type": "boolean"},
        }});
        let cols = columns(&schema, &["id".to_string()]);
        assert_eq!(cols[0].name, "id");
        let ty = |n: &str| cols.iter().find(|c| c.name == n).unwrap().ty;
        assert_eq!(ty("n"), ColumnType::Integer);
        assert_eq!(ty("at"), ColumnType::Timestamp);
        assert_eq!(ty("x"), ColumnType::Real);
        assert_eq!(ty("tags"), ColumnType::Json);
        assert_eq!(ty("ok"), ColumnType::Boolean);
    }

    #[test]
    fn wrong_value_type_is_an_error() {
        assert_eq!(
            cell(ColumnType::Integer, Some(&json!("ten"))).unwrap_err(),
            "expected integer, got string"
        );
        assert_eq!(cell(ColumnType::Json, Some(&json!({"a": 1}))).unwrap(), Cell::Json("{\"a\":1}".into()));
        assert_eq!(cell(ColumnType::Text, Some(&json!(42))).unwrap(), Cell::Owned("42".into()));
        assert!(cell(ColumnType::Text, Some(&json!({"id": 1}))).is_err());
        assert_eq!(cell(ColumnType::Text, Some(&json!("a\0b"))).unwrap(), Cell::Owned("a\u{FFFD}b".into()));
        assert_eq!(
            cell(ColumnType::Json, Some(&json!({"k\0": ["x\0"]}))).unwrap(),
            Cell::Json("{\"k\u{FFFD}\":[\"x\u{FFFD}\"]}".into())
        );
        assert_eq!(cell(ColumnType::Text, None).unwrap(), Cell::Null);
    }
}

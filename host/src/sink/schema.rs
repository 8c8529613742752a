//! From a stream's JSON Schema to typed destination columns.

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

    /// `qlik_sense__users`: the table name in single-namespace stores.
    pub fn flat_table(&self) -> String {
        format!("{}__{}", self.connector, sql_name(&self.stream))
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
        ColumnType::Text | ColumnType::Timestamp => Cell::Text(value.as_str().ok_or_else(wrong)?),
        ColumnType::Integer => Cell::Int(value.as_i64().ok_or_else(wrong)?),
        ColumnType::Real => Cell::Real(value.as_f64().ok_or_else(wrong)?),
        ColumnType::Boolean => Cell::Bool(value.as_bool().ok_or_else(wrong)?),
        ColumnType::Json => Cell::Json(value.to_string()),
    })
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
        assert_eq!(cell(ColumnType::Text, None).unwrap(), Cell::Null);
    }
}
